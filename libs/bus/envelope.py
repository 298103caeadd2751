"""Build and read EventEnvelopes: the one wire format of every event on the bus.

The producer's trace context travels inside the envelope (W3C `traceparent`/`tracestate`),
so a consumer's span becomes a child of the work that caused the event, across processes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from backcrm.common.v1.common_pb2 import EventEnvelope
from google.protobuf.message import Message
from opentelemetry import context, propagate, trace
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
    id), so consumers can drop the redeliveries; otherwise a fresh random id is used (128
    random bits in hex, as a uuid4's: `os.urandom` without building a UUID costs a quarter).
    """
    envelope = EventEnvelope(
        event_id=event_id or os.urandom(16).hex(),
        type=payload.DESCRIPTOR.full_name,
        producer=producer,
        trace_context=_trace_context(),
    )
    envelope.occurred_at.FromNanoseconds(time.time_ns())
    envelope.payload.Pack(payload)
    return envelope


# (context, propagator, carrier) of the last injection: a unit of work writes an envelope per
# changed customer, all under one trace context, which is injected once instead of each time.
_injected: tuple[Context, object, dict[str, str]] | None = None


def _trace_context() -> dict[str, str]:
    """The current trace context as W3C headers, by the globally configured propagator (trace
    context + baggage by default), so the format matches what the gRPC instrumentation sends.

    A context is immutable (setting a value makes a new one), so the same object injects the
    same headers; holding the last one keeps its identity from being reused.
    """
    global _injected
    current, propagator = context.get_current(), propagate.get_global_textmap()
    last = _injected
    if last is not None and last[0] is current and last[1] is propagator:
        return last[2]
    carrier: dict[str, str] = {}
    propagator.inject(carrier, context=current)
    _injected = (current, propagator, carrier)
    return carrier


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
