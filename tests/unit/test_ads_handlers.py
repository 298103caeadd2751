"""The ads use cases against the in-memory fakes: campaigns, selection, tokens, counting."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from backcrm.ads.v1 import ads_service_pb2 as pb
from backcrm.common.v1 import common_pb2
from backcrm.common.v1.common_pb2 import EventEnvelope
from backcrm.segmentation.v1 import condition_pb2
from google.protobuf import field_mask_pb2, struct_pb2

from libs.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from libs.topics import ADS_INTERACTIONS
from services.ads import handlers as h
from services.ads import render
from services.ads.catalog import CampaignCache
from services.ads.domain import Campaign, Creative, placement_matches
from services.ads.tokens import Signer, Ticket, dev_keys
from services.ads.translate import campaign_in, campaign_patch_in, context_in
from tests.unit.ads_fakes import (
    FakeAdsStore,
    FakeAdsUnitOfWork,
    FakeCounters,
    FakeInterests,
    FakeRewards,
    FakeSegments,
    FakeSignals,
)
from tests.unit.fakes import FakeClock

T0 = 1_700_000_000.0


@dataclass
class World:
    store: FakeAdsStore = field(default_factory=FakeAdsStore)
    clock: FakeClock = field(default_factory=lambda: FakeClock(T0))
    signals: FakeSignals = field(default_factory=FakeSignals)
    counters: FakeCounters = field(default_factory=FakeCounters)
    signer: Signer = field(default_factory=lambda: Signer(dev_keys("unit"), "dev"))
    interests: FakeInterests = field(default_factory=FakeInterests)
    segments: FakeSegments = field(default_factory=FakeSegments)
    rewards: FakeRewards = field(default_factory=FakeRewards)
    deps: h.AdsDeps = field(init=False)

    def __post_init__(self) -> None:
        def uow() -> FakeAdsUnitOfWork:
            return FakeAdsUnitOfWork(self.store)

        self.deps = h.AdsDeps(
            uow=uow,
            clock=self.clock,
            signals=self.signals,
            counters=self.counters,
            cache=CampaignCache(uow),
            signer=self.signer,
            interests=self.interests,
            segments=self.segments,
            rewards=self.rewards,
            rng=random.Random(7),
        )

    async def campaign(self, **changes: object) -> Campaign:
        base: dict[str, object] = {
            "campaign_id": "",
            "name": "Spring",
            "brand": "acme",
            "creatives": (Creative("", "Hello", placements=("home.*",)),),
        }
        return await h.create_campaign(self.deps, Campaign(**{**base, **changes}))  # type: ignore[arg-type]

    async def select(
        self, customer: str = "c1", placement: str = "home.top", limit: int = 5, **ctx: object
    ) -> h.Selection:
        ctx.setdefault("channel", common_pb2.CHANNEL_WEB)
        context = context_in(common_pb2.Context(placement=placement, **ctx), self.clock())  # type: ignore[arg-type]
        return await h.select_ads(self.deps, customer, context, limit, explain=True)


def served(selection: h.Selection) -> list[str]:
    return [slot.campaign.campaign_id for slot in selection.slots]


def why(selection: h.Selection, campaign_id: str) -> str:
    return next(e.reason for e in selection.excluded if e.campaign_id == campaign_id)


# ------------------------------------------------------------------------------ validation


def _proto(**changes: object) -> pb.Campaign:
    campaign = pb.Campaign(
        name="Spring",
        brand="acme",
        creatives=[pb.Creative(title="Hi", click_url="https://acme.example/x")],
    )
    for key, value in changes.items():
        if isinstance(value, list):
            getattr(campaign, key).extend(value)
        else:
            getattr(campaign, key).CopyFrom(value) if hasattr(value, "DESCRIPTOR") else setattr(
                campaign, key, value
            )
    return campaign


@pytest.mark.parametrize(
    ("campaign", "field"),
    [
        (pb.Campaign(name="x"), "campaign.creatives"),
        (
            _proto(creatives=[pb.Creative(title="t", click_url="javascript:alert(1)")]),
            "campaign.creatives[1].click_url",
        ),
        (
            _proto(creatives=[pb.Creative(title="t", image_url="/relative.png")]),
            "campaign.creatives[1].image_url",
        ),
        (_proto(creatives=[pb.Creative(title="")]), "campaign.creatives[1].title"),
        (_proto(budget=pb.Budget(total_impressions=-1)), "campaign.budget.total_impressions"),
        (_proto(budget=pb.Budget(daily_impressions=2**62)), "campaign.budget.daily_impressions"),
        (_proto(frequency_cap=pb.FrequencyCap(impressions=2)), "campaign.frequency_cap.period"),
        (_proto(weight=-3), "campaign.weight"),
        (_proto(status=pb.CAMPAIGN_STATUS_ENDED), "campaign.status"),
        (_proto(status=77), "campaign.status"),
        (
            _proto(targeting=pb.Targeting(include_segment_ids=["ok", "no spaces"])),
            "campaign.targeting.include_segment_ids[1]",
        ),
        (
            _proto(
                targeting=pb.Targeting(
                    context=condition_pb2.Condition(
                        context=condition_pb2.ContextCondition(
                            path="cart.total",
                            op=condition_pb2.OPERATOR_GT,
                            value=struct_pb2.Value(number_value=float("nan")),
                        )
                    )
                )
            ),
            "campaign.targeting.context",
        ),
        (_proto(reward=pb.Reward(points=5)), "campaign.reward.program_id"),
        (
            _proto(reward=pb.Reward(program_id="no spaces", points=5)),
            "campaign.reward.program_id",
        ),
        (
            _proto(reward=pb.Reward(program_id="p1", interaction_type=pb.INTERACTION_TYPE_CLICK)),
            "campaign.reward.points",
        ),
        (
            _proto(
                reward=pb.Reward(
                    program_id="p1", points=2**62, interaction_type=pb.INTERACTION_TYPE_CLICK
                )
            ),
            "campaign.reward.points",
        ),
        (
            _proto(
                reward=pb.Reward(
                    program_id="p1", points=5, interaction_type=pb.INTERACTION_TYPE_IMPRESSION
                )
            ),
            "campaign.reward.interaction_type",
        ),
        (
            _proto(reward=pb.Reward(program_id="p1", points=5, interaction_type=9)),
            "campaign.reward.interaction_type",
        ),
    ],
)
def test_bad_campaigns_are_invalid_argument_naming_the_field(
    campaign: pb.Campaign, field: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        campaign_in(campaign)
    assert any(path.startswith(field) for path, _ in info.value.violations), info.value.violations


def test_a_schedule_that_ends_before_it_starts_is_refused() -> None:
    schedule = pb.Schedule()
    schedule.start_time.seconds = 2000
    schedule.end_time.seconds = 1000
    with pytest.raises(InvalidArgument) as info:
        campaign_in(_proto(schedule=schedule))
    assert info.value.violations[0][0] == "campaign.schedule.end_time"
    schedule.end_time.seconds = 10**13  # past what a Timestamp holds
    with pytest.raises(InvalidArgument):
        campaign_in(_proto(schedule=schedule))


def test_an_update_mask_names_mutable_fields_only() -> None:
    with pytest.raises(InvalidArgument) as info:
        campaign_patch_in(
            pb.Campaign(campaign_id="c"), field_mask_pb2.FieldMask(paths=["created_at"])
        )
    assert info.value.violations[0][0] == "update_mask"
    _, fields = campaign_patch_in(
        pb.Campaign(campaign_id="c", targeting=pb.Targeting(include_segment_ids=["s1"])),
        field_mask_pb2.FieldMask(paths=["targeting"]),
    )
    assert fields == {"include_segment_ids": ("s1",), "exclude_segment_ids": (), "context": b""}


def test_placements_match_exactly_or_by_prefix() -> None:
    assert placement_matches("home.top", "home.top")
    assert placement_matches("home.*", "home.top") and placement_matches("home.*", "home.a.b")
    assert not placement_matches("home.*", "homepage") and not placement_matches("home.*", "home")


# ------------------------------------------------------------------------------ campaigns


async def test_segment_ids_that_name_no_segment_are_refused_naming_the_entry() -> None:
    w = World()
    w.segments.known = {"vip", "staff"}
    with pytest.raises(InvalidArgument) as info:
        await w.campaign(include_segment_ids=("vip", "ghost"), exclude_segment_ids=("gone",))
    assert [f for f, _ in info.value.violations] == [
        "campaign.targeting.include_segment_ids[1]",
        "campaign.targeting.exclude_segment_ids[0]",
    ]
    assert info.value.reason == "SEGMENT_NOT_FOUND"
    c = await w.campaign(include_segment_ids=("vip",))
    with pytest.raises(InvalidArgument):
        await h.update_campaign(w.deps, c.campaign_id, {"exclude_segment_ids": ("ghost",)})
    w.segments.down = True  # segmentation not answering: the write goes ahead
    assert (await w.campaign(include_segment_ids=("ghost",))).include_segment_ids == ("ghost",)


async def test_pause_and_resume_are_idempotent_and_publish_only_changes() -> None:
    w = World()
    c = await w.campaign()
    paused = await h.set_status(w.deps, c.campaign_id, "PAUSED")
    again = await h.set_status(w.deps, c.campaign_id, "PAUSED")
    assert paused.status == again.status == "PAUSED"
    assert w.store.state.published == [f"{c.campaign_id}:ACTIVE", f"{c.campaign_id}:PAUSED"]
    assert (await h.set_status(w.deps, c.campaign_id, "ACTIVE")).status == "ACTIVE"
    with pytest.raises(NotFound) as info:
        await h.set_status(w.deps, "nope", "PAUSED")
    assert info.value.reason == "CAMPAIGN_NOT_FOUND"


async def test_an_ended_campaign_cannot_be_paused_resumed_or_restarted() -> None:
    w = World()
    c = await w.campaign(end_time=T0 + 60)
    w.clock.advance(61)
    assert (await h.get_campaign(w.deps, c.campaign_id)).status_at(w.clock()) == "ENDED"
    for status in ("PAUSED", "ACTIVE"):
        with pytest.raises(FailedPrecondition) as info:
            await h.set_status(w.deps, c.campaign_id, status)
        assert info.value.reason == "CAMPAIGN_ENDED"
    with pytest.raises(FailedPrecondition):
        await h.update_campaign(w.deps, c.campaign_id, {"status": "ACTIVE"})
    with pytest.raises(FailedPrecondition):
        await h.update_campaign(w.deps, c.campaign_id, {"end_time": T0 + 10**6})


async def test_listing_pages_newest_first_and_filters_by_brand_and_status() -> None:
    w = World()
    made = []
    for i in range(5):
        w.clock.advance(1)
        made.append(await w.campaign(brand="acme" if i % 2 == 0 else "globex"))
    await h.set_status(w.deps, made[0].campaign_id, "PAUSED")
    page, following = await h.list_campaigns(w.deps, "", "acme", None, 2)
    assert [c.campaign_id for c in page] == [made[4].campaign_id, made[2].campaign_id]
    rest, end = await h.list_campaigns(w.deps, "", "acme", following, 2)
    assert [c.campaign_id for c in rest] == [made[0].campaign_id] and end is None
    paused, _ = await h.list_campaigns(w.deps, "PAUSED", "", None, 10)
    assert [c.campaign_id for c in paused] == [made[0].campaign_id]


# ------------------------------------------------------------------------------ selection


async def test_selection_ranks_by_priority_and_gives_one_slot_per_campaign() -> None:
    w = World()
    house = await w.campaign(priority=0)
    sponsor = await w.campaign(priority=200)
    standard = await w.campaign(priority=100)
    picked = await w.select(limit=2)
    assert served(picked) == [sponsor.campaign_id, standard.campaign_id]
    assert why(picked, house.campaign_id) == "RANKED_OUT"


async def test_placement_schedule_and_status_exclude_with_reasons() -> None:
    w = World()
    elsewhere = await w.campaign(creatives=(Creative("", "x", placements=("cart.side",)),))
    later = await w.campaign(start_time=T0 + 3600)
    paused = await w.campaign()
    await h.set_status(w.deps, paused.campaign_id, "PAUSED")
    picked = await w.select()
    assert served(picked) == []
    assert why(picked, elsewhere.campaign_id) == "PLACEMENT"
    assert why(picked, later.campaign_id) == "SCHEDULE"
    assert why(picked, paused.campaign_id) == "STATUS"


async def test_segments_target_members_and_anonymous_customers_get_untargeted_only() -> None:
    w = World()
    w.signals.members = {"member": {"vip"}, "excluded": {"vip", "staff"}}
    targeted = await w.campaign(include_segment_ids=("vip",), exclude_segment_ids=("staff",))
    open_ = await w.campaign()
    assert set(served(await w.select("member"))) == {targeted.campaign_id, open_.campaign_id}
    assert served(await w.select("stranger")) == [open_.campaign_id]
    excluded = await w.select("excluded")
    assert why(excluded, targeted.campaign_id) == "TARGETING"
    anonymous = await w.select("")
    assert served(anonymous) == [open_.campaign_id] and not anonymous.degraded


async def test_segmentation_down_degrades_to_untargeted_campaigns_and_says_so() -> None:
    w = World()
    w.signals.members = {"member": {"vip"}}
    w.signals.down = True
    targeted = await w.campaign(include_segment_ids=("vip",))
    open_ = await w.campaign()
    picked = await w.select("member")
    assert served(picked) == [open_.campaign_id] and picked.degraded
    assert why(picked, targeted.campaign_id) == "TARGETING"


def _cart_over(total: float) -> condition_pb2.Condition:
    return condition_pb2.Condition(
        context=condition_pb2.ContextCondition(
            path="cart.total",
            op=condition_pb2.OPERATOR_GT,
            value=struct_pb2.Value(number_value=total),
        )
    )


async def test_a_context_condition_is_evaluated_locally_without_asking_segmentation() -> None:
    w = World()
    c = await w.campaign(context=_cart_over(50).SerializeToString(deterministic=True))
    small = common_pb2.CartLine(
        sku="a", category="x", quantity=1, unit_price=common_pb2.Money(units_micros=10_000_000)
    )
    big = replace_line(small, 100_000_000)
    assert served(await w.select("", cart=[small])) == []
    assert served(await w.select("", cart=[big])) == [c.campaign_id]
    assert w.signals.calls == 0


def replace_line(line: common_pb2.CartLine, micros: int) -> common_pb2.CartLine:
    out = common_pb2.CartLine()
    out.CopyFrom(line)
    out.unit_price.units_micros = micros
    return out


async def test_a_customer_condition_is_asked_of_segmentation() -> None:
    w = World()
    condition = condition_pb2.Condition(
        property=condition_pb2.PropertyCondition(
            path="attributes.region",
            op=condition_pb2.OPERATOR_EQ,
            value=struct_pb2.Value(string_value="north"),
        )
    )
    c = await w.campaign(context=condition.SerializeToString(deterministic=True))
    assert served(await w.select("c1")) == []
    w.signals.verdicts[condition.SerializeToString(deterministic=True)] = True
    assert served(await w.select("c1")) == [c.campaign_id]
    assert served(await w.select("")) == []  # anonymous: a customer condition cannot hold


async def test_interest_in_a_campaigns_categories_raises_its_share() -> None:
    w = World()
    boots = await w.campaign(categories=("boots",))
    await w.campaign()  # the other one, no categories
    w.interests.by_customer["fan"] = {"boots": 4.0}  # boost 1 + 4: five times the weight

    async def share(customer: str) -> float:
        firsts = [served(await w.select(customer, limit=1))[0] for _ in range(1000)]
        return firsts.count(boots.campaign_id) / len(firsts)

    assert 0.78 <= await share("fan") <= 0.88  # 5/6 expected
    assert 0.45 <= await share("stranger") <= 0.55  # no interest: 1/2
    w.interests.down = True
    assert 0.45 <= await share("fan") <= 0.55  # profile down: the campaigns' own weights


# ------------------------------------------------------------------------------ caps, budgets


async def impression(w: World, slot: h.Slot) -> h.Recorded:
    return await h.record_interaction(w.deps, slot.token, "IMPRESSION", None)


async def test_a_frequency_cap_of_two_shows_twice_then_not() -> None:
    w = World()
    c = await w.campaign(cap_impressions=2, cap_period=86_400.0)
    for _ in range(2):
        (slot,) = (await w.select("c1")).slots
        assert (await impression(w, slot)).counted
    capped = await w.select("c1")
    assert served(capped) == [] and why(capped, c.campaign_id) == "FREQUENCY_CAP"
    assert served(await w.select("c2")) == [c.campaign_id]  # per customer
    w.clock.advance(86_401)
    assert served(await w.select("c1")) == [c.campaign_id]  # a rolling window


async def test_a_budget_counts_reservations_and_a_lapsed_one_frees_its_room() -> None:
    w = World()
    c = await w.campaign(total_impressions=1)
    first = await w.select("c1")
    held = await w.select("c2")
    assert served(first) == [c.campaign_id] and why(held, c.campaign_id) == "BUDGET"
    w.clock.advance(w.deps.reservation_seconds + 1)  # never shown: the hold lapses
    (again,) = (await w.select("c2")).slots
    assert (await impression(w, again)).counted
    # the total budget is spent: the campaign has ENDED (final), and is served no more
    assert (await h.get_campaign(w.deps, c.campaign_id)).status == "ENDED"
    after = await w.select("c3")
    assert served(after) == [] and after.excluded == []  # gone from the cache
    with pytest.raises(FailedPrecondition):
        await h.set_status(w.deps, c.campaign_id, "ACTIVE")
    late = await impression(w, first.slots[0])  # the first selection's impression, too late
    assert late.counted and late.over_limit
    _, stats = await h.campaign_stats(w.deps, c.campaign_id)
    assert stats.impressions == 1


async def test_counters_down_serve_the_unlimited_campaigns_only() -> None:
    w = World()
    limited = [await w.campaign(total_impressions=5, priority=9) for _ in range(3)]
    free = await w.campaign()
    w.counters.down = True
    picked = await w.select("c1", limit=4)
    assert served(picked) == [free.campaign_id]
    assert {why(picked, c.campaign_id) for c in limited} == {"BUDGET"}
    assert w.counters.calls == 1  # asked once, not once per limited campaign


# ------------------------------------------------------------------------------ tracking


async def test_an_interaction_counts_once_per_token_and_type() -> None:
    w = World()
    c = await w.campaign(total_impressions=10)
    (slot,) = (await w.select("c1")).slots
    assert (await impression(w, slot)).counted
    assert not (await impression(w, slot)).counted
    assert (await h.record_interaction(w.deps, slot.token, "CLICK", None)).counted
    assert not (await h.record_interaction(w.deps, slot.token, "CLICK", None)).counted
    _, stats = await h.campaign_stats(w.deps, c.campaign_id)
    assert (stats.impressions, stats.clicks, stats.reach, stats.impressions_today) == (1, 1, 1, 1)
    assert stats.creatives == {slot.creative.creative_id: [1, 1, 0]}
    assert stats.days == {int(T0 // 86_400): [1, 1, 0]}


def test_forged_altered_expired_and_foreign_tokens_are_invalid() -> None:
    signer = Signer({"k1": "secret-1", "k2": "secret-2"}, "k2")
    ticket = Ticket("t", "c", "r", "u", "home.top", 1, T0, T0 + 100)
    token = signer.sign(ticket)
    assert signer.verify(token, T0) == ticket
    kid, body, mac = token.split(".")
    forged = [
        "",
        "garbage",
        f"{kid}.{body}.{mac[:-2]}AA",
        f"{kid}.{body[:-2]}xx.{mac}",
        f"k1.{body}.{mac}",  # another key's id on this signature
        f"nope.{body}.{mac}",
        Signer({"k2": "other"}, "k2").sign(ticket),
        "\x00\x07bad\n" + "x" * 3000,
    ]
    for bad in forged:
        with pytest.raises(InvalidArgument) as info:
            signer.verify(bad, T0)
        assert info.value.reason == "INVALID_TRACKING_TOKEN"
        assert info.value.violations[0][0] == "tracking_token"
    with pytest.raises(InvalidArgument, match="expired"):
        signer.verify(token, T0 + 100)
    # rotation: tokens signed with the old current key still verify while it is kept
    rotated = Signer({"k1": "secret-1", "k2": "secret-2", "k3": "s3"}, "k3")
    assert rotated.verify(token, T0) == ticket


async def test_an_identity_profile_cannot_resolve_selects_anonymously_and_says_so() -> None:
    from libs.errors import Unavailable
    from services.ads.entrypoint import AdsServicer

    w = World()
    open_ = await w.campaign()
    await w.campaign(include_segment_ids=("vip",))

    async def profile_down(ref: common_pb2.CustomerRef, field: str) -> str:
        raise Unavailable("profile service: UNAVAILABLE")

    request = pb.SelectAdsRequest(
        customer=common_pb2.CustomerRef(
            identity=common_pb2.Identity(type=common_pb2.IDENTITY_TYPE_EMAIL, value="a@b.c")
        ),
        context=common_pb2.Context(placement="home.top", channel=common_pb2.CHANNEL_WEB),
        limit=5,
    )
    reply = await AdsServicer(w.deps, profile_down).SelectAds(request, None)
    assert [s.campaign_id for s in reply.slots] == [open_.campaign_id]
    assert reply.targeting_degraded and reply.customer_id == ""


# ------------------------------------------------------------------------------ rewards


def test_a_reward_reads_and_renders_and_unset_means_none() -> None:
    reward = pb.Reward(program_id="p1", points=50, interaction_type=pb.INTERACTION_TYPE_CLICK)
    campaign = campaign_in(_proto(reward=reward))
    assert campaign.reward_for("CLICK") == ("p1", 50)
    assert campaign.reward_for("CONVERSION") is None and campaign.reward_for("IMPRESSION") is None
    assert campaign_in(_proto()).reward_for("CLICK") is None
    assert render.campaign_to_proto(campaign, T0).reward == reward
    stored = Campaign.from_json("x", campaign.to_json(), "ACTIVE", T0, T0)
    assert stored.reward_for("CLICK") == ("p1", 50)
    _, fields = campaign_patch_in(
        _proto(campaign_id="x"), field_mask_pb2.FieldMask(paths=["reward"])
    )
    assert fields == {"reward_program_id": "", "reward_points": 0, "reward_type": ""}


async def test_a_rewarded_click_carries_the_reward_and_other_interactions_do_not() -> None:
    w = World()
    await w.campaign(reward_program_id="p1", reward_points=50, reward_type="CLICK")
    (slot,) = (await w.select("c1")).slots
    for kind in ("IMPRESSION", "CLICK", "CONVERSION"):
        assert (await h.record_interaction(w.deps, slot.token, kind, None)).counted
    rewards = {k: i.reward for (_, k), i in w.store.state.interactions.items()}
    assert rewards == {"IMPRESSION": None, "CLICK": ("p1", 50), "CONVERSION": None}
    token_id = token_of(w, slot)
    for kind, reward in (("CLICK", ("p1", 50, pb.INTERACTION_TYPE_CLICK)), ("IMPRESSION", None)):
        topic, body = render.encode_interaction(w.store.state.interactions[(token_id, kind)])[:2]
        event = ADS_INTERACTIONS.unpack(EventEnvelope.FromString(body))
        assert topic == ADS_INTERACTIONS.name and event.token_id == token_id
        got = event.reward
        assert ((got.program_id, got.points, got.interaction_type) if got.points else None) == (
            reward
        )


def token_of(w: World, slot: h.Slot) -> str:
    return w.signer.verify(slot.token, w.clock()).token_id


async def _grant(w: World, token_id: str, customer: str = "c1") -> str:
    return await h.grant_reward(w.deps, token_id, "CLICK", "camp", customer, "p1", 50)


async def test_a_reward_credits_once_per_token_whatever_the_redeliveries() -> None:
    w = World()
    await w.campaign(reward_program_id="p1", reward_points=50, reward_type="CLICK")
    w.rewards.enrolled.add(("p1", "c1"))
    (slot,) = (await w.select("c1")).slots
    await h.record_interaction(w.deps, slot.token, "CLICK", None)
    outcomes = {await _grant(w, token_of(w, slot)) for _ in range(3)}  # redelivered thrice
    assert w.rewards.balance("p1", "c1") == 50 and len(w.rewards.credits) == 1
    assert outcomes == {f"REWARDED tx-{h.reward_key(token_of(w, slot), 'CLICK')}"}
    async with w.deps.uow() as uow:
        assert await uow.reward_noted(token_of(w, slot), "CLICK") == outcomes.pop()


async def test_bonus_down_raises_unavailable_and_the_retry_credits_once() -> None:
    w = World()
    w.rewards.enrolled.add(("p1", "c1"))
    await w.campaign(reward_program_id="p1", reward_points=50, reward_type="CLICK")
    (slot,) = (await w.select("c1")).slots
    await h.record_interaction(w.deps, slot.token, "CLICK", None)
    w.rewards.down = True
    for _ in range(3):
        with pytest.raises(Unavailable):
            await _grant(w, token_of(w, slot))
    async with w.deps.uow() as uow:
        assert await uow.reward_noted(token_of(w, slot), "CLICK") is None  # nothing recorded yet
    w.rewards.down = False
    await _grant(w, token_of(w, slot))
    assert w.rewards.balance("p1", "c1") == 50


async def test_a_refused_reward_is_recorded_not_raised() -> None:
    w = World()  # c1 is not enrolled in p1
    await w.campaign(reward_program_id="p1", reward_points=50, reward_type="CLICK")
    (slot,) = (await w.select("c1")).slots
    await h.record_interaction(w.deps, slot.token, "CLICK", None)
    assert await _grant(w, token_of(w, slot)) == "REFUSED NOT_FOUND ACCOUNT_NOT_FOUND"
    async with w.deps.uow() as uow:
        assert await uow.reward_noted(token_of(w, slot), "CLICK") == (
            "REFUSED NOT_FOUND ACCOUNT_NOT_FOUND"
        )
    assert w.rewards.credits == {}
