"""Garbage-collector settings for a serving process.

CPython's cyclic collector runs a young collection every 700 net allocations of container
objects and, every 10 of those, an older one that walks everything alive since start-up (modules,
SQLAlchemy metadata, protobuf descriptors). Under TrackEvents load that was 12-13% of a
profile process's CPU (`gc.callbacks`, 20,000 events in process, PostgreSQL + Redis). Once a
server has started, what exists is there for good: `gc.freeze()` moves it out of every
collection, and a larger young generation makes the collections a tenth as frequent. Garbage
is still collected (reference counting frees almost everything at once; cycles a little
later); only the walks over long-lived objects stop. On the segmentation read bench each full
collection of the ~130,000 start-up objects took 110-120 ms of CPU with the event loop
stopped: the tail of every read under load. Objects frozen that turn into cyclic garbage
later are never collected, hence only once, at start, in a process that keeps its services
(not in tests that build and drop suites).
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "tune_for_serving"]

YOUNG_THRESHOLD = 10_000  # allocations between young collections (CPython's default: 700)


def tune_for_serving() -> None:
    """Call once the process has started serving (its long-lived objects exist)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
