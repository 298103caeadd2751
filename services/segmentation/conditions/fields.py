"""The field paths a condition may name, their value types and where each value comes from.

Three vocabularies: profile paths (`Property` at the top level), event paths (`Property`
inside `EventCond.filters`) and context paths (`ContextCond`). A path resolves to a
`FieldSpec`; both evaluators dispatch on its `source`, so a path means the same thing to
the per-customer evaluator and to the SQL compiler.

Kinds:
    number     numbers (ints, money in whole units, scores)
    timestamp  epoch seconds; written as RFC 3339 strings in conditions
    string     compared by code point; an empty string is absent
    enum       short names ("ACTIVE"); conditions may use the full proto name
    dynamic    a JSON value (traits, event properties): the condition's value decides the
               comparison and a value of another JSON type behaves as absent
    list       a list of strings (context cart.skus / cart.categories)
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ATTRIBUTE_NAMES",
    "CHANNELS",
    "CONSENT_STATES",
    "DAY",
    "OPS_BY_KIND",
    "PROFILE_STATUSES",
    "FieldSpec",
    "context_field",
    "event_field",
    "profile_field",
]

DAY = 86_400.0

# The generated enums' short names; tests/unit/test_conditions.py checks them against the stubs.
PROFILE_STATUSES = ("NEW", "ACTIVE", "CHURN_RISK", "LAPSED")
CHANNELS = ("WEB", "MOBILE_APP", "EMAIL", "CALL_CENTER", "STORE", "SMS")
CONSENT_STATES = ("GRANTED", "DENIED")
ATTRIBUTE_NAMES = ("name", "email", "phone", "region", "city", "birth_date", "language")

_ORDERED = frozenset({"EQ", "NE", "LT", "LTE", "GT", "GTE", "IN", "BETWEEN", "EXISTS"})
OPS_BY_KIND: dict[str, frozenset[str]] = {
    "number": _ORDERED,
    "timestamp": _ORDERED,
    "string": _ORDERED | {"CONTAINS", "PREFIX"},
    "enum": frozenset({"EQ", "NE", "IN", "EXISTS"}),
    "dynamic": _ORDERED | {"CONTAINS", "PREFIX"},
    "list": frozenset({"CONTAINS", "IN", "EXISTS"}),
}


@dataclass(frozen=True)
class FieldSpec:
    path: str
    kind: str
    # ("column", name) | ("status",) | ("recency_days",) | ("doc", section, key)
    # | ("properties", key) | ("context", name) | ("context_attribute", key)
    source: tuple[str, ...]
    enum_values: tuple[str, ...] = ()
    enum_prefix: str = ""
    time_dependent: bool = False
    ops: frozenset[str] = field(default=frozenset())

    def __post_init__(self) -> None:
        if not self.ops:
            object.__setattr__(self, "ops", OPS_BY_KIND[self.kind])


def _column(path: str, kind: str, column: str) -> FieldSpec:
    return FieldSpec(path, kind, ("column", column))


_PROFILE_STATIC = {
    spec.path: spec
    for spec in (
        FieldSpec(
            "status",
            "enum",
            ("status",),
            PROFILE_STATUSES,
            "PROFILE_STATUS_",
            time_dependent=True,
        ),
        _column("purchase_summary.orders", "number", "orders"),
        _column("purchase_summary.returns", "number", "returns"),
        _column("purchase_summary.revenue", "number", "revenue"),
        _column("purchase_summary.first_purchase_at", "timestamp", "first_purchase_at"),
        _column("purchase_summary.last_purchase_at", "timestamp", "last_purchase_at"),
        FieldSpec("rfm.recency_days", "number", ("recency_days",), time_dependent=True),
        _column("rfm.frequency", "number", "orders"),
        _column("rfm.monetary", "number", "revenue"),
        _column("rfm.recency_score", "number", "recency_score"),
        _column("rfm.frequency_score", "number", "frequency_score"),
        _column("rfm.monetary_score", "number", "monetary_score"),
        _column("engagement_score", "number", "engagement_score"),
        _column("created_at", "timestamp", "created_at"),
        _column("last_activity_at", "timestamp", "last_activity_at"),
    )
}

_EVENT_STATIC = {
    spec.path: spec
    for spec in (
        _column("category", "string", "category"),
        _column("sku", "string", "sku"),
        FieldSpec("channel", "enum", ("column", "channel"), CHANNELS, "CHANNEL_"),
        _column("order.total", "number", "order_total"),
        _column("quantity", "number", "quantity"),
    )
}

_CONTEXT_STATIC = {
    spec.path: spec
    for spec in (
        FieldSpec("channel", "enum", ("context", "channel"), CHANNELS, "CHANNEL_"),
        FieldSpec("placement", "string", ("context", "placement")),
        FieldSpec("region", "string", ("context", "region")),
        FieldSpec("current_sku", "string", ("context", "current_sku")),
        FieldSpec("cart.total", "number", ("context", "cart.total")),
        FieldSpec("cart.quantity", "number", ("context", "cart.quantity")),
        FieldSpec("cart.skus", "list", ("context", "cart.skus")),
        FieldSpec("cart.categories", "list", ("context", "cart.categories")),
        FieldSpec("now.hour", "number", ("context", "now.hour")),
        FieldSpec("now.weekday", "number", ("context", "now.weekday")),
    )
}


def profile_field(path: str) -> FieldSpec | None:
    """The profile field `path` names, or None when there is no such field."""
    if path in _PROFILE_STATIC:
        return _PROFILE_STATIC[path]
    head, dot, rest = path.partition(".")
    if not dot or not rest:
        return None
    if head == "attributes" and rest in ATTRIBUTE_NAMES:
        return FieldSpec(path, "string", ("doc", "attributes", rest))
    if head == "interests":
        return FieldSpec(path, "number", ("doc", "interests", rest))
    if head == "traits":
        namespace, dot, key = rest.partition(".")
        if namespace and dot and key:
            return FieldSpec(path, "dynamic", ("doc", "traits", rest))
        return None
    if head == "consents" and rest in CHANNELS:
        return FieldSpec(path, "enum", ("doc", "consents", rest), CONSENT_STATES, "CONSENT_STATE_")
    return None


def event_field(path: str) -> FieldSpec | None:
    """The event field `path` names (inside an event condition's filters), or None."""
    if path in _EVENT_STATIC:
        return _EVENT_STATIC[path]
    head, dot, rest = path.partition(".")
    if head == "properties" and dot and rest:
        return FieldSpec(path, "dynamic", ("properties", rest))
    return None


def context_field(path: str) -> FieldSpec | None:
    """The request-context field `path` names, or None."""
    if path in _CONTEXT_STATIC:
        return _CONTEXT_STATIC[path]
    head, dot, rest = path.partition(".")
    if head == "attributes" and dot and rest:
        return FieldSpec(path, "string", ("context_attribute", rest))
    return None
