"""Import the whole UCI Online Retail file and check it against an independent reading of it.

The expected figures are computed here with nothing but csv and Decimal, so a mistake in the
importer's grouping, money or customer handling shows up as a mismatch.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import os
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from backcrm.profile.v1 import profile_service_pb2 as pb

from libs.config import Settings
from libs.db.migrate import upgrade
from libs.runtime import Resources
from services.profile.app import ProfileApp
from services.profile.handlers import CustomerLookup, get_profiles
from services.registry import SERVICES
from services.tools.importer import import_orders

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(600)]

DATA = Path(__file__).resolve().parents[2].parent / "shared/data/online-retail/online_retail.csv.gz"


@dataclass
class Expected:
    rows: int = 0
    guest_rows: int = 0
    invoices_all: set[str] = field(default_factory=set)
    invoices: set[str] = field(default_factory=set)  # with a customer
    quantity: int = 0
    value: Decimal = Decimal(0)  # every row
    revenue: Decimal = Decimal(0)  # rows with a customer
    orders: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    customer_revenue: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))


def read_independently(path: Path) -> Expected:
    out = Expected()
    with gzip.open(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            out.rows += 1
            amount = int(row["Quantity"]) * Decimal(row["UnitPrice"])
            out.quantity += int(row["Quantity"])
            out.value += amount
            out.invoices_all.add(row["InvoiceNo"])
            if not row["CustomerID"]:
                out.guest_rows += 1
                continue
            customer = row["CustomerID"].removesuffix(".0")
            out.invoices.add(row["InvoiceNo"])
            out.revenue += amount
            out.customer_revenue[customer] += amount
            if not row["InvoiceNo"].startswith("C"):
                out.orders[customer].add(row["InvoiceNo"])
            else:
                out.orders.setdefault(customer, set())
    return out


def micros(amount: Decimal) -> int:
    value = amount * 1_000_000
    assert value == value.to_integral_value()
    return int(value)


@pytest.fixture
async def resources(tmp_path: Path) -> AsyncIterator[Resources]:
    url = f"sqlite+aiosqlite:///{tmp_path}/t.db"
    await asyncio.to_thread(upgrade, url, SERVICES)
    settings = Settings(
        database_url=url, redis_url="", var_dir=tmp_path, auth_tokens_file=tmp_path / "tokens.json"
    )
    res = Resources.open(settings)
    yield res
    await res.close()


async def test_import_the_whole_online_retail_file(resources: Resources) -> None:
    if not DATA.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{DATA} is missing")
        pytest.skip(f"{DATA} is not here")
    expected = await asyncio.to_thread(read_independently, DATA)
    # The README's figures of the file
    assert expected.rows == 541_909
    assert expected.guest_rows == 135_080
    assert len(expected.invoices_all) == 25_900
    assert len(expected.orders) == 4_372
    assert expected.quantity == 5_176_450
    assert expected.value == Decimal("9747747.934")  # README: 9,747,747.93

    summary = await import_orders(resources, DATA, progress=False)

    cancellations = {i for i in expected.invoices if i.startswith("C")}
    assert summary.rows == expected.rows
    assert summary.guest_rows_skipped == expected.guest_rows
    assert summary.invoices == len(expected.invoices)
    assert summary.customers == len(expected.orders)
    assert summary.revenue_micros == micros(expected.revenue)
    assert summary.returns == len(cancellations)  # the file has no mixed invoices
    assert summary.mixed_invoices == summary.zero_quantity_lines == 0
    assert summary.invalid_rows == summary.conflicting_rows == summary.rejected == 0
    assert summary.events == summary.events_accepted == len(expected.invoices)
    assert summary.duplicates == 0

    deps = ProfileApp.build(resources).deps
    busiest = max(expected.orders, key=lambda c: len(expected.orders[c]))
    spot = ["17850", "12346", busiest]  # 12346 bought 74,215 of one thing and cancelled it all
    rendered = await get_profiles(deps, [CustomerLookup(identity=("EXTERNAL", c)) for c in spot])
    for customer, blob in zip(spot, rendered, strict=True):
        assert blob is not None, customer
        profile = pb.GetProfileResponse.FromString(blob).profile
        purchases = profile.purchase_summary
        assert purchases.orders == len(expected.orders[customer]), customer
        assert purchases.revenue.units_micros == micros(expected.customer_revenue[customer])
        assert purchases.revenue.currency == "GBP"
