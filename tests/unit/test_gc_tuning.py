"""A serving process freezes what start-up allocated, so full collections walk only what was
allocated since (libs/gc_tuning.py)."""

from __future__ import annotations

import gc

from libs.gc_tuning import settle_heap


def test_settle_heap_freezes_what_exists_and_leaves_later_objects_collectable() -> None:
    before: list[object] = []  # a container: the collector tracks it
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert not any(o is before for o in gc.get_objects())  # frozen: never walked again
        later: list[object] = []
        later.append(later)  # a cycle made after the freeze
        assert any(o is later for o in gc.get_objects())
    finally:
        gc.unfreeze()
