"""`backcrm serve all --workers 2` as an operator runs it, on PostgreSQL + Redis: two worker
processes on one address, a worker killed with SIGKILL is replaced while the other answers,
SIGTERM stops them all cleanly; and the refusals (embedded default, a port in use, workers
that keep dying)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from backcrm.profile.v1 import profile_service_pb2 as ppb
from backcrm.profile.v1 import profile_service_pb2_grpc
from backcrm.segmentation.v1 import segmentation_service_pb2 as spb
from backcrm.segmentation.v1 import segmentation_service_pb2_grpc

from libs.config import Settings
from libs.supervisor import Supervisor
from tests.e2e.helpers import email, event
from tests.e2e.test_process import ROOT, _free_port, _wait_serving
from tests.support import TOKENS, Backend, backend_settings

pytestmark = pytest.mark.e2e
SERVING = "serving profile, segmentation, bonus, ads, recommend on"
ADMIN = (("authorization", f"Bearer {TOKENS['admin'][0]}"),)


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCRM_")}
    env.update(
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        BACKCRM_REDIS_PREFIX=settings.redis_prefix,
        BACKCRM_AUTH_TOKENS=settings.auth_tokens,
        BACKCRM_VAR_DIR=str(settings.var_dir),
        BACKCRM_OUTBOX_POLL_SECONDS="0.05",
        BACKCRM_SHUTDOWN_GRACE_SECONDS="2",
        BACKCRM_BUS_DRAIN_SECONDS="1",
        PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'libs' / 'gen'}",
    )
    return env


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)


def _calls(address: str, rounds: int) -> None:
    """Each round on a new connection (so the kernel spreads them over the workers): a write,
    a read of it, and a segmentation call that resolves an identity through profile — one
    worker calling its own address, answered by whichever worker takes the connection."""
    for _ in range(rounds):
        who = email(f"{uuid.uuid4().hex}@example.com")
        with grpc.insecure_channel(address) as channel:
            profile = profile_service_pb2_grpc.ProfileServiceStub(channel)
            segments = segmentation_service_pb2_grpc.SegmentationServiceStub(channel)
            tracked = profile.TrackEvents(
                ppb.TrackEventsRequest(events=[event(uuid.uuid4().hex, who, sku="mug")]),
                metadata=ADMIN,
                timeout=10,
            )
            assert tracked.accepted == 1
            got = profile.GetProfile(
                ppb.GetProfileRequest(customer=who), metadata=ADMIN, timeout=10
            )
            assert got.profile.customer_id
            evaluated = segments.EvaluateSegments(
                spb.EvaluateSegmentsRequest(customer=who), metadata=ADMIN, timeout=10
            )
            assert list(evaluated.unknown_segment_ids) == []


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """PostgreSQL + Redis: the only backend several processes can share."""
    with backend_settings("postgres", Path(tmp_path_factory.mktemp("workers"))) as b:
        yield b


def _serve(
    env: dict[str, str], log: Path, *args: str, service: str = "all"
) -> subprocess.Popen[bytes]:
    """`backcrm serve SERVICE ARGS`, its output (the supervisor's and the workers') into `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", service, *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def test_two_workers_survive_a_killed_one_and_stop_on_sigterm(
    shared: Backend, tmp_path: Path
) -> None:
    env = _env(shared.settings)
    address = f"127.0.0.1:{_free_port()}"
    log = tmp_path / "serve.log"
    supervisor = _serve(env, log, "--address", address, "--workers", "2")
    try:
        _wait_for(lambda: len(_children(supervisor.pid)) == 2, "two workers")
        _wait_serving(address, supervisor)
        _wait_for(lambda: log.read_text().count(SERVING) == 2, "both workers to serve")
        _calls(address, 10)
        # A single-process server on the same port is refused (no silent sharing).
        intruder_log = tmp_path / "intruder.log"
        intruder = _serve(env, intruder_log, "--address", address)
        try:
            assert intruder.wait(timeout=120) != 0
            assert f"cannot bind {address}: is the port in use?" in intruder_log.read_text()
        finally:
            _stop(intruder)
        workers = _children(supervisor.pid)
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        _wait_for(lambda: victim not in _children(supervisor.pid), "the killed worker to go")
        _calls(address, 10)  # the survivor answers every call meanwhile
        _wait_for(
            lambda: len(_children(supervisor.pid)) == 2 and victim not in _children(supervisor.pid),
            "the supervisor to start a new worker",
        )
        _wait_for(lambda: log.read_text().count(SERVING) == 3, "the new worker to serve")
        _calls(address, 10)
        workers = _children(supervisor.pid)
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0
        assert all(not Path(f"/proc/{pid}").exists() for pid in workers)
        output = log.read_text()
        assert output.count("shutting down: draining") == 2  # each worker drained
        assert f"worker 0 (pid {victim})" in output or f"worker 1 (pid {victim})" in output
        assert "restarting in" in output
    finally:
        _stop(supervisor)


def test_one_service_in_workers(shared: Backend, tmp_path: Path) -> None:
    """`serve profile --workers 2`: profile's RPCs answered by both, a clean stop."""
    address = f"127.0.0.1:{_free_port()}"
    log = tmp_path / "profile.log"
    supervisor = _serve(
        _env(shared.settings), log, "--address", address, "--workers=2", service="profile"
    )
    try:
        _wait_for(lambda: log.read_text().count("serving profile on") == 2, "both workers")
        for _ in range(6):
            who = email(f"{uuid.uuid4().hex}@example.com")
            with grpc.insecure_channel(address) as channel:
                profile = profile_service_pb2_grpc.ProfileServiceStub(channel)
                request = ppb.TrackEventsRequest(events=[event(uuid.uuid4().hex, who)])
                assert profile.TrackEvents(request, metadata=ADMIN, timeout=10).accepted == 1
                reply = profile.GetProfile(ppb.GetProfileRequest(customer=who), metadata=ADMIN)
                assert reply.profile.customer_id
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0
        assert log.read_text().count("shutting down: draining") == 2
    finally:
        _stop(supervisor)


def test_the_embedded_default_refuses_several_workers(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        BACKCRM_VAR_DIR=str(tmp_path), PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'libs' / 'gen'}"
    )
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "serve", "all", "--workers", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)" in done.stderr


def test_a_port_in_use_is_refused(shared: Backend) -> None:
    env = _env(shared.settings)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "services.cli",
                "serve",
                "all",
                "--workers=2",
                f"--address={address}",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert f"cannot serve {address}" in done.stderr


async def test_workers_that_keep_dying_make_the_supervisor_give_up() -> None:
    supervisor = Supervisor(
        lambda slot: [sys.executable, "-c", f"raise SystemExit({slot + 3})"],
        2,
        stable_seconds=60,
        max_quick_deaths=3,
    )
    assert await supervisor.run() == 1
    assert supervisor.pids == {}


async def test_a_worker_that_cannot_start_stops_the_supervisor(tmp_path: Path) -> None:
    supervisor = Supervisor(lambda _slot: [str(tmp_path / "no-such-program")], 2)
    assert await supervisor.run() == 1
