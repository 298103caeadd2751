"""The pure pricing engine: effects, stacking modes, rounding, points, near misses, explain.

Property tests (hypothesis) hold the arithmetic to its promises: an amount-off spread over
lines sums exactly to the discount and never takes a line below zero; every quote's lines add
up to its total, discount = subtotal - total, and every amount is a whole minor unit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from backcrm.common.v1 import common_pb2
from backcrm.segmentation.v1 import condition_pb2
from google.protobuf import struct_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from services.bonus.domain import Program
from services.bonus.offers import _context_atom
from services.bonus.pricing import (
    CartLine,
    Customer,
    Quote,
    minor_unit_micros,
    price_cart,
    round_half_up,
    spread,
)
from services.bonus.promotions import Compiled, Effect, Promotion, compile_promotion, held_out
from services.bonus.translate import _context

UNIT = 1_000_000
PENNY = 10_000
NOW = 1_700_000_000.0
PROGRAM = Program("prog", "Club", "GBP", 1.0, point_value_micros=10_000)


def promo(pid: str, effect: Effect, **changes: object) -> Compiled:
    fields: dict[str, object] = {
        "promotion_id": pid,
        "program_id": "prog",
        "name": pid,
        "effect": effect,
        "created_at": float(ord(pid[-1])),
        **changes,
    }
    return compile_promotion(Promotion(**fields))  # type: ignore[arg-type]


def cart_total_at_least(units: float) -> bytes:
    return condition_pb2.Condition(
        context=condition_pb2.ContextCondition(
            path="cart.total",
            op=condition_pb2.OPERATOR_GTE,
            value=struct_pb2.Value(number_value=units),
        )
    ).SerializeToString(deterministic=True)


def in_segment(segment_id: str) -> condition_pb2.Condition:
    return condition_pb2.Condition(segment=condition_pb2.SegmentCondition(segment_id=segment_id))


def both(*conditions: condition_pb2.Condition | bytes) -> bytes:
    parts = [
        c if isinstance(c, condition_pb2.Condition) else condition_pb2.Condition.FromString(c)
        for c in conditions
    ]
    return condition_pb2.Condition(
        all_of=condition_pb2.ConditionGroup(conditions=parts)
    ).SerializeToString(deterministic=True)


def quote(
    promotions: Sequence[Compiled],
    cart: Sequence[CartLine],
    customer: Customer | None = None,
    coupons: Sequence[str] = (),
    program: Program = PROGRAM,
) -> Quote:
    context = common_pb2.Context(
        cart=[
            common_pb2.CartLine(
                sku=c.sku,
                category=c.category,
                quantity=c.quantity,
                unit_price=common_pb2.Money(currency="GBP", units_micros=c.unit_price_micros),
            )
            for c in cart
        ]
    )
    return price_cart(
        program,
        promotions,
        cart,
        coupons,
        customer or Customer("c1", {}),
        _context_atom(_context(context, NOW), NOW),
        NOW,
    )


def line(sku: str, quantity: int, units: float, category: str = "") -> CartLine:
    return CartLine(sku, category, quantity, round(units * UNIT))


# ------------------------------------------------------------------------- arithmetic


@given(
    amount=st.integers(0, 10**9),
    weights=st.lists(st.integers(0, 10**9), min_size=1, max_size=8),
    unit=st.sampled_from([1, 10_000, 1_000_000]),
)
def test_a_spread_sums_exactly_and_stays_within_each_line(
    amount: int, weights: list[int], unit: int
) -> None:
    shares = spread(amount, weights, weights, unit)
    assert all(0 <= s <= w and s % unit == 0 for s, w in zip(shares, weights, strict=True))
    assert sum(shares) == min(amount // unit, sum(w // unit for w in weights)) * unit


def test_the_remainder_of_a_spread_goes_to_the_largest_share() -> None:
    # 10.00 over 3 equal lines of 10.00: 3.33 each, the penny left to the first largest
    assert spread(10 * UNIT, [10 * UNIT] * 3, [10 * UNIT] * 3, PENNY) == [
        3_340_000,
        3_330_000,
        3_330_000,
    ]
    # 1.00 over 7.00 and 3.00: 0.70 and 0.30 exactly
    assert spread(UNIT, [7 * UNIT, 3 * UNIT], [7 * UNIT, 3 * UNIT], PENNY) == [700_000, 300_000]


def test_rounding_is_half_up_to_the_minor_unit() -> None:
    assert round_half_up(5_000, PENNY) == PENNY  # 0.005 -> 0.01
    assert round_half_up(4_999, PENNY) == 0
    assert (minor_unit_micros("GBP"), minor_unit_micros("JPY"), minor_unit_micros("KWD")) == (
        10_000,
        1_000_000,
        1_000,
    )


carts = st.lists(
    st.builds(
        CartLine,
        sku=st.sampled_from(["a", "b", "c", "d"]),
        category=st.sampled_from(["", "shoes", "hats"]),
        quantity=st.integers(1, 20),
        unit_price_micros=st.integers(0, 500).map(lambda pennies: pennies * PENNY),
    ),
    min_size=1,
    max_size=6,
)
effects = st.one_of(
    st.builds(
        Effect,
        type=st.just("PERCENT_OFF"),
        percent=st.floats(0.5, 100),
        categories=st.sampled_from([(), ("shoes",)]),
    ),
    st.builds(
        Effect,
        type=st.just("AMOUNT_OFF"),
        amount_micros=st.integers(1, 20_000).map(lambda p: p * PENNY),
        skus=st.sampled_from([(), ("a", "b")]),
    ),
    st.builds(
        Effect,
        type=st.just("FIXED_PRICE"),
        price_micros=st.integers(0, 300).map(lambda p: p * PENNY),
    ),
    st.builds(Effect, type=st.just("POINTS_MULTIPLIER"), multiplier=st.floats(1, 5)),
    st.builds(Effect, type=st.just("GIFT"), gift_sku=st.just("g")),
)
promotion_sets = st.lists(
    st.tuples(
        effects,
        st.integers(-3, 3),
        st.sampled_from(["STACKABLE", "EXCLUSIVE", "BEST_FOR_CUSTOMER"]),
        st.sampled_from(["ORIGINAL", "DISCOUNTED"]),
    ),
    max_size=6,
)


@settings(max_examples=300)
@given(cart=carts, specs=promotion_sets, tier=st.sampled_from([0.0, 5.0, 12.5]))
def test_every_quote_adds_up_in_whole_pennies(
    cart: list[CartLine],
    specs: list[tuple[Effect, int, str, str]],
    tier: float,
) -> None:
    promotions = [
        promo(f"p{i}", e, priority=priority, stacking=mode, price_base=base)
        for i, (e, priority, mode, base) in enumerate(specs)
    ]
    q = quote(promotions, cart, Customer("c1", {}, tier_discount_percent=tier))
    assert sum(line.line_total_micros for line in q.lines) == q.total_micros
    assert q.subtotal_micros == sum(c.quantity * c.unit_price_micros for c in cart)
    assert 0 <= q.total_micros <= q.subtotal_micros
    assert all(0 <= line.line_total_micros <= line.base_total for line in q.lines)
    assert all(line.line_total_micros % PENNY == 0 for line in q.lines)
    assert all(line.personal_price_micros % PENNY == 0 for line in q.lines)
    promoted = sum(a.discount_micros for a in q.applied)
    assert promoted <= q.discount_micros  # the tier takes the rest
    if not tier:
        assert promoted == q.discount_micros
    exclusive = [a for a in q.applied if a.promotion.stacking == "EXCLUSIVE"]
    assert not exclusive or len(q.applied) == 1
    assert len([a for a in q.applied if a.promotion.stacking == "BEST_FOR_CUSTOMER"]) <= 1
    assert q.points_to_earn >= 0 and q.points_spendable == 0


# ---------------------------------------------------------------------------- effects


def test_percent_off_is_rounded_half_up_per_line() -> None:
    # 15 % of 3 x 0.99 = 0.4455 -> 0.45 off; 2.52 left, 0.84 a unit
    q = quote([promo("p1", Effect("PERCENT_OFF", percent=15))], [line("a", 3, 0.99)])
    (only,) = q.lines
    assert (only.line_total_micros, only.personal_price_micros) == (2_520_000, 840_000)
    assert q.discount_micros == 450_000 and q.applied[0].discount_micros == 450_000


def test_amount_off_is_spread_pro_rata_over_the_matching_lines() -> None:
    q = quote(
        [promo("p1", Effect("AMOUNT_OFF", amount_micros=10 * UNIT, categories=("shoes",)))],
        [line("a", 1, 30, "shoes"), line("b", 1, 10, "shoes"), line("c", 1, 50, "hats")],
    )
    assert [x.line_total_micros for x in q.lines] == [22_500_000, 7_500_000, 50_000_000]
    assert q.lines[2].promotion_ids == []
    assert q.applied[0].skus == ["a", "b"]


def test_fixed_price_only_lowers_and_a_gift_earns_no_points() -> None:
    q = quote(
        [
            promo("p1", Effect("FIXED_PRICE", price_micros=5 * UNIT, skus=("a", "b"))),
            promo("p2", Effect("GIFT", gift_sku="socks", gift_quantity=2)),
        ],
        [line("a", 2, 8), line("b", 1, 4)],
    )
    assert [x.line_total_micros for x in q.lines] == [10 * UNIT, 4 * UNIT]
    assert q.gifts == [("socks", 2, "p2")]
    assert q.points_to_earn == 14  # the socks earn nothing


def test_points_multiplier_adds_bonus_points_on_matching_lines() -> None:
    q = quote(
        [promo("p1", Effect("POINTS_MULTIPLIER", multiplier=3.0, categories=("shoes",)))],
        [line("a", 1, 20, "shoes"), line("b", 1, 10, "hats")],
    )
    assert q.applied[0].bonus_points == 40
    assert q.points_to_earn == 30 + 40
    assert [x.points_to_earn for x in q.lines] == [60, 10]


def test_the_tier_discount_applies_after_promotions() -> None:
    q = quote(
        [promo("p1", Effect("AMOUNT_OFF", amount_micros=10 * UNIT))],
        [line("a", 1, 100)],
        Customer("c1", {}, tier_name="silver", tier_discount_percent=10.0),
    )
    assert q.total_micros == 81 * UNIT and q.tier == "silver"


# --------------------------------------------------------------------------- stacking


def test_stackable_promotions_apply_in_priority_order_on_their_price_base() -> None:
    cart = [line("a", 1, 100)]
    on_discounted = quote(
        [
            promo("p1", Effect("PERCENT_OFF", percent=10), priority=1),
            promo("p2", Effect("AMOUNT_OFF", amount_micros=50 * UNIT), priority=2),
        ],
        cart,
    )
    assert [a.promotion.promotion_id for a in on_discounted.applied] == ["p2", "p1"]
    assert on_discounted.total_micros == 45 * UNIT  # 10 % of the 50 left
    on_original = quote(
        [
            promo("p1", Effect("PERCENT_OFF", percent=10), priority=1, price_base="ORIGINAL"),
            promo("p2", Effect("AMOUNT_OFF", amount_micros=50 * UNIT), priority=2),
        ],
        cart,
    )
    assert on_original.total_micros == 40 * UNIT  # 10 % of the original 100


def test_an_exclusive_promotion_applies_alone_or_not_at_all() -> None:
    cart = [line("a", 1, 100)]
    first = quote(
        [
            promo("p1", Effect("PERCENT_OFF", percent=20), priority=5, stacking="EXCLUSIVE"),
            promo("p2", Effect("PERCENT_OFF", percent=10), priority=1),
        ],
        cart,
    )
    assert [a.promotion.promotion_id for a in first.applied] == ["p1"]
    assert ("excluded by exclusive promotion p1") in dict(
        (p.promotion_id, r) for p, r in first.not_applied
    )["p2"]
    late = quote(
        [
            promo("p1", Effect("PERCENT_OFF", percent=20), priority=1, stacking="EXCLUSIVE"),
            promo("p2", Effect("PERCENT_OFF", percent=10), priority=5),
        ],
        cart,
    )
    assert [a.promotion.promotion_id for a in late.applied] == ["p2"]


def test_best_for_customer_applies_only_the_highest_discount() -> None:
    q = quote(
        [
            promo(
                "p1", Effect("PERCENT_OFF", percent=10), priority=3, stacking="BEST_FOR_CUSTOMER"
            ),
            promo(
                "p2",
                Effect("AMOUNT_OFF", amount_micros=15 * UNIT),
                priority=1,
                stacking="BEST_FOR_CUSTOMER",
            ),
        ],
        [line("a", 1, 100)],
    )
    assert [a.promotion.promotion_id for a in q.applied] == ["p2"]
    assert q.total_micros == 85 * UNIT
    assert "best for customer" in dict((p.promotion_id, r) for p, r in q.not_applied)["p1"]


# ------------------------------------------------------------------ conditions, reasons


def test_a_condition_on_segment_and_cart_gives_its_reason_and_near_misses() -> None:
    vip = in_segment("vip")
    condition = both(vip, cart_total_at_least(50))
    p = promo("p1", Effect("PERCENT_OFF", percent=10), condition=condition)
    key = next(iter(p.customer_atoms.values()))
    regular = Customer("c1", {key: True})
    hit = quote([p], [line("a", 1, 60)], regular)
    assert hit.applied[0].reason == "segment vip; cart.total GTE 50"
    short = quote([p], [line("a", 1, 44.5)], regular)
    assert not short.applied
    (miss,) = short.near_misses
    assert (miss.missing_micros, miss.missing_quantity) == (5_500_000, 0)
    # a new customer (not in the segment) is no near miss: more cart would not help
    newcomer = quote([p], [line("a", 1, 44.5)], Customer("c2", {key: False}))
    assert not newcomer.applied and not newcomer.near_misses
    reason = dict((x.promotion_id, r) for x, r in newcomer.not_applied)["p1"]
    assert reason == "condition false at condition.all_of[0] (segment vip)"


def test_when_segmentation_is_down_only_promotions_needing_no_customer_data_apply() -> None:
    needs = promo(
        "p1",
        Effect("PERCENT_OFF", percent=10),
        condition=in_segment("vip").SerializeToString(deterministic=True),
    )
    cart_only = promo(
        "p2", Effect("AMOUNT_OFF", amount_micros=UNIT), condition=cart_total_at_least(1)
    )
    q = quote([needs, cart_only], [line("a", 1, 20)], Customer("c1", None))
    assert [a.promotion.promotion_id for a in q.applied] == ["p2"]
    assert q.degraded
    assert (
        "segmentation did not answer" in dict((p.promotion_id, r) for p, r in q.not_applied)["p1"]
    )


def test_coupons_are_case_insensitive_and_unknown_ones_are_reported() -> None:
    p = promo("p1", Effect("PERCENT_OFF", percent=10), coupon_code="Summer")
    without = quote([p], [line("a", 1, 10)])
    assert not without.applied
    assert dict((x.promotion_id, r) for x, r in without.not_applied)["p1"] == "coupon missing"
    q = quote([p], [line("a", 1, 10)], coupons=["sUMMER", "NOPE"])
    assert q.applied[0].reason == "everyone; coupon Summer"
    assert q.invalid_coupons == ["NOPE"]


def test_schedule_budget_and_per_customer_limit_leave_a_promotion_out() -> None:
    e = Effect("PERCENT_OFF", percent=10)
    cases = {
        "p1": promo("p1", e, start_time=NOW + 60),
        "p2": promo("p2", e, end_time=NOW),
        "p3": promo("p3", e, max_uses=2, uses=2),
        "p4": promo("p4", e, max_uses_per_customer=1),
    }
    q = quote(list(cases.values()), [line("a", 1, 10)], Customer("c1", {}, uses={"p4": 1}))
    assert not q.applied
    assert dict((p.promotion_id, r) for p, r in q.not_applied) == {
        "p1": "schedule: has not started",
        "p2": "schedule: has ended",
        "p3": "budget spent",
        "p4": "per-customer limit reached",
    }


def test_holdout_is_stable_per_customer_and_near_its_share() -> None:
    p = replace(promo("p1", Effect("PERCENT_OFF", percent=10)).promotion, holdout_percent=20.0)
    out = [held_out(p, f"c{i}") for i in range(5000)]
    assert out == [held_out(p, f"c{i}") for i in range(5000)]
    assert 800 < sum(out) < 1200
    assert not held_out(p, "")  # unknown customers are never held out
    held = next(f"c{i}" for i in range(5000) if out[i])
    q = quote([compile_promotion(p)], [line("a", 1, 10)], Customer(held, {}))
    assert not q.applied and q.exposures == [("p1", True)]
    assert dict((x.promotion_id, r) for x, r in q.not_applied)["p1"] == "held out (control group)"


def test_points_spendable_respect_the_balance_and_max_redeem_percent() -> None:
    program = replace(PROGRAM, max_redeem_percent=50.0)
    q = quote([], [line("a", 1, 10)], Customer("c1", {}, balance=10_000), program=program)
    assert (q.points_spendable, q.points_spendable_value_micros) == (500, 5 * UNIT)
    poor = quote([], [line("a", 1, 10)], Customer("c1", {}, balance=7), program=program)
    assert poor.points_spendable == 7
