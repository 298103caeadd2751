"""Input checks shared by every entrypoint: each failure names the field it is about."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import re
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.message import Message

from libs.errors import InvalidArgument

__all__ = [
    "check_enum",
    "check_finite",
    "check_size",
    "check_text",
    "decode_page_token",
    "encode_page_token",
    "page_size",
]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # tab and newline are text, the rest is not


def check_text(
    value: str, field: str, *, max_len: int = 256, required: bool = False, multiline: bool = False
) -> str:
    if required and not value.strip():
        raise InvalidArgument(field, "is required")
    if len(value) > max_len:
        raise InvalidArgument(field, f"is longer than {max_len} characters")
    if _CONTROL.search(value) or (not multiline and ("\n" in value or "\t" in value)):
        raise InvalidArgument(field, "must not contain control characters")
    return value


def check_enum(value: int, enum: Any, field: str, *, required: bool = True) -> str:
    """The enum value's name without its prefix ("EVENT_TYPE_PURCHASE" -> "PURCHASE")."""
    name = _short_names(enum.DESCRIPTOR).get(value)
    if name is None:
        raise InvalidArgument(field, f"unknown value {value}")
    if not name:
        if required:
            raise InvalidArgument(field, "is required (UNSPECIFIED is not a value)")
        return ""
    return name


@functools.cache
def _short_names(descriptor: Any) -> dict[int, str]:
    """Number -> name without the enum's prefix ("" for UNSPECIFIED), once per enum: the
    wrapper's `values()` builds a new list on every call, three times per tracked event."""
    prefix = descriptor.values[0].name.removesuffix("UNSPECIFIED")
    names: dict[int, str] = {}
    for v in descriptor.values:  # the first name of a number, as EnumTypeWrapper.Name
        short = "" if v.name.endswith("_UNSPECIFIED") else v.name.removeprefix(prefix)
        names.setdefault(v.number, short)
    return names


def page_size(value: int, field: str = "page_size", default: int = 50, maximum: int = 1000) -> int:
    if value < 0 or value > maximum:
        raise InvalidArgument(field, f"must be between 0 and {maximum}")
    return value or default


def _scope_tag(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:12]


def encode_page_token(position: Any, scope: str) -> str:
    """An opaque cursor, valid only for the listing (scope) that issued it."""
    raw = json.dumps({"p": position, "s": _scope_tag(scope)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str, scope: str, field: str = "page_token") -> Any:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        position, tag = data["p"], data["s"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(field, "is not a page token issued by this listing") from exc
    if tag != _scope_tag(scope):
        raise InvalidArgument(field, "belongs to another listing")
    return position


def check_size(message: Message, field: str, max_bytes: int) -> None:
    if message.ByteSize() > max_bytes:
        raise InvalidArgument(field, f"is larger than {max_bytes} bytes")


def check_finite(
    value: struct_pb2.Struct | struct_pb2.Value | struct_pb2.ListValue, field: str
) -> None:
    """Every number anywhere inside a Struct, Value or ListValue is finite.

    The wire format carries NaN and ±Infinity, but JSON has no form for them: stored, rendered
    or passed on they fail far from the caller (an INTERNAL), and they are never a measurement.
    The violation names the path, e.g. `traits['points']['history'][2]`.
    """
    if isinstance(value, struct_pb2.Struct):
        for key, item in value.fields.items():
            check_finite(item, f"{field}[{key!r}]")
    elif isinstance(value, struct_pb2.ListValue):
        for i, item in enumerate(value.values):
            check_finite(item, f"{field}[{i}]")
    else:
        kind = value.WhichOneof("kind")
        if kind == "number_value" and not math.isfinite(value.number_value):
            raise InvalidArgument(field, "must be a finite number, not NaN or Infinity")
        if kind == "struct_value":
            check_finite(value.struct_value, field)
        elif kind == "list_value":
            check_finite(value.list_value, field)
