"""No request a caller can send makes a service answer UNKNOWN or INTERNAL.

Every unary RPC of every implemented service gets an empty request, a request whose fields
hold hostile values (control characters, negative numbers, huge sizes, unknown enum values),
and bytes that are not a protobuf message at all.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from backcrm.profile.v1 import profile_service_pb2
from backcrm.segmentation.v1 import segmentation_service_pb2
from google.protobuf import descriptor, message, message_factory

from tests.e2e.conftest import Suite

pytestmark = pytest.mark.e2e

SERVICES = [
    profile_service_pb2.DESCRIPTOR.services_by_name["ProfileService"],
    segmentation_service_pb2.DESCRIPTOR.services_by_name["SegmentationService"],
]
METHODS = [(s, m) for s in SERVICES for m in s.methods if not m.server_streaming]
FD = descriptor.FieldDescriptor


def hostile(msg: message.Message, depth: int = 0) -> message.Message:
    """Fill every field with something a careless or malicious caller might send."""
    for field in msg.DESCRIPTOR.fields:
        if field.message_type is not None:
            if field.message_type.full_name.startswith("google.protobuf.") or depth > 3:
                continue
            if field.is_repeated:
                if field.message_type.GetOptions().map_entry:
                    continue
                for _ in range(2):
                    hostile(getattr(msg, field.name).add(), depth + 1)
            else:
                hostile(getattr(msg, field.name), depth + 1)
            continue
        value: Any
        if field.type == FD.TYPE_STRING:
            value = "\x00\x07bad\n" + "x" * 3000
        elif field.type == FD.TYPE_ENUM:
            value = 9999
        elif field.type == FD.TYPE_BOOL:
            value = True
        elif field.type in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
            value = float("nan")
        elif field.type == FD.TYPE_BYTES:
            value = b"\xff" * 10
        else:
            value = -(2**31)
        if field.is_repeated:
            getattr(msg, field.name).extend([value, value])
        else:  # in a oneof, the last field set wins: fine, it is hostile too
            setattr(msg, field.name, value)
    return msg


@pytest.mark.parametrize(
    ("service", "method"), METHODS, ids=[f"{s.name}.{m.name}" for s, m in METHODS]
)
async def test_no_request_gets_unknown_or_internal(suite: Suite, service: Any, method: Any) -> None:
    request_cls = message_factory.GetMessageClass(method.input_type)
    path = f"/{service.full_name}/{method.name}"
    payloads = [
        request_cls().SerializeToString(),
        hostile(request_cls()).SerializeToString(),
        b"\x0a\xff\xff\xff\xff\x0f garbage",
    ]
    async with grpc.aio.insecure_channel(suite.address) as channel:
        call = channel.unary_unary(
            path, request_serializer=lambda b: b, response_deserializer=lambda b: b
        )
        for payload in payloads:
            try:
                await call(payload, metadata=(("authorization", "Bearer tok-admin"),), timeout=20)
            except grpc.aio.AioRpcError as err:
                assert err.code() not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), (
                    f"{path}: {err.code()} {err.details()}"
                )
