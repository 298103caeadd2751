"""The SQL unit of work a service's storage adapter is built on: one session, one transaction.

A service subclasses `SqlUnitOfWork` and adds its queries; the plumbing they share is here:

- the session, opened by `async with` and closed on the way out, which rolls back whatever
  was not committed;
- lost races: a unique or foreign key violated by a concurrent writer, a PostgreSQL deadlock
  or serialization failure, on a statement or at commit, raise `libs.errors.Conflict`, which
  tells the caller to run the whole unit of work again (`libs.retry.retry_conflicts`);
- `_insert`, the dialect's INSERT (both have ON CONFLICT), and `chunks` that keep IN lists and
  multi-row inserts under every driver's parameter limit;
- the outbox: `write_outbox` adds rows to the service's outbox table in this transaction, and
  a commit that wrote some nudges the relay (`after_commit`) to publish them at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Self, TypeVar

from sqlalchemy import LargeBinary, String, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.errors import Conflict

__all__ = ["CHUNK", "OutboxMessage", "SqlUnitOfWork", "chunks", "outbox_from_arrays"]

CHUNK = 500  # keeps IN lists and multi-row inserts under every driver's parameter limit
# PostgreSQL's serialization failure and deadlock: the transaction lost a race and was rolled
# back; re-running the unit of work is the documented answer.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})

# (topic, serialized EventEnvelope, customer id): one row of a service's outbox table
OutboxMessage = tuple[str, bytes, str]

T = TypeVar("T")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _conflict(exc: BaseException) -> Conflict | None:
    """The Conflict a driver error stands for, if it is a lost race."""
    if not isinstance(exc, DBAPIError):
        return None
    if (
        isinstance(exc, IntegrityError)
        or getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES
    ):
        return Conflict(str(exc.orig))
    return None


def outbox_from_arrays(outbox: Any) -> Any:
    """PostgreSQL: the INSERT of rows of an outbox table given as three arrays
    (`SqlUnitOfWork.outbox_arrays`), numbered in the order given (INSERT … SELECT … ORDER BY,
    the technique of SQLAlchemy's `sort_by_parameter_order`), for an adapter to attach its own
    writes to as CTEs and send them with the outbox rows in one statement
    (`SqlUnitOfWork.execute_with_outbox`)."""
    rows = (
        func.unnest(
            bindparam("outbox_topics", type_=ARRAY(String)),
            bindparam("outbox_payloads", type_=ARRAY(LargeBinary)),
            bindparam("outbox_customers", type_=ARRAY(String)),
        )
        .table_valued("topic", "payload", "customer_id", with_ordinality="n")
        .render_derived()
    )
    ordered = select(rows.c.topic, rows.c.payload, rows.c.customer_id).order_by(rows.c.n)
    table = getattr(outbox, "__table__", outbox)
    return postgresql.insert(table).from_select(["topic", "payload", "customer_id"], ordered)


class SqlUnitOfWork:
    """One transaction over a service's tables; subclasses add the queries."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Any,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        """`outbox`: the service's outbox table (a mapped class with topic, payload and
        customer_id); `after_commit`: the relay's nudge."""
        self._sessions = sessions
        self._outbox = getattr(outbox, "__table__", outbox)
        self._after_commit = after_commit
        self._session: AsyncSession | None = None
        self._dialect = ""
        self._wrote_outbox = False

    async def __aenter__(self) -> Self:
        self._session = self._sessions()
        self._dialect = self._session.get_bind().dialect.name
        self._wrote_outbox = False
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._session is not None
        await self._session.close()  # rolls back what was not committed
        self._session = None
        # A unique key taken by a concurrent writer, a row deleted under a child row (foreign
        # key), a deadlock: the caller may run the whole unit again.
        if isinstance(exc, BaseException) and (conflict := _conflict(exc)) is not None:
            raise conflict from exc

    @property
    def s(self) -> AsyncSession:
        assert self._session is not None, "use the unit of work as an async context manager"
        return self._session

    def _insert(self, table: Any) -> Any:
        # Core tables, not the ORM classes: executemany of one cached statement is the fast
        # path for the hundreds of rows a call may write (no per-row ORM work).
        table = getattr(table, "__table__", table)
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(table)

    async def write_outbox(self, messages: Iterable[OutboxMessage]) -> None:
        """Outbox rows, published by the relay once this unit of work commits."""
        rows = [{"topic": t, "payload": p, "customer_id": c} for t, p, c in messages]
        if rows:
            # With RETURNING, SQLAlchemy sends the rows as one multi-row INSERT ("insertmanyvalues")
            # instead of one INSERT per row; sort_by_parameter_order makes PostgreSQL number
            # them in the order given, which is the order the relay publishes them in.
            ids = self._outbox.c.id
            statement = self._insert(self._outbox).returning(ids, sort_by_parameter_order=True)
            await self.s.execute(statement, rows)
            self._wrote_outbox = True

    @staticmethod
    def outbox_arrays(messages: Sequence[OutboxMessage]) -> dict[str, list[Any]]:
        """The parameters of `outbox_from_arrays` for these rows."""
        return {
            "outbox_topics": [t for t, _, _ in messages],
            "outbox_payloads": [p for _, p, _ in messages],
            "outbox_customers": [c for _, _, c in messages],
        }

    async def execute_with_outbox(self, statement: Any, params: dict[str, Any]) -> None:
        """Run a statement built on `outbox_from_arrays`: the commit nudges the relay."""
        await self.s.execute(statement, params)
        self._wrote_outbox = True

    async def commit(self) -> None:
        try:
            await self.s.commit()
        except DBAPIError as exc:
            conflict = _conflict(exc)
            if conflict is None:
                raise
            raise conflict from exc
        if self._wrote_outbox:
            self._wrote_outbox = False
            if self._after_commit is not None:
                self._after_commit()

    async def rollback(self) -> None:
        if self._session is not None:
            await self._session.rollback()
        self._wrote_outbox = False
