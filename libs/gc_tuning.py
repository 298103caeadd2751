"""Garbage collection of a serving process, settled once it has started.

CPython's cyclic collector runs a young collection every 700 net allocations of container
objects and, every so often, older ones; a full collection walks every object the process
holds: modules, SQLAlchemy, protobuf, the segment catalogue — about 130,000 objects once a
suite has started. Calls in flight survive young collections and are promoted, so under load
full collections came every few seconds: on the segmentation read bench each took 110-160 ms
of CPU with the event loop stopped (the tail of every read), and under TrackEvents load the
collector was 12-13% of a profile process's CPU (`gc.callbacks`, 20,000 events in process).

What start-up allocated lives as long as the process: once it serves, it is collected once
and frozen (`gc.freeze`: moved to a permanent generation no collection walks again), so a
collection walks only what was allocated since. The young threshold stays CPython's: a larger
one (tried at 10,000 and 20,000) makes each young collection free that many objects at once,
17-36 ms with the loop stopped at 20,000 — fewer pauses, longer ones, the wrong trade for
p99. Objects frozen that turn into cyclic garbage later are never collected, hence only once,
at start, in a process that keeps its services (not in tests that build and drop suites).
"""

from __future__ import annotations

import gc

__all__ = ["tune_for_serving"]


def tune_for_serving() -> None:
    """Collect, then freeze, what the process allocated so far (call once it serves)."""
    gc.collect()
    gc.freeze()
