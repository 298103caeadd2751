"""Bonus requests in: every bad value is INVALID_ARGUMENT naming its field."""

from __future__ import annotations

import pytest
from backcrm.bonus.v1 import bonus_service_pb2 as pb
from backcrm.common.v1 import common_pb2
from google.protobuf import field_mask_pb2

from libs.errors import InvalidArgument
from services.bonus.domain import Movement
from services.bonus.render import transaction_to_proto
from services.bonus.translate import order_in, program_in, program_patch_in, signed_points_in

# Every type of row the ledger writes (handlers, purchases, merges, Ledger).
MOVEMENT_TYPES = {
    "WELCOME",
    "ACCRUAL",
    "ACTIVATION",
    "REDEMPTION",
    "REVERSAL",
    "EXPIRATION",
    "ADJUSTMENT",
    "TRANSFER_IN",
    "TRANSFER_OUT",
}


def program(**fields: object) -> pb.Program:
    base: dict[str, object] = {"name": "Club", "currency": "GBP", "points_per_unit": 1.0}
    return pb.Program(**{**base, **fields})


def violation(call: object) -> str:
    with pytest.raises(InvalidArgument) as info:
        call()  # type: ignore[operator]
    return info.value.violations[0][0]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "program.name"),
        ({"currency": "pounds"}, "program.currency"),
        ({"points_per_unit": float("nan")}, "program.points_per_unit"),
        ({"points_per_unit": 0.0}, "program.points_per_unit"),
        ({"points_per_unit": 1e300}, "program.points_per_unit"),
        ({"category_multipliers": {"x": float("inf")}}, "program.category_multipliers['x']"),
        ({"welcome_points": -1}, "program.welcome_points"),
        ({"expiry_days": -5}, "program.expiry_days"),
        ({"max_redeem_percent": 101.0}, "program.max_redeem_percent"),
        (
            {"point_value": common_pb2.Money(currency="GBP", units_micros=-1)},
            "program.point_value.units_micros",
        ),
        (
            {"tiers": [pb.Tier(name="a", threshold_points=10), pb.Tier(name="b")]},
            "program.tiers[1].threshold_points",
        ),
        (
            {"tiers": [pb.Tier(name="a"), pb.Tier(name="a", threshold_points=5)]},
            "program.tiers[1].name",
        ),
        (
            {"tiers": [pb.Tier(name="a", discount_percent=float("nan"))]},
            "program.tiers[0].discount_percent",
        ),
    ],
)
def test_a_bad_program_field_is_named(fields: dict[str, object], field: str) -> None:
    assert violation(lambda: program_in(program(**fields))) == field


def test_a_good_program_reads_whole() -> None:
    parsed, currency = program_in(
        program(
            tiers=[pb.Tier(name="silver", threshold_points=100, points_multiplier=1.5)],
            point_value=common_pb2.Money(currency="GBP", units_micros=10_000),
            expiry_days=365,
        )
    )
    assert (parsed.tiers[0].multiplier, parsed.point_value_micros, currency) == (1.5, 10_000, "GBP")


def test_an_update_names_its_mask_and_reads_only_the_masked_fields() -> None:
    mask = field_mask_pb2.FieldMask
    assert violation(lambda: program_patch_in(program(program_id="p"), mask())) == "update_mask"
    assert violation(
        lambda: program_patch_in(program(program_id="p"), mask(paths=["currency"]))
    ) == ("update_mask")
    program_id, patch = program_patch_in(
        program(program_id="p", name="", welcome_points=7), mask(paths=["welcome_points"])
    )
    assert (program_id, patch.fields) == ("p", {"welcome_points": 7})


def _order(**fields: object) -> common_pb2.Order:
    base: dict[str, object] = {
        "order_id": "o1",
        "lines": [
            common_pb2.CartLine(
                sku="s", quantity=1, unit_price=common_pb2.Money(currency="GBP", units_micros=1)
            )
        ],
        "total": common_pb2.Money(currency="GBP", units_micros=1),
    }
    return common_pb2.Order(**{**base, **fields})


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"order_id": ""}, "order.order_id"),
        ({"lines": []}, "order.lines"),
        ({"total": common_pb2.Money(units_micros=1)}, "order.total.currency"),
        (
            {
                "lines": [
                    common_pb2.CartLine(quantity=1, unit_price=common_pb2.Money(currency="EUR"))
                ]
            },
            "order.lines[0].unit_price.currency",
        ),
        (
            {
                "lines": [
                    common_pb2.CartLine(
                        quantity=1,
                        unit_price=common_pb2.Money(currency="GBP", units_micros=2**62),
                    )
                ]
            },
            "order.lines[0].unit_price.units_micros",
        ),
        ({"lines": [common_pb2.CartLine(quantity=0)]}, "order.lines[0].quantity"),
    ],
)
def test_a_bad_order_field_is_named(fields: dict[str, object], field: str) -> None:
    assert violation(lambda: order_in(_order(**fields), "k")) == field


@pytest.mark.parametrize("points", [0, 10**15 + 1, -(10**15) - 1, -(2**63)])
def test_adjusted_points_are_non_zero_and_bounded(points: int) -> None:
    assert violation(lambda: signed_points_in(points, "points")) == "points"
    assert signed_points_in(-5, "points") == -5


@pytest.mark.parametrize("kind", sorted(MOVEMENT_TYPES))
def test_every_movement_type_has_its_transaction_type(kind: str) -> None:
    movement = Movement("t", "p", "c", kind, 0, 1_700_000_000.0)
    assert transaction_to_proto(movement).type == pb.TransactionType.Value(
        f"TRANSACTION_TYPE_{kind}"
    )
