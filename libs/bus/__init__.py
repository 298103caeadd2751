"""The event bus port, envelope helpers, and the factory that picks the adapter."""

from __future__ import annotations

from libs.bus.envelope import extracted_context, new_envelope, unpack
from libs.bus.memory import InProcessBus
from libs.bus.port import EventBus, Handler, Subscription
from libs.config import Settings

__all__ = [
    "EventBus",
    "Handler",
    "InProcessBus",
    "Subscription",
    "extracted_context",
    "make_bus",
    "new_envelope",
    "unpack",
]


def make_bus(settings: Settings) -> EventBus:
    """Redis Streams when REDIS_URL is set, else the in-process bus."""
    if settings.embedded_bus:
        return InProcessBus(
            retention_seconds=settings.bus_retention_seconds,
            max_watchers=settings.watch_max_watchers,
            watch_buffer=settings.watch_buffer,
        )
    # Imported here so the embedded mode never loads the Redis client.
    from libs.bus.redis_streams import RedisStreamsBus

    return RedisStreamsBus(
        settings.redis_url,
        prefix=settings.redis_prefix,
        max_len=settings.bus_max_len,
        retention_seconds=settings.bus_retention_seconds,
        trim_seconds=settings.bus_trim_seconds,
        max_watchers=settings.watch_max_watchers,
        watch_buffer=settings.watch_buffer,
    )
