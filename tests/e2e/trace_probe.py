"""Run by test_tracing in its own process (the tracer provider is process-global).

Calls TrackEvents through the typed client and consumes the resulting bus event; prints the
spans as JSON lines: name, kind, trace id, parent span id.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

from backcrm.profile.v1 import profile_service_pb2 as pb  # noqa: E402

from libs.topics import PROFILE_CHANGED  # noqa: E402
from tests.e2e.conftest import Suite  # noqa: E402
from tests.e2e.helpers import email, event  # noqa: E402
from tests.support import backend_settings  # noqa: E402


async def probe(suite: Suite) -> None:
    await suite.start()
    consumed = asyncio.Event()

    async def handler(_envelope: object) -> None:
        consumed.set()

    subscription = await suite.resources.bus.subscribe(PROFILE_CHANGED.name, "probe", "p1", handler)
    try:
        with trace.get_tracer("probe").start_as_current_span("shop checkout"):
            await suite.client("shop").profile.TrackEvents(
                pb.TrackEventsRequest(events=[event("trace-1", email("trace@example.com"))])
            )
        await asyncio.wait_for(consumed.wait(), 10)
    finally:
        await subscription.stop()
        await suite.stop()


def main() -> None:
    with backend_settings("embedded", Path(tempfile.mkdtemp())) as backend:
        asyncio.run(probe(Suite(backend)))
    for span in exporter.get_finished_spans():
        context = span.get_span_context()
        print(
            json.dumps(
                {
                    "name": span.name,
                    "kind": span.kind.name,
                    "trace_id": format(context.trace_id, "032x"),
                    "parent": format(span.parent.span_id, "016x") if span.parent else None,
                }
            )
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
