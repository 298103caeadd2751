"""CPU per call of the per-request read paths, in one process (issue 11): figures that a busy
machine disturbs far less than throughput, since they count only this process's CPU time.

    python -m tests.load.readcost [--backends embedded,postgres] [--calls 600] [--rounds 3]

1. Segmentation's handlers without gRPC: the 50 typical segments, `--customers` customers
   tracked through profile and settled, then `EvaluateSegments` (all 50 / the 40 behavioural)
   and `GetMemberships` called on the servicer serially: "cold" is the first call per
   customer with its cached memberships and facts bundle deleted (as after its changes),
   "warm" the calls after it.
2. `QuoteOffer` and `SelectAds` over gRPC in one process serving profile, segmentation,
   bonus and ads (the bonus and ads benches' set-ups), alternating rounds with segmentation
   (and profile) asked in process (`Peers.local`) and over gRPC (the process's own port).
3. A warm `GetProfile` over gRPC, 16 concurrent callers, against a bare echo server in the
   same process, alternating rounds: what GetProfile costs above a bare call.

CPU is `time.process_time` of the whole process (client included, the same on both sides of
each comparison). A report, not a test. See docs/benchmarks.md, "The read paths".
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as ppb
from backcrm.segmentation.v1 import segmentation_service_pb2 as pb
from backcrm.segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc

from libs.auth import TokenRegistry
from libs.config import Settings
from services.segmentation.app import SegmentationApp
from services.segmentation.engine import facts_key, memberships_key
from services.suite import Suite
from tests.load import adsbench, bench, bonusbench, segbench
from tests.load.bench_server import ECHO_METHOD, _echo_server
from tests.load.loadgen import open_channel
from tests.load.report import ADMIN_AUTH
from tests.load.segments import typical_segments
from tests.support import backend_settings

Call = Callable[[Any, Any], Awaitable[Any]]


async def _cpu_per_call(call: Call, requests: Sequence[Any]) -> float:
    started = time.process_time()
    for request in requests:
        await call(request, None)
    return (time.process_time() - started) / len(requests) * 1000


async def segmentation_reads(settings: Settings, customers: int, calls: int) -> list[str]:
    suite = Suite(settings, ("profile", "segmentation"))
    port = await suite.start("127.0.0.1:0")
    channel = open_channel(f"127.0.0.1:{port}")
    lines = []
    try:
        api = pb_grpc.SegmentationServiceStub(channel)
        segments = await segbench.create_segments(api, typical_segments())
        await segbench.wait_ready(api, [s.segment_id for s in segments])
        ids = await segbench.track_customers(channel, "rc", customers)
        await segbench.wait_settled(settings, len(ids))
        servicer: Any = suite.app(SegmentationApp).rpc.servicer
        everything = [s.segment_id for s in segments]
        behavioural = [s.segment_id for s in segments if s.kind == pb.SEGMENT_KIND_BEHAVIORAL]
        plans: list[tuple[str, Call, list[Any]]] = [
            (
                "EvaluateSegments all 50",
                servicer.EvaluateSegments,
                [
                    pb.EvaluateSegmentsRequest.FromString(b)
                    for b in segbench.evaluate_requests(ids, everything)
                ],
            ),
            (
                "EvaluateSegments 40 behavioural",
                servicer.EvaluateSegments,
                [
                    pb.EvaluateSegmentsRequest.FromString(b)
                    for b in segbench.evaluate_requests(ids, behavioural)
                ],
            ),
            (
                "GetMemberships",
                servicer.GetMemberships,
                [pb.GetMembershipsRequest.FromString(b) for b in segbench.membership_requests(ids)],
            ),
        ]
        cache = suite.resources.cache  # type: ignore[union-attr]
        for name, call, requests in plans:
            await cache.delete([memberships_key(c) for c in ids] + [facts_key(c) for c in ids])
            cold = await _cpu_per_call(call, requests)
            warm = await _cpu_per_call(call, [requests[i % len(requests)] for i in range(calls)])
            lines.append(f"{name}: cold {cold:.3f} ms, warm {warm:.3f} ms CPU per call")
    finally:
        await channel.close()
        await suite.stop(0.5)
    return lines


async def in_process_or_grpc(settings: Settings, calls: int, rounds: int) -> list[str]:
    # the suite adds its service tokens to this registry; hosting again uses it the same way
    tokens = TokenRegistry.from_sources(settings.auth_tokens, Path("/nonexistent"))
    suite = Suite(settings, ("profile", "segmentation", "bonus", "ads"), tokens)
    port = await suite.start("127.0.0.1:0")
    channel = open_channel(f"127.0.0.1:{port}")
    peers: Any = suite.peers
    hosted = [app.rpc for app in suite.apps]
    results: dict[tuple[str, str], list[float]] = {}
    try:
        program_id, customers = await bonusbench._setup(channel, "rq")
        quotes = bonusbench.quote_requests(program_id, customers)
        selects = adsbench.select_requests(await adsbench._setup(channel, "ra"))
        plans = [("QuoteOffer", bonusbench.QUOTE, quotes), ("SelectAds", adsbench.SELECT, selects)]
        for name, method, bodies in plans:
            call = channel.unary_unary(method)
            for _ in range(rounds):
                for mode in ("in process", "over gRPC"):
                    # over gRPC: as a process serving none of them would
                    peers.host([] if mode == "over gRPC" else hosted, tokens)
                    bodies_now = [bodies[i % len(bodies)] for i in range(calls)]
                    for body in bodies_now[:50]:  # warm the caches
                        await call(body, metadata=bonusbench._auth(), timeout=30)
                    started = time.process_time()
                    for body in bodies_now:
                        await call(body, metadata=bonusbench._auth(), timeout=30)
                    cpu = (time.process_time() - started) / calls * 1000
                    results.setdefault((name, mode), []).append(cpu)
    finally:
        await channel.close()
        await suite.stop(0.5)
    return [
        f"{name} ({mode}): lowest {min(v):.3f} ms, mean {sum(v) / len(v):.3f} ms CPU per call"
        for (name, mode), v in results.items()
    ]


async def get_profile_over_echo(settings: Settings, calls: int, rounds: int) -> list[str]:
    suite = Suite(settings, ("profile",))
    port = await suite.start("127.0.0.1:0")
    echo = _echo_server()
    echo_port = echo.add_insecure_port("127.0.0.1:0")
    await echo.start()
    channel = open_channel(f"127.0.0.1:{port}")
    echo_channel = open_channel(f"127.0.0.1:{echo_port}")
    try:
        track = channel.unary_unary(bench.TRACK_EVENTS)
        requests = []
        for i in range(200):
            who = common_pb2.CustomerRef(
                identity=common_pb2.Identity(
                    type=common_pb2.IDENTITY_TYPE_EMAIL, value=f"r{i}@example.com"
                )
            )
            event = ppb.Event(event_id=f"rc-{i}", customer=who, type=ppb.EVENT_TYPE_PRODUCT_VIEW)
            event.channel, event.category = common_pb2.CHANNEL_WEB, "books"
            event.occurred_at.GetCurrentTime()
            body = ppb.TrackEventsRequest(events=[event]).SerializeToString()
            tracked = ppb.TrackEventsResponse.FromString(await track(body, metadata=ADMIN_AUTH))
            requests += [
                ppb.GetProfileRequest(
                    customer=common_pb2.CustomerRef(customer_id=c)
                ).SerializeToString()
                for c in tracked.customer_ids
            ]
        get = channel.unary_unary(bench.GET_PROFILE)
        bare = echo_channel.unary_unary(ECHO_METHOD)
        for body in requests:  # warm the cache
            await get(body, metadata=ADMIN_AUTH)

        async def cpu(call: Any, metadata: Any) -> float:
            async def caller(k: int) -> None:
                for i in range(calls // 16):
                    await call(requests[(i * 16 + k) % len(requests)], metadata=metadata)

            started = time.process_time()
            await asyncio.gather(*(caller(k) for k in range(16)))
            return (time.process_time() - started) / calls * 1e6

        pairs = [(await cpu(bare, ()), await cpu(get, ADMIN_AUTH)) for _ in range(rounds)]
    finally:
        await channel.close()
        await echo_channel.close()
        await echo.stop(0)
        await suite.stop(0.5)
    echo_us = sum(e for e, _ in pairs) / rounds
    get_us = sum(g for _, g in pairs) / rounds
    return [
        f"GetProfile (warm, 16 concurrent): {get_us:.0f} us CPU per call, echo {echo_us:.0f} us, "
        f"above echo {get_us - echo_us:.0f} us, ratio {get_us / echo_us:.2f} "
        f"(client and server in one process, mean of {rounds} rounds)"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="embedded,postgres")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    for backend in opts.backends.split(","):
        with backend_settings(backend, Path(tempfile.mkdtemp(prefix=f"readcost-{backend}-"))) as b:
            for line in asyncio.run(segmentation_reads(b.settings, opts.customers, opts.calls * 5)):
                print(f"{backend}: {line}", flush=True)
        with backend_settings(backend, Path(tempfile.mkdtemp(prefix=f"readcost-{backend}-"))) as b:
            for line in asyncio.run(in_process_or_grpc(b.settings, opts.calls, opts.rounds)):
                print(f"{backend}: {line}", flush=True)
        with backend_settings(backend, Path(tempfile.mkdtemp(prefix=f"readcost-{backend}-"))) as b:
            lines = asyncio.run(get_profile_over_echo(b.settings, opts.calls * 5, opts.rounds))
            for line in lines:
                print(f"{backend}: {line}", flush=True)


if __name__ == "__main__":
    main()
