"""The dialer's loop against callsim's Event Socket, real Redis and both databases.

The switch is configured from freeswitch/conf (the carrier gateway, the outbound extension); its
callees answer, are busy, reject, or are unknown to the carrier. An answered call's dialog
outcome is appended to calls:completed as the policy engine appends it. Every contact must end
with the outcome its callee dictates, dialled as often as its attempts say and never twice at
once, with exactly one sheet row of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import websockets

from callkit.audiofork import SUBPROTOCOL
from callkit.contracts import outcome as outcomes
from callkit.contracts.campaign import CampaignCall, call_key
from callkit.esl import Event
from callkit.esl_client import EslClient
from callsim.esl_server import EslServer
from callsim.run import RunOptions, load_deployment
from callsim.switch import Callee, Switch
from dialer.app import EVENTS
from dialer.core.states import CampaignState, ContactState
from dialer.engine import CONTACT_ROW_PREFIX, Dialer, EngineConfig
from dialer.spec import WEEKDAYS, CallingWindows, CampaignSpec, ContactRow, RetryPolicy, Span
from dialer.store import Store

PASSWORD = "dialer-test"
ALWAYS = CallingWindows(hours={day: [Span(start="00:00", end="24:00")] for day in WEEKDAYS})


def number() -> str:
    return f"+1555{random.randrange(10**7):07d}"


@dataclass
class Rig:
    switch: Switch
    store: Store
    redis: aioredis.Redis
    dialer: Dialer
    stream: str
    #: Per number: how many of its channels were up at once, at most.
    overlap: dict[str, int] = field(default_factory=dict)
    live: dict[str, set[str]] = field(default_factory=dict)
    numbers: dict[str, str] = field(default_factory=dict)  # channel uuid -> number dialled
    server: EslServer | None = None

    def watch(self, event: Event) -> None:
        channel = event.get("Unique-ID") or ""
        if event.name == "CHANNEL_CREATE":
            # The number as dialled; an answered leg is then transferred to the outbound
            # extension, which becomes its destination.
            dialled = self.numbers[channel] = event.get("Caller-Destination-Number") or ""
            up = self.live.setdefault(dialled, set())
            up.add(channel)
            self.overlap[dialled] = max(self.overlap.get(dialled, 0), len(up))
        elif event.name == "CHANNEL_HANGUP_COMPLETE":
            self.live.get(self.numbers.get(channel, ""), set()).discard(channel)


@pytest.fixture
async def rig(
    database_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> AsyncIterator[Rig]:
    async def discard(ws: Any) -> None:  # the bridge's end of the audio fork
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in ws:
                pass

    async with websockets.serve(discard, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as fork:
        port = fork.sockets[0].getsockname()[1]
        switch = Switch(hostname="dialer-test")
        load_deployment(
            switch, RunOptions(fork_url=f"ws://127.0.0.1:{port}/fork/{{uuid}}", recordings=tmp_path)
        )
        server = EslServer(switch, PASSWORD, port=0)
        await server.start()
        store = await Store.open(database_url)
        await store.migrate()
        redis = aioredis.Redis.from_url(redis_url)
        stream = f"{key_prefix}calls:completed"
        holder: dict[str, Any] = {}
        esl = EslClient(
            "127.0.0.1",
            server.port,
            PASSWORD,
            events=EVENTS + " CHANNEL_CREATE",
            on_event=lambda event: (holder["rig"].watch(event), holder["dialer"].on_event(event)),
        )
        config = EngineConfig(
            replica="test-replica",
            tick_s=0.1,
            lease_s=10,
            max_call_s=60,
            completed_stream=stream,
            group=f"{key_prefix}dialer",
            bridge_loads=f"{key_prefix}bridge:*:load",  # no other run's bridge caps this one
        )
        dialer = Dialer(config, store, redis, esl)
        holder["dialer"] = dialer
        holder["rig"] = rig = Rig(switch, store, redis, dialer, stream, server=server)
        esl.start()
        await asyncio.wait_for(esl.connected.wait(), 10)
        task = asyncio.create_task(dialer.run())
        try:
            yield rig
        finally:
            dialer.stop()
            await asyncio.wait_for(task, 5)
            await dialer.drain()
            await esl.close()
            await server.close()
            await store.close()
            await redis.aclose()


async def answer_as_the_dialog(rig: Rig, phone: str, status: str) -> str:
    """Once the number's call is answered: the dialog's outcome, then the callee hangs up."""
    async with asyncio.timeout(20):
        while True:
            channel = next(
                (
                    ch
                    for ch in rig.switch.channels.values()
                    if rig.numbers.get(ch.uuid) == phone and ch.answered
                ),
                None,
            )
            if channel is not None:
                break
            await asyncio.sleep(0.05)
    now = datetime.now(UTC)
    outcome = outcomes.CallOutcome(
        call_id=channel.uuid,
        direction="outbound",
        callee=phone,
        started_at=now,
        ended_at=now,
        duration_s=1,
        status=status,  # type: ignore[arg-type]
    )
    await rig.redis.xadd(rig.stream, outcomes.entry(outcome))  # type: ignore[arg-type]
    rig.switch.hangup(channel, "NORMAL_CLEARING", by="callee")
    return channel.uuid


async def finished(rig: Rig, campaign_id: str, wait_s: float = 40) -> None:
    async with asyncio.timeout(wait_s):
        while True:
            record = await rig.store.campaign(campaign_id)
            if record is not None and record.state == CampaignState.COMPLETED:
                return
            await asyncio.sleep(0.1)


async def test_a_campaign_ends_every_contact_the_way_its_callee_dictates(rig: Rig) -> None:
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
    assert max(rig.overlap.values()) == 1
    # One sheet row per contact, with its outcome and attempt count.
    await asyncio.sleep(0.3)
    entries = await rig.redis.xrange(rig.stream)
    rows_out = [outcomes.parse_entry(fields) for _, fields in entries]
    contact_rows = [o for o in rows_out if o.call_id.startswith(CONTACT_ROW_PREFIX)]
    assert sorted((o.callee, o.status) for o in contact_rows) == sorted(
        (phone, outcome) for phone, (_, outcome, _) in ended.items()
    )
    assert {o.callee: (o.model_extra or {}).get("attempts") for o in contact_rows}[books] == 2
    # No slot or number lock is left behind.
    assert await rig.dialer.live.active(campaign_id, now=datetime.now(UTC).timestamp()) == 0
    assert not await rig.redis.exists(*(f"campaign:number:{p}" for p in contacts))


async def test_nothing_is_dialled_while_paused_or_outside_the_window(rig: Rig) -> None:
    phone = number()
    rig.switch.callees[phone] = Callee("busy")
    now = datetime.now(UTC)
    closed_today = WEEKDAYS[now.weekday()]
    windows = CallingWindows(
        hours={day: [Span(start="00:00", end="24:00")] for day in WEEKDAYS if day != closed_today}
    )
    spec = CampaignSpec(name="closed", windows=windows, timezone="UTC")
    campaign_id = await rig.store.create_campaign(spec, now=now)
    await rig.store.add_contacts(campaign_id, [ContactRow(row=2, phone=phone)], now=now)
    await rig.store.transition(campaign_id, CampaignState.RUNNING, now=now)
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
    paused_id = await rig.store.create_campaign(
        CampaignSpec(name="paused", windows=ALWAYS), now=now
    )
    await rig.store.add_contacts(paused_id, [ContactRow(row=2, phone=second)], now=now)
    await rig.store.transition(paused_id, CampaignState.RUNNING, now=now)
    await rig.store.transition(paused_id, CampaignState.PAUSED, now=now)
    await asyncio.sleep(1.0)  # ten ticks of the loop
    assert rig.switch.callees[second].dialled == 0
    (waiting,) = await rig.store.contacts(paused_id)
    # Untouched, or claimed in the instant before the pause and given back at no cost.
    assert waiting.state in ("pending", "scheduled")
    assert waiting.attempts == 0


async def campaign_of(rig: Rig, phones: list[str], **spec: object) -> str:
    now = datetime.now(UTC)
    campaign_id = await rig.store.create_campaign(
        CampaignSpec.model_validate({"name": "test", "windows": ALWAYS, **spec}), now=now
    )
    rows = [ContactRow(row=i + 2, phone=p) for i, p in enumerate(phones)]
    await rig.store.add_contacts(campaign_id, rows, now=now)
    await rig.store.transition(campaign_id, CampaignState.RUNNING, now=now)
    return campaign_id


async def test_nothing_is_originated_while_the_event_socket_is_down(rig: Rig) -> None:
    assert rig.server is not None
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


async def test_a_failing_trunk_pauses_the_campaign_and_says_why(rig: Rig) -> None:
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


async def test_an_inbound_caller_who_opts_out_is_never_dialled(rig: Rig) -> None:
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
