"""Alembic environment: runs the migrations over the async engine of the configured URL."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util

from alembic import context
from sqlalchemy.engine import Connection

from libs.db import Base, make_engine

# Autogenerate compares against the tables of every service named by the caller (a service
# without storage has no models module).
for _service in context.config.attributes["services"]:
    if importlib.util.find_spec(f"services.{_service}.models") is not None:
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
