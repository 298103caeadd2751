"""The coalescer's order of fetches: a read asked while nothing is out goes out at once; the
reads asked while a fetch is out go out together in the next one, never joining the one out
(read-after-write). Redis itself is in tests/integration/test_cache.py."""

from __future__ import annotations

import asyncio

from libs.cache.coalesce import Coalescer


class _Fetches:
    """A fetch that records each batch and answers when released."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()

    async def __call__(self, keys: list[str]) -> list[str]:
        self.batches.append(list(keys))
        await self.release.wait()
        return [k.upper() for k in keys]


async def test_a_lone_read_goes_out_at_once_and_later_ones_together_next() -> None:
    fetches = _Fetches()
    reads = Coalescer[str](fetches, lambda exc: exc)

    first = asyncio.ensure_future(reads.get_many(["a"]))
    await asyncio.sleep(0)
    assert fetches.batches == [["a"]]  # nothing was out: sent at once
    later = [asyncio.ensure_future(reads.get_many([k, "x"])) for k in "bcd"]
    await asyncio.sleep(0)
    assert fetches.batches == [["a"]]  # asked while one is out: they wait for the next
    fetches.release.set()

    assert await first == ["A"]
    assert [await r for r in later] == [["B", "X"], ["C", "X"], ["D", "X"]]
    assert fetches.batches == [["a"], ["b", "x", "c", "x", "d", "x"]]
    assert await reads.get_many(["e"]) == ["E"]  # idle again: at once
    assert fetches.batches[-1] == ["e"]


async def test_a_failed_fetch_fails_its_readers_each_with_an_error_of_their_own() -> None:
    async def failing(keys: list[str]) -> list[str]:
        await asyncio.sleep(0)
        raise ConnectionError("down")

    reads = Coalescer[str](failing, lambda exc: RuntimeError(f"wrapped {exc}"))
    outcomes = await asyncio.gather(
        *(reads.get_many([f"k{i}"]) for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(o, RuntimeError) for o in outcomes), outcomes
    assert len({id(o) for o in outcomes}) == 5
