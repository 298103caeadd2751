"""SQLAlchemy 2 async storage shared by the services: engine, declarative base, health ping,
dialect-aware IN conditions, and the unit of work every storage adapter builds on
(`libs.db.unit_of_work`).

SQLite (embedded default) gets WAL and a busy timeout so one writer and many readers coexist;
PostgreSQL gets a connection pool sized for a pod.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Integer,
    MetaData,
    any_,
    event,
    func,
    literal,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql import ColumnElement

from libs.db.unit_of_work import CHUNK, OutboxMessage, SqlUnitOfWork, chunks, outbox_from_arrays

__all__ = [
    "CHUNK",
    "Base",
    "BigId",
    "OutboxMessage",
    "SqlUnitOfWork",
    "among",
    "chunks",
    "make_engine",
    "make_sessionmaker",
    "outbox_from_arrays",
    "pairs_among",
    "ping",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


BigId = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER only


def make_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
        # One connection: SQLite has one writer anyway, and a single connection serialises
        # read-modify-write units of work instead of failing them with SQLITE_BUSY.
        kwargs.update(pool_size=1, max_overflow=0, pool_timeout=60)
    else:
        # No pre-ping: it costs a round trip per checkout; a connection that died is discarded
        # when it fails, and the call answers UNAVAILABLE, which clients retry.
        kwargs.update(pool_size=10, max_overflow=10, pool_recycle=1800)
    # orjson: JSON columns are written on every event; the stdlib encoder was a tenth of it.
    kwargs.update(json_serializer=_json_dumps, json_deserializer=orjson.loads)
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def among(column: Any, values: Sequence[Any], dialect: str) -> ColumnElement[bool]:
    """`column IN values`, as `= ANY(array)` on PostgreSQL.

    One statement text whatever the number of values, so asyncpg prepares it once; an IN list
    renders (and prepares) a new statement for every length.
    """
    if dialect == "postgresql":
        return column == any_(literal(list(values), ARRAY(column.type)))  # type: ignore[no-any-return]
    return column.in_(values)  # type: ignore[no-any-return]


def pairs_among(
    first: Any, second: Any, pairs: Sequence[tuple[Any, Any]], dialect: str
) -> ColumnElement[bool]:
    """`(first, second) IN pairs`, on PostgreSQL via unnest of two arrays (one statement text)."""
    if dialect == "postgresql":
        keys = (
            func.unnest(
                literal([p[0] for p in pairs], ARRAY(first.type)),
                literal([p[1] for p in pairs], ARRAY(second.type)),
            )
            .table_valued("a", "b")
            .render_derived()
        )
        return tuple_(first, second).in_(select(keys.c.a, keys.c.b))
    return tuple_(first, second).in_(pairs)
