"""What the benchmark suites' reports share: the verdict of a target, and the figures of a
"pause → gone on another process" run (bonus, ads) with their table and JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.load.loadgen import percentile

__all__ = [
    "PAUSE_TARGET_SECONDS",
    "PAUSE_TRIALS",
    "PauseResult",
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
