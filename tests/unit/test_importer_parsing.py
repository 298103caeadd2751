"""The importer's pure parts: categories, money, customer ids."""

from __future__ import annotations

import pytest

from services.tools.importer import _parse_customer, _parse_micros, category_of


@pytest.mark.parametrize(
    ("description", "category"),
    [
        ("WHITE HANGING HEART T-LIGHT HOLDER", "lighting"),  # lighting ranks above decor
        ("CREAM CUPID HEARTS COAT HANGER", "decor"),  # "cup" is not "CUPID"
        ("JUMBO BAG RED RETROSPOT", "bags"),
        ("LUNCH BAG CHRISTMAS", "christmas"),
        ("PACK OF 72 RETROSPOT CAKE CASES", "other"),
        ("SET OF 6 TEA TIME BAKING CUPS", "kitchen"),
        ("GIFT WRAP VINTAGE", "stationery"),
        ("", "other"),
    ],
)
def test_category_of(description: str, category: str) -> None:
    assert category_of(description) == category


def test_money_is_exact_micros() -> None:
    assert _parse_micros("2.55") == 2_550_000
    assert _parse_micros("0.001") == 1_000
    assert _parse_micros("-11062.06") == -11_062_060_000
    with pytest.raises(ValueError, match="6 decimals"):
        _parse_micros("0.0000001")


def test_customer_ids() -> None:
    assert _parse_customer("17850.0") == "17850"
    assert _parse_customer("17850") == "17850"
