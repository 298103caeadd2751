"""The segment catalogue this process evaluates with, and the definition changes that move it.

Every process must see every definition change. A version row (seg_catalog) is bumped with
each change; units of work compare it with the version the catalogue was loaded at and reload
when it moved. Consumer batches do so in their transaction, holding the version (a definition
change waits for them), so nothing they evaluate is missed by a build that starts after such a
change; request paths compare at most every CATALOG_MAX_AGE seconds, and the
`segmentation.segments` event each change publishes makes every process compare at once.

One `CatalogHolder` is shared by the handlers, the engine and the builder of a process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from services.segmentation.catalog import Catalog, Entry
from services.segmentation.ports import SegmentationUnitOfWork
from services.segmentation.records import SegmentRecord

__all__ = ["CATALOG_MAX_AGE", "CatalogHolder", "EncodeSegmentChange"]

log = logging.getLogger(__name__)
# How stale a request may find the segment catalogue (another process's definition change
# also arrives as a `segmentation.segments` event, which refreshes at once).
CATALOG_MAX_AGE = 0.5
# (segment id, change, record or None when deleted, at) -> (topic, payload)
EncodeSegmentChange = Callable[[str, str, SegmentRecord | None, float], tuple[str, bytes]]


@dataclass
class CatalogHolder:
    encode_change: EncodeSegmentChange
    clock: Callable[[], float]
    catalog: Catalog = field(default_factory=Catalog)
    # the seg_catalog version `catalog` was loaded at, and when it was last compared
    version: int = -1
    checked_at: float = float("-inf")

    def stale(self, max_age: float) -> bool:
        """Whether the version was last compared more than `max_age` seconds ago."""
        return time.monotonic() - self.checked_at >= max_age

    async def current_in(
        self, store: SegmentationUnitOfWork, *, hold: bool = True, lock: Collection[str] = ()
    ) -> Catalog:
        """The catalogue current in this unit of work. With `hold`, definition changes wait
        for the unit of work to end, so nothing it evaluates is missed by a build that
        starts after such a change (the build reads what the unit of work committed).
        `lock`: customers then locked exclusively (`lock_customers`), with the version read
        where the store can (one round trip): the catalogue before the customers, the order
        every unit of work takes."""
        checked = time.monotonic()
        if lock:
            version = await store.catalog_version_and_lock(lock, hold=hold)
        else:
            version = await store.catalog_version(hold=hold)
        if version != self.version:
            # the version first, then the segments: a change committed in between is
            # reloaded again next time, never missed
            catalog = Catalog.load(await store.segments())
            if version >= self.version:
                self.catalog, self.version = catalog, version
                log.info(
                    "segment catalogue at version %d: %d segments", version, len(catalog.entries)
                )
            else:
                return catalog
        self.checked_at = max(self.checked_at, checked)
        return self.catalog

    async def open_change(self, store: SegmentationUnitOfWork) -> int:
        """Open a definition change: bump the version (one change at a time across
        processes) and bring the catalogue to the version before it, so the change is
        validated against every definition, including those made elsewhere."""
        version = await store.bump_catalog_version()
        if version - 1 != self.version:
            self.catalog = Catalog.load(await store.segments())
            self.version = version - 1
        return version

    def committed(self, version: int, put: Entry | None = None, remove: str = "") -> None:
        """Apply a committed definition change to the catalogue (now at `version`)."""
        if put is not None:
            self.catalog.put(put)
        if remove:
            self.catalog.remove(remove)
        if self.version == version - 1:
            self.version = version

    async def announce(
        self,
        store: SegmentationUnitOfWork,
        segment_id: str,
        change: str,
        record: SegmentRecord | None,
    ) -> None:
        """Publish a definition change (with the unit of work that makes it)."""
        topic, payload = self.encode_change(segment_id, change, record, self.clock())
        await store.write_outbox([(topic, payload, "")])

    async def mark_ready(self, store: SegmentationUnitOfWork, segment_id: str) -> None:
        """A build finished (BUILDING -> READY): every process's catalogue learns it."""
        await self.open_change(store)
        await self.announce(store, segment_id, "READY", await store.segment(segment_id))

    def segment_kind(self, segment_id: str) -> str:
        entry = self.catalog.entries.get(segment_id)
        return entry.record.kind if entry else "BEHAVIORAL"

    def exists(self, segment_id: str) -> bool:
        return segment_id in self.catalog.entries
