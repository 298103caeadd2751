import datetime

from backcrm.profile.v1 import profile_service_pb2 as _profile_service_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Operator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATOR_UNSPECIFIED: _ClassVar[Operator]
    OPERATOR_EQ: _ClassVar[Operator]
    OPERATOR_NE: _ClassVar[Operator]
    OPERATOR_LT: _ClassVar[Operator]
    OPERATOR_LTE: _ClassVar[Operator]
    OPERATOR_GT: _ClassVar[Operator]
    OPERATOR_GTE: _ClassVar[Operator]
    OPERATOR_IN: _ClassVar[Operator]
    OPERATOR_CONTAINS: _ClassVar[Operator]
    OPERATOR_PREFIX: _ClassVar[Operator]
    OPERATOR_EXISTS: _ClassVar[Operator]
    OPERATOR_BETWEEN: _ClassVar[Operator]
OPERATOR_UNSPECIFIED: Operator
OPERATOR_EQ: Operator
OPERATOR_NE: Operator
OPERATOR_LT: Operator
OPERATOR_LTE: Operator
OPERATOR_GT: Operator
OPERATOR_GTE: Operator
OPERATOR_IN: Operator
OPERATOR_CONTAINS: Operator
OPERATOR_PREFIX: Operator
OPERATOR_EXISTS: Operator
OPERATOR_BETWEEN: Operator

class Condition(_message.Message):
    __slots__ = ("all_of", "any_of", "none_of", "property", "event", "segment", "context")
    ALL_OF_FIELD_NUMBER: _ClassVar[int]
    ANY_OF_FIELD_NUMBER: _ClassVar[int]
    NONE_OF_FIELD_NUMBER: _ClassVar[int]
    PROPERTY_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    all_of: ConditionGroup
    any_of: ConditionGroup
    none_of: ConditionGroup
    property: PropertyCondition
    event: EventCondition
    segment: SegmentCondition
    context: ContextCondition
    def __init__(self, all_of: _Optional[_Union[ConditionGroup, _Mapping]] = ..., any_of: _Optional[_Union[ConditionGroup, _Mapping]] = ..., none_of: _Optional[_Union[ConditionGroup, _Mapping]] = ..., property: _Optional[_Union[PropertyCondition, _Mapping]] = ..., event: _Optional[_Union[EventCondition, _Mapping]] = ..., segment: _Optional[_Union[SegmentCondition, _Mapping]] = ..., context: _Optional[_Union[ContextCondition, _Mapping]] = ...) -> None: ...

class ConditionGroup(_message.Message):
    __slots__ = ("conditions",)
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    conditions: _containers.RepeatedCompositeFieldContainer[Condition]
    def __init__(self, conditions: _Optional[_Iterable[_Union[Condition, _Mapping]]] = ...) -> None: ...

class PropertyCondition(_message.Message):
    __slots__ = ("path", "op", "value")
    PATH_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    path: str
    op: Operator
    value: _struct_pb2.Value
    def __init__(self, path: _Optional[str] = ..., op: _Optional[_Union[Operator, str]] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class EventCondition(_message.Message):
    __slots__ = ("type", "filters", "within", "count_op", "count")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    WITHIN_FIELD_NUMBER: _ClassVar[int]
    COUNT_OP_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    type: _profile_service_pb2.EventType
    filters: _containers.RepeatedCompositeFieldContainer[PropertyCondition]
    within: _duration_pb2.Duration
    count_op: Operator
    count: int
    def __init__(self, type: _Optional[_Union[_profile_service_pb2.EventType, str]] = ..., filters: _Optional[_Iterable[_Union[PropertyCondition, _Mapping]]] = ..., within: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., count_op: _Optional[_Union[Operator, str]] = ..., count: _Optional[int] = ...) -> None: ...

class SegmentCondition(_message.Message):
    __slots__ = ("segment_id",)
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    def __init__(self, segment_id: _Optional[str] = ...) -> None: ...

class ContextCondition(_message.Message):
    __slots__ = ("path", "op", "value")
    PATH_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    path: str
    op: Operator
    value: _struct_pb2.Value
    def __init__(self, path: _Optional[str] = ..., op: _Optional[_Union[Operator, str]] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
