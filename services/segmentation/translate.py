"""Protobuf <-> segmentation's domain values: profile changes in, segments, memberships and
RFM scores out (the entrypoint's requests and responses, and the bus payloads)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as profile_pb
from backcrm.segmentation.v1 import condition_pb2
from backcrm.segmentation.v1 import segmentation_service_pb2 as pb
from google.protobuf.json_format import MessageToDict

from libs.errors import InvalidArgument
from libs.protoutil import enum, enum_values, seconds_of, short_name, stamp, ts
from libs.topics import SEGMENTATION_MEMBERSHIP, SEGMENTATION_RFM, SEGMENTATION_SEGMENTS
from services.segmentation.conditions import MAX_NODES, Node, count_nodes, parse_condition
from services.segmentation.engine import ProfileUpdate
from services.segmentation.facts import CartItem, ContextFacts, CustomerFacts, FactEvent
from services.segmentation.records import MembershipChange, SegmentRecord
from services.segmentation.rfm import RfmResult

__all__ = [
    "MAX_REQUEST_NODES",
    "conditions_in",
    "context_facts",
    "encode_membership_change",
    "encode_segment_change",
    "membership_change_proto",
    "profile_update",
    "rfm_bounds",
    "segment_proto",
]

MICROS = 1_000_000
# Condition nodes one request may hold across all its conditions (each is also capped at
# MAX_NODES): five maximal trees, or 100 conditions of 50 nodes. Parsing costs about 20 µs a
# node, so this bounds the work one call can ask for.
MAX_REQUEST_NODES = 5 * MAX_NODES
# Trees bigger than this (a few milliseconds of work) are parsed in a worker thread, so one
# request never holds up every other call of the process.
OFF_LOOP_NODES = 200


async def conditions_in(
    conditions: Sequence[tuple[condition_pb2.Condition, str]],
    field: str,
    segment_exists: Callable[[str], bool],
) -> list[Node]:
    """Parse a request's conditions (each with the field naming it) within its node budget:
    InvalidArgument naming `field` when the request holds more than MAX_REQUEST_NODES; big
    ones off the event loop."""
    total = 0
    for condition, where in conditions:
        # Counting stops at the first tree past the budget: an oversized request costs
        # at most MAX_REQUEST_NODES + MAX_NODES steps, however many nodes it holds.
        total += count_nodes(condition, where)
        if total > MAX_REQUEST_NODES:
            raise InvalidArgument(
                field, f"the request holds more than {MAX_REQUEST_NODES} condition nodes"
            )

    def parse() -> list[Node]:
        return [parse_condition(c, where, segment_exists=segment_exists) for c, where in conditions]

    if total > OFF_LOOP_NODES:
        return await asyncio.to_thread(parse)
    return parse()


def facts_of_profile(profile: profile_pb.Profile) -> CustomerFacts:
    summary = profile.purchase_summary
    attributes = {
        field.name: value
        for field, value in profile.attributes.ListFields()
        if isinstance(value, str) and value
    }
    return CustomerFacts(
        customer_id=profile.customer_id,
        version=profile.version,
        created_at=seconds_of(profile.created_at),
        last_activity_at=seconds_of(profile.last_activity_at),
        orders=summary.orders,
        returns=summary.returns,
        revenue=summary.revenue.units_micros / MICROS,
        first_purchase_at=seconds_of(summary.first_purchase_at)
        if summary.HasField("first_purchase_at")
        else None,
        last_purchase_at=seconds_of(summary.last_purchase_at)
        if summary.HasField("last_purchase_at")
        else None,
        engagement_score=profile.engagement_score,
        recency_score=profile.rfm.recency_score,
        frequency_score=profile.rfm.frequency_score,
        monetary_score=profile.rfm.monetary_score,
        attributes=attributes,
        interests=dict(profile.interests),
        traits={k: MessageToDict(v) for k, v in profile.traits.items()},
        consents={
            short_name(common_pb2.Channel, c.channel): short_name(profile_pb.ConsentState, c.state)
            for c in profile.consents
            if c.channel and c.state
        },
    )


def facts_of_events(customer_id: str, events: Any) -> list[FactEvent]:
    """One fact per event; a purchase becomes one fact per category it bought, so "bought in
    category X" counts orders that contained X."""
    out: list[FactEvent] = []
    for event in events:
        kind = short_name(profile_pb.EventType, event.type)
        common: dict[str, Any] = {
            "customer_id": customer_id,
            "type": kind,
            "channel": short_name(common_pb2.Channel, event.channel) if event.channel else "",
            "occurred_at": seconds_of(event.occurred_at),
            "properties": MessageToDict(event.properties) if event.HasField("properties") else {},
        }
        if event.HasField("order") and event.order.lines:
            total = event.order.total.units_micros / MICROS
            by_category: dict[str, list[Any]] = {}
            for line in event.order.lines:
                by_category.setdefault(line.category, []).append(line)
            for category, lines in by_category.items():
                suffix = "" if len(by_category) == 1 else f"#{category}"
                out.append(
                    FactEvent(
                        event_id=f"{event.event_id}{suffix}"[:128],
                        category=category,
                        sku=lines[0].sku,
                        quantity=sum(line.quantity for line in lines),
                        order_total=total,
                        **common,
                    )
                )
        else:
            out.append(
                FactEvent(
                    event_id=event.event_id,
                    category=event.category,
                    sku=event.sku,
                    quantity=event.quantity,
                    order_total=None,
                    **common,
                )
            )
    return out


def profile_update(change: profile_pb.ProfileChanged) -> ProfileUpdate:
    types = tuple(short_name(profile_pb.EventType, t) for t in change.event_types)
    reason = (
        f"events {', '.join(change.event_ids[:3])}{'…' if len(change.event_ids) > 3 else ''}"
        if change.event_ids
        else f"profile change ({', '.join(change.changed_paths[:3])})"
    )
    return ProfileUpdate(
        customer_id=change.customer_id,
        paths=tuple(change.changed_paths),
        event_types=types,
        facts=facts_of_profile(change.profile) if change.HasField("profile") else None,
        events=tuple(facts_of_events(change.customer_id, change.events)),
        reason=reason,
    )


def context_facts(context: common_pb2.Context, now: float) -> ContextFacts:
    return ContextFacts(
        channel=short_name(common_pb2.Channel, context.channel) if context.channel else "",
        placement=context.placement,
        region=context.region,
        current_sku=context.current_sku,
        cart=[
            CartItem(line.sku, line.category, line.quantity, line.unit_price.units_micros / MICROS)
            for line in context.cart
        ],
        attributes=dict(context.attributes),
        now=now,
    )


# ENTERED/LEFT -> MembershipChangeType: a batch of changes encodes hundreds of these
_CHANGE_TYPES = enum_values(pb.MembershipChangeType)


def membership_change_proto(change: MembershipChange) -> pb.MembershipChange:
    return pb.MembershipChange(
        segment_id=change.segment_id,
        customer_id=change.customer_id,
        change=_CHANGE_TYPES[change.change],
        changed_at=stamp(change.at),
        reason=change.reason,
    )


def encode_membership_change(change: MembershipChange) -> tuple[str, bytes]:
    return SEGMENTATION_MEMBERSHIP.outbox_row(membership_change_proto(change))


def encode_segment_change(
    segment_id: str, change: str, record: SegmentRecord | None, at: float
) -> tuple[str, bytes]:
    message = pb.SegmentChanged(
        segment_id=segment_id,
        change=enum(pb.SegmentChangeType, f"SEGMENT_CHANGE_TYPE_{change}"),
        changed_at=ts(at),
    )
    if record is not None:
        message.segment.CopyFrom(segment_proto(record))
    return SEGMENTATION_SEGMENTS.outbox_row(message)


def segment_proto(record: SegmentRecord) -> pb.Segment:
    segment = pb.Segment(
        segment_id=record.segment_id,
        name=record.name,
        description=record.description,
        condition=condition_pb2.Condition.FromString(record.condition),
        kind=enum(pb.SegmentKind, f"SEGMENT_KIND_{record.kind}"),
        member_count=record.member_count if record.kind == "BEHAVIORAL" else 0,
        state=enum(pb.SegmentState, f"SEGMENT_STATE_{record.state}"),
        build_progress=record.build_progress,
        created_at=ts(record.created_at),
        updated_at=ts(record.updated_at),
    )
    if record.built_at is not None:
        segment.built_at.CopyFrom(ts(record.built_at))
    return segment


def encode_rfm(
    scores: Sequence[tuple[str, int, int, int]], as_of: float, result: RfmResult, run: int
) -> tuple[str, bytes]:
    message = pb.RfmScored(
        scores=[
            pb.CustomerRfmScore(customer_id=c, recency_score=r, frequency_score=f, monetary_score=m)
            for c, r, f, m in scores
        ],
        computed_at=ts(as_of),
        bounds=rfm_bounds(result),
        run=run,
    )
    return SEGMENTATION_RFM.outbox_row(message)


def rfm_bounds(result: RfmResult) -> pb.RfmBounds:
    return pb.RfmBounds(
        recency_days=[int(v) for v in result.recency_cuts],
        frequency=[int(v) for v in result.frequency_cuts],
        monetary=[common_pb2.Money(units_micros=round(v * MICROS)) for v in result.monetary_cuts],
    )
