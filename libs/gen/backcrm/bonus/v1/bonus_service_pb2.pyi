import datetime

from backcrm.common.v1 import common_pb2 as _common_pb2
from backcrm.segmentation.v1 import condition_pb2 as _condition_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EffectType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EFFECT_TYPE_UNSPECIFIED: _ClassVar[EffectType]
    EFFECT_TYPE_PERCENT_OFF: _ClassVar[EffectType]
    EFFECT_TYPE_AMOUNT_OFF: _ClassVar[EffectType]
    EFFECT_TYPE_GIFT: _ClassVar[EffectType]
    EFFECT_TYPE_POINTS_MULTIPLIER: _ClassVar[EffectType]
    EFFECT_TYPE_FIXED_PRICE: _ClassVar[EffectType]

class PromotionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROMOTION_STATUS_UNSPECIFIED: _ClassVar[PromotionStatus]
    PROMOTION_STATUS_ACTIVE: _ClassVar[PromotionStatus]
    PROMOTION_STATUS_PAUSED: _ClassVar[PromotionStatus]
    PROMOTION_STATUS_ENDED: _ClassVar[PromotionStatus]

class StackingMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STACKING_MODE_UNSPECIFIED: _ClassVar[StackingMode]
    STACKING_MODE_STACKABLE: _ClassVar[StackingMode]
    STACKING_MODE_EXCLUSIVE: _ClassVar[StackingMode]
    STACKING_MODE_BEST_FOR_CUSTOMER: _ClassVar[StackingMode]

class PriceBase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRICE_BASE_UNSPECIFIED: _ClassVar[PriceBase]
    PRICE_BASE_ORIGINAL: _ClassVar[PriceBase]
    PRICE_BASE_DISCOUNTED: _ClassVar[PriceBase]

class TransactionType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSACTION_TYPE_UNSPECIFIED: _ClassVar[TransactionType]
    TRANSACTION_TYPE_WELCOME: _ClassVar[TransactionType]
    TRANSACTION_TYPE_ACCRUAL: _ClassVar[TransactionType]
    TRANSACTION_TYPE_REDEMPTION: _ClassVar[TransactionType]
    TRANSACTION_TYPE_REVERSAL: _ClassVar[TransactionType]
    TRANSACTION_TYPE_EXPIRATION: _ClassVar[TransactionType]
    TRANSACTION_TYPE_TRANSFER_IN: _ClassVar[TransactionType]
    TRANSACTION_TYPE_TRANSFER_OUT: _ClassVar[TransactionType]
    TRANSACTION_TYPE_ACTIVATION: _ClassVar[TransactionType]
    TRANSACTION_TYPE_ADJUSTMENT: _ClassVar[TransactionType]
EFFECT_TYPE_UNSPECIFIED: EffectType
EFFECT_TYPE_PERCENT_OFF: EffectType
EFFECT_TYPE_AMOUNT_OFF: EffectType
EFFECT_TYPE_GIFT: EffectType
EFFECT_TYPE_POINTS_MULTIPLIER: EffectType
EFFECT_TYPE_FIXED_PRICE: EffectType
PROMOTION_STATUS_UNSPECIFIED: PromotionStatus
PROMOTION_STATUS_ACTIVE: PromotionStatus
PROMOTION_STATUS_PAUSED: PromotionStatus
PROMOTION_STATUS_ENDED: PromotionStatus
STACKING_MODE_UNSPECIFIED: StackingMode
STACKING_MODE_STACKABLE: StackingMode
STACKING_MODE_EXCLUSIVE: StackingMode
STACKING_MODE_BEST_FOR_CUSTOMER: StackingMode
PRICE_BASE_UNSPECIFIED: PriceBase
PRICE_BASE_ORIGINAL: PriceBase
PRICE_BASE_DISCOUNTED: PriceBase
TRANSACTION_TYPE_UNSPECIFIED: TransactionType
TRANSACTION_TYPE_WELCOME: TransactionType
TRANSACTION_TYPE_ACCRUAL: TransactionType
TRANSACTION_TYPE_REDEMPTION: TransactionType
TRANSACTION_TYPE_REVERSAL: TransactionType
TRANSACTION_TYPE_EXPIRATION: TransactionType
TRANSACTION_TYPE_TRANSFER_IN: TransactionType
TRANSACTION_TYPE_TRANSFER_OUT: TransactionType
TRANSACTION_TYPE_ACTIVATION: TransactionType
TRANSACTION_TYPE_ADJUSTMENT: TransactionType

class Tier(_message.Message):
    __slots__ = ("name", "threshold_points", "discount_percent", "points_multiplier")
    NAME_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_POINTS_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_PERCENT_FIELD_NUMBER: _ClassVar[int]
    POINTS_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    name: str
    threshold_points: int
    discount_percent: float
    points_multiplier: float
    def __init__(self, name: _Optional[str] = ..., threshold_points: _Optional[int] = ..., discount_percent: _Optional[float] = ..., points_multiplier: _Optional[float] = ...) -> None: ...

class Program(_message.Message):
    __slots__ = ("program_id", "name", "currency", "points_per_unit", "category_multipliers", "segment_multipliers", "tiers", "tier_period_days", "welcome_points", "expiry_days", "pending_days", "point_value", "max_redeem_percent", "created_at", "updated_at")
    class CategoryMultipliersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class SegmentMultipliersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    POINTS_PER_UNIT_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_MULTIPLIERS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_MULTIPLIERS_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    TIER_PERIOD_DAYS_FIELD_NUMBER: _ClassVar[int]
    WELCOME_POINTS_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_DAYS_FIELD_NUMBER: _ClassVar[int]
    PENDING_DAYS_FIELD_NUMBER: _ClassVar[int]
    POINT_VALUE_FIELD_NUMBER: _ClassVar[int]
    MAX_REDEEM_PERCENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    program_id: str
    name: str
    currency: str
    points_per_unit: float
    category_multipliers: _containers.ScalarMap[str, float]
    segment_multipliers: _containers.ScalarMap[str, float]
    tiers: _containers.RepeatedCompositeFieldContainer[Tier]
    tier_period_days: int
    welcome_points: int
    expiry_days: int
    pending_days: int
    point_value: _common_pb2.Money
    max_redeem_percent: float
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, program_id: _Optional[str] = ..., name: _Optional[str] = ..., currency: _Optional[str] = ..., points_per_unit: _Optional[float] = ..., category_multipliers: _Optional[_Mapping[str, float]] = ..., segment_multipliers: _Optional[_Mapping[str, float]] = ..., tiers: _Optional[_Iterable[_Union[Tier, _Mapping]]] = ..., tier_period_days: _Optional[int] = ..., welcome_points: _Optional[int] = ..., expiry_days: _Optional[int] = ..., pending_days: _Optional[int] = ..., point_value: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., max_redeem_percent: _Optional[float] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Effect(_message.Message):
    __slots__ = ("type", "percent", "amount", "gift_sku", "multiplier", "price", "skus", "categories", "gift_quantity")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    GIFT_SKU_FIELD_NUMBER: _ClassVar[int]
    MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    SKUS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    GIFT_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    type: EffectType
    percent: float
    amount: _common_pb2.Money
    gift_sku: str
    multiplier: float
    price: _common_pb2.Money
    skus: _containers.RepeatedScalarFieldContainer[str]
    categories: _containers.RepeatedScalarFieldContainer[str]
    gift_quantity: int
    def __init__(self, type: _Optional[_Union[EffectType, str]] = ..., percent: _Optional[float] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., gift_sku: _Optional[str] = ..., multiplier: _Optional[float] = ..., price: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., skus: _Optional[_Iterable[str]] = ..., categories: _Optional[_Iterable[str]] = ..., gift_quantity: _Optional[int] = ...) -> None: ...

class Schedule(_message.Message):
    __slots__ = ("start_time", "end_time")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PromotionBudget(_message.Message):
    __slots__ = ("max_uses", "max_uses_per_customer", "max_discount")
    MAX_USES_FIELD_NUMBER: _ClassVar[int]
    MAX_USES_PER_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    MAX_DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    max_uses: int
    max_uses_per_customer: int
    max_discount: _common_pb2.Money
    def __init__(self, max_uses: _Optional[int] = ..., max_uses_per_customer: _Optional[int] = ..., max_discount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class Promotion(_message.Message):
    __slots__ = ("promotion_id", "program_id", "name", "description", "condition", "effect", "priority", "exclusive", "schedule", "budget", "coupon_code", "status", "uses", "discount_given", "created_at", "updated_at", "stacking", "price_base", "holdout_percent")
    PROMOTION_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    EXCLUSIVE_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    COUPON_CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    USES_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_GIVEN_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    STACKING_FIELD_NUMBER: _ClassVar[int]
    PRICE_BASE_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_PERCENT_FIELD_NUMBER: _ClassVar[int]
    promotion_id: str
    program_id: str
    name: str
    description: str
    condition: _condition_pb2.Condition
    effect: Effect
    priority: int
    exclusive: bool
    schedule: Schedule
    budget: PromotionBudget
    coupon_code: str
    status: PromotionStatus
    uses: int
    discount_given: _common_pb2.Money
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    stacking: StackingMode
    price_base: PriceBase
    holdout_percent: float
    def __init__(self, promotion_id: _Optional[str] = ..., program_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., condition: _Optional[_Union[_condition_pb2.Condition, _Mapping]] = ..., effect: _Optional[_Union[Effect, _Mapping]] = ..., priority: _Optional[int] = ..., exclusive: _Optional[bool] = ..., schedule: _Optional[_Union[Schedule, _Mapping]] = ..., budget: _Optional[_Union[PromotionBudget, _Mapping]] = ..., coupon_code: _Optional[str] = ..., status: _Optional[_Union[PromotionStatus, str]] = ..., uses: _Optional[int] = ..., discount_given: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stacking: _Optional[_Union[StackingMode, str]] = ..., price_base: _Optional[_Union[PriceBase, str]] = ..., holdout_percent: _Optional[float] = ...) -> None: ...

class Account(_message.Message):
    __slots__ = ("program_id", "customer_id", "enrolled", "balance", "pending", "tier", "tier_points", "next_tier", "points_to_next_tier", "expiring_soon", "next_expiry_at", "lifetime_points", "enrolled_at")
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    TIER_POINTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_TIER_FIELD_NUMBER: _ClassVar[int]
    POINTS_TO_NEXT_TIER_FIELD_NUMBER: _ClassVar[int]
    EXPIRING_SOON_FIELD_NUMBER: _ClassVar[int]
    NEXT_EXPIRY_AT_FIELD_NUMBER: _ClassVar[int]
    LIFETIME_POINTS_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_AT_FIELD_NUMBER: _ClassVar[int]
    program_id: str
    customer_id: str
    enrolled: bool
    balance: int
    pending: int
    tier: str
    tier_points: int
    next_tier: str
    points_to_next_tier: int
    expiring_soon: int
    next_expiry_at: _timestamp_pb2.Timestamp
    lifetime_points: int
    enrolled_at: _timestamp_pb2.Timestamp
    def __init__(self, program_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., enrolled: _Optional[bool] = ..., balance: _Optional[int] = ..., pending: _Optional[int] = ..., tier: _Optional[str] = ..., tier_points: _Optional[int] = ..., next_tier: _Optional[str] = ..., points_to_next_tier: _Optional[int] = ..., expiring_soon: _Optional[int] = ..., next_expiry_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lifetime_points: _Optional[int] = ..., enrolled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Transaction(_message.Message):
    __slots__ = ("transaction_id", "program_id", "customer_id", "type", "points", "order_id", "reversed_transaction_id", "idempotency_key", "created_at", "available_at", "expires_at", "balance_after", "pending_after", "promotion_ids", "description")
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    REVERSED_TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    PENDING_AFTER_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_IDS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    transaction_id: str
    program_id: str
    customer_id: str
    type: TransactionType
    points: int
    order_id: str
    reversed_transaction_id: str
    idempotency_key: str
    created_at: _timestamp_pb2.Timestamp
    available_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    balance_after: int
    pending_after: int
    promotion_ids: _containers.RepeatedScalarFieldContainer[str]
    description: str
    def __init__(self, transaction_id: _Optional[str] = ..., program_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., type: _Optional[_Union[TransactionType, str]] = ..., points: _Optional[int] = ..., order_id: _Optional[str] = ..., reversed_transaction_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., available_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., balance_after: _Optional[int] = ..., pending_after: _Optional[int] = ..., promotion_ids: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ...) -> None: ...

class CreateProgramRequest(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: Program
    def __init__(self, program: _Optional[_Union[Program, _Mapping]] = ...) -> None: ...

class CreateProgramResponse(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: Program
    def __init__(self, program: _Optional[_Union[Program, _Mapping]] = ...) -> None: ...

class GetProgramRequest(_message.Message):
    __slots__ = ("program_id",)
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    program_id: str
    def __init__(self, program_id: _Optional[str] = ...) -> None: ...

class GetProgramResponse(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: Program
    def __init__(self, program: _Optional[_Union[Program, _Mapping]] = ...) -> None: ...

class UpdateProgramRequest(_message.Message):
    __slots__ = ("program", "update_mask")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    program: Program
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, program: _Optional[_Union[Program, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateProgramResponse(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: Program
    def __init__(self, program: _Optional[_Union[Program, _Mapping]] = ...) -> None: ...

class CreatePromotionRequest(_message.Message):
    __slots__ = ("promotion",)
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    promotion: Promotion
    def __init__(self, promotion: _Optional[_Union[Promotion, _Mapping]] = ...) -> None: ...

class CreatePromotionResponse(_message.Message):
    __slots__ = ("promotion",)
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    promotion: Promotion
    def __init__(self, promotion: _Optional[_Union[Promotion, _Mapping]] = ...) -> None: ...

class GetPromotionRequest(_message.Message):
    __slots__ = ("promotion_id",)
    PROMOTION_ID_FIELD_NUMBER: _ClassVar[int]
    promotion_id: str
    def __init__(self, promotion_id: _Optional[str] = ...) -> None: ...

class GetPromotionResponse(_message.Message):
    __slots__ = ("promotion",)
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    promotion: Promotion
    def __init__(self, promotion: _Optional[_Union[Promotion, _Mapping]] = ...) -> None: ...

class UpdatePromotionRequest(_message.Message):
    __slots__ = ("promotion", "update_mask")
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    promotion: Promotion
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, promotion: _Optional[_Union[Promotion, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdatePromotionResponse(_message.Message):
    __slots__ = ("promotion",)
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    promotion: Promotion
    def __init__(self, promotion: _Optional[_Union[Promotion, _Mapping]] = ...) -> None: ...

class ListPromotionsRequest(_message.Message):
    __slots__ = ("program_id", "page_size", "page_token", "status")
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    program_id: str
    page_size: int
    page_token: str
    status: PromotionStatus
    def __init__(self, program_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., status: _Optional[_Union[PromotionStatus, str]] = ...) -> None: ...

class ListPromotionsResponse(_message.Message):
    __slots__ = ("promotions", "next_page_token")
    PROMOTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    promotions: _containers.RepeatedCompositeFieldContainer[Promotion]
    next_page_token: str
    def __init__(self, promotions: _Optional[_Iterable[_Union[Promotion, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PausePromotionRequest(_message.Message):
    __slots__ = ("promotion_id",)
    PROMOTION_ID_FIELD_NUMBER: _ClassVar[int]
    promotion_id: str
    def __init__(self, promotion_id: _Optional[str] = ...) -> None: ...

class PausePromotionResponse(_message.Message):
    __slots__ = ("promotion",)
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    promotion: Promotion
    def __init__(self, promotion: _Optional[_Union[Promotion, _Mapping]] = ...) -> None: ...

class EnrollRequest(_message.Message):
    __slots__ = ("program_id", "customer")
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    program_id: str
    customer: _common_pb2.CustomerRef
    def __init__(self, program_id: _Optional[str] = ..., customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ...) -> None: ...

class EnrollResponse(_message.Message):
    __slots__ = ("account", "welcome")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    account: Account
    welcome: Transaction
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ..., welcome: _Optional[_Union[Transaction, _Mapping]] = ...) -> None: ...

class GetAccountRequest(_message.Message):
    __slots__ = ("program_id", "customer")
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    program_id: str
    customer: _common_pb2.CustomerRef
    def __init__(self, program_id: _Optional[str] = ..., customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ...) -> None: ...

class GetAccountResponse(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: Account
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ...) -> None: ...

class AccrueRequest(_message.Message):
    __slots__ = ("program_id", "customer", "order", "idempotency_key", "quote_id")
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    QUOTE_ID_FIELD_NUMBER: _ClassVar[int]
    program_id: str
    customer: _common_pb2.CustomerRef
    order: _common_pb2.Order
    idempotency_key: str
    quote_id: str
    def __init__(self, program_id: _Optional[str] = ..., customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ..., order: _Optional[_Union[_common_pb2.Order, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., quote_id: _Optional[str] = ...) -> None: ...

class AccrueResponse(_message.Message):
    __slots__ = ("transaction", "account")
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    transaction: Transaction
    account: Account
    def __init__(self, transaction: _Optional[_Union[Transaction, _Mapping]] = ..., account: _Optional[_Union[Account, _Mapping]] = ...) -> None: ...

class RedeemRequest(_message.Message):
    __slots__ = ("program_id", "customer", "points", "order_id", "idempotency_key")
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    program_id: str
    customer: _common_pb2.CustomerRef
    points: int
    order_id: str
    idempotency_key: str
    def __init__(self, program_id: _Optional[str] = ..., customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ..., points: _Optional[int] = ..., order_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class RedeemResponse(_message.Message):
    __slots__ = ("transaction", "account", "value")
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    transaction: Transaction
    account: Account
    value: _common_pb2.Money
    def __init__(self, transaction: _Optional[_Union[Transaction, _Mapping]] = ..., account: _Optional[_Union[Account, _Mapping]] = ..., value: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class ReverseRequest(_message.Message):
    __slots__ = ("transaction_id", "idempotency_key", "points", "reason")
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    transaction_id: str
    idempotency_key: str
    points: int
    reason: str
    def __init__(self, transaction_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., points: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class ReverseResponse(_message.Message):
    __slots__ = ("transaction", "account", "unrecovered_points")
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    UNRECOVERED_POINTS_FIELD_NUMBER: _ClassVar[int]
    transaction: Transaction
    account: Account
    unrecovered_points: int
    def __init__(self, transaction: _Optional[_Union[Transaction, _Mapping]] = ..., account: _Optional[_Union[Account, _Mapping]] = ..., unrecovered_points: _Optional[int] = ...) -> None: ...

class AdjustPointsRequest(_message.Message):
    __slots__ = ("program_id", "customer", "points", "reason", "idempotency_key")
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    program_id: str
    customer: _common_pb2.CustomerRef
    points: int
    reason: str
    idempotency_key: str
    def __init__(self, program_id: _Optional[str] = ..., customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ..., points: _Optional[int] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class AdjustPointsResponse(_message.Message):
    __slots__ = ("transaction", "account")
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    transaction: Transaction
    account: Account
    def __init__(self, transaction: _Optional[_Union[Transaction, _Mapping]] = ..., account: _Optional[_Union[Account, _Mapping]] = ...) -> None: ...

class RewardPointsRequest(_message.Message):
    __slots__ = ("program_id", "customer", "points", "reason", "idempotency_key")
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    program_id: str
    customer: _common_pb2.CustomerRef
    points: int
    reason: str
    idempotency_key: str
    def __init__(self, program_id: _Optional[str] = ..., customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ..., points: _Optional[int] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class RewardPointsResponse(_message.Message):
    __slots__ = ("transaction", "account")
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    transaction: Transaction
    account: Account
    def __init__(self, transaction: _Optional[_Union[Transaction, _Mapping]] = ..., account: _Optional[_Union[Account, _Mapping]] = ...) -> None: ...

class ListTransactionsRequest(_message.Message):
    __slots__ = ("program_id", "customer", "page_size", "page_token")
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    program_id: str
    customer: _common_pb2.CustomerRef
    page_size: int
    page_token: str
    def __init__(self, program_id: _Optional[str] = ..., customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTransactionsResponse(_message.Message):
    __slots__ = ("transactions", "next_page_token")
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    transactions: _containers.RepeatedCompositeFieldContainer[Transaction]
    next_page_token: str
    def __init__(self, transactions: _Optional[_Iterable[_Union[Transaction, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class QuoteOfferRequest(_message.Message):
    __slots__ = ("program_id", "customer", "context", "coupon_codes", "explain")
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    COUPON_CODES_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    program_id: str
    customer: _common_pb2.CustomerRef
    context: _common_pb2.Context
    coupon_codes: _containers.RepeatedScalarFieldContainer[str]
    explain: bool
    def __init__(self, program_id: _Optional[str] = ..., customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ..., context: _Optional[_Union[_common_pb2.Context, _Mapping]] = ..., coupon_codes: _Optional[_Iterable[str]] = ..., explain: _Optional[bool] = ...) -> None: ...

class QuoteLine(_message.Message):
    __slots__ = ("sku", "quantity", "base_price", "personal_price", "line_total", "promotion_ids", "points_to_earn")
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    BASE_PRICE_FIELD_NUMBER: _ClassVar[int]
    PERSONAL_PRICE_FIELD_NUMBER: _ClassVar[int]
    LINE_TOTAL_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_IDS_FIELD_NUMBER: _ClassVar[int]
    POINTS_TO_EARN_FIELD_NUMBER: _ClassVar[int]
    sku: str
    quantity: int
    base_price: _common_pb2.Money
    personal_price: _common_pb2.Money
    line_total: _common_pb2.Money
    promotion_ids: _containers.RepeatedScalarFieldContainer[str]
    points_to_earn: int
    def __init__(self, sku: _Optional[str] = ..., quantity: _Optional[int] = ..., base_price: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., personal_price: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., line_total: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., promotion_ids: _Optional[_Iterable[str]] = ..., points_to_earn: _Optional[int] = ...) -> None: ...

class AppliedPromotion(_message.Message):
    __slots__ = ("promotion_id", "name", "effect_type", "discount", "bonus_points", "skus", "reason")
    PROMOTION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EFFECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    BONUS_POINTS_FIELD_NUMBER: _ClassVar[int]
    SKUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    promotion_id: str
    name: str
    effect_type: EffectType
    discount: _common_pb2.Money
    bonus_points: int
    skus: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    def __init__(self, promotion_id: _Optional[str] = ..., name: _Optional[str] = ..., effect_type: _Optional[_Union[EffectType, str]] = ..., discount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., bonus_points: _Optional[int] = ..., skus: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ...) -> None: ...

class Gift(_message.Message):
    __slots__ = ("sku", "quantity", "promotion_id")
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_ID_FIELD_NUMBER: _ClassVar[int]
    sku: str
    quantity: int
    promotion_id: str
    def __init__(self, sku: _Optional[str] = ..., quantity: _Optional[int] = ..., promotion_id: _Optional[str] = ...) -> None: ...

class QuoteOfferResponse(_message.Message):
    __slots__ = ("quote_id", "expires_at", "lines", "applied", "gifts", "points_to_earn", "points_spendable", "points_spendable_value", "subtotal", "discount", "total", "tier", "invalid_coupon_codes", "customer_id", "near_misses", "not_applied", "degraded")
    QUOTE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    GIFTS_FIELD_NUMBER: _ClassVar[int]
    POINTS_TO_EARN_FIELD_NUMBER: _ClassVar[int]
    POINTS_SPENDABLE_FIELD_NUMBER: _ClassVar[int]
    POINTS_SPENDABLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    SUBTOTAL_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    INVALID_COUPON_CODES_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    NEAR_MISSES_FIELD_NUMBER: _ClassVar[int]
    NOT_APPLIED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    quote_id: str
    expires_at: _timestamp_pb2.Timestamp
    lines: _containers.RepeatedCompositeFieldContainer[QuoteLine]
    applied: _containers.RepeatedCompositeFieldContainer[AppliedPromotion]
    gifts: _containers.RepeatedCompositeFieldContainer[Gift]
    points_to_earn: int
    points_spendable: int
    points_spendable_value: _common_pb2.Money
    subtotal: _common_pb2.Money
    discount: _common_pb2.Money
    total: _common_pb2.Money
    tier: str
    invalid_coupon_codes: _containers.RepeatedScalarFieldContainer[str]
    customer_id: str
    near_misses: _containers.RepeatedCompositeFieldContainer[NearMiss]
    not_applied: _containers.RepeatedCompositeFieldContainer[NotApplied]
    degraded: bool
    def __init__(self, quote_id: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lines: _Optional[_Iterable[_Union[QuoteLine, _Mapping]]] = ..., applied: _Optional[_Iterable[_Union[AppliedPromotion, _Mapping]]] = ..., gifts: _Optional[_Iterable[_Union[Gift, _Mapping]]] = ..., points_to_earn: _Optional[int] = ..., points_spendable: _Optional[int] = ..., points_spendable_value: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., subtotal: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., discount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., total: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., tier: _Optional[str] = ..., invalid_coupon_codes: _Optional[_Iterable[str]] = ..., customer_id: _Optional[str] = ..., near_misses: _Optional[_Iterable[_Union[NearMiss, _Mapping]]] = ..., not_applied: _Optional[_Iterable[_Union[NotApplied, _Mapping]]] = ..., degraded: _Optional[bool] = ...) -> None: ...

class NearMiss(_message.Message):
    __slots__ = ("promotion_id", "name", "effect_type", "missing_amount", "missing_quantity", "message")
    PROMOTION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EFFECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    MISSING_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    MISSING_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    promotion_id: str
    name: str
    effect_type: EffectType
    missing_amount: _common_pb2.Money
    missing_quantity: int
    message: str
    def __init__(self, promotion_id: _Optional[str] = ..., name: _Optional[str] = ..., effect_type: _Optional[_Union[EffectType, str]] = ..., missing_amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., missing_quantity: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class NotApplied(_message.Message):
    __slots__ = ("promotion_id", "name", "reason")
    PROMOTION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    promotion_id: str
    name: str
    reason: str
    def __init__(self, promotion_id: _Optional[str] = ..., name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GetPromotionReportRequest(_message.Message):
    __slots__ = ("promotion_id",)
    PROMOTION_ID_FIELD_NUMBER: _ClassVar[int]
    promotion_id: str
    def __init__(self, promotion_id: _Optional[str] = ...) -> None: ...

class PromotionGroupReport(_message.Message):
    __slots__ = ("customers", "converted_customers", "orders", "conversion_rate", "revenue", "average_order_value")
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    CONVERTED_CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_RATE_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_ORDER_VALUE_FIELD_NUMBER: _ClassVar[int]
    customers: int
    converted_customers: int
    orders: int
    conversion_rate: float
    revenue: _common_pb2.Money
    average_order_value: _common_pb2.Money
    def __init__(self, customers: _Optional[int] = ..., converted_customers: _Optional[int] = ..., orders: _Optional[int] = ..., conversion_rate: _Optional[float] = ..., revenue: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., average_order_value: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class GetPromotionReportResponse(_message.Message):
    __slots__ = ("promotion_id", "holdout_percent", "treated", "held_out")
    PROMOTION_ID_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_PERCENT_FIELD_NUMBER: _ClassVar[int]
    TREATED_FIELD_NUMBER: _ClassVar[int]
    HELD_OUT_FIELD_NUMBER: _ClassVar[int]
    promotion_id: str
    holdout_percent: float
    treated: PromotionGroupReport
    held_out: PromotionGroupReport
    def __init__(self, promotion_id: _Optional[str] = ..., holdout_percent: _Optional[float] = ..., treated: _Optional[_Union[PromotionGroupReport, _Mapping]] = ..., held_out: _Optional[_Union[PromotionGroupReport, _Mapping]] = ...) -> None: ...

class TransactionRecorded(_message.Message):
    __slots__ = ("transaction",)
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    transaction: Transaction
    def __init__(self, transaction: _Optional[_Union[Transaction, _Mapping]] = ...) -> None: ...

class TierChanged(_message.Message):
    __slots__ = ("program_id", "customer_id", "previous_tier", "tier", "changed_at", "tier_points")
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_TIER_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    TIER_POINTS_FIELD_NUMBER: _ClassVar[int]
    program_id: str
    customer_id: str
    previous_tier: str
    tier: str
    changed_at: _timestamp_pb2.Timestamp
    tier_points: int
    def __init__(self, program_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., previous_tier: _Optional[str] = ..., tier: _Optional[str] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tier_points: _Optional[int] = ...) -> None: ...

class PromotionChanged(_message.Message):
    __slots__ = ("promotion_id", "program_id", "status", "changed_at")
    PROMOTION_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    promotion_id: str
    program_id: str
    status: PromotionStatus
    changed_at: _timestamp_pb2.Timestamp
    def __init__(self, promotion_id: _Optional[str] = ..., program_id: _Optional[str] = ..., status: _Optional[_Union[PromotionStatus, str]] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProgramChanged(_message.Message):
    __slots__ = ("program_id", "changed_at")
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    program_id: str
    changed_at: _timestamp_pb2.Timestamp
    def __init__(self, program_id: _Optional[str] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
