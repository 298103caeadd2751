"""No request a caller can send makes a service answer UNKNOWN or INTERNAL.

Every unary RPC of every registered service (services/registry.py) gets an empty request, a
request whose fields hold hostile values (control characters, negative numbers, huge sizes,
unknown enum values), and bytes that are not a protobuf message at all. The profile RPCs also
get values that are well-formed on the wire but out of any range storage and rendering can
hold: times 30,000 years away, amounts past int64, NaN and Infinity nested in Structs, forged
page tokens.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2
from backcrm.segmentation.v1 import condition_pb2, segmentation_service_pb2
from google.protobuf import descriptor, message, message_factory, struct_pb2, timestamp_pb2

from libs.validation import encode_page_token
from services.registry import contracts
from tests.e2e.conftest import Suite
from tests.e2e.helpers import email, event, field_violations, purchase, rpc_error

pytestmark = pytest.mark.e2e

METHODS = [(s, m) for s in contracts() for m in s.methods if not m.server_streaming]
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


# ---------------------------------------------------------------- values in range, finite

INT64_MAX = 2**63 - 1


def _uid() -> str:
    return uuid.uuid4().hex[:10]


def _dated_purchase(who: common_pb2.CustomerRef, seconds: int) -> profile_service_pb2.Event:
    e = purchase(_uid(), who, _uid(), ("s", "c", 1, 1_000_000))
    e.order.placed_at.seconds = seconds  # what a hostile caller can put on the wire
    return e


def _with_properties(who: common_pb2.CustomerRef, values: dict[str, Any]) -> Any:
    e = event(_uid(), who)
    e.properties.update(values)
    return e


async def test_out_of_range_and_non_finite_events_are_rejected_by_index(suite: Suite) -> None:
    who = email(f"{_uid()}@example.com")
    batch = [
        event(_uid(), who),
        _dated_purchase(who, 10**12),
        _dated_purchase(who, -(10**11)),
        purchase(_uid(), who, _uid(), ("s", "c", 1_000_000, 2**62)),
        _with_properties(who, {"price": float("nan")}),
        _with_properties(who, {"a": {"b": [1, float("inf")]}}),
        _with_properties(who, {"a": [{"b": float("-inf")}]}),
    ]
    reply = await suite.client().profile.TrackEvents(
        profile_service_pb2.TrackEventsRequest(events=batch)
    )
    assert reply.accepted == 1
    assert [(r.index, r.field) for r in reply.rejected] == [
        (1, "events[1].order.placed_at"),
        (2, "events[2].order.placed_at"),
        (3, "events[3].order.lines[0].unit_price.units_micros"),
        (4, "events[4].properties['price']"),
        (5, "events[5].properties['a']['b'][1]"),
        (6, "events[6].properties['a'][0]['b']"),
    ]


async def test_revenue_past_int64_saturates_and_the_profile_stays_readable(suite: Suite) -> None:
    who = email(f"{_uid()}@example.com")
    api = suite.client().profile
    huge = [purchase(_uid(), who, _uid(), ("s", "c", 1, INT64_MAX)) for _ in range(3)]
    reply = await api.TrackEvents(profile_service_pb2.TrackEventsRequest(events=huge))
    assert (reply.accepted, list(reply.rejected)) == (3, [])
    profile = (await api.GetProfile(profile_service_pb2.GetProfileRequest(customer=who))).profile
    assert profile.purchase_summary.orders == 3
    assert profile.purchase_summary.revenue.units_micros == INT64_MAX


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("points", {"history": [1, float("nan")]}, "traits['points']['history'][1]"),
        ("points", {"best": float("inf")}, "traits['points']['best']"),
        ("points", [float("-inf")], "traits['points'][0]"),
        ("points\n", 1, "traits['points\\n']"),
    ],
)
async def test_set_traits_refuses_non_finite_values_and_bad_keys(
    suite: Suite, key: str, value: Any, field: str
) -> None:
    who = email(f"{_uid()}@example.com")
    api = suite.client().profile
    await api.TrackEvents(profile_service_pb2.TrackEventsRequest(events=[event(_uid(), who)]))
    traits = struct_pb2.Struct()
    traits.update({key: value})
    err = await rpc_error(
        api.SetTraits(
            profile_service_pb2.SetTraitsRequest(
                customer=who, namespace="bonus", traits=dict(traits.fields)
            )
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert field_violations(err) == [field]


@pytest.mark.parametrize(
    "position", [[1e300, "x"], [float("nan"), "x"], [-1e300, "x"], [True, "x"], [1.0, 7], "x"]
)
async def test_forged_purchase_page_tokens_are_invalid_argument(
    suite: Suite, position: Any
) -> None:
    who = email(f"{_uid()}@example.com")
    api = suite.client().profile
    await api.TrackEvents(
        profile_service_pb2.TrackEventsRequest(
            events=[purchase(_uid(), who, _uid(), ("s", "c", 1, 1))]
        )
    )
    # The token is opaque but unsigned: forge one the way the server encodes them.
    token = encode_page_token(position, f"purchases:{who.SerializeToString().hex()}")
    err = await rpc_error(
        api.ListPurchases(profile_service_pb2.ListPurchasesRequest(customer=who, page_token=token))
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert field_violations(err) == ["page_token"]


def _number_condition(value: struct_pb2.Value, path: str = "purchase_summary.revenue") -> Any:
    op = (
        condition_pb2.OPERATOR_BETWEEN
        if value.WhichOneof("kind") == "list_value"
        else condition_pb2.OPERATOR_GTE
    )
    if path.startswith("traits."):
        op = condition_pb2.OPERATOR_EQ
    return condition_pb2.Condition(
        property=condition_pb2.PropertyCondition(path=path, op=op, value=value)
    )


def _event_condition(count: int = 1, within: int = 0) -> Any:
    event = condition_pb2.EventCondition(
        type=profile_service_pb2.EVENT_TYPE_PRODUCT_VIEW,
        count_op=condition_pb2.OPERATOR_GTE,
        count=count,
    )
    if within:
        event.within.seconds = within
    return condition_pb2.Condition(event=event)


def _forged(position: Any, scope: str) -> str:
    # Page tokens are opaque, not secret: anyone can build one in the format the server uses.
    return encode_page_token(position, scope)


def _numbers() -> list[struct_pb2.Value]:
    hostile_numbers = [float("nan"), float("inf"), float("-inf"), 1e300, -1e300]
    values = [struct_pb2.Value(number_value=n) for n in hostile_numbers]
    between = struct_pb2.Value(
        list_value=struct_pb2.ListValue(
            values=[struct_pb2.Value(number_value=0), struct_pb2.Value(number_value=1e300)]
        )
    )
    return [*values, between]


SEG = segmentation_service_pb2
SEGMENTATION_CASES: list[tuple[str, str, message.Message, str]] = [
    *[
        (
            f"preview-{i}",
            "PreviewSegment",
            SEG.PreviewSegmentRequest(condition=_number_condition(v)),
            "condition.property.value",
        )
        for i, v in enumerate(_numbers())
    ],
    *[
        (
            f"create-{i}",
            "CreateSegment",
            SEG.CreateSegmentRequest(segment=SEG.Segment(name="x", condition=_number_condition(v))),
            "segment.condition.property.value",
        )
        for i, v in enumerate(_numbers())
    ],
    (
        "trait-nan",
        "PreviewSegment",
        SEG.PreviewSegmentRequest(
            condition=_number_condition(struct_pb2.Value(number_value=float("nan")), "traits.a.b")
        ),
        "condition.property.value",
    ),
    (
        "evaluate-inf",
        "EvaluateConditions",
        SEG.EvaluateConditionsRequest(
            customer=common_pb2.CustomerRef(customer_id="c1"),
            conditions=[_number_condition(struct_pb2.Value(number_value=float("inf")))],
        ),
        "conditions[0].property.value",
    ),
    (
        "huge-count",
        "PreviewSegment",
        SEG.PreviewSegmentRequest(condition=_event_condition(count=2**63 - 1)),
        "condition.event.count",
    ),
    (
        "huge-within",
        "PreviewSegment",
        SEG.PreviewSegmentRequest(condition=_event_condition(within=10**15)),
        "condition.event.within",
    ),
    (
        "segments-token-number",
        "ListSegments",
        SEG.ListSegmentsRequest(page_token=_forged(1e300, "segments:")),
        "page_token",
    ),
    (
        "segments-token-nul",
        "ListSegments",
        SEG.ListSegmentsRequest(page_token=_forged("\x00a", "segments:")),
        "page_token",
    ),
    (
        "segments-token-surrogate",
        "ListSegments",
        SEG.ListSegmentsRequest(page_token=_forged("\ud800", "segments:")),
        "page_token",
    ),
    (
        "members-token-nul",
        "ListMembers",
        SEG.ListMembersRequest(segment_id="s1", page_token=_forged("\x00", "members:s1")),
        "page_token",
    ),
    (
        "members-token-number",
        "ListMembers",
        SEG.ListMembersRequest(segment_id="s1", page_token=_forged(1e300, "members:s1")),
        "page_token",
    ),
    (
        "rfm-far-future",
        "RecomputeRfm",
        SEG.RecomputeRfmRequest(as_of=timestamp_pb2.Timestamp(seconds=10**15)),
        "as_of",
    ),
    (
        "rfm-bad-nanos",
        "RecomputeRfm",
        SEG.RecomputeRfmRequest(as_of=timestamp_pb2.Timestamp(seconds=10, nanos=-5)),
        "as_of.nanos",
    ),
]


@pytest.mark.parametrize(
    ("method", "request_message", "field"),
    [case[1:] for case in SEGMENTATION_CASES],
    ids=[case[0] for case in SEGMENTATION_CASES],
)
async def test_hostile_numbers_name_the_field(
    suite: Suite, method: str, request_message: message.Message, field: str
) -> None:
    api = suite.client().segmentation
    err = await rpc_error(getattr(api, method)(request_message))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{err.code()} {err.details()}"
    assert field in field_violations(err)
