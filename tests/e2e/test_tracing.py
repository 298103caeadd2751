"""One trace from the caller through the server to the bus consumer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_trace_context_flows_client_server_bus() -> None:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'libs' / 'gen'}")
    result = subprocess.run(
        [sys.executable, "-m", "tests.e2e.trace_probe"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    spans = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    by_name = {s["name"]: s for s in spans}
    root = by_name["shop checkout"]
    track = "/backcrm.profile.v1.ProfileService/TrackEvents"
    kinds = {(s["name"], s["kind"]) for s in spans if s["trace_id"] == root["trace_id"]}
    assert (track, "CLIENT") in kinds
    assert (track, "SERVER") in kinds
    assert ("profile.changed process", "CONSUMER") in kinds
