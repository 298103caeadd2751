"""Alembic environment: runs the migrations over the async engine of the configured URL."""

from __future__ import annotations

import asyncio
import contextlib
import importlib

from alembic import context
from sqlalchemy.engine import Connection

from libs.db import Base, make_engine
from libs.db.migrate import SERVICES

# Autogenerate compares against every service's tables.
for _service in SERVICES:
    with contextlib.suppress(ModuleNotFoundError):
        importlib.import_module(f"services.{_service}.models")


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = make_engine(context.config.attributes["database_url"])
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


asyncio.run(_main())
