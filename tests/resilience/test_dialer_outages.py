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
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis as syncredis
from dialer_harness import (
    ALWAYS,
    Rig,
    add_campaign,
    dialog_outcome,
    finished,
    nothing_live,
    number,
    running_dialer,
    sheet_rows,
)
from killstack import AppendOnlyRedis
from redis.exceptions import RedisError

from callkit import postgres_provision
from callsim.switch import Callee
from dialer.core.states import CampaignState, ContactState
from dialer.engine import EngineConfig
from dialer.spec import CampaignSpec, RetryPolicy

STREAM = "calls:completed"
#: How long each dependency stays away.
OUTAGE_S = 3.0


@dataclass
class Outages:
    """The dependencies the test takes away: the test database and the test's own Redis."""

    redis_server: AppendOnlyRedis
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
def outages(database_url: str, own_redis: AppendOnlyRedis) -> Outages:
    server_url, name = server_of(database_url)
    return Outages(own_redis, name, server_url)


@pytest.fixture
async def rig(
    database_url: str, own_redis: AppendOnlyRedis, outages: Outages, tmp_path: Path
) -> AsyncIterator[Rig]:
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
    async with running_dialer(
        hostname="outage-test",
        password="outage-test",
        config=config,
        database_url=database_url,
        redis_url=own_redis.url,
        recordings=tmp_path,
        watching="switch",
    ) as rig:
        try:
            yield rig
        finally:
            outages.admit_database()


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
            try:
                await rig.redis.xadd(STREAM, dialog_outcome(ch.uuid, "booked"))  # type: ignore[arg-type]
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


def warned_since(caplog: pytest.LogCaptureFixture, mark: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records[mark:]
        if r.name == "dialer.engine" and r.levelno >= logging.WARNING
    ]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_database_and_redis_going_away_mid_campaign_lose_and_double_nothing(
    rig: Rig, outages: Outages, caplog: pytest.LogCaptureFixture
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
    campaign_id = await add_campaign(rig.store, busy + answering, spec, start=False, now=now)
    dialog = asyncio.create_task(play_the_dialog(rig, set(answering)))
    try:
        await rig.store.transition(campaign_id, CampaignState.RUNNING, now=now)
        await originates_go_on(rig, 3)  # calls ring, are busy, are answered

        # PostgreSQL refuses the database: calls in progress end meanwhile.
        mark = len(caplog.records)
        outages.refuse_database()
        await asyncio.sleep(OUTAGE_S)
        assert warned_since(caplog, mark), "the dialer said nothing while its database was away"
        outages.admit_database()
        await originates_go_on(rig)  # dialling carries on

        # Redis is killed and comes back on its append-only file.
        mark = len(caplog.records)
        outages.redis_server.kill()
        await asyncio.sleep(OUTAGE_S)
        assert warned_since(caplog, mark), "the dialer said nothing while Redis was away"
        outages.redis_server.start()

        await finished(rig, campaign_id, wait_s=60)
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
    contact_rows = sorted(str(o.callee) for o in await sheet_rows(rig.redis, STREAM))
    assert contact_rows == sorted(contacts)
    # Nothing live is left behind once the campaign is over.
    await nothing_live(rig, campaign_id)
