"""Responses and events out: domain values -> protobuf."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from backcrm.ads.v1 import ads_service_pb2 as pb
from backcrm.segmentation.v1 import condition_pb2
from google.protobuf import duration_pb2

from libs.db import OutboxMessage
from libs.protoutil import enum, ts
from libs.topics import ADS_CAMPAIGNS, ADS_INTERACTIONS
from services.ads.domain import DAY, Campaign, Creative
from services.ads.handlers import Selection
from services.ads.ports import Interaction, Stats

__all__ = [
    "campaign_to_proto",
    "creative_to_proto",
    "encode_change",
    "encode_interaction",
    "selection_to_proto",
    "stats_to_proto",
]


def creative_to_proto(c: Creative) -> pb.Creative:
    return pb.Creative(
        creative_id=c.creative_id,
        title=c.title,
        body=c.body,
        image_url=c.image_url,
        click_url=c.click_url,
        placements=list(c.placements),
    )


def campaign_to_proto(c: Campaign, now: float) -> pb.Campaign:
    out = pb.Campaign(
        campaign_id=c.campaign_id,
        name=c.name,
        brand=c.brand,
        creatives=[creative_to_proto(x) for x in c.creatives],
        targeting=pb.Targeting(
            include_segment_ids=list(c.include_segment_ids),
            exclude_segment_ids=list(c.exclude_segment_ids),
        ),
        priority=c.priority,
        weight=c.weight,
        categories=list(c.categories),
        budget=pb.Budget(
            total_impressions=c.total_impressions, daily_impressions=c.daily_impressions
        ),
        status=enum(pb.CampaignStatus, f"CAMPAIGN_STATUS_{c.status_at(now)}"),
        created_at=ts(c.created_at),
        updated_at=ts(c.updated_at),
    )
    if c.context:
        out.targeting.context.CopyFrom(condition_pb2.Condition.FromString(c.context))
    if c.start_time is not None:
        out.schedule.start_time.CopyFrom(ts(c.start_time))
    if c.end_time is not None:
        out.schedule.end_time.CopyFrom(ts(c.end_time))
    if c.cap_impressions:
        period = duration_pb2.Duration()
        period.FromNanoseconds(round(c.cap_period * 1e9))
        out.frequency_cap.CopyFrom(pb.FrequencyCap(impressions=c.cap_impressions, period=period))
    if c.reward_program_id:
        out.reward.CopyFrom(
            pb.Reward(
                program_id=c.reward_program_id,
                points=c.reward_points,
                interaction_type=enum(pb.InteractionType, f"INTERACTION_TYPE_{c.reward_type}"),
            )
        )
    return out


def selection_to_proto(s: Selection) -> pb.SelectAdsResponse:
    return pb.SelectAdsResponse(
        customer_id=s.customer_id,
        targeting_degraded=s.degraded,
        slots=[
            pb.AdSlot(
                campaign_id=slot.campaign.campaign_id,
                creative=creative_to_proto(slot.creative),
                tracking_token=slot.token,
                brand=slot.campaign.brand,
            )
            for slot in s.slots
        ],
        excluded=[
            pb.ExcludedCandidate(
                campaign_id=e.campaign_id,
                reason=enum(pb.ExclusionReason, f"EXCLUSION_REASON_{e.reason}"),
                detail=e.detail,
            )
            for e in s.excluded
        ],
    )


def stats_to_proto(c: Campaign, stats: Stats) -> pb.GetCampaignStatsResponse:
    return pb.GetCampaignStatsResponse(
        campaign_id=c.campaign_id,
        impressions=stats.impressions,
        clicks=stats.clicks,
        conversions=stats.conversions,
        reach=stats.reach,
        impressions_today=stats.impressions_today,
        budget_left=max(c.total_impressions - stats.impressions, 0) if c.total_impressions else -1,
        creatives=[
            pb.CreativeStats(creative_id=creative_id, impressions=i, clicks=k, conversions=v)
            for creative_id, (i, k, v) in sorted(stats.creatives.items())
        ],
        days=[
            pb.DayStats(
                date=datetime.fromtimestamp(day * DAY, UTC).strftime("%Y-%m-%d"),
                impressions=i,
                clicks=k,
                conversions=v,
            )
            for day, (i, k, v) in sorted(stats.days.items(), reverse=True)[:366]
        ],
    )


# The outbox's customer_id column is for cache eviction before publishing; ads evicts nothing
# per customer, so its rows name none.
def encode_change(c: Campaign, status: str, at: float) -> OutboxMessage:
    payload = pb.CampaignChanged(
        campaign_id=c.campaign_id,
        status=enum(pb.CampaignStatus, f"CAMPAIGN_STATUS_{status}"),
        changed_at=ts(at),
    )
    return (*ADS_CAMPAIGNS.outbox_row(payload), "")


def encode_interaction(i: Interaction) -> OutboxMessage:
    payload = pb.InteractionRecorded(
        campaign_id=i.campaign_id,
        creative_id=i.creative_id,
        customer_id=i.customer_id,
        type=enum(pb.InteractionType, f"INTERACTION_TYPE_{i.type}"),
        occurred_at=ts(i.occurred_at),
        placement=i.placement,
        channel=cast(Any, i.channel),
        token_id=i.token_id,
    )
    if i.reward is not None and i.customer_id:
        payload.reward.CopyFrom(
            pb.Reward(
                program_id=i.reward[0],
                points=i.reward[1],
                interaction_type=enum(pb.InteractionType, f"INTERACTION_TYPE_{i.type}"),
            )
        )
    return (*ADS_INTERACTIONS.outbox_row(payload), "")
