"""gRPC entrypoint of BonusService: translate, call a handler, translate back. Nothing else.

Promotions and QuoteOffer are declared by the contract and not served yet: they answer
UNIMPLEMENTED (reason NOT_SERVED_YET) after the usual authentication and scope checks, as
docs/bonus.md "Status" says.
"""

from __future__ import annotations

from typing import Any

from backcrm.bonus.v1 import bonus_service_pb2 as pb

from libs.errors import InvalidArgument, Unimplemented
from libs.protoutil import money
from libs.resolver import ResolveCustomer, customer_of
from libs.rpc.service import RpcService
from libs.validation import check_text, decode_page_token, encode_page_token, page_size
from services.bonus import handlers as h
from services.bonus.render import (
    account_to_proto,
    program_to_proto,
    transaction_to_proto,
)
from services.bonus.translate import (
    id_in,
    key_in,
    order_in,
    points_in,
    program_in,
    program_patch_in,
    signed_points_in,
)

__all__ = ["CONTRACT", "NOT_SERVED_YET", "SCOPES", "BonusServicer", "bonus_service"]

CONTRACT = pb.DESCRIPTOR.services_by_name["BonusService"]
READ, WRITE, ADMIN = "bonus:read", "bonus:write", "admin"
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
    "QuoteOffer": READ,
}
NOT_SERVED_YET = (
    "CreatePromotion",
    "GetPromotion",
    "UpdatePromotion",
    "ListPromotions",
    "PausePromotion",
    "QuoteOffer",
)


def _not_served(name: str) -> Any:
    async def rpc(self: BonusServicer, _request: Any, _ctx: Any) -> Any:
        raise Unimplemented(f"{name} is not served yet (docs/bonus.md, Status)")

    rpc.__name__ = name
    return rpc


class BonusServicer:
    def __init__(self, deps: h.BonusDeps, resolve: ResolveCustomer) -> None:
        self.deps = deps
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
        if check_text(request.quote_id, "quote_id", max_len=64):
            raise Unimplemented(
                "quote_id: quotes are not served yet (docs/bonus.md, Status)",
                reason="NOT_SERVED_YET",
            )
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

    # promotions and quotes: the next slice
    CreatePromotion = _not_served("CreatePromotion")
    GetPromotion = _not_served("GetPromotion")
    UpdatePromotion = _not_served("UpdatePromotion")
    ListPromotions = _not_served("ListPromotions")
    PausePromotion = _not_served("PausePromotion")
    QuoteOffer = _not_served("QuoteOffer")


def bonus_service(deps: h.BonusDeps, resolve: ResolveCustomer) -> RpcService:
    return RpcService(
        descriptor=CONTRACT,
        servicer=BonusServicer(deps, resolve),
        scopes=SCOPES,
        short_name="bonus",
    )
