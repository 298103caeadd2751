import datetime

from backcrm.common.v1 import common_pb2 as _common_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Strategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STRATEGY_UNSPECIFIED: _ClassVar[Strategy]
    STRATEGY_PERSONAL: _ClassVar[Strategy]
    STRATEGY_BOUGHT_TOGETHER: _ClassVar[Strategy]
    STRATEGY_SIMILAR_ITEMS: _ClassVar[Strategy]
    STRATEGY_POPULAR_IN_SEGMENT: _ClassVar[Strategy]
    STRATEGY_POPULAR: _ClassVar[Strategy]
    STRATEGY_NEW: _ClassVar[Strategy]
STRATEGY_UNSPECIFIED: Strategy
STRATEGY_PERSONAL: Strategy
STRATEGY_BOUGHT_TOGETHER: Strategy
STRATEGY_SIMILAR_ITEMS: Strategy
STRATEGY_POPULAR_IN_SEGMENT: Strategy
STRATEGY_POPULAR: Strategy
STRATEGY_NEW: Strategy

class Item(_message.Message):
    __slots__ = ("sku", "title", "category", "tags", "price", "available", "attributes", "released_at", "updated_at")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SKU_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    RELEASED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    sku: str
    title: str
    category: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    price: _common_pb2.Money
    available: bool
    attributes: _containers.ScalarMap[str, str]
    released_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, sku: _Optional[str] = ..., title: _Optional[str] = ..., category: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., price: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., available: _Optional[bool] = ..., attributes: _Optional[_Mapping[str, str]] = ..., released_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StrategyWeight(_message.Message):
    __slots__ = ("strategy", "weight")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    strategy: Strategy
    weight: float
    def __init__(self, strategy: _Optional[_Union[Strategy, str]] = ..., weight: _Optional[float] = ...) -> None: ...

class ShowcaseFilters(_message.Message):
    __slots__ = ("categories", "exclude_purchased", "only_available", "exclude_in_cart")
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_PURCHASED_FIELD_NUMBER: _ClassVar[int]
    ONLY_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_IN_CART_FIELD_NUMBER: _ClassVar[int]
    categories: _containers.RepeatedScalarFieldContainer[str]
    exclude_purchased: bool
    only_available: bool
    exclude_in_cart: bool
    def __init__(self, categories: _Optional[_Iterable[str]] = ..., exclude_purchased: _Optional[bool] = ..., only_available: _Optional[bool] = ..., exclude_in_cart: _Optional[bool] = ...) -> None: ...

class ShowcaseRules(_message.Message):
    __slots__ = ("pins", "boosts", "excludes")
    class PinsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class BoostsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    PINS_FIELD_NUMBER: _ClassVar[int]
    BOOSTS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDES_FIELD_NUMBER: _ClassVar[int]
    pins: _containers.ScalarMap[str, int]
    boosts: _containers.ScalarMap[str, float]
    excludes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, pins: _Optional[_Mapping[str, int]] = ..., boosts: _Optional[_Mapping[str, float]] = ..., excludes: _Optional[_Iterable[str]] = ...) -> None: ...

class Showcase(_message.Message):
    __slots__ = ("showcase_id", "name", "strategies", "filters", "segment_boosts", "created_at", "updated_at", "rules", "max_per_category", "fallback")
    class SegmentBoostsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SHOWCASE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_BOOSTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    MAX_PER_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    showcase_id: str
    name: str
    strategies: _containers.RepeatedCompositeFieldContainer[StrategyWeight]
    filters: ShowcaseFilters
    segment_boosts: _containers.ScalarMap[str, float]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    rules: ShowcaseRules
    max_per_category: int
    fallback: _containers.RepeatedScalarFieldContainer[Strategy]
    def __init__(self, showcase_id: _Optional[str] = ..., name: _Optional[str] = ..., strategies: _Optional[_Iterable[_Union[StrategyWeight, _Mapping]]] = ..., filters: _Optional[_Union[ShowcaseFilters, _Mapping]] = ..., segment_boosts: _Optional[_Mapping[str, float]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rules: _Optional[_Union[ShowcaseRules, _Mapping]] = ..., max_per_category: _Optional[int] = ..., fallback: _Optional[_Iterable[_Union[Strategy, str]]] = ...) -> None: ...

class UpsertItemsRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Item]
    def __init__(self, items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ...) -> None: ...

class RejectedItem(_message.Message):
    __slots__ = ("index", "sku", "field", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    sku: str
    field: str
    reason: str
    def __init__(self, index: _Optional[int] = ..., sku: _Optional[str] = ..., field: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class UpsertItemsResponse(_message.Message):
    __slots__ = ("created", "updated", "rejected")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    created: int
    updated: int
    rejected: _containers.RepeatedCompositeFieldContainer[RejectedItem]
    def __init__(self, created: _Optional[int] = ..., updated: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[RejectedItem, _Mapping]]] = ...) -> None: ...

class ListItemsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "category")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    category: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., category: _Optional[str] = ...) -> None: ...

class ListItemsResponse(_message.Message):
    __slots__ = ("items", "next_page_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Item]
    next_page_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateShowcaseRequest(_message.Message):
    __slots__ = ("showcase",)
    SHOWCASE_FIELD_NUMBER: _ClassVar[int]
    showcase: Showcase
    def __init__(self, showcase: _Optional[_Union[Showcase, _Mapping]] = ...) -> None: ...

class CreateShowcaseResponse(_message.Message):
    __slots__ = ("showcase",)
    SHOWCASE_FIELD_NUMBER: _ClassVar[int]
    showcase: Showcase
    def __init__(self, showcase: _Optional[_Union[Showcase, _Mapping]] = ...) -> None: ...

class GetShowcaseRequest(_message.Message):
    __slots__ = ("showcase_id",)
    SHOWCASE_ID_FIELD_NUMBER: _ClassVar[int]
    showcase_id: str
    def __init__(self, showcase_id: _Optional[str] = ...) -> None: ...

class GetShowcaseResponse(_message.Message):
    __slots__ = ("showcase",)
    SHOWCASE_FIELD_NUMBER: _ClassVar[int]
    showcase: Showcase
    def __init__(self, showcase: _Optional[_Union[Showcase, _Mapping]] = ...) -> None: ...

class UpdateShowcaseRequest(_message.Message):
    __slots__ = ("showcase", "update_mask")
    SHOWCASE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    showcase: Showcase
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, showcase: _Optional[_Union[Showcase, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateShowcaseResponse(_message.Message):
    __slots__ = ("showcase",)
    SHOWCASE_FIELD_NUMBER: _ClassVar[int]
    showcase: Showcase
    def __init__(self, showcase: _Optional[_Union[Showcase, _Mapping]] = ...) -> None: ...

class ListShowcasesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListShowcasesResponse(_message.Message):
    __slots__ = ("showcases", "next_page_token")
    SHOWCASES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    showcases: _containers.RepeatedCompositeFieldContainer[Showcase]
    next_page_token: str
    def __init__(self, showcases: _Optional[_Iterable[_Union[Showcase, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Reason(_message.Message):
    __slots__ = ("strategy", "because_sku", "because_segment_id", "pinned")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    BECAUSE_SKU_FIELD_NUMBER: _ClassVar[int]
    BECAUSE_SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    strategy: Strategy
    because_sku: str
    because_segment_id: str
    pinned: bool
    def __init__(self, strategy: _Optional[_Union[Strategy, str]] = ..., because_sku: _Optional[str] = ..., because_segment_id: _Optional[str] = ..., pinned: _Optional[bool] = ...) -> None: ...

class RecommendedItem(_message.Message):
    __slots__ = ("sku", "score", "reason", "item")
    SKU_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    sku: str
    score: float
    reason: Reason
    item: Item
    def __init__(self, sku: _Optional[str] = ..., score: _Optional[float] = ..., reason: _Optional[_Union[Reason, _Mapping]] = ..., item: _Optional[_Union[Item, _Mapping]] = ...) -> None: ...

class GetRecommendationsRequest(_message.Message):
    __slots__ = ("customer", "showcase_id", "context", "limit")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    SHOWCASE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    customer: _common_pb2.CustomerRef
    showcase_id: str
    context: _common_pb2.Context
    limit: int
    def __init__(self, customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ..., showcase_id: _Optional[str] = ..., context: _Optional[_Union[_common_pb2.Context, _Mapping]] = ..., limit: _Optional[int] = ...) -> None: ...

class GetRecommendationsResponse(_message.Message):
    __slots__ = ("items", "customer_id")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[RecommendedItem]
    customer_id: str
    def __init__(self, items: _Optional[_Iterable[_Union[RecommendedItem, _Mapping]]] = ..., customer_id: _Optional[str] = ...) -> None: ...

class GetSimilarItemsRequest(_message.Message):
    __slots__ = ("sku", "limit", "strategy")
    SKU_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    sku: str
    limit: int
    strategy: Strategy
    def __init__(self, sku: _Optional[str] = ..., limit: _Optional[int] = ..., strategy: _Optional[_Union[Strategy, str]] = ...) -> None: ...

class GetSimilarItemsResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[RecommendedItem]
    def __init__(self, items: _Optional[_Iterable[_Union[RecommendedItem, _Mapping]]] = ...) -> None: ...

class ItemsUpserted(_message.Message):
    __slots__ = ("skus", "upserted_at")
    SKUS_FIELD_NUMBER: _ClassVar[int]
    UPSERTED_AT_FIELD_NUMBER: _ClassVar[int]
    skus: _containers.RepeatedScalarFieldContainer[str]
    upserted_at: _timestamp_pb2.Timestamp
    def __init__(self, skus: _Optional[_Iterable[str]] = ..., upserted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ShowcaseChanged(_message.Message):
    __slots__ = ("showcase_id", "changed_at")
    SHOWCASE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    showcase_id: str
    changed_at: _timestamp_pb2.Timestamp
    def __init__(self, showcase_id: _Optional[str] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
