"""Small protobuf conversions every service needs (timestamps, enum names, money)."""

from __future__ import annotations

import functools
from typing import Any

from backcrm.common.v1 import common_pb2
from google.protobuf import timestamp_pb2

__all__ = ["enum", "money", "seconds_of", "short_name", "ts"]


def enum(enum_type: Any, name: str) -> Any:
    """An enum value by name; typed Any because the generated stubs type fields by enum class."""
    return enum_type.Value(name)


@functools.cache  # a few enums' values; callers name one per event, per request
def short_name(enum_type: Any, value: int) -> str:
    """ "CHANNEL_WEB" -> "WEB": the value's name without the enum's prefix."""
    name: str = enum_type.Name(value)
    prefix = enum_type.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")
    return name.removeprefix(prefix)


def ts(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    nanos = round(seconds * 1e9)
    stamp.seconds, stamp.nanos = divmod(nanos, 1_000_000_000)
    return stamp


def seconds_of(stamp: timestamp_pb2.Timestamp) -> float:
    return float(stamp.seconds + stamp.nanos / 1e9)


def money(micros: int, currency: str) -> common_pb2.Money:
    """An amount in integer micros of a currency (never floats for money)."""
    return common_pb2.Money(currency=currency, units_micros=micros)
