"""Domain errors -> gRPC status with google.rpc details (BadRequest, ErrorInfo)."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from libs.errors import DomainError, InvalidArgument

__all__ = ["status_of"]


def status_of(error: DomainError, service: str) -> grpc.Status:
    details: list[any_pb2.Any] = []
    if isinstance(error, InvalidArgument) and error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                for f, d in error.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        details.append(packed)
    info = error_details_pb2.ErrorInfo(
        reason=error.reason, domain=error.domain or f"{service}.backcrm", metadata=error.metadata
    )
    packed = any_pb2.Any()
    packed.Pack(info)
    details.append(packed)
    status = status_pb2.Status(
        code=code_pb2.Code.Value(error.code_name), message=error.message, details=details
    )
    return rpc_status.to_status(status)
