"""Builders and assertions the e2e tests share."""

from __future__ import annotations

from typing import Any

import grpc
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as pb
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "cookie",
    "email",
    "error_info",
    "error_reason",
    "event",
    "field_violations",
    "purchase",
    "rpc_error",
]


def email(value: str) -> common_pb2.CustomerRef:
    return common_pb2.CustomerRef(
        identity=common_pb2.Identity(type=common_pb2.IDENTITY_TYPE_EMAIL, value=value)
    )


def cookie(value: str) -> common_pb2.Identity:
    return common_pb2.Identity(type=common_pb2.IDENTITY_TYPE_COOKIE, value=value)


def event(
    event_id: str, who: common_pb2.CustomerRef, kind: int = pb.EVENT_TYPE_PRODUCT_VIEW, **kw: Any
) -> pb.Event:
    return pb.Event(
        event_id=event_id, customer=who, type=kind, channel=common_pb2.CHANNEL_WEB, **kw
    )


def purchase(
    event_id: str, who: common_pb2.CustomerRef, order_id: str, *lines: tuple[str, str, int, int]
) -> pb.Event:
    return event(
        event_id,
        who,
        pb.EVENT_TYPE_PURCHASE,
        order=common_pb2.Order(
            order_id=order_id,
            lines=[
                common_pb2.CartLine(
                    sku=sku,
                    category=category,
                    quantity=quantity,
                    unit_price=common_pb2.Money(currency="GBP", units_micros=price),
                )
                for sku, category, quantity, price in lines
            ],
        ),
    )


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return err
    raise AssertionError("the call succeeded; an error was expected")


def field_violations(err: grpc.aio.AioRpcError) -> list[str]:
    """The BadRequest field names in the error's google.rpc.Status details."""
    raw = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin")
    assert raw is not None, f"no rich status details in {err.code()} {err.details()}"
    status = status_pb2.Status.FromString(raw)
    fields = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    return fields


def error_info(err: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    """The google.rpc.ErrorInfo in the error's status details."""
    raw = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin")
    assert raw is not None, f"no rich status details in {err.code()} {err.details()}"
    for detail in status_pb2.Status.FromString(raw).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo")


def error_reason(err: grpc.aio.AioRpcError) -> tuple[str, str]:
    info = error_info(err)
    return info.reason, info.domain
