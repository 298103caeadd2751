"""CustomerRef -> customer id, for the calls of other services that name a customer: ids as
given, identities (an email, a cookie) resolved by the profile service over its contract."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as profile_pb
from google.protobuf import field_mask_pb2

from libs.auth import current_principal
from libs.client import Client
from libs.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable

__all__ = ["RESOLVE_SCOPE", "ResolveCustomer", "customer_of", "profile_resolver"]

# Resolving an identity (an email, a cookie) to a customer id reads the profile service: the
# caller must be allowed to do that itself, whatever token the service resolves it with.
RESOLVE_SCOPE = "profile:read"

# (ref, the request field naming it) -> customer id
ResolveCustomer = Callable[[common_pb2.CustomerRef, str], Awaitable[str]]


def profile_resolver(client: Client) -> ResolveCustomer:
    """Resolve through `client`'s profile service (GetProfile, masked to the id)."""

    async def resolve(ref: common_pb2.CustomerRef, field: str) -> str:
        which = ref.WhichOneof("ref")
        if which == "customer_id":
            value = ref.customer_id.strip()
            if not value or len(value) > 64 or not value.isprintable():
                raise InvalidArgument(
                    f"{field}.customer_id", "is required (at most 64 printable characters)"
                )
            return value
        if which != "identity":
            raise InvalidArgument(field, "is required: set customer_id or identity")
        try:
            reply = await client.profile.GetProfile(
                profile_pb.GetProfileRequest(
                    customer=ref, field_mask=field_mask_pb2.FieldMask(paths=["customer_id"])
                )
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(
                    f"no customer with that {field}.identity", reason="CUSTOMER_NOT_FOUND"
                ) from err
            if err.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(f"{field}.identity", err.details() or "is invalid") from err
            raise Unavailable(f"profile service: {err.code().name}") from err
        return str(reply.profile.customer_id)

    return resolve


async def customer_of(request: Any, field: str, resolve: ResolveCustomer) -> str:
    """The customer id of `request.<field>` (a CustomerRef), required."""
    if not request.HasField(field):
        raise InvalidArgument(field, "is required: set customer_id or identity")
    ref = getattr(request, field)
    principal = current_principal.get()
    if ref.WhichOneof("ref") == "identity" and not principal.has(RESOLVE_SCOPE):
        # The service resolves with its own token: without this check a caller without
        # profile:read could learn whose email is whose.
        raise PermissionDenied(
            f"{principal.name!r} lacks scope {RESOLVE_SCOPE!r}: looking up a customer by "
            f"{field}.identity needs {RESOLVE_SCOPE} (or pass {field}.customer_id)",
            reason="MISSING_SCOPE",
            metadata={"required_scope": RESOLVE_SCOPE},
        )
    return await resolve(ref, field)
