"""The one exception hierarchy of Back CRM's domain code, and its mapping to gRPC status.

Handlers raise these (they never import grpc); the error interceptor turns them into canonical
status codes with google.rpc details: `BadRequest` field violations for INVALID_ARGUMENT and
`ErrorInfo` (UPPER_SNAKE reason, domain "<service>.backcrm") for all of them.

    DomainError
    ├── InvalidArgument      INVALID_ARGUMENT   the caller sent something wrong (fields named)
    ├── NotFound             NOT_FOUND
    ├── AlreadyExists        ALREADY_EXISTS
    ├── FailedPrecondition   FAILED_PRECONDITION
    ├── Unauthenticated      UNAUTHENTICATED
    ├── PermissionDenied     PERMISSION_DENIED
    ├── ResourceExhausted    RESOURCE_EXHAUSTED a per-process limit is reached; retry later
    └── Unavailable          UNAVAILABLE        a dependency is down; retrying may help
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = [
    "AlreadyExists",
    "DomainError",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
]

FieldViolation = tuple[str, str]  # (field path, description)


class DomainError(Exception):
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


class Unavailable(DomainError):
    code_name = "UNAVAILABLE"
    default_reason = "DEPENDENCY_UNAVAILABLE"
