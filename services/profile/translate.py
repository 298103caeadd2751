"""Protobuf requests -> validated domain values. Every failure names its field path.

The inbound half of the service's translation (`render.py` is the outbound half): whatever a
caller can put on the wire, hostile values included, is checked here before a handler sees it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as pb
from google.protobuf import field_mask_pb2
from google.protobuf.json_format import MessageToDict

from libs.errors import InvalidArgument
from libs.protoutil import seconds_of
from libs.validation import check_enum, check_finite, check_size, check_text
from services.profile.domain import CartLine, EventIn, IdentityKey, OrderIn
from services.profile.handlers import CustomerLookup, ExportCursor, Rejection
from services.profile.identities import normalise_identity

__all__ = [
    "MAX_EVENTS",
    "MAX_PROPERTIES_BYTES",
    "PROFILE_FIELDS",
    "attributes_in",
    "check_update_mask",
    "consents_in",
    "customer_ids_in",
    "customer_in",
    "customers_in",
    "event_in",
    "events_in",
    "export_cursor_in",
    "field_mask_in",
    "identity_in",
    "lookup_in",
    "namespace_in",
    "row_cursor_in",
    "traits_in",
    "watch_paths_in",
]

MAX_EVENTS = 1000
MAX_FUTURE_SECONDS = 300
MAX_PROPERTIES_BYTES = 16 * 1024
# Amounts are int64 micros on the wire and in storage: a line (quantity * unit price) and an
# order's total must fit, or the order is rejected; quantities are bounded so that sums of
# them (a cart, an order's lines) fit as well.
INT64_MAX = 2**63 - 1
MAX_QUANTITY = 1_000_000_000
_CURRENCY = re.compile(r"[A-Z]{3}")  # used with fullmatch: `$` accepts a trailing newline
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")
ATTRIBUTE_FIELDS = ("name", "email", "phone", "region", "city", "birth_date", "language")
PROFILE_FIELDS = frozenset(pb.Profile.DESCRIPTOR.fields_by_name)
# fullmatch: `$` would also match before a trailing newline ("points\n" was a key)
_NAMESPACE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_TRAIT_KEY = re.compile(r"[a-z][a-z0-9_.]{0,63}")
MAX_TRAITS = 100
MAX_TRAIT_BYTES = 4096
# Storage keeps times as datetimes: year 1 to 9999.
_TIME_RANGE = (-62_135_596_800.0, 253_402_300_799.0)


def identity_in(identity: common_pb2.Identity, field: str) -> IdentityKey:
    kind = check_enum(identity.type, common_pb2.IdentityType, f"{field}.type")
    return kind, normalise_identity(kind, identity.value, f"{field}.value")


def customer_in(request: Any) -> CustomerLookup:
    """The request's required `customer` reference."""
    (lookup,) = customers_in(request, "customer")
    return lookup


def customers_in(request: Any, *fields: str) -> list[CustomerLookup]:
    """The request's required CustomerRef fields: all present, then each valid, in order."""
    for field in fields:
        if not request.HasField(field):
            raise InvalidArgument(field, "is required: set customer_id or identity")
    return [lookup_in(getattr(request, field), field) for field in fields]


def lookup_in(ref: common_pb2.CustomerRef, field: str) -> CustomerLookup:
    which = ref.WhichOneof("ref")
    if which == "customer_id":
        customer_id = check_text(ref.customer_id, f"{field}.customer_id", max_len=64, required=True)
        return CustomerLookup(customer_id=customer_id.strip())
    if which == "identity":
        return CustomerLookup(identity=identity_in(ref.identity, f"{field}.identity"))
    raise InvalidArgument(field, "is required: set customer_id or identity")


def _money(value: common_pb2.Money, field: str, *, allow_negative: bool = False) -> tuple[int, str]:
    if value.units_micros < 0 and not allow_negative:
        raise InvalidArgument(f"{field}.units_micros", "must not be negative")
    currency = value.currency
    if currency and not _CURRENCY.fullmatch(currency):
        raise InvalidArgument(f"{field}.currency", "must be an ISO 4217 code like 'GBP'")
    if value.units_micros and not currency:
        raise InvalidArgument(f"{field}.currency", "is required with an amount")
    return value.units_micros, currency


def _time(stamp: Any, field: str, now: float) -> float:
    """A timestamp a customer's history can hold: from 1970 to (a little clock skew past) now."""
    seconds = seconds_of(stamp)
    if seconds > now + MAX_FUTURE_SECONDS:
        raise InvalidArgument(field, "is in the future")
    if seconds < 0:
        raise InvalidArgument(field, "is before 1970")
    return seconds


def _check_quantity(value: int, field: str) -> None:
    if abs(value) > MAX_QUANTITY:
        raise InvalidArgument(field, f"must be at most {MAX_QUANTITY:,} units")


def _order_in(order: common_pb2.Order, field: str, occurred_at: float, now: float) -> OrderIn:
    order_id = check_text(order.order_id, f"{field}.order_id", max_len=128, required=True)
    if not order.lines:
        raise InvalidArgument(f"{field}.lines", "a purchase needs at least one line")
    if len(order.lines) > 1000:
        raise InvalidArgument(f"{field}.lines", "has more than 1000 lines")
    lines, currencies = [], set()
    for j, line in enumerate(order.lines):
        at = f"{field}.lines[{j}]"
        sku = check_text(line.sku, f"{at}.sku", max_len=128, required=True)
        category = check_text(line.category, f"{at}.category", max_len=128)
        if line.quantity == 0:
            raise InvalidArgument(f"{at}.quantity", "must not be zero (negative is a return)")
        _check_quantity(line.quantity, f"{at}.quantity")
        price, currency = _money(line.unit_price, f"{at}.unit_price")
        if abs(line.quantity * price) > INT64_MAX:
            raise InvalidArgument(f"{at}.unit_price.units_micros", "times quantity exceeds int64")
        if currency:
            currencies.add(currency)
        lines.append(CartLine(sku, category, line.quantity, price, currency))
    if len(currencies) > 1:
        raise InvalidArgument(f"{field}.lines", "all lines must be in one currency")
    if any(line.quantity < 0 for line in lines) and any(line.quantity > 0 for line in lines):
        raise InvalidArgument(
            f"{field}.lines", "mixes bought and returned lines; send the return as its own event"
        )
    computed = sum(line.quantity * line.unit_price_micros for line in lines)
    if abs(computed) > INT64_MAX:
        raise InvalidArgument(f"{field}.lines", "add up to more than an int64 amount")
    if order.HasField("total"):
        total, currency = _money(order.total, f"{field}.total", allow_negative=True)
        if computed and (total < 0) != (computed < 0):
            raise InvalidArgument(f"{field}.total", "has the opposite sign of its lines")
    else:
        total, currency = computed, next(iter(currencies), "")
    if currencies and currency and currency not in currencies:
        raise InvalidArgument(f"{field}.total.currency", "differs from the lines' currency")
    placed_at = occurred_at
    if order.HasField("placed_at"):
        placed_at = _time(order.placed_at, f"{field}.placed_at", now)
    return OrderIn(order_id.strip(), tuple(lines), total, currency, placed_at)


def event_in(event: pb.Event, field: str, now: float) -> EventIn:
    event_id = check_text(event.event_id, f"{field}.event_id", max_len=128, required=True)
    if not event.HasField("customer"):
        raise InvalidArgument(f"{field}.customer", "is required: set customer_id or identity")
    lookup = lookup_in(event.customer, f"{field}.customer")
    if len(event.identities) > 20:
        raise InvalidArgument(f"{field}.identities", "has more than 20 identities")
    identities = tuple(
        dict.fromkeys(
            identity_in(identity, f"{field}.identities[{j}]")
            for j, identity in enumerate(event.identities)
        )
    )
    kind = check_enum(event.type, pb.EventType, f"{field}.type")
    channel = check_enum(event.channel, common_pb2.Channel, f"{field}.channel")
    occurred_at = now
    if event.HasField("occurred_at"):
        occurred_at = _time(event.occurred_at, f"{field}.occurred_at", now)
    sku = check_text(event.sku, f"{field}.sku", max_len=128)
    category = check_text(event.category, f"{field}.category", max_len=128)
    properties: dict[str, Any] = {}
    if event.HasField("properties"):
        check_size(event.properties, f"{field}.properties", MAX_PROPERTIES_BYTES)
        for key in event.properties.fields:
            check_text(key, f"{field}.properties.{key!r}", max_len=64, required=True)
        check_finite(event.properties, f"{field}.properties")
        properties = MessageToDict(event.properties)
    order = None
    if kind == "PURCHASE":
        if not event.HasField("order"):
            raise InvalidArgument(f"{field}.order", "is required for a PURCHASE")
        order = _order_in(event.order, f"{field}.order", occurred_at, now)
    elif event.HasField("order"):
        raise InvalidArgument(f"{field}.order", "is only for PURCHASE events")
    if event.quantity < 0:
        raise InvalidArgument(f"{field}.quantity", "must not be negative")
    _check_quantity(event.quantity, f"{field}.quantity")
    if kind in ("ADD_TO_CART", "REMOVE_FROM_CART") and not sku:
        raise InvalidArgument(f"{field}.sku", f"is required for {kind}")
    price, currency = _money(event.unit_price, f"{field}.unit_price")
    return EventIn(
        event_id=event_id.strip(),
        type=kind,
        channel=channel,
        occurred_at=occurred_at,
        customer_id=lookup.customer_id,
        identity=lookup.identity,
        identities=identities,
        sku=sku,
        category=category,
        properties=properties,
        order=order,
        quantity=event.quantity,
        unit_price_micros=price,
        currency=currency,
    )


def events_in(events: Any, now: float) -> list[EventIn | Rejection]:
    """A batch's events, each validated on its own: a bad one becomes a Rejection by index.

    A batch with nothing acceptable is wrong as a whole: InvalidArgument naming every event.
    """
    if not events:
        raise InvalidArgument("events", "is required: send 1 to 1000 events")
    if len(events) > MAX_EVENTS:
        raise InvalidArgument("events", f"has {len(events)} events; at most {MAX_EVENTS}")
    items: list[EventIn | Rejection] = []
    for i, event in enumerate(events):
        try:
            items.append(event_in(event, f"events[{i}]", now))
        except InvalidArgument as exc:
            field, reason = exc.violations[0]
            items.append(Rejection(i, event.event_id, field, reason))
    rejected = [item for item in items if isinstance(item, Rejection)]
    if len(rejected) == len(items):
        raise InvalidArgument([(r.field, r.reason) for r in rejected])
    return items


def customer_ids_in(ids: Any, field: str = "customer_ids") -> list[str]:
    if not ids:
        raise InvalidArgument(field, "is required")
    if len(ids) > MAX_EVENTS:
        raise InvalidArgument(field, f"at most {MAX_EVENTS} ids")
    return [
        check_text(c, f"{field}[{i}]", max_len=64, required=True).strip() for i, c in enumerate(ids)
    ]


def attributes_in(
    attributes: pb.Attributes, mask_paths: list[str], field: str = "attributes"
) -> dict[str, str]:
    """The attribute values to set; with no mask, every non-empty field."""
    names = [p.removeprefix("attributes.") for p in mask_paths if p.startswith("attributes")]
    if "attributes" in mask_paths:
        names = list(ATTRIBUTE_FIELDS)
    if not mask_paths:
        names = [n for n in ATTRIBUTE_FIELDS if getattr(attributes, n)]
    out: dict[str, str] = {}
    for name in names:
        value = check_text(getattr(attributes, name), f"{field}.{name}").strip()
        if value and name in ("email", "phone"):
            value = normalise_identity(name.upper(), value, f"{field}.{name}")
        elif value and name == "birth_date":
            try:
                born = dt.date.fromisoformat(value)
            except ValueError as exc:
                raise InvalidArgument(f"{field}.birth_date", "must be YYYY-MM-DD") from exc
            if born > dt.datetime.now(dt.UTC).date() or born.year < 1900:
                raise InvalidArgument(f"{field}.birth_date", "is not a plausible birth date")
        elif value and name == "language" and not _LANGUAGE.fullmatch(value):
            raise InvalidArgument(f"{field}.language", "must be a BCP 47 tag like 'en-GB'")
        out[name] = value
    return out


def consents_in(consents: Any, mask_paths: list[str]) -> dict[str, dict[str, Any]]:
    if mask_paths and "consents" not in mask_paths:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for j, consent in enumerate(consents):
        channel = check_enum(consent.channel, common_pb2.Channel, f"consents[{j}].channel")
        state = check_enum(consent.state, pb.ConsentState, f"consents[{j}].state")
        out[channel] = {"state": state}
    return out


def check_update_mask(paths: list[str]) -> None:
    allowed = {"attributes", "consents", *(f"attributes.{n}" for n in ATTRIBUTE_FIELDS)}
    for path in paths:
        if path not in allowed:
            raise InvalidArgument("update_mask", f"unknown path {path!r}")


def field_mask_in(mask: field_mask_pb2.FieldMask, field: str = "field_mask") -> list[str]:
    paths = list(mask.paths)
    for path in paths:
        if path.split(".", 1)[0] not in PROFILE_FIELDS:
            raise InvalidArgument(field, f"unknown profile field {path!r}")
    return paths


def watch_paths_in(paths: Any, field: str = "filter.field_paths") -> list[str]:
    prefixes = list(paths)
    for i, path in enumerate(prefixes):
        check_text(path, f"{field}[{i}]", max_len=128, required=True)
        if path.split(".", 1)[0] not in PROFILE_FIELDS:
            raise InvalidArgument(f"{field}[{i}]", f"unknown profile field {path!r}")
    return prefixes


def namespace_in(namespace: str) -> str:
    if not _NAMESPACE.fullmatch(namespace):
        raise InvalidArgument("namespace", "must be lower_snake_case, 1-32 characters")
    return namespace


def traits_in(traits: Any) -> dict[str, Any]:
    """Trait key -> JSON value; None removes the trait."""
    if not traits:
        raise InvalidArgument("traits", "is required")
    if len(traits) > MAX_TRAITS:
        raise InvalidArgument("traits", f"at most {MAX_TRAITS} traits a call")
    out: dict[str, Any] = {}
    for key, value in traits.items():
        if not _TRAIT_KEY.fullmatch(key):
            raise InvalidArgument(f"traits[{key!r}]", "keys are lower_snake_case")
        if value.ByteSize() > MAX_TRAIT_BYTES:
            raise InvalidArgument(f"traits[{key!r}]", "is larger than 4 KiB")
        kind = value.WhichOneof("kind")
        if kind is None:
            raise InvalidArgument(f"traits[{key!r}]", "has no value (use null to remove)")
        check_finite(value, f"traits[{key!r}]")
        out[key] = None if kind == "null_value" else MessageToDict(value)
    return out


def row_cursor_in(position: Any, field: str = "page_token") -> tuple[float, str] | None:
    """(time, event id) of the last row a page held. Tokens are unsigned, so a caller can forge
    one: anything but a finite storable time and an event id is malformed, not a crash."""
    if position is None:
        return None
    if not (isinstance(position, list) and len(position) == 2):
        raise InvalidArgument(field, "is malformed")
    at, event_id = position
    low, high = _TIME_RANGE
    if (
        isinstance(at, bool)
        or not isinstance(at, int | float)
        or not math.isfinite(at)
        or not low <= at <= high
        or not isinstance(event_id, str)
        or len(event_id) > 128
    ):
        raise InvalidArgument(field, "is malformed")
    return float(at), event_id


def export_cursor_in(position: Any) -> ExportCursor | None:
    if position is None:
        return None
    if not (isinstance(position, list) and len(position) == 4):
        raise InvalidArgument("page_token", "is malformed")
    customer_id, part, *after = position
    if not isinstance(customer_id, str) or part not in ("events", "purchases"):
        raise InvalidArgument("page_token", "is malformed")
    return ExportCursor(customer_id, part, row_cursor_in(after))
