"""Every RPC of every registered service needs a token, and the scope its service declares.

Swept from the registry's contracts (services/registry.py), so a service is covered the day it
is registered: without a token each RPC answers UNAUTHENTICATED; with a valid token that holds
no scope, PERMISSION_DENIED naming the scope the running service declared for it.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from services.registry import contracts
from tests.e2e.conftest import Suite
from tests.e2e.helpers import error_info
from tests.support import TOKENS

pytestmark = pytest.mark.e2e

METHODS = [(s, m) for s in contracts() for m in s.methods]


async def _refusal(channel: grpc.aio.Channel, path: str, streaming: bool, token: str) -> Any:
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    try:
        if streaming:
            call = channel.unary_stream(
                path, request_serializer=lambda b: b, response_deserializer=lambda b: b
            )
            async for _ in call(b"", metadata=metadata, timeout=20):
                break
        else:
            unary = channel.unary_unary(
                path, request_serializer=lambda b: b, response_deserializer=lambda b: b
            )
            await unary(b"", metadata=metadata, timeout=20)
    except grpc.aio.AioRpcError as err:
        return err
    raise AssertionError(f"{path} answered a caller without the scope")


@pytest.mark.parametrize(
    ("service", "method"), METHODS, ids=[f"{s.name}.{m.name}" for s, m in METHODS]
)
async def test_every_rpc_needs_a_token_and_its_scope(
    suite: Suite, service: Any, method: Any
) -> None:
    assert suite.running is not None
    path = f"/{service.full_name}/{method.name}"
    declared = {
        f"/{app.rpc.full_name}/{name}": scope
        for app in suite.running.apps
        for name, scope in app.rpc.scopes.items()
    }
    async with grpc.aio.insecure_channel(suite.address) as channel:
        anonymous = await _refusal(channel, path, method.server_streaming, "")
        assert anonymous.code() == grpc.StatusCode.UNAUTHENTICATED, path
        nobody = await _refusal(channel, path, method.server_streaming, TOKENS["nobody"][0])
    assert nobody.code() == grpc.StatusCode.PERMISSION_DENIED, path
    info = error_info(nobody)
    assert (info.reason, info.metadata["required_scope"]) == ("MISSING_SCOPE", declared[path])
