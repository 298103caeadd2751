"""ProfileTraits over the profile service's contract (SetTraits, namespace `bonus`).

Calls go out with bonus's own service token (`Peers.client("bonus")`): profile lets only a
caller named `bonus` (or an admin) write that namespace.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import grpc
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as ppb
from google.protobuf import struct_pb2

from libs.client import Client
from libs.errors import Unavailable
from services.bonus.ports import ProfileTraits

__all__ = ["NAMESPACE", "ProfileTraitsWriter"]

NAMESPACE = "bonus"
# Answers that say profile is not there right now: the write waits for it.
_LATER = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)


def _value(value: str | None) -> struct_pb2.Value:
    if value is None:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    return struct_pb2.Value(string_value=value)


class ProfileTraitsWriter(ProfileTraits):
    def __init__(self, client: Callable[[], Client], timeout: float = 5.0) -> None:
        # The client exists once the server listens (profile may be this very process).
        self._client = client
        self._timeout = timeout

    async def set_traits(self, customer_id: str, traits: Mapping[str, str | None]) -> bool:
        request = ppb.SetTraitsRequest(
            customer=common_pb2.CustomerRef(customer_id=customer_id),
            namespace=NAMESPACE,
            traits={key: _value(value) for key, value in traits.items()},
        )
        try:
            await self._client().profile.SetTraits(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return False
            if err.code() in _LATER:
                raise Unavailable(f"profile SetTraits: {err.code().name}") from err
            raise
        return True
