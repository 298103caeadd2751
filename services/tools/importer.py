"""Bulk import of orders in the UCI Online Retail layout (`backcrm import orders FILE`).

The file has one row per invoice line:
`InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country`,
plain or gzip-compressed (recognised by its magic bytes, whatever the file is called).

How rows become events:

- Rows are grouped by InvoiceNo (the rows of an invoice need not be contiguous). Each invoice
  of a known customer becomes one PURCHASE event with the id `import:orders:<InvoiceNo>`, so a
  second import of the same file adds nothing (TrackEvents drops known event ids).
- CustomerID `17850.0` is the EXTERNAL identity `17850`. Rows without one are guest checkouts:
  counted and skipped, since there is nobody to attach them to.
- Money is integer micros parsed with `Decimal` (`2.55` -> 2_550_000), currency GBP. An order's
  total is the sum of quantity x unit price of its lines.
- Cancellations (InvoiceNo `C...`, negative quantities) are returns: the domain treats an
  order whose lines are all negative as a return, which subtracts from revenue.
- Lines of quantity zero are dropped (counted). An invoice mixing bought and returned lines is
  split (counted): its positive lines are the purchase `import:orders:<InvoiceNo>`, its
  negative lines the return `import:orders:<InvoiceNo>:return` (same order id, and the
  property `original_order_id` naming it, as a shop names the order a return belongs to).
- A row naming another customer than the first row of its invoice, or whose quantity, price
  or date does not parse, is skipped and counted.
- The event happens at the invoice date (the earliest of its rows; the file's timestamps are
  naive and read as UTC), on channel WEB, with the row's Country in its properties.
- Categories: the file has none, so a coarse one is derived from the Description by the first
  matching keyword of `CATEGORY_KEYWORDS`, in the order of the table below; a keyword matches
  a word of the description, case-insensitively, as itself or its plural ("bag" matches
  "BAGS", but "cup" does not match "CUPID"):

      christmas                        -> christmas
      bag                              -> bags
      candle, light, lantern, t-light  -> lighting
      card, wrap, paper, notebook      -> stationery
      mug, cup, plate, bowl, teapot    -> kitchen
      heart                            -> decor
      anything else                    -> other

Events go through `handlers.track_events` in batches, like any other client's. Outbox rows are
published (drained) at the end when the bus is shared (Redis): the consumers of other
processes see them. With the embedded in-process bus nobody is listening in this process, so
the rows stay in the outbox for the server's relay to publish when it starts.
"""

from __future__ import annotations

import csv
import gzip
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from libs.runtime import Resources
from services.bonus.consumers import ORIGINAL_ORDER_PROPERTY
from services.profile.app import ProfileApp
from services.profile.domain import CartLine, EventIn, OrderIn
from services.profile.handlers import ProfileDeps, track_events

__all__ = ["CATEGORY_KEYWORDS", "ImportSummary", "category_of", "import_orders"]

log = logging.getLogger(__name__)

COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)
CURRENCY = "GBP"
CHANNEL = "WEB"
EVENT_PREFIX = "import:orders:"
GZIP_MAGIC = b"\x1f\x8b"
MICROS = Decimal(1_000_000)

CATEGORY_KEYWORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("christmas",), "christmas"),
    (("bag",), "bags"),
    (("candle", "light", "lantern", "t-light"), "lighting"),
    (("card", "wrap", "paper", "notebook"), "stationery"),
    (("mug", "cup", "plate", "bowl", "teapot"), "kitchen"),
    (("heart",), "decor"),
)
OTHER = "other"


# word form -> (rank of its table row, category)
_FORMS: dict[str, tuple[int, str]] = {
    form: (rank, category)
    for rank, (keywords, category) in reversed(list(enumerate(CATEGORY_KEYWORDS)))
    for keyword in keywords
    for form in (keyword, f"{keyword}s", f"{keyword}es")
}
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")


def category_of(description: str) -> str:
    """The coarse category of a product description (see the module docstring)."""
    found = [_FORMS[word] for word in _WORD.findall(description.lower()) if word in _FORMS]
    return min(found)[1] if found else OTHER


@dataclass
class ImportSummary:
    """What the file held and what storage did with it.

    `rows` .. `revenue_micros` describe the file (revenue is net of returns, over the rows of
    known customers); `events_accepted` and `duplicates` are what TrackEvents reported, so a
    second import of the same file shows 0 accepted and every event a duplicate.
    """

    path: str = ""
    rows: int = 0
    guest_rows_skipped: int = 0
    invalid_rows: int = 0
    conflicting_rows: int = 0
    zero_quantity_lines: int = 0
    invoices: int = 0
    mixed_invoices: int = 0
    returns: int = 0
    customers: int = 0
    events: int = 0
    events_accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    revenue_micros: int = 0
    seconds: float = 0.0
    outbox_published: int = 0
    outbox_kept: bool = False

    def report(self) -> str:
        pounds = Decimal(self.revenue_micros) / MICROS
        lines = [
            f"imported {self.path}",
            f"  rows read            {self.rows:>12,}",
            f"  guest rows skipped   {self.guest_rows_skipped:>12,}",
        ]
        for label, value in (
            ("invalid rows skipped", self.invalid_rows),  # do not parse
            ("conflicting rows", self.conflicting_rows),  # another customer's invoice number
            ("zero-quantity lines", self.zero_quantity_lines),
        ):
            if value:
                lines.append(f"  {label:<20} {value:>12,}")
        lines += [
            f"  invoices             {self.invoices:>12,}"
            + (
                f"  ({self.mixed_invoices:,} split into purchase + return)"
                if self.mixed_invoices
                else ""
            ),
            f"  returns              {self.returns:>12,}",
            f"  customers            {self.customers:>12,}",
            f"  events               {self.events:>12,}"
            f"  ({self.events_accepted:,} new, {self.duplicates:,} already imported"
            + (f", {self.rejected:,} rejected" if self.rejected else "")
            + ")",
            f"  net revenue          {CURRENCY} {pounds:>,.2f}",
            f"  took                 {self.seconds:>11.1f}s",
        ]
        if self.outbox_kept:
            lines.append("  bus events stay in the outbox until the server's relay publishes them")
        elif self.outbox_published:
            lines.append(f"  bus events published {self.outbox_published:>12,}")
        return "\n".join(lines)


@dataclass
class _Invoice:
    customer: str
    at: float
    country: str
    # (sku, category, quantity, unit price micros)
    lines: list[tuple[str, str, int, int]] = field(default_factory=list)


def _open_text(path: Path) -> IO[str]:
    """The file as text, gunzipped on the fly when it starts with the gzip magic bytes."""
    with path.open("rb") as raw:
        gzipped = raw.read(2) == GZIP_MAGIC
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace", newline="")
    return path.open(encoding="utf-8-sig", errors="replace", newline="")


def _parse_time(text: str) -> float:
    """`2010-12-01 08:26:00` (or the original `12/1/2010 8:26`), naive, as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = datetime.strptime(text, "%m/%d/%Y %H:%M")
    return moment.replace(tzinfo=UTC).timestamp() if moment.tzinfo is None else moment.timestamp()


def _parse_micros(text: str) -> int:
    micros = Decimal(text) * MICROS
    if micros != micros.to_integral_value():
        raise ValueError(f"price {text!r} has more than 6 decimals")
    return int(micros)


def _parse_customer(text: str) -> str:
    """`17850.0` -> `17850`; other values are kept as written."""
    value = Decimal(text)
    return str(int(value)) if value == value.to_integral_value() else text


def _read(path: Path, summary: ImportSummary, progress: bool) -> dict[str, _Invoice]:
    """Every invoice of a known customer, in the file's order."""
    invoices: dict[str, _Invoice] = {}
    # Few distinct values repeat many times: parse each once.
    prices: dict[str, int] = {}
    times: dict[str, float] = {}
    customers: dict[str, str] = {}
    categories: dict[str, str] = {}
    with (
        _open_text(path) as stream,
        tqdm(
            desc="reading", unit=" rows", unit_scale=True, disable=not progress, leave=False
        ) as bar,
    ):
        reader = csv.reader(stream)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file")
        header = [name.strip() for name in header]
        missing = [name for name in COLUMNS if name not in header]
        if missing:
            raise ValueError(f"{path}: not the Online Retail layout, missing {missing}")
        i_inv, i_sku, i_desc, i_qty, i_date, i_price, i_cust, i_country = (
            header.index(name) for name in COLUMNS
        )
        width = max(i_inv, i_sku, i_desc, i_qty, i_date, i_price, i_cust, i_country) + 1
        rows = guests = invalid = conflicting = 0
        for row in reader:
            if not row:
                continue
            rows += 1
            if rows % 20_000 == 0:
                bar.update(20_000)
            if len(row) < width:
                invalid += 1
                continue
            raw_customer = row[i_cust].strip()
            if not raw_customer:
                guests += 1
                continue
            try:
                customer = customers.get(raw_customer)
                if customer is None:
                    customer = customers[raw_customer] = _parse_customer(raw_customer)
                price_text = row[i_price]
                price = prices.get(price_text)
                if price is None:
                    price = prices[price_text] = _parse_micros(price_text.strip())
                date_text = row[i_date]
                at = times.get(date_text)
                if at is None:
                    at = times[date_text] = _parse_time(date_text.strip())
                quantity = int(row[i_qty])
            except (ValueError, InvalidOperation):
                invalid += 1
                if invalid <= 5:
                    log.warning("%s: skipping row %d, it does not parse: %r", path, rows + 1, row)
                continue
            number = row[i_inv].strip()
            invoice = invoices.get(number)
            if invoice is None:
                invoice = invoices[number] = _Invoice(customer, at, row[i_country].strip())
            elif invoice.customer != customer:
                conflicting += 1
                continue
            elif at < invoice.at:
                invoice.at = at
            description = row[i_desc]
            category = categories.get(description)
            if category is None:
                category = categories[description] = category_of(description)
            invoice.lines.append((row[i_sku].strip(), category, quantity, price))
        bar.update(rows % 20_000)
    summary.rows, summary.guest_rows_skipped = rows, guests
    summary.invalid_rows, summary.conflicting_rows = invalid, conflicting
    return invoices


def _order_event(
    event_id: str,
    number: str,
    invoice: _Invoice,
    lines: list[tuple[str, str, int, int]],
    returns_of: str = "",
) -> EventIn:
    cart = tuple(CartLine(sku, cat, qty, price, CURRENCY) for sku, cat, qty, price in lines)
    order = OrderIn(
        order_id=number,
        lines=cart,
        total_micros=sum(qty * price for _, _, qty, price in lines),
        currency=CURRENCY,
        placed_at=invoice.at,
    )
    return EventIn(
        event_id=event_id,
        type="PURCHASE",
        channel=CHANNEL,
        occurred_at=invoice.at,
        identity=("EXTERNAL", invoice.customer),
        properties=_properties(invoice.country, returns_of),
        order=order,
    )


def _properties(country: str, returns_of: str) -> dict[str, Any]:
    properties: dict[str, Any] = {"country": country} if country else {}
    if returns_of:
        # Names the order the returned lines belong to, as a shop's return would: a consumer
        # that takes the return before the purchase (several consumers, any order) then
        # knows to wait for that order's accrual instead of taking from older ones.
        properties[ORIGINAL_ORDER_PROPERTY] = returns_of
    return properties


def _events(invoices: dict[str, _Invoice], summary: ImportSummary) -> Iterator[EventIn]:
    for number, invoice in invoices.items():
        bought = [line for line in invoice.lines if line[2] > 0]
        returned = [line for line in invoice.lines if line[2] < 0]
        summary.zero_quantity_lines += len(invoice.lines) - len(bought) - len(returned)
        event_id = f"{EVENT_PREFIX}{number}"
        if bought and returned:
            summary.mixed_invoices += 1
            yield _order_event(event_id, number, invoice, bought)
            yield _order_event(f"{event_id}:return", number, invoice, returned, returns_of=number)
        elif bought or returned:
            yield _order_event(event_id, number, invoice, bought or returned)


async def import_orders(
    resources: Resources,
    path: Path,
    *,
    progress: bool = True,
    batch_size: int = 1000,
    drain_outbox: bool | None = None,
) -> ImportSummary:
    """Import an Online Retail CSV (plain or gzip) as PURCHASE events; see the module docstring.

    `drain_outbox`: publish the outbox at the end; by default only when the bus is shared.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    started = time.perf_counter()
    summary = ImportSummary(path=str(path))
    invoices = _read(path, summary, progress)
    summary.invoices = len(invoices)
    summary.customers = len({invoice.customer for invoice in invoices.values()})
    app = ProfileApp.build(resources)
    deps: ProfileDeps = app.deps
    total_lines = sum(len(invoice.lines) for invoice in invoices.values())
    with tqdm(
        total=total_lines, desc="importing", unit=" rows", unit_scale=True, disable=not progress
    ) as bar:
        batch: list[EventIn] = []
        for event in _events(invoices, summary):
            assert event.order is not None
            summary.events += 1
            summary.revenue_micros += event.order.total_micros
            if event.order.is_return:
                summary.returns += 1
            batch.append(event)
            if len(batch) >= batch_size:
                await _send(deps, batch, summary)
                bar.update(sum(len(e.order.lines) for e in batch if e.order))
                batch = []
        if batch:
            await _send(deps, batch, summary)
            bar.update(sum(len(e.order.lines) for e in batch if e.order))
    if drain_outbox is None:
        drain_outbox = not resources.settings.embedded_bus
    if drain_outbox:
        while published := await app.relay.drain_once():
            summary.outbox_published += published
    else:
        summary.outbox_kept = summary.events_accepted > 0
    summary.seconds = time.perf_counter() - started
    return summary


async def _send(deps: ProfileDeps, batch: list[EventIn], summary: ImportSummary) -> None:
    result = await track_events(deps, batch)
    summary.events_accepted += result.accepted
    summary.duplicates += result.duplicates
    summary.rejected += len(result.rejected)
    for rejection in result.rejected[:5]:
        log.warning("rejected %s: %s %s", rejection.event_id, rejection.field, rejection.reason)
