"""The Locust mix as a correctness check (issue 11): three processes of every service on one
PostgreSQL and one Redis, the callers of tests/load/mix.py (the same code `make load` runs)
spread over them from plain threads for a bounded number of steps, then the guarantees:

- ads: the capped campaign's counted impressions never pass its total budget or any
  customer's frequency cap, and equal what RecordInteraction reported counted (retried
  impressions counted once);
- idempotency: every retried TrackEvents batch answered all duplicates, every retried Accrue
  the first transaction; each tracked purchase is one order on the profile and one accrual
  in the ledger, each checkout key one transaction;
- bonus: every balance equals the sum of its ledger; the capped promotion's uses equal the
  accruals that carried it and never pass `max_uses`;
- caches: a promotion and a campaign paused through one process stop being served by every
  process (and stay stopped);
- memberships: for every customer touched, the stored memberships (GetMemberships) equal a
  fresh evaluation of the segments' conditions (EvaluateConditions), and the buyers and
  region segments agree with the profile itself.

Correctness only: no timing is asserted (waits use `eventually`, generous on a shared
machine).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest
from backcrm.ads.v1 import ads_service_pb2 as apb
from backcrm.bonus.v1 import bonus_service_pb2 as bpb
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as ppb
from backcrm.segmentation.v1 import segmentation_service_pb2 as spb

from libs.auth import hash_token
from services.registry import SERVICES
from tests.load.bench import ServerProcess, server_process
from tests.load.mix import (
    CALLERS,
    FREQUENCY_CAP,
    Caller,
    Calls,
    Journal,
    WebShop,
    World,
    shares,
    start,
)
from tests.support import TOKENS, backend_settings, eventually, tokens_json

pytestmark = pytest.mark.e2e

PROCESSES = 3
USERS = 12  # 7 shoppers, 2 ad servers, 2 desks, 1 marketer (mix.CALLERS' proportions)
STEPS = 30  # tasks per caller
MAX_USES = 8  # the capped promotion
CAMPAIGN_BUDGET = 6  # the capped campaign's total impressions (the mix wants more)
ADMIN = TOKENS["admin"][0]
# Each caller type calls with a token of its own scopes only (`Caller.scopes`), the set-up and
# the checks with the admin's.
CALLER_TOKENS = {kind: (f"tok-mix-{kind.__name__}", list(kind.scopes)) for kind in CALLERS}
# Deadlines generous enough for a shared, slow machine: a call that gives up might still have
# been applied, and the checks compare what the server did with what the callers were told.
DEADLINE = 60.0


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """PROCESSES `serve all`-like suites on one fresh PostgreSQL database and Redis prefix
    (the in-process bus cannot be shared by processes): their addresses."""
    workdir = Path(tmp_path_factory.mktemp("load-mix"))
    tokens = json.loads(tokens_json()) + [
        {"name": f"mix-{kind.__name__}", "sha256": hash_token(token), "scopes": scopes}
        for kind, (token, scopes) in CALLER_TOKENS.items()
    ]
    settings = backend_settings("postgres", workdir, auth_tokens=json.dumps(tokens))
    with settings as backend, ExitStack() as stack:
        names = ",".join(SERVICES)
        servers: list[ServerProcess] = [
            stack.enter_context(
                server_process(f"mix-{n}", backend.settings, workdir, None, ["--suite", names])
            )
            for n in range(PROCESSES)
        ]
        yield [server.address for server in servers]


class Recorder:
    """The Report of the test: every failed call, by process."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(
        self, service: str, rpc: str, ms: float, size: int, error: BaseException | None
    ) -> None:
        with self._lock:
            self.calls[rpc] += 1
            if error is not None:
                self.failures.append(f"{service}.{rpc}: {error}")


def run_mix(world: World, addresses: list[str], journal: Journal, recorder: Recorder) -> None:
    callers: list[Caller] = [
        kind(
            world,
            Calls(addresses[n % len(addresses)], CALLER_TOKENS[kind][0], recorder, DEADLINE),
            journal,
            seed=n,
        )
        for n, kind in enumerate(shares(USERS))
    ]
    # shoppers first, so the desks and the ad servers have customers to look up
    callers.sort(key=lambda caller: not isinstance(caller, WebShop))
    for caller in callers:
        assert start(caller), f"{type(caller).__name__} set-up failed: {recorder.failures}"

    def steps(caller: Caller) -> None:
        for _ in range(STEPS):
            caller.step()

    try:
        with ThreadPoolExecutor(len(callers)) as pool:
            list(pool.map(steps, callers))
    finally:
        for caller in callers:
            caller.calls.close()


def transactions(calls: Calls, program_id: str, customer_id: str) -> list[bpb.Transaction]:
    out: list[bpb.Transaction] = []
    token = ""
    while True:
        page = calls(
            "bonus",
            "ListTransactions",
            bpb.ListTransactionsRequest(
                program_id=program_id,
                customer=common_pb2.CustomerRef(customer_id=customer_id),
                page_size=100,
                page_token=token,
            ),
        )
        assert page is not None
        out += page.transactions
        token = page.next_page_token
        if not token:
            return out


async def test_the_mix_over_three_processes_keeps_every_guarantee(processes: list[str]) -> None:
    recorder = Recorder()
    each = [Calls(address, ADMIN, recorder, DEADLINE) for address in processes]
    first = each[0]
    world = World.create(first, max_uses=MAX_USES, campaign_budget=CAMPAIGN_BUDGET)
    journal = Journal()
    await asyncio.to_thread(run_mix, world, processes, journal, recorder)

    assert recorder.failures == []
    # the mix did what the checks are about (seeded callers: these hold for every run)
    assert {"TrackEvents", "Accrue", "RecordInteraction"} <= set(journal.retries)
    assert journal.accrued and journal.impressions and any(journal.orders.values())
    shoppers = journal.shoppers

    def on(n: int) -> Calls:
        return each[n % PROCESSES]

    # ---- ads: budget and caps never passed; counted once per token
    for n in range(PROCESSES):
        for campaign_id in (world.capped_campaign_id, world.open_campaign_id):
            stats = on(n)(
                "ads", "GetCampaignStats", apb.GetCampaignStatsRequest(campaign_id=campaign_id)
            )
            counted = [c for c, _ in journal.impressions.values() if c == campaign_id]
            assert stats.impressions == len(counted), campaign_id
    capped = [who for c, who in journal.impressions.values() if c == world.capped_campaign_id]
    assert 0 < len(capped) <= CAMPAIGN_BUDGET
    per_customer = Counter(who for who in capped if who)
    assert per_customer and max(per_customer.values()) <= FREQUENCY_CAP, per_customer

    # ---- profile: each purchase tracked once, whatever the resent batches
    for n, customer_id in enumerate(shoppers):
        profile = on(n)(
            "profile",
            "GetProfile",
            ppb.GetProfileRequest(customer=common_pb2.CustomerRef(customer_id=customer_id)),
        ).profile
        assert profile.purchase_summary.orders == len(journal.orders[customer_id]), customer_id

    # ---- bonus: balance = ledger; one transaction per key and per tracked order
    def ledger_settled() -> bool:
        for n, customer_id in enumerate(shoppers):
            ledger = transactions(on(n), world.program_id, customer_id)
            account = on(n + 1)(
                "bonus",
                "GetAccount",
                bpb.GetAccountRequest(
                    program_id=world.program_id,
                    customer=common_pb2.CustomerRef(customer_id=customer_id),
                ),
            ).account
            orders = Counter(t.order_id for t in ledger if t.order_id)
            if any(orders[o] != 1 for o in journal.orders[customer_id]):
                return False  # purchase events still on their way to bonus
            if account.balance + account.pending != sum(t.points for t in ledger):
                return False
        return True

    await eventually(ledger_settled, "every balance to equal its ledger", timeout=60)
    keys: Counter[str] = Counter()
    for n, customer_id in enumerate(shoppers):
        ledger = transactions(on(n), world.program_id, customer_id)
        orders = Counter(t.order_id for t in ledger if t.order_id)
        assert set(orders.values()) <= {1}, orders  # an order accrues once
        keys.update(t.idempotency_key for t in ledger if t.idempotency_key in journal.accrued)
        for t in ledger:
            if t.idempotency_key in journal.accrued:
                assert journal.accrued[t.idempotency_key] == t.transaction_id
    assert set(keys) == set(journal.accrued) and set(keys.values()) == {1}

    promotion = first(
        "bonus", "GetPromotion", bpb.GetPromotionRequest(promotion_id=world.capped_promotion_id)
    ).promotion
    assert promotion.uses == len(journal.capped_uses) <= MAX_USES

    # ---- memberships: stored = a fresh evaluation, and true to the profile
    segment_ids = list(world.segments)
    conditions = list(world.segments.values())

    def memberships_settled() -> bool:
        for n, customer_id in enumerate(shoppers):
            who = common_pb2.CustomerRef(customer_id=customer_id)
            stored = on(n)(
                "segmentation", "GetMemberships", spb.GetMembershipsRequest(customer=who)
            )
            fresh = on(n + 1)(
                "segmentation",
                "EvaluateConditions",
                spb.EvaluateConditionsRequest(customer=who, conditions=conditions),
            )
            profile = on(n + 2)("profile", "GetProfile", ppb.GetProfileRequest(customer=who))
            ours = {s for s in stored.segment_ids if s in world.segments}
            evaluated = {s for s, hit in zip(segment_ids, fresh.matched, strict=True) if hit}
            if ours != evaluated:
                return False
            bought = profile.profile.purchase_summary.orders >= 1
            if (world.buyers_segment_id in ours) != bought:
                return False
            northerner = world.north_segment_id in ours
            if northerner != (profile.profile.attributes.region == "north"):
                return False
        return True

    await eventually(memberships_settled, "memberships to equal a fresh evaluation", timeout=60)

    # ---- caches: paused through one process, gone from every process
    books = [(sku, cat) for sku, cat in world.skus if cat == "books"][:1]
    cart = [
        common_pb2.CartLine(
            sku=sku,
            category=cat,
            quantity=1,
            unit_price=common_pb2.Money(currency="EUR", units_micros=10_000_000),
        )
        for sku, cat in books
    ]
    quote = bpb.QuoteOfferRequest(
        program_id=world.program_id,
        context=common_pb2.Context(channel=common_pb2.CHANNEL_WEB, cart=cart),
    )
    select = apb.SelectAdsRequest(
        context=common_pb2.Context(channel=common_pb2.CHANNEL_WEB, placement="home.top"), limit=5
    )

    def promoted(calls: Calls) -> bool:
        applied = calls("bonus", "QuoteOffer", quote).applied
        return world.open_promotion_id in {a.promotion_id for a in applied}

    def advertised(calls: Calls) -> bool:
        slots = calls("ads", "SelectAds", select).slots
        return world.open_campaign_id in {s.campaign_id for s in slots}

    assert all(promoted(calls) and advertised(calls) for calls in each)
    first(
        "bonus", "PausePromotion", bpb.PausePromotionRequest(promotion_id=world.open_promotion_id)
    )
    first("ads", "PauseCampaign", apb.PauseCampaignRequest(campaign_id=world.open_campaign_id))
    await eventually(
        lambda: not any(promoted(c) or advertised(c) for c in each),
        "the paused promotion and campaign to leave every process",
        timeout=30,
    )
    for _ in range(5):  # and stay gone
        assert not any(promoted(c) or advertised(c) for c in each)

    assert recorder.failures == []
    for calls in each:
        calls.close()
