"""CustomerRef -> customer id, for the calls that name a customer: ids as given, identities
(an email, a cookie) resolved by the profile service over its contract."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as profile_pb
from google.protobuf import field_mask_pb2

from libs.client import Client
from libs.errors import InvalidArgument, NotFound, Unavailable

__all__ = ["ResolveCustomer", "profile_resolver"]

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
