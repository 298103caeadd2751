"""The bonus use cases: plain async functions over the ports (no grpc, no protobuf).

Every write to an account runs as one unit of work that first locks the account's row, then
checks the idempotency key, then moves points: two callers of one account (in one process or
in two replicas) take turns, a retried key finds the first movement instead of making a
second, and the balance checked is the balance spent from. A unit of work that loses a race
it cannot wait out (a key or an order claimed meanwhile for another account) runs again on
what is committed now (`retry_conflicts`), where the duplicate is found.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from libs.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound
from libs.retry import retry_conflicts
from services.bonus.domain import (
    MAX_POINTS,
    REVERSIBLE,
    AccountView,
    Ledger,
    Movement,
    OrderLine,
    Program,
    TierChange,
    account_view,
    new_id,
    order_points,
    order_value,
    return_part,
    returns_all,
    segment_multiplier,
    tier_standing,
)
from services.bonus.offers import (
    Claim,
    claim_quote,
    claimed_promotions,
    note_conversion,
    release_quote,
)
from services.bonus.ports import AccountState, BonusUnitOfWork, CustomerSignals

__all__ = [
    "INT64_MAX",
    "Accrual",
    "BonusDeps",
    "Outcome",
    "ProgramPatch",
    "accrue",
    "adjust_points",
    "create_program",
    "enroll",
    "erase_customer",
    "expire_due",
    "get_account",
    "get_program",
    "list_transactions",
    "redeem",
    "reverse",
    "settle_tier",
    "tier_sweep",
    "update_program",
]

log = logging.getLogger(__name__)

INT64_MAX = 2**63 - 1
# The idempotency keys of the purchase consumer's accruals (services/bonus/purchases.py).
EVENT_KEY_PREFIX = "event:"
# How long an accrual waits for segmentation's answer (segment multipliers) before it
# accrues without them.
SEGMENT_TIMEOUT = 0.3


@dataclass(frozen=True)
class BonusDeps:
    uow: Callable[[], BonusUnitOfWork]
    clock: Callable[[], float]
    # Segmentation's answers about a customer (segments, conditions); None when it is down.
    signals: CustomerSignals
    # Runs of a unit of work that keeps losing races; each run waits for the account's lock,
    # so only races on keys and orders claimed for another account come back.
    attempts: int = 8
    # The key quote ids are signed with (the same as OfferDeps.quote_key): the purchase
    # consumer reads the quote id a PURCHASE event carries with it.
    quote_key: bytes = b""


@dataclass(frozen=True)
class Outcome:
    """A movement (None when there was none to make), the account right after it, and the
    program it belongs to."""

    movement: Movement | None
    account: AccountView
    program: Program


@dataclass(frozen=True)
class ProgramPatch:
    """Validated new values of the fields in an update mask; `point_value_currency` is what
    the caller gave for point_value ("" when it is not in the mask)."""

    fields: dict[str, Any]
    point_value_currency: str = ""


@dataclass(frozen=True)
class Accrual:
    order_id: str
    lines: tuple[OrderLine, ...]
    currency: str
    total_micros: int
    idempotency_key: str
    # the QuoteOffer the order was placed with (its promotions' uses are counted)
    quote: Claim | None = None
    # the quote came with a purchase event: the purchase happened, so a quote refused
    # (expired, another customer's, a budget spent) is logged and the order accrues without it
    quote_from_event: bool = False


def fingerprint(*content: Any) -> str:
    """What a request asked for, so a retried key can be told from a reused one."""
    return hashlib.sha256(json.dumps(content, separators=(",", ":")).encode()).hexdigest()


# ---------------------------------------------------------------------------------- programs


def _check_point_value_currency(program: Program, currency: str) -> None:
    if currency and currency != program.currency:
        raise InvalidArgument(
            "program.point_value.currency",
            f"must be the program's currency {program.currency}",
            reason="CURRENCY_MISMATCH",
        )


async def _program(uow: BonusUnitOfWork, program_id: str, for_update: bool = False) -> Program:
    program = await uow.program(program_id, for_update=for_update)
    if program is None:
        raise NotFound(f"no program {program_id!r}", reason="PROGRAM_NOT_FOUND")
    return program


async def create_program(deps: BonusDeps, program: Program, point_value_currency: str) -> Program:
    _check_point_value_currency(program, point_value_currency)
    now = deps.clock()
    created = replace(program, program_id=new_id(), created_at=now, updated_at=now)
    async with deps.uow() as uow:
        await uow.add_program(created)
        await uow.announce_program(created)
        await uow.commit()
    return created


async def get_program(deps: BonusDeps, program_id: str) -> Program:
    async with deps.uow() as uow:
        return await _program(uow, program_id)


async def update_program(deps: BonusDeps, program_id: str, patch: ProgramPatch) -> Program:
    """Applies the patch to the program as committed, under its row lock: two concurrent
    updates of different fields both stick."""

    async def attempt() -> Program:
        async with deps.uow() as uow:
            current = await _program(uow, program_id, for_update=True)
            _check_point_value_currency(current, patch.point_value_currency)
            updated = replace(current, **patch.fields, updated_at=deps.clock())
            await uow.save_program(updated)
            await uow.announce_program(updated)
            await uow.commit()
            return updated

    return await retry_conflicts(attempt, attempts=deps.attempts)


# ------------------------------------------------------------------------------------ ledger

# (uow, ledger) -> the movement the request makes
Act = Callable[[BonusUnitOfWork, Ledger], Awaitable[Movement]]


async def _view(
    uow: BonusUnitOfWork, program: Program, customer_id: str, now: float
) -> AccountView:
    state = await uow.account(program.program_id, customer_id)
    if state is None:
        return AccountView(program.program_id, customer_id, enrolled=False)
    earned = await uow.earned_since(program.program_id, customer_id, now - program.tier_period)
    lots = await uow.lots(program.program_id, customer_id)
    return account_view(
        program, customer_id, state.enrolled_at, state.lifetime_points, lots, earned, now
    )


async def _replay(uow: BonusUnitOfWork, program_id: str, key: str, print_: str) -> Movement | None:
    """The movement a key already made, when the request is the same; refused otherwise."""
    prior = await uow.by_key(program_id, key)
    if prior is not None and prior.fingerprint != print_:
        raise FailedPrecondition(
            "idempotency_key was used for a different request",
            reason="IDEMPOTENCY_KEY_REUSED",
            metadata={"transaction_id": prior.transaction_id},
        )
    return prior


def _welcome(program: Program, customer_id: str, now: float) -> Movement:
    return Movement(
        new_id(), program.program_id, customer_id, "WELCOME", program.welcome_points, now
    )


async def _move(
    deps: BonusDeps,
    program_id: str,
    customer_id: str,
    *,
    enrol: bool,
    key: str = "",
    print_: str = "",
    act: Act | None = None,
) -> Outcome:
    """One write to an account, as described in the module docstring. `enrol`: open the
    account, crediting the welcome points, when there is none; `act`: the movement the
    request makes (none: the welcome, if this call opened the account)."""

    async def attempt() -> Outcome:
        now = deps.clock()
        async with deps.uow() as uow:
            program = await _program(uow, program_id)
            if not await uow.guard_customer(customer_id):
                target = await uow.merged_into(customer_id)
                if target is None:
                    raise NotFound(
                        f"customer {customer_id!r} was erased", reason="CUSTOMER_NOT_FOUND"
                    )
                # a merged customer's keys keep answering; nothing else is written for it
                if key and (prior := await _replay(uow, program_id, key, print_)) is not None:
                    return Outcome(prior, await _view(uow, program, target, now), program)
                raise NotFound(
                    f"customer {customer_id!r} was merged into {target!r}",
                    reason="CUSTOMER_MERGED",
                    metadata={"target_customer_id": target},
                )
            opened = enrol and await uow.open_account(program_id, customer_id, now)
            state = await uow.lock_account(program_id, customer_id)
            if key and (prior := await _replay(uow, program_id, key, print_)) is not None:
                return Outcome(prior, await _view(uow, program, customer_id, now), program)
            state = state or AccountState(enrolled_at=now, points=0, lifetime_points=0)
            lots = await uow.lots(program_id, customer_id)
            ledger = Ledger(program, customer_id, lots, state.points, state.lifetime_points, now)
            movement = None
            if opened and program.welcome_points:
                movement = ledger.credit(_welcome(program, customer_id, now), now)
            ledger.activate()
            ledger.expire()
            if act is not None:
                movement = await act(uow, ledger)
            if ledger.movements:
                await uow.append(ledger.movements)
                await uow.save_lots(program_id, customer_id, list(ledger.changed.values()))
            earned = await uow.earned_since(program_id, customer_id, now - program.tier_period)
            after = replace(state, points=ledger.points, lifetime_points=ledger.lifetime)
            after = await settle_tier(uow, program, customer_id, after, earned, now)
            if ledger.movements or after.tier != state.tier:
                await uow.save_account(program_id, customer_id, after)
            view = account_view(
                program, customer_id, state.enrolled_at, ledger.lifetime, ledger.lots, earned, now
            )
            await uow.commit()
            return Outcome(movement, view, program)

    return await retry_conflicts(attempt, attempts=deps.attempts)


async def settle_tier(
    uow: BonusUnitOfWork,
    program: Program,
    customer_id: str,
    state: AccountState,
    earned: int,
    now: float,
) -> AccountState:
    """The state with the tier `earned` gives; when it is not the tier last announced, a
    TierChanged goes to the outbox in this transaction. The caller saves the state."""
    tier = tier_standing(program, earned).name
    if tier == state.tier:
        return state
    change = TierChange(program.program_id, customer_id, state.tier, tier, earned, now)
    await uow.announce_tier(change)
    return replace(state, tier=tier)


async def tier_sweep(
    deps: BonusDeps, after: tuple[str, str] | None, limit: int = 500
) -> tuple[str, str] | None:
    """Tiers go down with time alone: visits accounts holding a tier, in key order from
    `after`, and re-settles (an ordinary locked write) those whose points over the rolling
    period no longer reach it. Returns where the next call starts (None: the end)."""
    now = deps.clock()
    async with deps.uow() as uow:
        page = await uow.tiered_accounts(after, limit)
        stale: list[tuple[str, str]] = []
        programs: dict[str, Program] = {}
        for program_id, customer_id, tier in page:
            if program_id not in programs:
                programs[program_id] = await _program(uow, program_id)
            program = programs[program_id]
            earned = await uow.earned_since(program_id, customer_id, now - program.tier_period)
            if tier_standing(program, earned).name != tier:
                stale.append((program_id, customer_id))
    for program_id, customer_id in stale:
        with contextlib.suppress(NotFound):  # erased or merged meanwhile
            await _move(deps, program_id, customer_id, enrol=False)
    return (page[-1][0], page[-1][1]) if len(page) == limit else None


async def enroll(deps: BonusDeps, program_id: str, customer_id: str) -> Outcome:
    """Opens the account and credits the welcome points; movement None when the customer was
    already enrolled or the program has no welcome points."""
    return await _move(deps, program_id, customer_id, enrol=True)


async def get_account(deps: BonusDeps, program_id: str, customer_id: str) -> AccountView:
    """A merged customer's reads follow it to the customer it lives on as."""
    async with deps.uow() as uow:
        program = await _program(uow, program_id)
        customer_id = await uow.merged_into(customer_id) or customer_id
        return await _view(uow, program, customer_id, deps.clock())


async def _segments(deps: BonusDeps, program_id: str, customer_id: str) -> frozenset[str] | None:
    """The customer's segments among the program's segment_multipliers, asked before the
    unit of work (no lock is held while segmentation answers); None when it does not answer
    within SEGMENT_TIMEOUT."""
    async with deps.uow() as uow:
        program = await _program(uow, program_id)
    if not program.segment_multipliers:
        return frozenset()
    return await deps.signals.segments(
        customer_id, sorted(program.segment_multipliers), None, SEGMENT_TIMEOUT
    )


async def accrue(deps: BonusDeps, program_id: str, customer_id: str, order: Accrual) -> Outcome:
    """Credits what the order earns. Segment multipliers: the highest among the segments the
    customer is in applies; when segmentation does not answer, the order earns at the rate
    without them and the transaction's description says so."""
    segments = await _segments(deps, program_id, customer_id)
    print_ = fingerprint(
        "ACCRUE",
        customer_id,
        order.order_id,
        [[line.category, line.quantity, line.unit_price_micros] for line in order.lines],
        order.currency,
        order.total_micros,
        *([order.quote.quote_id] if order.quote else []),
    )

    async def act(uow: BonusUnitOfWork, ledger: Ledger) -> Movement:
        program, now = ledger.program, ledger.now
        if order.currency != program.currency:
            raise InvalidArgument(
                "order.total.currency",
                f"must be the program's currency {program.currency}",
                reason="CURRENCY_MISMATCH",
            )
        earlier = await uow.accrual_of(program_id, order.order_id)
        if earlier is not None:
            raise FailedPrecondition(
                f"order {order.order_id!r} was accrued under another idempotency key",
                reason="ORDER_ALREADY_ACCRUED",
                metadata={"transaction_id": earlier.transaction_id},
            )
        # what the points were earned on (a return takes back its share of them): an int64
        # column, which lines the RPC and events accept can pass once categories weigh them
        value = order_value(program, order.lines)
        if value > INT64_MAX:
            raise InvalidArgument(
                "order.lines", f"are worth more than {INT64_MAX} micros with their categories"
            )
        earned = await uow.earned_since(program_id, customer_id, now - program.tier_period)
        by_segment = segment_multiplier(program, segments or frozenset())
        points = order_points(
            program, order.lines, tier_standing(program, earned).multiplier, by_segment
        )
        transaction_id = new_id()
        # --- promotions (services/bonus/offers.py): the quote's uses, its bonus points, and
        # the order for holdout reports
        promotions: tuple[str, ...] = ()
        if order.quote is not None:
            try:
                points += await claim_quote(
                    uow, order.quote, program_id, customer_id, order.order_id, transaction_id, now
                )
                promotions = claimed_promotions(order.quote)
            except DomainError as exc:  # claim_quote refuses before it writes anything
                if not order.quote_from_event:
                    raise
                log.warning(
                    "order %s accrued without the quote of its event: %s (%s)",
                    order.order_id,
                    exc.message,
                    exc.reason,
                )
        await note_conversion(uow, program_id, customer_id, order.order_id, order.total_micros, now)
        # ---
        if points > MAX_POINTS:
            raise InvalidArgument("order", f"earns more than {MAX_POINTS} points")
        movement = Movement(
            transaction_id,
            program_id,
            customer_id,
            "ACCRUAL",
            points,
            now,
            order_id=order.order_id,
            idempotency_key=order.idempotency_key,
            fingerprint=print_,
            earned=points,
            # what the points were earned on: a return takes back its share of them
            value_micros=max(0, value),
            description=_segment_note(program, segments, by_segment),
            promotion_ids=promotions,
        )
        accrual = ledger.credit(movement, now + program.pending_days * 86_400.0)
        await _take_back_waiting_returns(uow, ledger, accrual)
        return accrual

    try:
        return await _move(
            deps,
            program_id,
            customer_id,
            key=order.idempotency_key,
            print_=print_,
            act=act,
            enrol=True,
        )
    except FailedPrecondition as exc:
        if exc.reason != "ORDER_ALREADY_ACCRUED" or order.quote is None or order.quote_from_event:
            raise
        # --- promotions: the order's purchase event came first
        await _count_late_quote(deps, program_id, customer_id, order.order_id, order.quote)
        # ---
        raise


async def _take_back_waiting_returns(
    uow: BonusUnitOfWork, ledger: Ledger, accrual: Movement
) -> None:
    """Returns of the order taken before its accrual (services/bonus/purchases.py) take back
    their share now, in the accrual's unit of work: the REVERSALs a return taken after it
    writes, so any order of delivery ends with the same balance, lots and ledger totals."""
    taken = returned_before = 0
    for waiting in await uow.take_pending_returns(accrual.program_id, accrual.order_id):
        left = accrual.points - taken
        if left <= 0 and (accrual.points > 0 or returned_before >= accrual.value_micros):
            break  # as a return after it: nothing to take back, nothing recorded
        if accrual.customer_id not in (
            waiting.customer_id,
            await uow.merged_into(waiting.customer_id),
        ):
            continue  # another customer's return of this order id takes nothing, as after it
        value, share = return_part(
            accrual.points,
            accrual.value_micros,
            returned_before,
            waiting.value_micros,
            waiting.points,
        )
        amount = min(left, share)
        if returns_all(
            accrual.points, left, amount, accrual.value_micros, returned_before, value
        ):  # all of it taken back: the uses its quote counted are freed
            await release_quote(uow, accrual.transaction_id)
        reversal = Movement(
            new_id(),
            accrual.program_id,
            accrual.customer_id,
            "REVERSAL",
            amount,
            ledger.now,
            order_id=waiting.return_order_id,
            reversed_transaction_id=accrual.transaction_id,
            earned=-amount,
            reverses=amount,
            value_micros=value,
            description=f"return {waiting.return_order_id} (taken before the accrual)",
        )
        ledger.take_back(reversal, accrual.transaction_id, amount)
        taken += amount
        returned_before += value


async def _count_late_quote(
    deps: BonusDeps, program_id: str, customer_id: str, order_id: str, quote: Claim
) -> None:
    """The shop's Accrue with a quote, after the order's PURCHASE event accrued it without
    one (services/bonus/purchases.py): the quote's uses count against that accrual, in a unit
    of work of their own that commits (the caller still answers ORDER_ALREADY_ACCRUED).
    Refused as an Accrue with the quote is (PROMOTION_BUDGET_SPENT, ...), counting nothing.
    Only for an accrual the consumer made (its key `event:...`) for this customer or one
    merged into it, not reversed whole; once per order (`claim_quote(late=True)`). Its
    bonus points are not credited: the order's one ACCRUAL is in the ledger already."""

    async def attempt() -> None:
        async with deps.uow() as uow:
            if not await uow.guard_customer(customer_id):
                return
            # the locks an accrual takes, in its order: the account, then the promotions
            await uow.lock_account(program_id, customer_id)
            earlier = await uow.accrual_of(program_id, order_id)
            if earlier is None or not earlier.idempotency_key.startswith(EVENT_KEY_PREFIX):
                return
            if (await uow.merged_into(earlier.customer_id) or earlier.customer_id) != customer_id:
                return
            left = earlier.points - await uow.reversed_so_far(earlier.transaction_id)
            returned = await uow.returned_value_so_far(earlier.transaction_id)
            # returned whole (its points, or the value of one that earned none): nothing to
            # count for (returns_all of a part that takes nothing more)
            if returns_all(earlier.points, left, 0, earlier.value_micros, returned, 0):
                return
            if await uow.uses_of(earlier.transaction_id):  # counted: a retry answers as the
                return  # first did, even once the quote has expired (checked again locked)
            await claim_quote(
                uow,
                quote,
                program_id,
                customer_id,
                order_id,
                earlier.transaction_id,
                deps.clock(),
                late=True,
            )
            await uow.note_promotions(earlier.transaction_id, claimed_promotions(quote))
            await uow.commit()

    await retry_conflicts(attempt, attempts=deps.attempts)


def _segment_note(program: Program, segments: frozenset[str] | None, multiplier: float) -> str:
    if not program.segment_multipliers:
        return ""
    if segments is None:
        return "segment multipliers not applied: segmentation did not answer"
    return f"segment multiplier {multiplier:g}" if multiplier != 1.0 else ""


async def redeem(
    deps: BonusDeps, program_id: str, customer_id: str, points: int, order_id: str, key: str
) -> Outcome:
    print_ = fingerprint("REDEEM", customer_id, points, order_id)

    async def act(_uow: BonusUnitOfWork, ledger: Ledger) -> Movement:
        if ledger.balance < points:
            raise FailedPrecondition(
                f"the balance is {ledger.balance} points, {points} asked",
                reason="INSUFFICIENT_POINTS",
                metadata={"balance": str(ledger.balance)},
            )
        value = min(points * ledger.program.point_value_micros, INT64_MAX)
        movement = Movement(
            new_id(),
            program_id,
            customer_id,
            "REDEMPTION",
            -points,
            ledger.now,
            order_id=order_id,
            idempotency_key=key,
            fingerprint=print_,
            value_micros=value,
        )
        return ledger.spend(movement)

    return await _move(deps, program_id, customer_id, key=key, print_=print_, act=act, enrol=False)


async def adjust_points(
    deps: BonusDeps, program_id: str, customer_id: str, points: int, reason: str, key: str
) -> Outcome:
    """An administrator's correction of an enrolled account: a credit spendable at once, or a
    debit of spendable points (earliest expiry first) that never goes below zero."""
    print_ = fingerprint("ADJUST", customer_id, points, reason)

    async def act(uow: BonusUnitOfWork, ledger: Ledger) -> Movement:
        if await uow.account(program_id, customer_id) is None:
            raise NotFound(
                f"customer {customer_id!r} is not enrolled in program {program_id!r}",
                reason="ACCOUNT_NOT_FOUND",
            )
        movement = Movement(
            new_id(),
            program_id,
            customer_id,
            "ADJUSTMENT",
            points,
            ledger.now,
            idempotency_key=key,
            fingerprint=print_,
            description=reason,
        )
        if points > 0:
            return ledger.credit(movement, ledger.now)
        if ledger.balance < -points:
            raise FailedPrecondition(
                f"the balance is {ledger.balance} points, {-points} asked",
                reason="INSUFFICIENT_POINTS",
                metadata={"balance": str(ledger.balance)},
            )
        return ledger.spend(movement)

    return await _move(deps, program_id, customer_id, key=key, print_=print_, act=act, enrol=False)


async def reverse(
    deps: BonusDeps, transaction_id: str, points: int, reason: str, key: str
) -> Outcome:
    """Undoes `points` (0: all that is left) of a welcome, accrual or redemption, in the
    account that holds it now (a merged customer's transactions are the target's)."""
    async with deps.uow() as uow:
        original = await uow.by_id(transaction_id)
        owner = ""
        if original is not None:
            owner = await uow.merged_into(original.customer_id) or original.customer_id
    if original is None:
        raise NotFound(f"no transaction {transaction_id!r}", reason="TRANSACTION_NOT_FOUND")
    print_ = fingerprint("REVERSE", transaction_id, points, reason)

    async def act(uow: BonusUnitOfWork, ledger: Ledger) -> Movement:
        if original.type not in REVERSIBLE:
            raise FailedPrecondition(
                f"a {original.type} transaction cannot be reversed", reason="NOT_REVERSIBLE"
            )
        left = abs(original.points) - await uow.reversed_so_far(transaction_id)
        amount = points or left
        # an accrual that earned no points is reversed all at once, for its value, while its
        # quote's uses are still counted (returns_all): what a Reverse of it can undo
        returned_before = rest = 0
        zero = original.type == "ACCRUAL" and original.points == 0 and not points
        if zero and await uow.uses_of(transaction_id):
            returned_before = await uow.returned_value_so_far(transaction_id)
            rest = original.value_micros - returned_before
        if rest <= 0 and (left <= 0 or amount > left):
            raise FailedPrecondition(
                f"{left} points of the transaction are left to reverse, {amount} asked",
                reason="NOT_REVERSIBLE",
            )
        movement = Movement(
            new_id(),
            original.program_id,
            ledger.customer_id,
            "REVERSAL",
            amount,
            ledger.now,
            order_id=original.order_id,
            reversed_transaction_id=transaction_id,
            idempotency_key=key,
            fingerprint=print_,
            earned=-amount if original.type == "ACCRUAL" else 0,
            reverses=amount,
            value_micros=max(0, rest),
            description=reason,
        )
        # --- promotions (services/bonus/offers.py): a whole accrual reversed frees its uses
        if original.type == "ACCRUAL" and returns_all(
            original.points, left, amount, original.value_micros, returned_before, max(0, rest)
        ):
            await release_quote(uow, transaction_id)
        # ---
        if original.is_credit:
            return ledger.take_back(movement, transaction_id, amount)
        return ledger.credit(movement, ledger.now)  # spent points come back, spendable now

    try:
        return await _move(
            deps, original.program_id, owner, key=key, print_=print_, act=act, enrol=False
        )
    except NotFound as exc:  # merged since it was looked up: the target holds it now
        if exc.reason != "CUSTOMER_MERGED":
            raise
        target = exc.metadata["target_customer_id"]
        return await _move(
            deps, original.program_id, target, key=key, print_=print_, act=act, enrol=False
        )


async def list_transactions(
    deps: BonusDeps, program_id: str, customer_id: str, before: int | None, limit: int
) -> tuple[list[Movement], int | None]:
    """A page, newest first, and the position the next page starts before (None: last)."""
    async with deps.uow() as uow:
        await _program(uow, program_id)
        customer_id = await uow.merged_into(customer_id) or customer_id
        rows = await uow.history(program_id, customer_id, before, limit + 1)
    page = rows[:limit]
    following = page[-1][0] if len(rows) > limit else None
    return [movement for _, movement in page], following


async def erase_customer(deps: BonusDeps, customer_id: str) -> None:
    """profile.deleted: the customer's accounts and history go, in every program, and later
    writes for it are refused. Idempotent; it waits for the writes in flight (each holds the
    customer's guard)."""

    async def attempt() -> None:
        async with deps.uow() as uow:
            await uow.erase_customer(customer_id, deps.clock())
            await uow.commit()

    await retry_conflicts(attempt, attempts=deps.attempts)


async def expire_due(deps: BonusDeps, limit: int = 500) -> int:
    """Records EXPIRATION movements in accounts holding points past their expiry (reads already
    leave those points out; this writes them in the ledger of accounts nobody writes to).
    Each account is one ordinary write, so replicas running it at once record each lot's
    expiry once. Returns how many accounts it visited."""
    async with deps.uow() as uow:
        due = await uow.due_for_expiry(deps.clock(), limit)
    for program_id, customer_id in due:
        await _move(deps, program_id, customer_id, enrol=False)
    return len(due)
