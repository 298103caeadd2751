"""Turn a plain servicer object into gRPC method handlers, from the proto service descriptor.

Requests are parsed here rather than by grpc's deserializer: a malformed message then becomes
INVALID_ARGUMENT naming the request, instead of the INTERNAL grpc answers for bytes it cannot
decode. Each RPC declares the scope it needs; an RPC without one is refused (secure by default),
and every one is wrapped by the server's call guard (libs/rpc/guard.py: auth with that scope,
error mapping), which runs before the request is parsed.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message, message_factory
from google.protobuf.descriptor import ServiceDescriptor

from libs.errors import InvalidArgument
from libs.rpc.guard import CallGuard

__all__ = ["RpcService"]


@dataclass(frozen=True)
class RpcService:
    """A servicer (object with one async method per RPC) plus its descriptor and scopes."""

    descriptor: ServiceDescriptor
    servicer: object
    scopes: Mapping[str, str]
    short_name: str  # "profile": the ErrorInfo domain and the bus producer

    @property
    def full_name(self) -> str:
        return str(self.descriptor.full_name)

    def generic_handler(self, guard: CallGuard) -> grpc.GenericRpcHandler:
        handlers: dict[str, grpc.RpcMethodHandler] = {}
        for method in self.descriptor.methods:
            if method.name not in self.scopes:
                raise ValueError(f"{self.full_name}/{method.name} declares no scope")
            impl = getattr(self.servicer, method.name, None)
            if impl is None:
                raise ValueError(f"{type(self.servicer).__name__} does not implement {method.name}")
            path, scope = f"/{self.full_name}/{method.name}", self.scopes[method.name]
            request_cls = message_factory.GetMessageClass(method.input_type)
            serialize = _serializer(message_factory.GetMessageClass(method.output_type))
            if method.server_streaming:
                behaviour = _streaming(impl, request_cls)
                handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                    guard.stream(behaviour, path, scope, self.short_name),
                    response_serializer=serialize,
                )
            else:
                handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                    guard.unary(_unary(impl, request_cls), path, scope, self.short_name),
                    response_serializer=serialize,
                )
        return grpc.method_handlers_generic_handler(self.full_name, handlers)


def _serializer(response_cls: type[message.Message]) -> Callable[[Any], bytes]:
    # A handler may answer with ready-made bytes (e.g. a cached, already rendered response).
    def serialize(response: message.Message | bytes) -> bytes:
        if isinstance(response, bytes):
            return response
        return response.SerializeToString()

    return serialize


def _parse(request_cls: type[message.Message], raw: bytes) -> Any:
    try:
        return request_cls.FromString(raw)
    except message.DecodeError as exc:
        raise InvalidArgument("request", f"is not a valid {request_cls.__name__}: {exc}") from exc


def _unary(
    impl: Callable[[Any, Any], Awaitable[message.Message]], request_cls: type[message.Message]
) -> Callable[[bytes, grpc.aio.ServicerContext[Any, Any]], Awaitable[message.Message]]:
    async def behaviour(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> message.Message:
        return await impl(_parse(request_cls, raw), context)

    return behaviour


def _streaming(
    impl: Callable[[Any, Any], AsyncIterator[message.Message]], request_cls: type[message.Message]
) -> Callable[[bytes, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[message.Message]]:
    if not inspect.isasyncgenfunction(impl):
        raise TypeError(f"{impl!r} must be an async generator")

    async def behaviour(
        raw: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[message.Message]:
        async for response in impl(_parse(request_cls, raw), context):
            yield response

    return behaviour
