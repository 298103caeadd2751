"""Identity normalisation: the same person typed twice matches once; hostile input is refused."""

from __future__ import annotations

import pytest

from libs.errors import InvalidArgument
from services.profile.identities import MAX_IDENTITY_LENGTH, normalise_identity


def rejected(kind: str, value: str, field: str = "customer.identity.value") -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        normalise_identity(kind, value, field)
    assert [f for f, _ in info.value.violations] == [field]
    return info.value


@pytest.mark.parametrize(
    "raw", ["Ann.Lee@Example.COM", "  ann.lee@example.com ", "ANN.LEE@EXAMPLE.COM"]
)
def test_email_is_trimmed_and_lower_cased(raw: str) -> None:
    assert normalise_identity("EMAIL", raw, "f") == "ann.lee@example.com"


@pytest.mark.parametrize(
    "raw",
    [
        "ann",
        "ann@",
        "@example.com",
        "ann@example",
        "ann@@example.com",
        "ann lee@example.com",
        "ann@example..com",
        "ann@.com",
        "a@b.c@d.e",
    ],
)
def test_malformed_email_is_rejected_naming_the_field(raw: str) -> None:
    error = rejected("EMAIL", raw, "events[3].identities[1].value")
    assert "not an email address" in error.violations[0][1]


def test_email_longer_than_254_is_rejected() -> None:
    rejected("EMAIL", "a" * 250 + "@x.io")


@pytest.mark.parametrize(
    "raw",
    ["07700 900123", "07700900123", "+44 7700 900123", "+447700900123", "(07700) 900-123"],
)
def test_uk_phone_national_and_international_forms_are_one_e164(raw: str) -> None:
    assert normalise_identity("PHONE", raw, "f") == "+447700900123"


def test_phone_default_region_applies_only_to_national_numbers() -> None:
    assert normalise_identity("PHONE", "+1 650 253 0000", "f") == "+16502530000"
    assert normalise_identity("PHONE", "(650) 253-0000", "f", default_region="US") == (
        "+16502530000"
    )


@pytest.mark.parametrize("raw", ["not a phone", "12", "+44 1"])
def test_bad_phone_is_rejected(raw: str) -> None:
    rejected("PHONE", raw)


@pytest.mark.parametrize("kind", ["EMAIL", "PHONE", "COOKIE", "EXTERNAL"])
@pytest.mark.parametrize("bad", ["a\x00b", "a\nb", "a\x1fb", "a\x7fb", "\tabc"])
def test_control_characters_are_rejected(kind: str, bad: str) -> None:
    error = rejected(kind, bad)
    assert "control characters" in error.violations[0][1]


@pytest.mark.parametrize("kind", ["EMAIL", "COOKIE"])
def test_over_long_values_are_rejected(kind: str) -> None:
    error = rejected(kind, "a" * (MAX_IDENTITY_LENGTH + 1))
    assert "longer than" in error.violations[0][1]


def test_limit_is_inclusive_for_opaque_identities() -> None:
    value = "c" * MAX_IDENTITY_LENGTH
    assert normalise_identity("COOKIE", value, "f") == value


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_is_required(blank: str) -> None:
    error = rejected("COOKIE", blank)
    assert error.violations[0][1] == "is required"


def test_other_identities_are_trimmed_but_keep_their_case() -> None:
    assert normalise_identity("COOKIE", "  AbC-123 ", "f") == "AbC-123"
    assert normalise_identity("LOYALTY_CARD", "LC-0001", "f") == "LC-0001"
