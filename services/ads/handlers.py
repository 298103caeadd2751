"""The ads use cases: plain async functions over the ports (no grpc, no protobuf messages of
their own; a request's Context travels through opaque to segmentation).

Campaign writes are one unit of work each, under the campaign's row lock, inside
`retry_conflicts`, and bump the catalogue version and publish CampaignChanged in the same
transaction. SelectAds reads the process's campaign cache (`catalog.py`), asks segmentation
once per request (with a short deadline; no answer degrades to untargeted campaigns), and
reserves room in the shared counters for the campaigns with a budget or a frequency cap.
RecordInteraction settles the reservation of an impression and claims (token, type) once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from libs.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from libs.retry import retry_conflicts
from services.ads.catalog import CampaignCache, Live
from services.ads.domain import (
    ACTIVE,
    ENDED,
    PAUSED,
    Campaign,
    Creative,
    day_of,
    new_id,
    rank,
)
from services.ads.pacing import HISTORY_DAYS, TrafficProfile, allowance, shares_of
from services.ads.ports import (
    CAP,
    DAILY,
    AdsUnitOfWork,
    AnySegment,
    Counters,
    CustomerInterests,
    CustomerSignals,
    Interaction,
    NoInterests,
    NoRewards,
    RewardRefused,
    Rewards,
    SegmentDirectory,
    Stats,
)
from services.ads.tokens import TOKEN_TTL, Signer, Ticket
from services.segmentation.conditions import evaluate
from services.segmentation.facts import ContextFacts, CustomerFacts

__all__ = [
    "AdsDeps",
    "Excluded",
    "Recorded",
    "RequestContext",
    "Selection",
    "Slot",
    "campaign_stats",
    "create_campaign",
    "erase_customer",
    "get_campaign",
    "grant_reward",
    "keep_traffic",
    "list_campaigns",
    "merge_customers",
    "record_interaction",
    "select_ads",
    "set_status",
    "update_campaign",
]

log = logging.getLogger(__name__)

# Exclusion reasons (ExclusionReason without its prefix).
STATUS, SCHEDULE, PLACEMENT, TARGETING = "STATUS", "SCHEDULE", "PLACEMENT", "TARGETING"
RANKED_OUT = "RANKED_OUT"


@dataclass(frozen=True)
class AdsDeps:
    uow: Callable[[], AdsUnitOfWork]
    clock: Callable[[], float]
    signals: CustomerSignals
    counters: Counters
    cache: CampaignCache
    signer: Signer
    # the customer's interests (profile), for weights; None when profile does not answer
    interests: CustomerInterests = field(default_factory=lambda: NoInterests())
    # which segment ids name no segment, asked when a campaign's targeting is written
    segments: SegmentDirectory = field(default_factory=lambda: AnySegment())
    segment_check_timeout: float = 2.0
    # segmentation's share of a SelectAds deadline
    segment_timeout: float = 0.05
    # how long a selection holds room in a limited campaign for its impression
    reservation_seconds: float = 60.0
    attempts: int = 8
    rng: random.Random = field(default_factory=random.Random)
    traffic: TrafficProfile = field(default_factory=TrafficProfile)
    # the bonus service, for the ad-loyalty reward
    rewards: Rewards = field(default_factory=lambda: NoRewards())


@dataclass(frozen=True)
class RequestContext:
    placement: str
    channel: int
    facts: ContextFacts  # for conditions evaluated here
    message: Any = None  # the request's Context as received, passed on to segmentation


@dataclass(frozen=True)
class Slot:
    campaign: Campaign
    creative: Creative
    token: str


@dataclass(frozen=True)
class Excluded:
    campaign_id: str
    reason: str
    detail: str


@dataclass
class Selection:
    customer_id: str
    slots: list[Slot] = field(default_factory=list)
    degraded: bool = False
    excluded: list[Excluded] = field(default_factory=list)


@dataclass(frozen=True)
class Recorded:
    counted: bool
    campaign_id: str
    creative_id: str
    over_limit: bool = False


# ---------------------------------------------------------------------------------- campaigns


async def _campaign(uow: AdsUnitOfWork, campaign_id: str, for_update: bool = False) -> Campaign:
    campaign = await uow.campaign(campaign_id, for_update=for_update)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id!r}", reason="CAMPAIGN_NOT_FOUND")
    return campaign


def _with_creative_ids(campaign: Campaign) -> Campaign:
    creatives = tuple(
        c if c.creative_id else replace(c, creative_id=new_id()[:16]) for c in campaign.creatives
    )
    return replace(campaign, creatives=creatives)


async def _check_segments(deps: AdsDeps, campaign: Campaign) -> None:
    """Segment ids that name no segment are INVALID_ARGUMENT naming the list entry. When
    segmentation does not answer the write goes ahead (an unknown id then matches nobody)."""
    lists = {
        "include_segment_ids": campaign.include_segment_ids,
        "exclude_segment_ids": campaign.exclude_segment_ids,
    }
    ids = sorted({s for values in lists.values() for s in values})
    if not ids:
        return
    unknown = await deps.segments.unknown(ids, deps.segment_check_timeout)
    if unknown is None:
        log.warning("segmentation did not answer: segment ids of a campaign taken unchecked")
        return
    violations = [
        (f"campaign.targeting.{name}[{i}]", "names no segment")
        for name, values in lists.items()
        for i, segment_id in enumerate(values)
        if segment_id in unknown
    ]
    if violations:
        raise InvalidArgument(violations, reason="SEGMENT_NOT_FOUND")


async def create_campaign(deps: AdsDeps, campaign: Campaign) -> Campaign:
    await _check_segments(deps, campaign)
    now = deps.clock()
    created = _with_creative_ids(
        replace(campaign, campaign_id=new_id(), created_at=now, updated_at=now)
    )
    async with deps.uow() as uow:
        await uow.add_campaign(created)
        await uow.announce(created, created.status_at(now), now)
        await uow.commit()
    await deps.cache.refresh()  # this process serves it at once; the others on the event
    return created


async def get_campaign(deps: AdsDeps, campaign_id: str) -> Campaign:
    async with deps.uow() as uow:
        return await _campaign(uow, campaign_id)


def _ended(campaign: Campaign) -> FailedPrecondition:
    return FailedPrecondition(
        f"campaign {campaign.campaign_id!r} has ended", reason="CAMPAIGN_ENDED"
    )


async def update_campaign(deps: AdsDeps, campaign_id: str, fields: dict[str, Any]) -> Campaign:
    """Applies the validated fields to the campaign as committed, under its row lock: two
    concurrent updates of different fields both stick."""
    named = {k: fields[k] for k in ("include_segment_ids", "exclude_segment_ids") if k in fields}
    if named:
        await _check_segments(deps, Campaign("", "", **named))

    async def attempt() -> Campaign:
        now = deps.clock()
        async with deps.uow() as uow:
            current = await _campaign(uow, campaign_id, for_update=True)
            if current.status_at(now) == ENDED:
                raise _ended(current)  # final: not even a new end_time brings it back
            updated = _with_creative_ids(replace(current, **fields, updated_at=now))
            start, end = updated.start_time, updated.end_time
            if start is not None and end is not None and end <= start:
                raise InvalidArgument(
                    "campaign.schedule.end_time", "must be after schedule.start_time"
                )
            await uow.save_campaign(updated)
            await uow.announce(updated, updated.status_at(now), now)
            await uow.commit()
            return updated

    updated = await retry_conflicts(attempt, attempts=deps.attempts)
    await deps.cache.refresh()
    return updated


async def set_status(deps: AdsDeps, campaign_id: str, status: str) -> Campaign:
    """Pause (PAUSED) or resume (ACTIVE); idempotent: the same status again changes nothing
    and publishes nothing. An ended campaign is FAILED_PRECONDITION (CAMPAIGN_ENDED)."""

    async def attempt() -> Campaign:
        now = deps.clock()
        async with deps.uow() as uow:
            current = await _campaign(uow, campaign_id, for_update=True)
            if current.status_at(now) == ENDED:
                raise _ended(current)
            if current.status == status:
                return current
            updated = replace(current, status=status, updated_at=now)
            await uow.save_campaign(updated)
            await uow.announce(updated, status, now)
            await uow.commit()
            return updated

    assert status in (ACTIVE, PAUSED)
    changed = await retry_conflicts(attempt, attempts=deps.attempts)
    await deps.cache.refresh()
    return changed


async def list_campaigns(
    deps: AdsDeps, status: str, brand: str, after: tuple[float, str] | None, limit: int
) -> tuple[list[Campaign], tuple[float, str] | None]:
    """A page, newest first, and the position the next page starts after (None: last)."""
    async with deps.uow() as uow:
        rows = await uow.list_campaigns(status, brand, deps.clock(), after, limit + 1)
    page = rows[:limit]
    following = (page[-1].created_at, page[-1].campaign_id) if len(rows) > limit else None
    return page, following


# ---------------------------------------------------------------------------------- selection


def _context_matches(node: Any, facts: ContextFacts, now: float) -> bool:
    nobody = CustomerFacts(customer_id="")
    return evaluate(node, nobody, [], replace(facts, now=now), now, lambda _s: False).matched


async def select_ads(
    deps: AdsDeps, customer_id: str, context: RequestContext, limit: int, explain: bool
) -> Selection:
    now = deps.clock()
    deps.traffic.seen(now)
    out = Selection(customer_id)
    excluded: list[Excluded] = []

    def leave_out(c: Campaign, reason: str, detail: str) -> None:
        excluded.append(Excluded(c.campaign_id, reason, detail))

    # status, schedule, placement: from the cache, no I/O
    candidates: list[tuple[Live, Creative]] = []
    for entry in (await deps.cache.current()).values():
        c = entry.campaign
        if c.status_at(now) != ACTIVE:
            leave_out(c, STATUS, f"the campaign is {c.status_at(now)}")
            continue
        if not c.in_schedule(now):
            leave_out(c, SCHEDULE, "outside schedule.start_time..end_time")
            continue
        creative = c.creative_for(context.placement, deps.rng)
        if creative is None:
            leave_out(c, PLACEMENT, f"no creative fits placement {context.placement!r}")
            continue
        candidates.append((entry, creative))

    # targeting: one question to segmentation for every segment the candidates name
    members: frozenset[str] | None = frozenset()
    segment_ids = sorted(
        {
            s
            for e, _ in candidates
            for s in (*e.campaign.include_segment_ids, *e.campaign.exclude_segment_ids)
        }
    )
    remote = [e for e, _ in candidates if e.node is not None and not e.context_only]
    wants_interests = any(e.campaign.categories for e, _ in candidates)

    async def nothing() -> None:
        return None

    # The questions about the customer go out together; each answers None when its
    # service is slow or down.
    asked_segments, answers, interests = await asyncio.gather(
        deps.signals.segments(customer_id, segment_ids, context.message, deps.segment_timeout)
        if customer_id and segment_ids
        else nothing(),
        deps.signals.conditions(
            customer_id,
            [e.condition for e in remote if e.condition is not None],
            context.message,
            deps.segment_timeout,
        )
        if customer_id and remote
        else nothing(),
        deps.interests.interests(customer_id, deps.segment_timeout)
        if customer_id and wants_interests
        else nothing(),
    )
    if customer_id and segment_ids:
        members = asked_segments
        out.degraded |= members is None
    verdicts: dict[str, bool] = {}
    if customer_id and remote:
        out.degraded |= answers is None
        if answers is not None:
            verdicts = {e.campaign.campaign_id: a for e, a in zip(remote, answers, strict=False)}

    eligible: list[tuple[Campaign, Creative]] = []
    for entry, creative in candidates:
        c = entry.campaign
        if c.targeted:
            if not customer_id:
                leave_out(c, TARGETING, "targeted at segments; the customer is unknown")
                continue
            if members is None:
                leave_out(c, TARGETING, "targeted at segments; segmentation did not answer")
                continue
            if c.include_segment_ids and not members.intersection(c.include_segment_ids):
                leave_out(c, TARGETING, "not in any of include_segment_ids")
                continue
            if members.intersection(c.exclude_segment_ids):
                leave_out(c, TARGETING, "in one of exclude_segment_ids")
                continue
        if entry.node is not None:
            if entry.context_only:
                matched = _context_matches(entry.node, context.facts, now)
            elif c.campaign_id in verdicts:
                matched = verdicts[c.campaign_id]
            else:
                why = (
                    "the customer is unknown" if not customer_id else "segmentation did not answer"
                )
                leave_out(c, TARGETING, f"the context condition reads the customer; {why}")
                continue
            if not matched:
                leave_out(c, TARGETING, "targeting.context does not match")
                continue
        eligible.append((c, creative))

    creatives = {c.campaign_id: creative for c, creative in eligible}
    counters_down = False  # after one failure, the request asks the counters no more
    for c in rank([c for c, _ in eligible], deps.rng, interests or {}):
        if len(out.slots) >= limit:
            leave_out(c, RANKED_OUT, f"ranked below the {limit} slot(s) asked for")
            continue
        slot_id = new_id()
        if c.limited and counters_down:
            leave_out(c, "BUDGET", "budget and cap counters are unreachable")
            continue
        if c.limited:
            daily = c.daily_impressions
            paced = allowance(daily, deps.traffic.shares, now) if daily else 0
            try:
                verdict = await deps.counters.reserve(
                    c, customer_id, slot_id, now, deps.reservation_seconds, paced
                )
            except Unavailable:
                log.warning("ads counters unreachable: limited campaigns are not served")
                leave_out(c, "BUDGET", "budget and cap counters are unreachable")
                counters_down = True
                continue
            if verdict == CAP:
                leave_out(c, "FREQUENCY_CAP", "the customer's frequency cap is reached")
                continue
            if verdict == DAILY and paced < daily:
                leave_out(c, "PACING", f"{paced} of the {daily} daily impressions are due by now")
                continue
            if verdict:
                leave_out(c, "BUDGET", "the budget is spent or held by selections in flight")
                continue
        creative = creatives[c.campaign_id]
        token = deps.signer.sign(
            Ticket(
                token_id=slot_id,
                campaign_id=c.campaign_id,
                creative_id=creative.creative_id,
                customer_id=customer_id,
                placement=context.placement,
                channel=context.channel,
                issued_at=now,
                expires_at=now + TOKEN_TTL,
            )
        )
        out.slots.append(Slot(c, creative, token))
    if explain:
        out.excluded = excluded
    return out


# -------------------------------------------------------------------------------- interactions


async def _campaign_of(deps: AdsDeps, campaign_id: str) -> Campaign | None:
    entry = (await deps.cache.current()).get(campaign_id)
    if entry is not None:
        return entry.campaign
    async with deps.uow() as uow:  # ended (not cached) or created a moment ago elsewhere
        return await uow.campaign(campaign_id)


async def record_interaction(
    deps: AdsDeps, token: str, kind: str, occurred_at: float | None
) -> Recorded:
    """Counts (token, kind) once. An impression first settles its selection's reservation
    (idempotent per selection), so a budget or cap counts it at most once whatever the
    retries, and an impression with no room left is recorded but not billable."""
    now = deps.clock()
    ticket = deps.signer.verify(token, now)
    day: int | None = day_of(now)
    campaign: Campaign | None = None
    if kind == "IMPRESSION":
        async with deps.uow() as uow:  # a retry of a recorded impression settles nothing
            earlier = await uow.recorded(ticket.token_id, kind)
        if earlier is not None:
            return Recorded(
                False, ticket.campaign_id, ticket.creative_id, over_limit=not earlier.billable
            )
        campaign = await _campaign_of(deps, ticket.campaign_id)
        if campaign is not None and campaign.limited:
            day = await deps.counters.settle(
                campaign, ticket.customer_id, ticket.token_id, ticket.issued_at, now
            )
    else:  # a click or conversion may earn the campaign's reward (as the campaign is now)
        campaign = await _campaign_of(deps, ticket.campaign_id)
    interaction = Interaction(
        token_id=ticket.token_id,
        type=kind,
        campaign_id=ticket.campaign_id,
        creative_id=ticket.creative_id,
        customer_id=ticket.customer_id,
        placement=ticket.placement,
        channel=ticket.channel,
        occurred_at=occurred_at if occurred_at is not None else now,
        day=day if day is not None else day_of(now),
        billable=day is not None,
        reward=campaign.reward_for(kind) if campaign is not None else None,
    )

    async def attempt() -> bool:
        async with deps.uow() as uow:
            recorded = interaction
            if recorded.customer_id and not await uow.guard_customer(recorded.customer_id):
                recorded = replace(recorded, customer_id="")  # erased since the selection
            inserted = await uow.record(recorded)
            await uow.commit()
            return inserted

    counted = await retry_conflicts(attempt, attempts=deps.attempts)
    if (
        kind == "IMPRESSION"
        and day is not None
        and campaign is not None
        and campaign.total_impressions
        and await deps.counters.spent(campaign) >= campaign.total_impressions
    ):
        await _end(deps, campaign.campaign_id)
    return Recorded(counted, ticket.campaign_id, ticket.creative_id, over_limit=day is None)


async def _end(deps: AdsDeps, campaign_id: str) -> None:
    """The total budget is spent: the campaign ENDS (final), in every process's cache."""

    async def attempt() -> None:
        async with deps.uow() as uow:
            current = await _campaign(uow, campaign_id, for_update=True)
            if current.status == ENDED:
                return
            now = deps.clock()
            ended = replace(current, status=ENDED, updated_at=now)
            await uow.save_campaign(ended)
            await uow.announce(ended, ENDED, now)
            await uow.commit()

    await retry_conflicts(attempt, attempts=deps.attempts)
    await deps.cache.refresh()


async def keep_traffic(deps: AdsDeps) -> None:
    """Adds the requests this process has seen to the traffic history and reloads the
    expected shares of the hours (every few seconds, in each process)."""
    counts = deps.traffic.take()
    now = deps.clock()

    async def attempt() -> None:
        async with deps.uow() as uow:
            await uow.add_traffic(counts)
            await uow.commit()

    if counts:
        try:
            await retry_conflicts(attempt, attempts=deps.attempts)
        except Exception:
            deps.traffic.unflushed.update(counts)  # kept for the next flush
            raise
    today = day_of(now)
    async with deps.uow() as uow:
        history = await uow.traffic_since(today - HISTORY_DAYS)
    deps.traffic.shares = shares_of(history, today)


async def campaign_stats(deps: AdsDeps, campaign_id: str) -> tuple[Campaign, Stats]:
    async with deps.uow() as uow:
        campaign = await _campaign(uow, campaign_id)
        return campaign, await uow.stats(campaign_id, day_of(deps.clock()))


def reward_key(token_id: str, kind: str) -> str:
    """The bonus idempotency key of a token's reward: one per (token, type), whatever the
    redeliveries, consumers or retries."""
    return f"ads-reward-{token_id}-{kind}"


async def grant_reward(
    deps: AdsDeps,
    token_id: str,
    kind: str,
    campaign_id: str,
    customer_id: str,
    program_id: str,
    points: int,
) -> str:
    """Credits a counted interaction's reward once and records the outcome on the
    interaction. Bonus down: `Unavailable` propagates (the bus retries the event; the key
    makes the retry credit once). A refusal (not enrolled, erased, no such program) is
    logged and recorded, never retried. Returns the recorded outcome."""
    try:
        transaction_id = await deps.rewards.reward(
            program_id,
            customer_id,
            points,
            f"ad reward: {kind.lower()} on campaign {campaign_id}",
            reward_key(token_id, kind),
        )
        outcome = f"REWARDED {transaction_id}"
    except RewardRefused as refused:
        log.warning(
            "bonus refused the reward of %s %s (campaign %s): %s",
            kind.lower(),
            token_id,
            campaign_id,
            refused.reason,
        )
        outcome = f"REFUSED {refused.reason}"

    async def attempt() -> None:
        async with deps.uow() as uow:
            await uow.note_reward(token_id, kind, outcome)
            await uow.commit()

    await retry_conflicts(attempt, attempts=deps.attempts)
    return outcome


async def merge_customers(
    deps: AdsDeps, source: str, target: str, campaign_ids: Sequence[str]
) -> None:
    """profile.merged: the source's interactions and cap history become the target's, so a
    cookie's impressions count towards the customer's cap once the two are stitched.
    Idempotent (a second run finds nothing left under the source)."""

    async def attempt() -> set[str]:
        async with deps.uow() as uow:
            touched = await uow.campaigns_of(source)
            await uow.merge_customer(source, target)
            await uow.commit()
            return touched

    touched = await retry_conflicts(attempt, attempts=deps.attempts)
    await deps.counters.merge_customer(source, target, sorted(touched | set(campaign_ids)))


async def erase_customer(deps: AdsDeps, customer_id: str, campaign_ids: Sequence[str]) -> None:
    """profile.deleted: the customer's interactions, holds and cap history go. Idempotent."""

    async def attempt() -> set[str]:
        async with deps.uow() as uow:
            touched = await uow.campaigns_of(customer_id)
            await uow.erase_customer(customer_id, deps.clock())
            await uow.commit()
            return touched

    touched = await retry_conflicts(attempt, attempts=deps.attempts)
    await deps.counters.erase_customer(customer_id, sorted(touched | set(campaign_ids)))
