"""What the benchmark suites' reports share: the verdict of a target, the figures of a
"pause → gone on another process" run (bonus, ads, recommend) with their table and JSON, the
probe loop that times "the last answer that still showed it" (ads, recommend), and the
summary of a `make load` run (`LoadRow`, `load_summary`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.load.loadgen import percentile
from tests.support import TOKENS

__all__ = [
    "ADMIN_AUTH",
    "PAUSE_TARGET_SECONDS",
    "PAUSE_TRIALS",
    "SEED_BUDGET_RPS",
    "LoadRow",
    "PauseResult",
    "last_seen",
    "load_summary",
    "pause_json",
    "pause_table",
    "progress",
    "verdict",
]

PAUSE_TRIALS = 10
PAUSE_TARGET_SECONDS = 1.0
# What every benchmark call carries: the e2e tests' admin token (every scope).
ADMIN_AUTH = (("authorization", f"Bearer {TOKENS['admin'][0]}"),)


def progress(message: str) -> None:
    """A line of the benchmarks' progress, on stderr (stdout carries the report)."""
    print(message, file=sys.stderr, flush=True)


# The seed deck's budget per node: requests/s of ads, and of the CRM (every other service).
SEED_BUDGET_RPS = {"crm": 20.0, "ads": 10.0}


@dataclass
class PauseResult:
    backend: str
    seconds: list[float] = field(default_factory=list)  # sorted
    note: str = ""

    def pct(self, p: float) -> float:
        return percentile(self.seconds, p)

    @property
    def passed(self) -> bool:
        return len(self.seconds) == PAUSE_TRIALS and self.pct(100) <= PAUSE_TARGET_SECONDS

    @property
    def worst(self) -> str:
        return f"{self.pct(100) * 1000:,.0f} ms" if self.seconds else "n/a"


def verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**MISS**"


def pause_table(title: str, pauses: list[PauseResult]) -> list[str]:
    if not pauses:
        return []
    lines = ["", f"### {title}", "", "| backend | trials | p50 | max |", "|---|---:|---:|---:|"]
    for pause in pauses:
        if pause.seconds:
            lines.append(
                f"| {pause.backend} | {len(pause.seconds)} | {pause.pct(50) * 1000:,.0f} ms "
                f"| {pause.pct(100) * 1000:,.0f} ms |"
            )
        else:
            lines.append(f"| {pause.backend} | 0 | n/a | n/a |")
    return lines


def pause_json(pauses: list[PauseResult], notes: list[str]) -> dict[str, Any]:
    return {
        "pauses": [{"backend": p.backend, "seconds": p.seconds, "note": p.note} for p in pauses],
        "notes": notes,
    }


@dataclass(frozen=True)
class LoadRow:
    """One RPC's figures in a load run (milliseconds)."""

    service: str
    rpc: str
    requests: int
    failures: int
    p50: float
    p95: float
    p99: float


def load_summary(
    rows: Sequence[LoadRow],
    seconds: float,
    nodes: int,
    max_error_rate: float,
    refusals: Mapping[str, int] | None = None,
) -> tuple[list[str], bool]:
    """The per-RPC table (rps, p50/p95/p99), the expected refusals, the multiple of the seed
    deck's budget per node for CRM and ads, and the verdict: true when some request was made
    and failures / requests ≤ max_error_rate. Expected refusals are not failures."""
    seconds = max(seconds, 1e-9)
    lines = [
        "",
        f"{'service':<13} {'rpc':<22} {'requests':>8} {'fails':>6} {'rps':>7} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}",
    ]
    by_group = {"crm": 0, "ads": 0}
    for row in sorted(rows, key=lambda r: (r.service, r.rpc)):
        by_group["ads" if row.service == "ads" else "crm"] += row.requests
        lines.append(
            f"{row.service:<13} {row.rpc:<22} {row.requests:>8} {row.failures:>6} "
            f"{row.requests / seconds:>7.1f} {row.p50:>7.0f} {row.p95:>7.0f} {row.p99:>7.0f}"
        )
    requests = sum(r.requests for r in rows)
    failures = sum(r.failures for r in rows)
    lines.append(f"{'all':<36} {requests:>8} {failures:>6} {requests / seconds:>7.1f}")
    if refusals:
        lines.append(
            "expected refusals (not errors): "
            + ", ".join(f"{k}: {v}" for k, v in sorted(refusals.items()))
        )
    crm = sorted({r.service for r in rows if r.service != "ads"})
    for group, label in ((f"CRM ({', '.join(crm)})", "crm"), ("ads", "ads")):
        rps = by_group[label] / seconds
        budget = SEED_BUDGET_RPS[label]
        lines.append(
            f"{group}: {rps:.1f} rps over {seconds:.0f} s on {nodes} node(s) = "
            f"{rps / max(nodes, 1) / budget:.1f} x the seed deck's {budget:g} rps per node"
        )
    rate = failures / requests if requests else 1.0
    ok = requests > 0 and rate <= max_error_rate
    lines.append(
        f"error rate {rate:.2%} (limit {max_error_rate:.2%}): {'PASS' if ok else 'FAIL'}"
        + ("" if requests else ": no request was made")
    )
    return lines, ok


async def last_seen(
    shows: Callable[[], Awaitable[bool]], *, present: bool, timeout: float
) -> float | None:
    """Probes (`shows`: one call to the other process, True when its answer shows the thing)
    back to back until the answer's presence is `present`; the perf_counter time at the end of
    the last probe that showed it (-inf when none did), None on timeout."""
    deadline = time.perf_counter() + timeout
    last = float("-inf")
    while time.perf_counter() < deadline:
        shown = await shows()
        if shown == present:
            return last
        if shown:
            last = time.perf_counter()
    return None
