"""Requests in: protobuf -> validated domain values. Every failure names its field.

Also the bus in: a profile change's events -> `Behaviour` (what recommend counts)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as profile_pb
from backcrm.recommend.v1 import recommend_service_pb2 as pb
from google.protobuf import field_mask_pb2

from libs.errors import InvalidArgument
from libs.protoutil import seconds_of
from libs.validation import check_enum, check_text
from services.recommend.domain import Item, Showcase
from services.recommend.handlers import RequestContext
from services.recommend.mix import Strategy
from services.recommend.ports import Behaviour

__all__ = [
    "MAX_ITEMS",
    "MUTABLE_FIELDS",
    "Rejection",
    "behaviours_of",
    "context_in",
    "id_in",
    "items_in",
    "limit_in",
    "showcase_in",
    "showcase_patch_in",
    "sku_in",
    "strategy_in",
]

MAX_ITEMS = 1000
MAX_SKU = 200
MAX_TAGS = 50
MAX_ATTRIBUTES = 100
MAX_PRICE = 10**15  # a billion units of a currency, in micros
MAX_LIMIT = 100
MAX_RULE_ENTRIES = 100
MAX_POSITION = 99
MAX_WEIGHT = 1e6
MAX_TIME = 253_402_300_799.0  # what a Timestamp holds: up to the year 9999
_SEGMENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class Rejection:
    index: int
    sku: str
    field: str
    reason: str


def id_in(value: str, field: str) -> str:
    return check_text(value, field, max_len=32, required=True).strip()


def sku_in(value: str, field: str, *, required: bool = True) -> str:
    text = check_text(value, field, max_len=MAX_SKU, required=required)
    if text != text.strip():
        raise InvalidArgument(field, "must not start or end with spaces")
    return text


def _time(stamp: Any, field: str) -> float:
    seconds = seconds_of(stamp)
    if not 0 <= stamp.seconds <= MAX_TIME or not 0 <= stamp.nanos < 1_000_000_000:
        raise InvalidArgument(field, "must be a time between 1970 and 9999")
    return seconds


def item_in(item: pb.Item, field: str) -> Item:
    sku = sku_in(item.sku, f"{field}.sku")
    if len(item.tags) > MAX_TAGS:
        raise InvalidArgument(f"{field}.tags", f"has more than {MAX_TAGS} tags")
    tags = tuple(
        dict.fromkeys(
            check_text(t, f"{field}.tags[{j}]", max_len=100, required=True)
            for j, t in enumerate(item.tags)
        )
    )
    if len(item.attributes) > MAX_ATTRIBUTES:
        raise InvalidArgument(f"{field}.attributes", f"has more than {MAX_ATTRIBUTES} entries")
    attributes = {}
    for key in sorted(item.attributes):
        check_text(key, f"{field}.attributes", max_len=128, required=True)
        attributes[key] = check_text(
            item.attributes[key], f"{field}.attributes[{key!r}]", max_len=1024
        )
    has_price = item.HasField("price")
    if has_price:
        if not 0 <= item.price.units_micros <= MAX_PRICE:
            raise InvalidArgument(
                f"{field}.price.units_micros", f"must be between 0 and {MAX_PRICE}"
            )
        if not _CURRENCY.fullmatch(item.price.currency):
            raise InvalidArgument(f"{field}.price.currency", "must be an ISO 4217 code (GBP)")
    released = (
        _time(item.released_at, f"{field}.released_at") if item.HasField("released_at") else None
    )
    return Item(
        sku=sku,
        title=check_text(item.title, f"{field}.title", max_len=500),
        category=check_text(item.category, f"{field}.category", max_len=200),
        tags=tags,
        price_micros=item.price.units_micros if has_price else 0,
        currency=item.price.currency if has_price else "",
        has_price=has_price,
        available=item.available,
        attributes=attributes,
        released_at=released,
    )


def items_in(items: Any) -> tuple[list[Item], list[Rejection]]:
    """A batch's items, each validated on its own: a bad one becomes a Rejection by index.
    The batch as a whole is wrong (InvalidArgument) when empty, too long, naming a sku twice,
    or when no item is acceptable (then naming every rejected field)."""
    if not items:
        raise InvalidArgument("items", f"is required: send 1 to {MAX_ITEMS} items")
    if len(items) > MAX_ITEMS:
        raise InvalidArgument("items", f"has {len(items)} items; at most {MAX_ITEMS}")
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.sku in seen:
            raise InvalidArgument(f"items[{i}].sku", f"repeats the sku of items[{seen[item.sku]}]")
        seen[item.sku] = i
    accepted: list[Item] = []
    rejected: list[Rejection] = []
    for i, item in enumerate(items):
        try:
            accepted.append(item_in(item, f"items[{i}]"))
        except InvalidArgument as exc:
            field, reason = exc.violations[0]
            rejected.append(Rejection(i, item.sku[:MAX_SKU], field, reason))
    if not accepted:  # nothing acceptable: the batch is wrong as a whole (as TrackEvents)
        raise InvalidArgument([(r.field, r.reason) for r in rejected])
    return accepted, rejected


def strategy_in(value: int, field: str, *, required: bool = True) -> Strategy:
    name = check_enum(value, pb.Strategy, field, required=required)
    return Strategy[name] if name else Strategy.UNSPECIFIED


def _weight(value: float, field: str) -> float:
    if not math.isfinite(value) or not 0 < value <= MAX_WEIGHT:
        raise InvalidArgument(field, f"must be a finite number above 0, at most {MAX_WEIGHT:g}")
    return float(value)


def _strategies(showcase: pb.Showcase, field: str) -> dict[str, Any]:
    at = f"{field}.strategies"
    if not showcase.strategies:
        raise InvalidArgument(at, "is required: at least one strategy")
    out: dict[Strategy, float] = {}
    for i, sw in enumerate(showcase.strategies):
        strategy = strategy_in(sw.strategy, f"{at}[{i}].strategy")
        if strategy in out:
            raise InvalidArgument(f"{at}[{i}].strategy", f"repeats {strategy.name}")
        out[strategy] = _weight(sw.weight, f"{at}[{i}].weight")
    return {"strategies": tuple(out.items())}


def _segment_boosts(showcase: pb.Showcase, field: str) -> dict[str, Any]:
    at = f"{field}.segment_boosts"
    if len(showcase.segment_boosts) > MAX_RULE_ENTRIES:
        raise InvalidArgument(at, f"has more than {MAX_RULE_ENTRIES} entries")
    boosts = {}
    for key in sorted(showcase.segment_boosts):
        if not _SEGMENT_ID.fullmatch(key):
            raise InvalidArgument(at, f"{key[:64]!r} is not a segment id (1-64 of A-Z a-z 0-9 _ -)")
        boosts[key] = _weight(showcase.segment_boosts[key], f"{at}[{key!r}]")
    return {"segment_boosts": boosts}


def _filters(showcase: pb.Showcase, field: str) -> dict[str, Any]:
    f = showcase.filters
    at = f"{field}.filters"
    if len(f.categories) > MAX_RULE_ENTRIES:
        raise InvalidArgument(f"{at}.categories", f"has more than {MAX_RULE_ENTRIES}")
    categories = tuple(
        dict.fromkeys(
            check_text(c, f"{at}.categories[{i}]", max_len=200, required=True)
            for i, c in enumerate(f.categories)
        )
    )
    return {
        "categories": categories,
        "exclude_purchased": f.exclude_purchased,
        "only_available": f.only_available,
        "exclude_in_cart": f.exclude_in_cart,
    }


def _rules(showcase: pb.Showcase, field: str) -> dict[str, Any]:
    r = showcase.rules
    at = f"{field}.rules"
    for name, entries in (("pins", r.pins), ("boosts", r.boosts), ("excludes", r.excludes)):
        if len(entries) > MAX_RULE_ENTRIES:
            raise InvalidArgument(f"{at}.{name}", f"has more than {MAX_RULE_ENTRIES} entries")
    pins = {}
    for sku in sorted(r.pins):
        sku_in(sku, f"{at}.pins")
        if not 0 <= r.pins[sku] <= MAX_POSITION:
            raise InvalidArgument(f"{at}.pins[{sku!r}]", f"must be a position 0-{MAX_POSITION}")
        pins[sku] = r.pins[sku]
    boosts = {}
    for sku in sorted(r.boosts):
        sku_in(sku, f"{at}.boosts")
        boosts[sku] = _weight(r.boosts[sku], f"{at}.boosts[{sku!r}]")
    excludes = tuple(
        dict.fromkeys(sku_in(s, f"{at}.excludes[{i}]") for i, s in enumerate(r.excludes))
    )
    return {"pins": pins, "boosts": boosts, "excludes": excludes}


def _diversity(showcase: pb.Showcase, field: str) -> dict[str, Any]:
    if not 0 <= showcase.max_per_category <= MAX_LIMIT:
        raise InvalidArgument(f"{field}.max_per_category", f"must be between 0 and {MAX_LIMIT}")
    return {"max_per_category": showcase.max_per_category}


def _fallback(showcase: pb.Showcase, field: str) -> dict[str, Any]:
    chain: list[Strategy] = []
    for i, value in enumerate(showcase.fallback):
        strategy = strategy_in(value, f"{field}.fallback[{i}]")
        if strategy in chain:
            raise InvalidArgument(f"{field}.fallback[{i}]", f"repeats {strategy.name}")
        chain.append(strategy)
    return {"fallback": tuple(chain)}


def _name(showcase: pb.Showcase, field: str) -> dict[str, Any]:
    return {"name": check_text(showcase.name, f"{field}.name", max_len=200, required=True)}


_FIELDS: dict[str, Callable[[pb.Showcase, str], dict[str, Any]]] = {
    "name": _name,
    "strategies": _strategies,
    "filters": _filters,
    "segment_boosts": _segment_boosts,
    "rules": _rules,
    "max_per_category": _diversity,
    "fallback": _fallback,
}
_FILTER_PATHS = {
    "filters.categories": "categories",
    "filters.exclude_purchased": "exclude_purchased",
    "filters.only_available": "only_available",
    "filters.exclude_in_cart": "exclude_in_cart",
}
MUTABLE_FIELDS = frozenset(_FIELDS) | frozenset(_FILTER_PATHS)


def showcase_in(showcase: pb.Showcase, field: str = "showcase") -> Showcase:
    values: dict[str, Any] = {}
    for read in _FIELDS.values():
        values.update(read(showcase, field))
    return Showcase(showcase_id="", **values)


def showcase_patch_in(
    showcase: pb.Showcase, mask: field_mask_pb2.FieldMask, field: str = "showcase"
) -> tuple[str, dict[str, Any]]:
    showcase_id = id_in(showcase.showcase_id, f"{field}.showcase_id")
    if not mask.paths:
        raise InvalidArgument("update_mask", "is required: name the fields to change")
    fields: dict[str, Any] = {}
    for path in mask.paths:
        if path not in MUTABLE_FIELDS:
            raise InvalidArgument("update_mask", f"{path[:100]!r} is not a mutable showcase field")
        if path in _FILTER_PATHS:
            name = _FILTER_PATHS[path]
            fields[name] = _filters(showcase, field)[name]
        else:
            fields.update(_FIELDS[path](showcase, field))
    return showcase_id, fields


def limit_in(value: int, field: str = "limit") -> int:
    if not 0 <= value <= MAX_LIMIT:
        raise InvalidArgument(field, f"must be between 1 and {MAX_LIMIT} (0 means 10)")
    return value or 10


def context_in(context: common_pb2.Context, field: str = "context") -> RequestContext:
    check_text(context.placement, f"{field}.placement", max_len=128)
    check_enum(context.channel, common_pb2.Channel, f"{field}.channel", required=False)
    check_text(context.region, f"{field}.region", max_len=128)
    current = sku_in(context.current_sku, f"{field}.current_sku", required=False)
    if len(context.cart) > MAX_ITEMS:
        raise InvalidArgument(f"{field}.cart", f"has more than {MAX_ITEMS} lines")
    cart: list[str] = []
    for i, line in enumerate(context.cart):
        cart.append(sku_in(line.sku, f"{field}.cart[{i}].sku"))
        check_text(line.category, f"{field}.cart[{i}].category", max_len=200)
        if abs(line.quantity) > 1_000_000:
            raise InvalidArgument(f"{field}.cart[{i}].quantity", "must be within ±1000000")
        if not 0 <= line.unit_price.units_micros <= MAX_PRICE:
            raise InvalidArgument(f"{field}.cart[{i}].unit_price.units_micros", "is out of range")
    if len(context.attributes) > 100:
        raise InvalidArgument(f"{field}.attributes", "has more than 100 entries")
    for key, value in context.attributes.items():
        check_text(key, f"{field}.attributes", max_len=128)
        check_text(value, f"{field}.attributes[{key!r}]", max_len=1024)
    return RequestContext(cart=tuple(dict.fromkeys(cart)), current_sku=current, message=context)


def behaviours_of(change: profile_pb.ProfileChanged) -> list[Behaviour]:
    """The purchases (lines by sku; negative quantities are returns) and product views of a
    profile change's events; other events and lines without a sku count nothing."""
    out: list[Behaviour] = []
    for event in change.events:
        at = seconds_of(event.occurred_at) if event.HasField("occurred_at") else 0.0
        if event.type == profile_pb.EVENT_TYPE_PURCHASE:
            units: dict[str, float] = {}
            for line in event.order.lines:
                if line.sku and line.quantity:
                    units[line.sku[:MAX_SKU]] = units.get(line.sku[:MAX_SKU], 0.0) + float(
                        line.quantity
                    )
            if units:
                out.append(Behaviour(event.event_id, change.customer_id, at, units))
        elif event.type == profile_pb.EVENT_TYPE_PRODUCT_VIEW and event.sku:
            out.append(
                Behaviour(event.event_id, change.customer_id, at, {}, (event.sku[:MAX_SKU],))
            )
    return out
