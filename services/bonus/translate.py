"""Requests in: protobuf -> validated domain values. Every failure names its field."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from backcrm.bonus.v1 import bonus_service_pb2 as pb
from backcrm.common.v1 import common_pb2
from google.protobuf import field_mask_pb2

from libs.errors import InvalidArgument
from libs.protoutil import seconds_of, short_name
from libs.validation import check_enum, check_text
from services.bonus.domain import MAX_POINTS, OrderLine, Program, Tier
from services.bonus.handlers import Accrual, ProgramPatch
from services.bonus.offers import MoneyField, PromotionPatch, QuoteRequest
from services.bonus.pricing import CartLine
from services.bonus.promotions import Effect, Promotion
from services.segmentation.conditions.parse import parse_condition
from services.segmentation.facts import CartItem, ContextFacts

__all__ = [
    "MUTABLE_PROGRAM_FIELDS",
    "MUTABLE_PROMOTION_FIELDS",
    "id_in",
    "key_in",
    "order_in",
    "points_in",
    "program_in",
    "program_patch_in",
    "promotion_in",
    "promotion_patch_in",
    "quote_request_in",
    "signed_points_in",
]

_CURRENCY = re.compile(r"[A-Z]{3}")
MAX_MULTIPLIER = 1000.0
MAX_POINTS_PER_UNIT = 1_000_000.0
MAX_PRICE_MICROS = 10**15  # a billion currency units
MAX_QUANTITY = 1_000_000
MAX_LINES = 1000
MAX_TIERS = 50
MAX_MAP_ENTRIES = 1000


def id_in(value: str, field: str) -> str:
    return check_text(value, field, max_len=32, required=True).strip()


def key_in(value: str, field: str = "idempotency_key") -> str:
    return check_text(value, field, max_len=128, required=True)


def points_in(value: int, field: str, *, allow_zero: bool = False) -> int:
    if value < 0 or (value == 0 and not allow_zero) or value > MAX_POINTS:
        low = 0 if allow_zero else 1
        raise InvalidArgument(field, f"must be between {low} and {MAX_POINTS}")
    return value


def signed_points_in(value: int, field: str) -> int:
    """Non-zero points, either sign, within ±MAX_POINTS."""
    if value == 0 or abs(value) > MAX_POINTS:
        raise InvalidArgument(field, f"must be non-zero, within ±{MAX_POINTS}")
    return value


def _number(value: float, field: str, low: float, high: float, *, low_open: bool) -> float:
    if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
        bound = f"greater than {low}" if low_open else f"at least {low}"
        raise InvalidArgument(field, f"must be a finite number {bound} and at most {high}")
    return value


def _whole(value: int, field: str, high: int) -> int:
    if not 0 <= value <= high:
        raise InvalidArgument(field, f"must be between 0 and {high}")
    return value


def _currency(value: str, field: str) -> str:
    if not _CURRENCY.fullmatch(value):
        raise InvalidArgument(field, "must be an ISO 4217 code such as GBP")
    return value


def _multipliers(values: Any, field: str) -> dict[str, float]:
    if len(values) > MAX_MAP_ENTRIES:
        raise InvalidArgument(field, f"has more than {MAX_MAP_ENTRIES} entries")
    out: dict[str, float] = {}
    for key, value in sorted(values.items()):
        check_text(key, f"{field}[{key!r}]", max_len=128, required=True)
        out[key] = _number(value, f"{field}[{key!r}]", 0.0, MAX_MULTIPLIER, low_open=True)
    return out


def _tiers(values: Any, field: str) -> tuple[Tier, ...]:
    if len(values) > MAX_TIERS:
        raise InvalidArgument(field, f"has more than {MAX_TIERS} tiers")
    tiers: list[Tier] = []
    for i, tier in enumerate(values):
        at = f"{field}[{i}]"
        name = check_text(tier.name, f"{at}.name", max_len=64, required=True)
        if any(t.name == name for t in tiers):
            raise InvalidArgument(f"{at}.name", f"repeats tier {name!r}")
        threshold = _whole(tier.threshold_points, f"{at}.threshold_points", MAX_POINTS)
        if tiers and threshold <= tiers[-1].threshold_points:
            raise InvalidArgument(f"{at}.threshold_points", "must be above the previous tier's")
        discount = _number(tier.discount_percent, f"{at}.discount_percent", 0, 100, low_open=False)
        multiplier = _number(
            tier.points_multiplier, f"{at}.points_multiplier", 0, MAX_MULTIPLIER, low_open=False
        )
        tiers.append(Tier(name, threshold, discount, multiplier))
    return tuple(tiers)


def _money(money: common_pb2.Money, field: str, high: int) -> tuple[str, int]:
    """(currency, micros); currency "" when the amount is unset."""
    if money.currency:
        _currency(money.currency, f"{field}.currency")
    return money.currency, _whole(money.units_micros, f"{field}.units_micros", high)


# Program field -> how to read and check it from the proto (the value goes to the same-named
# Program field; point_value is read separately, it carries a currency).
_PROGRAM_FIELDS: dict[str, Callable[[pb.Program, str], Any]] = {
    "name": lambda p, f: check_text(p.name, f, max_len=200, required=True),
    "points_per_unit": lambda p, f: _number(
        p.points_per_unit, f, 0.0, MAX_POINTS_PER_UNIT, low_open=True
    ),
    "category_multipliers": lambda p, f: _multipliers(p.category_multipliers, f),
    "segment_multipliers": lambda p, f: _multipliers(p.segment_multipliers, f),
    "tiers": lambda p, f: _tiers(p.tiers, f),
    "tier_period_days": lambda p, f: _whole(p.tier_period_days, f, 3660),
    "welcome_points": lambda p, f: _whole(p.welcome_points, f, 10**9),
    "expiry_days": lambda p, f: _whole(p.expiry_days, f, 36_600),
    "pending_days": lambda p, f: _whole(p.pending_days, f, 3660),
    "max_redeem_percent": lambda p, f: _number(p.max_redeem_percent, f, 0, 100, low_open=False),
}
MUTABLE_PROGRAM_FIELDS = frozenset({*_PROGRAM_FIELDS, "point_value"})
MAX_POINT_VALUE_MICROS = 10**9  # a thousand currency units per point


def program_in(program: pb.Program, field: str = "program") -> tuple[Program, str]:
    """A new program, and the currency its point_value was given in."""
    values = {name: read(program, f"{field}.{name}") for name, read in _PROGRAM_FIELDS.items()}
    currency = _currency(program.currency, f"{field}.currency")
    value_currency, value = _money(
        program.point_value, f"{field}.point_value", MAX_POINT_VALUE_MICROS
    )
    return (
        Program(program_id="", currency=currency, point_value_micros=value, **values),
        value_currency,
    )


def program_patch_in(
    program: pb.Program, mask: field_mask_pb2.FieldMask, field: str = "program"
) -> tuple[str, ProgramPatch]:
    program_id = id_in(program.program_id, f"{field}.program_id")
    paths = list(mask.paths)
    if not paths:
        raise InvalidArgument("update_mask", "is required: name the fields to change")
    fields: dict[str, Any] = {}
    value_currency = ""
    for path in paths:
        if path not in MUTABLE_PROGRAM_FIELDS:
            raise InvalidArgument("update_mask", f"{path!r} is not a mutable program field")
        if path == "point_value":
            value_currency, fields["point_value_micros"] = _money(
                program.point_value, f"{field}.point_value", MAX_POINT_VALUE_MICROS
            )
        else:
            fields[path] = _PROGRAM_FIELDS[path](program, f"{field}.{path}")
    return program_id, ProgramPatch(fields, value_currency)


def order_in(order: common_pb2.Order, key: str, field: str = "order") -> Accrual:
    """The order to accrue; every amount in the currency of its total (the handler checks it
    is the program's)."""
    order_id = check_text(order.order_id, f"{field}.order_id", max_len=128, required=True)
    currency, total = _money(order.total, f"{field}.total", MAX_PRICE_MICROS)
    if not currency:
        raise InvalidArgument(f"{field}.total.currency", "is required")
    if not order.lines:
        raise InvalidArgument(f"{field}.lines", "is required")
    if len(order.lines) > MAX_LINES:
        raise InvalidArgument(f"{field}.lines", f"has more than {MAX_LINES} lines")
    lines: list[OrderLine] = []
    for i, line in enumerate(order.lines):
        at = f"{field}.lines[{i}]"
        check_text(line.sku, f"{at}.sku", max_len=128)
        category = check_text(line.category, f"{at}.category", max_len=128)
        if not line.quantity or abs(line.quantity) > MAX_QUANTITY:
            raise InvalidArgument(f"{at}.quantity", f"must be non-zero, within ±{MAX_QUANTITY}")
        given, price = _money(line.unit_price, f"{at}.unit_price", MAX_PRICE_MICROS)
        if given != currency:
            raise InvalidArgument(
                f"{at}.unit_price.currency",
                f"must be the order total's currency {currency}",
                reason="CURRENCY_MISMATCH",
            )
        lines.append(OrderLine(category, line.quantity, price))
    return Accrual(order_id, tuple(lines), currency, total, key)


# ---------------------------------------------------------------------------- promotions

MAX_PERCENT = 100.0
MAX_USES = 10**12
MAX_EFFECT_KEYS = 1000
MAX_GIFT_QUANTITY = 1000
MAX_COUPONS = 20
MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z


def _timestamp(stamp: Any, field: str) -> float:
    if not 0 <= stamp.seconds <= MAX_TIMESTAMP or not 0 <= stamp.nanos < 1_000_000_000:
        raise InvalidArgument(field, "must be a timestamp between 1970 and 9999")
    return seconds_of(stamp)


def _names(values: Any, field: str) -> tuple[str, ...]:
    if len(values) > MAX_EFFECT_KEYS:
        raise InvalidArgument(field, f"has more than {MAX_EFFECT_KEYS} entries")
    return tuple(
        check_text(v, f"{field}[{i}]", max_len=128, required=True) for i, v in enumerate(values)
    )


def _effect(effect: pb.Effect, field: str) -> tuple[Effect, list[MoneyField]]:
    kind = check_enum(effect.type, pb.EffectType, f"{field}.type")
    amounts: list[MoneyField] = []
    values: dict[str, Any] = {
        "skus": _names(effect.skus, f"{field}.skus"),
        "categories": _names(effect.categories, f"{field}.categories"),
    }
    if kind == "PERCENT_OFF":
        values["percent"] = _number(
            effect.percent, f"{field}.percent", 0.0, MAX_PERCENT, low_open=True
        )
    elif kind in ("AMOUNT_OFF", "FIXED_PRICE"):
        name = "amount" if kind == "AMOUNT_OFF" else "price"
        money: common_pb2.Money = getattr(effect, name)
        if not effect.HasField(name):
            raise InvalidArgument(f"{field}.{name}", "is required")
        currency, micros = _money(money, f"{field}.{name}", MAX_PRICE_MICROS)
        if kind == "AMOUNT_OFF" and micros == 0:
            raise InvalidArgument(f"{field}.amount.units_micros", "must be greater than 0")
        amounts.append((f"{field}.{name}", currency, micros))
        values[f"{name}_micros"] = micros
    elif kind == "GIFT":
        values["gift_sku"] = check_text(
            effect.gift_sku, f"{field}.gift_sku", max_len=128, required=True
        )
        values["gift_quantity"] = _whole(
            effect.gift_quantity, f"{field}.gift_quantity", MAX_GIFT_QUANTITY
        )
    else:  # POINTS_MULTIPLIER: it adds (multiplier - 1) x the points, so at least 1
        values["multiplier"] = _number(
            effect.multiplier, f"{field}.multiplier", 1.0, MAX_MULTIPLIER, low_open=False
        )
    return Effect(type=kind, **values), amounts


def _condition(promotion: pb.Promotion, field: str) -> bytes:
    if not promotion.HasField("condition"):
        return b""
    parse_condition(promotion.condition, field)  # validates every node, naming it
    return promotion.condition.SerializeToString(deterministic=True)


def _stacking(promotion: pb.Promotion, field: str, *, exclusive_given: bool) -> str:
    mode = check_enum(promotion.stacking, pb.StackingMode, f"{field}.stacking", required=False)
    if not mode:
        return "EXCLUSIVE" if promotion.exclusive else "STACKABLE"
    if exclusive_given and promotion.exclusive != (mode == "EXCLUSIVE"):
        raise InvalidArgument(
            f"{field}.exclusive", "must be true exactly when stacking is STACKING_MODE_EXCLUSIVE"
        )
    return mode


def _schedule(promotion: pb.Promotion, field: str) -> dict[str, float | None]:
    schedule = promotion.schedule
    return {
        "start_time": _timestamp(schedule.start_time, f"{field}.schedule.start_time")
        if schedule.HasField("start_time")
        else None,
        "end_time": _timestamp(schedule.end_time, f"{field}.schedule.end_time")
        if schedule.HasField("end_time")
        else None,
    }


def _budget(promotion: pb.Promotion, field: str) -> tuple[dict[str, int], list[MoneyField]]:
    budget = promotion.budget
    at = f"{field}.budget"
    currency, micros = _money(budget.max_discount, f"{at}.max_discount", MAX_PRICE_MICROS)
    return (
        {
            "max_uses": _whole(budget.max_uses, f"{at}.max_uses", MAX_USES),
            "max_uses_per_customer": _whole(
                budget.max_uses_per_customer, f"{at}.max_uses_per_customer", MAX_USES
            ),
            "max_discount_micros": micros,
        },
        [(f"{at}.max_discount", currency, micros)] if micros else [],
    )


def _status(promotion: pb.Promotion, field: str) -> str:
    status = check_enum(promotion.status, pb.PromotionStatus, f"{field}.status", required=False)
    if status == "ENDED":
        raise InvalidArgument(
            f"{field}.status", "may be ACTIVE or PAUSED (ENDED is set by the server)"
        )
    return status or "ACTIVE"


def _coupon(promotion: pb.Promotion, field: str) -> str:
    return check_text(promotion.coupon_code, f"{field}.coupon_code", max_len=64).strip()


# Promotion field -> how to read and check it: (domain values, amounts to check against the
# program's currency). `exclusive` and `stacking` are one setting (see _stacking).
_PromotionReader = Callable[[pb.Promotion, str], tuple[dict[str, Any], list[MoneyField]]]
_PROMOTION_FIELDS: dict[str, _PromotionReader] = {
    "name": lambda p, f: (
        {"name": check_text(p.name, f"{f}.name", max_len=200, required=True)},
        [],
    ),
    "description": lambda p, f: (
        {
            "description": check_text(
                p.description, f"{f}.description", max_len=2000, multiline=True
            )
        },
        [],
    ),
    "condition": lambda p, f: ({"condition": _condition(p, f"{f}.condition")}, []),
    "effect": lambda p, f: (lambda e: ({"effect": e[0]}, e[1]))(_effect(p.effect, f"{f}.effect")),
    "priority": lambda p, f: ({"priority": p.priority}, []),
    "price_base": lambda p, f: (
        {
            "price_base": check_enum(p.price_base, pb.PriceBase, f"{f}.price_base", required=False)
            or "DISCOUNTED"
        },
        [],
    ),
    "schedule": lambda p, f: (_schedule(p, f), []),
    "budget": _budget,
    "coupon_code": lambda p, f: ({"coupon_code": _coupon(p, f)}, []),
    "status": lambda p, f: ({"status": _status(p, f)}, []),
    "holdout_percent": lambda p, f: (
        {
            "holdout_percent": _number(
                p.holdout_percent, f"{f}.holdout_percent", 0.0, MAX_PERCENT, low_open=False
            )
        },
        [],
    ),
}
MUTABLE_PROMOTION_FIELDS = frozenset({*_PROMOTION_FIELDS, "exclusive", "stacking"})


def promotion_in(
    promotion: pb.Promotion, field: str = "promotion"
) -> tuple[Promotion, list[MoneyField]]:
    """A new promotion (id and times assigned by the use case), and its amounts."""
    program_id = id_in(promotion.program_id, f"{field}.program_id")
    values: dict[str, Any] = {}
    amounts: list[MoneyField] = []
    for read in _PROMOTION_FIELDS.values():
        more, money = read(promotion, field)
        values.update(more)
        amounts.extend(money)
    values["stacking"] = _stacking(promotion, field, exclusive_given=True)
    return Promotion(promotion_id="", program_id=program_id, **values), amounts


def promotion_patch_in(
    promotion: pb.Promotion, mask: field_mask_pb2.FieldMask, field: str = "promotion"
) -> tuple[str, PromotionPatch]:
    promotion_id = id_in(promotion.promotion_id, f"{field}.promotion_id")
    paths = list(mask.paths)
    if not paths:
        raise InvalidArgument("update_mask", "is required: name the fields to change")
    values: dict[str, Any] = {}
    amounts: list[MoneyField] = []
    for path in paths:
        if path not in MUTABLE_PROMOTION_FIELDS:
            raise InvalidArgument("update_mask", f"{path!r} is not a mutable promotion field")
        if path in ("exclusive", "stacking"):
            continue
        more, money = _PROMOTION_FIELDS[path](promotion, field)
        values.update(more)
        amounts.extend(money)
    if "stacking" in paths:
        values["stacking"] = _stacking(promotion, field, exclusive_given="exclusive" in paths)
    elif "exclusive" in paths:
        values["stacking"] = "EXCLUSIVE" if promotion.exclusive else "STACKABLE"
    return promotion_id, PromotionPatch(values, tuple(amounts))


# -------------------------------------------------------------------------------- quotes


def _context(context: common_pb2.Context, now: float) -> ContextFacts:
    """The request context as segmentation's evaluator reads it (money in whole units)."""
    return ContextFacts(
        channel=short_name(common_pb2.Channel, context.channel) if context.channel else "",
        placement=context.placement,
        region=context.region,
        current_sku=context.current_sku,
        cart=[
            CartItem(line.sku, line.category, line.quantity, line.unit_price.units_micros / 1e6)
            for line in context.cart
        ],
        attributes=dict(context.attributes),
        now=now,
    )


def quote_request_in(request: pb.QuoteOfferRequest, customer_id: str, now: float) -> QuoteRequest:
    program_id = id_in(request.program_id, "program_id")
    context = request.context
    if len(context.cart) > MAX_LINES:
        raise InvalidArgument("context.cart", f"has more than {MAX_LINES} lines")
    check_enum(context.channel, common_pb2.Channel, "context.channel", required=False)
    for name in ("placement", "region", "current_sku"):
        check_text(getattr(context, name), f"context.{name}", max_len=128)
    if len(context.attributes) > MAX_MAP_ENTRIES:
        raise InvalidArgument("context.attributes", f"has more than {MAX_MAP_ENTRIES} entries")
    for key, value in context.attributes.items():
        check_text(key, "context.attributes", max_len=128)
        check_text(value, f"context.attributes[{key!r}]", max_len=1024)
    lines: list[CartLine] = []
    currency = ""
    for i, line in enumerate(context.cart):
        at = f"context.cart[{i}]"
        sku = check_text(line.sku, f"{at}.sku", max_len=128)
        category = check_text(line.category, f"{at}.category", max_len=128)
        if not 0 < line.quantity <= MAX_QUANTITY:
            raise InvalidArgument(f"{at}.quantity", f"must be between 1 and {MAX_QUANTITY}")
        given, price = _money(line.unit_price, f"{at}.unit_price", MAX_PRICE_MICROS)
        if not given:
            raise InvalidArgument(f"{at}.unit_price.currency", "is required")
        if line.quantity * price > MAX_PRICE_MICROS:  # so every sum stays inside int64
            raise InvalidArgument(
                f"{at}.quantity", f"quantity x unit_price must be at most {MAX_PRICE_MICROS} micros"
            )
        if currency and given != currency:
            raise InvalidArgument(
                f"{at}.unit_price.currency",
                f"must be the cart's currency {currency}",
                reason="CURRENCY_MISMATCH",
            )
        currency = given
        lines.append(CartLine(sku, category, line.quantity, price))
    if len(request.coupon_codes) > MAX_COUPONS:
        raise InvalidArgument("coupon_codes", f"has more than {MAX_COUPONS} codes")
    coupons = tuple(
        check_text(code, f"coupon_codes[{i}]", max_len=64, required=True).strip()
        for i, code in enumerate(request.coupon_codes)
    )
    return QuoteRequest(
        program_id=program_id,
        customer_id=customer_id,
        cart=tuple(lines),
        cart_currency=currency,
        context=_context(context, now),
        context_message=context,
        coupons=coupons,
    )
