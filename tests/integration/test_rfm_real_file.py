"""RFM on the real Online Retail file, scored as of 2011-12-10, against an independent count.

The whole file is imported through the profile service; segmentation builds its projection
from the bus; RecomputeRfm scores it. The expected scores are computed here from the CSV with
nothing but the documented rule (nearest-rank quintiles, ties share a score).
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import math
import os
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from libs.config import Settings
from libs.db.migrate import upgrade
from libs.runtime import Peers, Resources
from services.profile.app import ProfileApp
from services.registry import SERVICES
from services.segmentation import handlers
from services.segmentation.app import SegmentationApp
from services.segmentation.conditions import Node, decode_condition
from services.segmentation.models import SegProfileRow
from services.segmentation.templates import TEMPLATES, template_condition
from services.tools.importer import import_orders
from tests.support import eventually

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(900)]

DATA = Path(__file__).resolve().parents[2].parent / "shared/data/online-retail/online_retail.csv.gz"
AS_OF = datetime(2011, 12, 10, tzinfo=UTC).timestamp()
DAY = 86_400


def expected_scores(path: Path) -> dict[str, tuple[int, int, int]]:
    invoice_time: dict[str, float] = {}
    invoice_customer: dict[str, str] = {}
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    with gzip.open(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if not row["CustomerID"]:
                continue
            customer = row["CustomerID"].removesuffix(".0")
            revenue[customer] += int(row["Quantity"]) * Decimal(row["UnitPrice"])
            invoice = row["InvoiceNo"]
            if invoice.startswith("C"):
                continue
            at = datetime.fromisoformat(row["InvoiceDate"]).replace(tzinfo=UTC).timestamp()
            invoice_time[invoice] = min(at, invoice_time.get(invoice, at))
            invoice_customer[invoice] = customer
    last: dict[str, float] = {}
    orders: dict[str, int] = defaultdict(int)
    for invoice, customer in invoice_customer.items():
        orders[customer] += 1
        last[customer] = max(last.get(customer, 0.0), invoice_time[invoice])
    customers = sorted(orders)
    recency = {c: math.floor((AS_OF - last[c]) / DAY) for c in customers}

    def cuts(values: list[float]) -> list[float]:
        ordered = sorted(values)
        return [ordered[math.ceil(p * len(ordered)) - 1] for p in (0.2, 0.4, 0.6, 0.8)]

    r_cuts = cuts([float(recency[c]) for c in customers])
    f_cuts = cuts([float(orders[c]) for c in customers])
    m_cuts = cuts([float(revenue[c]) for c in customers])
    return {
        c: (
            5 - sum(1 for x in r_cuts if x < recency[c]),
            1 + sum(1 for x in f_cuts if x < orders[c]),
            1 + sum(1 for x in m_cuts if x < float(revenue[c])),
        )
        for c in customers
    }


@pytest.fixture
async def resources(tmp_path: Path) -> AsyncIterator[Resources]:
    if not DATA.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{DATA} is missing")
        pytest.skip(f"{DATA} is missing")
    url = f"sqlite+aiosqlite:///{tmp_path}/t.db"
    await asyncio.to_thread(upgrade, url, SERVICES)
    res = Resources.open(
        Settings(database_url=url, redis_url="", var_dir=tmp_path, segment_reconcile_seconds=3600)
    )
    try:
        yield res
    finally:
        await res.close()


async def test_rfm_scores_of_the_real_file(resources: Resources) -> None:
    expected = expected_scores(DATA)
    profile = ProfileApp.build(resources)
    # No request here names a customer by identity, so no peer is ever called.
    peers = Peers(resources.settings, token="", own_address=lambda: "127.0.0.1:1")
    segmentation = SegmentationApp.build(resources, peers)
    await profile.start()
    await segmentation.start()
    try:
        templates = {
            key: await handlers.create_segment(
                segmentation.deps,
                key,
                "",
                template_condition(key).SerializeToString(),
                _template_node(key),
                key,
            )
            for key in TEMPLATES
        }
        await import_orders(resources, DATA, progress=False, drain_outbox=True)
        await _projection_complete(resources, expected_orders=_orders_total(DATA))
        result = await handlers.recompute_rfm(segmentation.deps, AS_OF)
        scored = {c: (r, f, m) for c, r, f, m in result.scores}
        ids = await _external_ids(resources)
        got = {ids[c]: s for c, s in scored.items()}
        assert len(got) == len(expected)
        for customer in ("17850", "12346", "14911", "18102", "12347", "13047", "15311", "16029"):
            if customer in expected:
                assert got[customer] == expected[customer], customer
        assert got == expected
        for key, record in templates.items():
            t = TEMPLATES[key]
            want = sum(
                1
                for r, f, _ in expected.values()
                if t.r[0] <= r <= t.r[1]
                and t.f[0] <= f <= t.f[1]
                and not any(
                    TEMPLATES[o].r[0] <= r <= TEMPLATES[o].r[1]
                    and TEMPLATES[o].f[0] <= f <= TEMPLATES[o].f[1]
                    for o in t.unless
                )
            )
            stored = await handlers.get_segment(segmentation.deps, record.segment_id)
            print(f"RFM segment {t.name}: {stored.member_count}")
            assert stored.member_count == want, key
    finally:
        await segmentation.stop()
        await profile.stop()


def _template_node(key: str) -> Node:
    return decode_condition(template_condition(key).SerializeToString())


def _orders_total(path: Path) -> int:
    invoices = set()
    with gzip.open(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["CustomerID"] and not row["InvoiceNo"].startswith("C"):
                invoices.add(row["InvoiceNo"])
    return len(invoices)


async def _projection_complete(resources: Resources, expected_orders: int) -> None:
    async def complete() -> bool:
        async with resources.sessions() as session:
            total = await session.scalar(select(func.sum(SegProfileRow.orders)))
        return bool(total == expected_orders)

    await eventually(
        complete, f"the projection to hold all {expected_orders} orders", timeout=600, interval=0.5
    )


async def _external_ids(resources: Resources) -> dict[str, str]:
    from services.profile.models import IdentityRow

    async with resources.sessions() as session:
        rows = await session.execute(
            select(IdentityRow.customer_id, IdentityRow.value).where(IdentityRow.type == "EXTERNAL")
        )
        return {c: v for c, v in rows}
