"""The typed client product services import (and services use to call each other).

One channel per service address; the bearer token rides on every call; every call gets a
default deadline; UNAVAILABLE is retried by gRPC's own retry policy (service config); the
caller's trace context is propagated by OpenTelemetry's client interceptor.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc
from backcrm.ads.v1 import ads_service_pb2, ads_service_pb2_grpc
from backcrm.bonus.v1 import bonus_service_pb2, bonus_service_pb2_grpc
from backcrm.profile.v1 import profile_service_pb2, profile_service_pb2_grpc
from backcrm.recommend.v1 import recommend_service_pb2, recommend_service_pb2_grpc
from backcrm.segmentation.v1 import segmentation_service_pb2, segmentation_service_pb2_grpc
from google.protobuf import json_format
from google.protobuf.descriptor import ServiceDescriptor

from libs.telemetry import client_interceptors

__all__ = ["CONTRACTS", "SERVICES", "SERVICE_CONFIG", "Client", "call_json"]

# The services a Client has a stub for, by the name the suite registers each under: the
# implemented ones (tests/unit/test_registry.py holds this to services/registry.py).
CONTRACTS: dict[str, ServiceDescriptor] = {
    "profile": profile_service_pb2.DESCRIPTOR.services_by_name["ProfileService"],
    "segmentation": segmentation_service_pb2.DESCRIPTOR.services_by_name["SegmentationService"],
    "bonus": bonus_service_pb2.DESCRIPTOR.services_by_name["BonusService"],
    "ads": ads_service_pb2.DESCRIPTOR.services_by_name["AdsService"],
    "recommend": recommend_service_pb2.DESCRIPTOR.services_by_name["RecommendService"],
}
SERVICES = tuple(contract.full_name for contract in CONTRACTS.values())
SERVICE_CONFIG = {
    "methodConfig": [
        {
            "name": [{"service": name} for name in SERVICES],
            "retryPolicy": {
                "maxAttempts": 4,
                "initialBackoff": "0.1s",
                "maxBackoff": "2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ]
}


class _CallDefaults:
    """Adds the bearer token and, when the caller set none, the default deadline."""

    def __init__(self, token: str, deadline: float | None) -> None:
        self._auth = ("authorization", f"Bearer {token}") if token else None
        self._deadline = deadline

    def _details(
        self, details: grpc.aio.ClientCallDetails, default_timeout: float | None
    ) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        if self._auth and "authorization" not in metadata:
            metadata.add(*self._auth)
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=details.timeout if details.timeout is not None else default_timeout,
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )


# grpc.aio files each interceptor under its first matching kind only: one class per kind.
class _UnaryDefaults(_CallDefaults, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details, self._deadline), request)


class _StreamDefaults(_CallDefaults, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        # Streams (watches) run as long as the caller wants: no default deadline.
        return await continuation(self._details(details, None), request)


class Client:
    """Stubs for every implemented service. One address serves all of them (make run) unless
    `addresses` names another for a service."""

    def __init__(
        self,
        address: str,
        token: str = "",
        *,
        addresses: dict[str, str] | None = None,
        deadline: float | None = 5.0,
        tls: grpc.ChannelCredentials | None = None,
        max_message_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        options: Sequence[tuple[str, Any]] = [
            ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
            ("grpc.enable_retries", 1),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        interceptors = [
            _UnaryDefaults(token, deadline),
            _StreamDefaults(token, deadline),
            *client_interceptors(),
        ]
        self._channels: dict[str, grpc.aio.Channel] = {}

        def channel(service: str) -> grpc.aio.Channel:
            target = (addresses or {}).get(service, address)
            if target not in self._channels:
                self._channels[target] = (
                    grpc.aio.secure_channel(target, tls, options, interceptors=interceptors)
                    if tls is not None
                    else grpc.aio.insecure_channel(target, options, interceptors=interceptors)
                )
            return self._channels[target]

        self.profile = profile_service_pb2_grpc.ProfileServiceStub(channel("profile"))
        self.segmentation = segmentation_service_pb2_grpc.SegmentationServiceStub(
            channel("segmentation")
        )
        self.bonus = bonus_service_pb2_grpc.BonusServiceStub(channel("bonus"))
        self.ads = ads_service_pb2_grpc.AdsServiceStub(channel("ads"))
        self.recommend = recommend_service_pb2_grpc.RecommendServiceStub(channel("recommend"))

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _find_method(method: str) -> Any:
    """A method by short name ("GetProfile") or full name ("pkg.Service/Method")."""
    found = [
        rpc
        for contract in CONTRACTS.values()
        for rpc in contract.methods
        if method in (rpc.name, f"{contract.full_name}/{rpc.name}")
    ]
    if len(found) != 1:
        raise SystemExit(f"unknown or ambiguous method {method!r}")
    return found[0]


def call_json(address: str, token: str, method: str, request_json: str) -> str:
    """One call from JSON to JSON (the demo's grpcurl stand-in); streams print a line each."""
    import asyncio

    from google.protobuf import message_factory

    rpc = _find_method(method)
    request_cls = message_factory.GetMessageClass(rpc.input_type)
    response_cls = message_factory.GetMessageClass(rpc.output_type)
    request = json_format.Parse(request_json, request_cls())
    path = f"/{rpc.containing_service.full_name}/{rpc.name}"

    async def run() -> str:
        async with Client(address, token) as client:
            channel = next(iter(client._channels.values()))
            try:
                if rpc.server_streaming:
                    call = channel.unary_stream(
                        path,
                        request_serializer=request_cls.SerializeToString,
                        response_deserializer=response_cls.FromString,
                    )
                    async for item in call(request):
                        print(json_format.MessageToJson(item, indent=None), flush=True)
                    return ""
                unary = channel.unary_unary(
                    path,
                    request_serializer=request_cls.SerializeToString,
                    response_deserializer=response_cls.FromString,
                )
                response = await unary(request)
            except grpc.aio.AioRpcError as err:
                return f"{err.code().name}: {err.details()}"
        return json_format.MessageToJson(response)

    return asyncio.run(run())
