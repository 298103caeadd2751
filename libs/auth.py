"""Bearer tokens with scopes. Tokens are configured and stored only as SHA-256 hashes.

A principal holds scopes such as `profile:read`; the `admin` scope grants every scope.
`backcrm token create` mints a token and stores its hash in the tokens file.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from libs.errors import InvalidArgument, PermissionDenied, Unauthenticated

__all__ = [
    "ADMIN",
    "ANONYMOUS_ADMIN",
    "Principal",
    "TokenRegistry",
    "add_token_to_file",
    "authorize",
    "current_principal",
    "hash_token",
    "mint_token",
    "require_scope",
]

ADMIN = "admin"
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str] = field(default_factory=frozenset)

    def has(self, scope: str) -> bool:
        return ADMIN in self.scopes or scope in self.scopes


# Auth disabled (local experiments only) acts as an admin called "anonymous".
ANONYMOUS_ADMIN = Principal("anonymous", frozenset({ADMIN}))
current_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar(
    "current_principal", default=ANONYMOUS_ADMIN
)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@functools.lru_cache(maxsize=1024)
def _digest(token: str) -> str:
    # Callers repeat their token on every call: hash each one once.
    return hash_token(token)


def mint_token() -> str:
    return "bcrm_" + secrets.token_urlsafe(32)


def require_scope(scope: str) -> Principal:
    principal = current_principal.get()
    if not principal.has(scope):
        raise PermissionDenied(f"{principal.name!r} lacks scope {scope!r}", reason="MISSING_SCOPE")
    return principal


class TokenRegistry:
    """Hashed tokens from configuration: `[{"name": ..., "sha256": ..., "scopes": [...]}]`."""

    def __init__(self, entries: list[dict[str, object]]) -> None:
        self._by_hash: dict[str, Principal] = {}
        for i, entry in enumerate(entries):
            digest, name, scopes = entry.get("sha256"), entry.get("name"), entry.get("scopes")
            if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
                raise InvalidArgument(f"auth_tokens[{i}].sha256", "must be a SHA-256 hex digest")
            if not isinstance(name, str) or not name:
                raise InvalidArgument(f"auth_tokens[{i}].name", "is required")
            if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
                raise InvalidArgument(f"auth_tokens[{i}].scopes", "must be a list of strings")
            self._by_hash[digest.lower()] = Principal(name, frozenset(scopes))

    @classmethod
    def from_sources(cls, inline_json: str, file: Path) -> TokenRegistry:
        entries: list[dict[str, object]] = []
        if inline_json.strip():
            entries.extend(json.loads(inline_json))
        if file.exists():
            entries.extend(json.loads(file.read_text() or "[]"))
        return cls(entries)

    def add(self, name: str, token: str, scopes: list[str]) -> None:
        """Register a token at run time (the per-process token services call each other with)."""
        self._by_hash[hash_token(token)] = Principal(name, frozenset(scopes))

    def __len__(self) -> int:
        return len(self._by_hash)

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthenticated("missing 'authorization: Bearer <token>' metadata")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("authorization must be 'Bearer <token>'")
        # A dict lookup on the digest leaks nothing useful by timing: finding a token whose
        # hash shares a prefix with a valid one does not help to find the valid token.
        principal = self._by_hash.get(_digest(token.strip()))
        if principal is None:
            raise Unauthenticated("unknown or revoked token", reason="INVALID_TOKEN")
        return principal


def authorize(
    registry: TokenRegistry | None, authorization: str | None, scope: str, method: str
) -> Principal:
    """The caller of `method` ("/pkg.Service/Method"), who must hold `scope`: what every call
    is checked by, over gRPC (libs.rpc.guard) and in process (libs.runtime.Peers.local).
    `registry` None: auth is disabled and every caller an anonymous admin."""
    if registry is None:
        return ANONYMOUS_ADMIN
    principal = registry.authenticate(authorization)
    if not principal.has(scope):
        raise PermissionDenied(
            f"{principal.name!r} lacks scope {scope!r} for {method}",
            reason="MISSING_SCOPE",
            metadata={"required_scope": scope},
        )
    return principal


def add_token_to_file(file: Path, name: str, scopes: list[str], token: str) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    entries = json.loads(file.read_text() or "[]") if file.exists() else []
    entries = [e for e in entries if e.get("name") != name]
    entries.append({"name": name, "sha256": hash_token(token), "scopes": scopes})
    file.write_text(json.dumps(entries, indent=2) + "\n")
