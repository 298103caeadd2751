"""Identity normalisation: the same person typed twice must match once.

Emails are trimmed and lower-cased; phones become E.164; other identities are trimmed.
"""

from __future__ import annotations

import re

import phonenumbers

from libs.errors import InvalidArgument

__all__ = ["MAX_IDENTITY_LENGTH", "STRONG_TYPES", "has_control_chars", "normalise_identity"]

# Identities that name one person; a cookie or device may be shared.
STRONG_TYPES = frozenset({"EMAIL", "PHONE", "LOYALTY_CARD", "EXTERNAL"})
MAX_IDENTITY_LENGTH = 256
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def has_control_chars(value: str) -> bool:
    return bool(_CONTROL.search(value))


def normalise_identity(kind: str, value: str, field: str, default_region: str = "GB") -> str:
    """The canonical form of an identity value, or InvalidArgument naming `field`."""
    if has_control_chars(value):
        raise InvalidArgument(field, "must not contain control characters")
    value = value.strip()
    if not value:
        raise InvalidArgument(field, "is required")
    if len(value) > MAX_IDENTITY_LENGTH:
        raise InvalidArgument(field, f"is longer than {MAX_IDENTITY_LENGTH} characters")
    if kind == "EMAIL":
        value = value.lower()
        if len(value) > 254 or not _EMAIL.fullmatch(value):
            raise InvalidArgument(field, f"{value!r} is not an email address")
        return value
    if kind == "PHONE":
        try:
            number = phonenumbers.parse(value, default_region)
        except phonenumbers.NumberParseException as exc:
            raise InvalidArgument(field, f"{value!r} is not a phone number") from exc
        if not phonenumbers.is_possible_number(number):
            raise InvalidArgument(field, f"{value!r} is not a possible phone number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return value
