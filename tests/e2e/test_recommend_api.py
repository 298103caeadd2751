"""The recommend service end to end (the walk-through of docs/recommend.md): a catalogue, a
showcase mixing "bought together" with best sellers, purchases tracked on profiles feeding
it, a cart that changes the shelf at once, a cold-start shelf, similar items, an item
going out of stock, erasure; hostile input and scopes."""

from __future__ import annotations

import math
import uuid

import grpc
import pytest
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as ppb
from backcrm.recommend.v1 import recommend_service_pb2 as pb

from services.recommend.models import HistoryRow
from tests.e2e.conftest import Suite
from tests.e2e.helpers import email, error_reason, field_violations, purchase, rpc_error
from tests.support import count_rows

pytestmark = pytest.mark.e2e


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
