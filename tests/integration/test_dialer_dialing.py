"""The dialer's loop against callsim's Event Socket, real Redis and both databases.

The switch is configured from freeswitch/conf (the carrier gateway, the outbound extension); its
callees answer, are busy, reject, or are unknown to the carrier. An answered call's dialog
outcome is appended to calls:completed as the policy engine appends it. Every contact must end
with the outcome its callee dictates, dialled as often as its attempts say and never twice at
once, with exactly one sheet row of its own.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

from dialer_harness import (  # noqa: F401  (rig: the fixture)
    ALWAYS,
    Rig,
    add_campaign,
    answer_as_the_dialog,
    campaign_of,
    finished,
    number,
    rig,
    sheet_rows,
)

from callkit.contracts import outcome as outcomes
from callkit.contracts.campaign import CampaignCall, call_key
from callsim.switch import Callee
from dialer.core.states import CampaignState, ContactState
from dialer.spec import WEEKDAYS, CallingWindows, CampaignSpec, ContactRow, RetryPolicy, Span


async def test_a_campaign_ends_every_contact_the_way_its_callee_dictates(
    rig: Rig,  # noqa: F811
) -> None:
    books, busy, rejects, unknown, listed = (number() for _ in range(5))
    rig.switch.callees[books] = Callee("answer", 0.2, attempts=["busy", "answer"])
    rig.switch.callees[busy] = Callee("busy", 0.1)
    rig.switch.callees[rejects] = Callee("reject", 0.1)
    # `unknown` has no callee: the carrier answers 404. `listed` is on the do-not-call list.
    rig.switch.callees[listed] = Callee("answer")
    now = datetime.now(UTC)
    spec = CampaignSpec(
        name="dialing test",
        windows=ALWAYS,
        concurrency=3,
        calls_per_second=20,
        retry=RetryPolicy(max_attempts=2, busy_after_min=0.01),
    )
    campaign_id = await rig.store.create_campaign(spec, now=now)
    rows = [
        ContactRow(row=i + 2, phone=phone, name=f"contact {i}", fields={"study": "knee MRI"})
        for i, phone in enumerate((books, busy, rejects, unknown, listed))
    ]
    await rig.store.add_contacts(campaign_id, rows, now=now)
    await rig.store.add_dnc(listed, source="test", now=now)
    await rig.store.transition(campaign_id, CampaignState.RUNNING, now=now)

    call_id = await answer_as_the_dialog(rig, books, "booked")
    # What the policy engine reads about the call: the campaign and the contact's own fields.
    context = CampaignCall.model_validate_json(await rig.redis.get(call_key(call_id)))
    assert (context.campaign_id, context.phone, context.name) == (campaign_id, books, "contact 0")
    assert context.fields == {"study": "knee MRI"}
    assert context.attempt == 2
    await finished(rig, campaign_id)

    contacts = {c.phone: c for c in await rig.store.contacts(campaign_id, limit=10)}
    ended = {phone: (c.state, c.outcome, c.attempts) for phone, c in contacts.items()}
    assert ended == {
        books: (ContactState.DONE, "booked", 2),  # busy first, then answered on the retry
        busy: (ContactState.DONE, "busy", 2),  # retried once, then the budget is spent
        rejects: (ContactState.DONE, "rejected", 1),  # never retried
        unknown: (ContactState.DONE, "invalid_number", 1),
        listed: (ContactState.SKIPPED, "skipped_dnc", 0),  # never dialled
    }
    # Dialled exactly as often as the attempts say, and never twice at once.
    assert rig.switch.callees[books].dialled == 2
    assert rig.switch.callees[busy].dialled == 2
    assert rig.switch.callees[rejects].dialled == 1
    assert rig.switch.callees[listed].dialled == 0
    assert max(rig.watch.most.values()) == 1
    # One sheet row per contact, with its outcome and attempt count.
    await asyncio.sleep(0.3)
    contact_rows = await sheet_rows(rig.redis, rig.stream)
    assert sorted((o.callee, o.status) for o in contact_rows) == sorted(
        (phone, outcome) for phone, (_, outcome, _) in ended.items()
    )
    assert {o.callee: (o.model_extra or {}).get("attempts") for o in contact_rows}[books] == 2
    # No slot or number lock is left behind.
    assert await rig.dialer.live.active(campaign_id, now=datetime.now(UTC).timestamp()) == 0
    assert not await rig.redis.exists(*(f"campaign:number:{p}" for p in contacts))


async def test_nothing_is_dialled_while_paused_or_outside_the_window(
    rig: Rig,  # noqa: F811
) -> None:
    phone = number()
    rig.switch.callees[phone] = Callee("busy")
    now = datetime.now(UTC)
    closed_today = WEEKDAYS[now.weekday()]
    windows = CallingWindows(
        hours={day: [Span(start="00:00", end="24:00")] for day in WEEKDAYS if day != closed_today}
    )
    spec = CampaignSpec(name="closed", windows=windows, timezone="UTC")
    campaign_id = await add_campaign(rig.store, [phone], spec, now=now)
    async with asyncio.timeout(10):
        while (contact := (await rig.store.contacts(campaign_id))[0]).state != "scheduled":  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    assert contact.attempts == 0  # put off without spending an attempt
    assert contact.next_attempt_at is not None
    assert contact.next_attempt_at.date() > now.date()
    assert "calling hours" in (contact.reason or "")
    assert rig.switch.callees[phone].dialled == 0

    second = number()
    rig.switch.callees[second] = Callee("busy")
    paused_id = await add_campaign(
        rig.store, [second], CampaignSpec(name="paused", windows=ALWAYS), now=now
    )
    await rig.store.transition(paused_id, CampaignState.PAUSED, now=now)
    await asyncio.sleep(1.0)  # ten ticks of the loop
    assert rig.switch.callees[second].dialled == 0
    (waiting,) = await rig.store.contacts(paused_id)
    # Untouched, or claimed in the instant before the pause and given back at no cost.
    assert waiting.state in ("pending", "scheduled")
    assert waiting.attempts == 0


async def test_nothing_is_originated_while_the_event_socket_is_down(
    rig: Rig,  # noqa: F811
) -> None:
    await rig.server.close()  # FreeSWITCH goes away
    async with asyncio.timeout(10):
        while rig.dialer.switch.connected.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    phone = number()
    rig.switch.callees[phone] = Callee("reject")
    campaign_id = await campaign_of(rig, [phone])
    await asyncio.sleep(1.0)  # ten ticks
    (contact,) = await rig.store.contacts(campaign_id)
    assert (contact.state, contact.attempts) == ("pending", 0)  # not claimed, nothing lost
    await rig.server.start()  # back: the client reconnects and dialling resumes
    await finished(rig, campaign_id, wait_s=30)
    (contact,) = await rig.store.contacts(campaign_id)
    assert (contact.outcome, contact.attempts) == ("rejected", 1)
    assert rig.switch.callees[phone].dialled == 1


async def test_a_failing_trunk_pauses_the_campaign_and_says_why(
    rig: Rig,  # noqa: F811
) -> None:
    phones = [number() for _ in range(12)]
    for phone in phones:
        rig.switch.callees[phone] = Callee("answer")
    rig.switch.gateways_down.add("carrier")
    campaign_id = await campaign_of(rig, phones, concurrency=3)
    async with asyncio.timeout(20):
        while (record := await rig.store.campaign(campaign_id)) is not None and (  # noqa: ASYNC110
            record.state == CampaignState.RUNNING
        ):
            await asyncio.sleep(0.1)
    assert record is not None
    assert record.state == CampaignState.PAUSED
    assert "trunk" in (record.reason or "")
    async with asyncio.timeout(15):  # calls waiting for the trunk are given back, not dialled
        while any(c.state == "dialing" for c in await rig.store.contacts(campaign_id)):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    contacts = await rig.store.contacts(campaign_id, limit=20)
    tried = sum(c.attempts for c in contacts)
    assert 6 <= tried < len(phones)  # it stopped after the breaker's minimum, not at the end
    assert all(c.state in ("pending", "scheduled") for c in contacts)  # failed ones retry later


async def test_an_inbound_caller_who_opts_out_is_never_dialled(
    rig: Rig,  # noqa: F811
) -> None:
    caller = f"+1646555{random.randrange(100, 200):04d}"  # valid: 555-01xx is for fiction
    now = datetime.now(UTC)
    opted_out = outcomes.CallOutcome(
        call_id=f"inbound-{caller}",
        direction="inbound",
        caller=caller,
        started_at=now,
        ended_at=now,
        duration_s=30,
        status="opt_out",
    )
    await rig.redis.xadd(rig.stream, outcomes.entry(opted_out))  # type: ignore[arg-type]
    async with asyncio.timeout(10):
        while not await rig.store.is_dnc(caller):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    rig.switch.callees[caller] = Callee("answer")
    campaign_id = await campaign_of(rig, [caller])
    await finished(rig, campaign_id, wait_s=15)
    (contact,) = await rig.store.contacts(campaign_id)
    assert contact.outcome == "skipped_dnc"
    assert rig.switch.callees[caller].dialled == 0
