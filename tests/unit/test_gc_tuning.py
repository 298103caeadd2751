"""A serving process freezes what start-up allocated, so collections walk only what was
allocated since (libs/gc_tuning.py)."""

from __future__ import annotations

import gc

from libs.gc_tuning import tune_for_serving


def test_tuning_freezes_what_exists_and_leaves_later_objects_collectable() -> None:
    before: list[object] = []  # a container: the collector tracks it
    thresholds = gc.get_threshold()
    try:
        tune_for_serving()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == thresholds  # young pauses stay short
        assert not any(o is before for o in gc.get_objects())  # frozen: never walked again
        later: list[object] = []
        later.append(later)  # a cycle made after the freeze
        assert any(o is later for o in gc.get_objects())
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
