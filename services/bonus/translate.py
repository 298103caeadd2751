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
from libs.validation import check_text
from services.bonus.domain import MAX_POINTS, OrderLine, Program, Tier
from services.bonus.handlers import Accrual, ProgramPatch

__all__ = [
    "MUTABLE_PROGRAM_FIELDS",
    "id_in",
    "key_in",
    "order_in",
    "points_in",
    "program_in",
    "program_patch_in",
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
