"""Production mode with every service in processes of its own (as in Kubernetes: one
Deployment per service), finding each other through BACKCRM_<SERVICE>_ADDRESS.

The paths between services all cross a process boundary here: bonus asks segmentation for a
promotion's condition (with the shared service token), segmentation asks profile to resolve
the identity, bonus writes its tier trait to profile with its own token, and segmentation
follows that trait from the bus. Before the addresses existed, bonus called segmentation on
its own port and every quote fell back to the degraded, untargeted mode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from backcrm.bonus.v1 import bonus_service_pb2 as pb
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as ppb
from backcrm.segmentation.v1 import condition_pb2 as cpb
from backcrm.segmentation.v1 import segmentation_service_pb2 as spb
from google.protobuf import struct_pb2

from libs.auth import hash_token
from libs.client import Client
from tests.e2e.helpers import email, event, purchase
from tests.e2e.test_process import _free_port, _wait_serving
from tests.support import TOKENS, backend_settings, eventually

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("profile", "segmentation", "bonus")
UNIT = 1_000_000
# The service tokens of docs/deploy.md, with the names and scopes it gives them.
SERVICE_TOKENS = {
    "segmentation": ("tok-service", ["profile:read", "segments:read"]),
    "ads": ("tok-ads-service", ["profile:write", "bonus:reward"]),
}
ADMIN = TOKENS["admin"][0]


def _tokens() -> str:
    every = {**TOKENS, **SERVICE_TOKENS}
    return json.dumps(
        [{"name": n, "sha256": hash_token(t), "scopes": s} for n, (t, s) in every.items()]
    )


@pytest.fixture(scope="module")
def addresses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One `backcrm serve <service>` process per service on one PostgreSQL database and
    Redis prefix: their addresses by service."""
    workdir = Path(tmp_path_factory.mktemp("split"))
    where = {name: f"127.0.0.1:{_free_port()}" for name in SERVICES}
    with (
        backend_settings("postgres", workdir, auth_tokens=_tokens()) as backend,
        ExitStack() as stack,
    ):
        s = backend.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCRM_")}
        env.update(
            PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'libs' / 'gen'}",
            DATABASE_URL=s.database_url,
            REDIS_URL=s.redis_url,
            BACKCRM_REDIS_PREFIX=s.redis_prefix,
            BACKCRM_AUTH_TOKENS=s.auth_tokens,
            BACKCRM_SERVICE_TOKEN=SERVICE_TOKENS["segmentation"][0],
            BACKCRM_BONUS_SERVICE_TOKEN=TOKENS["bonus"][0],
            BACKCRM_ADS_SERVICE_TOKEN=SERVICE_TOKENS["ads"][0],
            BACKCRM_OUTBOX_POLL_SECONDS="0.05",
            BACKCRM_SHUTDOWN_GRACE_SECONDS="2",
            BACKCRM_LOG_LEVEL="WARNING",
            **{f"BACKCRM_{name.upper()}_ADDRESS": a for name, a in where.items()},
        )
        for name, address in where.items():
            var = workdir / name
            var.mkdir()
            log = stack.enter_context(open(workdir / f"{name}.log", "w"))
            process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "serve", name, "--address", address],
                cwd=ROOT,
                env={**env, "BACKCRM_VAR_DIR": str(var)},
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
            stack.callback(_stop, process)
            _wait_serving(address, process)
        yield where


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def uid() -> str:
    return uuid.uuid4().hex[:10]


async def test_services_in_their_own_processes_reach_each_other(
    addresses: dict[str, str],
) -> None:
    client = Client(addresses["profile"], ADMIN, addresses=addresses, deadline=30)
    try:
        tier = f"gold_{uid()}"
        program = (
            await client.bonus.CreateProgram(
                pb.CreateProgramRequest(
                    program=pb.Program(
                        name="Club",
                        currency="GBP",
                        points_per_unit=1.0,
                        tiers=[pb.Tier(name=tier, threshold_points=20)],
                    )
                )
            )
        ).program
        regular = cpb.Condition(
            property=cpb.PropertyCondition(
                path="purchase_summary.orders",
                op=cpb.OPERATOR_GTE,
                value=struct_pb2.Value(number_value=1),
            )
        )
        promotion = (
            await client.bonus.CreatePromotion(
                pb.CreatePromotionRequest(
                    promotion=pb.Promotion(
                        program_id=program.program_id,
                        name="Regulars: 10 % off",
                        condition=regular,
                        effect=pb.Effect(type=pb.EFFECT_TYPE_PERCENT_OFF, percent=10),
                    )
                )
            )
        ).promotion
        tiered = cpb.Condition(
            property=cpb.PropertyCondition(
                path="traits.bonus.tier",
                op=cpb.OPERATOR_EQ,
                value=struct_pb2.Value(string_value=tier),
            )
        )
        segment = (
            await client.segmentation.CreateSegment(
                spb.CreateSegmentRequest(segment=spb.Segment(name="tiered", condition=tiered))
            )
        ).segment

        async def built() -> bool:
            got = await client.segmentation.GetSegment(
                spb.GetSegmentRequest(segment_id=segment.segment_id)
            )
            return bool(got.segment.state == spb.SEGMENT_STATE_READY)

        await eventually(built, "the segment to become READY", timeout=30)

        buyer, newcomer = email(f"{uid()}@example.com"), email(f"{uid()}@example.com")
        await client.profile.TrackEvents(ppb.TrackEventsRequest(events=[event(uid(), buyer)]))
        enrolled = await client.bonus.Enroll(
            pb.EnrollRequest(program_id=program.program_id, customer=buyer)
        )
        customer_id = enrolled.account.customer_id
        bought = purchase(uid(), buyer, f"o-{uid()}", ("a", "c", 3, 10 * UNIT))
        await client.profile.TrackEvents(ppb.TrackEventsRequest(events=[bought]))

        async def quote(who: common_pb2.CustomerRef) -> pb.QuoteOfferResponse:
            line = common_pb2.CartLine(
                sku="a",
                category="c",
                quantity=1,
                unit_price=common_pb2.Money(currency="GBP", units_micros=20 * UNIT),
            )
            reply: pb.QuoteOfferResponse = await client.bonus.QuoteOffer(
                pb.QuoteOfferRequest(
                    program_id=program.program_id,
                    customer=who,
                    context=common_pb2.Context(cart=[line]),
                )
            )
            return reply

        # bonus -> segmentation (EvaluateConditions) -> profile (resolving the email)
        async def regular_gets_it() -> bool:
            reply = await quote(buyer)
            return [a.promotion_id for a in reply.applied] == [promotion.promotion_id]

        await eventually(regular_gets_it, "the buyer's quote to apply the promotion", timeout=30)
        reply = await quote(buyer)
        assert reply.total.units_micros == 18 * UNIT
        assert not reply.degraded
        other = await quote(newcomer)
        assert not other.applied and other.total.units_micros == 20 * UNIT

        # bonus -> profile (SetTraits with bonus's token) -> bus -> segmentation
        async def member() -> bool:
            got = await client.segmentation.ListMembers(
                spb.ListMembersRequest(segment_id=segment.segment_id)
            )
            return list(got.customer_ids) == [customer_id]

        await eventually(member, "the segment on traits.bonus.tier to list the buyer", timeout=30)
        profile = (
            await client.profile.GetProfile(
                ppb.GetProfileRequest(customer=common_pb2.CustomerRef(customer_id=customer_id))
            )
        ).profile
        assert profile.traits["bonus.tier"].string_value == tier
    finally:
        await client.close()
