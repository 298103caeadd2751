"""gRPC entrypoint of RecommendService: translate, call a handler, translate back. Nothing
else."""

from __future__ import annotations

from typing import Any

from backcrm.recommend.v1 import recommend_service_pb2 as pb

from libs.auth import ADMIN
from libs.errors import InvalidArgument, NotFound, Unavailable
from libs.resolver import ResolveCustomer, customer_of
from libs.rpc.service import RpcService
from libs.validation import check_text, decode_page_token, encode_page_token, page_size
from services.recommend import handlers as h
from services.recommend.mix import Strategy
from services.recommend.render import item_to_proto, recommended_to_proto, showcase_to_proto
from services.recommend.translate import (
    context_in,
    id_in,
    items_in,
    limit_in,
    showcase_in,
    showcase_patch_in,
    sku_in,
    strategy_in,
)

__all__ = ["CONTRACT", "SCOPES", "RecommendServicer", "recommend_service"]

CONTRACT = pb.DESCRIPTOR.services_by_name["RecommendService"]
READ, WRITE = "recommend:read", "recommend:write"
SCOPES = {
    # The shop's catalogue feed.
    "UpsertItems": WRITE,
    "ListItems": READ,
    # Showcases decide what every customer is shown: the admin's, like ads campaigns.
    "CreateShowcase": ADMIN,
    "GetShowcase": READ,
    "UpdateShowcase": ADMIN,
    "ListShowcases": READ,
    # The channels ask for shelves.
    "GetRecommendations": READ,
    "GetSimilarItems": READ,
}


class RecommendServicer:
    def __init__(self, deps: h.RecommendDeps, resolve: ResolveCustomer) -> None:
        self.deps = deps
        self.resolve = resolve

    async def UpsertItems(
        self, request: pb.UpsertItemsRequest, _ctx: Any
    ) -> pb.UpsertItemsResponse:
        items, rejected = items_in(request.items)
        created, updated = await h.upsert_items(self.deps, items)
        return pb.UpsertItemsResponse(
            created=created,
            updated=updated,
            rejected=[
                pb.RejectedItem(index=r.index, sku=r.sku, field=r.field, reason=r.reason)
                for r in rejected
            ],
        )

    async def ListItems(self, request: pb.ListItemsRequest, _ctx: Any) -> pb.ListItemsResponse:
        size = page_size(request.page_size)
        category = check_text(request.category, "category", max_len=200)
        scope = f"recommend.items/{category}"
        position = decode_page_token(request.page_token, scope)
        if position is not None and not isinstance(position, str):
            raise InvalidArgument("page_token", "is not a page token issued by this listing")
        items, following = await h.list_items(self.deps, category, position, size)
        return pb.ListItemsResponse(
            items=[item_to_proto(i) for i in items],
            next_page_token=encode_page_token(following, scope) if following else "",
        )

    async def CreateShowcase(
        self, request: pb.CreateShowcaseRequest, _ctx: Any
    ) -> pb.CreateShowcaseResponse:
        created = await h.create_showcase(self.deps, showcase_in(request.showcase))
        return pb.CreateShowcaseResponse(showcase=showcase_to_proto(created))

    async def GetShowcase(
        self, request: pb.GetShowcaseRequest, _ctx: Any
    ) -> pb.GetShowcaseResponse:
        showcase = await h.get_showcase(self.deps, id_in(request.showcase_id, "showcase_id"))
        return pb.GetShowcaseResponse(showcase=showcase_to_proto(showcase))

    async def UpdateShowcase(
        self, request: pb.UpdateShowcaseRequest, _ctx: Any
    ) -> pb.UpdateShowcaseResponse:
        showcase_id, fields = showcase_patch_in(request.showcase, request.update_mask)
        updated = await h.update_showcase(self.deps, showcase_id, fields)
        return pb.UpdateShowcaseResponse(showcase=showcase_to_proto(updated))

    async def ListShowcases(
        self, request: pb.ListShowcasesRequest, _ctx: Any
    ) -> pb.ListShowcasesResponse:
        size = page_size(request.page_size)
        scope = "recommend.showcases"
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
        showcases, following = await h.list_showcases(self.deps, after, size)
        return pb.ListShowcasesResponse(
            showcases=[showcase_to_proto(s) for s in showcases],
            next_page_token=encode_page_token(list(following), scope) if following else "",
        )

    async def GetRecommendations(
        self, request: pb.GetRecommendationsRequest, _ctx: Any
    ) -> pb.GetRecommendationsResponse:
        showcase_id = id_in(request.showcase_id, "showcase_id")
        limit = limit_in(request.limit)
        context = context_in(request.context)
        customer_id = ""
        if request.HasField("customer") and request.customer.WhichOneof("ref") is not None:
            try:
                customer_id = await customer_of(request, "customer", self.resolve)
            except (NotFound, Unavailable):
                # unknown customers (and any while profile is down) get the non-personal shelf
                customer_id = ""
        shelf = await h.recommend(self.deps, customer_id, showcase_id, context, limit)
        return pb.GetRecommendationsResponse(
            items=[recommended_to_proto(m, shelf.catalogue[m.sku]) for m in shelf.items],
            customer_id=shelf.customer_id,
        )

    async def GetSimilarItems(
        self, request: pb.GetSimilarItemsRequest, _ctx: Any
    ) -> pb.GetSimilarItemsResponse:
        sku = sku_in(request.sku, "sku")
        limit = limit_in(request.limit)
        strategy = strategy_in(request.strategy, "strategy", required=False)
        if strategy not in (Strategy.UNSPECIFIED, Strategy.BOUGHT_TOGETHER, Strategy.SIMILAR_ITEMS):
            raise InvalidArgument(
                "strategy", "must be STRATEGY_BOUGHT_TOGETHER or STRATEGY_SIMILAR_ITEMS"
            )
        found = await h.similar_items(self.deps, sku, limit, strategy)
        return pb.GetSimilarItemsResponse(
            items=[recommended_to_proto(m, found.catalogue[m.sku]) for m in found.items]
        )


def recommend_service(deps: h.RecommendDeps, resolve: ResolveCustomer) -> RpcService:
    return RpcService(
        descriptor=CONTRACT,
        servicer=RecommendServicer(deps, resolve),
        scopes=SCOPES,
        short_name="recommend",
    )
