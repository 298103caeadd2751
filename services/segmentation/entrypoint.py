"""gRPC entrypoint of SegmentationService: validate, translate, call the use case, answer."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

from backcrm.segmentation.v1 import segmentation_service_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

from libs.bus.port import EventBus
from libs.errors import InvalidArgument
from libs.protoutil import enum
from libs.resolver import ResolveCustomer, customer_of
from libs.rpc.service import RpcService
from libs.topics import SEGMENTATION_MEMBERSHIP
from libs.validation import check_enum, check_text, decode_page_token, encode_page_token, page_size
from services.segmentation import handlers
from services.segmentation.conditions import Node
from services.segmentation.facts import ContextFacts
from services.segmentation.handlers import SegmentationDeps
from services.segmentation.templates import TEMPLATES, template_condition
from services.segmentation.translate import (
    conditions_in,
    context_facts,
    rfm_bounds,
    segment_proto,
)

__all__ = ["CONTRACT", "SCOPES", "SegmentationServicer", "segmentation_service"]

CONTRACT = pb.DESCRIPTOR.services_by_name["SegmentationService"]
READ, ADMIN = "segments:read", "admin"
SCOPES = {
    "CreateSegment": ADMIN,
    "GetSegment": READ,
    "UpdateSegment": ADMIN,
    "DeleteSegment": ADMIN,
    "ListSegments": READ,
    "PreviewSegment": READ,
    "GetMemberships": READ,
    "EvaluateSegments": READ,
    "EvaluateConditions": READ,
    "ListMembers": READ,
    "WatchMembershipChanges": READ,
    "RecomputeRfm": ADMIN,
    "ListSegmentTemplates": READ,
}
MAX_SAMPLE = 1000
MAX_IDS = 1000
# Ends of the Timestamp range (0001-01-01 .. 9999-12-31), as epoch seconds.
MAX_TIMESTAMP_SECONDS = 253_402_300_799


# An id as segmentation and profile make them (hex, uuid) passes this at once; anything else
# goes through the full check, which names what is wrong.
_PLAIN_ID = re.compile(r"[0-9A-Za-z_.:-]{1,64}")
# A list of such ids joined by newlines: one match for the whole list (when the newlines are
# exactly the joins: an id holding one is not plain).
_PLAIN_IDS = re.compile(r"(?:[0-9A-Za-z_.:-]{1,64}\n)*[0-9A-Za-z_.:-]{1,64}")


def _segment_id(value: str, field: str) -> str:
    if _PLAIN_ID.fullmatch(value):
        return value
    return check_text(value, field, max_len=64, required=True).strip()


def _seconds(stamp: Timestamp, field: str) -> float:
    if not 0 <= stamp.nanos <= 999_999_999:
        raise InvalidArgument(f"{field}.nanos", "must be between 0 and 999,999,999")
    if not 0 < stamp.seconds <= MAX_TIMESTAMP_SECONDS:
        raise InvalidArgument(field, "must be after 1970 and before year 10000")
    return stamp.seconds + stamp.nanos / 1e9


def _cursor(token: str, scope: str) -> str | None:
    """The position a page token of this listing holds: an id, never anything else."""
    after = decode_page_token(token, scope)
    if after is None:
        return None
    if not isinstance(after, str) or not after or len(after) > 64 or not after.isprintable():
        raise InvalidArgument("page_token", "is malformed")
    try:
        after.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate from a forged token
        raise InvalidArgument("page_token", "is malformed") from exc
    return after


class SegmentationServicer:
    def __init__(self, deps: SegmentationDeps, bus: EventBus, resolve: ResolveCustomer) -> None:
        self.deps = deps
        self.bus = bus
        self.resolve = resolve

    async def _parse(self, condition: Any, field: str) -> Node:
        return (await self._parse_all([(condition, field)], field))[0]

    async def _parse_all(self, conditions: Sequence[tuple[Any, str]], field: str) -> list[Node]:
        # segment references resolve against every definition
        await handlers.refresh_catalog(self.deps)
        return await conditions_in(conditions, field, self.deps.catalogs.exists)

    async def CreateSegment(
        self, request: pb.CreateSegmentRequest, _ctx: Any
    ) -> pb.CreateSegmentResponse:
        segment = request.segment
        name = check_text(segment.name, "segment.name", max_len=200, required=True).strip()
        description = check_text(
            segment.description, "segment.description", max_len=2000, multiline=True
        )
        template = segment.template
        if template:
            if template not in TEMPLATES:
                raise InvalidArgument(
                    "segment.template", f"unknown template {template!r}; see ListSegmentTemplates"
                )
            if segment.HasField("condition"):
                raise InvalidArgument(
                    "segment.condition", "leave it unset when a template is given"
                )
            condition = template_condition(template)
        elif not segment.HasField("condition"):
            raise InvalidArgument("segment.condition", "is required (or name a template)")
        else:
            condition = segment.condition
        node = await self._parse(condition, "segment.condition")
        record = await handlers.create_segment(
            self.deps, name, description, condition.SerializeToString(), node, template
        )
        return pb.CreateSegmentResponse(segment=segment_proto(record))

    async def GetSegment(self, request: pb.GetSegmentRequest, _ctx: Any) -> pb.GetSegmentResponse:
        record = await handlers.get_segment(
            self.deps, _segment_id(request.segment_id, "segment_id")
        )
        return pb.GetSegmentResponse(segment=segment_proto(record))

    async def UpdateSegment(
        self, request: pb.UpdateSegmentRequest, _ctx: Any
    ) -> pb.UpdateSegmentResponse:
        segment = request.segment
        segment_id = _segment_id(segment.segment_id, "segment.segment_id")
        paths = list(request.update_mask.paths) or [
            p for p in ("name", "description", "condition") if _given(segment, p)
        ]
        if not paths:
            raise InvalidArgument("update_mask", "names nothing to update")
        for path in paths:
            if path not in ("name", "description", "condition"):
                raise InvalidArgument("update_mask", f"cannot update {path!r}")
        name = description = None
        condition = node = None
        if "name" in paths:
            name = check_text(segment.name, "segment.name", max_len=200, required=True).strip()
        if "description" in paths:
            description = check_text(
                segment.description, "segment.description", max_len=2000, multiline=True
            )
        if "condition" in paths:
            if not segment.HasField("condition"):
                raise InvalidArgument("segment.condition", "is required")
            node = await self._parse(segment.condition, "segment.condition")
            condition = segment.condition.SerializeToString()
        record = await handlers.update_segment(
            self.deps, segment_id, name, description, condition, node
        )
        return pb.UpdateSegmentResponse(segment=segment_proto(record))

    async def DeleteSegment(
        self, request: pb.DeleteSegmentRequest, _ctx: Any
    ) -> pb.DeleteSegmentResponse:
        segment_id = _segment_id(request.segment_id, "segment_id")
        await handlers.delete_segment(self.deps, segment_id)
        return pb.DeleteSegmentResponse(segment_id=segment_id)

    async def ListSegments(
        self, request: pb.ListSegmentsRequest, _ctx: Any
    ) -> pb.ListSegmentsResponse:
        size = page_size(request.page_size)
        kind = check_enum(request.kind, pb.SegmentKind, "kind", required=False) or None
        scope = f"segments:{kind or ''}"
        after = _cursor(request.page_token, scope)
        records = await handlers.list_segments(self.deps, after, size + 1, kind)
        more = len(records) > size
        records = records[:size]
        token = encode_page_token(records[-1].segment_id, scope) if more else ""
        return pb.ListSegmentsResponse(
            segments=[segment_proto(r) for r in records], next_page_token=token
        )

    async def PreviewSegment(
        self, request: pb.PreviewSegmentRequest, _ctx: Any
    ) -> pb.PreviewSegmentResponse:
        if not request.HasField("condition"):
            raise InvalidArgument("condition", "is required")
        if not 0 <= request.sample_size <= MAX_SAMPLE:
            raise InvalidArgument("sample_size", f"must be between 0 and {MAX_SAMPLE}")
        node = await self._parse(request.condition, "condition")
        preview = await handlers.preview_segment(self.deps, node, request.sample_size or 10)
        return pb.PreviewSegmentResponse(
            estimated_count=preview.count,
            sample_customer_ids=preview.sample,
            exact=True,
            kind=enum(pb.SegmentKind, f"SEGMENT_KIND_{preview.kind}"),
        )

    async def GetMemberships(
        self, request: pb.GetMembershipsRequest, _ctx: Any
    ) -> pb.GetMembershipsResponse:
        customer_id = await self._customer(request, "customer")
        segments = await handlers.get_memberships(self.deps, customer_id)
        return pb.GetMembershipsResponse(segment_ids=segments, customer_id=customer_id)

    async def EvaluateSegments(
        self, request: pb.EvaluateSegmentsRequest, _ctx: Any
    ) -> pb.EvaluateSegmentsResponse:
        customer_id = await self._customer(request, "customer")
        ids = self._ids(request.segment_ids, "segment_ids")
        context = self._context(request)
        matched, unknown = await handlers.evaluate_segments(self.deps, customer_id, context, ids)
        return pb.EvaluateSegmentsResponse(
            segment_ids=matched, customer_id=customer_id, unknown_segment_ids=unknown
        )

    async def EvaluateConditions(
        self, request: pb.EvaluateConditionsRequest, _ctx: Any
    ) -> pb.EvaluateConditionsResponse:
        customer_id = await self._customer(request, "customer")
        if not request.conditions:
            raise InvalidArgument("conditions", "is required")
        if len(request.conditions) > 100:
            raise InvalidArgument("conditions", "at most 100 conditions a call")
        nodes = await self._parse_all(
            [(c, f"conditions[{i}]") for i, c in enumerate(request.conditions)], "conditions"
        )
        context = self._context(request)
        matched = await handlers.evaluate_conditions(self.deps, customer_id, context, nodes)
        return pb.EvaluateConditionsResponse(matched=matched, customer_id=customer_id)

    async def ListMembers(
        self, request: pb.ListMembersRequest, _ctx: Any
    ) -> pb.ListMembersResponse:
        segment_id = _segment_id(request.segment_id, "segment_id")
        size = page_size(request.page_size)
        scope = f"members:{segment_id}"
        after = _cursor(request.page_token, scope)
        record, ids = await handlers.list_members(self.deps, segment_id, after, size + 1)
        more = len(ids) > size
        ids = ids[:size]
        token = encode_page_token(ids[-1], scope) if more else ""
        return pb.ListMembersResponse(
            customer_ids=ids,
            next_page_token=token,
            state=enum(pb.SegmentState, f"SEGMENT_STATE_{record.state}"),
        )

    async def WatchMembershipChanges(
        self, request: pb.WatchMembershipChangesRequest, context: Any
    ) -> AsyncIterator[pb.WatchMembershipChangesResponse]:
        segments = set(self._ids(request.segment_ids, "segment_ids"))
        customers = set(self._ids(request.customer_ids, "customer_ids"))
        tail = self.bus.tail(SEGMENTATION_MEMBERSHIP.name)
        try:
            await context.send_initial_metadata((("x-watch", "subscribed"),))
            async for envelope in tail:
                change = SEGMENTATION_MEMBERSHIP.unpack(envelope)
                if segments and change.segment_id not in segments:
                    continue
                if customers and change.customer_id not in customers:
                    continue
                yield pb.WatchMembershipChangesResponse(change=change)
        finally:
            await tail.aclose()  # type: ignore[attr-defined]

    async def RecomputeRfm(
        self, request: pb.RecomputeRfmRequest, _ctx: Any
    ) -> pb.RecomputeRfmResponse:
        as_of = _seconds(request.as_of, "as_of") if request.HasField("as_of") else None
        result = await handlers.recompute_rfm(self.deps, as_of)
        computed = Timestamp()
        computed.FromNanoseconds(int((as_of or self.deps.clock()) * 1e9))
        return pb.RecomputeRfmResponse(
            scored_customers=len(result.scores), computed_at=computed, bounds=rfm_bounds(result)
        )

    async def ListSegmentTemplates(
        self, request: pb.ListSegmentTemplatesRequest, _ctx: Any
    ) -> pb.ListSegmentTemplatesResponse:
        return pb.ListSegmentTemplatesResponse(
            templates=[
                pb.SegmentTemplate(
                    template=t.key,
                    name=t.name,
                    description=t.description,
                    condition=template_condition(t.key),
                )
                for t in TEMPLATES.values()
            ]
        )

    def _context(self, request: Any) -> ContextFacts | None:
        if not request.HasField("context"):
            return None
        return context_facts(request.context, self.deps.clock())

    async def _customer(self, request: Any, field: str) -> str:
        return await customer_of(request, field, self.resolve)

    @staticmethod
    def _ids(values: Any, field: str) -> list[str]:
        if len(values) > MAX_IDS:
            raise InvalidArgument(field, f"at most {MAX_IDS} ids")
        ids = list(values)
        joined = "\n".join(ids)
        if ids and joined.count("\n") == len(ids) - 1 and _PLAIN_IDS.fullmatch(joined):
            return ids  # every one plain: what the per-id check would return
        return [_segment_id(v, f"{field}[{i}]") for i, v in enumerate(ids)]


def _given(segment: pb.Segment, path: str) -> bool:
    if path == "condition":
        return segment.HasField("condition")
    return bool(getattr(segment, path))


def segmentation_service(
    deps: SegmentationDeps, bus: EventBus, resolve: ResolveCustomer
) -> RpcService:
    return RpcService(
        descriptor=CONTRACT,
        servicer=SegmentationServicer(deps, bus, resolve),
        scopes=SCOPES,
        short_name="segmentation",
    )
