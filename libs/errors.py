"""The one exception tree of Back CRM, its mapping to gRPC status, and which failures are
the infrastructure's rather than the request's or the message's.

Handlers raise these (they never import grpc); the error interceptor turns every DomainError
into its canonical status code with google.rpc details: `BadRequest` field violations for
INVALID_ARGUMENT and `ErrorInfo` (UPPER_SNAKE reason, domain "<service>.backcrm") for all.

    BackcrmError
    ├── DomainError                 a status for the caller
    │   ├── InvalidArgument         INVALID_ARGUMENT    the caller sent something wrong
    │   ├── NotFound                NOT_FOUND
    │   ├── AlreadyExists           ALREADY_EXISTS
    │   ├── FailedPrecondition      FAILED_PRECONDITION
    │   ├── Unauthenticated         UNAUTHENTICATED
    │   ├── PermissionDenied        PERMISSION_DENIED
    │   ├── ResourceExhausted       RESOURCE_EXHAUSTED  a per-process limit is reached
    │   ├── Unimplemented           UNIMPLEMENTED       an RPC of the contract not served yet
    │   └── Unavailable             UNAVAILABLE         retrying may help (e.g. CONTENTION)
    │       └── DependencyUnavailable                   infrastructure cannot be reached
    │           ├── CacheUnavailable                    callers fall back to storage
    │           └── BusUnavailable                      the outbox keeps its rows, retries
    └── Conflict                    (no status)         a concurrent writer got there first:
                                                        the unit of work runs again

A DependencyUnavailable tells the caller only which kind of dependency is down; the backend's
own words (host names, driver messages) stay in `str(exc)`, for the logs.

`is_transient` is the one answer to "did this fail because a dependency is down?": the error
interceptor answers UNAVAILABLE for those (and INTERNAL for other unexpected errors), and bus
consumers retry them in place without counting a delivery attempt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

__all__ = [
    "AlreadyExists",
    "BackcrmError",
    "BusUnavailable",
    "CacheUnavailable",
    "Conflict",
    "DependencyUnavailable",
    "DomainError",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "is_transient",
]

FieldViolation = tuple[str, str]  # (field path, description)


class BackcrmError(Exception):
    """Everything Back CRM raises on purpose."""


class DomainError(BackcrmError):
    code_name = "UNKNOWN"
    default_reason = "ERROR"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        domain: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})
        self.domain = domain


class InvalidArgument(DomainError):
    code_name = "INVALID_ARGUMENT"
    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        violations: Iterable[FieldViolation] | str,
        description: str | None = None,
        **kwargs: object,
    ) -> None:
        if isinstance(violations, str):
            violations = [(violations, description or "is invalid")]
        self.violations: list[FieldViolation] = list(violations)
        message = "; ".join(f"{field}: {desc}" for field, desc in self.violations)
        super().__init__(message or "invalid argument", **kwargs)  # type: ignore[arg-type]


class NotFound(DomainError):
    code_name = "NOT_FOUND"
    default_reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    code_name = "ALREADY_EXISTS"
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    code_name = "FAILED_PRECONDITION"
    default_reason = "FAILED_PRECONDITION"


class Unauthenticated(DomainError):
    code_name = "UNAUTHENTICATED"
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    code_name = "PERMISSION_DENIED"
    default_reason = "PERMISSION_DENIED"


class ResourceExhausted(DomainError):
    code_name = "RESOURCE_EXHAUSTED"
    default_reason = "RESOURCE_EXHAUSTED"


class Unimplemented(DomainError):
    """An RPC (or a field) the contract declares and this build does not serve yet; the
    service's docs list which."""

    code_name = "UNIMPLEMENTED"
    default_reason = "NOT_SERVED_YET"


class Unavailable(DomainError):
    code_name = "UNAVAILABLE"
    default_reason = "DEPENDENCY_UNAVAILABLE"


class DependencyUnavailable(Unavailable):
    """A database, cache or bus cannot be reached right now."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"a dependency is unavailable: {type(self).__name__}")
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


class CacheUnavailable(DependencyUnavailable):
    """The cache backend cannot be reached; callers fall back to storage."""


class BusUnavailable(DependencyUnavailable):
    """The bus backend cannot be reached; the caller retries later (the outbox does)."""


class Conflict(BackcrmError):
    """A concurrent writer got there first (a unique key, an identity claimed, a row deleted
    or merged meanwhile, a deadlock, a serialization failure): the unit of work saw a state
    that is gone, and running it again on what is committed now is the answer. Never a
    status of its own: callers retry it (`libs.retry.retry_conflicts`)."""


# OSError covers ConnectionError and TimeoutError (asyncio's included). OperationalError is
# the DB-API's "the database's operation failed" (a disconnect, a lock timeout, a failover).
_TRANSIENT = (Unavailable, OSError, OperationalError, PoolTimeout)
# PostgreSQL refusing or dropping connections: connection exceptions (08), insufficient
# resources (53: "too many clients", out of memory, disk full), shutting down or starting (57P0x).
# asyncpg's become a plain DBAPIError, not an OperationalError: matched by SQLSTATE.
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53")
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def is_transient(exc: BaseException) -> bool:
    """True when something failed because a dependency is down, not because of its input."""
    if isinstance(exc, _TRANSIENT):
        return True
    if isinstance(exc, DBAPIError):
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
        if (
            exc.connection_invalidated
            or sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES
            or sqlstate in _UNAVAILABLE_SQLSTATES
        ):
            return True
    # redis-py's connection errors are not OSErrors; matched by name so the embedded mode,
    # which never loads the Redis client, need not import it here.
    return any(
        cls.__module__ == "redis.exceptions" and cls.__name__ in ("ConnectionError", "TimeoutError")
        for cls in type(exc).__mro__
    )
