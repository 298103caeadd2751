"""Domain events -> bus envelopes, written to the outbox in the transaction that caused them."""

from __future__ import annotations

from backcrm.profile.v1 import profile_service_pb2 as pb

from libs.protoutil import enum, ts
from libs.topics import PROFILE_CHANGED, PROFILE_DELETED, PROFILE_MERGED
from services.profile.ports import DomainEvent, ProfileChanged, ProfileDeleted, ProfilesMerged
from services.profile.render import event_to_proto, render_profile

__all__ = ["encode_domain_event"]


def encode_domain_event(event: DomainEvent) -> tuple[str, bytes]:
    """(topic, serialized EventEnvelope) for the outbox."""
    if isinstance(event, ProfileChanged):
        return PROFILE_CHANGED.outbox_row(
            pb.ProfileChanged(
                customer_id=event.customer_id,
                version=event.version,
                changed_paths=event.paths,
                changed_at=ts(event.at),
                event_ids=event.event_ids,
                event_types=[enum(pb.EventType, f"EVENT_TYPE_{t}") for t in event.event_types],
                # Personal data stays off the bus where an id does: each event names its customer
                # by id and carries none of the identities (emails, phones) it was sent with.
                events=[event_to_proto(e, for_customer=event.customer_id) for e in event.events],
                # The events ride along in `events`: the snapshot leaves out recent_events, and
                # identities (consumers resolve them through GetProfile, under their own scopes).
                profile=render_profile(event.customer, [], event.at, recent=False),
            )
        )
    if isinstance(event, ProfileDeleted):
        return PROFILE_DELETED.outbox_row(
            pb.ProfileDeleted(customer_id=event.customer_id, deleted_at=ts(event.at))
        )
    assert isinstance(event, ProfilesMerged)
    return PROFILE_MERGED.outbox_row(
        pb.ProfilesMerged(
            source_customer_id=event.source_customer_id,
            target_customer_id=event.target_customer_id,
            merged_at=ts(event.at),
        )
    )
