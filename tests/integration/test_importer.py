"""`backcrm import orders` on a small file written here: every rule of the importer, exactly."""

from __future__ import annotations

import asyncio
import csv
import gzip
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from libs.config import Settings
from libs.db.migrate import upgrade
from libs.runtime import Resources
from services.profile.app import ProfileApp
from services.profile.handlers import CustomerLookup, export_profile
from services.registry import SERVICES
from services.tools.importer import import_orders

pytestmark = pytest.mark.integration

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
ROWS = [
    # 17850: a purchase of two lines, 6 x 2.55 + 10 x 1.65 = 31.80 (a quoted comma too)
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,UK",
    '536365,85099B,"JUMBO BAG, RED RETROSPOT",10,2010-12-01 08:26:00,1.65,17850.0,UK',
    # a guest checkout: skipped
    "536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28:00,1.85,,UK",
    # 13047: three lines, one of them further down the file and a minute earlier: 28.68
    "536367,22086,PAPER CHAIN KIT 50'S CHRISTMAS,12,2010-12-01 08:34:00,0.85,13047.0,France",
    "536367,37370,RETRO COFFEE MUGS ASSORTED,4,2010-12-01 08:34:00,2.10,13047.0,France",
    # 17850 cancels two holders: a return of 5.10
    "C536368,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-2,2010-12-02 09:00:00,2.55,17850.0,UK",
    # 13047 again: a mixed invoice (15.00 bought, 3.00 returned) with a zero-quantity line
    "536369,21730,GLASS STAR FROSTED T-LIGHT HOLDER,5,2010-12-03 10:00:00,3.00,13047.0,France",
    "536369,21731,RED TOADSTOOL LED NIGHT LIGHT,-1,2010-12-03 10:00:00,3.00,13047.0,France",
    "536369,22960,JAM MAKING SET WITH JARS,0,2010-12-03 10:00:00,1.00,13047.0,France",
    "536367,21080,SET/20 RED RETROSPOT PAPER NAPKINS,24,2010-12-01 08:33:00,0.42,13047.0,France",
    # 12583: a price with three decimals, 3 x 0.125 = 0.375
    "536370,POST,POSTAGE,3,2010-12-04 11:00:00,0.125,12583.0,Germany",
]
M = 1_000_000


def write_file(path: Path, compressed: bool) -> Path:
    text = "\r\n".join([HEADER, *ROWS]) + "\r\n"
    if compressed:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


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


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# Named .csv either way: gzip is recognised by its magic bytes, not the extension.
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
async def test_import_small_file(resources: Resources, tmp_path: Path, compressed: bool) -> None:
    path = write_file(tmp_path / "orders.csv", compressed)
    summary = await import_orders(resources, path, progress=False, batch_size=2)

    assert summary.rows == 11
    assert summary.guest_rows_skipped == 1
    assert summary.invalid_rows == summary.conflicting_rows == 0
    assert summary.zero_quantity_lines == 1
    assert summary.invoices == 5
    assert summary.mixed_invoices == 1
    assert summary.events == 6
    assert summary.returns == 2
    assert summary.customers == 3
    assert summary.events_accepted == 6
    assert summary.duplicates == 0
    assert summary.rejected == 0
    net = 31_800_000 + 28_680_000 - 5_100_000 + 15_000_000 - 3_000_000 + 375_000
    assert summary.revenue_micros == net
    assert summary.outbox_kept  # embedded bus: left for the server's relay
    report = summary.report()
    assert "GBP 67.76" in report
    assert "5 " in report and "1 split into purchase + return" in report

    deps = ProfileApp.build(resources).deps
    a = await export_profile(deps, CustomerLookup(identity=("EXTERNAL", "17850")))
    assert (a.customer.orders, a.customer.revenue_micros) == (1, 26_700_000)
    assert a.customer.data["returns"] == 1
    assert a.customer.data["currency"] == "GBP"
    assert a.events[0].event.properties == {"country": "UK"}
    assert {p.event_id for p in a.purchases} == {"import:orders:536365", "import:orders:C536368"}
    bought = next(p for p in a.purchases if p.order_id == "536365")
    assert bought.lines == [
        ["85123A", "lighting", 6, 2_550_000, "GBP"],
        ["85099B", "bags", 10, 1_650_000, "GBP"],
    ]
    assert bought.placed_at == utc("2010-12-01 08:26:00")
    assert bought.channel == "WEB"
    assert set(a.customer.data["interests"]) == {"lighting", "bags"}

    b = await export_profile(deps, CustomerLookup(identity=("EXTERNAL", "13047")))
    assert (b.customer.orders, b.customer.revenue_micros) == (2, 40_680_000)
    assert b.customer.data["returns"] == 1
    by_id = {p.event_id: p for p in b.purchases}
    assert set(by_id) == {
        "import:orders:536367",
        "import:orders:536369",
        "import:orders:536369:return",
    }
    napkins = by_id["import:orders:536367"]
    assert napkins.placed_at == utc("2010-12-01 08:33:00")  # the invoice's earliest row
    assert [line[0] for line in napkins.lines] == ["22086", "37370", "21080"]
    assert [line[1] for line in napkins.lines] == ["christmas", "kitchen", "stationery"]
    assert napkins.total_micros == 28_680_000
    assert by_id["import:orders:536369"].lines == [["21730", "lighting", 5, 3_000_000, "GBP"]]
    assert by_id["import:orders:536369:return"].is_return
    assert by_id["import:orders:536369:return"].total_micros == -3_000_000
    assert by_id["import:orders:536369:return"].order_id == "536369"
    assert b.events[0].event.properties == {"country": "France"}
    # the mixed invoice's return names its order, so bonus can wait for the purchase's
    # accrual when it takes the return first (tests/integration/test_bonus_races.py)
    events = {e.event.event_id: e.event for e in b.events}
    assert events["import:orders:536369:return"].properties == {
        "country": "France",
        "original_order_id": "536369",
    }
    assert events["import:orders:536369"].properties == {"country": "France"}

    c = await export_profile(deps, CustomerLookup(identity=("EXTERNAL", "12583")))
    assert (c.customer.orders, c.customer.revenue_micros) == (1, 375_000)

    again = await import_orders(resources, path, progress=False)
    assert again.events_accepted == 0
    assert again.duplicates == again.events == summary.invoices + summary.mixed_invoices
    assert not again.outbox_kept
    a2 = await export_profile(deps, CustomerLookup(identity=("EXTERNAL", "17850")))
    assert (a2.customer.orders, a2.customer.revenue_micros) == (1, 26_700_000)


async def test_import_drains_outbox_when_asked(resources: Resources, tmp_path: Path) -> None:
    path = write_file(tmp_path / "orders.csv.gz", compressed=True)
    summary = await import_orders(resources, path, progress=False, drain_outbox=True)
    # one ProfileChanged (carrying its events) per customer and batch
    assert summary.outbox_published == summary.customers
    assert not summary.outbox_kept
    assert await ProfileApp.build(resources).relay.drain_once() == 0


async def test_import_rejects_another_layout(resources: Resources, tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([["order", "amount"], ["1", "2.00"]])
    with pytest.raises(ValueError, match="not the Online Retail layout"):
        await import_orders(resources, path, progress=False)


async def test_unparseable_rows_are_counted(resources: Resources, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER
        + "\n536365,85123A,HOLDER,six,2010-12-01 08:26:00,2.55,17850.0,United Kingdom"
        + "\n536365,85123A,HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom"
        + "\n536365,85099B,BAG,1,2010-12-01 08:26:00,1.00,13047.0,United Kingdom\n"
    )
    summary = await import_orders(resources, path, progress=False)
    assert (summary.rows, summary.invalid_rows, summary.conflicting_rows) == (3, 1, 1)
    assert (summary.events_accepted, summary.revenue_micros) == (1, 15_300_000)
