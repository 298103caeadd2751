"""Purchases and returns that reach bonus as profile events (`profile.changed`).

A PURCHASE event accrues in every program the customer was enrolled in when the profile
service recorded the purchase (`ProfileChanged.changed_at` at or after the account's
`enrolled_at`; enrolment stays the customer's choice: a purchase never opens an account, and
a purchase recorded before the customer joined does not earn, however late its event
arrives; a purchase of a customer merged meanwhile counts for the customer it lives on as),
under the idempotency key
`event:<event_id>` and the event's order id, through the same `accrue` as the RPC: a
redelivered event finds its movement and moves nothing, and an order that was already accrued
(an explicit `Accrue` of it, concurrent or earlier) is left as it is.

An order whose lines all have negative quantities is a return (the Online Retail file's `C...`
invoices). Its lines are worth `order_value` of the returned units (price x category
multiplier), and it takes back, in one unit of work under the key `event:<event_id>`:

- from the *original* accrual — the order named by the event's property `original_order_id`,
  or else the order with the return's own order id, when the customer has an accrual of it in
  the program — its share of that accrual's points, floor(points x returned value / the
  order's value), at most what is left to reverse of it; an order named by the property
  that has no accrual of the customer's in the program (bought before joining, say) takes
  nothing back; one that has no accrual in the program at all *yet* (several consumers: the
  return was taken before its purchase) waits for it — a `PendingReturn` recorded with the
  return's keyed 0-point REVERSAL — and the order's accrual, under the same account lock,
  takes back its share at once (`handlers._take_back_waiting_returns`), as it would have
  been after it;
- without a property and without an accrual of its own order id, the points the returned
  lines earn at the program's base rate (`order_points` without the tier's or a segment's
  multiplier), from the customer's accruals newest first, each up to what is left to reverse
  of it; what no accrual covers is not taken.

Each part is a REVERSAL of its accrual (`reversed_transaction_id`); points already spent are
its `unrecovered` points, never taken below zero (`Ledger.take_back`). A return with nothing
to take back is recorded as one REVERSAL of 0 points, so a redelivery finds it and a later
accrual is never taken back by an old return.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace

from libs.errors import DomainError, InvalidArgument, NotFound
from services.bonus.domain import (
    MAX_POINTS,
    Ledger,
    Movement,
    OrderLine,
    new_id,
    order_points,
    order_value,
    return_part,
    returns_all,
)
from services.bonus.handlers import (
    EVENT_KEY_PREFIX,
    INT64_MAX,
    Accrual,
    BonusDeps,
    Outcome,
    _move,
    accrue,
    fingerprint,
)
from services.bonus.offers import Claim, read_quote_id, release_quote
from services.bonus.ports import BonusUnitOfWork, PendingReturn

__all__ = ["PurchaseEvent", "record_purchase", "take_back_return"]

log = logging.getLogger(__name__)

# Refusals that are expected outcomes for an event, not failures: the order was accrued by
# other means, the customer was erased meanwhile, the program has another currency.
_EXPECTED = frozenset({"ORDER_ALREADY_ACCRUED", "CUSTOMER_NOT_FOUND", "CURRENCY_MISMATCH"})
_MAX_KEY = 128


@dataclass(frozen=True)
class PurchaseEvent:
    """A PURCHASE event of profile.changed, as bonus reads it."""

    event_id: str
    customer_id: str
    order_id: str
    lines: tuple[OrderLine, ...]
    currency: str
    total_micros: int
    original_order_id: str = ""
    # when the profile service recorded it (None: unknown, every enrolled program counts)
    recorded_at: float | None = None
    # the quote the order was priced with (the event's property `quote_id`; "" when none)
    quote_id: str = ""

    @property
    def is_return(self) -> bool:
        return bool(self.lines) and all(line.quantity < 0 for line in self.lines)

    @property
    def key(self) -> str:
        key = f"{EVENT_KEY_PREFIX}{self.event_id}"
        if len(key) > _MAX_KEY:  # event ids are at most 128 characters; keep keys within too
            key = f"{EVENT_KEY_PREFIX}sha256:" + hashlib.sha256(self.event_id.encode()).hexdigest()
        return key


async def record_purchase(deps: BonusDeps, event: PurchaseEvent) -> list[Outcome]:
    """Accrues the purchase, or takes back the return, in every program the customer is
    enrolled in. Refusals that retrying cannot change are logged and skip that program; the
    others (storage down) raise, so the bus delivers the event again."""
    async with deps.uow() as uow:
        accounts = await uow.enrolled_programs(event.customer_id)
        owner = await uow.merged_into(event.customer_id)
    outcomes: list[Outcome] = []
    for program_id, enrolled_at in accounts:
        if event.recorded_at is not None and event.recorded_at < enrolled_at:
            continue
        try:
            try:
                outcomes.append(
                    await _apply(deps, program_id, await _buyer(deps, program_id, event, owner))
                )
            except NotFound as exc:
                # merged since the purchase: unless this event was applied before the merge
                # (then its key answers), it counts for the customer the buyer lives on as
                if exc.reason != "CUSTOMER_MERGED":
                    raise
                target = exc.metadata["target_customer_id"]
                outcomes.append(await _apply(deps, program_id, replace(event, customer_id=target)))
        except DomainError as exc:
            if exc.reason not in _EXPECTED:
                log.warning(
                    "event %s not applied to program %s: %s (%s)",
                    event.event_id,
                    program_id,
                    exc.message,
                    exc.reason,
                )
    return outcomes


async def _buyer(
    deps: BonusDeps, program_id: str, event: PurchaseEvent, owner: str | None
) -> PurchaseEvent:
    """The event as it applies now: a buyer merged into another customer (`owner`) buys as
    that one, unless the event was applied before the merge (its key answers for the buyer)."""
    if owner is None:
        return event
    async with deps.uow() as uow:
        prior = await uow.by_key(program_id, event.key)
    if prior is not None and prior.customer_id == event.customer_id:
        return event
    return replace(event, customer_id=owner)


async def _apply(deps: BonusDeps, program_id: str, event: PurchaseEvent) -> Outcome:
    if event.is_return:
        return await take_back_return(deps, program_id, event)
    order = Accrual(
        event.order_id,
        event.lines,
        event.currency,
        event.total_micros,
        event.key,
        quote=_quote(deps, event),
        quote_from_event=True,
    )
    return await accrue(deps, program_id, event.customer_id, order)


def _quote(deps: BonusDeps, event: PurchaseEvent) -> Claim | None:
    """The quote the event carries, when this service signed it; otherwise (forged, altered,
    no key configured) the order accrues without it, and the log says so."""
    if not event.quote_id:
        return None
    try:
        if not deps.quote_key:
            raise InvalidArgument("quote_id", "cannot be read: no quote key is configured")
        return read_quote_id(deps.quote_key, event.quote_id)
    except InvalidArgument as exc:
        log.warning("event %s: quote left out: %s", event.event_id, exc.message)
        return None


async def take_back_return(deps: BonusDeps, program_id: str, event: PurchaseEvent) -> Outcome:
    """One return in one program, by the rule in the module docstring."""
    returned = tuple(
        OrderLine(line.category, -line.quantity, line.unit_price_micros) for line in event.lines
    )
    customer_id, key = event.customer_id, event.key
    print_ = fingerprint(
        "RETURN",
        customer_id,
        event.order_id,
        event.original_order_id,
        [[line.category, line.quantity, line.unit_price_micros] for line in returned],
        event.currency,
    )

    # accrual's transaction id -> the value this return takes off it (REVERSAL.value_micros)
    returned_value: dict[str, int] = {}
    # the order this return waits for the accrual of (at most one)
    waits_for: list[str] = []

    async def plan(uow: BonusUnitOfWork, ledger: Ledger) -> list[tuple[str, int]]:
        """(accrual's transaction id, points to take back of it)."""
        program = ledger.program
        reference = event.original_order_id or event.order_id
        original = await uow.accrual_of(program_id, reference)
        if original is not None and customer_id == (
            await uow.merged_into(original.customer_id) or original.customer_id
        ):
            left = original.points - await uow.reversed_so_far(original.transaction_id)
            value, share = return_part(
                original.points,
                original.value_micros,
                await uow.returned_value_so_far(original.transaction_id),
                order_value(program, returned),
                order_points(program, returned, 1.0),
            )
            returned_value[original.transaction_id] = value
            amount = min(left, share)
            # recorded even when it takes nothing yet (its value counts for the next part);
            # against an accrual that earned nothing, for its value (returns_all)
            takes_part = left > 0 or (original.points == 0 and value > 0)
            return [(original.transaction_id, amount)] if takes_part else []
        if event.original_order_id:
            # named, but it earned nothing here: nothing to take back; when the order has no
            # accrual at all yet (taken before its purchase), the return waits for it
            waits_for.extend([event.original_order_id] if original is None else [])
            return []
        rest = order_points(program, returned, 1.0)
        parts: list[tuple[str, int]] = []
        for accrual, left in await uow.open_accruals(program_id, customer_id):
            if rest <= 0:
                break
            take = min(left, rest)
            parts.append((accrual.transaction_id, take))
            rest -= take
        return parts

    async def act(uow: BonusUnitOfWork, ledger: Ledger) -> Movement:
        if event.currency != ledger.program.currency:
            raise InvalidArgument(
                "order.total.currency",
                f"must be the program's currency {ledger.program.currency}",
                reason="CURRENCY_MISMATCH",
            )
        waits_for.clear()  # a run again after a conflict plans afresh
        parts = await plan(uow, ledger) or [("", 0)]
        recorded: list[Movement] = []
        for i, (accrual_id, amount) in enumerate(parts):
            # a part that takes back all that is left of an accrual frees the uses its quote
            # counted, as a Reverse of all of it does (services/bonus/offers.py)
            accrued = await uow.by_id(accrual_id) if accrual_id else None
            if accrued is not None and returns_all(
                accrued.points,
                accrued.points - await uow.reversed_so_far(accrual_id),
                amount,
                accrued.value_micros,
                await uow.returned_value_so_far(accrual_id),
                returned_value.get(accrual_id, 0),
            ):
                await release_quote(uow, accrual_id)
            movement = Movement(
                new_id(),
                program_id,
                customer_id,
                "REVERSAL",
                amount,
                ledger.now,
                order_id=event.order_id,
                reversed_transaction_id=accrual_id,
                # the first part carries the key: a redelivery finds it and moves nothing
                idempotency_key=key if i == 0 else "",
                fingerprint=print_ if i == 0 else "",
                earned=-amount,
                reverses=amount,
                value_micros=returned_value.get(accrual_id, 0),
                description=f"return {event.order_id}"
                if accrual_id
                else f"return {event.order_id}: waits for the accrual of {waits_for[0]}"
                if waits_for
                else f"return {event.order_id}: nothing left to take back",
            )
            recorded.append(ledger.take_back(movement, accrual_id, amount))
        if waits_for:
            program = ledger.program
            await uow.add_pending_return(
                PendingReturn(
                    recorded[0].transaction_id,
                    program_id,
                    waits_for[0],
                    customer_id,
                    event.order_id,
                    # an int64 column, however much the lines claim (an accrual's value is
                    # at most that too, so a return can never take more than all of it)
                    min(order_value(program, returned), INT64_MAX),
                    min(order_points(program, returned, 1.0), MAX_POINTS),
                    ledger.now,
                )
            )
        return recorded[0]

    return await _move(deps, program_id, customer_id, key=key, print_=print_, act=act, enrol=False)
