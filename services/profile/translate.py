"""Proto requests -> validated domain values. Every failure names its field path."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as pb
from google.protobuf.json_format import MessageToDict

from libs.errors import InvalidArgument
from libs.protoutil import seconds_of
from libs.validation import check_enum, check_finite, check_size, check_text
from services.profile.domain import CartLine, EventIn, IdentityKey, OrderIn
from services.profile.handlers import CustomerLookup
from services.profile.identities import normalise_identity

__all__ = [
    "MAX_EVENTS",
    "attributes_in",
    "consents_in",
    "event_in",
    "lookup_in",
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


def identity_in(identity: common_pb2.Identity, field: str) -> IdentityKey:
    kind = check_enum(identity.type, common_pb2.IdentityType, f"{field}.type")
    return kind, normalise_identity(kind, identity.value, f"{field}.value")


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
