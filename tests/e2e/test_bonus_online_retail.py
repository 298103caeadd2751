"""Replay a sample of the UCI Online Retail file through the profile service and check every
sampled customer's loyalty account against an independent computation from the CSV rows.

The program: 1 point per GBP, nothing pending, nothing expiring, no welcome points, tiers by
points earned over 365 days. The rows go in as the importer sends them (`backcrm import
orders`: one PURCHASE event per invoice, through the profile service's TrackEvents handler);
bonus gets them as profile.changed events, like any purchase. The expected figures are
computed here with csv and Decimal from the rules in docs/bonus.md ("Purchases from profile
events"), not with the service's code:

- an invoice with a bought line earns floor(its value) points;
- an invoice whose lines are all returned (the file's "C..." cancellations, which name no
  original order) is worth floor(its value) points, taken back from the customer's earlier
  invoices newest first, each at most what is left of it; what none covers is not taken;
- invoices count in the order the file first mentions them (the order they are sent in).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from backcrm.bonus.v1 import bonus_service_pb2 as pb
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as ppb

from services.tools.importer import import_orders
from tests.e2e.conftest import Suite
from tests.e2e.helpers import event

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

DATA = Path(__file__).resolve().parents[2].parent / "shared/data/online-retail/online_retail.csv.gz"
TIERS = (("silver", 200), ("gold", 1000))
MAX_ROWS = 40  # customers with few rows keep the replay short


@dataclass
class Customer:
    rows: list[list[str]] = field(default_factory=list)
    invoices: dict[str, list[tuple[int, Decimal]]] = field(default_factory=dict)


@dataclass
class Sample:
    header: list[str]
    customers: dict[str, Customer]


def read_sample() -> Sample:
    """30 customers: 12346 (bought 74,215 of one thing and cancelled it all), 5 whose
    cancellations exceed what they earned before them, 10 more with cancellations, 14 without."""
    customers: dict[str, Customer] = defaultdict(Customer)
    with gzip.open(DATA, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        col = {name: i for i, name in enumerate(header)}
        for row in reader:
            customer_id = row[col["CustomerID"]].removesuffix(".0")
            if not customer_id:
                continue
            customer = customers[customer_id]
            customer.rows.append(row)
            line = (int(row[col["Quantity"]]), Decimal(row[col["UnitPrice"]]))
            customer.invoices.setdefault(row[col["InvoiceNo"]], []).append(line)
    small = sorted(c for c, v in customers.items() if len(v.rows) <= MAX_ROWS and c != "12346")
    cancelling = [c for c in small if any(n.startswith("C") for n in customers[c].invoices)]
    capped = [c for c in cancelling if expected_points(customers[c]).capped][:5]
    others = [c for c in cancelling if c not in capped][:10]
    plain = [c for c in small if c not in cancelling][:14]
    chosen = ["12346", *capped, *others, *plain]
    assert len(set(chosen)) == 30
    return Sample(header, {c: customers[c] for c in chosen})


@dataclass
class Expected:
    points: int  # balance = earned over the period = lifetime: nothing is spent or expires
    capped: bool  # a cancellation was worth more than was left to take back


def expected_points(customer: Customer) -> Expected:
    earned: list[int] = []  # what is left to take back of each invoice, oldest first
    capped = False
    for lines in customer.invoices.values():
        value = sum((q * price for q, price in lines), Decimal(0))
        if all(q < 0 for q, _ in lines):
            worth = int(-value // 1)
            capped |= worth > sum(earned)
            for i in reversed(range(len(earned))):
                taken = min(earned[i], worth)
                earned[i] -= taken
                worth -= taken
        else:
            earned.append(int(value // 1))
    return Expected(sum(earned), capped)


def tier_of(points: int) -> str:
    return ([name for name, threshold in TIERS if points >= threshold] or [""])[-1]


@pytest.fixture(scope="module")
def sample() -> Sample:
    if not DATA.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{DATA} is missing")
        pytest.skip(f"{DATA} is not here")
    return read_sample()


def external(customer_id: str) -> common_pb2.CustomerRef:
    return common_pb2.CustomerRef(
        identity=common_pb2.Identity(type=common_pb2.IDENTITY_TYPE_EXTERNAL, value=customer_id)
    )


async def test_replayed_purchases_and_cancellations_match_the_file(
    suite: Suite, sample: Sample, tmp_path: Path
) -> None:
    admin = suite.client()
    program = (
        await admin.bonus.CreateProgram(
            pb.CreateProgramRequest(
                program=pb.Program(
                    name="Online Retail",
                    currency="GBP",
                    points_per_unit=1.0,
                    tier_period_days=365,
                    tiers=[pb.Tier(name=n, threshold_points=t) for n, t in TIERS],
                )
            )
        )
    ).program
    # The customers join first (a purchase recorded before enrolment earns nothing).
    joined = [event(f"join-{c}-{program.program_id}", external(c)) for c in sample.customers]
    await admin.profile.TrackEvents(ppb.TrackEventsRequest(events=joined))
    for c in sample.customers:
        await admin.bonus.Enroll(
            pb.EnrollRequest(program_id=program.program_id, customer=external(c))
        )

    path = tmp_path / "sample.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(sample.header)
        for customer in sample.customers.values():
            writer.writerows(customer.rows)
    summary = await import_orders(suite.resources, path, progress=False)
    assert summary.events_accepted == sum(len(c.invoices) for c in sample.customers.values())
    await suite.settled(timeout=60)

    wrong: list[str] = []
    for customer_id, customer in sample.customers.items():
        expected = expected_points(customer)
        account = (
            await admin.bonus.GetAccount(
                pb.GetAccountRequest(program_id=program.program_id, customer=external(customer_id))
            )
        ).account
        got = (account.balance, account.tier_points, account.lifetime_points, account.tier)
        want = (expected.points,) * 3 + (tier_of(expected.points),)
        if got != want:
            wrong.append(f"{customer_id}: {got} != {want}")
    assert not wrong, wrong
    capped = [c for c, v in sample.customers.items() if expected_points(v).capped]
    assert len(capped) >= 5 and expected_points(sample.customers["12346"]).points == 0
