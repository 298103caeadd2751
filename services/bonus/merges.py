"""profile.merged: the source customer lives on as the target, and so do its loyalty accounts.

In one unit of work, holding both customers' guards (the source's exclusively, so writes in
flight on it finish first) and then, per program, both account rows in key order: the
source's lots move to the target as they are (points, availability, expiry), recorded as
TRANSFER_OUT on the source and TRANSFER_IN on the target (an account opened for the target
when it had none, enrolled as of the source's enrolment, without welcome points); its
lifetime points follow. The source's guard then names the target: its history, accruals and
tier points are read as the target's (the ledger rows themselves are never rewritten), reads
naming the source follow to the target, and writes naming it are refused with NOT_FOUND
`CUSTOMER_MERGED` (metadata `target_customer_id`) — except a retry of a key the source used,
which still answers its first result. A redelivered merge finds the source merged and moves
nothing.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from libs.retry import retry_conflicts
from services.bonus.domain import Ledger, Movement, new_id
from services.bonus.handlers import BonusDeps, _program, settle_tier

__all__ = ["merge_customers"]

log = logging.getLogger(__name__)


async def merge_customers(deps: BonusDeps, source_id: str, target_id: str) -> int:
    """Moves every account of the source to the target; returns how many moved (0 when the
    merge was done before, or either customer was erased)."""
    if source_id == target_id:
        return 0

    async def attempt() -> int:
        now = deps.clock()
        async with deps.uow() as uow:
            merged_into, erased = await uow.lock_merge(source_id, target_id)
            if merged_into is not None or erased:
                if merged_into not in (None, target_id):
                    log.warning(
                        "%s was merged into %s before; not into %s",
                        source_id,
                        merged_into,
                        target_id,
                    )
                return 0
            accounts = await uow.enrolled_programs(source_id)
            # from here the source's rows count as the target's (tier points, history)
            await uow.mark_merged(source_id, target_id)
            for program_id, enrolled_at in accounts:
                program = await _program(uow, program_id)
                await uow.open_account(program_id, target_id, enrolled_at)
                states = {
                    c: await uow.lock_account(program_id, c) for c in sorted((source_id, target_id))
                }
                source_state, target_state = states[source_id], states[target_id]
                assert source_state is not None and target_state is not None
                source = Ledger(
                    program,
                    source_id,
                    await uow.lots(program_id, source_id),
                    source_state.points,
                    source_state.lifetime_points,
                    now,
                )
                target = Ledger(
                    program,
                    target_id,
                    await uow.lots(program_id, target_id),
                    target_state.points,
                    target_state.lifetime_points,
                    now,
                )
                source.expire()
                target.expire()
                lots = source.transfer_out(
                    Movement(
                        new_id(),
                        program_id,
                        source_id,
                        "TRANSFER_OUT",
                        0,
                        now,
                        description=f"merged into {target_id}",
                    )
                )
                target.transfer_in(
                    Movement(
                        new_id(),
                        program_id,
                        target_id,
                        "TRANSFER_IN",
                        0,
                        now,
                        description=f"merged from {source_id}",
                    ),
                    lots,
                    source_state.lifetime_points,
                )
                await uow.append([*source.movements, *target.movements])
                await uow.save_lots(program_id, source_id, list(source.changed.values()))
                await uow.save_lots(program_id, target_id, list(target.changed.values()))
                await uow.move_lots(program_id, source_id, target_id)
                # the source holds no tier any more (its profile is gone); the target's tier
                # counts the points of both
                await uow.save_account(
                    program_id, source_id, replace(source_state, points=source.points, tier="")
                )
                earned = await uow.earned_since(program_id, target_id, now - program.tier_period)
                after = replace(target_state, points=target.points, lifetime_points=target.lifetime)
                after = await settle_tier(uow, program, target_id, after, earned, now)
                await uow.save_account(program_id, target_id, after)
            await uow.commit()
            return len(accounts)

    return await retry_conflicts(attempt, attempts=deps.attempts)
