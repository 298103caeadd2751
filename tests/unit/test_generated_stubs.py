"""The committed stubs in libs/gen are exactly what proto/ generates, for every registered
service's contract among them."""

from __future__ import annotations

from libs import protogen
from services.registry import contracts


def test_generated_stubs_are_fresh() -> None:
    assert protogen.main(["--check"]) == 0, "run `make proto` and commit libs/gen"


def test_every_registered_contract_is_generated_from_proto() -> None:
    # With the check above, every RPC a registered service serves is the contract's.
    for contract in contracts():
        source = protogen.PROTO_DIR / contract.file.name
        assert source.is_file(), f"{contract.full_name} is not generated from proto/"
        assert contract.methods, f"{contract.full_name} has no RPC"
