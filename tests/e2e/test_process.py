"""The `backcrm` command as a user runs it: migrate, seed, serve with the demo token, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from backcrm.profile.v1 import profile_service_pb2 as pb
from backcrm.profile.v1 import profile_service_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.helpers import email

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _env(var: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        BACKCRM_VAR_DIR=str(var),
        PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'libs' / 'gen'}",
        BACKCRM_SHUTDOWN_GRACE_SECONDS="2",
    )
    return env


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_serving(address: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise AssertionError("the server never reported SERVING")


def test_demo_flow_then_graceful_sigterm(tmp_path: Path) -> None:
    env = _env(tmp_path)
    _cli("migrate", env=env)
    seeded = _cli("seed", "--customers", "15", "--if-empty", "--quiet", env=env)
    assert "customers" in seeded.stdout
    address = f"127.0.0.1:{_free_port()}"
    server = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", "all", "--address", address, "--demo"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_serving(address, server)
        token = (tmp_path / "demo.token").read_text().strip()
        assert token.startswith("bcrm_")
        stored = (tmp_path / "tokens.json").read_text()
        assert token not in stored  # only its hash is kept
        with grpc.insecure_channel(address) as channel:
            api = profile_service_pb2_grpc.ProfileServiceStub(channel)
            reply = api.GetProfile(
                pb.GetProfileRequest(customer=email("demo@example.com")),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=10,
            )
            assert reply.profile.purchase_summary.orders >= 0
            assert reply.profile.recent_events
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        output = server.stdout.read() if server.stdout else ""
        assert token in output  # the demo prints its token
        assert "grpcurl" in output
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()
