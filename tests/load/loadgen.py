"""A closed-loop gRPC load generator: N asyncio workers on one grpc.aio channel.

Each worker issues raw unary calls (bytes in, bytes out: no protobuf work on the client)
back to back. After a warm-up, calls completing inside the measurement window are counted
and their latencies (time.perf_counter around the await) kept. CPU time of this process and
of the server process over the window tells whether either side was saturated.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc

from tests.load.payloads import RequestSource

__all__ = [
    "Measurement",
    "Paced",
    "Target",
    "measure",
    "open_channel",
    "paced",
    "percentile",
    "process_cpu",
    "process_tree_cpu",
]

_TICKS = os.sysconf("SC_CLK_TCK")
Metadata = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Target:
    """What to call: a method path, how to build requests, what each call carries."""

    name: str
    method: str
    requests: RequestSource
    metadata: Metadata = ()
    items_per_call: int = 1  # events per TrackEvents call


@dataclass
class Measurement:
    name: str
    concurrency: int
    seconds: float
    calls: int
    errors: int
    items_per_call: int
    latencies: list[float] = field(repr=False, default_factory=list)
    client_cpu: float = 0.0  # cores busy in this process over the window
    server_cpu: float = 0.0  # cores busy in the server process over the window
    first_error: str = ""

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    @property
    def items_per_second(self) -> float:
        return self.calls_per_second * self.items_per_call

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 99) * 1000


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 when empty)."""
    if not values:
        return 0.0
    rank = max(1, round(pct / 100 * len(values)))
    return values[min(rank, len(values)) - 1]


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def process_tree_cpu(pid: int) -> float:
    """CPU seconds a process, its live descendants (a supervisor's workers) and the children
    it has reaped (workers that died) have used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    total = sum(int(f) for f in fields[11:15]) / _TICKS  # utime, stime, cutime, cstime
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            kids = [int(k) for k in children.read().split()]
    except OSError:
        kids = []
    for kid in kids:
        # one that ended meanwhile: its time moves to our cutime once reaped
        with contextlib.suppress(OSError):
            total += process_tree_cpu(kid)
    return total


def open_channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        address,
        options=[
            ("grpc.max_receive_message_length", 16 * 1024 * 1024),
            ("grpc.max_send_message_length", 16 * 1024 * 1024),
        ],
    )


@dataclass
class _Window:
    recording: bool = False
    stopping: bool = False
    calls: int = 0
    errors: int = 0
    first_error: str = ""
    latencies: list[float] = field(default_factory=list)


async def _worker(
    call: grpc.aio.UnaryUnaryMultiCallable, target: Target, window: _Window, timeout: float
) -> None:
    metadata = tuple(target.metadata)
    while not window.stopping:
        request = target.requests()
        started = time.perf_counter()
        try:
            await call(request, metadata=metadata, timeout=timeout)
            failed = False
        except grpc.aio.AioRpcError as error:
            failed = True
            if not window.first_error:
                window.first_error = f"{error.code().name}: {error.details()}"
        elapsed = time.perf_counter() - started
        if window.recording:
            if failed:
                window.errors += 1
            else:
                window.calls += 1
                window.latencies.append(elapsed)


async def measure(
    channel: grpc.aio.Channel,
    target: Target,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    server_pid: int,
    timeout: float = 30.0,
) -> Measurement:
    """Run `concurrency` workers for warmup + duration seconds; measure the last `duration`."""
    call = channel.unary_unary(target.method)  # no (de)serialisers: bytes in, bytes out
    window = _Window()
    workers = [
        asyncio.create_task(_worker(call, target, window, timeout)) for _ in range(concurrency)
    ]
    try:
        await asyncio.sleep(warmup)
        window.recording = True
        cpu0, server0, t0 = time.process_time(), process_cpu(server_pid), time.perf_counter()
        await asyncio.sleep(duration)
        window.recording = False
        cpu1, server1, t1 = time.process_time(), process_cpu(server_pid), time.perf_counter()
        window.stopping = True
        await asyncio.gather(*workers)
    finally:
        window.stopping = True
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    seconds = t1 - t0
    return Measurement(
        name=target.name,
        concurrency=concurrency,
        seconds=seconds,
        calls=window.calls,
        errors=window.errors,
        items_per_call=target.items_per_call,
        latencies=sorted(window.latencies),
        client_cpu=(cpu1 - cpu0) / seconds,
        server_cpu=(server1 - server0) / seconds,
        first_error=window.first_error,
    )


@dataclass
class Paced:
    """An open-loop run: calls issued at a fixed rate, whatever the answers take."""

    name: str
    calls: int
    errors: int
    seconds: float  # from the first call issued to the last answer
    first_error: str = ""


async def paced(
    channel: grpc.aio.Channel,
    target: Target,
    *,
    rate: float,
    calls: int,
    max_in_flight: int = 64,
    timeout: float = 30.0,
) -> Paced:
    """Issue `calls` calls at `rate` a second (at most `max_in_flight` at once): a moderate,
    steady load instead of a saturating closed loop."""
    call = channel.unary_unary(target.method)
    metadata = tuple(target.metadata)
    slots = asyncio.Semaphore(max_in_flight)
    run = Paced(target.name, 0, 0, 0.0)

    async def one(request: bytes) -> None:
        try:
            await call(request, metadata=metadata, timeout=timeout)
            run.calls += 1
        except grpc.aio.AioRpcError as error:
            run.errors += 1
            if not run.first_error:
                run.first_error = f"{error.code().name}: {error.details()}"
        finally:
            slots.release()

    started = time.perf_counter()
    tasks = []
    for n in range(calls):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await slots.acquire()
        tasks.append(asyncio.create_task(one(target.requests())))
    await asyncio.gather(*tasks)
    run.seconds = time.perf_counter() - started
    return run
