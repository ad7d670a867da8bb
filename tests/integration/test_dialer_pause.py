"""Pausing a campaign while its calls are live, against callsim's Event Socket, real Redis and
both databases: the live calls (one answered, one still ringing) go on to their end and their
results are recorded, nothing new is originated while the campaign is paused, even once the
live calls have freed their slots, and resuming dials the rest."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from dialer_harness import (  # noqa: F401  (rig: the fixture)
    ALWAYS,
    Rig,
    add_campaign,
    answer_as_the_dialog,
    finished,
    number,
    rig,
    sheet_rows,
)

from callsim.switch import Callee
from dialer.core.states import CampaignState, ContactState
from dialer.spec import CampaignSpec, RetryPolicy


class Ticks:
    """Counts the dialer's passes through its loop, so a test can wait for some to go by."""

    def __init__(self, tick: Callable[[], Awaitable[None]]) -> None:
        self.count = 0
        self._tick = tick

    async def __call__(self) -> None:
        await self._tick()
        self.count += 1

    async def pass_(self, n: int, wait_s: float = 20) -> None:
        target = self.count + n
        async with asyncio.timeout(wait_s):
            while self.count < target:  # noqa: ASYNC110
                await asyncio.sleep(0.02)


async def channel_up(on: Rig, phone: str, wait_s: float = 10) -> None:
    async with asyncio.timeout(wait_s):
        while not on.watch.live.get(phone):  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def answered(on: Rig, phone: str, wait_s: float = 10) -> None:
    async with asyncio.timeout(wait_s):
        while not any(  # noqa: ASYNC110
            ch.answered
            for ch in on.switch.channels.values()
            if on.watch.numbers.get(ch.uuid) == phone
        ):
            await asyncio.sleep(0.02)


async def test_pausing_lets_live_calls_finish_and_dials_nobody_new_until_resumed(
    rig: Rig,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ticks = Ticks(rig.dialer.tick)
    monkeypatch.setattr(rig.dialer, "tick", ticks)
    talking, ringing, first_waiting, second_waiting = (number() for _ in range(4))
    rig.switch.callees[talking] = Callee("answer")
    # Long enough that it still rings when the pause comes; it answers while paused.
    rig.switch.callees[ringing] = Callee("answer", ring_s=3.0)
    rig.switch.callees[first_waiting] = Callee("busy", 0.1)
    rig.switch.callees[second_waiting] = Callee("busy", 0.1)
    now = datetime.now(UTC)
    spec = CampaignSpec(
        name="paused mid-call",
        windows=ALWAYS,
        concurrency=2,  # the two live calls fill it; the waiting two come after
        calls_per_second=20,
        retry=RetryPolicy(max_attempts=1),
    )
    phones = (talking, ringing, first_waiting, second_waiting)
    campaign_id = await add_campaign(rig.store, list(phones), spec, now=now)

    await answered(rig, talking)
    await channel_up(rig, ringing)
    await rig.store.transition(campaign_id, CampaignState.PAUSED, now=datetime.now(UTC))
    ringing_channel = next(
        ch for ch in rig.switch.channels.values() if rig.watch.numbers.get(ch.uuid) == ringing
    )
    assert not ringing_channel.answered  # the pause came while it rang

    # The live calls run to their end: the dialog ends each with its outcome.
    await answer_as_the_dialog(rig, talking, "booked")
    await answer_as_the_dialog(rig, ringing, "not_interested")
    async with asyncio.timeout(20):
        while True:
            contacts = {c.phone: c for c in await rig.store.contacts(campaign_id)}
            if all(contacts[p].state == ContactState.DONE for p in (talking, ringing)):
                break
            await asyncio.sleep(0.1)
    assert (contacts[talking].outcome, contacts[talking].attempts) == ("booked", 1)
    assert (contacts[ringing].outcome, contacts[ringing].attempts) == ("not_interested", 1)

    # Their slots are free now, and still nobody new is dialled while the campaign is paused.
    await ticks.pass_(10)
    assert rig.switch.callees[first_waiting].dialled == 0
    assert rig.switch.callees[second_waiting].dialled == 0
    assert rig.dialer.originates == 2
    record = await rig.store.campaign(campaign_id)
    assert record is not None
    assert record.state == CampaignState.PAUSED
    contacts = {c.phone: c for c in await rig.store.contacts(campaign_id)}
    for phone in (first_waiting, second_waiting):
        # Untouched, or claimed in the instant before the pause and given back at no cost.
        assert contacts[phone].state in (ContactState.PENDING, ContactState.SCHEDULED)
        assert contacts[phone].attempts == 0

    await rig.store.transition(campaign_id, CampaignState.RUNNING, now=datetime.now(UTC))
    await finished(rig, campaign_id)
    contacts = {c.phone: c for c in await rig.store.contacts(campaign_id)}
    ended = {phone: (c.state, c.outcome, c.attempts) for phone, c in contacts.items()}
    assert ended == {
        talking: (ContactState.DONE, "booked", 1),
        ringing: (ContactState.DONE, "not_interested", 1),
        first_waiting: (ContactState.DONE, "busy", 1),
        second_waiting: (ContactState.DONE, "busy", 1),
    }
    # Each person was dialled once: the pause neither dropped nor repeated a call.
    assert {p: rig.switch.callees[p].dialled for p in phones} == dict.fromkeys(phones, 1)
    assert max(rig.watch.most.values()) == 1
    # The sheet has one row per contact, the paused calls' included.
    async with asyncio.timeout(10):
        while True:
            contact_rows = sorted(
                (o.callee, o.status) for o in await sheet_rows(rig.redis, rig.stream)
            )
            if len(contact_rows) >= len(phones):
                break
            await asyncio.sleep(0.1)
    assert contact_rows == sorted((phone, outcome) for phone, (_, outcome, _) in ended.items())
