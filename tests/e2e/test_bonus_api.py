"""The bonus service end to end: a program, a purchase that earns, a redemption, retries."""

from __future__ import annotations

import uuid

import grpc
import pytest
from backcrm.bonus.v1 import bonus_service_pb2 as pb
from backcrm.common.v1 import common_pb2
from backcrm.profile.v1 import profile_service_pb2 as ppb
from backcrm.segmentation.v1 import condition_pb2 as c
from backcrm.segmentation.v1 import segmentation_service_pb2 as spb
from google.protobuf import field_mask_pb2, struct_pb2

from libs.validation import encode_page_token
from services.bonus.entrypoint import NOT_SERVED_YET
from tests.e2e.conftest import Suite
from tests.e2e.helpers import (
    email,
    error_reason,
    event,
    field_violations,
    purchase,
    rpc_error,
)
from tests.support import eventually

pytestmark = pytest.mark.e2e

UNIT = 1_000_000


def uid() -> str:
    return uuid.uuid4().hex[:10]


def gbp(micros: int) -> common_pb2.Money:
    return common_pb2.Money(currency="GBP", units_micros=micros)


def an_order(order_id: str, *lines: tuple[str, int, int]) -> common_pb2.Order:
    return common_pb2.Order(
        order_id=order_id,
        lines=[
            common_pb2.CartLine(sku=f"sku-{c}", category=c, quantity=q, unit_price=gbp(p))
            for c, q, p in lines
        ],
        total=gbp(sum(q * p for _, q, p in lines)),
    )


async def new_program(suite: Suite, **fields: object) -> pb.Program:
    defaults: dict[str, object] = {
        "welcome_points": 100,
        "point_value": gbp(10_000),
        "tiers": [pb.Tier(name="silver", threshold_points=500)],
    }
    program = pb.Program(
        name="Club",
        currency="GBP",
        points_per_unit=1.0,
        **{**defaults, **fields},  # type: ignore[arg-type]
    )
    reply = await suite.client().bonus.CreateProgram(pb.CreateProgramRequest(program=program))
    return reply.program


async def test_a_program_reads_back_and_updates_by_mask(suite: Suite) -> None:
    api = suite.client().bonus
    created = await new_program(suite, category_multipliers={"shoes": 2.0})
    got = (await api.GetProgram(pb.GetProgramRequest(program_id=created.program_id))).program
    assert got == created and got.category_multipliers["shoes"] == 2.0
    change = pb.Program(program_id=created.program_id, welcome_points=5, name="ignored")
    updated = (
        await api.UpdateProgram(
            pb.UpdateProgramRequest(
                program=change, update_mask=field_mask_pb2.FieldMask(paths=["welcome_points"])
            )
        )
    ).program
    assert (updated.welcome_points, updated.name) == (5, "Club")
    err = await rpc_error(api.GetProgram(pb.GetProgramRequest(program_id="nope")))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(err) == ("PROGRAM_NOT_FOUND", "bonus.backcrm")


async def test_bad_programs_are_refused_naming_the_field(suite: Suite) -> None:
    api = suite.client().bonus
    bad = pb.Program(name="x", currency="GBP", points_per_unit=float("nan"))
    err = await rpc_error(api.CreateProgram(pb.CreateProgramRequest(program=bad)))
    assert field_violations(err) == ["program.points_per_unit"]
    bad = pb.Program(
        name="x", currency="GBP", points_per_unit=1, point_value=common_pb2.Money(currency="EUR")
    )
    err = await rpc_error(api.CreateProgram(pb.CreateProgramRequest(program=bad)))
    assert field_violations(err) == ["program.point_value.currency"]


async def test_earn_redeem_retry_and_reverse(suite: Suite) -> None:
    program = await new_program(suite)
    shop = suite.client("shop").bonus
    who = email(f"{uid()}@example.com")
    # The customer is known to the profile service; bonus resolves the email through it.
    await suite.client().profile.TrackEvents(
        ppb.TrackEventsRequest(events=[purchase(uid(), who, uid(), ("s", "c", 1, UNIT))])
    )
    enrolled = await shop.Enroll(pb.EnrollRequest(program_id=program.program_id, customer=who))
    assert (enrolled.account.balance, enrolled.welcome.points) == (100, 100)

    accrue = pb.AccrueRequest(
        program_id=program.program_id,
        customer=who,
        order=an_order(f"o-{uid()}", ("books", 2, 12_500_000)),
        idempotency_key=f"acc-{uid()}",
    )
    earned = await shop.Accrue(accrue)
    assert (earned.transaction.points, earned.account.balance) == (25, 125)
    again = await shop.Accrue(accrue)  # a retry: the first result, nothing moves
    assert again.transaction == earned.transaction and again.account.balance == 125

    changed = pb.AccrueRequest()
    changed.CopyFrom(accrue)
    changed.order.lines[0].quantity = 3
    err = await rpc_error(shop.Accrue(changed))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(err) == ("IDEMPOTENCY_KEY_REUSED", "bonus.backcrm")

    redeem = pb.RedeemRequest(
        program_id=program.program_id, customer=who, points=120, idempotency_key=f"red-{uid()}"
    )
    spent = await shop.Redeem(redeem)
    assert (spent.account.balance, spent.value.units_micros) == (5, 1_200_000)
    err = await rpc_error(
        shop.Redeem(
            pb.RedeemRequest(
                program_id=program.program_id, customer=who, points=6, idempotency_key=uid()
            )
        )
    )
    assert error_reason(err) == ("INSUFFICIENT_POINTS", "bonus.backcrm")

    back = await shop.Reverse(
        pb.ReverseRequest(
            transaction_id=earned.transaction.transaction_id,
            idempotency_key=f"rev-{uid()}",
            reason="returned",
        )
    )
    assert (back.transaction.points, back.unrecovered_points, back.account.balance) == (-5, 20, 0)

    listed = await shop.ListTransactions(
        pb.ListTransactionsRequest(program_id=program.program_id, customer=who, page_size=2)
    )
    rest = await shop.ListTransactions(
        pb.ListTransactionsRequest(
            program_id=program.program_id, customer=who, page_token=listed.next_page_token
        )
    )
    types = [t.type for t in [*listed.transactions, *rest.transactions]]
    assert types == [
        pb.TRANSACTION_TYPE_REVERSAL,
        pb.TRANSACTION_TYPE_REDEMPTION,
        pb.TRANSACTION_TYPE_ACCRUAL,
        pb.TRANSACTION_TYPE_WELCOME,
    ]
    assert rest.next_page_token == ""


async def test_forged_page_tokens_and_wrong_currencies_are_invalid(suite: Suite) -> None:
    program = await new_program(suite)
    shop = suite.client("shop").bonus
    customer = common_pb2.CustomerRef(customer_id=uid())
    for token in ("garbage", encode_page_token("x", "elsewhere")):
        err = await rpc_error(
            shop.ListTransactions(
                pb.ListTransactionsRequest(
                    program_id=program.program_id, customer=customer, page_token=token
                )
            )
        )
        assert field_violations(err) == ["page_token"]
    euros = an_order("o1", ("", 1, UNIT))
    euros.total.currency = "EUR"
    for line in euros.lines:
        line.unit_price.currency = "EUR"
    err = await rpc_error(
        shop.Accrue(
            pb.AccrueRequest(
                program_id=program.program_id, customer=customer, order=euros, idempotency_key="k"
            )
        )
    )
    assert field_violations(err) == ["order.total.currency"]
    assert error_reason(err) == ("CURRENCY_MISMATCH", "bonus.backcrm")


async def test_program_writes_need_admin(suite: Suite) -> None:
    shop = suite.client("shop").bonus
    err = await rpc_error(shop.CreateProgram(pb.CreateProgramRequest()))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_promotions_and_quotes_answer_unimplemented(suite: Suite) -> None:
    api = suite.client().bonus
    for name in NOT_SERVED_YET:
        request = getattr(pb, f"{name}Request")()
        err = await rpc_error(getattr(api, name)(request))
        assert err.code() == grpc.StatusCode.UNIMPLEMENTED, name
        assert error_reason(err) == ("NOT_SERVED_YET", "bonus.backcrm")


async def test_a_deleted_profile_loses_its_loyalty_account(suite: Suite) -> None:
    program = await new_program(suite)
    who = email(f"{uid()}@example.com")
    admin = suite.client()
    await admin.profile.TrackEvents(
        ppb.TrackEventsRequest(events=[purchase(uid(), who, uid(), ("s", "c", 1, UNIT))])
    )
    enrolled = await admin.bonus.Enroll(
        pb.EnrollRequest(program_id=program.program_id, customer=who)
    )
    customer = common_pb2.CustomerRef(customer_id=enrolled.account.customer_id)
    await admin.profile.DeleteProfile(ppb.DeleteProfileRequest(customer=who))
    await suite.settled()
    account = (
        await admin.bonus.GetAccount(
            pb.GetAccountRequest(program_id=program.program_id, customer=customer)
        )
    ).account
    assert not account.enrolled
    err = await rpc_error(
        admin.bonus.Enroll(pb.EnrollRequest(program_id=program.program_id, customer=customer))
    )
    assert error_reason(err) == ("CUSTOMER_NOT_FOUND", "bonus.backcrm")


async def test_tracked_purchases_earn_and_returns_take_back_once(suite: Suite) -> None:
    """Purchases reach bonus as profile events: only once enrolled, once per event."""
    program = await new_program(suite)
    who = email(f"{uid()}@example.com")
    admin = suite.client()
    before = purchase(uid(), who, f"o-{uid()}", ("s", "c", 1, 7 * UNIT))
    await admin.profile.TrackEvents(ppb.TrackEventsRequest(events=[before]))
    await suite.settled()  # recorded before the customer joined: it earns nothing
    enrolled = await admin.bonus.Enroll(
        pb.EnrollRequest(program_id=program.program_id, customer=who)
    )
    customer = common_pb2.CustomerRef(customer_id=enrolled.account.customer_id)
    order_id = f"o-{uid()}"
    bought = purchase(uid(), who, order_id, ("a", "c", 2, 10 * UNIT), ("b", "c", 1, 5 * UNIT))
    returned = purchase(uid(), who, f"r-{uid()}", ("a", "c", -1, 10 * UNIT))
    returned.properties.update({"original_order_id": order_id})
    for _ in range(2):  # the second time, profile drops the known event ids
        await admin.profile.TrackEvents(ppb.TrackEventsRequest(events=[bought]))
        await suite.settled()
        await admin.profile.TrackEvents(ppb.TrackEventsRequest(events=[returned]))
        await suite.settled()
    request = pb.ListTransactionsRequest(program_id=program.program_id, customer=customer)
    history = (await admin.bonus.ListTransactions(request)).transactions
    assert [(t.type, t.points) for t in reversed(history)] == [
        (pb.TRANSACTION_TYPE_WELCOME, 100),
        (pb.TRANSACTION_TYPE_ACCRUAL, 25),
        (pb.TRANSACTION_TYPE_REVERSAL, -10),
    ]
    assert history[1].order_id == order_id and history[0].idempotency_key.startswith("event:")
    account = (
        await admin.bonus.GetAccount(
            pb.GetAccountRequest(program_id=program.program_id, customer=customer)
        )
    ).account
    assert (account.balance, account.tier_points) == (115, 15)


async def test_the_tier_reaches_the_profile_and_a_segment_on_it(suite: Suite) -> None:
    """Points earned -> TierChanged on bonus.tiers -> SetTraits bonus.tier (with bonus's own
    token) -> profile.changed -> segmentation: a segment on traits.bonus.tier has the customer."""
    tier = f"gold_{uid()}"
    program = await new_program(suite, tiers=[pb.Tier(name=tier, threshold_points=20)])
    seg = suite.client().segmentation
    condition = c.Condition(
        property=c.PropertyCondition(
            path="traits.bonus.tier", op=c.OPERATOR_EQ, value=struct_pb2.Value(string_value=tier)
        )
    )
    segment = (
        await seg.CreateSegment(
            spb.CreateSegmentRequest(segment=spb.Segment(name="tiered", condition=condition))
        )
    ).segment

    async def built() -> bool:  # the incremental path follows the data once the build is done
        got = await seg.GetSegment(spb.GetSegmentRequest(segment_id=segment.segment_id))
        return bool(got.segment.state == spb.SEGMENT_STATE_READY)

    await eventually(built, "the segment to become READY", timeout=20)
    who = email(f"{uid()}@example.com")
    admin = suite.client()
    await admin.profile.TrackEvents(ppb.TrackEventsRequest(events=[event(uid(), who)]))
    enrolled = await admin.bonus.Enroll(
        pb.EnrollRequest(program_id=program.program_id, customer=who)
    )
    customer_id = enrolled.account.customer_id
    bought = purchase(uid(), who, f"o-{uid()}", ("a", "c", 3, 10 * UNIT))
    await admin.profile.TrackEvents(ppb.TrackEventsRequest(events=[bought]))
    await suite.settled()
    profile = (
        await admin.profile.GetProfile(
            ppb.GetProfileRequest(customer=common_pb2.CustomerRef(customer_id=customer_id))
        )
    ).profile
    assert profile.traits["bonus.tier"].string_value == tier
    assert profile.traits[f"bonus.tier_{program.program_id}"].string_value == tier

    async def member() -> bool:
        # segmentation follows the trait's profile.changed (on Redis, settled() can return
        # while that last message is still on its way to the group)
        got = await seg.ListMembers(spb.ListMembersRequest(segment_id=segment.segment_id))
        return list(got.customer_ids) == [customer_id]

    await eventually(member, "the segment on traits.bonus.tier to list the customer")


async def test_adjustments_need_admin_and_name_bad_fields(suite: Suite) -> None:
    program = await new_program(suite)
    who = common_pb2.CustomerRef(customer_id=f"c-{uid()}")
    admin = suite.client().bonus
    await admin.Enroll(pb.EnrollRequest(program_id=program.program_id, customer=who))
    request = pb.AdjustPointsRequest(
        program_id=program.program_id,
        customer=who,
        points=-40,
        reason="duplicate welcome",
        idempotency_key=f"adj-{uid()}",
    )
    err = await rpc_error(suite.client("shop").bonus.AdjustPoints(request))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    reply = await admin.AdjustPoints(request)
    assert (reply.transaction.type, reply.transaction.points) == (
        pb.TRANSACTION_TYPE_ADJUSTMENT,
        -40,
    )
    assert reply.account.balance == 60 and reply.transaction.description == "duplicate welcome"
    for field, bad in (("points", {"points": 0}), ("reason", {"reason": ""})):
        wrong = pb.AdjustPointsRequest()
        wrong.CopyFrom(request)
        for name, value in bad.items():
            setattr(wrong, name, value)
        err = await rpc_error(admin.AdjustPoints(wrong))
        assert field_violations(err) == [field]
    err = await rpc_error(admin.AdjustPoints(replace_points(request, -61)))
    assert error_reason(err) == ("INSUFFICIENT_POINTS", "bonus.backcrm")


def replace_points(request: pb.AdjustPointsRequest, points: int) -> pb.AdjustPointsRequest:
    out = pb.AdjustPointsRequest()
    out.CopyFrom(request)
    out.points, out.idempotency_key = points, f"adj-{uid()}"
    return out


async def test_merged_profiles_merge_their_loyalty_accounts_once(suite: Suite) -> None:
    program = await new_program(suite)
    admin = suite.client()
    source, target = email(f"{uid()}@example.com"), email(f"{uid()}@example.com")
    await admin.profile.TrackEvents(
        ppb.TrackEventsRequest(events=[event(uid(), source), event(uid(), target)])
    )
    ids = {}
    for who in (source, target):
        enrolled = await admin.bonus.Enroll(
            pb.EnrollRequest(program_id=program.program_id, customer=who)
        )
        ids[enrolled.account.customer_id] = who
    source_id, target_id = list(ids)
    spent = await admin.bonus.Redeem(
        pb.RedeemRequest(
            program_id=program.program_id, customer=source, points=30, idempotency_key=uid()
        )
    )
    assert spent.account.balance == 70
    await suite.client("merger").profile.MergeProfiles(
        ppb.MergeProfilesRequest(target=target, source=source)
    )
    await suite.settled()
    by_id = common_pb2.CustomerRef(customer_id=target_id)
    account = (
        await admin.bonus.GetAccount(
            pb.GetAccountRequest(program_id=program.program_id, customer=by_id)
        )
    ).account
    assert account.balance == 170
    history = (
        await admin.bonus.ListTransactions(
            pb.ListTransactionsRequest(program_id=program.program_id, customer=by_id)
        )
    ).transactions
    assert sorted(t.type for t in history).count(pb.TRANSACTION_TYPE_TRANSFER_IN) == 1
    assert {t.customer_id for t in history} == {source_id, target_id}
    old = common_pb2.CustomerRef(customer_id=source_id)
    err = await rpc_error(
        admin.bonus.Redeem(
            pb.RedeemRequest(
                program_id=program.program_id, customer=old, points=1, idempotency_key=uid()
            )
        )
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(err) == ("CUSTOMER_MERGED", "bonus.backcrm")
