"""Responses and events out: domain values -> protobuf."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from backcrm.bonus.v1 import bonus_service_pb2 as pb

from libs.db import OutboxMessage
from libs.protoutil import enum, money, ts
from libs.topics import BONUS_PROGRAMS, BONUS_PROMOTIONS, BONUS_TIERS, BONUS_TRANSACTIONS
from services.bonus.domain import AccountView, Movement, Program, TierChange
from services.bonus.offers import QuoteResult, Report
from services.bonus.ports import GroupFigures
from services.bonus.pricing import CURRENCY_EXPONENTS, minor_unit_micros, round_half_up
from services.bonus.promotions import Promotion

__all__ = [
    "account_to_proto",
    "encode_movement",
    "encode_program",
    "encode_promotion",
    "encode_tier",
    "program_to_proto",
    "promotion_to_proto",
    "quote_to_proto",
    "report_to_proto",
    "transaction_to_proto",
]


def program_to_proto(program: Program) -> pb.Program:
    return pb.Program(
        program_id=program.program_id,
        name=program.name,
        currency=program.currency,
        points_per_unit=program.points_per_unit,
        category_multipliers=program.category_multipliers,
        segment_multipliers=program.segment_multipliers,
        tiers=[
            pb.Tier(
                name=t.name,
                threshold_points=t.threshold_points,
                discount_percent=t.discount_percent,
                points_multiplier=t.points_multiplier,
            )
            for t in program.tiers
        ],
        tier_period_days=program.tier_period_days,
        welcome_points=program.welcome_points,
        expiry_days=program.expiry_days,
        pending_days=program.pending_days,
        point_value=money(program.point_value_micros, program.currency),
        max_redeem_percent=program.max_redeem_percent,
        created_at=ts(program.created_at),
        updated_at=ts(program.updated_at),
    )


def transaction_to_proto(m: Movement) -> pb.Transaction:
    out = pb.Transaction(
        transaction_id=m.transaction_id,
        program_id=m.program_id,
        customer_id=m.customer_id,
        type=enum(pb.TransactionType, f"TRANSACTION_TYPE_{m.type}"),
        points=m.points,
        order_id=m.order_id,
        reversed_transaction_id=m.reversed_transaction_id,
        idempotency_key=m.idempotency_key,
        created_at=ts(m.created_at),
        balance_after=m.balance_after,
        pending_after=m.pending_after,
        promotion_ids=m.promotion_ids,
        description=m.description,
    )
    if m.available_at is not None:
        out.available_at.CopyFrom(ts(m.available_at))
    if m.expires_at is not None:
        out.expires_at.CopyFrom(ts(m.expires_at))
    return out


def account_to_proto(view: AccountView) -> pb.Account:
    out = pb.Account(
        program_id=view.program_id,
        customer_id=view.customer_id,
        enrolled=view.enrolled,
        balance=view.balance,
        pending=view.pending,
        expiring_soon=view.expiring_soon,
        lifetime_points=view.lifetime_points,
    )
    if view.standing is not None:
        out.tier = view.standing.name
        out.tier_points = view.standing.points
        out.next_tier = view.standing.next_tier.name if view.standing.next_tier else ""
        out.points_to_next_tier = view.standing.points_to_next
    if view.next_expiry_at is not None:
        out.next_expiry_at.CopyFrom(ts(view.next_expiry_at))
    if view.enrolled_at is not None:
        out.enrolled_at.CopyFrom(ts(view.enrolled_at))
    return out


# The outbox's customer_id column is for cache eviction before publishing; bonus caches
# nothing per customer, so its rows name none.
def encode_movement(movement: Movement) -> OutboxMessage:
    payload = pb.TransactionRecorded(transaction=transaction_to_proto(movement))
    return (*BONUS_TRANSACTIONS.outbox_row(payload), "")


def encode_program(program: Program) -> OutboxMessage:
    payload = pb.ProgramChanged(program_id=program.program_id, changed_at=ts(program.updated_at))
    return (*BONUS_PROGRAMS.outbox_row(payload), "")


def promotion_to_proto(p: Promotion, currency: str) -> pb.Promotion:
    """`currency`: the program's (every amount of a promotion is in it)."""
    e = p.effect
    effect = pb.Effect(
        type=enum(pb.EffectType, f"EFFECT_TYPE_{e.type}"),
        percent=e.percent,
        gift_sku=e.gift_sku,
        multiplier=e.multiplier,
        skus=e.skus,
        categories=e.categories,
        gift_quantity=e.gift_quantity,
    )
    if e.type == "AMOUNT_OFF":
        effect.amount.CopyFrom(money(e.amount_micros, currency))
    if e.type == "FIXED_PRICE":
        effect.price.CopyFrom(money(e.price_micros, currency))
    out = pb.Promotion(
        promotion_id=p.promotion_id,
        program_id=p.program_id,
        name=p.name,
        description=p.description,
        effect=effect,
        priority=p.priority,
        exclusive=p.exclusive,
        budget=pb.PromotionBudget(
            max_uses=p.max_uses, max_uses_per_customer=p.max_uses_per_customer
        ),
        coupon_code=p.coupon_code,
        status=enum(pb.PromotionStatus, f"PROMOTION_STATUS_{p.status}"),
        uses=p.uses,
        discount_given=money(p.discount_given_micros, currency),
        created_at=ts(p.created_at),
        updated_at=ts(p.updated_at),
        stacking=enum(pb.StackingMode, f"STACKING_MODE_{p.stacking}"),
        price_base=enum(pb.PriceBase, f"PRICE_BASE_{p.price_base}"),
        holdout_percent=p.holdout_percent,
    )
    if p.condition:
        out.condition.ParseFromString(p.condition)
    if p.max_discount_micros:
        out.budget.max_discount.CopyFrom(money(p.max_discount_micros, currency))
    if p.start_time is not None:
        out.schedule.start_time.CopyFrom(ts(p.start_time))
    if p.end_time is not None:
        out.schedule.end_time.CopyFrom(ts(p.end_time))
    return out


def encode_promotion(p: Promotion) -> OutboxMessage:
    payload = pb.PromotionChanged(
        promotion_id=p.promotion_id,
        program_id=p.program_id,
        status=enum(pb.PromotionStatus, f"PROMOTION_STATUS_{p.status}"),
        changed_at=ts(p.updated_at),
    )
    return (*BONUS_PROMOTIONS.outbox_row(payload), "")


def _effect_type(p: Promotion) -> Any:
    return enum(pb.EffectType, f"EFFECT_TYPE_{p.effect.type}")


def quote_to_proto(result: QuoteResult, customer_id: str, explain: bool) -> pb.QuoteOfferResponse:
    q, currency = result.quote, result.program.currency
    out = pb.QuoteOfferResponse(
        quote_id=result.quote_id,
        expires_at=ts(result.expires_at),
        lines=[
            pb.QuoteLine(
                sku=line.sku,
                quantity=line.quantity,
                base_price=money(line.base_price_micros, currency),
                personal_price=money(line.personal_price_micros, currency),
                line_total=money(line.line_total_micros, currency),
                promotion_ids=line.promotion_ids,
                points_to_earn=line.points_to_earn,
            )
            for line in q.lines
        ],
        applied=[
            pb.AppliedPromotion(
                promotion_id=a.promotion.promotion_id,
                name=a.promotion.name,
                effect_type=_effect_type(a.promotion),
                discount=money(a.discount_micros, currency),
                bonus_points=a.bonus_points,
                skus=a.skus,
                reason=a.reason,
            )
            for a in q.applied
        ],
        gifts=[pb.Gift(sku=sku, quantity=n, promotion_id=pid) for sku, n, pid in q.gifts],
        points_to_earn=q.points_to_earn,
        points_spendable=q.points_spendable,
        points_spendable_value=money(q.points_spendable_value_micros, currency),
        subtotal=money(q.subtotal_micros, currency),
        discount=money(q.discount_micros, currency),
        total=money(q.total_micros, currency),
        tier=q.tier,
        invalid_coupon_codes=q.invalid_coupons,
        customer_id=customer_id,
        degraded=q.degraded,
    )
    for miss in q.near_misses:
        near = out.near_misses.add(
            promotion_id=miss.promotion.promotion_id,
            name=miss.promotion.name,
            effect_type=_effect_type(miss.promotion),
            missing_quantity=miss.missing_quantity,
        )
        parts = []
        if miss.missing_micros:
            near.missing_amount.CopyFrom(money(miss.missing_micros, currency))
            parts.append(f"{_amount(miss.missing_micros, currency)} {currency} more")
        if miss.missing_quantity:
            parts.append(f"{miss.missing_quantity} more item(s)")
        near.message = f"add {' and '.join(parts)} for {miss.promotion.name}"
    if explain:
        out.not_applied.extend(
            pb.NotApplied(promotion_id=p.promotion_id, name=p.name, reason=reason)
            for p, reason in q.not_applied
        )
    return out


def _amount(micros: int, currency: str) -> str:
    places = CURRENCY_EXPONENTS.get(currency, 2)
    units, rest = divmod(micros, 1_000_000)
    if not places:
        return str(units)
    return f"{units}.{rest // 10 ** (6 - places):0{places}d}"


def _group(figures: GroupFigures, currency: str) -> pb.PromotionGroupReport:
    average = 0
    if figures.orders:
        average = round_half_up(
            Decimal(figures.revenue_micros) / figures.orders, minor_unit_micros(currency)
        )
    return pb.PromotionGroupReport(
        customers=figures.customers,
        converted_customers=figures.converted,
        orders=figures.orders,
        conversion_rate=figures.converted / figures.customers if figures.customers else 0.0,
        revenue=money(figures.revenue_micros, currency),
        average_order_value=money(average, currency),
    )


def report_to_proto(report: Report) -> pb.GetPromotionReportResponse:
    return pb.GetPromotionReportResponse(
        promotion_id=report.promotion.promotion_id,
        holdout_percent=report.promotion.holdout_percent,
        treated=_group(report.groups[False], report.currency),
        held_out=_group(report.groups[True], report.currency),
    )


def encode_tier(change: TierChange) -> OutboxMessage:
    payload = pb.TierChanged(
        program_id=change.program_id,
        customer_id=change.customer_id,
        previous_tier=change.previous,
        tier=change.tier,
        changed_at=ts(change.at),
        tier_points=change.points,
    )
    return (*BONUS_TIERS.outbox_row(payload), "")
