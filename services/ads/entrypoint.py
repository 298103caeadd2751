"""gRPC entrypoint of AdsService: translate, call a handler, translate back. Nothing else."""

from __future__ import annotations

from typing import Any

from backcrm.ads.v1 import ads_service_pb2 as pb

from libs.auth import ADMIN, current_principal
from libs.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable
from libs.resolver import ResolveCustomer, customer_of
from libs.rpc.service import RpcService
from libs.validation import check_text, decode_page_token, encode_page_token, page_size
from services.ads import handlers as h
from services.ads.render import campaign_to_proto, selection_to_proto, stats_to_proto
from services.ads.translate import (
    campaign_in,
    campaign_patch_in,
    context_in,
    id_in,
    interaction_type_in,
    limit_in,
    occurred_at_in,
    status_filter_in,
)

__all__ = ["CONTRACT", "SCOPES", "AdsServicer", "ads_service"]

CONTRACT = pb.DESCRIPTOR.services_by_name["AdsService"]
READ, WRITE = "ads:read", "ads:write"
SCOPES = {
    # Campaigns decide what every customer is shown: the admin's, like bonus programs.
    "CreateCampaign": ADMIN,
    "GetCampaign": READ,
    "UpdateCampaign": ADMIN,
    "ListCampaigns": READ,
    "PauseCampaign": ADMIN,
    "ResumeCampaign": ADMIN,
    # The channels ask for ads and report what they showed.
    "SelectAds": READ,
    "RecordInteraction": WRITE,
    "GetCampaignStats": READ,
}


class AdsServicer:
    def __init__(self, deps: h.AdsDeps, resolve: ResolveCustomer) -> None:
        self.deps = deps
        self.resolve = resolve

    def _campaign(self, campaign: Any) -> pb.Campaign:
        return campaign_to_proto(campaign, self.deps.clock())

    async def CreateCampaign(
        self, request: pb.CreateCampaignRequest, _ctx: Any
    ) -> pb.CreateCampaignResponse:
        created = await h.create_campaign(self.deps, campaign_in(request.campaign))
        return pb.CreateCampaignResponse(campaign=self._campaign(created))

    async def GetCampaign(
        self, request: pb.GetCampaignRequest, _ctx: Any
    ) -> pb.GetCampaignResponse:
        campaign = await h.get_campaign(self.deps, id_in(request.campaign_id, "campaign_id"))
        return pb.GetCampaignResponse(campaign=self._campaign(campaign))

    async def UpdateCampaign(
        self, request: pb.UpdateCampaignRequest, _ctx: Any
    ) -> pb.UpdateCampaignResponse:
        campaign_id, fields = campaign_patch_in(request.campaign, request.update_mask)
        updated = await h.update_campaign(self.deps, campaign_id, fields)
        return pb.UpdateCampaignResponse(campaign=self._campaign(updated))

    async def ListCampaigns(
        self, request: pb.ListCampaignsRequest, _ctx: Any
    ) -> pb.ListCampaignsResponse:
        size = page_size(request.page_size)
        status = status_filter_in(request.status)
        brand = check_text(request.brand, "brand", max_len=200)
        scope = f"ads.campaigns/{status}/{brand}"
        position = decode_page_token(request.page_token, scope)
        after = None
        if position is not None:
            if (
                not isinstance(position, list)
                or len(position) != 2
                or type(position[0]) not in (int, float)
                or not isinstance(position[1], str)
            ):
                raise InvalidArgument("page_token", "is not a page token issued by this listing")
            after = (float(position[0]), position[1])
        campaigns, following = await h.list_campaigns(self.deps, status, brand, after, size)
        return pb.ListCampaignsResponse(
            campaigns=[self._campaign(c) for c in campaigns],
            next_page_token=encode_page_token(list(following), scope) if following else "",
        )

    async def PauseCampaign(
        self, request: pb.PauseCampaignRequest, _ctx: Any
    ) -> pb.PauseCampaignResponse:
        campaign_id = id_in(request.campaign_id, "campaign_id")
        campaign = await h.set_status(self.deps, campaign_id, "PAUSED")
        return pb.PauseCampaignResponse(campaign=self._campaign(campaign))

    async def ResumeCampaign(
        self, request: pb.ResumeCampaignRequest, _ctx: Any
    ) -> pb.ResumeCampaignResponse:
        campaign_id = id_in(request.campaign_id, "campaign_id")
        campaign = await h.set_status(self.deps, campaign_id, "ACTIVE")
        return pb.ResumeCampaignResponse(campaign=self._campaign(campaign))

    async def SelectAds(self, request: pb.SelectAdsRequest, _ctx: Any) -> pb.SelectAdsResponse:
        if request.explain and not current_principal.get().has(ADMIN):
            raise PermissionDenied(
                "explain needs the admin scope",
                reason="MISSING_SCOPE",
                metadata={"required_scope": ADMIN},
            )
        limit = limit_in(request.limit)
        context = context_in(request.context, self.deps.clock())
        customer_id, unresolved = "", False
        if request.HasField("customer") and request.customer.WhichOneof("ref") is not None:
            try:
                customer_id = await customer_of(request, "customer", self.resolve)
            except NotFound:
                customer_id = ""  # unknown customers get untargeted campaigns
            except Unavailable:
                # profile is down: the page still gets untargeted ads, and is told so
                customer_id, unresolved = "", True
        selection = await h.select_ads(self.deps, customer_id, context, limit, request.explain)
        selection.degraded |= unresolved
        return selection_to_proto(selection)

    async def RecordInteraction(
        self, request: pb.RecordInteractionRequest, _ctx: Any
    ) -> pb.RecordInteractionResponse:
        kind = interaction_type_in(request.type)
        occurred_at = occurred_at_in(request, self.deps.clock())
        recorded = await h.record_interaction(self.deps, request.tracking_token, kind, occurred_at)
        return pb.RecordInteractionResponse(
            counted=recorded.counted,
            campaign_id=recorded.campaign_id,
            creative_id=recorded.creative_id,
            over_limit=recorded.over_limit,
        )

    async def GetCampaignStats(
        self, request: pb.GetCampaignStatsRequest, _ctx: Any
    ) -> pb.GetCampaignStatsResponse:
        campaign, stats = await h.campaign_stats(
            self.deps, id_in(request.campaign_id, "campaign_id")
        )
        return stats_to_proto(campaign, stats)


def ads_service(deps: h.AdsDeps, resolve: ResolveCustomer) -> RpcService:
    return RpcService(
        descriptor=CONTRACT, servicer=AdsServicer(deps, resolve), scopes=SCOPES, short_name="ads"
    )
