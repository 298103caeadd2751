"""The committed stubs in libs/gen are exactly what proto/ generates."""

from __future__ import annotations

from libs import protogen


def test_generated_stubs_are_fresh() -> None:
    assert protogen.main(["--check"]) == 0, "run `make proto` and commit libs/gen"
