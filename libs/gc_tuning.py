"""Garbage collection of a serving process, settled once it has started.

CPython's cyclic collector runs a full collection whenever the objects promoted to its old
generation since the last one exceed a quarter of it, and a full collection walks every
object the process holds: modules, SQLAlchemy, protobuf, the segment catalogue — 130,000
objects once a suite has started. Calls in flight survive the young collections and are
promoted, so under load that happened every few seconds; on the segmentation read bench
(docs/benchmarks.md) each one took 110-160 ms of CPU with the event loop stopped, the tail
of every read.

What start-up allocated lives as long as the process: once it serves, it is collected once
and frozen (`gc.freeze`: moved to a permanent generation no collection walks again), so a
full collection walks only what was allocated since. Objects frozen that turn into cyclic
garbage later are never collected — hence only once, at start, in a process that keeps its
services (not in tests that build and drop suites).
"""

from __future__ import annotations

import gc

__all__ = ["settle_heap"]


def settle_heap() -> None:
    """Collect, then freeze, what the process allocated so far (call it once it serves)."""
    gc.collect()
    gc.freeze()
