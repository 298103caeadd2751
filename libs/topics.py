"""Every bus topic, declared once with the payload type it carries.

Producers and consumers import the same `Topic`: a producer packs its payload with it, a
consumer unpacks with it, so neither can name a topic another way or read it as another type.
A topic is named `<producing service>.<what>`: only that service publishes it, and its name is
the `producer` stamped on the envelope. The payloads are contracts (`proto/`), like the RPCs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from backcrm.ads.v1.ads_service_pb2 import CampaignChanged, InteractionRecorded
from backcrm.bonus.v1.bonus_service_pb2 import (
    ProgramChanged,
    PromotionChanged,
    TierChanged,
    TransactionRecorded,
)
from backcrm.common.v1.common_pb2 import EventEnvelope
from backcrm.profile.v1.profile_service_pb2 import ProfileChanged, ProfileDeleted, ProfilesMerged
from backcrm.recommend.v1.recommend_service_pb2 import ItemsUpserted, ShowcaseChanged
from backcrm.segmentation.v1.segmentation_service_pb2 import (
    MembershipChange,
    RfmScored,
    SegmentChanged,
)
from google.protobuf.message import Message

from libs.bus.envelope import new_envelope, unpack

__all__ = [
    "ADS_CAMPAIGNS",
    "ADS_INTERACTIONS",
    "BONUS_PROGRAMS",
    "BONUS_PROMOTIONS",
    "BONUS_TIERS",
    "BONUS_TRANSACTIONS",
    "PROFILE_CHANGED",
    "PROFILE_DELETED",
    "PROFILE_MERGED",
    "RECOMMEND_ITEMS",
    "RECOMMEND_SHOWCASES",
    "SEGMENTATION_MEMBERSHIP",
    "SEGMENTATION_RFM",
    "SEGMENTATION_SEGMENTS",
    "Topic",
]

P = TypeVar("P", bound=Message)


@dataclass(frozen=True)
class Topic(Generic[P]):
    name: str
    payload: type[P]

    @property
    def producer(self) -> str:
        return self.name.split(".", 1)[0]

    def pack(self, payload: P) -> EventEnvelope:
        """The payload in an envelope for this topic, stamped with now and the trace context."""
        return new_envelope(payload, self.producer)

    def outbox_row(self, payload: P) -> tuple[str, bytes]:
        """(topic, serialized envelope): what a unit of work writes to its outbox."""
        return self.name, self.pack(payload).SerializeToString()

    def unpack(self, envelope: EventEnvelope) -> P:
        """The payload; ValueError when the envelope carries another type."""
        return unpack(envelope, self.payload)


# A customer's profile after a change, with the events behind it (never an identity).
PROFILE_CHANGED = Topic("profile.changed", ProfileChanged)
# A customer erased: every service erases it too.
PROFILE_DELETED = Topic("profile.deleted", ProfileDeleted)
# One customer merged into another.
PROFILE_MERGED = Topic("profile.merged", ProfilesMerged)
# A customer entered or left a segment.
SEGMENTATION_MEMBERSHIP = Topic("segmentation.membership", MembershipChange)
# RFM scores computed for a population (profile keeps them).
SEGMENTATION_RFM = Topic("segmentation.rfm", RfmScored)
# A segment definition created, updated or deleted (every segmentation process refreshes).
SEGMENTATION_SEGMENTS = Topic("segmentation.segments", SegmentChanged)
# A loyalty program created or changed.
BONUS_PROGRAMS = Topic("bonus.programs", ProgramChanged)
# A promotion created or changed (every bonus process drops its cached configuration).
BONUS_PROMOTIONS = Topic("bonus.promotions", PromotionChanged)
# Every ledger movement, once recorded.
BONUS_TRANSACTIONS = Topic("bonus.transactions", TransactionRecorded)
# An account's tier changed (bonus publishes it to the profile as trait bonus.tier from here).
BONUS_TIERS = Topic("bonus.tiers", TierChanged)
# An ads campaign created or changed (every ads process refreshes its campaign cache).
ADS_CAMPAIGNS = Topic("ads.campaigns", CampaignChanged)
# A counted ad interaction (impression, click, conversion); duplicates are not published.
ADS_INTERACTIONS = Topic("ads.interactions", InteractionRecorded)
# Catalogue items created or changed (every recommend process reloads its catalogue cache).
RECOMMEND_ITEMS = Topic("recommend.items", ItemsUpserted)
# A showcase created or changed (every recommend process reloads its catalogue cache).
RECOMMEND_SHOWCASES = Topic("recommend.showcases", ShowcaseChanged)
