"""Server CPU per call of segmentation's reads, two code trees alternating on one data set.

    python -m tests.load.readab --base DIR [--backend postgres] [--rounds 2] [--duration 6]

One fresh store is set up once (the 50 typical segments, `--customers` tracked through profile
and settled, served by this tree); then a `bench_server --suite profile,segmentation` of the
base tree (DIR: an export of another commit) and one of this tree take turns on it, each
measured on the segmentation bench's reads (EvaluateSegments all 50 / 40 behavioural at c=16,
GetMemberships at c=16). Per row: calls/s, p50/p99 and **server CPU ms per call** (the
figure a shared machine disturbs least). `--py-spy FILE` records the server of this tree
during "all 50" of the last round. A report, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from backcrm.segmentation.v1 import segmentation_service_pb2 as pb
from backcrm.segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc

from tests.load import segbench
from tests.load.bench import REPO, ServerProcess, _server_env, fresh_store
from tests.load.loadgen import Target, measure, open_channel
from tests.load.payloads import cycle
from tests.load.report import ADMIN_AUTH, progress
from tests.load.segments import typical_segments


def _server(tree: Path, settings: Any, log: Path) -> ServerProcess:
    env = _server_env(settings)
    # READAB_PATH: one more folder for the servers' imports (e.g. a sitecustomize timing GC)
    extra = [os.environ["READAB_PATH"]] if os.environ.get("READAB_PATH") else []
    env["PYTHONPATH"] = os.pathsep.join([str(tree), str(tree / "libs" / "gen"), *extra])
    server = ServerProcess.__new__(ServerProcess)
    server.log_path = log
    server._log = log.open("wb")
    server.proc = subprocess.Popen(
        [sys.executable, "-m", "tests.load.bench_server", "--suite", "profile,segmentation"],
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=server._log,
        start_new_session=True,
    )
    server.port = server._read_port(timeout=90.0)
    return server


async def _setup(address: str, settings: Any, customers: int) -> tuple[list[str], list[Any]]:
    channel = open_channel(address)
    try:
        api = pb_grpc.SegmentationServiceStub(channel)
        segments = await segbench.create_segments(api, typical_segments())
        await segbench.wait_ready(api, [s.segment_id for s in segments])
        ids = await segbench.track_customers(channel, "ab", customers)
        for _ in range(3):  # "stopped changing for a second" can be a pause on a busy machine
            await segbench.wait_settled(settings, len(ids))
    finally:
        await channel.close()
    return ids, segments


async def _redis_reads(url: str) -> int:
    """GET and MGET commands Redis has run so far (the whole server: other users add noise)."""
    if not url:
        return 0
    client = aioredis.Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("get", "mget"))


async def _measure(
    server: ServerProcess,
    ids: list[str],
    segments: list[Any],
    duration: float,
    spy: str,
    redis_url: str,
) -> list[str]:
    everything = [s.segment_id for s in segments]
    behavioural = [s.segment_id for s in segments if s.kind == pb.SEGMENT_KIND_BEHAVIORAL]
    plans = [
        ("all 50", segbench.EVALUATE, segbench.evaluate_requests(ids, everything)),
        ("40 behavioural", segbench.EVALUATE, segbench.evaluate_requests(ids, behavioural)),
        ("GetMemberships", segbench.MEMBERSHIPS, segbench.membership_requests(ids)),
    ]
    channel = open_channel(server.address)
    lines = []
    try:
        # every customer's first (cold) read before any window: the bench's warm-up does it
        warm = channel.unary_unary(segbench.EVALUATE)
        todo = list(plans[0][2])

        async def warmer() -> None:
            while todo:
                await warm(todo.pop(), metadata=ADMIN_AUTH, timeout=30)

        await asyncio.gather(*(warmer() for _ in range(16)))
        for name, method, bodies in plans:
            recorder = None
            if spy and name == "all 50":
                recorder = await asyncio.create_subprocess_exec(
                    str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(server.pid),
                    "-r", "100", "-d", str(int(duration)), "--format", "raw", "--nonblocking",
                    "-o", spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            target = Target(name, method, cycle(bodies), ADMIN_AUTH)
            reads0 = await _redis_reads(redis_url)
            m = await measure(
                channel, target, concurrency=16, duration=duration, warmup=2.0,
                server_pid=server.pid,
            )  # fmt: skip
            if recorder is not None:
                await recorder.wait()
            reads = (await _redis_reads(redis_url) - reads0) / max(1, m.calls)
            cpu_ms = m.server_cpu * m.seconds / m.calls * 1000 if m.calls else 0.0
            lines.append(
                f"{name:15} {m.calls_per_second:7.0f}/s p50 {m.p50_ms:6.2f} p99 {m.p99_ms:6.2f} ms"
                f" server {m.server_cpu:4.0%} → {cpu_ms:.3f} ms CPU/call errors {m.errors}"
                f" Redis GET+MGET/call {reads:.2f}"
            )
    finally:
        await channel.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--backend", default="postgres")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--py-spy", default="")
    parser.add_argument("--only", default="", help="base or after: measure one tree only")
    opts = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="readab-"))
    with fresh_store(opts.backend, workdir) as settings:
        server = _server(REPO, settings, workdir / "setup.log")
        try:
            ids, segments = asyncio.run(_setup(server.address, settings, opts.customers))
        finally:
            server.stop()
        trees = [("base", opts.base.resolve()), ("after", REPO)]
        if opts.only:
            trees = [t for t in trees if t[0] == opts.only]
        for round_no in range(opts.rounds):
            for label, tree in trees:
                server = _server(tree, settings, workdir / f"{label}-{round_no}.log")
                try:
                    last = round_no == opts.rounds - 1 and label == trees[-1][0]
                    spy = opts.py_spy if last else ""
                    lines = asyncio.run(
                        _measure(server, ids, segments, opts.duration, spy, settings.redis_url)
                    )
                finally:
                    server.stop()
                for line in lines:
                    print(f"{opts.backend} {label:5} r{round_no} {line}", flush=True)
    progress(f"logs in {workdir}")


if __name__ == "__main__":
    main()
