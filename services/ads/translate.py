"""Requests in: protobuf -> validated domain values. Every failure names its field."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from backcrm.ads.v1 import ads_service_pb2 as pb
from backcrm.common.v1 import common_pb2
from google.protobuf import field_mask_pb2

from libs.errors import InvalidArgument
from libs.protoutil import seconds_of
from libs.validation import check_enum, check_text
from services.ads.domain import ACTIVE, PAUSED, Campaign, Creative
from services.ads.handlers import RequestContext
from services.segmentation.conditions import parse_condition
from services.segmentation.translate import context_facts

__all__ = [
    "MUTABLE_FIELDS",
    "campaign_in",
    "campaign_patch_in",
    "context_in",
    "id_in",
    "interaction_type_in",
    "limit_in",
    "occurred_at_in",
    "status_filter_in",
]

_SEGMENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_CREATIVES = 50
MAX_SEGMENTS = 100
MAX_PLACEMENTS = 50
MAX_IMPRESSIONS = 10**12
MAX_CAP_PERIOD = 366 * 86_400.0
MAX_SLOTS = 20
# Timestamps a campaign may name: 1970 up to the year 9999 (what Timestamp holds).
MAX_TIME = 253_402_300_799.0


def id_in(value: str, field: str) -> str:
    return check_text(value, field, max_len=32, required=True).strip()


def _url(value: str, field: str) -> str:
    check_text(value, field, max_len=2048)
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgument(field, "must be an absolute http(s) URL")
    return value


def _placement(value: str, field: str) -> str:
    text = check_text(value, field, max_len=128, required=True)
    if " " in text or "*" in text.removesuffix(".*"):
        raise InvalidArgument(field, 'must be a placement name, or a prefix ending in ".*"')
    return text


def _creatives(values: Any, field: str) -> tuple[Creative, ...]:
    if not values:
        raise InvalidArgument(field, "is required: at least one creative")
    if len(values) > MAX_CREATIVES:
        raise InvalidArgument(field, f"has more than {MAX_CREATIVES} creatives")
    out: list[Creative] = []
    for i, c in enumerate(values):
        at = f"{field}[{i}]"
        creative_id = check_text(c.creative_id, f"{at}.creative_id", max_len=32).strip()
        if creative_id and any(o.creative_id == creative_id for o in out):
            raise InvalidArgument(f"{at}.creative_id", f"repeats creative {creative_id!r}")
        if len(c.placements) > MAX_PLACEMENTS:
            raise InvalidArgument(f"{at}.placements", f"has more than {MAX_PLACEMENTS}")
        out.append(
            Creative(
                creative_id=creative_id,
                title=check_text(c.title, f"{at}.title", max_len=200, required=True),
                body=check_text(c.body, f"{at}.body", max_len=4000, multiline=True),
                image_url=_url(c.image_url, f"{at}.image_url"),
                click_url=_url(c.click_url, f"{at}.click_url"),
                placements=tuple(
                    _placement(p, f"{at}.placements[{j}]") for j, p in enumerate(c.placements)
                ),
            )
        )
    return tuple(out)


def _segments(values: Any, field: str) -> tuple[str, ...]:
    """Well-formed segment ids (not asked of segmentation: an id that names no segment
    matches nobody; see docs/ads.md)."""
    if len(values) > MAX_SEGMENTS:
        raise InvalidArgument(field, f"has more than {MAX_SEGMENTS} segments")
    for i, value in enumerate(values):
        if not _SEGMENT_ID.fullmatch(value):
            raise InvalidArgument(f"{field}[{i}]", "must be a segment id (1-64 of A-Z a-z 0-9 _ -)")
    return tuple(dict.fromkeys(values))


def _categories(values: Any, field: str) -> tuple[str, ...]:
    if len(values) > 20:
        raise InvalidArgument(field, "has more than 20 categories")
    for i, value in enumerate(values):
        check_text(value, f"{field}[{i}]", max_len=128, required=True)
    return tuple(dict.fromkeys(values))


def _context(targeting: pb.Targeting, field: str) -> bytes:
    if not targeting.HasField("context"):
        return b""
    parse_condition(targeting.context, field)  # validates; raises naming the path
    return targeting.context.SerializeToString(deterministic=True)


def _time(stamp: Any, field: str) -> float:
    seconds = seconds_of(stamp)
    if not 0 <= seconds <= MAX_TIME or not 0 <= stamp.nanos < 1_000_000_000:
        raise InvalidArgument(field, "must be a time between 1970 and 9999")
    return seconds


def _schedule(s: pb.Schedule, field: str) -> dict[str, Any]:
    start = _time(s.start_time, f"{field}.start_time") if s.HasField("start_time") else None
    end = _time(s.end_time, f"{field}.end_time") if s.HasField("end_time") else None
    if start is not None and end is not None and end <= start:
        raise InvalidArgument(f"{field}.end_time", "must be after schedule.start_time")
    return {"start_time": start, "end_time": end}


def _count(value: int, field: str, high: int = MAX_IMPRESSIONS) -> int:
    if not 0 <= value <= high:
        raise InvalidArgument(field, f"must be between 0 and {high}")
    return value


def _budget(b: pb.Budget, field: str) -> dict[str, Any]:
    return {
        "total_impressions": _count(b.total_impressions, f"{field}.total_impressions"),
        "daily_impressions": _count(b.daily_impressions, f"{field}.daily_impressions"),
    }


def _cap(cap: pb.FrequencyCap, field: str) -> dict[str, Any]:
    impressions = _count(cap.impressions, f"{field}.impressions", 10**6)
    period = cap.period.seconds + cap.period.nanos / 1e9
    if impressions and not 0 < period <= MAX_CAP_PERIOD:
        raise InvalidArgument(f"{field}.period", "must be more than 0 and at most 366 days")
    if not 0 <= period <= MAX_CAP_PERIOD:
        raise InvalidArgument(f"{field}.period", "must be at most 366 days")
    return {"cap_impressions": impressions, "cap_period": period if impressions else 0.0}


def _status(value: int, field: str) -> str:
    status = check_enum(value, pb.CampaignStatus, field, required=False) or ACTIVE
    if status not in (ACTIVE, PAUSED):
        raise InvalidArgument(field, "must be ACTIVE or PAUSED (ENDED is set by the server)")
    return status


def _priority(value: int, field: str) -> int:
    if not -1_000_000 <= value <= 1_000_000:
        raise InvalidArgument(field, "must be between -1000000 and 1000000")
    return value


def _weight(value: int, field: str) -> int:
    if not 0 <= value <= 1000:
        raise InvalidArgument(field, "must be between 1 and 1000 (0 means 1)")
    return value or 1


MAX_REWARD_POINTS = 1_000_000
_REWARDED = ("CLICK", "CONVERSION")


def _reward(r: pb.Reward, field: str) -> dict[str, Any]:
    """Unset (all zero): no reward; otherwise a well-formed program id, 1..10^6 points and
    CLICK or CONVERSION."""
    if not (r.program_id or r.points or r.interaction_type):
        return {"reward_program_id": "", "reward_points": 0, "reward_type": ""}
    program_id = check_text(r.program_id, f"{field}.program_id", max_len=64, required=True)
    if not _SEGMENT_ID.fullmatch(program_id):
        raise InvalidArgument(f"{field}.program_id", "must be 1-64 of A-Z a-z 0-9 _ -")
    if not 1 <= r.points <= MAX_REWARD_POINTS:
        raise InvalidArgument(f"{field}.points", f"must be between 1 and {MAX_REWARD_POINTS}")
    kind = check_enum(r.interaction_type, pb.InteractionType, f"{field}.interaction_type")
    if kind not in _REWARDED:
        raise InvalidArgument(f"{field}.interaction_type", "must be CLICK or CONVERSION")
    return {"reward_program_id": program_id, "reward_points": r.points, "reward_type": kind}


# Top-level mask path -> the domain fields it sets, read from the proto campaign.
_FIELDS: dict[str, Callable[[pb.Campaign, str], dict[str, Any]]] = {
    "name": lambda c, f: {"name": check_text(c.name, f"{f}.name", max_len=200, required=True)},
    "brand": lambda c, f: {"brand": check_text(c.brand, f"{f}.brand", max_len=200)},
    "creatives": lambda c, f: {"creatives": _creatives(c.creatives, f"{f}.creatives")},
    "targeting.include_segment_ids": lambda c, f: {
        "include_segment_ids": _segments(
            c.targeting.include_segment_ids, f"{f}.targeting.include_segment_ids"
        )
    },
    "targeting.exclude_segment_ids": lambda c, f: {
        "exclude_segment_ids": _segments(
            c.targeting.exclude_segment_ids, f"{f}.targeting.exclude_segment_ids"
        )
    },
    "targeting.context": lambda c, f: {"context": _context(c.targeting, f"{f}.targeting.context")},
    "schedule": lambda c, f: _schedule(c.schedule, f"{f}.schedule"),
    "priority": lambda c, f: {"priority": _priority(c.priority, f"{f}.priority")},
    "weight": lambda c, f: {"weight": _weight(c.weight, f"{f}.weight")},
    "budget": lambda c, f: _budget(c.budget, f"{f}.budget"),
    "frequency_cap": lambda c, f: _cap(c.frequency_cap, f"{f}.frequency_cap"),
    "status": lambda c, f: {"status": _status(c.status, f"{f}.status")},
    "categories": lambda c, f: {"categories": _categories(c.categories, f"{f}.categories")},
    "reward": lambda c, f: _reward(c.reward, f"{f}.reward"),
}
_GROUPS = {
    "targeting": (
        "targeting.include_segment_ids",
        "targeting.exclude_segment_ids",
        "targeting.context",
    ),
    "budget.total_impressions": ("budget",),
    "budget.daily_impressions": ("budget",),
}
MUTABLE_FIELDS = frozenset({*_FIELDS, *_GROUPS})


def campaign_in(campaign: pb.Campaign, field: str = "campaign") -> Campaign:
    values: dict[str, Any] = {}
    for read in _FIELDS.values():
        values.update(read(campaign, field))
    return Campaign(campaign_id="", **values)


def campaign_patch_in(
    campaign: pb.Campaign, mask: field_mask_pb2.FieldMask, field: str = "campaign"
) -> tuple[str, dict[str, Any]]:
    campaign_id = id_in(campaign.campaign_id, f"{field}.campaign_id")
    if not mask.paths:
        raise InvalidArgument("update_mask", "is required: name the fields to change")
    fields: dict[str, Any] = {}
    for path in mask.paths:
        if path not in MUTABLE_FIELDS:
            raise InvalidArgument("update_mask", f"{path!r} is not a mutable campaign field")
        for name in _GROUPS.get(path, (path,)):
            fields.update(_FIELDS[name](campaign, field))
    return campaign_id, fields


def status_filter_in(value: int, field: str = "status") -> str:
    return check_enum(value, pb.CampaignStatus, field, required=False)


def limit_in(value: int, field: str = "limit") -> int:
    if not 0 <= value <= MAX_SLOTS:
        raise InvalidArgument(field, f"must be between 1 and {MAX_SLOTS} (0 means 1)")
    return value or 1


def context_in(context: common_pb2.Context, now: float, field: str = "context") -> RequestContext:
    placement = check_text(context.placement, f"{field}.placement", max_len=128)
    # the channel the ad is shown on: every interaction with it goes to the profile as an
    # event, which names its channel
    check_enum(context.channel, common_pb2.Channel, f"{field}.channel")
    check_text(context.region, f"{field}.region", max_len=128)
    check_text(context.current_sku, f"{field}.current_sku", max_len=128)
    if len(context.cart) > 1000:
        raise InvalidArgument(f"{field}.cart", "has more than 1000 lines")
    for i, line in enumerate(context.cart):
        check_text(line.sku, f"{field}.cart[{i}].sku", max_len=128)
        check_text(line.category, f"{field}.cart[{i}].category", max_len=128)
        if abs(line.quantity) > 1_000_000:
            raise InvalidArgument(f"{field}.cart[{i}].quantity", "must be within ±1000000")
        if not 0 <= line.unit_price.units_micros <= 10**15:
            raise InvalidArgument(f"{field}.cart[{i}].unit_price.units_micros", "is out of range")
    if len(context.attributes) > 100:
        raise InvalidArgument(f"{field}.attributes", "has more than 100 entries")
    for key, value in context.attributes.items():
        check_text(key, f"{field}.attributes", max_len=128)
        check_text(value, f"{field}.attributes[{key!r}]", max_len=1024)
    return RequestContext(
        placement=placement,
        channel=context.channel,
        facts=context_facts(context, now),
        message=context,
    )


def interaction_type_in(value: int, field: str = "type") -> str:
    return check_enum(value, pb.InteractionType, field)


def occurred_at_in(request: pb.RecordInteractionRequest, now: float) -> float | None:
    if not request.HasField("occurred_at"):
        return None
    at = _time(request.occurred_at, "occurred_at")
    if at > now + 300:
        raise InvalidArgument("occurred_at", "is more than 5 minutes in the future")
    return at
