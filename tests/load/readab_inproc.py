"""Handler CPU per call of segmentation's reads, base and this tree interleaved in one process.

    python -m tests.load.readab_inproc --base DIR [--backend embedded] [--rounds 10]

The servicer methods (`EvaluateSegments` all 50 / 40 behavioural, `GetMemberships`) of the
base tree (DIR: an export of another commit; its entrypoint and handlers modules loaded
under other names, everything else shared) and of this tree are called serially in
alternating blocks on the same warm process, so both see the same machine: on a shared
machine, CPU time of one run against a later run's is noise, neighbouring blocks are not.
`time.process_time` per block (the cyclic GC's work included). A report, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib.util
import pstats
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from backcrm.segmentation.v1 import segmentation_service_pb2 as pb
from backcrm.segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc

from services.segmentation.app import SegmentationApp
from services.segmentation.entrypoint import SegmentationServicer
from services.suite import Suite
from tests.load import segbench
from tests.load.loadgen import open_channel
from tests.load.segments import typical_segments
from tests.support import backend_settings


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


async def _worker(call: Any, todo: list[Any]) -> None:
    while todo:
        await call(todo.pop(), None)


async def run(
    settings: Any,
    base: Path,
    customers: int,
    rounds: int,
    block: int,
    profile: bool,
    concurrency: int,
) -> list[str]:
    base_handlers = _load("base_handlers", base / "services/segmentation/handlers.py")
    base_entry = _load("base_entrypoint", base / "services/segmentation/entrypoint.py")
    base_entry.handlers = base_handlers
    suite = Suite(settings, ("profile", "segmentation"))
    port = await suite.start("127.0.0.1:0")
    channel = open_channel(f"127.0.0.1:{port}")
    try:
        api = pb_grpc.SegmentationServiceStub(channel)
        segments = await segbench.create_segments(api, typical_segments())
        await segbench.wait_ready(api, [s.segment_id for s in segments])
        ids = await segbench.track_customers(channel, "ip", customers)
        for _ in range(3):
            await segbench.wait_settled(settings, len(ids))
        now: SegmentationServicer = suite.app(SegmentationApp).rpc.servicer
        deps = now.deps
        if settings.redis_url:  # the base tree's Redis client too
            cache_module = _load("base_redis_cache", base / "libs/cache/redis_cache.py")
            old = cache_module.RedisCache(
                settings.redis_url, prefix=settings.redis_prefix + "cache:"
            )
            deps = replace(deps, cache=old, engine=replace(deps.engine, cache=old))
        then = base_entry.SegmentationServicer(deps, now.bus, now.resolve)
        everything = [s.segment_id for s in segments]
        behavioural = [s.segment_id for s in segments if s.kind == pb.SEGMENT_KIND_BEHAVIORAL]
        plans = [
            ("EvaluateSegments all 50", "EvaluateSegments", pb.EvaluateSegmentsRequest,
             segbench.evaluate_requests(ids, everything)),
            ("EvaluateSegments 40 behavioural", "EvaluateSegments", pb.EvaluateSegmentsRequest,
             segbench.evaluate_requests(ids, behavioural)),
            ("GetMemberships", "GetMemberships", pb.GetMembershipsRequest,
             segbench.membership_requests(ids)),
        ]  # fmt: skip
        lines = []
        for name, method, kind, bodies in plans:
            requests = [kind.FromString(b) for b in bodies]
            for request in requests:  # warm both: plans, caches
                await getattr(then, method)(request, None)
                await getattr(now, method)(request, None)
            spent = {"base": 0.0, "after": 0.0}
            calls = 0
            for r in range(rounds):
                chunk = [requests[(r * block + i) % len(requests)] for i in range(block)]
                for label, servicer in (("base", then), ("after", now)):
                    call = getattr(servicer, method)
                    todo = list(chunk)
                    started = time.process_time()
                    await asyncio.gather(*(_worker(call, todo) for _ in range(concurrency)))
                    spent[label] += time.process_time() - started
                calls += block
            if profile:
                profiler = cProfile.Profile()
                call = getattr(now, method)
                profiler.enable()
                for request in requests * 3:
                    await call(request, None)
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(22)
            base_ms, after_ms = (spent[k] / calls * 1000 for k in ("base", "after"))
            lines.append(
                f"{name}: base {base_ms:.4f} ms, after {after_ms:.4f} ms CPU per call "
                f"({after_ms / base_ms:.2f}x, {calls} calls each)"
            )
    finally:
        await channel.close()
        await suite.stop(0.5)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--backend", default="embedded")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="cProfile this tree's calls")
    parser.add_argument("--concurrency", type=int, default=1, help="calls in flight at once")
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix=f"readab-{opts.backend}-"))
    with backend_settings(opts.backend, tmp) as b:
        lines = asyncio.run(
            run(
                b.settings,
                opts.base,
                opts.customers,
                opts.rounds,
                opts.block,
                opts.profile,
                opts.concurrency,
            )
        )
    for line in lines:
        print(f"{opts.backend}: {line}", flush=True)


if __name__ == "__main__":
    main()
