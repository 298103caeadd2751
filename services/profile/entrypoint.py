"""gRPC entrypoint of ProfileService: translate, call a handler, translate back. Nothing else."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from typing import Any

from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as pb
from google.protobuf import field_mask_pb2, json_format

from libs.auth import ADMIN, current_principal, require_scope
from libs.bus.envelope import unpack
from libs.bus.port import EventBus
from libs.errors import InvalidArgument, PermissionDenied
from libs.protoutil import enum, ts
from libs.rpc.service import RpcService
from libs.validation import (
    check_finite,
    check_text,
    decode_page_token,
    encode_page_token,
    page_size,
)
from services.profile import handlers as h
from services.profile.codec import TOPIC_CHANGED, event_to_proto, order_to_proto
from services.profile.domain import CartLine, OrderIn
from services.profile.ports import MergeRecord, PurchaseRecord
from services.profile.render import render_profile
from services.profile.translate import (
    MAX_EVENTS,
    attributes_in,
    check_update_mask,
    consents_in,
    event_in,
    lookup_in,
)

__all__ = ["SCOPES", "ProfileServicer", "profile_service"]

SCOPES = {
    "TrackEvents": "profile:write",
    "GetProfile": "profile:read",
    "BatchGetProfiles": "profile:read",
    "UpsertProfile": "profile:write",
    "SetTraits": "profile:write",
    "ListPurchases": "profile:read",
    # Its own scope: a merge moves a customer's traits of every namespace into another and
    # removes the source, so profile:write (one namespace of traits, no deletion) is not enough.
    "MergeProfiles": "profile:merge",
    "DeleteProfile": "profile:delete",
    "ExportProfile": "profile:export",
    "WatchProfileChanges": "profile:read",
}
PROFILE_FIELDS = frozenset(pb.Profile.DESCRIPTOR.fields_by_name)
# fullmatch: `$` would also match before a trailing newline ("points\n" was a key)
_NAMESPACE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_TRAIT_KEY = re.compile(r"[a-z][a-z0-9_.]{0,63}")
MAX_TRAITS = 100
# An export page stays under 1 MiB (or a quarter of the message limit, if that is smaller).
EXPORT_PAGE_BYTES = 1024 * 1024
_ITEM_OVERHEAD = 6  # a repeated field's tag and length prefix
_TOKEN_ROOM = 512  # next_page_token: ids of at most 32 + 128 characters, base64


def _mask(mask: field_mask_pb2.FieldMask, field: str = "field_mask") -> list[str]:
    paths = list(mask.paths)
    for path in paths:
        if path.split(".", 1)[0] not in PROFILE_FIELDS:
            raise InvalidArgument(field, f"unknown profile field {path!r}")
    return paths


def _masked(rendered: bytes, paths: list[str]) -> pb.Profile:
    profile = pb.GetProfileResponse.FromString(rendered).profile
    if not paths:
        return profile
    out = pb.Profile()
    field_mask_pb2.FieldMask(paths=paths).MergeMessage(profile, out)
    return out


def _require(message: Any, field: str) -> None:
    if not message.HasField(field):
        raise InvalidArgument(field, "is required: set customer_id or identity")


class ProfileServicer:
    def __init__(
        self, deps: h.ProfileDeps, bus: EventBus, export_page_bytes: int = EXPORT_PAGE_BYTES
    ) -> None:
        self.deps = deps
        self.bus = bus
        self.export_page_bytes = export_page_bytes

    async def TrackEvents(
        self, request: pb.TrackEventsRequest, _ctx: Any
    ) -> pb.TrackEventsResponse:
        if not request.events:
            raise InvalidArgument("events", "is required: send 1 to 1000 events")
        if len(request.events) > MAX_EVENTS:
            raise InvalidArgument(
                "events", f"has {len(request.events)} events; at most {MAX_EVENTS}"
            )
        now = self.deps.clock()
        items: list[Any] = []
        for i, event in enumerate(request.events):
            try:
                items.append(event_in(event, f"events[{i}]", now))
            except InvalidArgument as exc:
                field, reason = exc.violations[0]
                items.append(h.Rejection(i, event.event_id, field, reason))
        if all(isinstance(item, h.Rejection) for item in items):
            # Nothing acceptable: the caller's request as a whole is wrong.
            raise InvalidArgument([(r.field, r.reason) for r in items])
        result = await h.track_events(self.deps, items)
        return pb.TrackEventsResponse(
            accepted=result.accepted,
            duplicates=result.duplicates,
            rejected=[
                pb.RejectedEvent(index=r.index, event_id=r.event_id, field=r.field, reason=r.reason)
                for r in result.rejected
            ],
            customer_ids=result.customer_ids,
        )

    async def GetProfile(
        self, request: pb.GetProfileRequest, _ctx: Any
    ) -> pb.GetProfileResponse | bytes:
        _require(request, "customer")
        lookup = lookup_in(request.customer, "customer")
        paths = _mask(request.field_mask)
        rendered = await h.get_profile(self.deps, lookup)
        if not paths:
            return rendered  # the cached response bytes go out as they are
        return pb.GetProfileResponse(profile=_masked(rendered, paths))

    async def BatchGetProfiles(
        self, request: pb.BatchGetProfilesRequest, _ctx: Any
    ) -> pb.BatchGetProfilesResponse | bytes:
        if not request.customer_ids:
            raise InvalidArgument("customer_ids", "is required")
        if len(request.customer_ids) > MAX_EVENTS:
            raise InvalidArgument("customer_ids", f"at most {MAX_EVENTS} ids")
        ids = [
            check_text(c, f"customer_ids[{i}]", max_len=64, required=True).strip()
            for i, c in enumerate(request.customer_ids)
        ]
        paths = _mask(request.field_mask)
        found = await h.get_profiles(
            self.deps, [h.CustomerLookup(customer_id=c) for c in ids], "customer_ids"
        )
        missing = pb.BatchGetProfilesResponse(
            missing_customer_ids=[c for c, r in zip(ids, found, strict=True) if r is None]
        ).SerializeToString()
        if not paths:
            # GetProfileResponse.profile and BatchGetProfilesResponse.profiles are both field 1:
            # the cached bytes concatenate into the batch response without re-encoding.
            return b"".join(r for r in found if r is not None) + missing
        response = pb.BatchGetProfilesResponse.FromString(missing)
        response.profiles.extend(_masked(r, paths) for r in found if r is not None)
        return response

    async def UpsertProfile(
        self, request: pb.UpsertProfileRequest, _ctx: Any
    ) -> pb.UpsertProfileResponse:
        _require(request, "customer")
        lookup = lookup_in(request.customer, "customer")
        paths = list(request.update_mask.paths)
        check_update_mask(paths)
        attributes = attributes_in(request.attributes, paths)
        consents = consents_in(request.consents, paths)
        customer, created = await h.upsert_profile(self.deps, lookup, attributes, consents)
        return pb.UpsertProfileResponse(
            profile=await self._profile(customer.customer_id), created=created
        )

    async def SetTraits(self, request: pb.SetTraitsRequest, _ctx: Any) -> pb.SetTraitsResponse:
        _require(request, "customer")
        lookup = lookup_in(request.customer, "customer")
        if not _NAMESPACE.fullmatch(request.namespace):
            raise InvalidArgument("namespace", "must be lower_snake_case, 1-32 characters")
        principal = current_principal.get()
        if ADMIN not in principal.scopes and principal.name != request.namespace:
            raise PermissionDenied(
                f"{principal.name!r} may only write traits in namespace {principal.name!r}",
                reason="FOREIGN_NAMESPACE",
            )
        if not request.traits:
            raise InvalidArgument("traits", "is required")
        if len(request.traits) > MAX_TRAITS:
            raise InvalidArgument("traits", f"at most {MAX_TRAITS} traits a call")
        traits: dict[str, Any] = {}
        for key, value in request.traits.items():
            if not _TRAIT_KEY.fullmatch(key):
                raise InvalidArgument(f"traits[{key!r}]", "keys are lower_snake_case")
            if value.ByteSize() > 4096:
                raise InvalidArgument(f"traits[{key!r}]", "is larger than 4 KiB")
            kind = value.WhichOneof("kind")
            if kind is None:
                raise InvalidArgument(f"traits[{key!r}]", "has no value (use null to remove)")
            check_finite(value, f"traits[{key!r}]")
            traits[key] = None if kind == "null_value" else json_format.MessageToDict(value)
        customer = await h.set_traits(self.deps, lookup, request.namespace, traits)
        return pb.SetTraitsResponse(profile=await self._profile(customer.customer_id))

    async def ListPurchases(
        self, request: pb.ListPurchasesRequest, _ctx: Any
    ) -> pb.ListPurchasesResponse:
        _require(request, "customer")
        lookup = lookup_in(request.customer, "customer")
        size = page_size(request.page_size)
        scope = f"purchases:{request.customer.SerializeToString().hex()}"
        after = _cursor(decode_page_token(request.page_token, scope))
        rows, more = await h.list_purchases(self.deps, lookup, after, size)
        token = encode_page_token([rows[-1].placed_at, rows[-1].event_id], scope) if more else ""
        return pb.ListPurchasesResponse(
            purchases=[_purchase(r) for r in rows], next_page_token=token
        )

    async def MergeProfiles(
        self, request: pb.MergeProfilesRequest, _ctx: Any
    ) -> pb.MergeProfilesResponse:
        _require(request, "target")
        _require(request, "source")
        target = lookup_in(request.target, "target")
        source = lookup_in(request.source, "source")
        reason = check_text(request.reason, "reason", max_len=512)
        actor = current_principal.get().name
        customer, source_id = await h.merge_profiles(self.deps, target, source, actor, reason)
        return pb.MergeProfilesResponse(
            profile=await self._profile(customer.customer_id), merged_customer_id=source_id
        )

    async def DeleteProfile(
        self, request: pb.DeleteProfileRequest, _ctx: Any
    ) -> pb.DeleteProfileResponse:
        _require(request, "customer")
        customer_id = await h.delete_profile(self.deps, lookup_in(request.customer, "customer"))
        return pb.DeleteProfileResponse(customer_id=customer_id)

    async def ExportProfile(
        self, request: pb.ExportProfileRequest, _ctx: Any
    ) -> pb.ExportProfileResponse:
        _require(request, "customer")
        lookup = lookup_in(request.customer, "customer")
        size = page_size(request.page_size, default=1000)
        scope = f"export:{request.customer.SerializeToString().hex()}"
        cursor = _export_cursor(decode_page_token(request.page_token, scope))
        page = await h.export_profile(self.deps, lookup, cursor, size)
        response = pb.ExportProfileResponse()
        if page.customer is not None:
            response.profile.CopyFrom(
                render_profile(page.customer, page.identities, self.deps.clock())
            )
            response.merges.extend(_merge_record(m) for m in page.merges)
        items: list[tuple[str, Any, tuple[float, str]]] = [
            (
                "events",
                pb.StoredEvent(event=event_to_proto(e.event), received_at=ts(e.received_at)),
                (e.event.occurred_at, e.event.event_id),
            )
            for e in page.events
        ] + [("purchases", _purchase(p), (p.placed_at, p.event_id)) for p in page.purchases]
        # Bounded by size as well as by count: a page of events with large properties or
        # orders with many lines must stay well under the message limit.
        room = self.export_page_bytes - response.ByteSize() - _TOKEN_ROOM
        last: h.ExportCursor | None = None
        sent = 0
        for part, message, key in items:
            cost = message.ByteSize() + _ITEM_OVERHEAD
            if sent and cost > room:
                break
            getattr(response, part).append(message)
            room -= cost
            sent += 1
            last = h.ExportCursor(page.customer_id, part, key)
        if last is not None and (sent < len(items) or page.more):
            assert last.after is not None
            position = [last.customer_id, last.part, *last.after]
            response.next_page_token = encode_page_token(position, scope)
        return response

    async def WatchProfileChanges(
        self, request: pb.WatchProfileChangesRequest, context: Any
    ) -> AsyncIterator[pb.WatchProfileChangesResponse]:
        ids = set(request.filter.customer_ids)
        prefixes = list(request.filter.field_paths)
        if len(ids) > 10_000 or len(prefixes) > 100:
            raise InvalidArgument("filter", "at most 10,000 customer ids and 100 field paths")
        for i, path in enumerate(prefixes):
            check_text(path, f"filter.field_paths[{i}]", max_len=128, required=True)
            if path.split(".", 1)[0] not in PROFILE_FIELDS:
                raise InvalidArgument(f"filter.field_paths[{i}]", f"unknown profile field {path!r}")
        require_scope(SCOPES["WatchProfileChanges"])
        tail = self.bus.tail(TOPIC_CHANGED)
        try:
            # Tell the caller the subscription is live before the first change arrives.
            await context.send_initial_metadata((("x-watch", "subscribed"),))
            async for envelope in tail:
                change = unpack(envelope, pb.ProfileChanged)
                if ids and change.customer_id not in ids:
                    continue
                if prefixes and not _touches(change.changed_paths, prefixes):
                    continue
                yield pb.WatchProfileChangesResponse(change=change)
        finally:
            await tail.aclose()  # type: ignore[attr-defined]

    async def _profile(self, customer_id: str) -> pb.Profile:
        rendered = await h.get_profile(self.deps, h.CustomerLookup(customer_id=customer_id))
        return pb.GetProfileResponse.FromString(rendered).profile


# Storage keeps times as datetimes: year 1 to 9999.
_TIME_RANGE = (-62_135_596_800.0, 253_402_300_799.0)


def _cursor(position: Any, field: str = "page_token") -> tuple[float, str] | None:
    """(time, event id) of the last row a page held. Tokens are unsigned, so a caller can forge
    one: anything but a finite storable time and an event id is malformed, not a crash."""
    if position is None:
        return None
    if not (isinstance(position, list) and len(position) == 2):
        raise InvalidArgument(field, "is malformed")
    at, event_id = position
    low, high = _TIME_RANGE
    if (
        isinstance(at, bool)
        or not isinstance(at, int | float)
        or not math.isfinite(at)
        or not low <= at <= high
        or not isinstance(event_id, str)
        or len(event_id) > 128
    ):
        raise InvalidArgument(field, "is malformed")
    return float(at), event_id


def _export_cursor(position: Any) -> h.ExportCursor | None:
    if position is None:
        return None
    if not (isinstance(position, list) and len(position) == 4):
        raise InvalidArgument("page_token", "is malformed")
    customer_id, part, *after = position
    if not isinstance(customer_id, str) or part not in ("events", "purchases"):
        raise InvalidArgument("page_token", "is malformed")
    return h.ExportCursor(customer_id, part, _cursor(after))


def _merge_record(record: MergeRecord) -> pb.MergeRecord:
    return pb.MergeRecord(
        source_customer_id=record.source_customer_id,
        target_customer_id=record.target_customer_id,
        actor=record.actor,
        reason=record.reason,
        merged_at=ts(record.merged_at),
    )


def _touches(changed: Any, prefixes: list[str]) -> bool:
    for path in changed:
        for prefix in prefixes:
            if (
                path == "*"
                or path == prefix
                or path.startswith(prefix + ".")
                or prefix.startswith(path + ".")
            ):
                return True
    return False


def _purchase(record: PurchaseRecord) -> pb.Purchase:
    lines = tuple(CartLine(*line) for line in record.lines)
    order = OrderIn(record.order_id, lines, record.total_micros, record.currency, record.placed_at)
    return pb.Purchase(
        order_id=record.order_id,
        order=order_to_proto(order),
        is_return=record.is_return,
        event_id=record.event_id,
        channel=enum(common_pb2.Channel, f"CHANNEL_{record.channel}"),
    )


def profile_service(
    deps: h.ProfileDeps, bus: EventBus, max_message_bytes: int = 8 * 1024 * 1024
) -> RpcService:
    page_bytes = min(EXPORT_PAGE_BYTES, max_message_bytes // 4)
    return RpcService(
        descriptor=pb.DESCRIPTOR.services_by_name["ProfileService"],
        servicer=ProfileServicer(deps, bus, page_bytes),
        scopes=SCOPES,
        short_name="profile",
    )
