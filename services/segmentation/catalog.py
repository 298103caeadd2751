"""The segments in memory: parsed conditions and the index from changes to segments.

A change names field paths and event types; only segments whose conditions read one of them
are re-evaluated, so the cost of a change grows with the segments it can affect, not with all
segments. Nested segments are evaluated after the segments they reference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from services.segmentation.conditions import (
    Node,
    Reads,
    decode_condition,
    merge_windows,
    reads_of,
    windows_of,
)
from services.segmentation.records import SegmentRecord

__all__ = ["Catalog", "Entry", "triggers_of"]

# Derived fields and the profile paths that change them.
DERIVED = {
    "status": ("last_activity_at", "purchase_summary", "created_at"),
    "rfm": ("purchase_summary",),
    "purchase_summary": ("rfm",),
}


def triggers_of(path: str) -> set[str]:
    """The changed-path roots that can change what `path` reads."""
    root = path.split(".", 1)[0]
    return {root, *DERIVED.get(root, ())}


def _reads(changed: str, read: str) -> bool:
    """Whether a change at path `changed` can change the value at path `read`."""
    changed_root, read_root = changed.split(".", 1)[0], read.split(".", 1)[0]
    if changed_root != read_root:
        return changed_root in DERIVED.get(read_root, ())
    return changed == read or read.startswith(changed + ".") or changed.startswith(read + ".")


@dataclass
class Entry:
    record: SegmentRecord
    node: Node
    reads: Reads
    # per event type it reads, the longest window (None: a condition reads all history)
    windows: dict[str, float | None] = field(default_factory=dict)

    @classmethod
    def of(cls, record: SegmentRecord, node: Node) -> Entry:
        """The entry of a segment whose condition is `node` (parsed from `record.condition`)."""
        return cls(record, node, reads_of(node), windows_of(node))


@dataclass
class Catalog:
    entries: dict[str, Entry] = field(default_factory=dict)
    _by_root: dict[str, set[str]] = field(default_factory=dict)
    _by_event: dict[str, set[str]] = field(default_factory=dict)
    _dependents: dict[str, set[str]] = field(default_factory=dict)
    # What request paths derive from the definitions (handlers' request plans), dropped
    # whenever a definition changes.
    derived: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, records: Iterable[SegmentRecord]) -> Catalog:
        catalog = cls()
        for record in records:
            catalog.put(Entry.of(record, decode_condition(record.condition)))
        return catalog

    def put(self, entry: Entry) -> None:
        self.remove(entry.record.segment_id)
        self.derived.clear()
        segment_id = entry.record.segment_id
        self.entries[segment_id] = entry
        for path in entry.reads.paths:
            for root in triggers_of(path):
                self._by_root.setdefault(root, set()).add(segment_id)
        for kind in entry.reads.event_types:
            self._by_event.setdefault(kind, set()).add(segment_id)
        for ref in entry.reads.segments:
            self._dependents.setdefault(ref, set()).add(segment_id)

    def remove(self, segment_id: str) -> None:
        if self.entries.pop(segment_id, None) is None:
            return
        self.derived.clear()
        for index in (self._by_root, self._by_event, self._dependents):
            for ids in index.values():
                ids.discard(segment_id)

    def maintained(self, segment_id: str) -> bool:
        """Behavioural segments have precomputed members; contextual parts need a request."""
        entry = self.entries.get(segment_id)
        return entry is not None and entry.record.kind == "BEHAVIORAL"

    def affected(self, paths: Iterable[str], event_types: Iterable[str]) -> set[str]:
        hit: set[str] = set()
        paths = list(paths)
        if "*" in paths:
            hit = set(self.entries)
        else:
            for changed in paths:
                for segment_id in self._by_root.get(changed.split(".", 1)[0], ()):
                    if any(_reads(changed, read) for read in self.entries[segment_id].reads.paths):
                        hit.add(segment_id)
            for kind in event_types:
                hit |= self._by_event.get(kind, set())
        return {s for s in self.with_dependents(hit) if self.maintained(s)}

    def with_dependents(self, segment_ids: Iterable[str]) -> set[str]:
        out, todo = set(), list(segment_ids)
        while todo:
            segment_id = todo.pop()
            if segment_id in out:
                continue
            out.add(segment_id)
            todo.extend(self._dependents.get(segment_id, ()))
        return out

    def dependents(self, segment_id: str) -> set[str]:
        return set(self._dependents.get(segment_id, ()))

    def ordered(self, segment_ids: Iterable[str]) -> list[str]:
        """Referenced segments before the segments that reference them."""
        wanted = set(segment_ids)
        done: list[str] = []
        seen: set[str] = set()

        def visit(segment_id: str) -> None:
            if segment_id in seen:
                return
            seen.add(segment_id)
            entry = self.entries.get(segment_id)
            for ref in sorted(entry.reads.segments) if entry else ():
                visit(ref)
            if segment_id in wanted:
                done.append(segment_id)

        for segment_id in sorted(wanted):
            visit(segment_id)
        return done

    def event_windows(
        self, segment_ids: Iterable[str], evaluated_ref: Callable[[str], bool] = lambda _: False
    ) -> dict[str, float | None]:
        """Per event type the segments read, the longest window (None = all history): a
        shop's views are read for the week a condition looks at, not for the quarter some
        purchase condition does.

        A referenced segment counts only when it is evaluated too (`evaluated_ref`); one read
        from stored memberships needs no events.
        """
        return merge_windows(
            self.entries[s].windows for s in self.with_refs(segment_ids, evaluated_ref)
        )

    def event_cutoffs(self, segment_ids: Iterable[str], now: float) -> dict[str, float | None]:
        """`event_windows` as moments: per type, read the events that occurred after it
        (None: all of them) — what `load_events` takes."""
        windows = self.event_windows(segment_ids)
        return {kind: None if w is None else now - w for kind, w in windows.items()}

    def event_needs(
        self, segment_ids: Iterable[str], evaluated_ref: Callable[[str], bool] = lambda _: False
    ) -> tuple[set[str], float | None]:
        """Event types the segments read, and the longest window over all of them (None = all
        history): `event_windows` for a read of one window."""
        windows = self.event_windows(segment_ids, evaluated_ref)
        values = list(windows.values())
        longest = None if None in values else max((w for w in values if w), default=0.0)
        return set(windows), longest

    def with_refs(
        self, segment_ids: Iterable[str], follow: Callable[[str], bool] = lambda _: True
    ) -> set[str]:
        """The segments and those they reference (through the ones `follow` accepts)."""
        out, todo = set(), list(segment_ids)
        while todo:
            segment_id = todo.pop()
            if segment_id in out or segment_id not in self.entries:
                continue
            out.add(segment_id)
            todo.extend(r for r in self.entries[segment_id].reads.segments if follow(r))
        return out
