"""gRPC entrypoint of BonusService: translate, call a handler, translate back. Nothing else."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from backcrm.bonus.v1 import bonus_service_pb2 as pb

from libs.auth import current_principal
from libs.errors import InvalidArgument, NotFound, PermissionDenied
from libs.protoutil import money
from libs.resolver import ResolveCustomer, customer_of
from libs.rpc.service import RpcService
from libs.validation import check_enum, check_text, decode_page_token, encode_page_token, page_size
from services.bonus import handlers as h
from services.bonus import offers as o
from services.bonus.render import (
    account_to_proto,
    program_to_proto,
    promotion_to_proto,
    quote_to_proto,
    report_to_proto,
    transaction_to_proto,
)
from services.bonus.translate import (
    id_in,
    key_in,
    order_in,
    points_in,
    program_in,
    program_patch_in,
    promotion_in,
    promotion_patch_in,
    quote_request_in,
    signed_points_in,
)

__all__ = ["CONTRACT", "SCOPES", "BonusServicer", "bonus_service"]

CONTRACT = pb.DESCRIPTOR.services_by_name["BonusService"]
READ, WRITE, ADMIN = "bonus:read", "bonus:write", "admin"
# Positive credits another service grants (the ads service's rewarded clicks): nothing else.
REWARD = "bonus:reward"
SCOPES = {
    # A program decides what every customer earns: the admin's, like segment definitions.
    "CreateProgram": ADMIN,
    "GetProgram": READ,
    "UpdateProgram": ADMIN,
    "CreatePromotion": ADMIN,
    "GetPromotion": READ,
    "UpdatePromotion": ADMIN,
    "ListPromotions": READ,
    "PausePromotion": ADMIN,
    "Enroll": WRITE,
    "GetAccount": READ,
    "Accrue": WRITE,
    "Redeem": WRITE,
    "Reverse": WRITE,
    "ListTransactions": READ,
    # A correction outside every rule of the program: the admin's.
    "AdjustPoints": ADMIN,
    "RewardPoints": REWARD,
    "QuoteOffer": READ,
    "GetPromotionReport": READ,
}
MAX_QUOTE_ID = 8192


class BonusServicer:
    def __init__(self, deps: h.BonusDeps, offers: o.OfferDeps, resolve: ResolveCustomer) -> None:
        self.deps = deps
        self.offers = offers
        self.resolve = resolve

    # programs

    async def CreateProgram(
        self, request: pb.CreateProgramRequest, _ctx: Any
    ) -> pb.CreateProgramResponse:
        program, value_currency = program_in(request.program)
        created = await h.create_program(self.deps, program, value_currency)
        return pb.CreateProgramResponse(program=program_to_proto(created))

    async def GetProgram(self, request: pb.GetProgramRequest, _ctx: Any) -> pb.GetProgramResponse:
        program = await h.get_program(self.deps, id_in(request.program_id, "program_id"))
        return pb.GetProgramResponse(program=program_to_proto(program))

    async def UpdateProgram(
        self, request: pb.UpdateProgramRequest, _ctx: Any
    ) -> pb.UpdateProgramResponse:
        program_id, patch = program_patch_in(request.program, request.update_mask)
        updated = await h.update_program(self.deps, program_id, patch)
        return pb.UpdateProgramResponse(program=program_to_proto(updated))

    # the ledger

    async def _account_of(self, request: Any) -> tuple[str, str]:
        program_id = id_in(request.program_id, "program_id")
        return program_id, await customer_of(request, "customer", self.resolve)

    async def Enroll(self, request: pb.EnrollRequest, _ctx: Any) -> pb.EnrollResponse:
        outcome = await h.enroll(self.deps, *await self._account_of(request))
        response = pb.EnrollResponse(account=account_to_proto(outcome.account))
        if outcome.movement is not None:
            response.welcome.CopyFrom(transaction_to_proto(outcome.movement))
        return response

    async def GetAccount(self, request: pb.GetAccountRequest, _ctx: Any) -> pb.GetAccountResponse:
        view = await h.get_account(self.deps, *await self._account_of(request))
        return pb.GetAccountResponse(account=account_to_proto(view))

    async def Accrue(self, request: pb.AccrueRequest, _ctx: Any) -> pb.AccrueResponse:
        key = key_in(request.idempotency_key)
        order = order_in(request.order, key)
        if check_text(request.quote_id, "quote_id", max_len=MAX_QUOTE_ID):
            claim = o.read_quote_id(self.offers.quote_key, request.quote_id)
            order = replace(order, quote=claim)
        outcome = await h.accrue(self.deps, *await self._account_of(request), order)
        return pb.AccrueResponse(**self._moved(outcome))

    async def Redeem(self, request: pb.RedeemRequest, _ctx: Any) -> pb.RedeemResponse:
        key = key_in(request.idempotency_key)
        points = points_in(request.points, "points")
        order_id = check_text(request.order_id, "order_id", max_len=128)
        program_id, customer_id = await self._account_of(request)
        outcome = await h.redeem(self.deps, program_id, customer_id, points, order_id, key)
        assert outcome.movement is not None
        value = money(outcome.movement.value_micros, outcome.program.currency)
        return pb.RedeemResponse(**self._moved(outcome), value=value)

    async def Reverse(self, request: pb.ReverseRequest, _ctx: Any) -> pb.ReverseResponse:
        transaction_id = id_in(request.transaction_id, "transaction_id")
        key = key_in(request.idempotency_key)
        points = points_in(request.points, "points", allow_zero=True)
        reason = check_text(request.reason, "reason", max_len=512)
        outcome = await h.reverse(self.deps, transaction_id, points, reason, key)
        assert outcome.movement is not None
        return pb.ReverseResponse(
            **self._moved(outcome), unrecovered_points=outcome.movement.unrecovered
        )

    async def AdjustPoints(
        self, request: pb.AdjustPointsRequest, _ctx: Any
    ) -> pb.AdjustPointsResponse:
        key = key_in(request.idempotency_key)
        points = signed_points_in(request.points, "points")
        reason = check_text(request.reason, "reason", max_len=512, required=True)
        program_id, customer_id = await self._account_of(request)
        outcome = await h.adjust_points(self.deps, program_id, customer_id, points, reason, key)
        return pb.AdjustPointsResponse(**self._moved(outcome))

    async def RewardPoints(
        self, request: pb.RewardPointsRequest, _ctx: Any
    ) -> pb.RewardPointsResponse:
        # AdjustPoints restricted to a credit: a reward can never take points away
        key = key_in(request.idempotency_key)
        points = points_in(request.points, "points")
        reason = check_text(request.reason, "reason", max_len=512, required=True)
        program_id, customer_id = await self._account_of(request)
        outcome = await h.adjust_points(self.deps, program_id, customer_id, points, reason, key)
        return pb.RewardPointsResponse(**self._moved(outcome))

    async def ListTransactions(
        self, request: pb.ListTransactionsRequest, _ctx: Any
    ) -> pb.ListTransactionsResponse:
        program_id, customer_id = await self._account_of(request)
        size = page_size(request.page_size)
        scope = f"bonus.transactions/{program_id}/{customer_id}"
        before = decode_page_token(request.page_token, scope)
        if before is not None and (type(before) is not int or before <= 0):
            raise InvalidArgument("page_token", "is not a page token issued by this listing")
        movements, following = await h.list_transactions(
            self.deps, program_id, customer_id, before, size
        )
        return pb.ListTransactionsResponse(
            transactions=[transaction_to_proto(m) for m in movements],
            next_page_token=encode_page_token(following, scope) if following else "",
        )

    @staticmethod
    def _moved(outcome: h.Outcome) -> dict[str, Any]:
        assert outcome.movement is not None
        return {
            "transaction": transaction_to_proto(outcome.movement),
            "account": account_to_proto(outcome.account),
        }

    # promotions and quotes

    async def _promotion_out(self, promotion: Any) -> pb.Promotion:
        program = await h.get_program(self.deps, promotion.program_id)
        return promotion_to_proto(promotion, program.currency)

    async def CreatePromotion(
        self, request: pb.CreatePromotionRequest, _ctx: Any
    ) -> pb.CreatePromotionResponse:
        promotion, amounts = promotion_in(request.promotion)
        created = await o.create_promotion(self.offers, promotion, amounts)
        return pb.CreatePromotionResponse(promotion=await self._promotion_out(created))

    async def GetPromotion(
        self, request: pb.GetPromotionRequest, _ctx: Any
    ) -> pb.GetPromotionResponse:
        found = await o.get_promotion(self.offers, id_in(request.promotion_id, "promotion_id"))
        return pb.GetPromotionResponse(promotion=await self._promotion_out(found))

    async def UpdatePromotion(
        self, request: pb.UpdatePromotionRequest, _ctx: Any
    ) -> pb.UpdatePromotionResponse:
        promotion_id, patch = promotion_patch_in(request.promotion, request.update_mask)
        updated = await o.update_promotion(self.offers, promotion_id, patch)
        return pb.UpdatePromotionResponse(promotion=await self._promotion_out(updated))

    async def PausePromotion(
        self, request: pb.PausePromotionRequest, _ctx: Any
    ) -> pb.PausePromotionResponse:
        paused = await o.pause_promotion(self.offers, id_in(request.promotion_id, "promotion_id"))
        return pb.PausePromotionResponse(promotion=await self._promotion_out(paused))

    async def ListPromotions(
        self, request: pb.ListPromotionsRequest, _ctx: Any
    ) -> pb.ListPromotionsResponse:
        program_id = id_in(request.program_id, "program_id")
        size = page_size(request.page_size)
        status = check_enum(request.status, pb.PromotionStatus, "status", required=False)
        scope = f"bonus.promotions/{program_id}/{status}"
        after = decode_page_token(request.page_token, scope)
        if after is not None:
            if (
                not isinstance(after, list)
                or len(after) != 3
                or type(after[0]) is not int
                or not isinstance(after[1], int | float)
                or type(after[2]) is not str
            ):
                raise InvalidArgument("page_token", "is not a page token issued by this listing")
            after = (after[0], float(after[1]), after[2])
        page, following = await o.list_promotions(self.offers, program_id, status, after, size)
        program = await h.get_program(self.deps, program_id)
        return pb.ListPromotionsResponse(
            promotions=[promotion_to_proto(p, program.currency) for p in page],
            next_page_token=encode_page_token(list(following), scope) if following else "",
        )

    async def QuoteOffer(self, request: pb.QuoteOfferRequest, _ctx: Any) -> pb.QuoteOfferResponse:
        if request.explain and not current_principal.get().has(ADMIN):
            raise PermissionDenied(
                "explain needs the admin scope",
                reason="MISSING_SCOPE",
                metadata={"required_scope": ADMIN},
            )
        customer_id = ""
        if request.HasField("customer"):
            try:
                customer_id = await customer_of(request, "customer", self.resolve)
            except NotFound:
                customer_id = ""  # an unknown customer gets the public price
        quote_in = quote_request_in(request, customer_id, self.deps.clock())
        result = await o.quote_offer(self.offers, quote_in)
        return quote_to_proto(result, customer_id, request.explain)

    async def GetPromotionReport(
        self, request: pb.GetPromotionReportRequest, _ctx: Any
    ) -> pb.GetPromotionReportResponse:
        report = await o.promotion_report(self.offers, id_in(request.promotion_id, "promotion_id"))
        return report_to_proto(report)


def bonus_service(deps: h.BonusDeps, offers: o.OfferDeps, resolve: ResolveCustomer) -> RpcService:
    return RpcService(
        descriptor=CONTRACT,
        servicer=BonusServicer(deps, offers, resolve),
        scopes=SCOPES,
        short_name="bonus",
    )
