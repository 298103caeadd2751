"""Request translation: every bad input names its exact field path; good input is normalised."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from backcrm.common.v1 import common_pb2 as c
from backcrm.profile.v1 import profile_service_pb2 as pb
from google.protobuf import timestamp_pb2

from libs.errors import InvalidArgument
from services.profile.translate import (
    MAX_PROPERTIES_BYTES,
    attributes_in,
    check_update_mask,
    consents_in,
    event_in,
    lookup_in,
)

NOW = 1_700_000_000.0
FIELD = "events[4]"


def stamp(seconds: float) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromNanoseconds(int(seconds * 1e9))
    return out


def raw_stamp(seconds: int) -> timestamp_pb2.Timestamp:
    """Any int64 seconds, as a hostile caller can send (the helpers refuse years past 9999)."""
    return timestamp_pb2.Timestamp(seconds=seconds)


def email(value: str) -> c.Identity:
    return c.Identity(type=c.IDENTITY_TYPE_EMAIL, value=value)


def good_event(**kw: Any) -> pb.Event:
    event = pb.Event(
        event_id="e-1",
        customer=c.CustomerRef(identity=email("Ann@Example.com")),
        type=pb.EVENT_TYPE_PAGE_VIEW,
        channel=c.CHANNEL_WEB,
    )
    for name, value in kw.items():
        if isinstance(value, Callable):  # type: ignore[arg-type]
            value(event)
        else:
            setattr(event, name, value)
    return event


def line(sku: str = "sku-1", quantity: int = 1, micros: int = 2_500_000, cur: str = "GBP") -> Any:
    return c.CartLine(
        sku=sku,
        category="shoes",
        quantity=quantity,
        unit_price=c.Money(currency=cur, units_micros=micros),
    )


def with_order(*lines: c.CartLine, total: c.Money | None = None, order_id: str = "o-1") -> Any:
    def set_order(event: pb.Event) -> None:
        event.type = pb.EVENT_TYPE_PURCHASE
        event.order.order_id = order_id
        event.order.lines.extend(lines)
        if total is not None:
            event.order.total.CopyFrom(total)

    return set_order


def violation(event: pb.Event) -> tuple[str, str]:
    with pytest.raises(InvalidArgument) as info:
        event_in(event, FIELD, NOW)
    assert len(info.value.violations) == 1
    return info.value.violations[0]


def set_field(path: str, value: Any) -> Callable[[pb.Event], None]:
    def apply(event: pb.Event) -> None:
        target: Any = event
        *parents, leaf = path.split(".")
        for name in parents:
            target = getattr(target, name)
        setattr(target, leaf, value)

    return apply


def clear(name: str) -> Callable[[pb.Event], None]:
    return lambda event: event.ClearField(name)


BAD_EVENTS: list[tuple[str, Callable[[pb.Event], None], str]] = [
    ("missing event id", set_field("event_id", ""), f"{FIELD}.event_id"),
    ("blank event id", set_field("event_id", "   "), f"{FIELD}.event_id"),
    ("event id too long", set_field("event_id", "x" * 129), f"{FIELD}.event_id"),
    ("missing customer", clear("customer"), f"{FIELD}.customer"),
    (
        "customer ref with nothing set",
        lambda e: e.customer.ClearField("identity"),
        f"{FIELD}.customer",
    ),
    (
        "customer id with a newline",
        set_field("customer.customer_id", "c\n1"),
        f"{FIELD}.customer.customer_id",
    ),
    (
        "malformed customer email",
        set_field("customer.identity.value", "nope"),
        f"{FIELD}.customer.identity.value",
    ),
    (
        "customer identity without type",
        set_field("customer.identity.type", c.IDENTITY_TYPE_UNSPECIFIED),
        f"{FIELD}.customer.identity.type",
    ),
    ("unknown type 999", set_field("type", 999), f"{FIELD}.type"),
    ("unspecified type", set_field("type", pb.EVENT_TYPE_UNSPECIFIED), f"{FIELD}.type"),
    ("unspecified channel", set_field("channel", c.CHANNEL_UNSPECIFIED), f"{FIELD}.channel"),
    ("unknown channel", set_field("channel", 77), f"{FIELD}.channel"),
    (
        "malformed email in identities[1]",
        lambda e: e.identities.extend([email("a@b.io"), email("not-an-email")]),
        f"{FIELD}.identities[1].value",
    ),
    (
        "unknown identity type in identities[0]",
        lambda e: e.identities.append(c.Identity(type=42, value="x")),
        f"{FIELD}.identities[0].type",
    ),
    (
        "too many identities",
        lambda e: e.identities.extend(email(f"a{i}@b.io") for i in range(21)),
        f"{FIELD}.identities",
    ),
    ("negative quantity", set_field("quantity", -1), f"{FIELD}.quantity"),
    ("control characters in sku", set_field("sku", "ab\x00c"), f"{FIELD}.sku"),
    ("tab in category", set_field("category", "a\tb"), f"{FIELD}.category"),
    (
        "future occurred_at",
        lambda e: e.occurred_at.CopyFrom(stamp(NOW + 301)),
        f"{FIELD}.occurred_at",
    ),
    (
        "occurred_at before 1970",
        lambda e: e.occurred_at.CopyFrom(stamp(-10)),
        f"{FIELD}.occurred_at",
    ),
    ("purchase without order", set_field("type", pb.EVENT_TYPE_PURCHASE), f"{FIELD}.order"),
    (
        "order on a page view",
        lambda e: e.order.lines.append(line()),
        f"{FIELD}.order",
    ),
    (
        "add to cart without sku",
        set_field("type", pb.EVENT_TYPE_ADD_TO_CART),
        f"{FIELD}.sku",
    ),
    ("order without id", with_order(line(), order_id=""), f"{FIELD}.order.order_id"),
    ("order without lines", with_order(), f"{FIELD}.order.lines"),
    (
        "order with mixed-sign lines",
        with_order(line("a", 2), line("b", -1)),
        f"{FIELD}.order.lines",
    ),
    ("zero quantity line", with_order(line(quantity=0)), f"{FIELD}.order.lines[0].quantity"),
    (
        "line sku with control character",
        with_order(line(), line(sku="a\x1bb")),
        f"{FIELD}.order.lines[1].sku",
    ),
    (
        "lines in two currencies",
        with_order(line("a", cur="GBP"), line("b", cur="EUR")),
        f"{FIELD}.order.lines",
    ),
    (
        "negative line price",
        with_order(line(micros=-5)),
        f"{FIELD}.order.lines[0].unit_price.units_micros",
    ),
    (
        "lowercase line currency",
        with_order(line(cur="gbp")),
        f"{FIELD}.order.lines[0].unit_price.currency",
    ),
    (
        "total with the opposite sign",
        with_order(line(), total=c.Money(currency="GBP", units_micros=-1)),
        f"{FIELD}.order.total",
    ),
    (
        "total in another currency",
        with_order(line(), total=c.Money(currency="EUR", units_micros=2_500_000)),
        f"{FIELD}.order.total.currency",
    ),
    (
        "wrong currency code",
        lambda e: e.unit_price.CopyFrom(c.Money(currency="POUND", units_micros=1)),
        f"{FIELD}.unit_price.currency",
    ),
    (
        "amount without currency",
        lambda e: e.unit_price.CopyFrom(c.Money(units_micros=1)),
        f"{FIELD}.unit_price.currency",
    ),
    (
        "oversized properties",
        lambda e: e.properties.update({"blob": "x" * (MAX_PROPERTIES_BYTES + 1)}),
        f"{FIELD}.properties",
    ),
    (
        "order placed 1e12 seconds after 1970",
        lambda e: (with_order(line())(e), e.order.placed_at.CopyFrom(raw_stamp(10**12))),
        f"{FIELD}.order.placed_at",
    ),
    (
        "order placed 1e11 seconds before 1970",
        lambda e: (with_order(line())(e), e.order.placed_at.CopyFrom(raw_stamp(-(10**11)))),
        f"{FIELD}.order.placed_at",
    ),
    (
        "occurred_at 1e12 seconds after 1970",
        lambda e: e.occurred_at.CopyFrom(raw_stamp(10**12)),
        f"{FIELD}.occurred_at",
    ),
    (
        "line amount past int64",
        with_order(line(quantity=1_000_000, micros=2**62)),
        f"{FIELD}.order.lines[0].unit_price.units_micros",
    ),
    (
        "lines adding up past int64",
        with_order(line("a", micros=2**62), line("b", micros=2**62)),
        f"{FIELD}.order.lines",
    ),
    (
        "line quantity past the bound",
        with_order(line(quantity=-(2**62), micros=1)),
        f"{FIELD}.order.lines[0].quantity",
    ),
    ("cart quantity past the bound", set_field("quantity", 2**62), f"{FIELD}.quantity"),
    (
        "currency with a trailing newline",
        lambda e: e.unit_price.CopyFrom(c.Money(currency="GBP\n", units_micros=1)),
        f"{FIELD}.unit_price.currency",
    ),
    (
        "NaN in properties",
        lambda e: e.properties.update({"price": float("nan")}),
        f"{FIELD}.properties['price']",
    ),
    (
        "Infinity nested in properties",
        lambda e: e.properties.update({"a": {"b": [1, float("inf")]}}),
        f"{FIELD}.properties['a']['b'][1]",
    ),
    (
        "-Infinity nested in properties",
        lambda e: e.properties.update({"a": [{"b": float("-inf")}]}),
        f"{FIELD}.properties['a'][0]['b']",
    ),
    (
        "property key with newline",
        lambda e: e.properties.update({"a\nb": 1}),
        f"{FIELD}.properties.'a\\nb'",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "path"), [(m, p) for _, m, p in BAD_EVENTS], ids=[n for n, _, _ in BAD_EVENTS]
)
def test_bad_event_names_the_exact_field(mutate: Callable[[pb.Event], None], path: str) -> None:
    event = good_event()
    mutate(event)
    field, description = violation(event)
    assert field == path
    assert description


def test_good_event_is_normalised() -> None:
    event = good_event()
    event.identities.extend(
        [
            c.Identity(type=c.IDENTITY_TYPE_PHONE, value="07700 900123"),
            c.Identity(type=c.IDENTITY_TYPE_PHONE, value="+44 7700 900123"),  # the same
        ]
    )
    event.occurred_at.CopyFrom(stamp(NOW - 60.5))
    event.properties.update({"page": "/home", "n": 2})
    event.event_id = " e-1 "
    out = event_in(event, FIELD, NOW)
    assert out.event_id == "e-1"
    assert out.identity == ("EMAIL", "ann@example.com")
    assert out.customer_id is None
    assert out.identities == (("PHONE", "+447700900123"),)
    assert (out.type, out.channel) == ("PAGE_VIEW", "WEB")
    assert out.occurred_at == pytest.approx(NOW - 60.5)
    assert out.properties == {"page": "/home", "n": 2}
    assert out.order is None


def test_occurred_at_defaults_to_now_and_small_clock_skew_is_accepted() -> None:
    assert event_in(good_event(), FIELD, NOW).occurred_at == NOW
    skewed = good_event()
    skewed.occurred_at.CopyFrom(stamp(NOW + 300))
    assert event_in(skewed, FIELD, NOW).occurred_at == NOW + 300


def test_customer_id_ref_is_trimmed() -> None:
    event = good_event(customer=lambda e: e.customer.CopyFrom(c.CustomerRef(customer_id=" abc ")))
    out = event_in(event, FIELD, NOW)
    assert (out.customer_id, out.identity) == ("abc", None)


def test_purchase_money_in_micros_and_total_computed_when_absent() -> None:
    event = good_event()
    with_order(line("a", 2, 2_500_000), line("b", 1, 1_000_000))(event)
    event.order.placed_at.CopyFrom(stamp(NOW - 100))
    order = event_in(event, FIELD, NOW).order
    assert order is not None
    assert (order.total_micros, order.currency) == (6_000_000, "GBP")
    assert order.placed_at == NOW - 100
    assert [(x.sku, x.quantity, x.unit_price_micros) for x in order.lines] == [
        ("a", 2, 2_500_000),
        ("b", 1, 1_000_000),
    ]
    assert not order.is_return


def test_explicit_total_wins_and_placed_at_defaults_to_occurred_at() -> None:
    event = good_event()
    with_order(line(), total=c.Money(currency="GBP", units_micros=2_000_000))(event)
    event.occurred_at.CopyFrom(stamp(NOW - 10))
    order = event_in(event, FIELD, NOW).order
    assert order is not None
    assert order.total_micros == 2_000_000
    assert order.placed_at == pytest.approx(NOW - 10)


def test_return_is_a_purchase_with_negative_lines() -> None:
    event = good_event()
    with_order(line("a", -1, 2_500_000))(event)
    order = event_in(event, FIELD, NOW).order
    assert order is not None
    assert order.is_return
    assert order.total_micros == -2_500_000


def test_cart_event_carries_price_and_quantity() -> None:
    event = good_event(type=pb.EVENT_TYPE_ADD_TO_CART, sku="s1", quantity=3)
    event.unit_price.CopyFrom(c.Money(currency="EUR", units_micros=1_990_000))
    out = event_in(event, FIELD, NOW)
    assert (out.sku, out.quantity, out.unit_price_micros, out.currency) == (
        "s1",
        3,
        1_990_000,
        "EUR",
    )


def test_lookup_in_requires_one_of_the_two() -> None:
    with pytest.raises(InvalidArgument) as info:
        lookup_in(c.CustomerRef(), "target")
    assert info.value.violations[0][0] == "target"


# ---------------------------------------------------------------- upsert inputs


def test_attributes_without_mask_are_the_non_empty_fields_normalised() -> None:
    attributes = pb.Attributes(
        name=" Ann ", email=" Ann@Example.COM", phone="07700 900123", language="en-GB"
    )
    assert attributes_in(attributes, []) == {
        "name": "Ann",
        "email": "ann@example.com",
        "phone": "+447700900123",
        "language": "en-GB",
    }


def test_attributes_with_mask_set_exactly_the_masked_fields_and_empty_clears() -> None:
    attributes = pb.Attributes(name="Ann", city="")
    assert attributes_in(attributes, ["attributes.city", "attributes.name"]) == {
        "city": "",
        "name": "Ann",
    }
    assert attributes_in(attributes, ["consents"]) == {}
    everything = attributes_in(attributes, ["attributes"])
    assert set(everything) == {"name", "email", "phone", "region", "city", "birth_date", "language"}
    assert everything["name"] == "Ann" and everything["region"] == ""


@pytest.mark.parametrize(
    ("attributes", "path"),
    [
        (pb.Attributes(email="nope"), "attributes.email"),
        (pb.Attributes(phone="phone"), "attributes.phone"),
        (pb.Attributes(birth_date="31/12/1990"), "attributes.birth_date"),
        (pb.Attributes(birth_date="1850-01-01"), "attributes.birth_date"),
        (pb.Attributes(birth_date="2999-01-01"), "attributes.birth_date"),
        (pb.Attributes(language="english!"), "attributes.language"),
        (pb.Attributes(city="a\x00b"), "attributes.city"),
        (pb.Attributes(name="n" * 257), "attributes.name"),
    ],
)
def test_bad_attributes_name_the_field(attributes: pb.Attributes, path: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        attributes_in(attributes, [])
    assert [f for f, _ in info.value.violations] == [path]


def test_plausible_birth_date_is_accepted() -> None:
    assert attributes_in(pb.Attributes(birth_date="1990-12-31"), []) == {"birth_date": "1990-12-31"}


def test_consents_in() -> None:
    consents = [
        pb.Consent(channel=c.CHANNEL_EMAIL, state=pb.CONSENT_STATE_GRANTED),
        pb.Consent(channel=c.CHANNEL_SMS, state=pb.CONSENT_STATE_DENIED),
    ]
    assert consents_in(consents, []) == {
        "EMAIL": {"state": "GRANTED"},
        "SMS": {"state": "DENIED"},
    }
    assert consents_in(consents, ["consents"]) == consents_in(consents, [])
    assert consents_in(consents, ["attributes.name"]) == {}


@pytest.mark.parametrize(
    ("consent", "path"),
    [
        (pb.Consent(channel=c.CHANNEL_EMAIL), "consents[1].state"),
        (pb.Consent(state=pb.CONSENT_STATE_GRANTED), "consents[1].channel"),
        (pb.Consent(channel=99, state=pb.CONSENT_STATE_GRANTED), "consents[1].channel"),
    ],
)
def test_bad_consent_names_its_index(consent: pb.Consent, path: str) -> None:
    good = pb.Consent(channel=c.CHANNEL_WEB, state=pb.CONSENT_STATE_GRANTED)
    with pytest.raises(InvalidArgument) as info:
        consents_in([good, consent], [])
    assert [f for f, _ in info.value.violations] == [path]


def test_check_update_mask() -> None:
    check_update_mask(["attributes", "attributes.email", "consents"])
    check_update_mask([])
    for bad in (["traits"], ["attributes.shoe_size"], ["consents.EMAIL"], ["version"]):
        with pytest.raises(InvalidArgument) as info:
            check_update_mask(bad)
        assert info.value.violations[0][0] == "update_mask"
        assert repr(bad[0]) in info.value.violations[0][1]
