"""The dialer's database and Redis go away mid-campaign and come back.

The dialer runs in this process against callsim's Event Socket, the suite's PostgreSQL and a
Redis of the test's own (redis-server with its append-only file, as compose runs it). While the
campaign's calls ring, are busy and are answered, PostgreSQL first refuses the test's database
and drops its connections for a few seconds, then Redis is killed with SIGKILL and restarted
on its folder a few seconds later. The dialer must hold while each one is gone, say so in its
log, and carry on: every contact ends with the outcome its callee dictates, dialled exactly as
often as its attempts say and never twice at once, with one sheet row of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis as syncredis
import redis.asyncio as aioredis
import websockets
from killstack import AppendOnlyRedis
from redis.exceptions import RedisError

from callkit import postgres_provision
from callkit.audiofork import SUBPROTOCOL
from callkit.contracts import outcome as outcomes
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

PASSWORD = "outage-test"
ALWAYS = CallingWindows(hours={day: [Span(start="00:00", end="24:00")] for day in WEEKDAYS})
STREAM = "calls:completed"
#: How long each dependency stays away.
OUTAGE_S = 3.0


def number() -> str:
    return f"+1555{random.randrange(10**7):07d}"


@dataclass
class Watch:
    """The switch's own view: originates per number, and the most channels up at once."""

    numbers: dict[str, str] = field(default_factory=dict)
    live: dict[str, set[str]] = field(default_factory=dict)
    most: dict[str, int] = field(default_factory=dict)
    originated: dict[str, int] = field(default_factory=dict)

    def __call__(self, event: Event) -> None:
        channel = event.get("Unique-ID") or ""
        if event.name == "CHANNEL_CREATE":
            dialled = self.numbers[channel] = event.get("Caller-Destination-Number") or ""
            self.originated[dialled] = self.originated.get(dialled, 0) + 1
            up = self.live.setdefault(dialled, set())
            up.add(channel)
            self.most[dialled] = max(self.most.get(dialled, 0), len(up))
        elif event.name == "CHANNEL_HANGUP_COMPLETE":
            self.live.get(self.numbers.get(channel, ""), set()).discard(channel)

    def total(self) -> int:
        return sum(self.originated.values())


@dataclass
class Rig:
    switch: Switch
    watch: Watch
    store: Store
    redis: aioredis.Redis
    redis_server: AppendOnlyRedis
    dialer: Dialer
    database: str  # the test database's name
    server_url: str  # the PostgreSQL server's maintenance database

    def refuse_database(self) -> None:
        """PostgreSQL stops letting anyone into the database and drops who is in."""
        postgres_provision.execute(
            self.server_url, f'ALTER DATABASE "{self.database}" ALLOW_CONNECTIONS false'
        )
        postgres_provision.execute(
            self.server_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{self.database}' AND pid <> pg_backend_pid()",
        )

    def admit_database(self) -> None:
        postgres_provision.execute(
            self.server_url, f'ALTER DATABASE "{self.database}" ALLOW_CONNECTIONS true'
        )


def server_of(database_url: str) -> tuple[str, str]:
    """The libpq URL of the server's maintenance database, and the test database's name."""
    parts = urlsplit(database_url)
    server = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    return server, parts.path.lstrip("/")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[AppendOnlyRedis]:
    server = AppendOnlyRedis(tmp_path / "redis")
    server.start()
    # Every write reaches the file before its reply, so the kill loses nothing a client was
    # told was written: what the test checks is the dialer, not Redis's last second.
    client = syncredis.Redis.from_url(server.url)
    try:
        client.config_set("appendfsync", "always")
    finally:
        client.close()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def rig(database_url: str, own_redis: AppendOnlyRedis, tmp_path: Path) -> AsyncIterator[Rig]:
    async def discard(ws: Any) -> None:  # the bridge's end of the audio fork
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in ws:
                pass

    async with websockets.serve(
        discard, "127.0.0.1", 0, subprotocols=[websockets.Subprotocol(SUBPROTOCOL)]
    ) as fork:
        port = fork.sockets[0].getsockname()[1]
        switch = Switch(hostname="outage-test")
        load_deployment(
            switch, RunOptions(fork_url=f"ws://127.0.0.1:{port}/fork/{{uuid}}", recordings=tmp_path)
        )
        watch = Watch()
        switch.listeners.append(watch)
        server = EslServer(switch, PASSWORD, port=0)
        await server.start()
        store = await Store.open(database_url)
        await store.migrate()
        redis = aioredis.Redis.from_url(own_redis.url)
        holder: dict[str, Dialer] = {}
        esl = EslClient(
            "127.0.0.1",
            server.port,
            PASSWORD,
            events=EVENTS,
            on_event=lambda event: holder["dialer"].on_event(event),
        )
        config = EngineConfig(
            replica="outage-test",
            tick_s=0.1,
            lease_s=5,
            # A number's one-call lock outlives a call by at most this (plus the ring timeout).
            max_call_s=20,
            # An answered call whose outcome never reaches the dialer ends as failed this long
            # after its hang-up; longer than the outcome stream's redelivery of an entry that
            # could not be applied (30 s idle), so only a lost outcome shows as a wrong one.
            outcome_wait_s=45,
            completed_stream=STREAM,
        )
        dialer = holder["dialer"] = Dialer(config, store, redis, esl)
        server_url, name = server_of(database_url)
        rig = Rig(switch, watch, store, redis, own_redis, dialer, name, server_url)
        esl.start()
        await asyncio.wait_for(esl.connected.wait(), 10)
        task = asyncio.create_task(dialer.run())
        try:
            yield rig
        finally:
            rig.admit_database()
            dialer.stop()
            try:
                await asyncio.wait_for(task, 5)  # raises what the dialer's loop died of
            finally:
                await dialer.drain()
                await esl.close()
                await server.close()
                await store.close()
                await redis.aclose()


async def play_the_dialog(rig: Rig, answering: set[str]) -> None:
    """What the policy engine does for each answered call: its outcome, then the callee hangs
    up. While Redis is away the outcome waits, as the engine's own retries make it wait."""
    done: set[str] = set()
    while True:
        for ch in list(rig.switch.channels.values()):
            if (
                ch.uuid in done
                or not ch.answered
                or rig.watch.numbers.get(ch.uuid) not in answering
            ):
                continue
            stamp = datetime.now(UTC)
            outcome = outcomes.CallOutcome(
                call_id=ch.uuid,
                direction="outbound",
                started_at=stamp,
                ended_at=stamp,
                duration_s=1,
                status="booked",
            )
            try:
                await rig.redis.xadd(STREAM, outcomes.entry(outcome))  # type: ignore[arg-type]
            except (RedisError, OSError):
                continue  # Redis is away: the next pass tries again
            done.add(ch.uuid)
            rig.switch.hangup(ch, "NORMAL_CLEARING", by="callee")
        await asyncio.sleep(0.1)


async def originates_go_on(rig: Rig, more: int = 1, wait_s: float = 20) -> None:
    target = rig.watch.total() + more
    async with asyncio.timeout(wait_s):
        while rig.watch.total() < target:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def completed(rig: Rig, campaign_id: str, wait_s: float) -> None:
    """The campaign completes; if it does not, the contacts it waits for say where they are."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait_s):
            while True:
                record = await rig.store.campaign(campaign_id)
                if record is not None and record.state == CampaignState.COMPLETED:
                    return
                await asyncio.sleep(0.1)
    waiting = [
        f"{c.phone}: {c.state} after {c.attempts} attempt(s), dialled "
        f"{rig.watch.originated.get(c.phone, 0)} time(s) ({c.reason or 'no reason given'})"
        for c in await rig.store.contacts(campaign_id, limit=50)
        if c.state not in (ContactState.DONE, ContactState.SKIPPED)
    ]
    # The dialer's calls that died with an error are garbage by now; their finalizers report
    # them here rather than while the failure is being formatted (Python 3.11.7's AST parser
    # fails with a SystemError when a finalizer runs in the middle of a parse).
    gc.collect()
    pytest.fail(f"the campaign did not complete in {wait_s:.0f} s; still waiting: {waiting}")


def warned_since(caplog: pytest.LogCaptureFixture, mark: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records[mark:]
        if r.name == "dialer.engine" and r.levelno >= logging.WARNING
    ]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_database_and_redis_going_away_mid_campaign_lose_and_double_nothing(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="dialer.engine")
    busy = [number() for _ in range(4)]
    answering = [number() for _ in range(4)]
    for phone in busy:
        rig.switch.callees[phone] = Callee("busy", 0.5)
    for phone in answering:
        rig.switch.callees[phone] = Callee("answer", 0.5)
    now = datetime.now(UTC)
    spec = CampaignSpec(
        name="outages",
        windows=ALWAYS,
        concurrency=3,
        # The default: claimed contacts wait their turn on the trunk, as they do in production,
        # so each outage finds calls between their claim and their originate.
        calls_per_second=1,
        originate_timeout_s=10,
        retry=RetryPolicy(max_attempts=2, busy_after_min=0.02, failed_after_min=0.02),
    )
    campaign_id = await rig.store.create_campaign(spec, now=now)
    rows = [ContactRow(row=i + 2, phone=p) for i, p in enumerate(busy + answering)]
    await rig.store.add_contacts(campaign_id, rows, now=now)
    dialog = asyncio.create_task(play_the_dialog(rig, set(answering)))
    try:
        await rig.store.transition(campaign_id, CampaignState.RUNNING, now=now)
        await originates_go_on(rig, 3)  # calls ring, are busy, are answered

        # PostgreSQL refuses the database: calls in progress end meanwhile.
        mark = len(caplog.records)
        rig.refuse_database()
        await asyncio.sleep(OUTAGE_S)
        assert warned_since(caplog, mark), "the dialer said nothing while its database was away"
        rig.admit_database()
        await originates_go_on(rig)  # dialling carries on

        # Redis is killed and comes back on its append-only file.
        mark = len(caplog.records)
        rig.redis_server.kill()
        await asyncio.sleep(OUTAGE_S)
        assert warned_since(caplog, mark), "the dialer said nothing while Redis was away"
        rig.redis_server.start()

        await completed(rig, campaign_id, wait_s=60)
    finally:
        dialog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dialog

    contacts = {c.phone: c for c in await rig.store.contacts(campaign_id, limit=50)}
    assert {c.state for c in contacts.values()} == {ContactState.DONE}
    for phone, contact in contacts.items():
        # Dialled exactly as often as its attempts say, and never two calls at once.
        assert rig.watch.originated.get(phone, 0) == contact.attempts, phone
        assert rig.watch.most.get(phone, 0) == 1, phone
    for phone in answering:
        # Answered on the first call; its dialog's outcome reached the dialer despite it all.
        assert (contacts[phone].outcome, contacts[phone].attempts) == ("booked", 1), phone
    for phone in busy:
        assert (contacts[phone].outcome, contacts[phone].attempts) == ("busy", 2), phone
    # The sheet: one row per contact, none lost while a dependency was away, none doubled.
    entries: Any = await rig.redis.xrange(STREAM)
    rows_out = [outcomes.parse_entry(fields) for _, fields in entries]
    contact_rows = sorted(
        str(o.callee) for o in rows_out if o.call_id.startswith(CONTACT_ROW_PREFIX)
    )
    assert contact_rows == sorted(contacts)
    # Nothing live is left behind once the campaign is over.
    assert not rig.dialer.in_flight
    assert await rig.dialer.live.active(campaign_id, now=datetime.now(UTC).timestamp()) == 0
