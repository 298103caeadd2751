import datetime

from backcrm.common.v1 import common_pb2 as _common_pb2
from backcrm.segmentation.v1 import condition_pb2 as _condition_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CampaignStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAMPAIGN_STATUS_UNSPECIFIED: _ClassVar[CampaignStatus]
    CAMPAIGN_STATUS_ACTIVE: _ClassVar[CampaignStatus]
    CAMPAIGN_STATUS_PAUSED: _ClassVar[CampaignStatus]
    CAMPAIGN_STATUS_ENDED: _ClassVar[CampaignStatus]

class InteractionType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTERACTION_TYPE_UNSPECIFIED: _ClassVar[InteractionType]
    INTERACTION_TYPE_IMPRESSION: _ClassVar[InteractionType]
    INTERACTION_TYPE_CLICK: _ClassVar[InteractionType]
    INTERACTION_TYPE_CONVERSION: _ClassVar[InteractionType]

class ExclusionReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXCLUSION_REASON_UNSPECIFIED: _ClassVar[ExclusionReason]
    EXCLUSION_REASON_STATUS: _ClassVar[ExclusionReason]
    EXCLUSION_REASON_SCHEDULE: _ClassVar[ExclusionReason]
    EXCLUSION_REASON_PLACEMENT: _ClassVar[ExclusionReason]
    EXCLUSION_REASON_TARGETING: _ClassVar[ExclusionReason]
    EXCLUSION_REASON_FREQUENCY_CAP: _ClassVar[ExclusionReason]
    EXCLUSION_REASON_BUDGET: _ClassVar[ExclusionReason]
    EXCLUSION_REASON_RANKED_OUT: _ClassVar[ExclusionReason]
    EXCLUSION_REASON_PACING: _ClassVar[ExclusionReason]
CAMPAIGN_STATUS_UNSPECIFIED: CampaignStatus
CAMPAIGN_STATUS_ACTIVE: CampaignStatus
CAMPAIGN_STATUS_PAUSED: CampaignStatus
CAMPAIGN_STATUS_ENDED: CampaignStatus
INTERACTION_TYPE_UNSPECIFIED: InteractionType
INTERACTION_TYPE_IMPRESSION: InteractionType
INTERACTION_TYPE_CLICK: InteractionType
INTERACTION_TYPE_CONVERSION: InteractionType
EXCLUSION_REASON_UNSPECIFIED: ExclusionReason
EXCLUSION_REASON_STATUS: ExclusionReason
EXCLUSION_REASON_SCHEDULE: ExclusionReason
EXCLUSION_REASON_PLACEMENT: ExclusionReason
EXCLUSION_REASON_TARGETING: ExclusionReason
EXCLUSION_REASON_FREQUENCY_CAP: ExclusionReason
EXCLUSION_REASON_BUDGET: ExclusionReason
EXCLUSION_REASON_RANKED_OUT: ExclusionReason
EXCLUSION_REASON_PACING: ExclusionReason

class Creative(_message.Message):
    __slots__ = ("creative_id", "title", "body", "image_url", "click_url", "placements")
    CREATIVE_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    CLICK_URL_FIELD_NUMBER: _ClassVar[int]
    PLACEMENTS_FIELD_NUMBER: _ClassVar[int]
    creative_id: str
    title: str
    body: str
    image_url: str
    click_url: str
    placements: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, creative_id: _Optional[str] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., image_url: _Optional[str] = ..., click_url: _Optional[str] = ..., placements: _Optional[_Iterable[str]] = ...) -> None: ...

class Targeting(_message.Message):
    __slots__ = ("include_segment_ids", "exclude_segment_ids", "context")
    INCLUDE_SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    include_segment_ids: _containers.RepeatedScalarFieldContainer[str]
    exclude_segment_ids: _containers.RepeatedScalarFieldContainer[str]
    context: _condition_pb2.Condition
    def __init__(self, include_segment_ids: _Optional[_Iterable[str]] = ..., exclude_segment_ids: _Optional[_Iterable[str]] = ..., context: _Optional[_Union[_condition_pb2.Condition, _Mapping]] = ...) -> None: ...

class Schedule(_message.Message):
    __slots__ = ("start_time", "end_time")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Budget(_message.Message):
    __slots__ = ("total_impressions", "daily_impressions")
    TOTAL_IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    DAILY_IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    total_impressions: int
    daily_impressions: int
    def __init__(self, total_impressions: _Optional[int] = ..., daily_impressions: _Optional[int] = ...) -> None: ...

class FrequencyCap(_message.Message):
    __slots__ = ("impressions", "period")
    IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    impressions: int
    period: _duration_pb2.Duration
    def __init__(self, impressions: _Optional[int] = ..., period: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Campaign(_message.Message):
    __slots__ = ("campaign_id", "name", "brand", "creatives", "targeting", "schedule", "priority", "weight", "budget", "frequency_cap", "status", "created_at", "updated_at", "categories", "reward")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    CREATIVES_FIELD_NUMBER: _ClassVar[int]
    TARGETING_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_CAP_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    name: str
    brand: str
    creatives: _containers.RepeatedCompositeFieldContainer[Creative]
    targeting: Targeting
    schedule: Schedule
    priority: int
    weight: int
    budget: Budget
    frequency_cap: FrequencyCap
    status: CampaignStatus
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    categories: _containers.RepeatedScalarFieldContainer[str]
    reward: Reward
    def __init__(self, campaign_id: _Optional[str] = ..., name: _Optional[str] = ..., brand: _Optional[str] = ..., creatives: _Optional[_Iterable[_Union[Creative, _Mapping]]] = ..., targeting: _Optional[_Union[Targeting, _Mapping]] = ..., schedule: _Optional[_Union[Schedule, _Mapping]] = ..., priority: _Optional[int] = ..., weight: _Optional[int] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ..., frequency_cap: _Optional[_Union[FrequencyCap, _Mapping]] = ..., status: _Optional[_Union[CampaignStatus, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., categories: _Optional[_Iterable[str]] = ..., reward: _Optional[_Union[Reward, _Mapping]] = ...) -> None: ...

class Reward(_message.Message):
    __slots__ = ("program_id", "points", "interaction_type")
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    program_id: str
    points: int
    interaction_type: InteractionType
    def __init__(self, program_id: _Optional[str] = ..., points: _Optional[int] = ..., interaction_type: _Optional[_Union[InteractionType, str]] = ...) -> None: ...

class CreateCampaignRequest(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ...) -> None: ...

class CreateCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ...) -> None: ...

class GetCampaignRequest(_message.Message):
    __slots__ = ("campaign_id",)
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    def __init__(self, campaign_id: _Optional[str] = ...) -> None: ...

class GetCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ...) -> None: ...

class UpdateCampaignRequest(_message.Message):
    __slots__ = ("campaign", "update_mask")
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ...) -> None: ...

class ListCampaignsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "status", "brand")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    status: CampaignStatus
    brand: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., status: _Optional[_Union[CampaignStatus, str]] = ..., brand: _Optional[str] = ...) -> None: ...

class ListCampaignsResponse(_message.Message):
    __slots__ = ("campaigns", "next_page_token")
    CAMPAIGNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    campaigns: _containers.RepeatedCompositeFieldContainer[Campaign]
    next_page_token: str
    def __init__(self, campaigns: _Optional[_Iterable[_Union[Campaign, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PauseCampaignRequest(_message.Message):
    __slots__ = ("campaign_id",)
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    def __init__(self, campaign_id: _Optional[str] = ...) -> None: ...

class PauseCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ...) -> None: ...

class ResumeCampaignRequest(_message.Message):
    __slots__ = ("campaign_id",)
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    def __init__(self, campaign_id: _Optional[str] = ...) -> None: ...

class ResumeCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ...) -> None: ...

class SelectAdsRequest(_message.Message):
    __slots__ = ("customer", "context", "limit", "explain")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    customer: _common_pb2.CustomerRef
    context: _common_pb2.Context
    limit: int
    explain: bool
    def __init__(self, customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ..., context: _Optional[_Union[_common_pb2.Context, _Mapping]] = ..., limit: _Optional[int] = ..., explain: _Optional[bool] = ...) -> None: ...

class ExcludedCandidate(_message.Message):
    __slots__ = ("campaign_id", "reason", "detail")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    reason: ExclusionReason
    detail: str
    def __init__(self, campaign_id: _Optional[str] = ..., reason: _Optional[_Union[ExclusionReason, str]] = ..., detail: _Optional[str] = ...) -> None: ...

class AdSlot(_message.Message):
    __slots__ = ("campaign_id", "creative", "tracking_token", "brand")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CREATIVE_FIELD_NUMBER: _ClassVar[int]
    TRACKING_TOKEN_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    creative: Creative
    tracking_token: str
    brand: str
    def __init__(self, campaign_id: _Optional[str] = ..., creative: _Optional[_Union[Creative, _Mapping]] = ..., tracking_token: _Optional[str] = ..., brand: _Optional[str] = ...) -> None: ...

class SelectAdsResponse(_message.Message):
    __slots__ = ("slots", "customer_id", "targeting_degraded", "excluded")
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TARGETING_DEGRADED_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    slots: _containers.RepeatedCompositeFieldContainer[AdSlot]
    customer_id: str
    targeting_degraded: bool
    excluded: _containers.RepeatedCompositeFieldContainer[ExcludedCandidate]
    def __init__(self, slots: _Optional[_Iterable[_Union[AdSlot, _Mapping]]] = ..., customer_id: _Optional[str] = ..., targeting_degraded: _Optional[bool] = ..., excluded: _Optional[_Iterable[_Union[ExcludedCandidate, _Mapping]]] = ...) -> None: ...

class RecordInteractionRequest(_message.Message):
    __slots__ = ("tracking_token", "type", "occurred_at")
    TRACKING_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    tracking_token: str
    type: InteractionType
    occurred_at: _timestamp_pb2.Timestamp
    def __init__(self, tracking_token: _Optional[str] = ..., type: _Optional[_Union[InteractionType, str]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordInteractionResponse(_message.Message):
    __slots__ = ("counted", "campaign_id", "creative_id", "over_limit")
    COUNTED_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CREATIVE_ID_FIELD_NUMBER: _ClassVar[int]
    OVER_LIMIT_FIELD_NUMBER: _ClassVar[int]
    counted: bool
    campaign_id: str
    creative_id: str
    over_limit: bool
    def __init__(self, counted: _Optional[bool] = ..., campaign_id: _Optional[str] = ..., creative_id: _Optional[str] = ..., over_limit: _Optional[bool] = ...) -> None: ...

class GetCampaignStatsRequest(_message.Message):
    __slots__ = ("campaign_id",)
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    def __init__(self, campaign_id: _Optional[str] = ...) -> None: ...

class CreativeStats(_message.Message):
    __slots__ = ("creative_id", "impressions", "clicks", "conversions")
    CREATIVE_ID_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    CLICKS_FIELD_NUMBER: _ClassVar[int]
    CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    creative_id: str
    impressions: int
    clicks: int
    conversions: int
    def __init__(self, creative_id: _Optional[str] = ..., impressions: _Optional[int] = ..., clicks: _Optional[int] = ..., conversions: _Optional[int] = ...) -> None: ...

class GetCampaignStatsResponse(_message.Message):
    __slots__ = ("campaign_id", "impressions", "clicks", "conversions", "reach", "impressions_today", "creatives", "budget_left", "days")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    CLICKS_FIELD_NUMBER: _ClassVar[int]
    CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    REACH_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_TODAY_FIELD_NUMBER: _ClassVar[int]
    CREATIVES_FIELD_NUMBER: _ClassVar[int]
    BUDGET_LEFT_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    impressions: int
    clicks: int
    conversions: int
    reach: int
    impressions_today: int
    creatives: _containers.RepeatedCompositeFieldContainer[CreativeStats]
    budget_left: int
    days: _containers.RepeatedCompositeFieldContainer[DayStats]
    def __init__(self, campaign_id: _Optional[str] = ..., impressions: _Optional[int] = ..., clicks: _Optional[int] = ..., conversions: _Optional[int] = ..., reach: _Optional[int] = ..., impressions_today: _Optional[int] = ..., creatives: _Optional[_Iterable[_Union[CreativeStats, _Mapping]]] = ..., budget_left: _Optional[int] = ..., days: _Optional[_Iterable[_Union[DayStats, _Mapping]]] = ...) -> None: ...

class DayStats(_message.Message):
    __slots__ = ("date", "impressions", "clicks", "conversions")
    DATE_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    CLICKS_FIELD_NUMBER: _ClassVar[int]
    CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    date: str
    impressions: int
    clicks: int
    conversions: int
    def __init__(self, date: _Optional[str] = ..., impressions: _Optional[int] = ..., clicks: _Optional[int] = ..., conversions: _Optional[int] = ...) -> None: ...

class InteractionRecorded(_message.Message):
    __slots__ = ("campaign_id", "creative_id", "customer_id", "type", "occurred_at", "placement", "channel", "token_id", "reward")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CREATIVE_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    creative_id: str
    customer_id: str
    type: InteractionType
    occurred_at: _timestamp_pb2.Timestamp
    placement: str
    channel: _common_pb2.Channel
    token_id: str
    reward: Reward
    def __init__(self, campaign_id: _Optional[str] = ..., creative_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., type: _Optional[_Union[InteractionType, str]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., placement: _Optional[str] = ..., channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., token_id: _Optional[str] = ..., reward: _Optional[_Union[Reward, _Mapping]] = ...) -> None: ...

class CampaignChanged(_message.Message):
    __slots__ = ("campaign_id", "status", "changed_at")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    status: CampaignStatus
    changed_at: _timestamp_pb2.Timestamp
    def __init__(self, campaign_id: _Optional[str] = ..., status: _Optional[_Union[CampaignStatus, str]] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
