"""The recommend service end to end (the walk-through of docs/recommend.md): a catalogue, a
showcase mixing "bought together" with best sellers, purchases tracked on profiles feeding
it, a cart that changes the shelf at once, a cold-start shelf, similar items, an item
going out of stock, erasure; hostile input and scopes."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator

import grpc
import pytest
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as ppb
from backcrm.recommend.v1 import recommend_service_pb2 as pb
from backcrm.segmentation.v1 import condition_pb2 as c
from backcrm.segmentation.v1 import segmentation_service_pb2 as spb
from google.protobuf import field_mask_pb2, struct_pb2

from services.recommend.models import HistoryRow
from tests.e2e.conftest import Suite
from tests.e2e.helpers import email, error_reason, field_violations, purchase, rpc_error
from tests.support import BACKENDS, Backend, backend_settings, count_rows, eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    # A generous deadline for segmentation: the test machine is shared and slow, and a
    # degraded answer is tested on its own (tests/unit/test_recommend_handlers.py).
    with backend_settings(
        request.param,
        tmp_path_factory.mktemp(request.param),
        recommend_segment_timeout_seconds=5.0,
    ) as b:
        yield b


def uid() -> str:
    return uuid.uuid4().hex[:10]


async def test_a_showcase_from_purchases_with_a_cart_and_a_cold_start(suite: Suite) -> None:
    tag = uid()
    tea, cup, pen, ink, lamp = (f"{name}-{tag}" for name in ("tea", "cup", "pen", "ink", "lamp"))
    shop = suite.client("channel")
    upserted = await shop.recommend.UpsertItems(
        pb.UpsertItemsRequest(
            items=[
                pb.Item(sku=tea, title="Tea", category="drinks", available=True),
                pb.Item(sku=cup, title="Cup", category="kitchen", available=True),
                pb.Item(sku=pen, title="Pen", category="office", available=True),
                pb.Item(sku=ink, title="Ink", category="office", available=True),
                pb.Item(sku=lamp, title="Lamp", category="home", available=True),
                pb.Item(
                    sku=f"bad-{tag}",
                    price=common_pb2.Money(currency="GBP", units_micros=-5),
                ),
            ]
        )
    )
    assert (upserted.created, upserted.updated) == (5, 0)
    assert [(r.index, r.field) for r in upserted.rejected] == [(5, "items[5].price.units_micros")]

    admin = suite.client().recommend
    showcase = (
        await admin.CreateShowcase(
            pb.CreateShowcaseRequest(
                showcase=pb.Showcase(
                    name="With your cart",
                    strategies=[
                        pb.StrategyWeight(strategy=pb.STRATEGY_BOUGHT_TOGETHER, weight=3.0),
                        pb.StrategyWeight(strategy=pb.STRATEGY_POPULAR, weight=1.0),
                    ],
                    filters=pb.ShowcaseFilters(exclude_in_cart=True),
                    fallback=[pb.STRATEGY_POPULAR, pb.STRATEGY_NEW],
                )
            )
        )
    ).showcase
    customers = [email(f"{uid()}@example.com") for _ in range(3)]
    events = [
        purchase(f"o-{uid()}", customers[0], f"o1-{tag}", (tea, "drinks", 1, 1), (cup, "k", 2, 1)),
        purchase(f"o-{uid()}", customers[1], f"o2-{tag}", (pen, "office", 1, 1), (ink, "o", 1, 1)),
        purchase(f"o-{uid()}", customers[2], f"o3-{tag}", (tea, "drinks", 1, 1), (cup, "k", 1, 1)),
    ]
    tracked = await suite.client("shop").profile.TrackEvents(ppb.TrackEventsRequest(events=events))
    assert tracked.accepted == 3
    await suite.settled()

    async def shelf(cart: list[str], who: str = "") -> pb.GetRecommendationsResponse:
        return await shop.recommend.GetRecommendations(
            pb.GetRecommendationsRequest(
                customer=common_pb2.CustomerRef(customer_id=who) if who else None,
                showcase_id=showcase.showcase_id,
                context=common_pb2.Context(cart=[common_pb2.CartLine(sku=s) for s in cart]),
                limit=3,
            )
        )

    with_tea = await shelf([tea])
    assert with_tea.items[0].sku == cup
    assert with_tea.items[0].reason.strategy == pb.STRATEGY_BOUGHT_TOGETHER
    assert with_tea.items[0].reason.because_sku == tea
    assert with_tea.items[0].item.title == "Cup"
    with_pen = await shelf([pen])  # the cart changes the shelf at once
    assert with_pen.items[0].sku == ink and with_pen.items[0].reason.because_sku == pen
    cold = await shelf([])
    assert len(cold.items) == 3 and len({i.sku for i in cold.items}) == 3
    assert cold.items == (await shelf([])).items  # deterministic

    buyer = tracked.customer_ids[0]
    mine = await shelf([], buyer)
    assert mine.customer_id == buyer and mine.items[0].sku in {tea, cup}

    similar = await shop.recommend.GetSimilarItems(pb.GetSimilarItemsRequest(sku=tea, limit=5))
    assert similar.items[0].sku == cup and similar.items[0].reason.because_sku == tea
    assert tea not in {i.sku for i in similar.items}

    out = await shop.recommend.UpsertItems(
        pb.UpsertItemsRequest(items=[pb.Item(sku=cup, title="Cup", category="kitchen")])
    )
    assert out.updated == 1
    assert cup not in {i.sku for i in (await shelf([tea])).items}  # sold out: never served

    listed = await shop.recommend.ListItems(pb.ListItemsRequest(page_size=2, category="office"))
    assert [i.sku for i in listed.items] == [ink, pen] and not listed.next_page_token

    await suite.client().profile.DeleteProfile(ppb.DeleteProfileRequest(customer=customers[0]))
    await suite.settled()
    assert await count_rows(suite.resources.sessions, (HistoryRow,), buyer) == 0


async def test_hostile_input_and_scopes(suite: Suite) -> None:
    admin = suite.client().recommend
    shop = suite.client("channel").recommend
    err = await rpc_error(
        admin.CreateShowcase(
            pb.CreateShowcaseRequest(
                showcase=pb.Showcase(
                    name="x",
                    strategies=[pb.StrategyWeight(strategy=pb.STRATEGY_NEW, weight=math.nan)],
                )
            )
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err) == ["showcase.strategies[0].weight"]
    err = await rpc_error(shop.ListShowcases(pb.ListShowcasesRequest(page_token="forged")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err) == ["page_token"]
    err = await rpc_error(shop.ListItems(pb.ListItemsRequest(page_size=5000)))
    assert field_violations(err) == ["page_size"]
    err = await rpc_error(
        shop.GetRecommendations(pb.GetRecommendationsRequest(showcase_id="nope", limit=5))
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(err)[0] == "SHOWCASE_NOT_FOUND"
    err = await rpc_error(
        shop.GetRecommendations(pb.GetRecommendationsRequest(showcase_id="x", limit=1000))
    )
    assert field_violations(err) == ["limit"]
    err = await rpc_error(shop.GetSimilarItems(pb.GetSimilarItemsRequest(sku="nope")))
    assert error_reason(err)[0] == "ITEM_NOT_FOUND"
    err = await rpc_error(
        shop.CreateShowcase(
            pb.CreateShowcaseRequest(
                showcase=pb.Showcase(
                    name="x", strategies=[pb.StrategyWeight(strategy=pb.STRATEGY_NEW, weight=1)]
                )
            )
        )
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_popular_in_the_customers_segment(suite: Suite) -> None:
    tag = uid()
    region = f"north-{tag}"
    boots, sandals = f"boots-{tag}", f"sandals-{tag}"
    shop = suite.client("channel")
    await shop.recommend.UpsertItems(
        pb.UpsertItemsRequest(
            items=[
                pb.Item(sku=boots, title="Boots", category="shoes", available=True),
                pb.Item(sku=sandals, title="Sandals", category="shoes", available=True),
            ]
        )
    )
    segment = (
        await suite.client().segmentation.CreateSegment(
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
    showcase = (
        await suite.client().recommend.CreateShowcase(
            pb.CreateShowcaseRequest(
                showcase=pb.Showcase(
                    name="Popular near you",
                    strategies=[
                        pb.StrategyWeight(strategy=pb.STRATEGY_POPULAR_IN_SEGMENT, weight=1.0)
                    ],
                    segment_boosts={segment.segment_id: 2.0},
                    fallback=[pb.STRATEGY_POPULAR],
                )
            )
        )
    ).showcase
    profiles = suite.client("shop").profile

    async def person(where: str) -> common_pb2.CustomerRef:
        ref = email(f"{uid()}@example.com")
        await profiles.UpsertProfile(
            ppb.UpsertProfileRequest(
                customer=ref,
                attributes=ppb.Attributes(region=where),
                update_mask=field_mask_pb2.FieldMask(paths=["attributes.region"]),
            )
        )
        return ref

    northerner, southerners = await person(region), [await person("south") for _ in range(3)]
    member = (await profiles.GetProfile(ppb.GetProfileRequest(customer=northerner))).profile
    seg = suite.client().segmentation

    async def is_member() -> bool:
        reply = await seg.EvaluateSegments(
            spb.EvaluateSegmentsRequest(
                customer=common_pb2.CustomerRef(customer_id=member.customer_id),
                segment_ids=[segment.segment_id],
            )
        )
        return segment.segment_id in reply.segment_ids

    await eventually(is_member, "the northerner to be in the segment")
    events = [purchase(f"o-{uid()}", northerner, f"n-{tag}", (boots, "shoes", 1, 1))]
    events += [
        purchase(f"o-{uid()}", who, f"s{i}-{tag}", (sandals, "shoes", 1, 1))
        for i, who in enumerate(southerners)
    ]
    await profiles.TrackEvents(ppb.TrackEventsRequest(events=events))
    await suite.settled()
    reply = await shop.recommend.GetRecommendations(
        pb.GetRecommendationsRequest(
            customer=common_pb2.CustomerRef(customer_id=member.customer_id),
            showcase_id=showcase.showcase_id,
            limit=2,
        )
    )
    top = reply.items[0]
    assert top.sku == boots  # popular in the segment, though sandals sell more overall
    assert top.reason.strategy == pb.STRATEGY_POPULAR_IN_SEGMENT
    assert top.reason.because_segment_id == segment.segment_id
