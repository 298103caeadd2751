"""The bonus service end to end: a program, a purchase that earns, a redemption, retries."""

from __future__ import annotations

import uuid

import grpc
import pytest
from backcrm.bonus.v1 import bonus_service_pb2 as pb
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as ppb
from backcrm.segmentation.v1 import condition_pb2 as cpb
from backcrm.segmentation.v1 import segmentation_service_pb2 as spb
from google.protobuf import field_mask_pb2, struct_pb2, timestamp_pb2

from libs.validation import encode_page_token
from tests.e2e.conftest import Suite
from tests.e2e.helpers import (
    email,
    error_reason,
    event,
    field_violations,
    purchase,
    rpc_error,
)
from tests.support import eventually

pytestmark = pytest.mark.e2e

UNIT = 1_000_000


def uid() -> str:
    return uuid.uuid4().hex[:10]


def gbp(micros: int) -> common_pb2.Money:
    return common_pb2.Money(currency="GBP", units_micros=micros)


def an_order(order_id: str, *lines: tuple[str, int, int]) -> common_pb2.Order:
    return common_pb2.Order(
        order_id=order_id,
        lines=[
            common_pb2.CartLine(sku=f"sku-{c}", category=c, quantity=q, unit_price=gbp(p))
            for c, q, p in lines
        ],
        total=gbp(sum(q * p for _, q, p in lines)),
    )


async def new_program(suite: Suite, **fields: object) -> pb.Program:
    defaults: dict[str, object] = {
        "welcome_points": 100,
        "point_value": gbp(10_000),
        "tiers": [pb.Tier(name="silver", threshold_points=500)],
    }
    program = pb.Program(
        name="Club",
        currency="GBP",
        points_per_unit=1.0,
        **{**defaults, **fields},  # type: ignore[arg-type]
    )
    reply = await suite.client().bonus.CreateProgram(pb.CreateProgramRequest(program=program))
    return reply.program


async def test_a_program_reads_back_and_updates_by_mask(suite: Suite) -> None:
    api = suite.client().bonus
    created = await new_program(suite, category_multipliers={"shoes": 2.0})
    got = (await api.GetProgram(pb.GetProgramRequest(program_id=created.program_id))).program
    assert got == created and got.category_multipliers["shoes"] == 2.0
    change = pb.Program(program_id=created.program_id, welcome_points=5, name="ignored")
    updated = (
        await api.UpdateProgram(
            pb.UpdateProgramRequest(
                program=change, update_mask=field_mask_pb2.FieldMask(paths=["welcome_points"])
            )
        )
    ).program
    assert (updated.welcome_points, updated.name) == (5, "Club")
    err = await rpc_error(api.GetProgram(pb.GetProgramRequest(program_id="nope")))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(err) == ("PROGRAM_NOT_FOUND", "bonus.backcrm")


async def test_bad_programs_are_refused_naming_the_field(suite: Suite) -> None:
    api = suite.client().bonus
    bad = pb.Program(name="x", currency="GBP", points_per_unit=float("nan"))
    err = await rpc_error(api.CreateProgram(pb.CreateProgramRequest(program=bad)))
    assert field_violations(err) == ["program.points_per_unit"]
    bad = pb.Program(
        name="x", currency="GBP", points_per_unit=1, point_value=common_pb2.Money(currency="EUR")
    )
    err = await rpc_error(api.CreateProgram(pb.CreateProgramRequest(program=bad)))
    assert field_violations(err) == ["program.point_value.currency"]


async def test_earn_redeem_retry_and_reverse(suite: Suite) -> None:
    program = await new_program(suite)
    shop = suite.client("shop").bonus
    who = email(f"{uid()}@example.com")
    # The customer is known to the profile service; bonus resolves the email through it.
    await suite.client().profile.TrackEvents(
        ppb.TrackEventsRequest(events=[purchase(uid(), who, uid(), ("s", "c", 1, UNIT))])
    )
    enrolled = await shop.Enroll(pb.EnrollRequest(program_id=program.program_id, customer=who))
    assert (enrolled.account.balance, enrolled.welcome.points) == (100, 100)

    accrue = pb.AccrueRequest(
        program_id=program.program_id,
        customer=who,
        order=an_order(f"o-{uid()}", ("books", 2, 12_500_000)),
        idempotency_key=f"acc-{uid()}",
    )
    earned = await shop.Accrue(accrue)
    assert (earned.transaction.points, earned.account.balance) == (25, 125)
    again = await shop.Accrue(accrue)  # a retry: the first result, nothing moves
    assert again.transaction == earned.transaction and again.account.balance == 125

    changed = pb.AccrueRequest()
    changed.CopyFrom(accrue)
    changed.order.lines[0].quantity = 3
    err = await rpc_error(shop.Accrue(changed))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(err) == ("IDEMPOTENCY_KEY_REUSED", "bonus.backcrm")

    redeem = pb.RedeemRequest(
        program_id=program.program_id, customer=who, points=120, idempotency_key=f"red-{uid()}"
    )
    spent = await shop.Redeem(redeem)
    assert (spent.account.balance, spent.value.units_micros) == (5, 1_200_000)
    err = await rpc_error(
        shop.Redeem(
            pb.RedeemRequest(
                program_id=program.program_id, customer=who, points=6, idempotency_key=uid()
            )
        )
    )
    assert error_reason(err) == ("INSUFFICIENT_POINTS", "bonus.backcrm")

    back = await shop.Reverse(
        pb.ReverseRequest(
            transaction_id=earned.transaction.transaction_id,
            idempotency_key=f"rev-{uid()}",
            reason="returned",
        )
    )
    assert (back.transaction.points, back.unrecovered_points, back.account.balance) == (-5, 20, 0)

    listed = await shop.ListTransactions(
        pb.ListTransactionsRequest(program_id=program.program_id, customer=who, page_size=2)
    )
    rest = await shop.ListTransactions(
        pb.ListTransactionsRequest(
            program_id=program.program_id, customer=who, page_token=listed.next_page_token
        )
    )
    types = [t.type for t in [*listed.transactions, *rest.transactions]]
    assert types == [
        pb.TRANSACTION_TYPE_REVERSAL,
        pb.TRANSACTION_TYPE_REDEMPTION,
        pb.TRANSACTION_TYPE_ACCRUAL,
        pb.TRANSACTION_TYPE_WELCOME,
    ]
    assert rest.next_page_token == ""


async def test_forged_page_tokens_and_wrong_currencies_are_invalid(suite: Suite) -> None:
    program = await new_program(suite)
    shop = suite.client("shop").bonus
    customer = common_pb2.CustomerRef(customer_id=uid())
    for token in ("garbage", encode_page_token("x", "elsewhere")):
        err = await rpc_error(
            shop.ListTransactions(
                pb.ListTransactionsRequest(
                    program_id=program.program_id, customer=customer, page_token=token
                )
            )
        )
        assert field_violations(err) == ["page_token"]
    euros = an_order("o1", ("", 1, UNIT))
    euros.total.currency = "EUR"
    for line in euros.lines:
        line.unit_price.currency = "EUR"
    err = await rpc_error(
        shop.Accrue(
            pb.AccrueRequest(
                program_id=program.program_id, customer=customer, order=euros, idempotency_key="k"
            )
        )
    )
    assert field_violations(err) == ["order.total.currency"]
    assert error_reason(err) == ("CURRENCY_MISMATCH", "bonus.backcrm")


async def test_program_writes_need_admin(suite: Suite) -> None:
    shop = suite.client("shop").bonus
    err = await rpc_error(shop.CreateProgram(pb.CreateProgramRequest()))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


def cart(*lines: tuple[str, int, int]) -> common_pb2.Context:
    return common_pb2.Context(
        cart=[
            common_pb2.CartLine(sku=sku, category="c", quantity=q, unit_price=gbp(p))
            for sku, q, p in lines
        ]
    )


def over(units: float) -> cpb.Condition:
    return cpb.Condition(
        context=cpb.ContextCondition(
            path="cart.total", op=cpb.OPERATOR_GTE, value=struct_pb2.Value(number_value=units)
        )
    )


async def test_a_promotion_prices_a_cart_and_a_quote_counts_at_the_accrual(suite: Suite) -> None:
    api = suite.client().bonus
    program = await new_program(suite)
    made = await api.CreatePromotion(
        pb.CreatePromotionRequest(
            promotion=pb.Promotion(
                program_id=program.program_id,
                name="Ten off over fifty",
                condition=over(50),
                effect=pb.Effect(type=pb.EFFECT_TYPE_PERCENT_OFF, percent=10),
                budget=pb.PromotionBudget(max_uses=1),
                exclusive=True,
            )
        )
    )
    promotion = made.promotion
    assert promotion.stacking == pb.STACKING_MODE_EXCLUSIVE and promotion.exclusive
    customer = common_pb2.CustomerRef(customer_id=f"c-{uid()}")
    short = await api.QuoteOffer(
        pb.QuoteOfferRequest(
            program_id=program.program_id, customer=customer, context=cart(("a", 1, 45 * UNIT))
        )
    )
    assert not short.applied
    assert [m.missing_amount.units_micros for m in short.near_misses] == [5 * UNIT]
    quote = await api.QuoteOffer(
        pb.QuoteOfferRequest(
            program_id=program.program_id,
            customer=customer,
            context=cart(("a", 2, 30 * UNIT)),
            coupon_codes=["NOPE"],
        )
    )
    assert [a.promotion_id for a in quote.applied] == [promotion.promotion_id]
    assert (quote.subtotal.units_micros, quote.total.units_micros) == (60 * UNIT, 54 * UNIT)
    assert quote.lines[0].personal_price.units_micros == 27 * UNIT
    assert list(quote.invalid_coupon_codes) == ["NOPE"] and not quote.degraded
    accrued = await api.Accrue(
        pb.AccrueRequest(
            program_id=program.program_id,
            customer=customer,
            order=an_order(f"o-{uid()}", ("c", 2, 27 * UNIT)),
            idempotency_key=f"k-{uid()}",
            quote_id=quote.quote_id,
        )
    )
    assert accrued.transaction.points == 54
    got = (
        await api.GetPromotion(pb.GetPromotionRequest(promotion_id=promotion.promotion_id))
    ).promotion
    assert (got.uses, got.status, got.discount_given.units_micros) == (
        1,
        pb.PROMOTION_STATUS_ENDED,
        6 * UNIT,
    )
    # the budget is spent: a second order with the same kind of quote is refused whole
    other = common_pb2.CustomerRef(customer_id=f"c-{uid()}")
    second = await api.QuoteOffer(
        pb.QuoteOfferRequest(
            program_id=program.program_id, customer=other, context=cart(("a", 2, 30 * UNIT))
        )
    )
    assert not second.applied  # ENDED: every cache dropped it


async def test_bad_promotions_and_quotes_are_refused_naming_the_field(suite: Suite) -> None:
    api = suite.client().bonus
    program = await new_program(suite)

    async def create(**fields: object) -> list[str]:
        base: dict[str, object] = {
            "program_id": program.program_id,
            "name": "x",
            "effect": pb.Effect(type=pb.EFFECT_TYPE_PERCENT_OFF, percent=5),
            **fields,
        }
        err = await rpc_error(
            api.CreatePromotion(pb.CreatePromotionRequest(promotion=pb.Promotion(**base)))  # type: ignore[arg-type]
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        return field_violations(err)

    assert await create(
        effect=pb.Effect(type=pb.EFFECT_TYPE_PERCENT_OFF, percent=float("nan"))
    ) == ["promotion.effect.percent"]
    assert await create(effect=pb.Effect(type=pb.EFFECT_TYPE_PERCENT_OFF, percent=101)) == [
        "promotion.effect.percent"
    ]
    assert await create(effect=pb.Effect(type=99)) == ["promotion.effect.type"]
    assert await create(
        effect=pb.Effect(
            type=pb.EFFECT_TYPE_AMOUNT_OFF,
            amount=common_pb2.Money(currency="EUR", units_micros=UNIT),
        )
    ) == ["promotion.effect.amount.currency"]
    assert await create(effect=pb.Effect(type=pb.EFFECT_TYPE_AMOUNT_OFF, amount=gbp(-1))) == [
        "promotion.effect.amount.units_micros"
    ]
    assert await create(
        schedule=pb.Schedule(
            start_time=timestamp_pb2.Timestamp(seconds=2_000_000_000),
            end_time=timestamp_pb2.Timestamp(seconds=1_900_000_000),
        )
    ) == ["promotion.schedule.end_time"]
    assert await create(stacking=pb.STACKING_MODE_STACKABLE, exclusive=True) == [
        "promotion.exclusive"
    ]
    assert await create(status=pb.PROMOTION_STATUS_ENDED) == ["promotion.status"]
    assert await create(holdout_percent=float("inf")) == ["promotion.holdout_percent"]
    assert await create(condition=cpb.Condition(context=cpb.ContextCondition(path="nope"))) != []
    err = await rpc_error(
        api.QuoteOffer(
            pb.QuoteOfferRequest(program_id=program.program_id, context=cart(("a", 0, UNIT)))
        )
    )
    assert field_violations(err) == ["context.cart[0].quantity"]
    err = await rpc_error(
        api.Accrue(
            pb.AccrueRequest(
                program_id=program.program_id,
                customer=common_pb2.CustomerRef(customer_id="c"),
                order=an_order(f"o-{uid()}", ("c", 1, UNIT)),
                idempotency_key=f"k-{uid()}",
                quote_id="forged.quote",
            )
        )
    )
    assert field_violations(err) == ["quote_id"]
    token = encode_page_token([1, "x", 3], f"bonus.promotions/{program.program_id}/")
    err = await rpc_error(
        api.ListPromotions(
            pb.ListPromotionsRequest(program_id=program.program_id, page_token=token)
        )
    )
    assert field_violations(err) == ["page_token"]


async def test_explain_needs_admin_and_lists_what_did_not_apply(suite: Suite) -> None:
    admin = suite.client().bonus
    program = await new_program(suite)
    paused = (
        await admin.CreatePromotion(
            pb.CreatePromotionRequest(
                promotion=pb.Promotion(
                    program_id=program.program_id,
                    name="coupon only",
                    effect=pb.Effect(type=pb.EFFECT_TYPE_GIFT, gift_sku="socks"),
                    coupon_code="GIFT",
                )
            )
        )
    ).promotion
    request = pb.QuoteOfferRequest(
        program_id=program.program_id, context=cart(("a", 1, UNIT)), explain=True
    )
    err = await rpc_error(suite.client("shop").bonus.QuoteOffer(request))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    explained = await admin.QuoteOffer(request)
    assert [(n.promotion_id, n.reason) for n in explained.not_applied] == [
        (paused.promotion_id, "coupon missing")
    ]
    assert explained.customer_id == ""  # no customer: the public price
    with_code = await suite.client("shop").bonus.QuoteOffer(
        pb.QuoteOfferRequest(
            program_id=program.program_id, context=cart(("a", 1, UNIT)), coupon_codes=["gift"]
        )
    )
    assert [(g.sku, g.quantity) for g in with_code.gifts] == [("socks", 1)]


async def test_a_deleted_profile_loses_its_loyalty_account(suite: Suite) -> None:
    program = await new_program(suite)
    who = email(f"{uid()}@example.com")
    admin = suite.client()
    await admin.profile.TrackEvents(
        ppb.TrackEventsRequest(events=[purchase(uid(), who, uid(), ("s", "c", 1, UNIT))])
    )
    enrolled = await admin.bonus.Enroll(
        pb.EnrollRequest(program_id=program.program_id, customer=who)
    )
    customer = common_pb2.CustomerRef(customer_id=enrolled.account.customer_id)
    await admin.profile.DeleteProfile(ppb.DeleteProfileRequest(customer=who))
    await suite.settled()
    account = (
        await admin.bonus.GetAccount(
            pb.GetAccountRequest(program_id=program.program_id, customer=customer)
        )
    ).account
    assert not account.enrolled
    err = await rpc_error(
        admin.bonus.Enroll(pb.EnrollRequest(program_id=program.program_id, customer=customer))
    )
    assert error_reason(err) == ("CUSTOMER_NOT_FOUND", "bonus.backcrm")


async def test_a_regular_customer_gets_a_promotion_a_new_one_does_not_until_it_is_paused(
    suite: Suite,
) -> None:
    """The walk-through of docs/bonus.md: segmentation answers the profile condition."""
    admin = suite.client()
    api = admin.bonus
    program = await new_program(suite)
    regular = cpb.Condition(
        property=cpb.PropertyCondition(
            path="purchase_summary.orders",
            op=cpb.OPERATOR_GTE,
            value=struct_pb2.Value(number_value=1),
        )
    )
    promotion = (
        await api.CreatePromotion(
            pb.CreatePromotionRequest(
                promotion=pb.Promotion(
                    program_id=program.program_id,
                    name="Regulars: 10 % off",
                    condition=regular,
                    effect=pb.Effect(type=pb.EFFECT_TYPE_PERCENT_OFF, percent=10),
                )
            )
        )
    ).promotion
    known, new = email(f"{uid()}@example.com"), email(f"{uid()}@example.com")
    await admin.profile.TrackEvents(
        ppb.TrackEventsRequest(events=[purchase(uid(), known, uid(), ("s", "c", 1, UNIT))])
    )
    await suite.settled()

    async def quote(who: common_pb2.CustomerRef) -> pb.QuoteOfferResponse:
        return await api.QuoteOffer(
            pb.QuoteOfferRequest(
                program_id=program.program_id, customer=who, context=cart(("a", 1, 20 * UNIT))
            )
        )

    async def regular_gets_it() -> bool:
        reply = await quote(known)
        return [a.promotion_id for a in reply.applied] == [promotion.promotion_id]

    await eventually(regular_gets_it, "the regular customer's quote to apply the promotion")
    got = await quote(known)
    assert got.total.units_micros == 18 * UNIT
    assert got.applied[0].reason == "purchase_summary.orders GTE 1"
    newcomer = await quote(new)
    assert not newcomer.applied and newcomer.total.units_micros == 20 * UNIT
    await api.PausePromotion(pb.PausePromotionRequest(promotion_id=promotion.promotion_id))

    async def gone() -> bool:
        return not (await quote(known)).applied

    await eventually(gone, "the paused promotion to leave the quotes")


async def test_huge_carts_and_rates_are_invalid_argument_not_internal(suite: Suite) -> None:
    api = suite.client().bonus
    program = (
        await api.CreateProgram(
            pb.CreateProgramRequest(
                program=pb.Program(
                    name="Generous",
                    currency="GBP",
                    points_per_unit=1_000_000.0,
                    category_multipliers={"c": 1000.0},
                    point_value=gbp(10**9),
                )
            )
        )
    ).program
    await api.CreatePromotion(
        pb.CreatePromotionRequest(
            promotion=pb.Promotion(
                program_id=program.program_id,
                name="x1000",
                effect=pb.Effect(type=pb.EFFECT_TYPE_POINTS_MULTIPLIER, multiplier=1000),
            )
        )
    )
    err = await rpc_error(
        api.QuoteOffer(
            pb.QuoteOfferRequest(
                program_id=program.program_id, context=cart(("a", 1_000_000, 10**15))
            )
        )
    )
    assert field_violations(err) == ["context.cart[0].quantity"]
    many = common_pb2.Context(
        cart=[
            common_pb2.CartLine(sku="a", category="c", quantity=1, unit_price=gbp(10**15))
            for _ in range(1000)
        ]
    )
    err = await rpc_error(
        api.QuoteOffer(pb.QuoteOfferRequest(program_id=program.program_id, context=many))
    )
    assert field_violations(err) == ["context.cart"]


async def test_tracked_purchases_earn_and_returns_take_back_once(suite: Suite) -> None:
    """Purchases reach bonus as profile events: only once enrolled, once per event."""
    program = await new_program(suite)
    who = email(f"{uid()}@example.com")
    admin = suite.client()
    before = purchase(uid(), who, f"o-{uid()}", ("s", "c", 1, 7 * UNIT))
    await admin.profile.TrackEvents(ppb.TrackEventsRequest(events=[before]))
    await suite.settled()  # recorded before the customer joined: it earns nothing
    enrolled = await admin.bonus.Enroll(
        pb.EnrollRequest(program_id=program.program_id, customer=who)
    )
    customer = common_pb2.CustomerRef(customer_id=enrolled.account.customer_id)
    order_id = f"o-{uid()}"
    bought = purchase(uid(), who, order_id, ("a", "c", 2, 10 * UNIT), ("b", "c", 1, 5 * UNIT))
    returned = purchase(uid(), who, f"r-{uid()}", ("a", "c", -1, 10 * UNIT))
    returned.properties.update({"original_order_id": order_id})
    for _ in range(2):  # the second time, profile drops the known event ids
        await admin.profile.TrackEvents(ppb.TrackEventsRequest(events=[bought]))
        await suite.settled()
        await admin.profile.TrackEvents(ppb.TrackEventsRequest(events=[returned]))
        await suite.settled()
    request = pb.ListTransactionsRequest(program_id=program.program_id, customer=customer)
    history = (await admin.bonus.ListTransactions(request)).transactions
    assert [(t.type, t.points) for t in reversed(history)] == [
        (pb.TRANSACTION_TYPE_WELCOME, 100),
        (pb.TRANSACTION_TYPE_ACCRUAL, 25),
        (pb.TRANSACTION_TYPE_REVERSAL, -10),
    ]
    assert history[1].order_id == order_id and history[0].idempotency_key.startswith("event:")
    account = (
        await admin.bonus.GetAccount(
            pb.GetAccountRequest(program_id=program.program_id, customer=customer)
        )
    ).account
    assert (account.balance, account.tier_points) == (115, 15)


async def test_the_tier_reaches_the_profile_and_a_segment_on_it(suite: Suite) -> None:
    """Points earned -> TierChanged on bonus.tiers -> SetTraits bonus.tier (with bonus's own
    token) -> profile.changed -> segmentation: a segment on traits.bonus.tier has the customer."""
    tier = f"gold_{uid()}"
    program = await new_program(suite, tiers=[pb.Tier(name=tier, threshold_points=20)])
    seg = suite.client().segmentation
    condition = cpb.Condition(
        property=cpb.PropertyCondition(
            path="traits.bonus.tier", op=cpb.OPERATOR_EQ, value=struct_pb2.Value(string_value=tier)
        )
    )
    segment = (
        await seg.CreateSegment(
            spb.CreateSegmentRequest(segment=spb.Segment(name="tiered", condition=condition))
        )
    ).segment

    async def built() -> bool:  # the incremental path follows the data once the build is done
        got = await seg.GetSegment(spb.GetSegmentRequest(segment_id=segment.segment_id))
        return bool(got.segment.state == spb.SEGMENT_STATE_READY)

    await eventually(built, "the segment to become READY", timeout=20)
    who = email(f"{uid()}@example.com")
    admin = suite.client()
    await admin.profile.TrackEvents(ppb.TrackEventsRequest(events=[event(uid(), who)]))
    enrolled = await admin.bonus.Enroll(
        pb.EnrollRequest(program_id=program.program_id, customer=who)
    )
    customer_id = enrolled.account.customer_id
    bought = purchase(uid(), who, f"o-{uid()}", ("a", "c", 3, 10 * UNIT))
    await admin.profile.TrackEvents(ppb.TrackEventsRequest(events=[bought]))
    await suite.settled()
    profile = (
        await admin.profile.GetProfile(
            ppb.GetProfileRequest(customer=common_pb2.CustomerRef(customer_id=customer_id))
        )
    ).profile
    assert profile.traits["bonus.tier"].string_value == tier
    assert profile.traits[f"bonus.tier_{program.program_id}"].string_value == tier

    async def member() -> bool:
        # segmentation follows the trait's profile.changed (on Redis, settled() can return
        # while that last message is still on its way to the group)
        got = await seg.ListMembers(spb.ListMembersRequest(segment_id=segment.segment_id))
        return list(got.customer_ids) == [customer_id]

    await eventually(member, "the segment on traits.bonus.tier to list the customer")


async def test_adjustments_need_admin_and_name_bad_fields(suite: Suite) -> None:
    program = await new_program(suite)
    who = common_pb2.CustomerRef(customer_id=f"c-{uid()}")
    admin = suite.client().bonus
    await admin.Enroll(pb.EnrollRequest(program_id=program.program_id, customer=who))
    request = pb.AdjustPointsRequest(
        program_id=program.program_id,
        customer=who,
        points=-40,
        reason="duplicate welcome",
        idempotency_key=f"adj-{uid()}",
    )
    err = await rpc_error(suite.client("shop").bonus.AdjustPoints(request))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    reply = await admin.AdjustPoints(request)
    assert (reply.transaction.type, reply.transaction.points) == (
        pb.TRANSACTION_TYPE_ADJUSTMENT,
        -40,
    )
    assert reply.account.balance == 60 and reply.transaction.description == "duplicate welcome"
    for field, bad in (("points", {"points": 0}), ("reason", {"reason": ""})):
        wrong = pb.AdjustPointsRequest()
        wrong.CopyFrom(request)
        for name, value in bad.items():
            setattr(wrong, name, value)
        err = await rpc_error(admin.AdjustPoints(wrong))
        assert field_violations(err) == [field]
    err = await rpc_error(admin.AdjustPoints(replace_points(request, -61)))
    assert error_reason(err) == ("INSUFFICIENT_POINTS", "bonus.backcrm")


def replace_points(request: pb.AdjustPointsRequest, points: int) -> pb.AdjustPointsRequest:
    out = pb.AdjustPointsRequest()
    out.CopyFrom(request)
    out.points, out.idempotency_key = points, f"adj-{uid()}"
    return out


async def test_merged_profiles_merge_their_loyalty_accounts_once(suite: Suite) -> None:
    program = await new_program(suite)
    admin = suite.client()
    source, target = email(f"{uid()}@example.com"), email(f"{uid()}@example.com")
    await admin.profile.TrackEvents(
        ppb.TrackEventsRequest(events=[event(uid(), source), event(uid(), target)])
    )
    ids = {}
    for who in (source, target):
        enrolled = await admin.bonus.Enroll(
            pb.EnrollRequest(program_id=program.program_id, customer=who)
        )
        ids[enrolled.account.customer_id] = who
    source_id, target_id = list(ids)
    spent = await admin.bonus.Redeem(
        pb.RedeemRequest(
            program_id=program.program_id, customer=source, points=30, idempotency_key=uid()
        )
    )
    assert spent.account.balance == 70
    await suite.client("merger").profile.MergeProfiles(
        ppb.MergeProfilesRequest(target=target, source=source)
    )
    await suite.settled()
    by_id = common_pb2.CustomerRef(customer_id=target_id)
    account = (
        await admin.bonus.GetAccount(
            pb.GetAccountRequest(program_id=program.program_id, customer=by_id)
        )
    ).account
    assert account.balance == 170
    history = (
        await admin.bonus.ListTransactions(
            pb.ListTransactionsRequest(program_id=program.program_id, customer=by_id)
        )
    ).transactions
    assert sorted(t.type for t in history).count(pb.TRANSACTION_TYPE_TRANSFER_IN) == 1
    assert {t.customer_id for t in history} == {source_id, target_id}
    old = common_pb2.CustomerRef(customer_id=source_id)
    err = await rpc_error(
        admin.bonus.Redeem(
            pb.RedeemRequest(
                program_id=program.program_id, customer=old, points=1, idempotency_key=uid()
            )
        )
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(err) == ("CUSTOMER_MERGED", "bonus.backcrm")
