"""What the benchmark suites' reports share: the verdict of a target, and the figures of a
"pause → gone on another process" run (bonus, ads, recommend) with their table and JSON, and
the probe loop that times "the last answer that still showed it" (ads, recommend)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.load.loadgen import percentile

__all__ = [
    "PAUSE_TARGET_SECONDS",
    "PAUSE_TRIALS",
    "PauseResult",
    "last_seen",
    "pause_json",
    "pause_table",
    "verdict",
]

PAUSE_TRIALS = 10
PAUSE_TARGET_SECONDS = 1.0


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
