"""The adapter of `CustomerInterests` over profile's contract: GetProfile masked to the
interests, with the caller's deadline, not retried (a retry would spend the SelectAds budget);
any failure answers None and selection weighs campaigns by their own weights."""

from __future__ import annotations

import logging
from collections.abc import Callable

import grpc
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as profile_pb
from google.protobuf import field_mask_pb2

from libs.client import Client
from services.ads.ports import CustomerInterests

__all__ = ["ProfileInterests"]

log = logging.getLogger(__name__)


class ProfileInterests(CustomerInterests):
    def __init__(self, client: Callable[[], Client]) -> None:
        self._client = client  # made once the server listens (profile may be this process)

    async def interests(self, customer_id: str, timeout: float) -> dict[str, float] | None:
        request = profile_pb.GetProfileRequest(
            customer=common_pb2.CustomerRef(customer_id=customer_id),
            field_mask=field_mask_pb2.FieldMask(paths=["interests"]),
        )
        try:
            reply = await self._client().profile.GetProfile(request, timeout=timeout)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return {}
            log.warning("profile GetProfile (interests) failed: %s", err.code().name)
            return None
        return dict(reply.profile.interests)
