import datetime

from google.protobuf import any_pb2 as _any_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IdentityType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IDENTITY_TYPE_UNSPECIFIED: _ClassVar[IdentityType]
    IDENTITY_TYPE_EMAIL: _ClassVar[IdentityType]
    IDENTITY_TYPE_PHONE: _ClassVar[IdentityType]
    IDENTITY_TYPE_COOKIE: _ClassVar[IdentityType]
    IDENTITY_TYPE_DEVICE: _ClassVar[IdentityType]
    IDENTITY_TYPE_LOYALTY_CARD: _ClassVar[IdentityType]
    IDENTITY_TYPE_EXTERNAL: _ClassVar[IdentityType]

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_WEB: _ClassVar[Channel]
    CHANNEL_MOBILE_APP: _ClassVar[Channel]
    CHANNEL_EMAIL: _ClassVar[Channel]
    CHANNEL_CALL_CENTER: _ClassVar[Channel]
    CHANNEL_STORE: _ClassVar[Channel]
    CHANNEL_SMS: _ClassVar[Channel]
IDENTITY_TYPE_UNSPECIFIED: IdentityType
IDENTITY_TYPE_EMAIL: IdentityType
IDENTITY_TYPE_PHONE: IdentityType
IDENTITY_TYPE_COOKIE: IdentityType
IDENTITY_TYPE_DEVICE: IdentityType
IDENTITY_TYPE_LOYALTY_CARD: IdentityType
IDENTITY_TYPE_EXTERNAL: IdentityType
CHANNEL_UNSPECIFIED: Channel
CHANNEL_WEB: Channel
CHANNEL_MOBILE_APP: Channel
CHANNEL_EMAIL: Channel
CHANNEL_CALL_CENTER: Channel
CHANNEL_STORE: Channel
CHANNEL_SMS: Channel

class CustomerRef(_message.Message):
    __slots__ = ("customer_id", "identity")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    identity: Identity
    def __init__(self, customer_id: _Optional[str] = ..., identity: _Optional[_Union[Identity, _Mapping]] = ...) -> None: ...

class Identity(_message.Message):
    __slots__ = ("type", "value")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    type: IdentityType
    value: str
    def __init__(self, type: _Optional[_Union[IdentityType, str]] = ..., value: _Optional[str] = ...) -> None: ...

class Money(_message.Message):
    __slots__ = ("currency", "units_micros")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    UNITS_MICROS_FIELD_NUMBER: _ClassVar[int]
    currency: str
    units_micros: int
    def __init__(self, currency: _Optional[str] = ..., units_micros: _Optional[int] = ...) -> None: ...

class CartLine(_message.Message):
    __slots__ = ("sku", "category", "quantity", "unit_price")
    SKU_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    sku: str
    category: str
    quantity: int
    unit_price: Money
    def __init__(self, sku: _Optional[str] = ..., category: _Optional[str] = ..., quantity: _Optional[int] = ..., unit_price: _Optional[_Union[Money, _Mapping]] = ...) -> None: ...

class Context(_message.Message):
    __slots__ = ("channel", "placement", "cart", "current_sku", "region", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    CART_FIELD_NUMBER: _ClassVar[int]
    CURRENT_SKU_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    channel: Channel
    placement: str
    cart: _containers.RepeatedCompositeFieldContainer[CartLine]
    current_sku: str
    region: str
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, channel: _Optional[_Union[Channel, str]] = ..., placement: _Optional[str] = ..., cart: _Optional[_Iterable[_Union[CartLine, _Mapping]]] = ..., current_sku: _Optional[str] = ..., region: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Order(_message.Message):
    __slots__ = ("order_id", "lines", "total", "placed_at")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PLACED_AT_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    lines: _containers.RepeatedCompositeFieldContainer[CartLine]
    total: Money
    placed_at: _timestamp_pb2.Timestamp
    def __init__(self, order_id: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[CartLine, _Mapping]]] = ..., total: _Optional[_Union[Money, _Mapping]] = ..., placed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EventEnvelope(_message.Message):
    __slots__ = ("event_id", "type", "occurred_at", "producer", "trace_context", "payload")
    class TraceContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    type: str
    occurred_at: _timestamp_pb2.Timestamp
    producer: str
    trace_context: _containers.ScalarMap[str, str]
    payload: _any_pb2.Any
    def __init__(self, event_id: _Optional[str] = ..., type: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., producer: _Optional[str] = ..., trace_context: _Optional[_Mapping[str, str]] = ..., payload: _Optional[_Union[_any_pb2.Any, _Mapping]] = ...) -> None: ...
