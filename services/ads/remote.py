"""Adapters of two small ports over the other services' contracts.

`ProfileInterests` (`CustomerInterests`): GetProfile masked to the interests, with the
caller's deadline, not retried (a retry would spend the SelectAds budget); any failure answers
None and selection weighs campaigns by their own weights. `SegmentationDirectory`
(`SegmentDirectory`): which segment ids name no segment, when a campaign is written."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import grpc
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as profile_pb
from backcrm.segmentation.v1 import segmentation_service_pb2 as seg_pb
from google.protobuf import field_mask_pb2

from libs.client import Client
from services.ads.ports import CustomerInterests, SegmentDirectory

__all__ = ["ProfileInterests", "SegmentationDirectory"]

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


class SegmentationDirectory(SegmentDirectory):
    """`SegmentDirectory` over segmentation's contract: GetSegment for each id, at once."""

    def __init__(self, client: Callable[[], Client]) -> None:
        self._client = client

    async def unknown(self, segment_ids: Sequence[str], timeout: float) -> set[str] | None:
        async def exists(segment_id: str) -> bool:
            try:
                await self._client().segmentation.GetSegment(
                    seg_pb.GetSegmentRequest(segment_id=segment_id), timeout=timeout
                )
            except grpc.aio.AioRpcError as err:
                if err.code() == grpc.StatusCode.NOT_FOUND:
                    return False
                raise
            return True

        try:
            found = await asyncio.gather(*(exists(s) for s in segment_ids))
        except grpc.aio.AioRpcError as err:
            log.warning("segmentation GetSegment failed: %s", err.code().name)
            return None
        return {s for s, ok in zip(segment_ids, found, strict=True) if not ok}
