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

class SegmentKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEGMENT_KIND_UNSPECIFIED: _ClassVar[SegmentKind]
    SEGMENT_KIND_BEHAVIORAL: _ClassVar[SegmentKind]
    SEGMENT_KIND_CONTEXTUAL: _ClassVar[SegmentKind]
    SEGMENT_KIND_COMBINED: _ClassVar[SegmentKind]

class SegmentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEGMENT_STATE_UNSPECIFIED: _ClassVar[SegmentState]
    SEGMENT_STATE_BUILDING: _ClassVar[SegmentState]
    SEGMENT_STATE_READY: _ClassVar[SegmentState]

class MembershipChangeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEMBERSHIP_CHANGE_TYPE_UNSPECIFIED: _ClassVar[MembershipChangeType]
    MEMBERSHIP_CHANGE_TYPE_ENTERED: _ClassVar[MembershipChangeType]
    MEMBERSHIP_CHANGE_TYPE_LEFT: _ClassVar[MembershipChangeType]

class SegmentChangeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEGMENT_CHANGE_TYPE_UNSPECIFIED: _ClassVar[SegmentChangeType]
    SEGMENT_CHANGE_TYPE_CREATED: _ClassVar[SegmentChangeType]
    SEGMENT_CHANGE_TYPE_UPDATED: _ClassVar[SegmentChangeType]
    SEGMENT_CHANGE_TYPE_DELETED: _ClassVar[SegmentChangeType]
    SEGMENT_CHANGE_TYPE_READY: _ClassVar[SegmentChangeType]
SEGMENT_KIND_UNSPECIFIED: SegmentKind
SEGMENT_KIND_BEHAVIORAL: SegmentKind
SEGMENT_KIND_CONTEXTUAL: SegmentKind
SEGMENT_KIND_COMBINED: SegmentKind
SEGMENT_STATE_UNSPECIFIED: SegmentState
SEGMENT_STATE_BUILDING: SegmentState
SEGMENT_STATE_READY: SegmentState
MEMBERSHIP_CHANGE_TYPE_UNSPECIFIED: MembershipChangeType
MEMBERSHIP_CHANGE_TYPE_ENTERED: MembershipChangeType
MEMBERSHIP_CHANGE_TYPE_LEFT: MembershipChangeType
SEGMENT_CHANGE_TYPE_UNSPECIFIED: SegmentChangeType
SEGMENT_CHANGE_TYPE_CREATED: SegmentChangeType
SEGMENT_CHANGE_TYPE_UPDATED: SegmentChangeType
SEGMENT_CHANGE_TYPE_DELETED: SegmentChangeType
SEGMENT_CHANGE_TYPE_READY: SegmentChangeType

class Segment(_message.Message):
    __slots__ = ("segment_id", "name", "description", "condition", "kind", "member_count", "state", "build_progress", "created_at", "updated_at", "built_at", "template")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MEMBER_COUNT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    BUILD_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    BUILT_AT_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    name: str
    description: str
    condition: _condition_pb2.Condition
    kind: SegmentKind
    member_count: int
    state: SegmentState
    build_progress: float
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    built_at: _timestamp_pb2.Timestamp
    template: str
    def __init__(self, segment_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., condition: _Optional[_Union[_condition_pb2.Condition, _Mapping]] = ..., kind: _Optional[_Union[SegmentKind, str]] = ..., member_count: _Optional[int] = ..., state: _Optional[_Union[SegmentState, str]] = ..., build_progress: _Optional[float] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., built_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., template: _Optional[str] = ...) -> None: ...

class CreateSegmentRequest(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ...) -> None: ...

class CreateSegmentResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ...) -> None: ...

class GetSegmentRequest(_message.Message):
    __slots__ = ("segment_id",)
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    def __init__(self, segment_id: _Optional[str] = ...) -> None: ...

class GetSegmentResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ...) -> None: ...

class UpdateSegmentRequest(_message.Message):
    __slots__ = ("segment", "update_mask")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateSegmentResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ...) -> None: ...

class DeleteSegmentRequest(_message.Message):
    __slots__ = ("segment_id",)
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    def __init__(self, segment_id: _Optional[str] = ...) -> None: ...

class DeleteSegmentResponse(_message.Message):
    __slots__ = ("segment_id",)
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    def __init__(self, segment_id: _Optional[str] = ...) -> None: ...

class ListSegmentsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "kind")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    kind: SegmentKind
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., kind: _Optional[_Union[SegmentKind, str]] = ...) -> None: ...

class ListSegmentsResponse(_message.Message):
    __slots__ = ("segments", "next_page_token")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[Segment]
    next_page_token: str
    def __init__(self, segments: _Optional[_Iterable[_Union[Segment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PreviewSegmentRequest(_message.Message):
    __slots__ = ("condition", "sample_size", "context")
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    condition: _condition_pb2.Condition
    sample_size: int
    context: _common_pb2.Context
    def __init__(self, condition: _Optional[_Union[_condition_pb2.Condition, _Mapping]] = ..., sample_size: _Optional[int] = ..., context: _Optional[_Union[_common_pb2.Context, _Mapping]] = ...) -> None: ...

class PreviewSegmentResponse(_message.Message):
    __slots__ = ("estimated_count", "sample_customer_ids", "exact", "kind")
    ESTIMATED_COUNT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    EXACT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    estimated_count: int
    sample_customer_ids: _containers.RepeatedScalarFieldContainer[str]
    exact: bool
    kind: SegmentKind
    def __init__(self, estimated_count: _Optional[int] = ..., sample_customer_ids: _Optional[_Iterable[str]] = ..., exact: _Optional[bool] = ..., kind: _Optional[_Union[SegmentKind, str]] = ...) -> None: ...

class GetMembershipsRequest(_message.Message):
    __slots__ = ("customer",)
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    customer: _common_pb2.CustomerRef
    def __init__(self, customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ...) -> None: ...

class GetMembershipsResponse(_message.Message):
    __slots__ = ("segment_ids", "customer_id")
    SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    segment_ids: _containers.RepeatedScalarFieldContainer[str]
    customer_id: str
    def __init__(self, segment_ids: _Optional[_Iterable[str]] = ..., customer_id: _Optional[str] = ...) -> None: ...

class EvaluateSegmentsRequest(_message.Message):
    __slots__ = ("customer", "context", "segment_ids")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    customer: _common_pb2.CustomerRef
    context: _common_pb2.Context
    segment_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ..., context: _Optional[_Union[_common_pb2.Context, _Mapping]] = ..., segment_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class EvaluateSegmentsResponse(_message.Message):
    __slots__ = ("segment_ids", "customer_id", "unknown_segment_ids")
    SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    segment_ids: _containers.RepeatedScalarFieldContainer[str]
    customer_id: str
    unknown_segment_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, segment_ids: _Optional[_Iterable[str]] = ..., customer_id: _Optional[str] = ..., unknown_segment_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class EvaluateConditionsRequest(_message.Message):
    __slots__ = ("customer", "context", "conditions")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    customer: _common_pb2.CustomerRef
    context: _common_pb2.Context
    conditions: _containers.RepeatedCompositeFieldContainer[_condition_pb2.Condition]
    def __init__(self, customer: _Optional[_Union[_common_pb2.CustomerRef, _Mapping]] = ..., context: _Optional[_Union[_common_pb2.Context, _Mapping]] = ..., conditions: _Optional[_Iterable[_Union[_condition_pb2.Condition, _Mapping]]] = ...) -> None: ...

class EvaluateConditionsResponse(_message.Message):
    __slots__ = ("matched", "customer_id")
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    matched: _containers.RepeatedScalarFieldContainer[bool]
    customer_id: str
    def __init__(self, matched: _Optional[_Iterable[bool]] = ..., customer_id: _Optional[str] = ...) -> None: ...

class ListMembersRequest(_message.Message):
    __slots__ = ("segment_id", "page_size", "page_token")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    page_size: int
    page_token: str
    def __init__(self, segment_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMembersResponse(_message.Message):
    __slots__ = ("customer_ids", "next_page_token", "state")
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    next_page_token: str
    state: SegmentState
    def __init__(self, customer_ids: _Optional[_Iterable[str]] = ..., next_page_token: _Optional[str] = ..., state: _Optional[_Union[SegmentState, str]] = ...) -> None: ...

class WatchMembershipChangesRequest(_message.Message):
    __slots__ = ("segment_ids", "customer_ids")
    SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    segment_ids: _containers.RepeatedScalarFieldContainer[str]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, segment_ids: _Optional[_Iterable[str]] = ..., customer_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchMembershipChangesResponse(_message.Message):
    __slots__ = ("change",)
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    change: MembershipChange
    def __init__(self, change: _Optional[_Union[MembershipChange, _Mapping]] = ...) -> None: ...

class RecomputeRfmRequest(_message.Message):
    __slots__ = ("as_of",)
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListSegmentTemplatesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SegmentTemplate(_message.Message):
    __slots__ = ("template", "name", "description", "condition")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    template: str
    name: str
    description: str
    condition: _condition_pb2.Condition
    def __init__(self, template: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., condition: _Optional[_Union[_condition_pb2.Condition, _Mapping]] = ...) -> None: ...

class ListSegmentTemplatesResponse(_message.Message):
    __slots__ = ("templates",)
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[SegmentTemplate]
    def __init__(self, templates: _Optional[_Iterable[_Union[SegmentTemplate, _Mapping]]] = ...) -> None: ...

class RfmBounds(_message.Message):
    __slots__ = ("recency_days", "frequency", "monetary")
    RECENCY_DAYS_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    MONETARY_FIELD_NUMBER: _ClassVar[int]
    recency_days: _containers.RepeatedScalarFieldContainer[int]
    frequency: _containers.RepeatedScalarFieldContainer[int]
    monetary: _containers.RepeatedCompositeFieldContainer[_common_pb2.Money]
    def __init__(self, recency_days: _Optional[_Iterable[int]] = ..., frequency: _Optional[_Iterable[int]] = ..., monetary: _Optional[_Iterable[_Union[_common_pb2.Money, _Mapping]]] = ...) -> None: ...

class RecomputeRfmResponse(_message.Message):
    __slots__ = ("scored_customers", "computed_at", "bounds")
    SCORED_CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_AT_FIELD_NUMBER: _ClassVar[int]
    BOUNDS_FIELD_NUMBER: _ClassVar[int]
    scored_customers: int
    computed_at: _timestamp_pb2.Timestamp
    bounds: RfmBounds
    def __init__(self, scored_customers: _Optional[int] = ..., computed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., bounds: _Optional[_Union[RfmBounds, _Mapping]] = ...) -> None: ...

class MembershipChange(_message.Message):
    __slots__ = ("segment_id", "customer_id", "change", "changed_at", "reason")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    customer_id: str
    change: MembershipChangeType
    changed_at: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, segment_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., change: _Optional[_Union[MembershipChangeType, str]] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class SegmentChanged(_message.Message):
    __slots__ = ("segment_id", "change", "segment", "changed_at")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    change: SegmentChangeType
    segment: Segment
    changed_at: _timestamp_pb2.Timestamp
    def __init__(self, segment_id: _Optional[str] = ..., change: _Optional[_Union[SegmentChangeType, str]] = ..., segment: _Optional[_Union[Segment, _Mapping]] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CustomerRfmScore(_message.Message):
    __slots__ = ("customer_id", "recency_score", "frequency_score", "monetary_score")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    RECENCY_SCORE_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_SCORE_FIELD_NUMBER: _ClassVar[int]
    MONETARY_SCORE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    recency_score: int
    frequency_score: int
    monetary_score: int
    def __init__(self, customer_id: _Optional[str] = ..., recency_score: _Optional[int] = ..., frequency_score: _Optional[int] = ..., monetary_score: _Optional[int] = ...) -> None: ...

class RfmScored(_message.Message):
    __slots__ = ("scores", "computed_at", "bounds", "run")
    SCORES_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_AT_FIELD_NUMBER: _ClassVar[int]
    BOUNDS_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    scores: _containers.RepeatedCompositeFieldContainer[CustomerRfmScore]
    computed_at: _timestamp_pb2.Timestamp
    bounds: RfmBounds
    run: int
    def __init__(self, scores: _Optional[_Iterable[_Union[CustomerRfmScore, _Mapping]]] = ..., computed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., bounds: _Optional[_Union[RfmBounds, _Mapping]] = ..., run: _Optional[int] = ...) -> None: ...
