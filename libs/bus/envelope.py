"""Build and read EventEnvelopes: the one wire format of every event on the bus.

The producer's trace context travels inside the envelope (W3C `traceparent`/`tracestate`),
so a consumer's span becomes a child of the work that caused the event, across processes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from backcrm.common.v1.common_pb2 import EventEnvelope
from google.protobuf.message import Message
from opentelemetry import propagate, trace
from opentelemetry.context import Context

__all__ = [
    "extracted_context",
    "new_envelope",
    "traced_batch_handler",
    "traced_handler",
    "unpack",
]

_tracer = trace.get_tracer("backcrm.bus")

M = TypeVar("M", bound=Message)


def new_envelope(payload: Message, producer: str, event_id: str | None = None) -> EventEnvelope:
    """Wrap a payload for publishing, stamped with now and the current trace context.

    Pass `event_id` when the event must keep a stable id across retries (e.g. an outbox row
    id), so consumers can drop the redeliveries; otherwise a fresh uuid4 is used.
    """
    envelope = EventEnvelope(
        event_id=event_id or uuid.uuid4().hex,
        type=payload.DESCRIPTOR.full_name,
        producer=producer,
    )
    envelope.occurred_at.FromNanoseconds(time.time_ns())
    envelope.payload.Pack(payload)
    carrier: dict[str, str] = {}
    # The globally configured propagator (W3C trace context + baggage by default), so the
    # format matches what the gRPC instrumentation sends.
    propagate.inject(carrier)
    envelope.trace_context.update(carrier)
    return envelope


def unpack(envelope: EventEnvelope, cls: type[M]) -> M:
    """The payload as a `cls`; ValueError when the envelope carries another type."""
    if envelope.payload.TypeName() != cls.DESCRIPTOR.full_name:
        raise ValueError(
            f"event {envelope.event_id} carries {envelope.payload.type_url!r}, "
            f"not {cls.DESCRIPTOR.full_name}"
        )
    message = cls()
    envelope.payload.Unpack(message)
    return message


def extracted_context(envelope: EventEnvelope) -> Context:
    """The producer's trace context, to pass as `context=` when starting the consumer span."""
    return propagate.extract(dict(envelope.trace_context))


def traced_handler(
    handler: Callable[[EventEnvelope], Awaitable[None]], topic: str
) -> Callable[[EventEnvelope], Awaitable[None]]:
    """The handler, run in a CONSUMER span that is a child of the producer's trace."""

    async def traced(envelope: EventEnvelope) -> None:
        await _consume_traced(handler, envelope, topic)

    return traced


async def _consume_traced(
    handler: Callable[[EventEnvelope], Awaitable[None]], envelope: EventEnvelope, topic: str
) -> None:
    with _tracer.start_as_current_span(
        f"{topic} process",
        context=extracted_context(envelope),
        kind=trace.SpanKind.CONSUMER,
        attributes={
            "messaging.system": "backcrm",
            "messaging.destination.name": topic,
            "messaging.message.id": envelope.event_id,
        },
    ):
        await handler(envelope)


def traced_batch_handler(
    handler: Callable[[Sequence[EventEnvelope]], Awaitable[None]], topic: str
) -> Callable[[Sequence[EventEnvelope]], Awaitable[None]]:
    """The batch handler in one CONSUMER span linked to every producer's trace."""

    async def traced(envelopes: Sequence[EventEnvelope]) -> None:
        links = [
            trace.Link(trace.get_current_span(extracted_context(e)).get_span_context())
            for e in envelopes
        ]
        with _tracer.start_as_current_span(
            f"{topic} process",
            kind=trace.SpanKind.CONSUMER,
            links=[link for link in links if link.context.is_valid],
            attributes={
                "messaging.system": "backcrm",
                "messaging.destination.name": topic,
                "messaging.batch.message_count": len(envelopes),
            },
        ):
            await handler(envelopes)

    return traced
