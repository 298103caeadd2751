"""Tokens and scopes, shared input checks, page tokens, and the gRPC error status helper."""

from __future__ import annotations

import base64
import json
from typing import Any

import grpc
import pytest
from backcrm.profile.v1 import profile_service_pb2 as pb
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2, status_pb2

from libs.auth import (
    ADMIN,
    Principal,
    TokenRegistry,
    current_principal,
    hash_token,
    mint_token,
    require_scope,
)
from libs.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from libs.rpc.status import status_of
from libs.validation import (
    check_enum,
    check_finite,
    check_text,
    decode_page_token,
    encode_page_token,
    page_size,
)

TOKEN = "bcrm_reader-secret"


def entry(name: str = "reader", token: str = TOKEN, scopes: Any = ("profile:read",)) -> dict:  # type: ignore[type-arg]
    return {"name": name, "sha256": hash_token(token), "scopes": list(scopes)}


# ---------------------------------------------------------------- tokens


def test_registry_keeps_only_hashes() -> None:
    registry = TokenRegistry([entry()])
    assert len(registry) == 1
    assert TOKEN not in repr(vars(registry))
    assert hash_token(TOKEN) in vars(registry)["_by_hash"]


@pytest.mark.parametrize(
    "header", [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER  {TOKEN} ", f"Bearer {TOKEN}\n"]
)
def test_bearer_header_authenticates(header: str) -> None:
    principal = TokenRegistry([entry()]).authenticate(header)
    assert principal == Principal("reader", frozenset({"profile:read"}))


def test_uppercase_digest_in_config_matches() -> None:
    config = entry()
    config["sha256"] = config["sha256"].upper()
    assert TokenRegistry([config]).authenticate(f"Bearer {TOKEN}").name == "reader"


@pytest.mark.parametrize(
    "header", [None, "", TOKEN, f"Basic {TOKEN}", "Bearer", "Bearer   ", f"Token {TOKEN}"]
)
def test_missing_or_malformed_header_is_unauthenticated(header: str | None) -> None:
    with pytest.raises(Unauthenticated):
        TokenRegistry([entry()]).authenticate(header)


def test_unknown_token_is_unauthenticated_with_a_reason() -> None:
    with pytest.raises(Unauthenticated) as info:
        TokenRegistry([entry()]).authenticate("Bearer bcrm_guess")
    assert info.value.reason == "INVALID_TOKEN"
    assert "bcrm_guess" not in info.value.message


def test_minted_tokens_are_unique_and_prefixed() -> None:
    tokens = {mint_token() for _ in range(20)}
    assert len(tokens) == 20
    assert all(t.startswith("bcrm_") and len(t) > 40 for t in tokens)


def test_admin_implies_every_scope() -> None:
    admin = TokenRegistry([entry("root", "t", [ADMIN])]).authenticate("Bearer t")
    assert admin.has("profile:delete") and admin.has("anything:at-all")
    reader = Principal("reader", frozenset({"profile:read"}))
    assert reader.has("profile:read")
    assert not reader.has("profile:write")


def test_require_scope_uses_the_current_principal() -> None:
    token = current_principal.set(Principal("reader", frozenset({"profile:read"})))
    try:
        assert require_scope("profile:read").name == "reader"
        with pytest.raises(PermissionDenied) as info:
            require_scope("profile:delete")
        assert info.value.reason == "MISSING_SCOPE"
    finally:
        current_principal.reset(token)


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        ({"sha256": "abc"}, "auth_tokens[1].sha256"),
        ({"sha256": None}, "auth_tokens[1].sha256"),
        ({"sha256": "z" * 64}, "auth_tokens[1].sha256"),
        ({"name": ""}, "auth_tokens[1].name"),
        ({"name": 7}, "auth_tokens[1].name"),
        ({"scopes": "profile:read"}, "auth_tokens[1].scopes"),
        ({"scopes": ["profile:read", 3]}, "auth_tokens[1].scopes"),
    ],
)
def test_bad_config_entries_are_invalid_argument_naming_the_entry(
    bad: dict[str, object], path: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        TokenRegistry([entry(), {**entry("other", "x"), **bad}])
    assert [f for f, _ in info.value.violations] == [path]


def test_missing_keys_in_config_are_invalid_argument() -> None:
    with pytest.raises(InvalidArgument):
        TokenRegistry([{"name": "x"}])


# ---------------------------------------------------------------- page tokens


def test_page_token_round_trips_and_is_not_a_bare_offset() -> None:
    position = [1_700_000_000.5, "evt-9"]
    token = encode_page_token(position, "purchases:abc")
    assert "evt-9" not in token and "1700000000" not in token
    assert decode_page_token(token, "purchases:abc") == position
    assert decode_page_token("", "purchases:abc") is None


def test_page_token_of_another_listing_is_rejected() -> None:
    token = encode_page_token([1, "a"], "purchases:customer-a")
    with pytest.raises(InvalidArgument) as info:
        decode_page_token(token, "purchases:customer-b")
    assert info.value.violations == [("page_token", "belongs to another listing")]


def _raw(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "!!!!",
        "é",
        "ey",
        _raw([1, 2]),
        _raw("text"),
        _raw({"p": 1}),
        _raw({"s": "x"}),
    ],
)
def test_tampered_page_token_is_rejected(token: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        decode_page_token(token, "scope", field="next")
    assert info.value.violations[0][0] == "next"


def test_truncated_or_edited_page_token_is_rejected() -> None:
    token = encode_page_token([1, "a"], "scope")
    for bad in (token[:-3], token[:10], token[:-4] + "AAAA"):
        with pytest.raises(InvalidArgument):
            decode_page_token(bad, "scope")


# ---------------------------------------------------------------- text, enums, sizes


def test_check_text() -> None:
    assert check_text("  ok  ", "f") == "  ok  "
    assert check_text("", "f") == ""
    assert check_text("a\tb\nc", "f", multiline=True) == "a\tb\nc"
    assert check_text("x" * 10, "f", max_len=10) == "x" * 10


@pytest.mark.parametrize(
    ("value", "kw", "reason"),
    [
        ("", {"required": True}, "is required"),
        ("   ", {"required": True}, "is required"),
        ("x" * 11, {"max_len": 10}, "is longer than 10 characters"),
        ("a\nb", {}, "must not contain control characters"),
        ("a\tb", {}, "must not contain control characters"),
        ("a\x00b", {"multiline": True}, "must not contain control characters"),
        ("a\x7f", {"multiline": True}, "must not contain control characters"),
    ],
)
def test_check_text_rejects(value: str, kw: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_text(value, "a.b[2]", **kw)
    assert info.value.violations == [("a.b[2]", reason)]


def test_check_enum_returns_the_name_without_prefix() -> None:
    assert check_enum(pb.EVENT_TYPE_ADD_TO_CART, pb.EventType, "type") == "ADD_TO_CART"
    assert check_enum(pb.PROFILE_STATUS_CHURN_RISK, pb.ProfileStatus, "s") == "CHURN_RISK"
    assert check_enum(0, pb.EventType, "type", required=False) == ""


@pytest.mark.parametrize("value", [0, 999, -1])
def test_check_enum_rejects_unspecified_and_unknown(value: int) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_enum(value, pb.EventType, "events[0].type")
    assert info.value.violations[0][0] == "events[0].type"


def test_page_size() -> None:
    assert page_size(0) == 50
    assert page_size(0, default=10) == 10
    assert page_size(1) == 1
    assert page_size(1000) == 1000
    for bad in (-1, 1001):
        with pytest.raises(InvalidArgument) as info:
            page_size(bad)
        assert info.value.violations[0][0] == "page_size"


# ---------------------------------------------------------------- status details


def details(status: grpc.Status) -> tuple[status_pb2.Status, list[Any]]:
    trailers = dict(status.trailing_metadata)
    decoded = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    out: list[Any] = []
    for packed in decoded.details:
        for cls in (error_details_pb2.BadRequest, error_details_pb2.ErrorInfo):
            if packed.Is(cls.DESCRIPTOR):
                message = cls()
                packed.Unpack(message)
                out.append(message)
    return decoded, out


def test_invalid_argument_carries_field_violations_and_error_info() -> None:
    error = InvalidArgument([("events[0].type", "is required"), ("events[1].sku", "too long")])
    status = status_of(error, "profile")
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert status.details == error.message
    decoded, (bad_request, info) = details(status)
    assert decoded.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("events[0].type", "is required"),
        ("events[1].sku", "too long"),
    ]
    assert (info.reason, info.domain) == ("INVALID_ARGUMENT", "profile.backcrm")


@pytest.mark.parametrize(
    ("error", "code", "reason"),
    [
        (
            NotFound("gone", reason="CUSTOMER_NOT_FOUND"),
            grpc.StatusCode.NOT_FOUND,
            "CUSTOMER_NOT_FOUND",
        ),
        (Unauthenticated("who?"), grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED"),
        (PermissionDenied("no"), grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED"),
        (FailedPrecondition("not yet"), grpc.StatusCode.FAILED_PRECONDITION, "FAILED_PRECONDITION"),
        (Unavailable("down"), grpc.StatusCode.UNAVAILABLE, "DEPENDENCY_UNAVAILABLE"),
    ],
)
def test_other_errors_carry_only_error_info(error: Any, code: grpc.StatusCode, reason: str) -> None:
    status = status_of(error, "segmentation")
    assert status.code == code
    _, found = details(status)
    assert [type(d) for d in found] == [error_details_pb2.ErrorInfo]
    assert (found[0].reason, found[0].domain) == (reason, "segmentation.backcrm")


def test_error_info_keeps_metadata_and_an_explicit_domain() -> None:
    error = NotFound("x", metadata={"field": "customer"}, domain="ads.backcrm")
    _, (info,) = details(status_of(error, "profile"))
    assert dict(info.metadata) == {"field": "customer"}
    assert info.domain == "ads.backcrm"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_check_finite_finds_a_non_finite_number_anywhere(bad: float) -> None:
    fine = struct_pb2.Struct()
    fine.update({"a": 1.5, "b": [1, "x", None, True, {"c": -2e300}], "d": {"e": []}})
    check_finite(fine, "properties")
    nested = struct_pb2.Struct()
    nested.update({"a": 1, "b": [0, {"c": [bad]}]})
    with pytest.raises(InvalidArgument) as info:
        check_finite(nested, "properties")
    assert info.value.violations[0][0] == "properties['b'][1]['c'][0]"
    with pytest.raises(InvalidArgument) as info:
        check_finite(struct_pb2.Value(number_value=bad), "traits['x']")
    assert info.value.violations[0][0] == "traits['x']"
