"""The ad-loyalty reward for real (SQLite and PostgreSQL + Redis): a rewarded click credits
its points to the bonus ledger once per token, whatever the redeliveries, concurrent retries
or outages of the bonus service.

The ads processes are `AdsApp`s as in test_ads_races.py (two on PostgreSQL, sharing the Redis
bus; one on the embedded default), with their `ads-reward` consumers running. Their `Rewards`
port is bonus's RewardPoints as its servicer runs it — `services.bonus.handlers.adjust_points`
with a positive amount, on the real ledger in the same database — behind an outage switch (the
gRPC adapter itself is exercised end to end in tests/e2e/test_ads_api.py). Invariants are
checked after every trial, never times.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from libs.errors import NotFound, Unavailable
from libs.runtime import Peers
from services.ads import handlers as h
from services.ads.domain import Campaign
from services.ads.ports import RewardRefused, Rewards
from services.bonus import handlers as bonus
from services.bonus.app import BonusApp
from services.bonus.domain import Program
from services.bonus.models import TransactionRow
from tests.integration.test_ads_races import World, _world, soon, uid
from tests.support import Backend, eventually

pytestmark = pytest.mark.integration


class LedgerRewards(Rewards):
    """RewardPoints on the real ledger; `down` answers like an unreachable bonus service."""

    def __init__(self, deps: bonus.BonusDeps) -> None:
        self.deps = deps
        self.down = False
        self.calls = 0

    async def reward(
        self, program_id: str, customer_id: str, points: int, reason: str, key: str
    ) -> str:
        self.calls += 1
        if self.down:
            raise Unavailable("bonus RewardPoints: UNAVAILABLE")
        try:
            outcome = await bonus.adjust_points(
                self.deps, program_id, customer_id, points, reason, key
            )
        except NotFound as err:
            raise RewardRefused(f"NOT_FOUND {err.reason}") from err
        assert outcome.movement is not None
        return outcome.movement.transaction_id


@dataclass
class Rewarded:
    ads: World
    ledger: LedgerRewards
    program: Program

    async def campaign(self, points: int = 50) -> Campaign:
        return await self.ads.campaign(
            reward_program_id=self.program.program_id, reward_points=points, reward_type="CLICK"
        )

    async def enrolled(self) -> str:
        customer = uid()
        await bonus.enroll(self.ledger.deps, self.program.program_id, customer)
        return customer

    async def click(self, campaign: Campaign, customer: str) -> str:
        """Selects the campaign for the customer and records a click; the token id."""
        (slot,) = (await self.ads.select(0, customer, campaign)).slots
        recorded = await h.record_interaction(self.ads.deps(0), slot.token, "CLICK", None)
        assert recorded.counted
        return self.ads.deps(0).signer.verify(slot.token, self.ads.deps(0).clock()).token_id

    async def noted(self, token_id: str) -> str | None:
        async with self.ads.deps(0).uow() as uow:
            return await uow.reward_noted(token_id, "CLICK")

    def is_noted(self, token_id: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return await self.noted(token_id) is not None

        return check

    async def ledger_of(self, customer: str) -> tuple[int, int]:
        """(points credited to the customer by ad rewards, how many such movements)."""
        t = TransactionRow
        async with self.ads.resources.sessions() as s:
            row = (
                await s.execute(
                    select(func.coalesce(func.sum(t.points), 0), func.count()).where(
                        t.program_id == self.program.program_id,
                        t.customer_id == customer,
                        t.idempotency_key.like("ads-reward-%"),
                    )
                )
            ).one()
        return int(row[0]), int(row[1])


@pytest.fixture
async def rewarded(backend: Backend) -> AsyncIterator[Rewarded]:
    replicas = 2 if backend.name == "postgres" else 1
    async for world in _world(backend, replicas):
        peers = Peers(world.resources.settings, "token", lambda: "127.0.0.1:1")
        ledger = LedgerRewards(BonusApp.build(world.resources, peers).deps)
        for app in world.apps:  # the consumers read app.deps when an event arrives
            app.deps = dataclasses.replace(app.deps, rewards=ledger)
        program = await bonus.create_program(
            ledger.deps,
            Program(program_id="", name="Club", currency="GBP", points_per_unit=1.0),
            "",
        )
        yield Rewarded(world, ledger, program)


async def test_a_redelivered_or_concurrently_retried_reward_credits_once(
    rewarded: Rewarded,
) -> None:
    campaign = await rewarded.campaign(points=50)
    for trial in range(5):
        customer = await rewarded.enrolled()
        token_id = await rewarded.click(campaign, customer)
        # the consumer's own delivery races 12 retries over both processes (redeliveries,
        # a second consumer that took the event over, ...)
        outcomes = await asyncio.gather(
            *(
                soon(
                    h.grant_reward(
                        rewarded.ads.deps(i),
                        token_id,
                        "CLICK",
                        campaign.campaign_id,
                        customer,
                        rewarded.program.program_id,
                        50,
                    )
                )
                for i in range(12)
            )
        )
        assert len(set(outcomes)) == 1 and outcomes[0].startswith("REWARDED "), (trial, outcomes)
        await eventually(rewarded.is_noted(token_id), f"trial {trial}: noted")
        assert await rewarded.noted(token_id) == outcomes[0]
        assert await rewarded.ledger_of(customer) == (50, 1), trial
        account = await bonus.get_account(
            rewarded.ledger.deps, rewarded.program.program_id, customer
        )
        assert account.balance == 50, trial


async def test_bonus_down_then_up_credits_once(rewarded: Rewarded) -> None:
    campaign = await rewarded.campaign(points=30)
    customers = [await rewarded.enrolled() for _ in range(3)]
    rewarded.ledger.down = True
    tokens = [await rewarded.click(campaign, c) for c in customers]
    # the consumer keeps trying while bonus is down, and records nothing meanwhile
    await eventually(lambda: rewarded.ledger.calls >= 2 * len(tokens), "retried while down")
    assert [await rewarded.noted(t) for t in tokens] == [None] * len(tokens)
    assert [await rewarded.ledger_of(c) for c in customers] == [(0, 0)] * len(customers)
    rewarded.ledger.down = False

    async def all_noted() -> bool:
        return all([await rewarded.noted(t) for t in tokens])

    await eventually(all_noted, "rewarded once bonus is back")
    for token_id, customer in zip(tokens, customers, strict=True):
        assert (await rewarded.noted(token_id) or "").startswith("REWARDED ")
        assert await rewarded.ledger_of(customer) == (30, 1)


async def test_a_customer_not_enrolled_is_refused_recorded_and_not_retried(
    rewarded: Rewarded,
) -> None:
    campaign = await rewarded.campaign()
    customer = uid()  # never enrolled
    token_id = await rewarded.click(campaign, customer)
    await eventually(rewarded.is_noted(token_id), "refusal noted")
    assert await rewarded.noted(token_id) == "REFUSED NOT_FOUND ACCOUNT_NOT_FOUND"
    assert await rewarded.ledger_of(customer) == (0, 0)
