"""What the dialer's integration and resilience tests share: callsim's switch on an Event
Socket (configured from freeswitch/conf, with an audio fork that swallows the audio), a dialer
running against it, campaigns started the way the API starts them, and what is checked once a
campaign is over (the sheet's rows, nothing live left behind)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
import redis.asyncio as aioredis
import websockets

from callkit.audiofork import SUBPROTOCOL
from callkit.contracts import outcome as outcomes
from callkit.esl import Event
from callkit.esl_client import EslClient
from callsim.esl_server import EslServer
from callsim.run import RunOptions, load_deployment
from callsim.switch import Switch
from dialer.app import EVENTS
from dialer.core.states import CampaignState, ContactState
from dialer.engine import CONTACT_ROW_PREFIX, Dialer, EngineConfig
from dialer.settings import DialerSettings
from dialer.spec import WEEKDAYS, CallingWindows, CampaignSpec, ContactRow, Span
from dialer.store import Store

ALWAYS = CallingWindows(hours={day: [Span(start="00:00", end="24:00")] for day in WEEKDAYS})


def number() -> str:
    """A number in 555, which no real person has."""
    return f"+1555{random.randrange(10**7):07d}"


@dataclass
class Watch:
    """The switch's own view: originates per number, and the most channels up at once."""

    numbers: dict[str, str] = field(default_factory=dict)  # channel uuid -> number dialled
    live: dict[str, set[str]] = field(default_factory=dict)
    most: dict[str, int] = field(default_factory=dict)
    originated: dict[str, int] = field(default_factory=dict)

    def __call__(self, event: Event) -> None:
        channel = event.get("Unique-ID") or ""
        if event.name == "CHANNEL_CREATE":
            # The number as dialled; an answered leg is then transferred to the outbound
            # extension, which becomes its destination.
            dialled = self.numbers[channel] = event.get("Caller-Destination-Number") or ""
            self.originated[dialled] = self.originated.get(dialled, 0) + 1
            up = self.live.setdefault(dialled, set())
            up.add(channel)
            self.most[dialled] = max(self.most.get(dialled, 0), len(up))
        elif event.name == "CHANNEL_HANGUP_COMPLETE":
            self.live.get(self.numbers.get(channel, ""), set()).discard(channel)

    def total(self) -> int:
        return sum(self.originated.values())


@contextlib.asynccontextmanager
async def serving_switch(
    hostname: str, password: str, recordings: Path
) -> AsyncIterator[tuple[Switch, EslServer]]:
    """A switch on an Event Socket of its own, its calls' audio forked to a sink."""

    async def discard(ws: Any) -> None:  # the bridge's end of the audio fork
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in ws:
                pass

    async with websockets.serve(
        discard, "127.0.0.1", 0, subprotocols=[websockets.Subprotocol(SUBPROTOCOL)]
    ) as fork:
        port = fork.sockets[0].getsockname()[1]
        switch = Switch(hostname=hostname)
        load_deployment(
            switch,
            RunOptions(fork_url=f"ws://127.0.0.1:{port}/fork/{{uuid}}", recordings=recordings),
        )
        server = EslServer(switch, password, port=0)
        await server.start()
        try:
            yield switch, server
        finally:
            await server.close()


def engine_config(replica: str, key_prefix: str, **settings: Any) -> EngineConfig:
    """A quick-ticking dialer whose stream, group and bridge loads are this test's own."""
    return EngineConfig(
        replica=replica,
        tick_s=0.1,
        completed_stream=f"{key_prefix}calls:completed",
        group=f"{key_prefix}dialer",
        bridge_loads=f"{key_prefix}bridge:*:load",  # no other run's bridge caps this one
        **settings,
    )


def api_settings(
    database_url: str, redis_url: str, esl: tuple[int, str], key_prefix: str, token: str
) -> DialerSettings:
    """The dialer service's settings for the ESL emulator, with this test's own stream."""
    port, password = esl
    return DialerSettings(
        database_url=database_url,
        redis_url=redis_url,
        api_token=token,
        esl_port=port,
        esl_password=password,
        group=f"{key_prefix}dialer",
        completed_stream=f"{key_prefix}calls:completed",
    )


@dataclass
class Rig:
    switch: Switch
    server: EslServer
    store: Store
    redis: aioredis.Redis
    dialer: Dialer
    watch: Watch

    @property
    def stream(self) -> str:
        return self.dialer.config.completed_stream


async def open_store(database_url: str) -> Store:
    store = await Store.open(database_url)
    await store.migrate()
    return store


@contextlib.asynccontextmanager
async def running_dialer(
    *,
    hostname: str,
    password: str,
    config: EngineConfig,
    database_url: str,
    redis_url: str,
    recordings: Path,
    watching: Literal["none", "events", "switch"] = "none",
) -> AsyncIterator[Rig]:
    """A dialer running its loop against a switch of its own, the given database and Redis.

    ``watching``: how the rig's :class:`Watch` learns of channels: not at all, from the
    dialer's own Event Socket connection (subscribed to CHANNEL_CREATE as well), or from the
    switch itself."""
    async with serving_switch(hostname, password, recordings) as (switch, server):
        watch = Watch()
        if watching == "switch":
            switch.listeners.append(watch)
        store = await open_store(database_url)
        redis = aioredis.Redis.from_url(redis_url)
        holder: dict[str, Dialer] = {}

        def on_event(event: Event) -> None:
            if watching == "events":
                watch(event)
            holder["dialer"].on_event(event)

        esl = EslClient(
            "127.0.0.1",
            server.port,
            password,
            events=EVENTS + " CHANNEL_CREATE" if watching == "events" else EVENTS,
            on_event=on_event,
        )
        dialer = holder["dialer"] = Dialer(config, store, redis, esl)
        esl.start()
        await asyncio.wait_for(esl.connected.wait(), 10)
        task = asyncio.create_task(dialer.run())
        try:
            yield Rig(switch, server, store, redis, dialer, watch)
        finally:
            dialer.stop()
            try:
                await asyncio.wait_for(task, 5)  # raises what the dialer's loop died of
            finally:
                await dialer.drain()
                await esl.close()
                await store.close()
                await redis.aclose()


async def add_campaign(
    store: Store,
    phones: list[str],
    spec: CampaignSpec,
    *,
    start: bool = True,
    now: datetime | None = None,
) -> str:
    """The campaign with a contact per number (sheet rows from 2 on), running unless not."""
    now = now or datetime.now(UTC)
    campaign_id = await store.create_campaign(spec, now=now)
    rows = [ContactRow(row=i + 2, phone=p) for i, p in enumerate(phones)]
    await store.add_contacts(campaign_id, rows, now=now)
    if start:
        await store.transition(campaign_id, CampaignState.RUNNING, now=now)
    return campaign_id


async def completed(
    rig: Rig, campaign_id: str, wait_s: float, dialled: Callable[[str], int] | None = None
) -> None:
    """The campaign completes; if it does not, the contacts it waits for say where they are
    (and, given ``dialled``, how often the switch saw each one dialled)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait_s):
            while True:
                record = await rig.store.campaign(campaign_id)
                if record is not None and record.state == CampaignState.COMPLETED:
                    return
                await asyncio.sleep(0.1)
    waiting = [
        f"{c.phone}: {c.state} after {c.attempts} attempt(s)"
        + (f", dialled {dialled(c.phone)} time(s)" if dialled else "")
        + f" ({c.reason or 'no reason given'})"
        for c in await rig.store.contacts(campaign_id, limit=50)
        if c.state not in (ContactState.DONE, ContactState.SKIPPED)
    ]
    # The dialer's calls that died with an error are garbage by now; their finalizers report
    # them here rather than while the failure is being formatted (Python 3.11.7's AST parser
    # fails with a SystemError when a finalizer runs in the middle of a parse).
    gc.collect()
    pytest.fail(f"the campaign did not complete in {wait_s:.0f} s; still waiting: {waiting}")


def dialog_outcome(call_id: str, status: str, callee: str | None = None) -> dict[str, str]:
    """The calls:completed entry the policy engine appends when an answered call's dialog ends."""
    stamp = datetime.now(UTC)
    outcome = outcomes.CallOutcome(
        call_id=call_id,
        direction="outbound",
        callee=callee,
        started_at=stamp,
        ended_at=stamp,
        duration_s=1,
        status=status,  # type: ignore[arg-type,unused-ignore]
    )
    return outcomes.entry(outcome)


async def answer_as_the_dialog(rig: Rig, phone: str, status: str) -> str:
    """Once the number's call is answered: the dialog's outcome, then the callee hangs up."""
    async with asyncio.timeout(20):
        while True:
            channel = next(
                (
                    ch
                    for ch in rig.switch.channels.values()
                    if rig.watch.numbers.get(ch.uuid) == phone and ch.answered
                ),
                None,
            )
            if channel is not None:
                break
            await asyncio.sleep(0.05)
    await rig.redis.xadd(rig.stream, dialog_outcome(channel.uuid, status, phone))  # type: ignore[arg-type]
    rig.switch.hangup(channel, "NORMAL_CLEARING", by="callee")
    return channel.uuid


async def sheet_rows(redis: aioredis.Redis, stream: str) -> list[outcomes.CallOutcome]:
    """The rows the dialer wrote for the sheet, one per contact that ended, in order."""
    entries: Any = await redis.xrange(stream)
    rows = [outcomes.parse_entry(fields) for _, fields in entries]
    return [row for row in rows if row.call_id.startswith(CONTACT_ROW_PREFIX)]


async def nothing_live(rig: Rig, campaign_id: str) -> None:
    """No call of the dialer's in flight, no call slot of the campaign's held."""
    assert not rig.dialer.in_flight
    assert await rig.dialer.live.active(campaign_id, now=datetime.now(UTC).timestamp()) == 0


@pytest.fixture
async def rig(
    database_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> AsyncIterator[Rig]:
    """The dialer against a switch of its own, its Watch fed from the dialer's own Event
    Socket connection (a test module uses it by importing it)."""
    async with running_dialer(
        hostname="dialer-test",
        password="dialer-test",
        config=engine_config("test-replica", key_prefix, lease_s=10, max_call_s=60),
        database_url=database_url,
        redis_url=redis_url,
        recordings=tmp_path,
        watching="events",
    ) as rig:
        yield rig


async def finished(rig: Rig, campaign_id: str, wait_s: float = 40) -> None:
    """The campaign completes (see :func:`completed`), as the rig's Watch saw it dialled."""
    await completed(
        rig, campaign_id, wait_s, dialled=lambda phone: rig.watch.originated.get(phone, 0)
    )


async def campaign_of(rig: Rig, phones: list[str], **spec: object) -> str:
    """A running campaign, callable at any hour, of these numbers; ``spec`` as the API takes it."""
    return await add_campaign(
        rig.store,
        phones,
        CampaignSpec.model_validate({"name": "test", "windows": ALWAYS, **spec}),
    )
