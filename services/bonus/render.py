"""Responses and events out: domain values -> protobuf."""

from __future__ import annotations

from backcrm.bonus.v1 import bonus_service_pb2 as pb

from libs.db import OutboxMessage
from libs.protoutil import enum, money, ts
from libs.topics import BONUS_PROGRAMS, BONUS_TIERS, BONUS_TRANSACTIONS
from services.bonus.domain import AccountView, Movement, Program, TierChange

__all__ = [
    "account_to_proto",
    "encode_movement",
    "encode_program",
    "encode_tier",
    "program_to_proto",
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
