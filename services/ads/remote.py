"""Adapters of two small ports over the other services' contracts.

`ProfileInterests` (`CustomerInterests`): GetProfile masked to the interests, with the
caller's deadline, not retried (a retry would spend the SelectAds budget); any failure answers
None and selection weighs campaigns by their own weights. `SegmentationDirectory`
(`SegmentDirectory`): which segment ids name no segment, when a campaign is written.
`BonusRewards` (`Rewards`): bonus's RewardPoints with ads's own token (scope `bonus:reward`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import grpc
from backcrm.bonus.v1 import bonus_service_pb2 as bonus_pb
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as profile_pb
from backcrm.segmentation.v1 import segmentation_service_pb2 as seg_pb
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2, status_pb2

from libs.client import Client
from libs.errors import DomainError, NotFound, Unavailable
from libs.runtime import LocalCall
from services.ads.ports import CustomerInterests, RewardRefused, Rewards, SegmentDirectory

__all__ = ["BonusRewards", "ProfileInterests", "SegmentationDirectory"]

# bonus could not answer now: the reward waits (the bus retries the event)
_OUTAGE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
)
# bonus answered no: retrying cannot change it
_REFUSAL = (
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.ALREADY_EXISTS,
)


def _reason(err: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason of a refusal (e.g. ACCOUNT_NOT_FOUND), else the status code: never
    the message, which may name the customer."""
    code = str(err.code().name)
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info) and info.reason:
                    return f"{code} {info.reason}"
    return code


class BonusRewards(Rewards):
    def __init__(self, client: Callable[[], Client], timeout: float = 5.0) -> None:
        self._client = client  # ads's own client (token "ads": scope bonus:reward)
        self._timeout = timeout

    async def reward(
        self, program_id: str, customer_id: str, points: int, reason: str, key: str
    ) -> str:
        request = bonus_pb.RewardPointsRequest(
            program_id=program_id,
            customer=common_pb2.CustomerRef(customer_id=customer_id),
            points=points,
            reason=reason,
            idempotency_key=key,
        )
        try:
            reply = await self._client().bonus.RewardPoints(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            if err.code() in _OUTAGE:
                raise Unavailable(f"bonus RewardPoints: {err.code().name}") from err
            if err.code() in _REFUSAL:
                raise RewardRefused(_reason(err)) from err
            raise
        return str(reply.transaction.transaction_id)


log = logging.getLogger(__name__)


GET_PROFILE = "/backcrm.profile.v1.ProfileService/GetProfile"


class ProfileInterests(CustomerInterests):
    def __init__(
        self,
        client: Callable[[], Client],
        local: Callable[[str], LocalCall | None] | None = None,
    ) -> None:
        self._client = client  # made once the server listens (profile may be this process)
        # Peers.local: GetProfile in process when this process serves profile
        self._local = local

    async def interests(self, customer_id: str, timeout: float) -> dict[str, float] | None:
        request = profile_pb.GetProfileRequest(
            customer=common_pb2.CustomerRef(customer_id=customer_id),
            field_mask=field_mask_pb2.FieldMask(paths=["interests"]),
        )
        call = self._local(GET_PROFILE) if self._local is not None else None
        if call is not None:
            try:
                local = await call(request, timeout)
            except NotFound:
                return {}
            except TimeoutError:
                log.warning("profile GetProfile (interests) failed: DEADLINE_EXCEEDED")
                return None
            except DomainError as err:
                log.warning("profile GetProfile (interests) failed: %s", type(err).__name__)
                return None
            except Exception:
                log.exception("profile GetProfile (interests) failed in process")
                return None
            assert isinstance(local, profile_pb.GetProfileResponse)
            return dict(local.profile.interests)
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
