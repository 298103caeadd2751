"""gRPC entrypoint of ProfileService: translate, call a handler, translate back. Nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from backcrm.profile.v1 import profile_service_pb2 as pb
from google.protobuf import field_mask_pb2

from libs.auth import current_principal, require_scope
from libs.bus.port import EventBus
from libs.errors import InvalidArgument
from libs.protoutil import ts
from libs.rpc.service import RpcService
from libs.topics import PROFILE_CHANGED
from libs.validation import check_text, decode_page_token, encode_page_token, page_size
from services.profile import handlers as h
from services.profile.render import (
    event_to_proto,
    merge_record_to_proto,
    purchase_to_proto,
    render_profile,
)
from services.profile.translate import (
    attributes_in,
    check_update_mask,
    consents_in,
    customer_ids_in,
    customer_in,
    customers_in,
    events_in,
    export_cursor_in,
    field_mask_in,
    namespace_in,
    row_cursor_in,
    traits_in,
    watch_paths_in,
)

__all__ = ["CONTRACT", "EXPORT_PAGE_BYTES", "SCOPES", "ProfileServicer", "profile_service"]

CONTRACT = pb.DESCRIPTOR.services_by_name["ProfileService"]
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
# An export page stays under 1 MiB (or a quarter of the message limit, if that is smaller).
EXPORT_PAGE_BYTES = 1024 * 1024
_ITEM_OVERHEAD = 6  # a repeated field's tag and length prefix
_TOKEN_ROOM = 512  # next_page_token: ids of at most 32 + 128 characters, base64


def _masked(rendered: bytes, paths: list[str]) -> pb.Profile:
    profile = pb.GetProfileResponse.FromString(rendered).profile
    if not paths:
        return profile
    out = pb.Profile()
    field_mask_pb2.FieldMask(paths=paths).MergeMessage(profile, out)
    return out


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
        items = events_in(request.events, self.deps.clock())
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
        lookup = customer_in(request)
        paths = field_mask_in(request.field_mask)
        rendered = await h.get_profile(self.deps, lookup)
        if not paths:
            return rendered  # the cached response bytes go out as they are
        return pb.GetProfileResponse(profile=_masked(rendered, paths))

    async def BatchGetProfiles(
        self, request: pb.BatchGetProfilesRequest, _ctx: Any
    ) -> pb.BatchGetProfilesResponse | bytes:
        ids = customer_ids_in(request.customer_ids)
        paths = field_mask_in(request.field_mask)
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
        lookup = customer_in(request)
        paths = list(request.update_mask.paths)
        check_update_mask(paths)
        attributes = attributes_in(request.attributes, paths)
        consents = consents_in(request.consents, paths)
        customer, created = await h.upsert_profile(self.deps, lookup, attributes, consents)
        return pb.UpsertProfileResponse(
            profile=await self._profile(customer.customer_id), created=created
        )

    async def SetTraits(self, request: pb.SetTraitsRequest, _ctx: Any) -> pb.SetTraitsResponse:
        lookup = customer_in(request)
        namespace = namespace_in(request.namespace)
        h.check_trait_namespace(current_principal.get(), namespace)
        traits = traits_in(request.traits)
        customer = await h.set_traits(self.deps, lookup, namespace, traits)
        return pb.SetTraitsResponse(profile=await self._profile(customer.customer_id))

    async def ListPurchases(
        self, request: pb.ListPurchasesRequest, _ctx: Any
    ) -> pb.ListPurchasesResponse:
        lookup = customer_in(request)
        size = page_size(request.page_size)
        scope = f"purchases:{request.customer.SerializeToString().hex()}"
        after = row_cursor_in(decode_page_token(request.page_token, scope))
        rows, more = await h.list_purchases(self.deps, lookup, after, size)
        token = encode_page_token([rows[-1].placed_at, rows[-1].event_id], scope) if more else ""
        return pb.ListPurchasesResponse(
            purchases=[purchase_to_proto(r) for r in rows], next_page_token=token
        )

    async def MergeProfiles(
        self, request: pb.MergeProfilesRequest, _ctx: Any
    ) -> pb.MergeProfilesResponse:
        target, source = customers_in(request, "target", "source")
        reason = check_text(request.reason, "reason", max_len=512)
        actor = current_principal.get().name
        customer, source_id = await h.merge_profiles(self.deps, target, source, actor, reason)
        return pb.MergeProfilesResponse(
            profile=await self._profile(customer.customer_id), merged_customer_id=source_id
        )

    async def DeleteProfile(
        self, request: pb.DeleteProfileRequest, _ctx: Any
    ) -> pb.DeleteProfileResponse:
        customer_id = await h.delete_profile(self.deps, customer_in(request))
        return pb.DeleteProfileResponse(customer_id=customer_id)

    async def ExportProfile(
        self, request: pb.ExportProfileRequest, _ctx: Any
    ) -> pb.ExportProfileResponse:
        lookup = customer_in(request)
        size = page_size(request.page_size, default=1000)
        scope = f"export:{request.customer.SerializeToString().hex()}"
        cursor = export_cursor_in(decode_page_token(request.page_token, scope))
        page = await h.export_profile(self.deps, lookup, cursor, size)
        response = pb.ExportProfileResponse()
        if page.customer is not None:
            response.profile.CopyFrom(
                render_profile(page.customer, page.identities, self.deps.clock())
            )
            response.merges.extend(merge_record_to_proto(m) for m in page.merges)
        items: list[tuple[str, Any, tuple[float, str]]] = [
            (
                "events",
                pb.StoredEvent(event=event_to_proto(e.event), received_at=ts(e.received_at)),
                (e.event.occurred_at, e.event.event_id),
            )
            for e in page.events
        ] + [("purchases", purchase_to_proto(p), (p.placed_at, p.event_id)) for p in page.purchases]
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
        if len(ids) > 10_000 or len(request.filter.field_paths) > 100:
            raise InvalidArgument("filter", "at most 10,000 customer ids and 100 field paths")
        prefixes = watch_paths_in(request.filter.field_paths)
        require_scope(SCOPES["WatchProfileChanges"])
        tail = self.bus.tail(PROFILE_CHANGED.name)
        try:
            # Tell the caller the subscription is live before the first change arrives.
            await context.send_initial_metadata((("x-watch", "subscribed"),))
            async for envelope in tail:
                change = PROFILE_CHANGED.unpack(envelope)
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


def profile_service(
    deps: h.ProfileDeps, bus: EventBus, max_message_bytes: int = 8 * 1024 * 1024
) -> RpcService:
    page_bytes = min(EXPORT_PAGE_BYTES, max_message_bytes // 4)
    return RpcService(
        descriptor=CONTRACT,
        servicer=ProfileServicer(deps, bus, page_bytes),
        scopes=SCOPES,
        short_name="profile",
    )
