"""`make bench`: throughput and p50/p99 per RPC, as a ratio against a bare grpc.aio echo server.

    python -m tests.load.bench [--duration 10] [--concurrency 16,64]
                               [--backends embedded,postgres] [--skip-import]
                               [--suites profile,segmentation,bonus,ads,recommend]
                               [--seg-customers 1000]
                               [--lag-seconds 10] [--build-customers 1000000]
                               [--output FILE.md] [--json FILE.json]

Every server under test runs in its own process (tests.load.bench_server) and the load
generator in this one, the echo server exactly like the profile service, so on a 2-core
machine each side gets a core. The segmentation suite (tests.load.segbench) serves profile and
segmentation together, as `backcrm serve all`, the bonus suite (tests.load.bonusbench) all
three, the ads suite (tests.load.adsbench) profile, segmentation and ads, and the recommend
suite (tests.load.recobench) recommend alone, loaded with the Online Retail file. See
docs/benchmarks.md for what is measured and how.

It is a report, not a test: targets are printed with PASS/MISS and the exit code is 0
unless the harness itself broke.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import select
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from backcrm.profile.v1 import profile_service_pb2 as pb

from libs.config import Settings
from services.registry import SERVICES
from tests.load.bench_server import ECHO_METHOD, ECHO_RESPONSE_BYTES
from tests.load.loadgen import Measurement, Target, measure, open_channel
from tests.load.payloads import (
    EVENTS_PER_BATCH,
    echo_requests,
    get_profile_requests,
    register_requests,
    track_events_requests,
)
from tests.load.report import ADMIN_AUTH, progress, verdict

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[2]
RETAIL_FILE = REPO.parent / "shared" / "data" / "online-retail" / "online_retail.csv.gz"
SERVICE = "/backcrm.profile.v1.ProfileService"
GET_PROFILE = f"{SERVICE}/GetProfile"
TRACK_EVENTS = f"{SERVICE}/TrackEvents"
GET_PROFILE_RATIO_TARGET = 0.6
TRACK_EVENTS_TARGET = 10_000.0
IMPORT_TARGET_SECONDS = 60.0
OUTBOX_DRAIN_TIMEOUT = 120.0


@dataclass
class Options:
    duration: float
    warmup: float
    concurrency: list[int]
    backends: list[str]
    rpcs: list[str]
    customers: int
    skip_import: bool
    retail_file: Path
    output: Path | None
    json_path: Path | None
    cprofile_dir: Path | None
    suites: list[str] = field(default_factory=lambda: ["profile"])
    seg_customers: int = 1000
    lag_seconds: float = 10.0
    build_customers: int = 1_000_000
    scale_workers: int = 2


@dataclass
class Row:
    """One measured line of the report."""

    backend: str
    m: Measurement
    response_bytes: int
    echo: Measurement | None = None
    note: str = ""


@dataclass
class ImportResult:
    backend: str
    seconds: float | None
    events: int = 0
    rows: int = 0
    note: str = ""


@dataclass
class Report:
    started: str
    machine: str
    options: Options
    rows: list[Row] = field(default_factory=list)
    imports: list[ImportResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    segmentation: Any = None  # tests.load.segbench.SegmentationResults
    bonus: Any = None  # tests.load.bonusbench.BonusResults
    ads: Any = None  # tests.load.adsbench.AdsResults
    recommend: Any = None  # tests.load.recobench.RecommendResults


# ---------------------------------------------------------------- server subprocesses


class ServerProcess:
    """A tests.load.bench_server child: started, asked for its port, stopped on exit."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.load.bench_server", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,  # Ctrl-C reaches us; we stop it in order
        )
        self.port = self._read_port(timeout=90.0)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _read_port(self, timeout: float) -> int:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                line = self.proc.stdout.readline().decode().strip()
                if line.startswith("PORT "):
                    return int(line.split()[1])
            if self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"bench server did not start; see {self.log_path}:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        with suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


def _server_env(settings: Settings | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BACKCRM_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "libs" / "gen")])
    if settings is not None:
        env.update(
            DATABASE_URL=settings.database_url,
            REDIS_URL=settings.redis_url,
            BACKCRM_REDIS_PREFIX=settings.redis_prefix,
            BACKCRM_VAR_DIR=str(settings.var_dir),
            BACKCRM_AUTH_TOKENS=settings.auth_tokens,
            BACKCRM_AUTH_TOKENS_FILE=str(settings.auth_tokens_file),
            BACKCRM_LOG_LEVEL="WARNING",
        )
    return env


@contextmanager
def server_process(
    name: str,
    settings: Settings | None,
    workdir: Path,
    cprofile_dir: Path | None,
    extra: Sequence[str] = (),
    workers: int = 1,
) -> Iterator[ServerProcess]:
    """The bench server; with `workers` above 1 (a `--suite` on PostgreSQL + Redis) that many
    worker processes on its port under a supervisor, whose pid `process_tree_cpu` reads."""
    args = ["--echo"] if settings is None else list(extra)
    if workers > 1:
        args += ["--workers", str(workers)]
    if cprofile_dir is not None:
        cprofile_dir.mkdir(parents=True, exist_ok=True)
        args += ["--cprofile", str(cprofile_dir.resolve() / f"{name}.prof")]
    server = ServerProcess(args, _server_env(settings), workdir / f"server-{name}.log")
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------- storage and data


@contextmanager
def fresh_store(backend: str, workdir: Path) -> Iterator[Settings]:
    """A fresh migrated database (and Redis prefix) of the backend, dropped afterwards."""
    from tests.support import backend_settings

    tmp = Path(tempfile.mkdtemp(prefix=f"{backend}-", dir=workdir))
    # the production relay cadence, not the tests' fast polling
    with backend_settings(backend, tmp, outbox_poll_seconds=0.5) as b:
        yield b.settings


async def _drain_outbox(resources: Any) -> None:
    from services.profile.app import ProfileApp

    relay = ProfileApp.build(resources).relay
    while await relay.drain_once():
        pass


async def seed_customers(settings: Settings, customers: int) -> list[str]:
    """services.tools.seed's synthetic customers, outbox published; their customer ids."""
    from sqlalchemy import select

    from libs.runtime import Resources
    from services.profile.models import CustomerRow
    from services.tools.seed import seed

    resources = Resources.open(settings)
    try:
        await seed(resources, customers=customers, progress=False)
        await _drain_outbox(resources)
        async with resources.sessions() as session:
            query = select(CustomerRow.customer_id).order_by(CustomerRow.customer_id)
            return list(await session.scalars(query))
    finally:
        await resources.close()


async def outbox_rows(settings: Settings) -> int:
    from sqlalchemy import func, select

    from libs.runtime import Resources
    from services.profile.models import OutboxRow

    resources = Resources.open(settings)
    try:
        async with resources.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(OutboxRow)) or 0)
    finally:
        await resources.close()


async def wait_outbox_drained(settings: Settings) -> tuple[int, float]:
    """Rows the relay still had to publish when the window closed, and seconds to drain them."""
    started = time.perf_counter()
    backlog = await outbox_rows(settings)
    left = backlog
    while left and time.perf_counter() - started < OUTBOX_DRAIN_TIMEOUT:
        await asyncio.sleep(0.25)
        left = await outbox_rows(settings)
    return backlog, time.perf_counter() - started


# ---------------------------------------------------------------- measurements


async def _call_once(channel: grpc.aio.Channel, target: Target) -> bytes:
    call = channel.unary_unary(target.method)
    response: bytes = await call(target.requests(), metadata=tuple(target.metadata), timeout=30)
    return response


async def warm_profiles(channel: grpc.aio.Channel, ids: list[str]) -> int:
    """Read every customer once (fills the cache); the mean response size."""
    target = Target("GetProfile", GET_PROFILE, get_profile_requests(ids), ADMIN_AUTH)
    sizes: list[int] = []

    async def reader(share: int) -> None:
        for _ in range(share):
            body = await _call_once(channel, target)
            pb.GetProfileResponse.FromString(body)  # the answer is a profile
            sizes.append(len(body))

    workers = 8
    await asyncio.gather(
        *(reader(len(ids) // workers + (i < len(ids) % workers)) for i in range(workers))
    )
    return sum(sizes) // max(1, len(sizes))


async def _probe_track(channel: grpc.aio.Channel, target: Target) -> int:
    body = await _call_once(channel, target)
    answer = pb.TrackEventsResponse.FromString(body)
    if answer.rejected or answer.accepted != target.items_per_call:
        raise RuntimeError(f"TrackEvents probe: {answer.accepted} accepted, {answer.rejected[:3]}")
    return len(body)


async def register_load_customers(channel: grpc.aio.Channel, workers: int = 4) -> None:
    """Create the TrackEvents customers, so the runs measure known ones.

    Batches name disjoint customers, so running a few at once creates no identity races.
    """
    bodies = register_requests(uuid.uuid4().hex[:6])

    async def register(share: list[bytes]) -> None:
        for body in share:
            target = Target("register", TRACK_EVENTS, lambda body=body: body, ADMIN_AUTH, 1)
            answer = pb.TrackEventsResponse.FromString(await _call_once(channel, target))
            if answer.rejected:
                raise RuntimeError(f"registering load customers: {answer.rejected[:3]}")

    await asyncio.gather(*(register(bodies[i::workers]) for i in range(workers)))


async def run_echo(opts: Options, server: ServerProcess) -> dict[int, Measurement]:
    channel = open_channel(server.address)
    target = Target("echo", ECHO_METHOD, echo_requests())
    try:
        return {
            c: await measure(
                channel,
                target,
                concurrency=c,
                duration=opts.duration,
                warmup=opts.warmup,
                server_pid=server.pid,
            )
            for c in opts.concurrency
        }
    finally:
        await channel.close()


async def measure_at(
    channel: grpc.aio.Channel,
    target: Target,
    opts: Options,
    backend: str,
    concurrency: int,
    server_pid: int,
) -> Measurement:
    """`target` measured at one concurrency with the run's duration and warm-up."""
    progress(f"[{backend}] {target.name} c={concurrency} ...")
    return await measure(
        channel,
        target,
        concurrency=concurrency,
        duration=opts.duration,
        warmup=opts.warmup,
        server_pid=server_pid,
    )


async def measure_rows(
    channel: grpc.aio.Channel,
    target: Target,
    opts: Options,
    backend: str,
    server_pid: int,
    size: int,
    note: str = "",
    levels: Sequence[int] | None = None,
) -> list[Row]:
    """`target` measured at each concurrency (`levels`, else the run's): a Row each (every
    suite's loop)."""
    rows = []
    for c in opts.concurrency if levels is None else levels:
        m = await measure_at(channel, target, opts, backend, c, server_pid)
        rows.append(Row(backend, m, size, note=note))
    return rows


async def run_backend(
    opts: Options, backend: str, settings: Settings, ids: list[str], server: ServerProcess
) -> list[Row]:
    channel = open_channel(server.address)
    rows: list[Row] = []
    try:
        size = await warm_profiles(channel, ids)
        if "GetProfile" in opts.rpcs:
            target = Target("GetProfile", GET_PROFILE, get_profile_requests(ids), ADMIN_AUTH)
            note = f"{len(ids):,} customers, warm cache"
            rows += await measure_rows(channel, target, opts, backend, server.pid, size, note)
        if "TrackEvents" not in opts.rpcs:
            return rows
        await register_load_customers(channel)
        await wait_outbox_drained(settings)
        for c in opts.concurrency:
            run = uuid.uuid4().hex[:6]
            target = Target(
                "TrackEvents",
                TRACK_EVENTS,
                track_events_requests(run),
                ADMIN_AUTH,
                EVENTS_PER_BATCH,
            )
            size = await _probe_track(channel, target)
            m = await measure_at(channel, target, opts, backend, c, server.pid)
            backlog, drained = await wait_outbox_drained(settings)
            note = f"outbox backlog {backlog:,} rows at window end, drained in {drained:.1f}s"
            rows.append(Row(backend, m, size, note=note))
    finally:
        await channel.close()
    return rows


async def _import(settings: Settings, path: Path) -> ImportResult:
    from libs.runtime import Resources
    from services.tools.importer import import_orders

    resources = Resources.open(settings)
    try:
        summary = await import_orders(resources, path, progress=False)
    finally:
        await resources.close()
    return ImportResult(
        settings.database_url.split(":", 1)[0], summary.seconds, summary.events, summary.rows
    )


def run_import(opts: Options, backend: str, workdir: Path) -> ImportResult:
    if not opts.retail_file.exists():
        return ImportResult(backend, None, note=f"skipped: {opts.retail_file} is missing")
    with fresh_store(backend, workdir) as settings:
        result = asyncio.run(_import(settings, opts.retail_file))
    result.backend = backend
    note = "in-process: read + parse + TrackEvents handler in batches of 1,000"
    result.note = note + ("; outbox published to Redis" if backend == "postgres" else "")
    return result


# ---------------------------------------------------------------- report


def _machine() -> str:
    model = platform.processor() or "unknown CPU"
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, {model}; Python {platform.python_version()}, "
        f"grpcio {grpc.__version__}; load average at start {load}"
    )


def _fmt(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def _table(report: Report) -> list[str]:
    head = (
        "| backend | RPC | conc | calls/s | events/s | p50 ms | p99 ms "
        "| calls/s vs echo | p50 vs echo | p99 vs echo | resp bytes | errors "
        "| server CPU | client CPU |"
    )
    lines = [head, "|" + "---|" * 14]
    for row in report.rows:
        m, e = row.m, row.echo
        events = _fmt(m.items_per_second) if m.items_per_call > 1 else ""
        ratios = (
            [
                _ratio(m.calls_per_second, e.calls_per_second),
                _ratio(m.p50_ms, e.p50_ms),
                _ratio(m.p99_ms, e.p99_ms),
            ]
            if e is not None
            else ["1.00", "1.00", "1.00"]
            if row.backend == "—"
            else ["-", "-", "-"]
        )
        lines.append(
            f"| {row.backend} | {m.name} | {m.concurrency} | {_fmt(m.calls_per_second)} "
            f"| {events} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | {' | '.join(ratios)} "
            f"| {row.response_bytes:,} | {m.errors} | {m.server_cpu:.0%} | {m.client_cpu:.0%} |"
        )
    return lines


def _targets(report: Report) -> list[str]:
    lines = []
    for row in report.rows:
        m, e = row.m, row.echo
        if m.name == "GetProfile" and e is not None:
            ratio = m.calls_per_second / e.calls_per_second if e.calls_per_second else 0.0
            lines.append(
                f"- GetProfile ≥ {GET_PROFILE_RATIO_TARGET}x echo throughput, {row.backend}, "
                f"c={m.concurrency}: {ratio:.2f}x — {verdict(ratio >= GET_PROFILE_RATIO_TARGET)}"
            )
        if m.name == "TrackEvents" and row.backend == "postgres":
            lines.append(
                f"- TrackEvents ≥ {TRACK_EVENTS_TARGET:,.0f} events/s on PostgreSQL + Redis, "
                f"c={m.concurrency}: {m.items_per_second:,.0f} events/s — "
                f"{verdict(m.items_per_second >= TRACK_EVENTS_TARGET)}"
            )
    if report.segmentation is not None:
        from tests.load.segbench import segmentation_targets

        lines += segmentation_targets(report.segmentation)
    if report.bonus is not None:
        from tests.load.bonusbench import bonus_targets

        lines += bonus_targets(report.bonus)
    if report.ads is not None:
        from tests.load.adsbench import ads_targets

        lines += ads_targets(report.ads)
    if report.recommend is not None:
        from tests.load.recobench import recommend_targets

        lines += recommend_targets(report.recommend)
    for result in report.imports:
        if result.seconds is None:
            lines.append(
                f"- Online Retail import ≤ {IMPORT_TARGET_SECONDS:.0f} s, {result.backend}: "
                f"{result.note}"
            )
        else:
            lines.append(
                f"- Online Retail import ≤ {IMPORT_TARGET_SECONDS:.0f} s, {result.backend}: "
                f"{result.seconds:.1f} s — {verdict(result.seconds <= IMPORT_TARGET_SECONDS)}"
            )
    return lines


def render(report: Report) -> str:
    o = report.options
    lines = [
        f"## Back CRM benchmark, {report.started}",
        "",
        f"Machine: {report.machine}.",
        f"Each measurement: {o.warmup:g} s warm-up, then {o.duration:g} s measured; "
        f"concurrency {', '.join(map(str, o.concurrency))} (closed loop, one channel); "
        f"echo response {ECHO_RESPONSE_BYTES} bytes; "
        f"TrackEvents {EVENTS_PER_BATCH} events per call.",
        "",
        *_table(report),
        "",
        "Ratios are against the echo server at the same concurrency (p50/p99 vs echo: "
        "higher is slower). CPU is cores busy over the window (100% = one core).",
        "",
    ]
    notes = [
        f"- {r.backend} {r.m.name} c={r.m.concurrency}: {r.note}" for r in report.rows if r.note
    ]
    errors = [
        f"- {r.backend} {r.m.name} c={r.m.concurrency}: first error {r.m.first_error}"
        for r in report.rows
        if r.m.first_error
    ]
    if report.imports:
        lines += [
            "| backend | import seconds | events | rows read | events/s |",
            "|---|---|---|---|---|",
        ]
        for i in report.imports:
            if i.seconds is None:
                lines.append(f"| {i.backend} | skipped | | | |")
            else:
                lines.append(
                    f"| {i.backend} | {i.seconds:.1f} | {i.events:,} | {i.rows:,} "
                    f"| {_fmt(i.events / i.seconds)} |"
                )
        lines.append("")
        notes += [f"- import, {i.backend}: {i.note}" for i in report.imports if i.note]
    if report.segmentation is not None:
        from tests.load.segbench import render_segmentation

        lines += render_segmentation(report.segmentation)
        notes += [f"- {n}" for n in report.segmentation.notes]
        notes += [
            f"- lag, {curve.label}, {step.offered:,} events/s: {step.note}"
            for curve in report.segmentation.lags
            for step in curve.steps
        ]
        notes += [f"- build: {b.note}" for b in report.segmentation.builds if b.note]
    if report.bonus is not None:
        from tests.load.bonusbench import render_bonus

        lines += render_bonus(report.bonus)
        notes += [f"- {n}" for n in report.bonus.notes]
        notes += [f"- pause, {p.backend}: {p.note}" for p in report.bonus.pauses if p.note]
    if report.ads is not None:
        from tests.load.adsbench import render_ads

        lines += render_ads(report.ads)
        notes += [f"- {n}" for n in report.ads.notes]
        notes += [f"- ads pause, {p.backend}: {p.note}" for p in report.ads.pauses if p.note]
    if report.recommend is not None:
        from tests.load.recobench import render_recommend

        lines += render_recommend(report.recommend)
        notes += [f"- {n}" for n in report.recommend.notes]
        notes += [
            f"- recommend unavailable, {p.backend}: {p.note}"
            for p in report.recommend.pauses
            if p.note
        ]
        notes += [f"- training, {t.backend}: {t.note}" for t in report.recommend.trainings]
    lines += ["### Targets", "", *_targets(report), ""]
    if notes or errors or report.notes:
        lines += ["### Notes", "", *notes, *errors, *(f"- {n}" for n in report.notes), ""]
    return "\n".join(lines)


def to_json(report: Report) -> dict[str, Any]:
    def measurement(m: Measurement) -> dict[str, Any]:
        return {
            "name": m.name,
            "concurrency": m.concurrency,
            "seconds": m.seconds,
            "calls": m.calls,
            "errors": m.errors,
            "calls_per_second": m.calls_per_second,
            "items_per_second": m.items_per_second,
            "p50_ms": m.p50_ms,
            "p99_ms": m.p99_ms,
            "server_cpu": m.server_cpu,
            "client_cpu": m.client_cpu,
        }

    return {
        "started": report.started,
        "machine": report.machine,
        "duration": report.options.duration,
        "rows": [
            {
                "backend": r.backend,
                **measurement(r.m),
                "response_bytes": r.response_bytes,
                "echo": measurement(r.echo) if r.echo else None,
                "note": r.note,
            }
            for r in report.rows
        ],
        "imports": [i.__dict__ for i in report.imports],
        "segmentation": _segmentation_json(report),
        "bonus": _bonus_json(report),
        "ads": _ads_json(report),
        "recommend": _recommend_json(report),
        "targets": _targets(report),
    }


def _segmentation_json(report: Report) -> dict[str, Any] | None:
    if report.segmentation is None:
        return None
    from tests.load.segbench import segmentation_json

    return segmentation_json(report.segmentation)


def _bonus_json(report: Report) -> dict[str, Any] | None:
    if report.bonus is None:
        return None
    from tests.load.bonusbench import bonus_json

    return bonus_json(report.bonus)


def _ads_json(report: Report) -> dict[str, Any] | None:
    if report.ads is None:
        return None
    from tests.load.adsbench import ads_json

    return ads_json(report.ads)


def _recommend_json(report: Report) -> dict[str, Any] | None:
    if report.recommend is None:
        return None
    from tests.load.recobench import recommend_json

    return recommend_json(report.recommend)


# ---------------------------------------------------------------- orchestration


def bench_backend(
    opts: Options, backend: str, workdir: Path, echo: dict[int, Measurement]
) -> list[Row]:
    with fresh_store(backend, workdir) as settings:
        progress(f"[{backend}] seeding {opts.customers:,} customers ...")
        ids = asyncio.run(seed_customers(settings, opts.customers))
        with server_process(backend, settings, workdir, opts.cprofile_dir) as server:
            print(
                f"[{backend}] measuring (server pid {server.pid}) ...", file=sys.stderr, flush=True
            )
            rows = asyncio.run(run_backend(opts, backend, settings, ids, server))
            if any(row.m.errors for row in rows):
                print(f"[{backend}] calls failed; server log:\n{server.tail(60)}", file=sys.stderr)
    for row in rows:
        row.echo = echo.get(row.m.concurrency)
    return rows


def run(opts: Options) -> Report:
    report = Report(datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), _machine(), opts)
    with tempfile.TemporaryDirectory(prefix="backcrm-bench-") as tmp:
        workdir = Path(tmp)
        progress("[echo] measuring ...")
        with server_process("echo", None, workdir, opts.cprofile_dir) as server:
            echo = asyncio.run(run_echo(opts, server))
        report.rows += [Row("—", m, ECHO_RESPONSE_BYTES) for m in echo.values()]
        if "profile" in opts.suites:
            for backend in opts.backends:
                report.rows += bench_backend(opts, backend, workdir, echo)
        if "segmentation" in opts.suites:
            from tests.load.segbench import run_segmentation

            report.segmentation = run_segmentation(opts, workdir, echo)
            report.rows += report.segmentation.rows
        if "bonus" in opts.suites:
            from tests.load.bonusbench import run_bonus

            report.bonus = run_bonus(opts, workdir, echo)
            report.rows += report.bonus.rows
        if "ads" in opts.suites:
            from tests.load.adsbench import run_ads

            report.ads = run_ads(opts, workdir, echo)
            report.rows += report.ads.rows
        if "recommend" in opts.suites:
            from tests.load.recobench import run_recommend

            report.recommend = run_recommend(opts, workdir, echo)
            report.rows += report.recommend.rows
        if not opts.skip_import and "profile" in opts.suites:
            for backend in opts.backends:
                print(
                    f"[{backend}] importing {opts.retail_file.name} ...",
                    file=sys.stderr,
                    flush=True,
                )
                report.imports.append(run_import(opts, backend, workdir))
    return report


def _parse(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m tests.load.bench", description=__doc__.split("\n")[0]
    )
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, help="seconds before measuring (default: 20%%, ≤2 s)")
    p.add_argument("--concurrency", default="16,64", help="comma-separated worker counts")
    p.add_argument("--backends", default="embedded,postgres", help="embedded,postgres")
    p.add_argument("--rpcs", default="GetProfile,TrackEvents", help="which RPCs to measure")
    p.add_argument("--customers", type=int, default=1000, help="seeded customers for GetProfile")
    p.add_argument("--skip-import", action="store_true", help="do not time the importer")
    p.add_argument("--retail-file", type=Path, default=RETAIL_FILE)
    p.add_argument("--output", type=Path, help="also write the markdown report here")
    p.add_argument("--json", type=Path, dest="json_path", help="write the figures as JSON here")
    p.add_argument("--cprofile-dir", type=Path, help="cProfile each server process into DIR")
    p.add_argument(
        "--suites", default=",".join(SERVICES), help="registered services: " + ",".join(SERVICES)
    )
    p.add_argument("--seg-customers", type=int, default=1000, help="customers for segmentation")
    p.add_argument(
        "--lag-seconds", type=float, default=10.0, help="seconds per lag-curve step (0: skip)"
    )
    p.add_argument(
        "--build-customers", type=int, default=1_000_000, help="segment build scale (0: skip)"
    )
    p.add_argument(
        "--scale-workers",
        type=int,
        default=2,
        help="the lag curve again with this many processes on PostgreSQL (1: skip)",
    )
    a = p.parse_args(argv)
    suites = [x.strip() for x in a.suites.split(",") if x.strip()]
    if set(suites) - SERVICES.keys():
        p.error(f"unknown suites {sorted(set(suites) - SERVICES.keys())}")
    backends = [b.strip() for b in a.backends.split(",") if b.strip()]
    unknown = set(backends) - {"embedded", "postgres"}
    if unknown:
        p.error(f"unknown backends {sorted(unknown)}")
    warmup = a.warmup if a.warmup is not None else min(2.0, max(0.5, a.duration * 0.2))
    return Options(
        duration=a.duration,
        warmup=warmup,
        concurrency=[int(c) for c in a.concurrency.split(",") if c.strip()],
        backends=backends,
        rpcs=[r.strip() for r in a.rpcs.split(",") if r.strip()],
        customers=a.customers,
        skip_import=a.skip_import,
        retail_file=a.retail_file,
        output=a.output,
        json_path=a.json_path,
        cprofile_dir=a.cprofile_dir,
        suites=suites,
        seg_customers=a.seg_customers,
        lag_seconds=a.lag_seconds,
        build_customers=a.build_customers,
        scale_workers=a.scale_workers,
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds every `finally`: servers stopped, databases dropped


def main(argv: list[str] | None = None) -> int:
    opts = _parse(argv)
    # Our own handler for both, so asyncio.run does not install its own (which only cancels
    # the running task, and a cancelled measurement would carry on with the next one).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        report = run(opts)
    except KeyboardInterrupt:
        print("interrupted: servers stopped, databases dropped", file=sys.stderr)
        return 130
    text = render(report)
    print(text)
    if opts.output:
        opts.output.write_text(text + "\n")
    if opts.json_path:
        opts.json_path.write_text(json.dumps(to_json(report), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
