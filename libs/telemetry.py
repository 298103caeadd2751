"""OpenTelemetry set-up: traces and metrics exported by configuration, trace ids in logs.

With `BACKCRM_OTEL_EXPORTER=none` the API stays no-op, so instrumentation costs next to nothing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace

from libs.config import Settings

__all__ = [
    "TraceContextInterceptor",
    "client_interceptors",
    "rpc_duration",
    "server_interceptors",
    "setup_logging",
    "setup_telemetry",
    "tracing",
]

_configured = False


def setup_telemetry(settings: Settings, service_name: str) -> None:
    global _configured
    if _configured or settings.otel_exporter == "none":
        return
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        MetricExporter,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    span_exporter: SpanExporter
    metric_exporter: MetricExporter
    if settings.otel_exporter == "console":
        span_exporter, metric_exporter = ConsoleSpanExporter(), ConsoleMetricExporter()
    else:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        endpoint = settings.otel_endpoint or None
        span_exporter = OTLPSpanExporter(endpoint=endpoint)
        metric_exporter = OTLPMetricExporter(endpoint=endpoint)
    resource = Resource.create({"service.name": service_name})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(
        MeterProvider(
            resource=resource, metric_readers=[PeriodicExportingMetricReader(metric_exporter)]
        )
    )
    _configured = True


_meter = metrics.get_meter("backcrm.rpc")
rpc_duration = _meter.create_histogram(
    "rpc.server.duration", unit="ms", description="gRPC server call latency by method and code"
)


def tracing() -> bool:
    """Whether spans are recorded: a tracer provider was set (`setup_telemetry` with an
    exporter, or a test's own), rather than the API's default no-op."""
    return not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )


def server_interceptors() -> list[Any]:
    """OpenTelemetry's own grpc.aio server interceptor when spans are recorded (health checks
    are not traced). Without tracing (`BACKCRM_OTEL_EXPORTER=none`, the default) its spans
    would be no-ops that still cost about a third of a bare call (its wrapping, filters and
    attributes on every call): then only the caller's W3C trace context is carried into the
    call, so logs, outgoing calls and bus events still name the caller's trace. Decided when
    the server is built."""
    if not tracing():
        return [TraceContextInterceptor()]
    from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

    return [aio_server_interceptor(filter_=filters.negate(filters.health_check()))]


class TraceContextInterceptor(grpc.aio.ServerInterceptor):
    """The caller's `traceparent` (and `tracestate`) made the current context of the call;
    calls without one pass through untouched."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        metadata = handler_call_details.invocation_metadata or ()
        carrier = {k: v for k, v in metadata if k in _TRACE_KEYS and isinstance(v, str)}
        if handler is None or "traceparent" not in carrier:
            return handler
        parent = propagate.extract(carrier)
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=_in_context_unary(handler.unary_unary, parent))  # type: ignore[attr-defined,no-any-return]
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=_in_context_stream(handler.unary_stream, parent))  # type: ignore[attr-defined,no-any-return]
        return handler


_TRACE_KEYS = ("traceparent", "tracestate")


def _in_context_unary(behaviour: Callable[..., Awaitable[Any]], parent: Any) -> Callable[..., Any]:
    async def run(request: Any, context: Any) -> Any:
        token = otel_context.attach(parent)
        try:
            return await behaviour(request, context)
        finally:
            otel_context.detach(token)

    return run


def _in_context_stream(behaviour: Callable[..., AsyncIterator[Any]], parent: Any) -> Any:
    async def run(request: Any, context: Any) -> AsyncIterator[Any]:
        token = otel_context.attach(parent)
        try:
            async for item in behaviour(request, context):
                yield item
        finally:
            otel_context.detach(token)

    return run


def client_interceptors() -> list[Any]:
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors())


class _TraceIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = format(ctx.trace_id, "032x") if ctx.trace_id else "-"
        from libs.rpc.interceptors import request_id

        record.request_id = request_id.get()
        return True


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_TraceIdFilter())
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s trace=%(trace_id)s req=%(request_id)s %(message)s"
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
