"""Tracking tokens: what a slot's `tracking_token` carries, signed with HMAC-SHA256.

    <key id>.<base64url(JSON payload)>.<base64url(HMAC-SHA256(key, "<key id>.<payload>"))>

The payload names the campaign, the creative, the customer ("" when unknown), the placement,
the channel, the selection's id (`t`, the reservation and the idempotency key of what is
recorded with the token) and the expiry. Keys come from settings (`BACKCRM_ADS_TRACKING_KEYS`,
a JSON object key id -> secret, and `BACKCRM_ADS_TRACKING_KEY_ID`, the one new tokens are
signed with): rotation adds a key, switches the id, and drops the old key once its tokens have
expired (30 days). Unset, a development key is derived from the database URL, so every process
of one installation agrees without configuration (and production must set its own).

Anything that is not a token this installation signed and that has not expired is
`INVALID_ARGUMENT` (field `tracking_token`, reason `INVALID_TRACKING_TOKEN`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from libs.errors import InvalidArgument

__all__ = ["REASON", "TOKEN_TTL", "Signer", "Ticket", "dev_keys"]

TOKEN_TTL = 30 * 86_400.0
REASON = "INVALID_TRACKING_TOKEN"
_MAX_LEN = 2048


@dataclass(frozen=True)
class Ticket:
    """What a token proves the server handed out."""

    token_id: str  # the selection's id: reservation and idempotency key
    campaign_id: str
    creative_id: str
    customer_id: str
    placement: str
    channel: int
    issued_at: float  # the selection: its UTC day is the day a reserved impression counts in
    expires_at: float


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def dev_keys(seed: str) -> dict[str, str]:
    """The development key of an installation without configured keys."""
    return {"dev": hashlib.sha256(f"backcrm-ads-dev-key:{seed}".encode()).hexdigest()}


class Signer:
    def __init__(self, keys: dict[str, str], current: str) -> None:
        if not keys or current not in keys:
            raise ValueError("the current tracking key id must be one of the keys")
        if any("." in kid or not kid for kid in keys):
            raise ValueError("tracking key ids must be non-empty and contain no '.'")
        self._keys = {kid: secret.encode() for kid, secret in keys.items()}
        self._current = current

    def _mac(self, kid: str, body: str) -> bytes:
        return hmac.new(self._keys[kid], f"{kid}.{body}".encode(), hashlib.sha256).digest()

    def sign(self, ticket: Ticket) -> str:
        payload = {
            "t": ticket.token_id,
            "c": ticket.campaign_id,
            "r": ticket.creative_id,
            "u": ticket.customer_id,
            "p": ticket.placement,
            "h": ticket.channel,
            "s": int(ticket.issued_at),
            "x": int(ticket.expires_at),
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{self._current}.{body}.{_b64(self._mac(self._current, body))}"

    def verify(self, token: str, now: float, field: str = "tracking_token") -> Ticket:
        def bad(why: str) -> InvalidArgument:
            return InvalidArgument(field, why, reason=REASON)

        if not token or len(token) > _MAX_LEN:
            raise bad("is not a tracking token issued by this service")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] not in self._keys:
            raise bad("is not a tracking token issued by this service")
        kid, body, mac = parts
        try:
            given = _unb64(mac)
        except (binascii.Error, ValueError) as exc:
            raise bad("is not a tracking token issued by this service") from exc
        if not hmac.compare_digest(given, self._mac(kid, body)):
            raise bad("has an invalid signature (forged or altered)")
        try:
            data: Any = json.loads(_unb64(body))
            ticket = Ticket(
                token_id=str(data["t"]),
                campaign_id=str(data["c"]),
                creative_id=str(data["r"]),
                customer_id=str(data["u"]),
                placement=str(data["p"]),
                channel=int(data["h"]),
                issued_at=float(data["s"]),
                expires_at=float(data["x"]),
            )
        except (ValueError, KeyError, TypeError) as exc:  # signed by us: never, but be total
            raise bad("is not a tracking token issued by this service") from exc
        if now >= ticket.expires_at:
            raise bad("has expired")
        return ticket
