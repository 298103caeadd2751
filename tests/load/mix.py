"""The whole suite's traffic, by caller type: what `make load` (Locust) runs and what
tests/e2e/test_load_correctness.py replays from plain threads to check the outcome.

Four callers, weighted like real traffic (`CALLERS`):

- **web shop** (a shopper): signs up and enrols in the loyalty program, then tracks events
  (views, cart adds, purchases; a batch now and then sent twice, as a client retries after a
  timeout), asks for the showcase, quotes its cart (and half the time checks out: `Accrue`
  with the quote, sometimes retried with the same key) and shows ads (`SelectAds`, then
  `RecordInteraction` of the impressions it showed);
- **ad server**: selects partner ads for a known or anonymous customer, records impressions
  (some retried) and clicks (the open campaign rewards clicks with points);
- **call-centre desk**: reads a customer's profile, purchases, loyalty account and
  transactions, and logs the call as an event;
- **marketing**: previews segments, creates and deletes its own segment, pauses and resumes
  its own promotion and campaign.

`World.create` makes what they share, once per run, with an admin token: a program, two
promotions (one capped by `max_uses`), three behavioural segments, a catalogue and a
showcase, two campaigns (one with a total budget and a frequency cap, one unlimited that
rewards clicks).

Every call goes through `Calls`, which reports it (service, RPC name, milliseconds, bytes,
error) to a `Report` callback: Locust's request event, or the test's recorder. A refusal
the mix provokes on purpose is a business outcome, not an error: it is named by its
`google.rpc.ErrorInfo` reason in `expected` (a capped promotion's `PROMOTION_BUDGET_SPENT`,
a deleted segment's `SEGMENT_NOT_FOUND`, an ended campaign's `CAMPAIGN_ENDED`), counted in
`Calls.outcomes` and reported as a success. A retry that does not answer like the first
call (a second count, another transaction) is reported as a failure of `<rpc> retry`.

With a `Journal`, the callers also write down what they did and what the server answered
(the test's expectations); Locust runs without one.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from backcrm.ads.v1 import ads_service_pb2 as apb
from backcrm.ads.v1 import ads_service_pb2_grpc
from backcrm.bonus.v1 import bonus_service_pb2 as bpb
from backcrm.bonus.v1 import bonus_service_pb2_grpc
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as ppb
from backcrm.profile.v1 import profile_service_pb2_grpc
from backcrm.recommend.v1 import recommend_service_pb2 as rpb
from backcrm.recommend.v1 import recommend_service_pb2_grpc
from backcrm.segmentation.v1 import condition_pb2 as cpb
from backcrm.segmentation.v1 import segmentation_service_pb2 as spb
from backcrm.segmentation.v1 import segmentation_service_pb2_grpc
from google.protobuf import duration_pb2, field_mask_pb2
from google.rpc import error_details_pb2, status_pb2

from services.registry import SERVICES
from tests.load.segments import CATEGORIES, context, event, prop

__all__ = [
    "CALLERS",
    "AdServer",
    "Caller",
    "Calls",
    "Desk",
    "Journal",
    "Marketing",
    "MixError",
    "Report",
    "WebShop",
    "World",
    "addresses",
    "shares",
    "start",
]

CURRENCY = "EUR"
REGIONS = ("north", "south", "east", "west")
SHOP_PLACEMENTS = ("home.top", "product.side", "cart.bottom")
PARTNER_PLACEMENTS = ("partner.news", "partner.video")
ITEMS_PER_CATEGORY = 5
FREQUENCY_CAP = 3  # the capped campaign's impressions per customer per day
CLICK_REWARD = 5  # points the open campaign credits per click

# service, rpc, milliseconds, response bytes, error (None: a success or an expected outcome)
Report = Callable[[str, str, float, int, BaseException | None], None]


def addresses(host: str) -> list[str]:
    """`host:port[,host:port…]` (an optional grpc:// each) → the addresses, in order."""
    out = [a.strip().removeprefix("grpc://") for a in host.split(",") if a.strip()]
    if not out:
        raise ValueError("no address: pass host:port (or several, comma-separated)")
    return out


def service_routes(spec: str) -> dict[str, str]:
    """`service=host:port[,service=host:port…]` → where each named service is called instead
    of the user's address (services in processes of their own, BACKCRM_<SERVICE>_ADDRESS)."""
    routes: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        service, sep, address = part.partition("=")
        if not sep or service not in SERVICES or not address.strip():
            raise ValueError(
                f"bad route {part!r}: want service=host:port, service one of {', '.join(SERVICES)}"
            )
        routes[service] = address.strip().removeprefix("grpc://")
    return routes


def _money(micros: int) -> common_pb2.Money:
    return common_pb2.Money(currency=CURRENCY, units_micros=micros)


def _by_id(customer_id: str) -> common_pb2.CustomerRef:
    return common_pb2.CustomerRef(customer_id=customer_id)


def _reason(error: grpc.RpcError) -> str:
    """The google.rpc.ErrorInfo reason of a failed call ("" when there is none)."""
    trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    raw = dict(trailers or ()).get("grpc-status-details-bin")
    if not raw:
        return ""
    for detail in status_pb2.Status.FromString(raw).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return ""


class MixError(Exception):
    """A call answered, but not as the mix requires (a retry counted twice, …)."""


class Calls:
    """The five stubs on one address (or a service where `routes` says) with one token;
    every call timed and reported."""

    def __init__(
        self,
        address: str,
        token: str,
        report: Report,
        timeout: float = 10.0,
        outcomes: Counter[str] | None = None,
        routes: Mapping[str, str] | None = None,
    ) -> None:
        self.address = address
        self._channels: dict[str, grpc.Channel] = {}

        def channel(service: str) -> grpc.Channel:
            target = (routes or {}).get(service, address)
            if target not in self._channels:
                self._channels[target] = grpc.insecure_channel(target)
            return self._channels[target]

        self._metadata = (("authorization", f"Bearer {token}"),)
        self._report = report
        self._timeout = timeout
        self._stubs: dict[str, Any] = {
            "profile": profile_service_pb2_grpc.ProfileServiceStub(channel("profile")),
            "segmentation": segmentation_service_pb2_grpc.SegmentationServiceStub(
                channel("segmentation")
            ),
            "bonus": bonus_service_pb2_grpc.BonusServiceStub(channel("bonus")),
            "ads": ads_service_pb2_grpc.AdsServiceStub(channel("ads")),
            "recommend": recommend_service_pb2_grpc.RecommendServiceStub(channel("recommend")),
        }
        # "<rpc> <REASON>" of the expected refusals (may be shared by several Calls)
        self.outcomes: Counter[str] = Counter() if outcomes is None else outcomes

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()

    def __call__(self, service: str, rpc: str, request: Any, expected: Collection[str] = ()) -> Any:
        """The response, or None when the call failed (reported) or was refused as expected."""
        started = time.perf_counter()
        response, error = None, None
        try:
            response = getattr(self._stubs[service], rpc)(
                request, metadata=self._metadata, timeout=self._timeout
            )
        except grpc.RpcError as exc:
            reason = _reason(exc)
            if reason and reason in expected:
                self.outcomes[f"{rpc} {reason}"] += 1
            else:
                error = exc
        elapsed = (time.perf_counter() - started) * 1000
        size = response.ByteSize() if response is not None else 0
        self._report(service, rpc, elapsed, size, error)
        return response

    def fail(self, service: str, what: str, message: str) -> None:
        self._report(service, what, 0.0, 0, MixError(message))


@dataclass
class Journal:
    """What the callers did and what they were told (thread-safe appends)."""

    shoppers: list[str] = field(default_factory=list)  # customer ids
    orders: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # id → order ids
    accrued: dict[str, str] = field(default_factory=dict)  # idempotency key → transaction id
    capped_uses: set[str] = field(default_factory=set)  # keys whose accrual used the capped promo
    # tracking token → (campaign id, customer id) of every impression counted
    impressions: dict[str, tuple[str, str]] = field(default_factory=dict)
    retries: Counter[str] = field(default_factory=Counter)  # retries made, by rpc
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, apply: Callable[[Journal], None]) -> None:
        with self._lock:
            apply(self)


@dataclass
class World:
    """What every caller shares, made once per run (`create`) with an admin token."""

    run: str
    program_id: str
    capped_promotion_id: str  # max_uses
    open_promotion_id: str  # unlimited, double points on books in the cart
    segments: dict[str, cpb.Condition]  # behavioural segment id → its condition
    buyers_segment_id: str  # purchase_summary.orders >= 1
    north_segment_id: str  # attributes.region = north
    skus: list[tuple[str, str]]  # (sku, category)
    showcase_id: str
    capped_campaign_id: str  # total budget + frequency cap
    open_campaign_id: str  # unlimited, rewards clicks
    known: list[str] = field(default_factory=list)  # customer ids of shoppers signed up

    @classmethod
    def create(cls, admin: Calls, *, max_uses: int, campaign_budget: int) -> World:
        run = uuid.uuid4().hex[:8]

        def need(service: str, rpc: str, request: Any) -> Any:
            response = admin(service, rpc, request)
            if response is None:
                raise RuntimeError(f"setting up the load test: {rpc} failed on {admin.address}")
            return response

        program = need(
            "bonus",
            "CreateProgram",
            bpb.CreateProgramRequest(
                program=bpb.Program(
                    name=f"load club {run}",
                    currency=CURRENCY,
                    points_per_unit=1.0,
                    welcome_points=50,
                    point_value=_money(10_000),
                    tiers=[bpb.Tier(name="silver", threshold_points=300, discount_percent=2)],
                )
            ),
        ).program
        promotions = [
            bpb.Promotion(
                program_id=program.program_id,
                name=f"load first {max_uses} orders {run}",
                effect=bpb.Effect(type=bpb.EFFECT_TYPE_AMOUNT_OFF, amount=_money(1_000_000)),
                priority=20,
                budget=bpb.PromotionBudget(max_uses=max_uses),
            ),
            bpb.Promotion(
                program_id=program.program_id,
                name=f"load books double points {run}",
                effect=bpb.Effect(
                    type=bpb.EFFECT_TYPE_POINTS_MULTIPLIER, multiplier=2.0, categories=["books"]
                ),
                condition=context("cart.categories", "CONTAINS", "books"),
                priority=10,
            ),
        ]
        capped, open_ = (
            need("bonus", "CreatePromotion", bpb.CreatePromotionRequest(promotion=p)).promotion
            for p in promotions
        )
        conditions = {
            "buyers": prop("purchase_summary.orders", "GTE", 1),
            "book browsers": event("PRODUCT_VIEW", 30 * 86_400, 2, category="books"),
            "northerners": prop("attributes.region", "EQ", "north"),
        }
        segments = {}
        for name, condition in conditions.items():
            segment = spb.Segment(name=f"load {name} {run}", condition=condition)
            created = need(
                "segmentation", "CreateSegment", spb.CreateSegmentRequest(segment=segment)
            )
            segments[created.segment.segment_id] = condition
        buyers, _, north = segments
        skus = [
            (f"LD-{run}-{cat}-{n}", cat) for cat in CATEGORIES for n in range(ITEMS_PER_CATEGORY)
        ]
        items = [
            rpb.Item(
                sku=sku,
                title=f"{category} {sku[-1]}",
                category=category,
                price=_money(random.choice((4_990_000, 12_500_000, 19_990_000))),
                available=True,
            )
            for sku, category in skus
        ]
        need("recommend", "UpsertItems", rpb.UpsertItemsRequest(items=items))
        showcase = need(
            "recommend",
            "CreateShowcase",
            rpb.CreateShowcaseRequest(
                showcase=rpb.Showcase(
                    name=f"load home {run}",
                    strategies=[
                        rpb.StrategyWeight(strategy=rpb.STRATEGY_BOUGHT_TOGETHER, weight=3.0),
                        rpb.StrategyWeight(strategy=rpb.STRATEGY_PERSONAL, weight=2.0),
                        rpb.StrategyWeight(strategy=rpb.STRATEGY_POPULAR, weight=1.0),
                    ],
                    filters=rpb.ShowcaseFilters(only_available=True, exclude_in_cart=True),
                    fallback=[rpb.STRATEGY_POPULAR, rpb.STRATEGY_NEW],
                )
            ),
        ).showcase
        everywhere = [*SHOP_PLACEMENTS, "partner.*"]
        capped_campaign = need(
            "ads",
            "CreateCampaign",
            apb.CreateCampaignRequest(
                campaign=apb.Campaign(
                    name=f"load capped {run}",
                    brand="acme",
                    creatives=[
                        apb.Creative(
                            title="Acme boots",
                            click_url="https://acme.example/boots",
                            placements=everywhere,
                        )
                    ],
                    priority=200,
                    budget=apb.Budget(total_impressions=campaign_budget),
                    frequency_cap=apb.FrequencyCap(
                        impressions=FREQUENCY_CAP, period=duration_pb2.Duration(seconds=86_400)
                    ),
                )
            ),
        ).campaign
        open_campaign = need(
            "ads",
            "CreateCampaign",
            apb.CreateCampaignRequest(
                campaign=apb.Campaign(
                    name=f"load house {run}",
                    brand="house",
                    creatives=[
                        apb.Creative(
                            title="Club points on every click",
                            click_url="https://shop.example/club",
                            placements=everywhere,
                        )
                    ],
                    priority=100,
                    categories=["books"],
                    reward=apb.Reward(
                        program_id=program.program_id,
                        points=CLICK_REWARD,
                        interaction_type=apb.INTERACTION_TYPE_CLICK,
                    ),
                )
            ),
        ).campaign
        return cls(
            run=run,
            program_id=program.program_id,
            capped_promotion_id=capped.promotion_id,
            open_promotion_id=open_.promotion_id,
            segments=segments,
            buyers_segment_id=buyers,
            north_segment_id=north,
            skus=skus,
            showcase_id=showcase.showcase_id,
            capped_campaign_id=capped_campaign.campaign_id,
            open_campaign_id=open_campaign.campaign_id,
        )

    def cart(self, rng: random.Random, lines: int) -> list[common_pb2.CartLine]:
        return [
            common_pb2.CartLine(
                sku=sku, category=category, quantity=rng.choice((1, 1, 2)), unit_price=_money(price)
            )
            for (sku, category), price in zip(
                rng.sample(self.skus, lines),
                rng.choices((4_990_000, 12_500_000, 19_990_000), k=lines),
                strict=True,
            )
        ]


class Caller:
    """One caller of a type: `step()` runs one of its tasks, chosen by weight."""

    tasks: dict[str, int] = {}  # method name → weight
    # The least a token of this caller needs: what the correctness test gives each type, so
    # every call it makes (and every call the suite makes for it, such as resolving an
    # identity) is checked against the scopes a real client of that type would hold.
    scopes: tuple[str, ...] = ()

    def __init__(
        self, world: World, calls: Calls, journal: Journal | None = None, seed: int | None = None
    ) -> None:
        self.world = world
        self.calls = calls
        self.journal = journal
        self.rng = random.Random(seed)
        self._names = list(self.tasks)
        self._weights = list(self.tasks.values())

    def step(self) -> None:
        getattr(self, self.rng.choices(self._names, weights=self._weights)[0])()

    def note(self, apply: Callable[[Journal], None]) -> None:
        if self.journal is not None:
            self.journal.note(apply)

    def known_customer(self) -> str:
        """A shopper's id ("" before any signed up)."""
        return self.rng.choice(self.world.known) if self.world.known else ""

    def show_ads(self, customer_id: str, placement: str, record: float, retry: float) -> None:
        """SelectAds, then RecordInteraction of the impressions shown (a share `record` of the
        slots; a share `retry` of them sent twice: the second must not count)."""
        where = common_pb2.Context(channel=common_pb2.CHANNEL_WEB, placement=placement)
        request = apb.SelectAdsRequest(context=where, limit=2)
        if customer_id:
            request.customer.CopyFrom(_by_id(customer_id))
        selected = self.calls("ads", "SelectAds", request)
        for slot in selected.slots if selected is not None else ():
            if self.rng.random() >= record:
                continue  # selected, never shown: its reservation lapses
            self.impression(slot, customer_id, retry)

    def impression(self, slot: apb.AdSlot, customer_id: str, retry: float) -> None:
        shown = apb.RecordInteractionRequest(
            tracking_token=slot.tracking_token, type=apb.INTERACTION_TYPE_IMPRESSION
        )
        first = self.calls("ads", "RecordInteraction", shown)
        if first is None:
            return
        if first.counted and not first.over_limit:
            token, campaign = slot.tracking_token, slot.campaign_id
            self.note(lambda j: j.impressions.__setitem__(token, (campaign, customer_id)))
        if self.rng.random() < retry:
            self.note(lambda j: j.retries.update(["RecordInteraction"]))
            again = self.calls("ads", "RecordInteraction", shown)
            if again is not None and again.counted:
                self.calls.fail("ads", "RecordInteraction retry", "a retried impression counted")


class WebShop(Caller):
    """A shopper on the web shop (see the module docstring)."""

    tasks = {"browse": 10, "showcase": 5, "quote": 3, "ads": 4}
    scopes = (
        "profile:write",
        "bonus:read",
        "bonus:write",
        "recommend:read",
        "ads:read",
        "ads:write",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.email = f"shopper-{uuid.uuid4().hex[:12]}@load.example"
        self.region = self.rng.choice(REGIONS)
        self.customer_id = ""
        self.cart: list[common_pb2.CartLine] = []

    def sign_up(self) -> bool:
        who = common_pb2.CustomerRef(
            identity=common_pb2.Identity(type=common_pb2.IDENTITY_TYPE_EMAIL, value=self.email)
        )
        upserted = self.calls(
            "profile",
            "UpsertProfile",
            ppb.UpsertProfileRequest(
                customer=who,
                attributes=ppb.Attributes(
                    name="Load Shopper", email=self.email, region=self.region
                ),
                update_mask=field_mask_pb2.FieldMask(
                    paths=["attributes.name", "attributes.email", "attributes.region"]
                ),
            ),
        )
        if upserted is None:
            return False
        self.customer_id = upserted.profile.customer_id
        enrolled = self.calls(
            "bonus",
            "Enroll",
            bpb.EnrollRequest(program_id=self.world.program_id, customer=_by_id(self.customer_id)),
        )
        if enrolled is None:
            return False
        self.world.known.append(self.customer_id)
        self.note(lambda j: j.shoppers.append(self.customer_id))
        return True

    def _event(self, kind: int, sku: str, category: str) -> ppb.Event:
        return ppb.Event(
            event_id=f"ld-{uuid.uuid4().hex}",
            customer=_by_id(self.customer_id),
            type=kind,
            channel=common_pb2.CHANNEL_WEB,
            sku=sku,
            category=category,
        )

    def browse(self) -> None:
        """A batch of 5 events; 1 in 10 batches sent again (all duplicates)."""
        events, orders = [], []
        for _ in range(5):
            sku, category = self.rng.choice(self.world.skus)
            roll = self.rng.random()
            if roll < 0.75:
                events.append(self._event(ppb.EVENT_TYPE_PRODUCT_VIEW, sku, category))
            elif roll < 0.93:
                line = common_pb2.CartLine(
                    sku=sku, category=category, quantity=1, unit_price=_money(12_500_000)
                )
                self.cart = [*self.cart[-2:], line]
                added = self._event(ppb.EVENT_TYPE_ADD_TO_CART, sku, category)
                added.quantity = 1
                added.unit_price.CopyFrom(line.unit_price)
                events.append(added)
            else:
                order_id = f"ld-{uuid.uuid4().hex[:16]}"
                bought = self._event(ppb.EVENT_TYPE_PURCHASE, sku, category)
                line = common_pb2.CartLine(
                    sku=sku, category=category, quantity=1, unit_price=_money(19_990_000)
                )
                bought.order.CopyFrom(
                    common_pb2.Order(order_id=order_id, lines=[line], total=_money(19_990_000))
                )
                events.append(bought)
                orders.append(order_id)
        request = ppb.TrackEventsRequest(events=events)
        first = self.calls("profile", "TrackEvents", request)
        if first is None:
            return
        if first.accepted != len(events):
            self.calls.fail("profile", "TrackEvents", f"accepted {first.accepted} of {len(events)}")
            return
        self.note(lambda j: j.orders[self.customer_id].update(orders))
        if self.rng.random() < 0.1:
            self.note(lambda j: j.retries.update(["TrackEvents"]))
            again = self.calls("profile", "TrackEvents", request)
            if again is not None and (again.accepted, again.duplicates) != (0, len(events)):
                self.calls.fail(
                    "profile",
                    "TrackEvents retry",
                    f"a resent batch: accepted {again.accepted}, duplicates {again.duplicates}",
                )

    def showcase(self) -> None:
        self.calls(
            "recommend",
            "GetRecommendations",
            rpb.GetRecommendationsRequest(
                customer=_by_id(self.customer_id),
                showcase_id=self.world.showcase_id,
                context=common_pb2.Context(channel=common_pb2.CHANNEL_WEB, cart=self.cart),
                limit=8,
            ),
        )

    def quote(self) -> None:
        """QuoteOffer for a cart; half the time the checkout: Accrue with the quote (1 in 3
        retried with the same key, which must answer the same transaction)."""
        cart = self.world.cart(self.rng, self.rng.randint(1, 3))
        quoted = self.calls(
            "bonus",
            "QuoteOffer",
            bpb.QuoteOfferRequest(
                program_id=self.world.program_id,
                customer=_by_id(self.customer_id),
                context=common_pb2.Context(channel=common_pb2.CHANNEL_WEB, cart=cart),
            ),
        )
        if quoted is None or self.rng.random() < 0.5:
            return
        order_id = f"ld-{uuid.uuid4().hex[:16]}"
        key = f"acc-{order_id}"
        request = bpb.AccrueRequest(
            program_id=self.world.program_id,
            customer=_by_id(self.customer_id),
            order=common_pb2.Order(order_id=order_id, lines=cart, total=quoted.total),
            idempotency_key=key,
            quote_id=quoted.quote_id,
        )
        spent = ("PROMOTION_BUDGET_SPENT",)  # the capped promotion's budget ran out meanwhile
        first = self.calls("bonus", "Accrue", request, expected=spent)
        if first is None:
            return
        transaction = first.transaction
        # The accrual counted a use of every promotion its quote applied. (Transaction's
        # promotion_ids would say so too, but bonus does not fill it yet.)
        capped = self.world.capped_promotion_id in {a.promotion_id for a in quoted.applied}

        def accrued(j: Journal) -> None:
            j.accrued[key] = transaction.transaction_id
            if capped:
                j.capped_uses.add(key)

        self.note(accrued)
        if self.rng.random() < 1 / 3:
            self.note(lambda j: j.retries.update(["Accrue"]))
            again = self.calls("bonus", "Accrue", request)
            if again is not None and again.transaction.transaction_id != transaction.transaction_id:
                self.calls.fail("bonus", "Accrue retry", "a retried accrual made a new transaction")

    def ads(self) -> None:
        self.show_ads(self.customer_id, self.rng.choice(SHOP_PLACEMENTS), record=0.9, retry=0.1)


class AdServer(Caller):
    """The ad server for partner sites: selections for known and anonymous visitors."""

    tasks = {"serve": 4, "click": 1}
    scopes = ("ads:read", "ads:write")

    def serve(self) -> None:
        who = self.known_customer() if self.rng.random() < 0.8 else ""
        self.show_ads(who, self.rng.choice(PARTNER_PLACEMENTS), record=0.95, retry=0.2)

    def click(self) -> None:
        """An impression and a click of a known customer (the open campaign rewards clicks)."""
        who = self.known_customer()
        if not who:
            return
        where = common_pb2.Context(
            channel=common_pb2.CHANNEL_WEB, placement=self.rng.choice(PARTNER_PLACEMENTS)
        )
        request = apb.SelectAdsRequest(customer=_by_id(who), context=where, limit=1)
        selected = self.calls("ads", "SelectAds", request)
        for slot in selected.slots if selected is not None else ():
            self.impression(slot, who, retry=0.0)
            clicked = apb.RecordInteractionRequest(
                tracking_token=slot.tracking_token, type=apb.INTERACTION_TYPE_CLICK
            )
            self.calls("ads", "RecordInteraction", clicked)


class Desk(Caller):
    """A call-centre agent looking a customer up."""

    tasks = {"profile": 4, "purchases": 2, "account": 3, "transactions": 2, "log_call": 1}
    scopes = ("profile:read", "profile:write", "bonus:read")

    def _who(self) -> common_pb2.CustomerRef | None:
        customer_id = self.known_customer()
        return _by_id(customer_id) if customer_id else None

    def profile(self) -> None:
        if who := self._who():
            self.calls("profile", "GetProfile", ppb.GetProfileRequest(customer=who))

    def purchases(self) -> None:
        if who := self._who():
            request = ppb.ListPurchasesRequest(customer=who, page_size=20)
            self.calls("profile", "ListPurchases", request)

    def account(self) -> None:
        if who := self._who():
            request = bpb.GetAccountRequest(program_id=self.world.program_id, customer=who)
            self.calls("bonus", "GetAccount", request)

    def transactions(self) -> None:
        if who := self._who():
            request = bpb.ListTransactionsRequest(
                program_id=self.world.program_id, customer=who, page_size=20
            )
            self.calls("bonus", "ListTransactions", request)

    def log_call(self) -> None:
        if who := self._who():
            call = ppb.Event(
                event_id=f"ld-{uuid.uuid4().hex}",
                customer=who,
                type=ppb.EVENT_TYPE_CALL,
                channel=common_pb2.CHANNEL_CALL_CENTER,
            )
            self.calls("profile", "TrackEvents", ppb.TrackEventsRequest(events=[call]))


class Marketing(Caller):
    """A marketer: previews, one segment of its own at a time, and its own promotion and
    campaign paused and resumed (a coupon promotion and a placement of its own, so the
    shoppers' outcomes do not depend on them)."""

    tasks = {"preview": 4, "segment": 1, "toggle_promotion": 2, "toggle_campaign": 2}
    scopes = ("admin",)  # creating segments and promotions is the administrators'

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.segment_id = ""
        self.deleted_segment_id = ""
        self.promotion_id = ""
        self.campaign_id = ""

    def set_up(self) -> bool:
        tag = uuid.uuid4().hex[:8]
        promotion = self.calls(
            "bonus",
            "CreatePromotion",
            bpb.CreatePromotionRequest(
                promotion=bpb.Promotion(
                    program_id=self.world.program_id,
                    name=f"load coupon {tag}",
                    effect=bpb.Effect(type=bpb.EFFECT_TYPE_PERCENT_OFF, percent=15),
                    coupon_code=f"LOAD{tag}".upper(),
                )
            ),
        )
        campaign = self.calls(
            "ads",
            "CreateCampaign",
            apb.CreateCampaignRequest(
                campaign=apb.Campaign(
                    name=f"load marketing {tag}",
                    brand="house",
                    creatives=[
                        apb.Creative(
                            title="Seasonal",
                            click_url="https://shop.example/season",
                            placements=[f"mkt-{tag}.top"],
                        )
                    ],
                )
            ),
        )
        if promotion is None or campaign is None:
            return False
        self.promotion_id = promotion.promotion.promotion_id
        self.campaign_id = campaign.campaign.campaign_id
        return True

    def _condition(self) -> cpb.Condition:
        roll = self.rng.randrange(3)
        if roll == 0:
            return prop("purchase_summary.orders", "GTE", self.rng.randint(1, 3))
        if roll == 1:
            category = self.rng.choice(CATEGORIES)
            return event("PRODUCT_VIEW", 7 * 86_400, self.rng.randint(1, 3), category=category)
        return prop("attributes.region", "EQ", self.rng.choice(REGIONS))

    def preview(self) -> None:
        request = spb.PreviewSegmentRequest(condition=self._condition(), sample_size=10)
        self.calls("segmentation", "PreviewSegment", request)

    def segment(self) -> None:
        """Deletes its previous segment (then reads it back: NOT_FOUND on purpose) or creates
        one: at most one of its own at a time."""
        if self.segment_id:
            segment_id, self.segment_id = self.segment_id, ""
            deleted = self.calls(
                "segmentation", "DeleteSegment", spb.DeleteSegmentRequest(segment_id=segment_id)
            )
            if deleted is not None:
                gone = self.calls(
                    "segmentation",
                    "GetSegment",
                    spb.GetSegmentRequest(segment_id=segment_id),
                    expected=("SEGMENT_NOT_FOUND",),
                )
                if gone is not None:
                    self.calls.fail("segmentation", "GetSegment", "a deleted segment came back")
            return
        segment = spb.Segment(
            name=f"load campaign {uuid.uuid4().hex[:8]}", condition=self._condition()
        )
        created = self.calls(
            "segmentation", "CreateSegment", spb.CreateSegmentRequest(segment=segment)
        )
        if created is not None:
            self.segment_id = created.segment.segment_id

    def toggle_promotion(self) -> None:
        paused = self.calls(
            "bonus", "PausePromotion", bpb.PausePromotionRequest(promotion_id=self.promotion_id)
        )
        if paused is None:
            return
        resume = bpb.UpdatePromotionRequest(
            promotion=bpb.Promotion(
                promotion_id=self.promotion_id, status=bpb.PROMOTION_STATUS_ACTIVE
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["status"]),
        )
        self.calls("bonus", "UpdatePromotion", resume)

    def toggle_campaign(self) -> None:
        ended = ("CAMPAIGN_ENDED",)
        request = apb.PauseCampaignRequest(campaign_id=self.campaign_id)
        if self.calls("ads", "PauseCampaign", request, expected=ended) is not None:
            resume = apb.ResumeCampaignRequest(campaign_id=self.campaign_id)
            self.calls("ads", "ResumeCampaign", resume, expected=ended)


# caller type → its share of the users (a web shop's traffic dominates)
CALLERS: dict[type[Caller], int] = {WebShop: 12, AdServer: 4, Desk: 3, Marketing: 1}


def start(caller: Caller) -> bool:
    """A caller's own set-up (sign-up, its promotion and campaign); False when it failed."""
    if isinstance(caller, WebShop):
        return caller.sign_up()
    if isinstance(caller, Marketing):
        return caller.set_up()
    return True


def shares(users: int) -> list[type[Caller]]:
    """`users` caller types in the proportions of CALLERS, at least one of each when there
    are enough users (the largest share gives way)."""
    total = sum(CALLERS.values())
    counts = {kind: max(1, round(users * weight / total)) for kind, weight in CALLERS.items()}
    while sum(counts.values()) > users:
        largest = max(counts, key=lambda kind: counts[kind])
        if counts[largest] == 1:  # fewer users than caller types: the first types only
            return list(CALLERS)[:users]
        counts[largest] -= 1
    counts[WebShop] += users - sum(counts.values())
    return [kind for kind, count in counts.items() for _ in range(count)]
