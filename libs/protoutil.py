"""Small protobuf conversions every service needs (timestamps, enum names, money)."""

from __future__ import annotations

import functools
from typing import Any

from backcrm.common.v1 import common_pb2
from google.protobuf import timestamp_pb2

__all__ = ["enum", "enum_values", "money", "seconds_of", "short_name", "stamp", "ts"]


def enum(enum_type: Any, name: str) -> Any:
    """An enum value by name; typed Any because the generated stubs type fields by enum class."""
    return enum_type.Value(name)


def _prefix(enum_type: Any) -> str:
    return str(enum_type.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED"))


@functools.cache  # a few enums' values; callers name one per event, per request
def short_name(enum_type: Any, value: int) -> str:
    """ "CHANNEL_WEB" -> "WEB": the value's name without the enum's prefix."""
    name: str = enum_type.Name(value)
    return name.removeprefix(_prefix(enum_type))


def enum_values(enum_type: Any) -> dict[str, Any]:
    """{"WEB": CHANNEL_WEB, …}: `short_name`'s inverse as a table, for hot paths that would
    otherwise format and look up a name per field (values typed Any, as `enum`'s)."""
    prefix = _prefix(enum_type)
    return {v.name.removeprefix(prefix): v.number for v in enum_type.DESCRIPTOR.values}


def stamp(seconds: float) -> dict[str, int]:
    """A Timestamp's fields as a message constructor takes them (no message built)."""
    whole, nanos = divmod(round(seconds * 1e9), 1_000_000_000)
    return {"seconds": whole, "nanos": nanos}


def ts(seconds: float) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(**stamp(seconds))


def seconds_of(stamp: timestamp_pb2.Timestamp) -> float:
    return float(stamp.seconds + stamp.nanos / 1e9)


def money(micros: int, currency: str) -> common_pb2.Money:
    """An amount in integer micros of a currency (never floats for money)."""
    return common_pb2.Money(currency=currency, units_micros=micros)
