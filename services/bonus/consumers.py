"""What bonus consumes from the bus (consumer group `bonus`): profile events in, handlers out.

Like the entrypoint for RPCs, this module only translates (a payload into the handlers'
values) and calls handlers; every handler is idempotent, since the bus delivers at least once.

- `profile.deleted` erases the customer (`handlers.erase_customer`).
- `profile.merged` moves the source's accounts to the target (`merges.merge_customers`).
- `bonus.tiers` (its own topic) writes the tier to the profile (`tiers.publish_tier`).
- `profile.changed` carries the events behind a change: each PURCHASE with an order accrues
  or, when all its lines are returned units, takes back (`purchases.record_purchase`).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable

from backcrm.common.v1.common_pb2 import EventEnvelope
from backcrm.profile.v1 import profile_service_pb2 as ppb

from libs.bus.port import EventBus, Subscription
from libs.protoutil import seconds_of
from libs.topics import BONUS_TIERS, PROFILE_CHANGED, PROFILE_DELETED, PROFILE_MERGED
from services.bonus.domain import OrderLine
from services.bonus.handlers import BonusDeps, erase_customer
from services.bonus.merges import merge_customers
from services.bonus.ports import ProfileTraits
from services.bonus.purchases import PurchaseEvent, record_purchase
from services.bonus.tiers import publish_tier

__all__ = ["GROUP", "ORIGINAL_ORDER_PROPERTY", "QUOTE_PROPERTY", "purchases_in", "subscribe"]

log = logging.getLogger(__name__)

GROUP = "bonus"
# The event property naming the order a return belongs to (docs/bonus.md, "Purchases").
ORIGINAL_ORDER_PROPERTY = "original_order_id"
# The event property carrying the quote id the order was priced with (docs/bonus.md).
QUOTE_PROPERTY = "quote_id"


def purchases_in(change: ppb.ProfileChanged) -> list[PurchaseEvent]:
    """The PURCHASE events of a change, as bonus reads them. Profile validated them when it
    accepted them; an order bonus cannot read (no lines, amounts in two currencies) is
    logged and left out."""
    out: list[PurchaseEvent] = []
    for event in change.events:
        if event.type != ppb.EVENT_TYPE_PURCHASE or not event.HasField("order"):
            continue
        order = event.order
        currencies = {order.total.currency} if order.total.currency else set()
        currencies |= {line.unit_price.currency for line in order.lines}
        lines = tuple(
            OrderLine(line.category, line.quantity, line.unit_price.units_micros)
            for line in order.lines
            if line.quantity
        )
        if not lines or len(currencies) != 1 or not order.order_id:
            log.warning("purchase event %s has no order bonus can read", event.event_id)
            continue
        original = event.properties.fields.get(ORIGINAL_ORDER_PROPERTY)
        quote = event.properties.fields.get(QUOTE_PROPERTY)
        out.append(
            PurchaseEvent(
                event_id=event.event_id,
                customer_id=change.customer_id,
                order_id=order.order_id,
                lines=lines,
                currency=currencies.pop(),
                total_micros=order.total.units_micros,
                original_order_id=original.string_value if original is not None else "",
                recorded_at=seconds_of(change.changed_at)
                if change.HasField("changed_at")
                else None,
                quote_id=quote.string_value if quote is not None else "",
            )
        )
    return out


async def subscribe(bus: EventBus, deps: BonusDeps, traits: ProfileTraits) -> list[Subscription]:
    """Starts every bonus consumer; the caller stops the subscriptions."""
    consumer = f"{socket.gethostname()}-{os.getpid()}"

    async def on_deleted(envelope: EventEnvelope) -> None:
        await erase_customer(deps, PROFILE_DELETED.unpack(envelope).customer_id)

    async def on_merged(envelope: EventEnvelope) -> None:
        merged = PROFILE_MERGED.unpack(envelope)
        await merge_customers(deps, merged.source_customer_id, merged.target_customer_id)

    async def on_tier(envelope: EventEnvelope) -> None:
        changed = BONUS_TIERS.unpack(envelope)
        await publish_tier(deps, traits, changed.program_id, changed.customer_id)

    async def on_changed(envelope: EventEnvelope) -> None:
        for purchase in purchases_in(PROFILE_CHANGED.unpack(envelope)):
            await record_purchase(deps, purchase)

    handlers: list[tuple[str, Callable[[EventEnvelope], Awaitable[None]]]] = [
        (PROFILE_DELETED.name, on_deleted),
        (PROFILE_MERGED.name, on_merged),
        (PROFILE_CHANGED.name, on_changed),
        (BONUS_TIERS.name, on_tier),
    ]
    return [await bus.subscribe(topic, GROUP, consumer, handler) for topic, handler in handlers]
