import datetime

from backcrm.common.v1 import common_pb2 as _common_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_PAGE_VIEW: _ClassVar[EventType]
    EVENT_TYPE_PRODUCT_VIEW: _ClassVar[EventType]
    EVENT_TYPE_SEARCH: _ClassVar[EventType]
    EVENT_TYPE_ADD_TO_CART: _ClassVar[EventType]
    EVENT_TYPE_REMOVE_FROM_CART: _ClassVar[EventType]
    EVENT_TYPE_PURCHASE: _ClassVar[EventType]
    EVENT_TYPE_EMAIL_OPEN: _ClassVar[EventType]
    EVENT_TYPE_EMAIL_CLICK: _ClassVar[EventType]
    EVENT_TYPE_AD_IMPRESSION: _ClassVar[EventType]
    EVENT_TYPE_AD_CLICK: _ClassVar[EventType]
    EVENT_TYPE_CALL: _ClassVar[EventType]
    EVENT_TYPE_STORE_VISIT: _ClassVar[EventType]
    EVENT_TYPE_CUSTOM: _ClassVar[EventType]

class ProfileStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROFILE_STATUS_UNSPECIFIED: _ClassVar[ProfileStatus]
    PROFILE_STATUS_NEW: _ClassVar[ProfileStatus]
    PROFILE_STATUS_ACTIVE: _ClassVar[ProfileStatus]
    PROFILE_STATUS_LAPSED: _ClassVar[ProfileStatus]
    PROFILE_STATUS_CHURN_RISK: _ClassVar[ProfileStatus]

class ConsentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSENT_STATE_UNSPECIFIED: _ClassVar[ConsentState]
    CONSENT_STATE_GRANTED: _ClassVar[ConsentState]
    CONSENT_STATE_DENIED: _ClassVar[ConsentState]
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_PAGE_VIEW: EventType
EVENT_TYPE_PRODUCT_VIEW: EventType
EVENT_TYPE_SEARCH: EventType
EVENT_TYPE_ADD_TO_CART: EventType
EVENT_TYPE_REMOVE_FROM_CART: EventType
EVENT_TYPE_PURCHASE: EventType
EVENT_TYPE_EMAIL_OPEN: EventType
EVENT_TYPE_EMAIL_CLICK: EventType
EVENT_TYPE_AD_IMPRESSION: EventType
EVENT_TYPE_AD_CLICK: EventType
EVENT_TYPE_CALL: EventType
EVENT_TYPE_STORE_VISIT: EventType
EVENT_TYPE_CUSTOM: EventType
PROFILE_STATUS_UNSPECIFIED: ProfileStatus
PROFILE_STATUS_NEW: ProfileStatus
PROFILE_STATUS_ACTIVE: ProfileStatus
PROFILE_STATUS_LAPSED: ProfileStatus
PROFILE_STATUS_CHURN_RISK: ProfileStatus
CONSENT_STATE_UNSPECIFIED: ConsentState
CONSENT_STATE_GRANTED: ConsentState
CONSENT_STATE_DENIED: ConsentState

class Event(_message.Message):
    __slots__ = ("event_id", "customer", "identities", "type", "channel", "occurred_at", "sku", "category", "properties", "order", "quantity", "unit_price")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    customer: _common_pb2.CustomerRef
    identities: _containers.RepeatedCompositeFieldContainer[_common_pb2.Identity]
    type: EventType
    channel: _common_pb2.Channel
    occurred_at: _timestamp_pb2.Timestamp
    sku: str
    category: str
    properties: _struct_pb2.Struct
    order: _common_pb2.Order
    quantity: int
    unit_price: _common_pb2.Money
    def __init__(self, event_id: _Optional[str] = ..., customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ..., identities: _Optional[_Iterable[_Union[_common_pb2.Identity, _Mapping]]] = ..., type: _Optional[_Union[EventType, str]] = ..., channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sku: _Optional[str] = ..., category: _Optional[str] = ..., properties: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., order: _Optional[_Union[_common_pb2.Order, _Mapping]] = ..., quantity: _Optional[int] = ..., unit_price: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class RejectedEvent(_message.Message):
    __slots__ = ("index", "event_id", "field", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    event_id: str
    field: str
    reason: str
    def __init__(self, index: _Optional[int] = ..., event_id: _Optional[str] = ..., field: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class TrackEventsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class TrackEventsResponse(_message.Message):
    __slots__ = ("accepted", "duplicates", "rejected", "customer_ids")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    duplicates: int
    rejected: _containers.RepeatedCompositeFieldContainer[RejectedEvent]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, accepted: _Optional[int] = ..., duplicates: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[RejectedEvent, _Mapping]]] = ..., customer_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Attributes(_message.Message):
    __slots__ = ("name", "email", "phone", "region", "city", "birth_date", "language")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    email: str
    phone: str
    region: str
    city: str
    birth_date: str
    language: str
    def __init__(self, name: _Optional[str] = ..., email: _Optional[str] = ..., phone: _Optional[str] = ..., region: _Optional[str] = ..., city: _Optional[str] = ..., birth_date: _Optional[str] = ..., language: _Optional[str] = ...) -> None: ...

class Consent(_message.Message):
    __slots__ = ("channel", "state", "updated_at")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    channel: _common_pb2.Channel
    state: ConsentState
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., state: _Optional[_Union[ConsentState, str]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Rfm(_message.Message):
    __slots__ = ("recency_days", "frequency", "monetary", "recency_score", "frequency_score", "monetary_score")
    RECENCY_DAYS_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    MONETARY_FIELD_NUMBER: _ClassVar[int]
    RECENCY_SCORE_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_SCORE_FIELD_NUMBER: _ClassVar[int]
    MONETARY_SCORE_FIELD_NUMBER: _ClassVar[int]
    recency_days: int
    frequency: int
    monetary: _common_pb2.Money
    recency_score: int
    frequency_score: int
    monetary_score: int
    def __init__(self, recency_days: _Optional[int] = ..., frequency: _Optional[int] = ..., monetary: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., recency_score: _Optional[int] = ..., frequency_score: _Optional[int] = ..., monetary_score: _Optional[int] = ...) -> None: ...

class PurchaseSummary(_message.Message):
    __slots__ = ("orders", "revenue", "first_purchase_at", "last_purchase_at", "returns")
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    FIRST_PURCHASE_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_PURCHASE_AT_FIELD_NUMBER: _ClassVar[int]
    RETURNS_FIELD_NUMBER: _ClassVar[int]
    orders: int
    revenue: _common_pb2.Money
    first_purchase_at: _timestamp_pb2.Timestamp
    last_purchase_at: _timestamp_pb2.Timestamp
    returns: int
    def __init__(self, orders: _Optional[int] = ..., revenue: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., first_purchase_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_purchase_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., returns: _Optional[int] = ...) -> None: ...

class RecentEvent(_message.Message):
    __slots__ = ("event_id", "type", "channel", "occurred_at", "sku", "category")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    type: EventType
    channel: _common_pb2.Channel
    occurred_at: _timestamp_pb2.Timestamp
    sku: str
    category: str
    def __init__(self, event_id: _Optional[str] = ..., type: _Optional[_Union[EventType, str]] = ..., channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sku: _Optional[str] = ..., category: _Optional[str] = ...) -> None: ...

class Profile(_message.Message):
    __slots__ = ("customer_id", "identities", "attributes", "consents", "status", "interests", "rfm", "engagement_score", "cart", "purchase_summary", "recent_events", "traits", "created_at", "updated_at", "version", "last_activity_at")
    class InterestsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class TraitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    CONSENTS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INTERESTS_FIELD_NUMBER: _ClassVar[int]
    RFM_FIELD_NUMBER: _ClassVar[int]
    ENGAGEMENT_SCORE_FIELD_NUMBER: _ClassVar[int]
    CART_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    RECENT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    TRAITS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTIVITY_AT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    identities: _containers.RepeatedCompositeFieldContainer[_common_pb2.Identity]
    attributes: Attributes
    consents: _containers.RepeatedCompositeFieldContainer[Consent]
    status: ProfileStatus
    interests: _containers.ScalarMap[str, float]
    rfm: Rfm
    engagement_score: float
    cart: _containers.RepeatedCompositeFieldContainer[_common_pb2.CartLine]
    purchase_summary: PurchaseSummary
    recent_events: _containers.RepeatedCompositeFieldContainer[RecentEvent]
    traits: _containers.MessageMap[str, _struct_pb2.Value]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    version: int
    last_activity_at: _timestamp_pb2.Timestamp
    def __init__(self, customer_id: _Optional[str] = ..., identities: _Optional[_Iterable[_Union[_common_pb2.Identity, _Mapping]]] = ..., attributes: _Optional[_Union[Attributes, _Mapping]] = ..., consents: _Optional[_Iterable[_Union[Consent, _Mapping]]] = ..., status: _Optional[_Union[ProfileStatus, str]] = ..., interests: _Optional[_Mapping[str, float]] = ..., rfm: _Optional[_Union[Rfm, _Mapping]] = ..., engagement_score: _Optional[float] = ..., cart: _Optional[_Iterable[_Union[_common_pb2.CartLine, _Mapping]]] = ..., purchase_summary: _Optional[_Union[PurchaseSummary, _Mapping]] = ..., recent_events: _Optional[_Iterable[_Union[RecentEvent, _Mapping]]] = ..., traits: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ..., last_activity_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetProfileRequest(_message.Message):
    __slots__ = ("customer", "field_mask")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    FIELD_MASK_FIELD_NUMBER: _ClassVar[int]
    customer: _common_pb2.CustomerRef
    field_mask: _field_mask_pb2.FieldMask
    def __init__(self, customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ..., field_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class GetProfileResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ...) -> None: ...

class BatchGetProfilesRequest(_message.Message):
    __slots__ = ("customer_ids", "field_mask")
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    FIELD_MASK_FIELD_NUMBER: _ClassVar[int]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    field_mask: _field_mask_pb2.FieldMask
    def __init__(self, customer_ids: _Optional[_Iterable[str]] = ..., field_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class BatchGetProfilesResponse(_message.Message):
    __slots__ = ("profiles", "missing_customer_ids")
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    MISSING_CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    profiles: _containers.RepeatedCompositeFieldContainer[Profile]
    missing_customer_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, profiles: _Optional[_Iterable[_Union[Profile, _Mapping]]] = ..., missing_customer_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class UpsertProfileRequest(_message.Message):
    __slots__ = ("customer", "attributes", "consents", "update_mask")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    CONSENTS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    customer: _common_pb2.CustomerRef
    attributes: Attributes
    consents: _containers.RepeatedCompositeFieldContainer[Consent]
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ..., attributes: _Optional[_Union[Attributes, _Mapping]] = ..., consents: _Optional[_Iterable[_Union[Consent, _Mapping]]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpsertProfileResponse(_message.Message):
    __slots__ = ("profile", "created")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    created: bool
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class SetTraitsRequest(_message.Message):
    __slots__ = ("customer", "namespace", "traits")
    class TraitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    TRAITS_FIELD_NUMBER: _ClassVar[int]
    customer: _common_pb2.CustomerRef
    namespace: str
    traits: _containers.MessageMap[str, _struct_pb2.Value]
    def __init__(self, customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ..., namespace: _Optional[str] = ..., traits: _Optional[_Mapping[str, _struct_pb2.Value]] = ...) -> None: ...

class SetTraitsResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ...) -> None: ...

class Purchase(_message.Message):
    __slots__ = ("order_id", "order", "is_return", "event_id", "channel")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    IS_RETURN_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    order: _common_pb2.Order
    is_return: bool
    event_id: str
    channel: _common_pb2.Channel
    def __init__(self, order_id: _Optional[str] = ..., order: _Optional[_Union[_common_pb2.Order, _Mapping]] = ..., is_return: _Optional[bool] = ..., event_id: _Optional[str] = ..., channel: _Optional[_Union[_common_pb2.Channel, str]] = ...) -> None: ...

class ListPurchasesRequest(_message.Message):
    __slots__ = ("customer", "page_size", "page_token")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    customer: _common_pb2.CustomerRef
    page_size: int
    page_token: str
    def __init__(self, customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPurchasesResponse(_message.Message):
    __slots__ = ("purchases", "next_page_token")
    PURCHASES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    purchases: _containers.RepeatedCompositeFieldContainer[Purchase]
    next_page_token: str
    def __init__(self, purchases: _Optional[_Iterable[_Union[Purchase, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class MergeProfilesRequest(_message.Message):
    __slots__ = ("target", "source", "reason")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    target: _common_pb2.CustomerRef
    source: _common_pb2.CustomerRef
    reason: str
    def __init__(self, target: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ..., source: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class MergeProfilesResponse(_message.Message):
    __slots__ = ("profile", "merged_customer_id")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    MERGED_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    merged_customer_id: str
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ..., merged_customer_id: _Optional[str] = ...) -> None: ...

class DeleteProfileRequest(_message.Message):
    __slots__ = ("customer",)
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    customer: _common_pb2.CustomerRef
    def __init__(self, customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ...) -> None: ...

class DeleteProfileResponse(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class ExportProfileRequest(_message.Message):
    __slots__ = ("customer", "page_size", "page_token")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    customer: _common_pb2.CustomerRef
    page_size: int
    page_token: str
    def __init__(self, customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class StoredEvent(_message.Message):
    __slots__ = ("event", "received_at")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    event: Event
    received_at: _timestamp_pb2.Timestamp
    def __init__(self, event: _Optional[_Union[Event, _Mapping]] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MergeRecord(_message.Message):
    __slots__ = ("source_customer_id", "target_customer_id", "actor", "reason", "merged_at")
    SOURCE_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MERGED_AT_FIELD_NUMBER: _ClassVar[int]
    source_customer_id: str
    target_customer_id: str
    actor: str
    reason: str
    merged_at: _timestamp_pb2.Timestamp
    def __init__(self, source_customer_id: _Optional[str] = ..., target_customer_id: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., merged_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ExportProfileResponse(_message.Message):
    __slots__ = ("profile", "events", "purchases", "merges", "next_page_token")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    PURCHASES_FIELD_NUMBER: _ClassVar[int]
    MERGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    events: _containers.RepeatedCompositeFieldContainer[StoredEvent]
    purchases: _containers.RepeatedCompositeFieldContainer[Purchase]
    merges: _containers.RepeatedCompositeFieldContainer[MergeRecord]
    next_page_token: str
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ..., events: _Optional[_Iterable[_Union[StoredEvent, _Mapping]]] = ..., purchases: _Optional[_Iterable[_Union[Purchase, _Mapping]]] = ..., merges: _Optional[_Iterable[_Union[MergeRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ProfileChangedFilter(_message.Message):
    __slots__ = ("customer_ids", "field_paths")
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    FIELD_PATHS_FIELD_NUMBER: _ClassVar[int]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    field_paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, customer_ids: _Optional[_Iterable[str]] = ..., field_paths: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchProfileChangesRequest(_message.Message):
    __slots__ = ("filter",)
    FILTER_FIELD_NUMBER: _ClassVar[int]
    filter: ProfileChangedFilter
    def __init__(self, filter: _Optional[_Union[ProfileChangedFilter, _Mapping]] = ...) -> None: ...

class WatchProfileChangesResponse(_message.Message):
    __slots__ = ("change",)
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    change: ProfileChanged
    def __init__(self, change: _Optional[_Union[ProfileChanged, _Mapping]] = ...) -> None: ...

class ProfileChanged(_message.Message):
    __slots__ = ("customer_id", "version", "changed_paths", "changed_at", "event_ids", "event_types", "profile", "events")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_PATHS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    version: int
    changed_paths: _containers.RepeatedScalarFieldContainer[str]
    changed_at: _timestamp_pb2.Timestamp
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    event_types: _containers.RepeatedScalarFieldContainer[EventType]
    profile: Profile
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, customer_id: _Optional[str] = ..., version: _Optional[int] = ..., changed_paths: _Optional[_Iterable[str]] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., event_ids: _Optional[_Iterable[str]] = ..., event_types: _Optional[_Iterable[_Union[EventType, str]]] = ..., profile: _Optional[_Union[Profile, _Mapping]] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class ProfileDeleted(_message.Message):
    __slots__ = ("customer_id", "deleted_at")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    DELETED_AT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    deleted_at: _timestamp_pb2.Timestamp
    def __init__(self, customer_id: _Optional[str] = ..., deleted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProfilesMerged(_message.Message):
    __slots__ = ("source_customer_id", "target_customer_id", "merged_at")
    SOURCE_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    MERGED_AT_FIELD_NUMBER: _ClassVar[int]
    source_customer_id: str
    target_customer_id: str
    merged_at: _timestamp_pb2.Timestamp
    def __init__(self, source_customer_id: _Optional[str] = ..., target_customer_id: _Optional[str] = ..., merged_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
