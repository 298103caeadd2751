"""Locust load test of the whole suite, one user class per caller type (`make load`).

    make load HOST=127.0.0.1:50051 USERS=32 DURATION=60s     # TOKEN=…, else var/demo.token
    locust -f tests/load/locustfile.py --headless -u 32 -r 8 -t 60s --host 127.0.0.1:50051

The host is `host:port`, or several comma-separated (`a:1,b:2,c:3`: the processes of one
deployment; each user sticks to one of them, round-robin); with the services in processes of
their own, LOAD_SERVICE_ADDRESSES=segmentation=host:port,bonus=host:port,… sends each named
service's calls there instead (HOST is then profile's). The bearer token comes from
BACKCRM_TOKEN, or else from var/demo.token (BACKCRM_VAR_DIR/demo.token), which `make run`
writes; it needs `admin` (the set-up creates a program, promotions, segments, a catalogue, a
showcase and campaigns — the demo token has it). LOAD_TOKENS=WebShop=tok,AdServer=tok,… gives
the named caller types tokens of their own (each needs the scopes of its `Caller.scopes` in
tests/load/mix.py), so the run also checks the suite's scopes as real clients hold them; the
types it does not name use BACKCRM_TOKEN.

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
    AdServer,
    Caller,
    Calls,
    Desk,
    Marketing,
    WebShop,
    World,
    addresses,
    service_routes,
    start,
)
from tests.load.report import LoadRow, load_summary  # noqa: E402

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


def caller_tokens(spec: str) -> dict[str, str]:
    """LOAD_TOKENS: `CallerType=token,…` (e.g. WebShop=…,AdServer=…)."""
    known = {kind.__name__ for kind in CALLERS}
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, token = item.partition("=")
        if name not in known or not token:
            raise SystemExit(f"LOAD_TOKENS: {item!r} is not <one of {sorted(known)}>=<token>")
        out[name] = token
    return out


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
    # Services in processes of their own: LOAD_SERVICE_ADDRESSES=segmentation=host:port,…
    _state["routes"] = service_routes(os.environ.get("LOAD_SERVICE_ADDRESSES", ""))
    _state["tokens"] = caller_tokens(os.environ.get("LOAD_TOKENS", ""))
    admin = Calls(found[0], bearer_token(), _reporter(environment), routes=_state["routes"])
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
            next(_state["next"]),
            _state["tokens"].get(self.caller.__name__) or bearer_token(),
            _reporter(self.environment),
            outcomes=OUTCOMES,
            routes=_state["routes"],
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
    """tests/load/report.py's load summary of Locust's stats."""
    stats = environment.stats
    rows = [
        LoadRow(
            service,
            name,
            entry.num_requests,
            entry.num_failures,
            *(entry.get_response_time_percentile(p) for p in (0.5, 0.95, 0.99)),
        )
        for (name, service), entry in stats.entries.items()
    ]
    return load_summary(
        rows,
        seconds=stats.total.last_request_timestamp - stats.total.start_time,
        nodes=int(os.environ.get("LOAD_NODES", "0")) or len(_state.get("addresses", [None])),
        max_error_rate=float(os.environ.get("LOAD_MAX_ERROR_RATE", "0.01")),
        refusals=OUTCOMES,
    )


@events.quitting.add_listener
def _report(environment: Environment, **_: Any) -> None:
    lines, ok = summary(environment)
    print("\n".join(lines), flush=True)
    if not ok:
        environment.process_exit_code = 1
