"""What services ask segmentation about a customer (`CustomerSignals`), and its adapter over
segmentation's contract (EvaluateSegments, EvaluateConditions).

Each call carries its own deadline (the caller's budget for segmentation, shorter than its own),
is not retried (a retry would spend the budget the quote answers within), and any failure
(slow, down, refused) answers None: the caller degrades and says so.

When this process also serves segmentation (`backcrm serve all`, the embedded default), the
same RPC is called in process (`Peers.local`): the same handler, the same scope check (the
process's service token needs `segments:read`), the same deadline, without serialising, a
second pass through the interceptors and a round trip through the process's own port. That
path answers exactly what the gRPC call would, so nothing about freshness changes:
memberships are what segmentation's store and cache hold at the moment of the call.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Sequence

import grpc
from backcrm.common.v1 import common_pb2
from backcrm.segmentation.v1 import condition_pb2
from backcrm.segmentation.v1 import segmentation_service_pb2 as seg_pb
from google.protobuf.message import Message

from libs.client import Client
from libs.errors import DomainError
from libs.runtime import LocalCall

__all__ = ["CustomerSignals", "SegmentationSignals"]

log = logging.getLogger(__name__)

_SERVICE = "/backcrm.segmentation.v1.SegmentationService"
EVALUATE_SEGMENTS = f"{_SERVICE}/EvaluateSegments"
EVALUATE_CONDITIONS = f"{_SERVICE}/EvaluateConditions"


class CustomerSignals(abc.ABC):
    """What a service asks segmentation about a customer, within a deadline. Every method
    answers None when segmentation is slow or down (the caller then degrades and says so)
    instead of raising: a quote or an ad selection must not fail because segmentation is.

    The gRPC adapter is `SegmentationSignals` below; unit tests use
    tests/unit/signal_fakes.py FakeSignals."""

    @abc.abstractmethod
    async def segments(
        self,
        customer_id: str,
        segment_ids: Sequence[str],
        context: common_pb2.Context | None,
        timeout: float,
    ) -> frozenset[str] | None:
        """Which of `segment_ids` the customer is in for this request (EvaluateSegments)."""

    @abc.abstractmethod
    async def conditions(
        self,
        customer_id: str,
        conditions: Sequence[condition_pb2.Condition],
        context: common_pb2.Context | None,
        timeout: float,
    ) -> list[bool] | None:
        """Whether the customer meets each condition, in order (EvaluateConditions)."""


class SegmentationSignals(CustomerSignals):
    def __init__(
        self,
        client: Callable[[], Client],
        local: Callable[[str], LocalCall | None] | None = None,
    ) -> None:
        # The client exists once the server listens (segmentation may be this very process).
        self._client = client
        # Peers.local: the RPC in process when this process serves segmentation.
        self._local = local

    async def _in_process(
        self, method: str, request: Message, timeout: float
    ) -> tuple[bool, Message | None]:
        """(done, reply): done is False when segmentation is not served by this process."""
        call = self._local(method) if self._local is not None else None
        if call is None:
            return False, None
        name = method.rpartition("/")[2]
        try:
            return True, await call(request, timeout)
        except TimeoutError:
            log.warning("segmentation %s failed: DEADLINE_EXCEEDED", name)
        except DomainError as err:
            log.warning("segmentation %s failed: %s", name, type(err).__name__)
        except Exception:
            # over gRPC the server would log it and answer INTERNAL: the caller degrades
            log.exception("segmentation %s failed in process", name)
        return True, None

    async def segments(
        self,
        customer_id: str,
        segment_ids: Sequence[str],
        context: common_pb2.Context | None,
        timeout: float,
    ) -> frozenset[str] | None:
        if not segment_ids:
            return frozenset()
        request = seg_pb.EvaluateSegmentsRequest(
            customer=common_pb2.CustomerRef(customer_id=customer_id),
            segment_ids=list(segment_ids),
            context=context,
        )
        done, local = await self._in_process(EVALUATE_SEGMENTS, request, timeout)
        if done:
            if not isinstance(local, seg_pb.EvaluateSegmentsResponse):
                return None
            return frozenset(local.segment_ids)
        try:
            reply = await self._client().segmentation.EvaluateSegments(request, timeout=timeout)
        except grpc.aio.AioRpcError as err:
            log.warning("segmentation EvaluateSegments failed: %s", err.code().name)
            return None
        return frozenset(reply.segment_ids)

    async def conditions(
        self,
        customer_id: str,
        conditions: Sequence[condition_pb2.Condition],
        context: common_pb2.Context | None,
        timeout: float,
    ) -> list[bool] | None:
        if not conditions:
            return []
        request = seg_pb.EvaluateConditionsRequest(
            customer=common_pb2.CustomerRef(customer_id=customer_id),
            conditions=list(conditions),
            context=context,
        )
        done, local = await self._in_process(EVALUATE_CONDITIONS, request, timeout)
        if done:
            if not isinstance(local, seg_pb.EvaluateConditionsResponse):
                return None
            return list(local.matched)
        try:
            reply = await self._client().segmentation.EvaluateConditions(request, timeout=timeout)
        except grpc.aio.AioRpcError as err:
            log.warning("segmentation EvaluateConditions failed: %s", err.code().name)
            return None
        return list(reply.matched)
