"""The tier, published to the profile as traits (consumer of bonus.tiers).

For every TierChanged, the consumer writes the account's tier *as stored when it runs*, not
the one in the event: a late or redelivered event cannot put an old tier back, and the last
write always carries the current one. Traits, in the namespace `bonus`:

- `bonus.tier_<program_id>`: the customer's tier in that program (removed when it has none);
- `bonus.tier`: the tier in the customer's first program (the earliest enrolment, then the
  smallest program id) — with one program, simply the tier. Segments use
  `traits.bonus.tier`.

A profile outage delays the write (the consumer raises Unavailable and the bus delivers the
event again), never loses it; a customer profile does not know (or bonus no longer holds:
merged, erased) is skipped.
"""

from __future__ import annotations

from services.bonus.handlers import BonusDeps
from services.bonus.ports import ProfileTraits

__all__ = ["publish_tier"]


async def publish_tier(
    deps: BonusDeps, traits: ProfileTraits, program_id: str, customer_id: str
) -> bool:
    """Writes the customer's tier traits; False when there was nothing to write."""
    async with deps.uow() as uow:
        if await uow.merged_into(customer_id) is not None:
            return False
        accounts = await uow.enrolled_programs(customer_id)
        if program_id not in dict(accounts):
            return False
        first = min(accounts, key=lambda account: (account[1], account[0]))[0]
        tiers: dict[str, str] = {}
        for program in {program_id, first}:
            state = await uow.account(program, customer_id)
            tiers[program] = state.tier if state is not None else ""
    values = {f"tier_{program_id}": tiers[program_id] or None, "tier": tiers[first] or None}
    return await traits.set_traits(customer_id, values)
