"""Callbacks asked for on inbound calls, kept by the dialer: against callsim's Event Socket, real
Redis and both databases. The inbound call's outcome is built by the policy engine's own
``build_outcome`` and appended to calls:completed as the policy engine appends it; the dialer
must schedule the caller's number in its standing callbacks campaign at the moment they asked
for, once however often the outcome is read, and call it then with the reason in its fields.
A callee of a campaign who asks for a callback on the contact's last attempt is called back."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import redis.asyncio as aioredis
from dialer_harness import (  # noqa: F401  (rig: the fixture)
    ALWAYS,
    Rig,
    answer_as_the_dialog,
    campaign_of,
    finished,
    rig,
    sheet_rows,
)

from callkit.contracts import outcome as outcomes
from callkit.contracts.campaign import CampaignCall, call_key
from callsim.switch import Callee
from dialer.core import callbacks
from dialer.core.states import CampaignState, ContactState, Profile
from dialer.engine import Dialer, EngineConfig
from dialer.store import ContactRecord, Store
from policy_engine.outbound import call_reason
from policy_engine.outcome import build_outcome
from policy_engine.script import load_script
from policy_engine.session import Session

SCRIPT = load_script(Path(__file__).parents[2] / "prompts" / "clinic")
RU_SCRIPT = load_script(Path(__file__).parents[2] / "prompts" / "clinic_ru")
CALLBACKS = callbacks.campaign_id("en")  # the rig's dialer's own language


def caller_number() -> str:
    """A New York number phonenumbers takes as valid (the dialer normalizes caller ids)."""
    return f"+1212555{random.randrange(10**4):04d}"


def inbound_callback(
    call_id: str,
    caller: str | None,
    *,
    at: datetime | None,
    ended: datetime,
    locale: str = "en",
    **slots: Any,
) -> dict[str, str]:
    """The calls:completed entry of an inbound call that ended at ``goodbye_callback``."""
    session = Session(
        session_id=call_id,
        direction="inbound",
        caller=caller,
        callee="+12125550100",
        locale=locale,
        started_at=(ended - timedelta(minutes=2)).timestamp(),
        ended_at=ended.timestamp(),
        state="goodbye_callback",
        status="callback",
        slots=slots | ({"callback_at": at.astimezone(UTC).isoformat()} if at else {}),
    )
    return outcomes.entry(build_outcome(RU_SCRIPT if locale == "ru" else SCRIPT, session))


async def publish(on: Rig, entry: dict[str, str]) -> str:
    entry_id = await on.redis.xadd(on.stream, entry)  # type: ignore[arg-type]
    return entry_id.decode()


async def read_by_the_dialer(on: Rig, entry_id: str) -> None:
    """Until the dialer's group has read and acknowledged everything up to ``entry_id``."""
    async with asyncio.timeout(10):
        while True:
            groups = await on.redis.xinfo_groups(on.stream)
            group = next(g for g in groups if g["name"].decode() == on.dialer.config.group)
            last = group["last-delivered-id"].decode()
            done = tuple(map(int, last.split("-"))) >= tuple(map(int, entry_id.split("-")))
            if done and group["pending"] == 0:
                return
            await asyncio.sleep(0.05)


async def callback_contacts(on: Rig) -> list[ContactRecord]:
    return await on.store.contacts(CALLBACKS, limit=100)


async def contact_in(on: Rig, state: ContactState, wait_s: float = 20) -> ContactRecord:
    async with asyncio.timeout(wait_s):
        while True:
            found = await callback_contacts(on)
            if found and found[0].state == state:
                return found[0]
            await asyncio.sleep(0.05)


async def test_an_inbound_callback_is_scheduled_once_at_the_moment_asked_for(
    rig: Rig,  # noqa: F811
) -> None:
    phone, later = caller_number(), caller_number()
    rig.switch.callees[phone] = Callee("answer")
    now = datetime.now(UTC).replace(microsecond=0)
    asked = now + timedelta(days=1, hours=3)  # "tomorrow after six"
    entry = inbound_callback(
        "in-1", phone, at=asked, ended=now, client_name="Anna Smith", study_type="mri_knee"
    )
    # The entry read twice (redelivered, or appended again by a retrying producer).
    await publish(rig, entry)
    await read_by_the_dialer(rig, await publish(rig, entry))

    campaign = await rig.store.campaign(CALLBACKS)
    assert campaign is not None  # created on demand, and started
    assert (campaign.state, campaign.spec.locale, campaign.spec.name) == (
        CampaignState.RUNNING,
        "en",
        "Callbacks (en)",
    )
    (contact,) = await callback_contacts(rig)  # one contact, not two
    assert (contact.phone, contact.name, contact.state) == (
        phone,
        "Anna Smith",
        ContactState.SCHEDULED,
    )
    assert contact.next_attempt_at == asked
    assert contact.attempts == 0
    assert contact.timezone == "America/New_York"  # its calling window is the caller's own
    assert contact.fields["callback_of"] == "in-1"
    assert contact.fields["callback_study"] == "MRI of the knee"
    assert rig.switch.callees[phone].dialled == 0  # not before the moment asked for

    # The same number rings again and asks for another time: the one callback moves.
    sooner = now + timedelta(hours=5)
    await read_by_the_dialer(
        rig,
        await publish(
            rig, inbound_callback("in-2", phone, at=sooner, ended=now + timedelta(minutes=5))
        ),
    )
    (moved,) = await callback_contacts(rig)
    assert (moved.id, moved.next_attempt_at, moved.fields["callback_of"]) == (
        contact.id,
        sooner,
        "in-2",
    )
    # The first request, read once more after the second, changes nothing.
    await read_by_the_dialer(rig, await publish(rig, entry))
    (kept,) = await callback_contacts(rig)
    assert (kept.next_attempt_at, kept.fields["callback_of"]) == (sooner, "in-2")

    # Without a time the callback is due after the campaign's callback delay (in its window).
    await read_by_the_dialer(
        rig, await publish(rig, inbound_callback("in-3", later, at=None, ended=now))
    )
    by_phone = {c.phone: c for c in await callback_contacts(rig)}
    delay = timedelta(minutes=campaign.spec.retry.callback_after_min)
    assert by_phone[later].next_attempt_at == now + delay

    # A withheld caller id with no number given on the call: nothing to call back.
    await read_by_the_dialer(
        rig, await publish(rig, inbound_callback("in-4", "anonymous", at=asked, ended=now))
    )
    assert len(await callback_contacts(rig)) == 2


async def test_a_number_on_the_do_not_call_list_is_not_called_back(
    rig: Rig,  # noqa: F811
) -> None:
    phone = caller_number()
    rig.switch.callees[phone] = Callee("answer")
    now = datetime.now(UTC)
    await rig.store.add_dnc(phone, source="test", now=now)
    await read_by_the_dialer(
        rig, await publish(rig, inbound_callback("in-dnc", phone, at=now, ended=now))
    )
    (contact,) = await callback_contacts(rig)
    assert (contact.state, contact.outcome) == (ContactState.SKIPPED, "skipped_dnc")
    # The sheet says at once that this callback will not be made.
    rows = await sheet_rows(rig.redis, rig.stream)
    assert [(r.callee, r.status) for r in rows] == [(phone, "skipped_dnc")]
    await asyncio.sleep(0.5)  # a few of the dialer's ticks
    assert rig.switch.callees[phone].dialled == 0


async def test_a_due_callback_is_called_saying_why_and_a_new_request_calls_again(
    rig: Rig,  # noqa: F811
) -> None:
    # The standing campaign as an operator may have set it up: calling at any hour, with no
    # jurisdiction's legal hours either (New York's end at 21:00), so the test does not depend
    # on the time of day it runs at.
    now = datetime.now(UTC)
    spec = callbacks.campaign_spec("en", region="US").model_copy(
        update={"windows": ALWAYS, "profile": Profile.NONE}
    )
    assert await rig.store.ensure_campaign(CALLBACKS, spec, now=now)
    phone = caller_number()
    rig.switch.callees[phone] = Callee("answer", 0.1)
    entry = inbound_callback(
        "in-1", phone, at=now, ended=now, client_name="Anna Smith", study_type="mri_knee"
    )
    await publish(rig, entry)

    call_id = await answer_as_the_dialog(rig, phone, "booked")
    context = CampaignCall.model_validate_json(await rig.redis.get(call_key(call_id)))
    assert (context.campaign_id, context.phone, context.name) == (CALLBACKS, phone, "Anna Smith")
    assert call_reason(SCRIPT, context, "en") == "back, as you asked, about an MRI of the knee"
    done = await contact_in(rig, ContactState.DONE)
    assert (done.outcome, done.attempts) == ("booked", 1)
    campaign = await rig.store.campaign(CALLBACKS)
    assert campaign is not None
    assert campaign.state == CampaignState.RUNNING  # standing: never completed

    # The request read again after its callback was made: no second call.
    await read_by_the_dialer(rig, await publish(rig, entry))
    assert (await callback_contacts(rig))[0].state == ContactState.DONE
    assert rig.switch.callees[phone].dialled == 1

    # Later the same number rings and asks again: called back again, on a budget of its own.
    await publish(rig, inbound_callback("in-2", phone, at=now, ended=now + timedelta(seconds=1)))
    await answer_as_the_dialog(rig, phone, "not_interested")
    async with asyncio.timeout(20):
        while (await callback_contacts(rig))[0].outcome != "not_interested":  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert rig.switch.callees[phone].dialled == 2
    # One sheet row per request, each with its own attempts.
    await asyncio.sleep(0.3)
    contact_rows = await sheet_rows(rig.redis, rig.stream)
    assert sorted((r.status, r.attempts) for r in contact_rows) == [  # type: ignore[attr-defined]
        ("booked", 1),
        ("not_interested", 1),
    ]
    assert len({r.call_id for r in contact_rows}) == 2


async def test_a_caller_who_spoke_russian_is_called_back_in_russian(
    rig: Rig,  # noqa: F811
) -> None:
    """The Russian clinic's caller: the callback goes to the Russian callbacks campaign, and its
    call is placed and opened in Russian (the English one would be refused by that script)."""
    now = datetime.now(UTC)
    ru = callbacks.campaign_id("ru")
    spec = callbacks.campaign_spec("ru", region="US").model_copy(
        update={"windows": ALWAYS, "profile": Profile.NONE}
    )
    assert await rig.store.ensure_campaign(ru, spec, now=now)
    phone = caller_number()
    rig.switch.callees[phone] = Callee("answer", 0.1)
    await publish(
        rig,
        inbound_callback(
            "in-ru",
            phone,
            at=now,
            ended=now,
            locale="ru",
            client_name="Анна",
            study_type="mri_knee",
        ),
    )

    call_id = await answer_as_the_dialog(rig, phone, "booked")
    context = CampaignCall.model_validate_json(await rig.redis.get(call_key(call_id)))
    assert (context.campaign_id, context.locale, context.phone) == (ru, "ru", phone)
    assert call_reason(RU_SCRIPT, context, "ru") == (
        "вам, как вы и просили, по поводу МРТ коленного сустава"
    )
    assert await callback_contacts(rig) == []  # nothing went to the English campaign


async def test_a_campaigns_callee_who_asks_for_a_callback_is_called_back_on_top_of_the_budget(
    rig: Rig,  # noqa: F811
) -> None:
    """Two attempts per contact. One callee is busy, then answers on the last attempt and asks
    to be called back; the other asks on the first call, then is busy: each is called a third
    time, in the campaign's own calls, and books."""
    last, first = caller_number(), caller_number()
    rig.switch.callees[last] = Callee("answer", 0.1, attempts=["busy", "answer"])
    rig.switch.callees[first] = Callee("answer", 0.1, attempts=["answer", "busy", "answer"])
    campaign_id = await campaign_of(
        rig,
        [last, first],
        retry={"max_attempts": 2, "busy_after_min": 0.01, "callback_after_min": 0.01},
        caps={"per_day": 5},
    )
    await answer_as_the_dialog(rig, first, "callback")
    await answer_as_the_dialog(rig, last, "callback")  # on its last attempt
    await answer_as_the_dialog(rig, last, "booked")
    await answer_as_the_dialog(rig, first, "booked")  # busy in between
    await finished(rig, campaign_id)
    ended = {
        c.phone: (c.state, c.outcome, c.attempts) for c in await rig.store.contacts(campaign_id)
    }
    assert ended == {
        last: (ContactState.DONE, "booked", 3),
        first: (ContactState.DONE, "booked", 3),
    }
    assert (rig.switch.callees[last].dialled, rig.switch.callees[first].dialled) == (3, 3)
    assert await callback_contacts(rig) == []  # not moved to the inbound callbacks


async def test_replicas_reading_one_request_at_once_keep_one_callback(
    database_url: str, redis_url: str, key_prefix: str
) -> None:
    """Two replicas, each with its own connection, handed the same outcome at the same moment
    (an entry claimed by a second replica while the first still works on it), before any
    callbacks campaign exists: one campaign, one contact."""
    stores = [await Store.open(database_url) for _ in range(2)]
    await stores[0].migrate()
    redis = aioredis.Redis.from_url(redis_url)
    switch: Any = SimpleNamespace(connected=asyncio.Event())  # nothing is dialled here
    config = EngineConfig(replica="r", completed_stream=f"{key_prefix}calls:completed")
    replicas = [Dialer(config, store, redis, switch) for store in stores]
    try:
        now = datetime.now(UTC)
        phone = caller_number()
        entry = inbound_callback("in-1", phone, at=now + timedelta(days=1), ended=now)
        for _ in range(3):
            await asyncio.gather(*(replica._apply_outcome(entry) for replica in replicas))
        assert [c.id for c in await stores[0].campaigns()] == [CALLBACKS]
        (contact,) = await stores[1].contacts(CALLBACKS)
        assert (contact.phone, contact.next_attempt_at) == (phone, now + timedelta(days=1))
    finally:
        await redis.aclose()
        for store in stores:
            await store.close()
