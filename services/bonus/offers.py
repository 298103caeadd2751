"""Promotion and quote use cases: plain async functions over the ports (no grpc, no protobuf).

Promotion writes lock the program's row first (so the coupon-code check and the insert are one
decision per program, also across replicas) and then the promotion's, change it, and announce
it (PromotionChanged through the outbox, and the configuration version) in the same unit of
work. A quote is read-only: configuration from the process's cache, at most one read of the
customer's account (and, when some promotion limits uses per customer, of its uses) and one
call to segmentation; its `quote_id` is a signed token, so a quote stores nothing. An accrual
that carries a quote counts the uses of the quote's promotions in its own unit of work, under
the promotions' row locks (`claim_quote`), and is refused whole when a budget would be
overshot.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from backcrm.common.v1 import common_pb2

from libs.errors import FailedPrecondition, InvalidArgument, NotFound
from libs.retry import retry_conflicts
from services.bonus.config import ConfigCache, ProgramConfig
from services.bonus.domain import MAX_POINTS, Program, new_id, tier_standing
from services.bonus.ports import BonusUnitOfWork, Exposure, GroupFigures, PromotionUse
from services.bonus.pricing import (
    INT64_MAX,
    CartLine,
    Customer,
    Quote,
    minor_unit_micros,
    price_cart,
)
from services.bonus.promotions import Promotion, coupon_key
from services.segmentation.conditions.ast import ContextCond, Node
from services.segmentation.conditions.evaluate import evaluate
from services.segmentation.facts import ContextFacts, CustomerFacts

if TYPE_CHECKING:  # handlers imports this module (the accrual's quote hook)
    from services.bonus.handlers import BonusDeps

__all__ = [
    "Claim",
    "Exposures",
    "MoneyField",
    "OfferDeps",
    "PromotionPatch",
    "QuoteRequest",
    "QuoteResult",
    "Report",
    "claim_quote",
    "claimed_promotions",
    "create_promotion",
    "end_scheduled",
    "flush_exposures",
    "get_promotion",
    "list_promotions",
    "note_conversion",
    "pause_promotion",
    "promotion_report",
    "quote_offer",
    "read_quote_id",
    "release_quote",
    "update_promotion",
]


class Exposures:
    """Holdout exposures seen by this process's quotes, kept in memory and written in batches
    (`flush`, ON CONFLICT DO NOTHING): a quote writes nothing. A pair already flushed is
    remembered (up to `remember` pairs) so a customer quoted again is not written again."""

    def __init__(self, remember: int = 100_000) -> None:
        self.pending: dict[tuple[str, str], Exposure] = {}
        self._flushed: set[tuple[str, str]] = set()
        self._remember = remember

    def add(
        self, program_id: str, customer_id: str, seen: Sequence[tuple[str, bool]], at: float
    ) -> None:
        for promotion_id, held in seen:
            pair = (promotion_id, customer_id)
            if pair not in self._flushed and pair not in self.pending:
                self.pending[pair] = Exposure(promotion_id, customer_id, program_id, held, at)

    async def flush(self, uow_factory: Any) -> int:
        batch, self.pending = list(self.pending.values()), {}
        if not batch:
            return 0
        try:
            async with uow_factory() as uow:
                await uow.add_exposures(batch)
                await uow.commit()
        except BaseException:
            for e in batch:  # kept for the next flush
                self.pending.setdefault((e.promotion_id, e.customer_id), e)
            raise
        if len(self._flushed) > self._remember:
            self._flushed.clear()
        self._flushed.update((e.promotion_id, e.customer_id) for e in batch)
        return len(batch)


@dataclass(frozen=True)
class OfferDeps:
    bonus: BonusDeps
    config: ConfigCache
    quote_key: bytes  # HMAC-SHA256 key of quote ids (the same in every replica)
    quote_ttl: float = 900.0
    signals_timeout: float = 0.15
    exposures: Exposures = field(default_factory=Exposures)


# (field, currency) of every amount a request gave, checked against the program's currency
MoneyField = tuple[str, str, int]  # (field, currency, micros)


@dataclass(frozen=True)
class PromotionPatch:
    """Validated new values of the fields in an update mask."""

    fields: dict[str, Any]
    money: tuple[MoneyField, ...] = ()


# ---------------------------------------------------------------------------- promotions


async def _program(uow: BonusUnitOfWork, program_id: str, *, for_update: bool) -> Program:
    program = await uow.program(program_id, for_update=for_update)
    if program is None:
        raise NotFound(f"no program {program_id!r}", reason="PROGRAM_NOT_FOUND")
    return program


async def _promotion(
    uow: BonusUnitOfWork, promotion_id: str, *, for_update: bool = False
) -> Promotion:
    promotion = await uow.promotion(promotion_id, for_update=for_update)
    if promotion is None:
        raise NotFound(f"no promotion {promotion_id!r}", reason="PROMOTION_NOT_FOUND")
    return promotion


def _check_money(program: Program, amounts: Sequence[MoneyField]) -> None:
    unit = minor_unit_micros(program.currency)
    for field_name, currency, micros in amounts:
        if currency and currency != program.currency:
            raise InvalidArgument(
                f"{field_name}.currency",
                f"must be the program's currency {program.currency}",
                reason="CURRENCY_MISMATCH",
            )
        if micros % unit:
            raise InvalidArgument(
                f"{field_name}.units_micros",
                f"must be a whole number of {program.currency} minor units ({unit} micros)",
            )


def _check_schedule(promotion: Promotion) -> None:
    start, end = promotion.start_time, promotion.end_time
    if start is not None and end is not None and end <= start:
        raise InvalidArgument("promotion.schedule.end_time", "must be after start_time")


async def _check_coupon(uow: BonusUnitOfWork, promotion: Promotion) -> None:
    if not promotion.coupon_code or promotion.status == "ENDED":
        return
    holder = await uow.coupon_holder(promotion.program_id, coupon_key(promotion.coupon_code))
    if holder is not None and holder != promotion.promotion_id:
        raise InvalidArgument(
            "promotion.coupon_code",
            f"is already the code of promotion {holder} of this program",
            reason="COUPON_CODE_TAKEN",
        )


async def create_promotion(
    deps: OfferDeps, promotion: Promotion, amounts: Sequence[MoneyField]
) -> Promotion:
    _check_schedule(promotion)

    async def attempt() -> Promotion:
        now = deps.bonus.clock()
        created = replace(promotion, promotion_id=new_id(), created_at=now, updated_at=now)
        async with deps.bonus.uow() as uow:
            program = await _program(uow, promotion.program_id, for_update=True)
            _check_money(program, amounts)
            await _check_coupon(uow, created)
            await uow.add_promotion(created)
            await uow.announce_promotion(created)
            await uow.commit()
        return created

    return await retry_conflicts(attempt, attempts=deps.bonus.attempts)


async def get_promotion(deps: OfferDeps, promotion_id: str) -> Promotion:
    async with deps.bonus.uow() as uow:
        return await _promotion(uow, promotion_id)


async def update_promotion(deps: OfferDeps, promotion_id: str, patch: PromotionPatch) -> Promotion:
    """Applies the patch to the promotion as committed, under its program's and its own row
    locks: concurrent updates of different fields all stick."""
    async with deps.bonus.uow() as uow:
        program_id = (await _promotion(uow, promotion_id)).program_id

    async def attempt() -> Promotion:
        async with deps.bonus.uow() as uow:
            program = await _program(uow, program_id, for_update=True)
            current = await _promotion(uow, promotion_id, for_update=True)
            _check_money(program, patch.money)
            status = patch.fields.get("status")
            if status is not None and current.status == "ENDED" and status != "ENDED":
                raise FailedPrecondition(
                    "the promotion has ended; ENDED is final", reason="PROMOTION_ENDED"
                )
            updated = replace(current, **patch.fields, updated_at=deps.bonus.clock())
            if updated.budget_spent():  # a budget lowered to what was already used
                updated = replace(updated, status="ENDED")
            _check_schedule(updated)
            await _check_coupon(uow, updated)
            await uow.save_promotion(updated)
            await uow.announce_promotion(updated)
            await uow.commit()
            return updated

    return await retry_conflicts(attempt, attempts=deps.bonus.attempts)


async def pause_promotion(deps: OfferDeps, promotion_id: str) -> Promotion:
    """ACTIVE -> PAUSED; a PAUSED or ENDED promotion is returned as it is (nothing written)."""

    async def attempt() -> Promotion:
        async with deps.bonus.uow() as uow:
            current = await _promotion(uow, promotion_id, for_update=True)
            if current.status != "ACTIVE":
                return current
            paused = replace(current, status="PAUSED", updated_at=deps.bonus.clock())
            await uow.save_promotion(paused)
            await uow.announce_promotion(paused)
            await uow.commit()
            return paused

    return await retry_conflicts(attempt, attempts=deps.bonus.attempts)


async def end_scheduled(deps: OfferDeps, limit: int = 500) -> int:
    """Promotions whose schedule has ended become ENDED (announced: caches drop them, their
    coupon code is free again). Quotes already leave them out by their schedule; each one is
    an ordinary locked write, so replicas running this at once end each promotion once."""
    now = deps.bonus.clock()
    async with deps.bonus.uow() as uow:
        due = await uow.schedule_ended(now, limit)

    async def end(promotion_id: str) -> None:
        async with deps.bonus.uow() as uow:
            current = await _promotion(uow, promotion_id, for_update=True)
            if current.status == "ENDED":
                return
            ended = replace(current, status="ENDED", updated_at=deps.bonus.clock())
            await uow.save_promotion(ended)
            await uow.announce_promotion(ended)
            await uow.commit()

    for promotion_id in due:
        await retry_conflicts(lambda: end(promotion_id), attempts=deps.bonus.attempts)  # noqa: B023
    return len(due)


async def list_promotions(
    deps: OfferDeps,
    program_id: str,
    status: str,
    after: tuple[int, float, str] | None,
    limit: int,
) -> tuple[list[Promotion], tuple[int, float, str] | None]:
    """A page and the position the next one starts after (None: last page)."""
    async with deps.bonus.uow() as uow:
        await _program(uow, program_id, for_update=False)
        rows = await uow.promotions_page(program_id, status, after, limit + 1)
    page = rows[:limit]
    following = None
    if len(rows) > limit:
        last = page[-1]
        following = (last.priority, last.created_at, last.promotion_id)
    return page, following


# -------------------------------------------------------------------------------- quotes


@dataclass(frozen=True)
class QuoteRequest:
    program_id: str
    customer_id: str  # "" when unknown or absent
    cart: tuple[CartLine, ...]
    cart_currency: str  # of the cart's prices ("" for an empty cart)
    context: ContextFacts
    context_message: common_pb2.Context
    coupons: tuple[str, ...]


@dataclass(frozen=True)
class QuoteResult:
    quote: Quote
    program: Program
    quote_id: str
    expires_at: float


@dataclass(frozen=True)
class AppliedClaim:
    promotion_id: str
    discount_micros: int
    bonus_points: int


@dataclass(frozen=True)
class Claim:
    """What a quote id carries (signed): who it was for, until when, what applied."""

    quote_id: str
    program_id: str
    customer_id: str
    expires_at: float
    applied: tuple[AppliedClaim, ...]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, payload: bytes) -> str:
    return _b64(hmac.new(key, payload, hashlib.sha256).digest())


def _quote_id(key: bytes, claim: Claim) -> str:
    payload = json.dumps(
        [
            1,
            claim.program_id,
            claim.customer_id,
            claim.expires_at,
            [[a.promotion_id, a.discount_micros, a.bonus_points] for a in claim.applied],
        ],
        separators=(",", ":"),
    ).encode()
    return f"{_b64(payload)}.{_sign(key, payload)}"


def read_quote_id(key: bytes, quote_id: str, field: str = "quote_id") -> Claim:
    """The claim a quote id carries; INVALID_ARGUMENT for anything this service did not sign
    (forged, altered, truncated). Expiry is checked by the accrual (a retried accrual returns
    its first result even after the quote expired)."""
    body, dot, signature = quote_id.partition(".")
    try:
        payload = _unb64(body)
        good = dot and hmac.compare_digest(_sign(key, payload), signature)
    except (ValueError, TypeError):
        good = False
    if not good:
        raise InvalidArgument(field, "is not a quote id issued by this service")
    try:
        version, program_id, customer_id, expires_at, applied = json.loads(payload)
        claim = Claim(
            quote_id,
            str(program_id),
            str(customer_id),
            float(expires_at),
            tuple(AppliedClaim(str(p), int(d), int(b)) for p, d, b in applied),
        )
    except (ValueError, TypeError) as exc:  # signed by us, so only an older format
        raise InvalidArgument(field, "is a quote id in a format no longer accepted") from exc
    if version != 1:
        raise InvalidArgument(field, "is a quote id in a format no longer accepted")
    return claim


_EMPTY_PROFILE = CustomerFacts(customer_id="")
# Segmentation's EvaluateConditions takes at most 100 conditions a call.
SIGNALS_BATCH = 100


def _context_atom(context: ContextFacts, now: float) -> Any:
    """ContextCond -> verdict, by segmentation's own evaluator (one matcher, not two)."""
    verdicts: dict[Node, bool] = {}

    def atom(node: Node) -> bool:
        if node not in verdicts:
            verdicts[node] = evaluate(node, _EMPTY_PROFILE, (), context, now, _no_segment).matched
        return verdicts[node]

    return atom


def _no_segment(_segment_id: str) -> bool:
    return False


def _public_answers(config: ProgramConfig, now: float) -> dict[bytes, bool]:
    """Customer atoms answered for an empty profile (unknown customers): no segment, no
    events, every property absent."""
    answers: dict[bytes, bool] = {}
    for c in config.promotions:
        for node, key in c.customer_atoms.items():
            if key not in answers and not isinstance(node, ContextCond):
                answers[key] = evaluate(node, _EMPTY_PROFILE, (), None, now, _no_segment).matched
    return answers


async def _customer(
    deps: OfferDeps, config: ProgramConfig, request: QuoteRequest, now: float
) -> Customer:
    program = config.program
    if not request.customer_id:
        return Customer("", _public_answers(config, now))

    async def account() -> tuple[int, int, str, float, float, dict[str, int]]:
        async with deps.bonus.uow() as uow:
            state = await uow.account(program.program_id, request.customer_id)
            uses = (
                await uow.customer_uses(
                    program.program_id,
                    request.customer_id,
                    [
                        c.promotion.promotion_id
                        for c in config.promotions
                        if c.promotion.max_uses_per_customer
                    ],
                )
                if config.limited
                else {}
            )
            if state is None:
                return 0, 0, "", 0.0, 1.0, uses
            earned = await uow.earned_since(
                program.program_id, request.customer_id, now - program.tier_period
            )
            lots = await uow.lots(program.program_id, request.customer_id)
        standing = tier_standing(program, earned)
        balance = sum(lot.remaining for lot in lots if lot.spendable(now))
        tier = standing.tier
        return (
            balance,
            earned,
            standing.name,
            tier.discount_percent if tier else 0.0,
            standing.multiplier,
            uses,
        )

    # Only the atoms of promotions that could apply now (live, coupon given), and the
    # segment-multiplier segments: each distinct atom once.
    given = {coupon_key(code) for code in request.coupons}
    wanted: dict[bytes, None] = {}
    for c in config.promotions:
        p = c.promotion
        if p.live_at(now) and (not p.coupon_code or coupon_key(p.coupon_code) in given):
            wanted.update(dict.fromkeys(c.customer_atoms.values()))
    wanted.update(dict.fromkeys(config.segment_atoms.values()))
    keys = list(wanted)

    async def signals() -> list[bool] | None:
        if not keys:
            return []
        # One call, or one per SIGNALS_BATCH atoms at once (segmentation's limit per call).
        chunks = [keys[i : i + SIGNALS_BATCH] for i in range(0, len(keys), SIGNALS_BATCH)]
        answers = await asyncio.gather(
            *(
                deps.bonus.signals.conditions(
                    request.customer_id,
                    [config.customer_atoms[k] for k in chunk],
                    request.context_message,
                    deps.signals_timeout,
                )
                for chunk in chunks
            )
        )
        if any(a is None or len(a) != len(chunk) for a, chunk in zip(answers, chunks, strict=True)):
            return None
        return [verdict for a in answers if a is not None for verdict in a]

    (balance, _earned, tier, discount, multiplier, uses), verdicts = await asyncio.gather(
        account(), signals()
    )
    answers: Mapping[bytes, bool] | None = None
    segment_multiplier = 1.0
    if verdicts is not None:
        # atoms not asked (promotions that cannot apply now) read as false
        answers = dict(zip(keys, verdicts, strict=True))
        matched = [
            program.segment_multipliers[s]
            for s, key in config.segment_atoms.items()
            if answers.get(key, False)
        ]
        segment_multiplier = max(matched, default=1.0)
    return Customer(
        request.customer_id,
        answers,
        tier_name=tier,
        tier_discount_percent=discount,
        tier_multiplier=multiplier,
        segment_multiplier=segment_multiplier,
        balance=balance,
        uses=uses,
    )


async def quote_offer(deps: OfferDeps, request: QuoteRequest) -> QuoteResult:
    config = await deps.config.get(request.program_id)
    if config is None:
        raise NotFound(f"no program {request.program_id!r}", reason="PROGRAM_NOT_FOUND")
    program = config.program
    if request.cart_currency and request.cart_currency != program.currency:
        raise InvalidArgument(
            "context.cart[0].unit_price.currency",
            f"must be the program's currency {program.currency}",
            reason="CURRENCY_MISMATCH",
        )
    now = deps.bonus.clock()
    customer = await _customer(deps, config, request, now)
    quote = price_cart(
        program,
        config.promotions,
        request.cart,
        request.coupons,
        customer,
        _context_atom(request.context, now),
        now,
    )
    if quote.points_to_earn > MAX_POINTS or any(x.points_to_earn > MAX_POINTS for x in quote.lines):
        raise InvalidArgument("context.cart", f"earns more than {MAX_POINTS} points")
    if request.customer_id and quote.exposures:
        deps.exposures.add(program.program_id, request.customer_id, quote.exposures, now)
    expires_at = now + deps.quote_ttl
    claim = Claim(
        "",
        program.program_id,
        request.customer_id,
        expires_at,
        tuple(
            AppliedClaim(a.promotion.promotion_id, a.discount_micros, a.bonus_points)
            for a in quote.applied
        ),
    )
    return QuoteResult(quote, program, _quote_id(deps.quote_key, claim), expires_at)


# ---------------------------------------------------------------- budgets, at the accrual


def claimed_promotions(claim: Claim) -> tuple[str, ...]:
    """The promotions whose uses `claim_quote` counts for a quote (Transaction.promotion_ids)."""
    return tuple(sorted({a.promotion_id for a in claim.applied}))


async def claim_quote(
    uow: BonusUnitOfWork,
    claim: Claim,
    program_id: str,
    customer_id: str,
    order_id: str,
    transaction_id: str,
    now: float,
    *,
    late: bool = False,
) -> int:
    """Counts the uses of the quote's promotions for this accrual, in its unit of work, and
    returns the bonus points its POINTS_MULTIPLIER effects add. The promotions' rows are
    locked in id order first, so concurrent accruals (in any replica) count one at a time;
    when a budget or a per-customer limit would be overshot the accrual is refused
    (FAILED_PRECONDITION) and nothing moves. A promotion whose budget is reached ends here
    (PromotionChanged: every cache drops it).

    `late`: the accrual `transaction_id` exists already (a purchase event accrued the order
    before the shop's Accrue with its quote): when it has uses counted (an earlier call, a
    quote the event carried), checked under the promotions' locks, nothing is counted again
    (uses are one per promotion and order)."""
    if claim.program_id != program_id:
        raise InvalidArgument("quote_id", "was issued for another program")
    if claim.customer_id != customer_id:
        raise InvalidArgument("quote_id", "was issued for another customer")
    if claim.expires_at <= now:
        raise FailedPrecondition("the quote has expired", reason="QUOTE_EXPIRED")
    if not claim.applied:
        return 0
    locked = {
        p.promotion_id: p
        for p in await uow.lock_promotions([a.promotion_id for a in claim.applied])
    }
    if late and await uow.uses_of(transaction_id):
        return 0
    limited = [p.promotion_id for p in locked.values() if p.max_uses_per_customer]
    mine = await uow.customer_uses(program_id, customer_id, limited) if limited else {}
    for a in claim.applied:
        p = locked.get(a.promotion_id)
        if p is None:
            raise FailedPrecondition(
                f"promotion {a.promotion_id} no longer exists", reason="PROMOTION_NOT_FOUND"
            )
        given = p.discount_given_micros + a.discount_micros
        if (
            (p.max_uses and p.uses + 1 > p.max_uses)
            or (p.max_discount_micros and given > p.max_discount_micros)
            # the counter is an int64 column: past it is a budget spent, never an overflow
            or given > INT64_MAX
        ):
            raise FailedPrecondition(
                f"promotion {p.promotion_id} has spent its budget",
                reason="PROMOTION_BUDGET_SPENT",
                metadata={"promotion_id": p.promotion_id},
            )
        if p.max_uses_per_customer and mine.get(p.promotion_id, 0) + 1 > p.max_uses_per_customer:
            raise FailedPrecondition(
                f"the customer has used promotion {p.promotion_id} as often as it allows",
                reason="PROMOTION_LIMIT_REACHED",
                metadata={"promotion_id": p.promotion_id},
            )
    await uow.add_uses(
        [
            PromotionUse(
                a.promotion_id,
                order_id,
                program_id,
                customer_id,
                transaction_id,
                a.discount_micros,
                a.bonus_points,
                now,
            )
            for a in claim.applied
        ]
    )
    for a in claim.applied:
        p = locked[a.promotion_id]
        counted = replace(
            p, uses=p.uses + 1, discount_given_micros=p.discount_given_micros + a.discount_micros
        )
        if counted.budget_spent() and counted.status != "ENDED":
            counted = replace(counted, status="ENDED", updated_at=now)
            await uow.save_promotion(counted)
            await uow.announce_promotion(counted)
        else:
            await uow.save_promotion(counted)
    return sum(a.bonus_points for a in claim.applied)


async def note_conversion(
    uow: BonusUnitOfWork,
    program_id: str,
    customer_id: str,
    order_id: str,
    total_micros: int,
    now: float,
) -> None:
    """An accrual in its unit of work: the order counts for the holdout reports of the
    promotions the customer was exposed to (one indexed read; a write only when exposed)."""
    if await uow.exposed(program_id, customer_id):
        await uow.add_conversion(program_id, order_id, customer_id, total_micros, now)


async def flush_exposures(deps: OfferDeps) -> int:
    return await deps.exposures.flush(deps.bonus.uow)


@dataclass(frozen=True)
class Report:
    promotion: Promotion
    currency: str
    groups: dict[bool, GroupFigures]  # held_out -> figures


async def promotion_report(deps: OfferDeps, promotion_id: str) -> Report:
    await flush_exposures(deps)  # what this process saw so far counts too
    async with deps.bonus.uow() as uow:
        promotion = await _promotion(uow, promotion_id)
        program = await _program(uow, promotion.program_id, for_update=False)
        groups = await uow.holdout_report(promotion_id)
    return Report(promotion, program.currency, groups)


async def release_quote(uow: BonusUnitOfWork, transaction_id: str) -> None:
    """A whole accrual reversed: the uses it counted are released (counters back, under the
    promotions' row locks). A promotion that ended stays ENDED (final)."""
    uses = await uow.uses_of(transaction_id)
    if not uses:
        return
    locked = {p.promotion_id: p for p in await uow.lock_promotions([u.promotion_id for u in uses])}
    for u in uses:
        p = locked.get(u.promotion_id)
        if p is not None:
            await uow.save_promotion(
                replace(
                    p,
                    uses=max(0, p.uses - 1),
                    discount_given_micros=max(0, p.discount_given_micros - u.discount_micros),
                )
            )
    await uow.drop_uses(transaction_id)
