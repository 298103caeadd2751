"""OpenTelemetry set-up: traces and metrics exported by configuration, trace ids in logs.

With `BACKCRM_OTEL_EXPORTER=none` the API stays no-op, so instrumentation costs next to nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import metrics, trace

from libs.config import Settings

__all__ = [
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
    are not traced); none otherwise. Without tracing (`BACKCRM_OTEL_EXPORTER=none`, the
    default) its spans would be no-ops that still cost about a third of a bare call (its
    wrapping, filters and attributes on every call): then the call guard carries only the
    caller's W3C trace context into the call (libs/rpc/guard.py), so logs, outgoing calls and
    bus events still name the caller's trace. Decided when the server is built."""
    if not tracing():
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

    return [aio_server_interceptor(filter_=filters.negate(filters.health_check()))]


def client_interceptors() -> list[Any]:
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors())


class _TraceIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = format(ctx.trace_id, "032x") if ctx.trace_id else "-"
        from libs.rpc.guard import request_id

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
