"""The ads service end to end (the walk-through of docs/ads.md): a partner campaign targeted
at a segment with a cap of 2 a day — a member sees it twice and then not, a non-member never
does, a click shows in the stats and on the profile; pause; hostile tokens; explain."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from backcrm.ads.v1 import ads_service_pb2 as pb
from backcrm.bonus.v1 import bonus_service_pb2 as bpb
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as ppb
from backcrm.segmentation.v1 import condition_pb2 as c
from backcrm.segmentation.v1 import segmentation_service_pb2 as spb
from google.protobuf import duration_pb2, field_mask_pb2, struct_pb2

from services.ads.app import AdsApp
from tests.e2e.conftest import Suite
from tests.e2e.helpers import error_reason, field_violations, rpc_error
from tests.support import BACKENDS, Backend, backend_settings, eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    # A generous deadline for segmentation: the test machine is shared and slow, and a
    # degraded answer is tested on its own (tests/unit/test_ads_handlers.py).
    with backend_settings(
        request.param, tmp_path_factory.mktemp(request.param), ads_segment_timeout_seconds=5.0
    ) as b:
        yield b


def uid() -> str:
    return uuid.uuid4().hex[:10]


def customer(customer_id: str) -> common_pb2.CustomerRef:
    return common_pb2.CustomerRef(customer_id=customer_id)


async def profile_in(suite: Suite, region: str) -> str:
    reply = await suite.client().profile.UpsertProfile(
        ppb.UpsertProfileRequest(
            customer=common_pb2.CustomerRef(
                identity=common_pb2.Identity(
                    type=common_pb2.IDENTITY_TYPE_EMAIL, value=f"{uid()}@example.com"
                )
            ),
            attributes=ppb.Attributes(region=region),
            update_mask=field_mask_pb2.FieldMask(paths=["attributes.region"]),
        )
    )
    return str(reply.profile.customer_id)


async def test_a_capped_partner_campaign_for_a_segment(suite: Suite) -> None:
    region = f"north-{uid()}"
    member = await profile_in(suite, region)
    stranger = await profile_in(suite, "south")
    seg = suite.client().segmentation
    segment = (
        await seg.CreateSegment(
            spb.CreateSegmentRequest(
                segment=spb.Segment(
                    name="Northerners",
                    condition=c.Condition(
                        property=c.PropertyCondition(
                            path="attributes.region",
                            op=c.OPERATOR_EQ,
                            value=struct_pb2.Value(string_value=region),
                        )
                    ),
                )
            )
        )
    ).segment
    await suite.settled()

    admin = suite.client().ads
    placement = f"home-{uid()}.top"
    campaign = (
        await admin.CreateCampaign(
            pb.CreateCampaignRequest(
                campaign=pb.Campaign(
                    name="Acme boots",
                    brand="acme",
                    creatives=[
                        pb.Creative(
                            title="Boots for the north",
                            click_url="https://acme.example/boots",
                            placements=[placement],
                        )
                    ],
                    targeting=pb.Targeting(include_segment_ids=[segment.segment_id]),
                    frequency_cap=pb.FrequencyCap(
                        impressions=2, period=duration_pb2.Duration(seconds=86_400)
                    ),
                    priority=200,
                )
            )
        )
    ).campaign
    assert campaign.status == pb.CAMPAIGN_STATUS_ACTIVE
    shop = suite.client("channel").ads
    where = common_pb2.Context(placement=placement, channel=common_pb2.CHANNEL_WEB)

    async def select(who: str) -> pb.SelectAdsResponse:
        return await shop.SelectAds(pb.SelectAdsRequest(customer=customer(who), context=where))

    async def is_member() -> bool:
        # Asked of segmentation, not by selecting: a selection holds room in the cap.
        reply = await seg.EvaluateSegments(
            spb.EvaluateSegmentsRequest(customer=customer(member), segment_ids=[segment.segment_id])
        )
        return segment.segment_id in reply.segment_ids

    await eventually(is_member, "the member to be in the segment")
    tokens = []
    for _ in range(2):
        reply = await select(member)
        (slot,) = reply.slots
        assert (slot.campaign_id, slot.brand) == (campaign.campaign_id, "acme")
        assert not reply.targeting_degraded
        shown = await shop.RecordInteraction(
            pb.RecordInteractionRequest(
                tracking_token=slot.tracking_token, type=pb.INTERACTION_TYPE_IMPRESSION
            )
        )
        assert shown.counted and not shown.over_limit
        tokens.append(slot.tracking_token)
    assert list((await select(member)).slots) == []  # capped: twice a day
    assert list((await select(stranger)).slots) == []  # not a member
    anonymous = await shop.SelectAds(pb.SelectAdsRequest(context=where))
    assert list(anonymous.slots) == [] and anonymous.customer_id == ""

    click = pb.RecordInteractionRequest(tracking_token=tokens[0], type=pb.INTERACTION_TYPE_CLICK)
    assert (await shop.RecordInteraction(click)).counted
    assert not (await shop.RecordInteraction(click)).counted  # a retry counts once
    stats = await shop.GetCampaignStats(
        pb.GetCampaignStatsRequest(campaign_id=campaign.campaign_id)
    )
    assert (stats.impressions, stats.clicks, stats.reach, stats.budget_left) == (2, 1, 1, -1)
    days = list(stats.days)  # one, unless the test ran across midnight UTC
    assert sum(d.impressions for d in days) == 2 and sum(d.clicks for d in days) == 1
    assert all(len(d.date) == 10 for d in days)

    converted = pb.RecordInteractionRequest(
        tracking_token=tokens[1], type=pb.INTERACTION_TYPE_CONVERSION
    )
    assert (await shop.RecordInteraction(converted)).counted

    async def on_profile() -> bool:
        got = await suite.client().profile.GetProfile(
            ppb.GetProfileRequest(customer=customer(member))
        )
        kinds = [e.type for e in got.profile.recent_events]
        # a conversion is a CUSTOM event ("ad_conversion" in its properties, which
        # recent_events does not show)
        return (
            kinds.count(ppb.EVENT_TYPE_AD_IMPRESSION) == 2
            and ppb.EVENT_TYPE_AD_CLICK in kinds
            and kinds.count(ppb.EVENT_TYPE_CUSTOM) == 1
        )

    await eventually(on_profile, "the impressions, click and conversion on the profile", timeout=20)

    explained = await admin.SelectAds(
        pb.SelectAdsRequest(customer=customer(member), context=where, explain=True)
    )
    reasons = {e.campaign_id: e.reason for e in explained.excluded}
    assert reasons[campaign.campaign_id] == pb.EXCLUSION_REASON_FREQUENCY_CAP


async def test_pause_resume_list_and_hostile_calls(suite: Suite) -> None:
    admin = suite.client().ads
    placement = f"side-{uid()}"
    made = (
        await admin.CreateCampaign(
            pb.CreateCampaignRequest(
                campaign=pb.Campaign(
                    name="House", brand=f"us-{uid()}", creatives=[pb.Creative(title="Hi")]
                )
            )
        )
    ).campaign
    shop = suite.client("channel").ads
    select = pb.SelectAdsRequest(
        context=common_pb2.Context(placement=placement, channel=common_pb2.CHANNEL_WEB)
    )
    (slot,) = (await shop.SelectAds(select)).slots
    # every interaction becomes a profile event, which names its channel: the request must
    nameless = pb.SelectAdsRequest(context=common_pb2.Context(placement=placement))
    assert field_violations(await rpc_error(shop.SelectAds(nameless))) == ["context.channel"]
    paused = await admin.PauseCampaign(pb.PauseCampaignRequest(campaign_id=made.campaign_id))
    assert paused.campaign.status == pb.CAMPAIGN_STATUS_PAUSED
    again = await admin.PauseCampaign(pb.PauseCampaignRequest(campaign_id=made.campaign_id))
    assert again.campaign.updated_at == paused.campaign.updated_at  # idempotent
    assert list((await shop.SelectAds(select)).slots) == []
    listed = await shop.ListCampaigns(
        pb.ListCampaignsRequest(brand=made.brand, status=pb.CAMPAIGN_STATUS_PAUSED)
    )
    assert [x.campaign_id for x in listed.campaigns] == [made.campaign_id]
    await admin.ResumeCampaign(pb.ResumeCampaignRequest(campaign_id=made.campaign_id))
    assert len((await shop.SelectAds(select)).slots) == 1

    kid, body, mac = slot.tracking_token.split(".")
    for forged in (f"{kid}.{body}x.{mac}", "garbage", f"{kid}.{body}.{mac[::-1]}"):
        err = await rpc_error(
            shop.RecordInteraction(
                pb.RecordInteractionRequest(tracking_token=forged, type=pb.INTERACTION_TYPE_CLICK)
            )
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_reason(err) == ("INVALID_TRACKING_TOKEN", "ads.backcrm")
        assert "tracking_token" in field_violations(err)
    err = await rpc_error(shop.SelectAds(pb.SelectAdsRequest(explain=True)))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = await rpc_error(
        shop.CreateCampaign(pb.CreateCampaignRequest(campaign=pb.Campaign(name="x")))
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = await rpc_error(
        admin.CreateCampaign(
            pb.CreateCampaignRequest(
                campaign=pb.Campaign(
                    name="x",
                    creatives=[pb.Creative(title="t", click_url="ftp://x")],
                    budget=pb.Budget(total_impressions=-5),
                )
            )
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "campaign.creatives[0].click_url" in field_violations(err)
    err = await rpc_error(
        admin.CreateCampaign(
            pb.CreateCampaignRequest(
                campaign=pb.Campaign(
                    name="x",
                    creatives=[pb.Creative(title="t")],
                    targeting=pb.Targeting(include_segment_ids=["no-such-segment"]),
                )
            )
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err) == ["campaign.targeting.include_segment_ids[0]"]
    err = await rpc_error(admin.GetCampaign(pb.GetCampaignRequest(campaign_id="nope")))
    assert error_reason(err) == ("CAMPAIGN_NOT_FOUND", "ads.backcrm")
    forged_page = await rpc_error(admin.ListCampaigns(pb.ListCampaignsRequest(page_token="x")))
    assert forged_page.code() == grpc.StatusCode.INVALID_ARGUMENT


def _nan_cart() -> c.Condition:
    return c.Condition(
        context=c.ContextCondition(
            path="cart.total", op=c.OPERATOR_GT, value=struct_pb2.Value(number_value=float("nan"))
        )
    )


@pytest.mark.parametrize(
    ("campaign", "field"),
    [
        (pb.Campaign(targeting=pb.Targeting(context=_nan_cart())), "campaign.targeting.context"),
        (pb.Campaign(budget=pb.Budget(total_impressions=2**62)), "campaign.budget"),
        (pb.Campaign(budget=pb.Budget(daily_impressions=-1)), "campaign.budget"),
        (
            pb.Campaign(
                frequency_cap=pb.FrequencyCap(
                    impressions=3, period=duration_pb2.Duration(seconds=-5)
                )
            ),
            "campaign.frequency_cap.period",
        ),
        (pb.Campaign(weight=2**31 - 1), "campaign.weight"),
        (pb.Campaign(priority=-(2**31)), "campaign.priority"),
    ],
    ids=["nan-condition", "huge-budget", "negative-daily", "negative-period", "weight", "prio"],
)
async def test_hostile_numbers_name_the_field(
    suite: Suite, campaign: pb.Campaign, field: str
) -> None:
    whole = pb.Campaign(name="x", creatives=[pb.Creative(title="t")])
    whole.MergeFrom(campaign)
    err = await rpc_error(
        suite.client().ads.CreateCampaign(pb.CreateCampaignRequest(campaign=whole))
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert any(f.startswith(field) for f in field_violations(err)), field_violations(err)


async def test_a_rewarded_click_credits_bonus_points_once(suite: Suite) -> None:
    """The ad-loyalty reward through the suite: a click on a campaign that rewards clicks
    puts its points in the customer's bonus account (ads's own token, scope bonus:reward),
    once however often the click is reported; the conversion earns nothing here."""
    program = (
        await suite.client().bonus.CreateProgram(
            bpb.CreateProgramRequest(
                program=bpb.Program(name="Club", currency="GBP", points_per_unit=1.0)
            )
        )
    ).program
    who = await profile_in(suite, "anywhere")
    await suite.client().bonus.Enroll(
        bpb.EnrollRequest(program_id=program.program_id, customer=customer(who))
    )
    placement = f"home-{uid()}.top"
    reward = pb.Reward(
        program_id=program.program_id, points=25, interaction_type=pb.INTERACTION_TYPE_CLICK
    )
    campaign = (
        await suite.client().ads.CreateCampaign(
            pb.CreateCampaignRequest(
                campaign=pb.Campaign(
                    name="Click for points",
                    brand="acme",
                    creatives=[pb.Creative(title="Boots", placements=[placement])],
                    reward=reward,
                    # above the other tests' campaigns that fit any placement
                    priority=1_000_000,
                )
            )
        )
    ).campaign
    assert campaign.reward == reward
    shop = suite.client("channel").ads
    (slot,) = (
        await shop.SelectAds(
            pb.SelectAdsRequest(
                customer=customer(who),
                context=common_pb2.Context(placement=placement, channel=common_pb2.CHANNEL_WEB),
            )
        )
    ).slots
    assert slot.campaign_id == campaign.campaign_id
    for kind in (
        pb.INTERACTION_TYPE_CLICK,
        pb.INTERACTION_TYPE_CLICK,
        pb.INTERACTION_TYPE_CONVERSION,
    ):
        await shop.RecordInteraction(
            pb.RecordInteractionRequest(tracking_token=slot.tracking_token, type=kind)
        )

    async def balance() -> int:
        reply = await suite.client().bonus.GetAccount(
            bpb.GetAccountRequest(program_id=program.program_id, customer=customer(who))
        )
        return int(reply.account.balance)

    async def credited() -> bool:
        return await balance() > 0

    await eventually(credited, "the reward in the bonus account", timeout=20)
    transactions = (
        await suite.client().bonus.ListTransactions(
            bpb.ListTransactionsRequest(program_id=program.program_id, customer=customer(who))
        )
    ).transactions
    rewards = [t for t in transactions if t.points == 25]
    assert len(rewards) == 1 and await balance() == 25

    # a customer not enrolled: bonus refuses (NOT_FOUND over gRPC), ads records it, no retry
    stranger = await profile_in(suite, "anywhere")
    (other,) = (
        await shop.SelectAds(
            pb.SelectAdsRequest(
                customer=customer(stranger),
                context=common_pb2.Context(placement=placement, channel=common_pb2.CHANNEL_WEB),
            )
        )
    ).slots
    await shop.RecordInteraction(
        pb.RecordInteractionRequest(
            tracking_token=other.tracking_token, type=pb.INTERACTION_TYPE_CLICK
        )
    )
    assert suite.running is not None
    ads = suite.running.app(AdsApp).deps
    token_id = ads.signer.verify(other.tracking_token, ads.clock()).token_id

    async def refusal() -> str | None:
        async with ads.uow() as uow:
            return await uow.reward_noted(token_id, "CLICK")

    async def refused() -> bool:
        return await refusal() is not None

    await eventually(refused, "the refusal recorded", timeout=20)
    assert await refusal() == "REFUSED NOT_FOUND ACCOUNT_NOT_FOUND"

    # RewardPoints is a narrow scope: the shop's token (bonus:write) cannot grant points,
    # and a reward never takes points away
    err = await rpc_error(
        suite.client("shop").bonus.RewardPoints(
            bpb.RewardPointsRequest(
                program_id=program.program_id,
                customer=customer(who),
                points=5,
                reason="x",
                idempotency_key=uid(),
            )
        )
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = await rpc_error(
        suite.client().bonus.RewardPoints(
            bpb.RewardPointsRequest(
                program_id=program.program_id,
                customer=customer(who),
                points=-5,
                reason="x",
                idempotency_key=uid(),
            )
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and field_violations(err) == ["points"]
