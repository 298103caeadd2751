"""`is_transient`: what counts as "a dependency is down" (UNAVAILABLE, retried in place by the
bus) rather than a failure of the call itself."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from libs.errors import InvalidArgument, Unavailable, is_transient


class _PgError(Exception):
    """What SQLAlchemy's asyncpg adapter puts in `DBAPIError.orig`: it carries the SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "sqlstate",
    [
        "53300",  # too_many_connections: "sorry, too many clients already"
        "53200",  # out_of_memory
        "08006",  # connection_failure
        "57P01",  # admin_shutdown
        "57P03",  # cannot_connect_now (starting up)
    ],
)
def test_postgres_refusing_connections_is_transient(sqlstate: str) -> None:
    assert is_transient(DBAPIError("connect", None, _PgError(sqlstate)))


@pytest.mark.parametrize("sqlstate", ["23505", "22P02", "42P01", "40P01", ""])
def test_errors_of_the_statement_are_not(sqlstate: str) -> None:
    # unique violation, bad input, missing table, deadlock (a lost race, retried as Conflict)
    assert not is_transient(DBAPIError("INSERT", None, _PgError(sqlstate)))
    assert not is_transient(IntegrityError("INSERT", None, _PgError("23505")))


def test_the_domain_tree() -> None:
    assert is_transient(Unavailable("bus down"))
    assert is_transient(ConnectionRefusedError())
    assert not is_transient(InvalidArgument("customer", "is required"))
