"""Without tracing, the call guard carries only the caller's W3C trace context into a call: a
real grpc.aio server on port 0 and a real channel, unary and streaming."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from backcrm.common.v1.common_pb2 import Identity
from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from libs.bus.envelope import new_envelope
from libs.rpc.guard import CallGuard
from libs.telemetry import server_interceptors, tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def _seen() -> bytes:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x").encode() if context.is_valid else b"-"


async def _unary(_request: bytes, _context: Any) -> bytes:
    return _seen()


async def _stream(_request: bytes, _context: Any) -> AsyncIterator[bytes]:
    yield _seen()
    yield _seen()


async def test_the_callers_trace_context_is_current_in_the_call_and_only_there() -> None:
    assert not tracing()  # no tracer provider in the unit tests: the API is a no-op
    assert server_interceptors() == []  # OpenTelemetry's interceptor only when spans are recorded
    guard = CallGuard(None, carry_trace=True)
    server = grpc.aio.server()
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(guard.unary(_unary, "/t.T/Unary", "t", "t")),
        "Stream": grpc.unary_stream_rpc_method_handler(
            guard.stream(_stream, "/t.T/Stream", "t", "t")
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.T", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            unary = channel.unary_unary("/t.T/Unary")
            stream = channel.unary_stream("/t.T/Stream")
            traced = (("traceparent", PARENT),)
            assert await unary(b"", metadata=traced) == TRACE_ID.encode()
            assert await unary(b"") == b"-"
            assert [m async for m in stream(b"", metadata=traced)] == [TRACE_ID.encode()] * 2
            assert [m async for m in stream(b"")] == [b"-", b"-"]
            # a malformed header is no context, and no error
            assert await unary(b"", metadata=(("traceparent", "garbage"),)) == b"-"
        assert not trace.get_current_span().get_span_context().is_valid  # nothing leaked
    finally:
        await server.stop(0)


def _under(parent: str) -> Context:
    return TraceContextTextMapPropagator().extract({"traceparent": parent})


def test_each_envelope_carries_the_trace_context_current_when_it_is_made() -> None:
    # Envelopes made back to back under one context share one injection; one made under
    # another context (the next request) or under none must not carry the previous headers.
    other = f"00-{'1' * 32}-{'2' * 16}-01"
    payload = Identity(value="x")
    token = context.attach(_under(PARENT))
    try:
        first, second = new_envelope(payload, "test"), new_envelope(payload, "test")
    finally:
        context.detach(token)
    token = context.attach(_under(other))
    try:
        third = new_envelope(payload, "test")
    finally:
        context.detach(token)
    fourth = new_envelope(payload, "test")
    assert first.trace_context["traceparent"] == second.trace_context["traceparent"] == PARENT
    assert third.trace_context["traceparent"] == other
    assert "traceparent" not in fourth.trace_context
    ids = {e.event_id for e in (first, second, third, fourth)}
    assert len(ids) == 4 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
