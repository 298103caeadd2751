"""Locust load test of the whole suite, one user class per caller type (`make load`).

    make load HOST=127.0.0.1:50051 USERS=32 DURATION=60s     # TOKEN=…, else var/demo.token
    locust -f tests/load/locustfile.py --headless -u 32 -r 8 -t 60s --host 127.0.0.1:50051

The host is `host:port`, or several comma-separated (`a:1,b:2,c:3`: the processes of one
deployment; each user sticks to one of them, round-robin). The bearer token comes from
BACKCRM_TOKEN, or else from var/demo.token (BACKCRM_VAR_DIR/demo.token), which `make run`
writes; it needs `admin` (the set-up creates a program, promotions, segments, a catalogue, a
showcase and campaigns — the demo token has it).

The callers and their tasks are in tests/load/mix.py (web shop, ad server, call-centre desk,
marketing, weighted 12:4:3:1), shared with the correctness test
(tests/e2e/test_load_correctness.py). Calls use plain sync grpc channels made
gevent-friendly; each is reported to Locust with the service as request type and the RPC as
name. At the end it prints per-RPC rps and p50/p95/p99, the expected business refusals
(not errors), the multiple of the seed deck's budget reached (20 rps of CRM — profile,
segmentation, bonus, recommend — and 10 rps of ads, per node; nodes = the addresses given,
or LOAD_NODES), and exits non-zero when the error rate passes LOAD_MAX_ERROR_RATE (0.01).
Knobs: LOAD_CAPPED_USES (the capped promotion's max_uses, 100), LOAD_CAMPAIGN_BUDGET (the
capped campaign's total impressions, 500).
"""

from __future__ import annotations

import itertools
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import gevent
import grpc.experimental.gevent as grpc_gevent
from locust import User, between, events, task
from locust.env import Environment
from locust.exception import StopUser

# Locust loads this file by path: make the repository and its generated stubs importable.
_REPO = Path(__file__).resolve().parents[2]
for _path in (_REPO, _REPO / "libs" / "gen"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from tests.load.mix import (  # noqa: E402
    CALLERS,
    CRM_SERVICES,
    SEED_BUDGET_RPS,
    AdServer,
    Caller,
    Calls,
    Desk,
    Marketing,
    WebShop,
    World,
    addresses,
    start,
)

grpc_gevent.init_gevent()  # sync grpc calls yield to gevent instead of blocking the process

OUTCOMES: Counter[str] = Counter()  # expected refusals, all users
_state: dict[str, Any] = {}  # "world", "addresses", "next": set up at test start


def bearer_token() -> str:
    token = os.environ.get("BACKCRM_TOKEN", "").strip()
    if token:
        return token
    path = Path(os.environ.get("BACKCRM_VAR_DIR", "var")) / "demo.token"
    if not path.exists():
        raise SystemExit(f"no token: set BACKCRM_TOKEN or run `make run` to create {path}")
    return path.read_text().strip()


def _reporter(environment: Environment) -> Any:
    fire = environment.events.request.fire

    def report(service: str, rpc: str, ms: float, size: int, error: BaseException | None) -> None:
        fire(
            request_type=service,
            name=rpc,
            response_time=ms,
            response_length=size,
            exception=error,
            context={},
        )

    return report


@events.test_start.add_listener
def _set_up(environment: Environment, **_: Any) -> None:
    if not environment.host:
        raise SystemExit("pass --host 127.0.0.1:50051 (or several, comma-separated)")
    found = addresses(environment.host)
    _state["addresses"] = found
    _state["next"] = itertools.cycle(found)
    admin = Calls(found[0], bearer_token(), _reporter(environment))
    try:
        _state["world"] = World.create(
            admin,
            max_uses=int(os.environ.get("LOAD_CAPPED_USES", "100")),
            campaign_budget=int(os.environ.get("LOAD_CAMPAIGN_BUDGET", "500")),
        )
    except RuntimeError as exc:  # its failed call is reported (and in the summary)
        print(f"{exc}; stopping", file=sys.stderr, flush=True)
        environment.process_exit_code = 1
        if environment.runner is not None:
            gevent.spawn_later(0, environment.runner.quit)
    finally:
        admin.close()


class _MixUser(User):
    """One caller of `caller`'s type on one of the addresses."""

    abstract = True
    caller: type[Caller]
    wait_time = between(0.05, 0.5)

    def on_start(self) -> None:
        self.calls = Calls(
            next(_state["next"]), bearer_token(), _reporter(self.environment), outcomes=OUTCOMES
        )
        if "world" not in _state:
            raise StopUser()  # the set-up failed: the run is stopping
        self.actor = self.caller(_state["world"], self.calls)
        if not start(self.actor):
            raise StopUser()  # its sign-up failed (reported); the others go on

    def on_stop(self) -> None:
        self.calls.close()

    @task
    def step(self) -> None:
        self.actor.step()


class WebShopUser(_MixUser):
    caller = WebShop
    weight = CALLERS[WebShop]


class AdServerUser(_MixUser):
    caller = AdServer
    weight = CALLERS[AdServer]


class DeskUser(_MixUser):
    caller = Desk
    weight = CALLERS[Desk]
    wait_time = between(0.5, 2.0)  # a person reads the screen


class MarketingUser(_MixUser):
    caller = Marketing
    weight = CALLERS[Marketing]
    wait_time = between(1.0, 3.0)


def summary(environment: Environment) -> tuple[list[str], bool]:
    """The per-RPC table, the budget multiples and the verdict on the error rate."""
    stats = environment.stats
    total = stats.total
    seconds = max(total.last_request_timestamp - total.start_time, 1e-9)
    nodes = int(os.environ.get("LOAD_NODES", "0")) or len(_state.get("addresses", [None]))
    lines = [
        "",
        f"{'service':<13} {'rpc':<22} {'requests':>8} {'fails':>6} {'rps':>7} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}",
    ]
    by_group = {"crm": 0, "ads": 0}
    for (name, service), entry in sorted(stats.entries.items(), key=lambda kv: kv[0][::-1]):
        by_group["ads" if service == "ads" else "crm"] += entry.num_requests
        lines.append(
            f"{service:<13} {name:<22} {entry.num_requests:>8} {entry.num_failures:>6} "
            f"{entry.num_requests / seconds:>7.1f} "
            + " ".join(f"{entry.get_response_time_percentile(p):>7.0f}" for p in (0.5, 0.95, 0.99))
        )
    lines.append(
        f"{'all':<36} {total.num_requests:>8} {total.num_failures:>6} "
        f"{total.num_requests / seconds:>7.1f}"
    )
    if OUTCOMES:
        lines.append(
            "expected refusals (not errors): "
            + ", ".join(f"{k}: {v}" for k, v in sorted(OUTCOMES.items()))
        )
    for group, label in (("crm", "CRM (" + ", ".join(CRM_SERVICES) + ")"), ("ads", "ads")):
        rps = by_group[group] / seconds
        budget = SEED_BUDGET_RPS[group]
        lines.append(
            f"{label}: {rps:.1f} rps over {seconds:.0f} s on {nodes} node(s) = "
            f"{rps / nodes / budget:.1f} x the seed deck's {budget:g} rps per node"
        )
    limit = float(os.environ.get("LOAD_MAX_ERROR_RATE", "0.01"))
    rate = total.num_failures / total.num_requests if total.num_requests else 1.0
    ok = total.num_requests > 0 and rate <= limit
    lines.append(
        f"error rate {rate:.2%} (limit {limit:.2%}): {'PASS' if ok else 'FAIL'}"
        + ("" if total.num_requests else " — no request was made")
    )
    return lines, ok


@events.quitting.add_listener
def _report(environment: Environment, **_: Any) -> None:
    lines, ok = summary(environment)
    print("\n".join(lines), flush=True)
    if not ok:
        environment.process_exit_code = 1
