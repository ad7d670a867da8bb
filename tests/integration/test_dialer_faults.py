"""One failed call to the database or Redis, at the worst moment of a call's life.

The dialer runs against callsim's Event Socket, real Redis and both databases, as in
test_dialer_dialing.py; one of its store or Redis calls fails once, where an outage would make
it fail. The contact must still end as its callee dictates, dialled as often as its attempts
say, with one sheet row, and nothing the attempt held (a call slot, the number's lock) left
behind, without waiting for a lease or a lock to lapse.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis.asyncio as aioredis
import websockets
from redis.exceptions import ConnectionError as RedisConnectionError

from callkit import postgres_provision
from callkit.audiofork import SUBPROTOCOL
from callkit.contracts import outcome as outcomes
from callkit.contracts.campaign import call_key
from callkit.errors import DependencyUnavailable
from callkit.esl_client import EslClient
from callsim.esl_server import EslServer
from callsim.run import RunOptions, load_deployment
from callsim.switch import Callee, Switch
from dialer.app import EVENTS
from dialer.core.states import CampaignState, ContactState
from dialer.engine import CONTACT_ROW_PREFIX, Dialer, EngineConfig
from dialer.live import number_key
from dialer.spec import WEEKDAYS, CallingWindows, CampaignSpec, ContactRow, RetryPolicy, Span
from dialer.store import Store

PASSWORD = "dialer-faults"
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


@pytest.fixture
async def rig(
    database_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> AsyncIterator[Rig]:
    async def discard(ws: Any) -> None:  # the bridge's end of the audio fork
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in ws:
                pass

    async with websockets.serve(
        discard, "127.0.0.1", 0, subprotocols=[websockets.Subprotocol(SUBPROTOCOL)]
    ) as fork:
        port = fork.sockets[0].getsockname()[1]
        switch = Switch(hostname="dialer-faults")
        load_deployment(
            switch, RunOptions(fork_url=f"ws://127.0.0.1:{port}/fork/{{uuid}}", recordings=tmp_path)
        )
        server = EslServer(switch, PASSWORD, port=0)
        await server.start()
        store = await Store.open(database_url)
        await store.migrate()
        redis = aioredis.Redis.from_url(redis_url)
        stream = f"{key_prefix}calls:completed"
        holder: dict[str, Dialer] = {}
        esl = EslClient(
            "127.0.0.1",
            server.port,
            PASSWORD,
            events=EVENTS,
            on_event=lambda event: holder["dialer"].on_event(event),
        )
        config = EngineConfig(
            replica="faults-replica",
            tick_s=0.1,
            # Longer than any test waits: a contact that only a lapsed lease, an expired lock
            # or a lost outcome's timeout would free makes the test fail, not pass late.
            lease_s=60,
            max_call_s=120,
            outcome_wait_s=120,
            completed_stream=stream,
            group=f"{key_prefix}dialer",
            bridge_loads=f"{key_prefix}bridge:*:load",
        )
        dialer = holder["dialer"] = Dialer(config, store, redis, esl)
        esl.start()
        await asyncio.wait_for(esl.connected.wait(), 10)
        task = asyncio.create_task(dialer.run())
        try:
            yield Rig(switch, store, redis, dialer, stream)
        finally:
            dialer.stop()
            await asyncio.wait_for(task, 5)
            await dialer.drain()
            await esl.close()
            await server.close()
            await store.close()
            await redis.aclose()


def fail_once(
    target: Any,
    name: str,
    error: Exception,
    monkeypatch: pytest.MonkeyPatch,
    when: Callable[..., bool] = lambda *a, **k: True,
) -> list[int]:
    """``target.name`` raises ``error`` the first time ``when`` holds for its arguments; the
    returned list counts how often it did (once, if the moment ever came)."""
    real = getattr(target, name)
    raised: list[int] = []

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if not raised and when(*args, **kwargs):
            raised.append(1)
            raise error
        return await real(*args, **kwargs)

    monkeypatch.setattr(target, name, flaky)
    return raised


async def run_campaign(rig: Rig, callees: dict[str, Callee], *, max_attempts: int = 2) -> str:
    for phone, callee in callees.items():
        rig.switch.callees[phone] = callee
    now = datetime.now(UTC)
    spec = CampaignSpec(
        name="faults",
        windows=ALWAYS,
        concurrency=2,
        calls_per_second=20,
        retry=RetryPolicy(max_attempts=max_attempts, busy_after_min=0.01),
    )
    campaign_id = await rig.store.create_campaign(spec, now=now)
    rows = [ContactRow(row=i + 2, phone=p) for i, p in enumerate(callees)]
    await rig.store.add_contacts(campaign_id, rows, now=now)
    await rig.store.transition(campaign_id, CampaignState.RUNNING, now=now)
    return campaign_id


async def completed(rig: Rig, campaign_id: str, wait_s: float = 25) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait_s):
            while True:
                record = await rig.store.campaign(campaign_id)
                if record is not None and record.state == CampaignState.COMPLETED:
                    return
                await asyncio.sleep(0.1)
    waiting = [
        f"{c.phone}: {c.state} after {c.attempts} attempt(s) ({c.reason})"
        for c in await rig.store.contacts(campaign_id)
        if c.state not in (ContactState.DONE, ContactState.SKIPPED)
    ]
    pytest.fail(f"the campaign did not complete in {wait_s:.0f} s; still waiting: {waiting}")


async def nothing_left_behind(rig: Rig, campaign_id: str) -> dict[str, int]:
    """No call in flight, no slot, no number lock; the sheet rows per number."""
    assert not rig.dialer.in_flight
    assert not rig.dialer.leftovers
    assert await rig.dialer.live.active(campaign_id, now=datetime.now(UTC).timestamp()) == 0
    contacts = await rig.store.contacts(campaign_id)
    assert not await rig.redis.exists(*(number_key(c.phone) for c in contacts))
    rows: dict[str, int] = {}
    entries: Any = await rig.redis.xrange(rig.stream)
    for _, fields in entries:
        row = outcomes.parse_entry(fields)
        if row.call_id.startswith(CONTACT_ROW_PREFIX):
            rows[str(row.callee)] = rows.get(str(row.callee), 0) + 1
    return rows


UNREACHABLE = DependencyUnavailable("the dialer's database did not answer (test)")
REDIS_GONE = RedisConnectionError("Connection closed by server.")


@pytest.mark.parametrize(
    "step",
    [
        "the trunk's rate bucket",
        "reading the campaign",
        "the agent's call context",
        "marking the attempt dialled",
    ],
)
async def test_a_call_that_meets_an_error_before_it_goes_out_is_dialled_once_later(
    rig: Rig, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    phone = number()
    if step == "the trunk's rate bucket":
        raised = fail_once(rig.dialer.live, "rate_wait", REDIS_GONE, monkeypatch)
    elif step == "reading the campaign":
        # Only the call's own read, not the test's nor the campaign's completion.
        raised = fail_once(
            rig.store,
            "campaign",
            UNREACHABLE,
            monkeypatch,
            when=lambda *a, **k: bool(rig.dialer.in_flight),
        )
    elif step == "the agent's call context":
        raised = fail_once(
            rig.redis,
            "set",
            REDIS_GONE,
            monkeypatch,
            when=lambda name, *a, **k: str(name).startswith(call_key("")),
        )
    else:
        raised = fail_once(rig.store, "mark_dialing", UNREACHABLE, monkeypatch)
    campaign_id = await run_campaign(rig, {phone: Callee("reject", 0.1)})
    await completed(rig, campaign_id)

    assert raised == [1]
    [contact] = await rig.store.contacts(campaign_id)
    # The failed claim cost nothing: one attempt, one call, ended as the callee said.
    assert (contact.outcome, contact.attempts) == ("rejected", 1)
    assert rig.switch.callees[phone].dialled == 1
    assert await nothing_left_behind(rig, campaign_id) == {phone: 1}


@pytest.mark.parametrize("step", ["freeing the number", "writing the sheet row"])
async def test_a_redis_error_after_an_attempt_is_stored_leaks_no_lock_and_no_row(
    rig: Rig, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    phone = number()
    if step == "freeing the number":
        # The first attempt's number lock: left held, the retry would wait for it to lapse.
        raised = fail_once(rig.dialer.live, "release_number", REDIS_GONE, monkeypatch)
    else:
        # The final attempt's row: left unwritten, the sheet would never hear of the contact.
        raised = fail_once(rig.redis, "xadd", REDIS_GONE, monkeypatch)
    campaign_id = await run_campaign(rig, {phone: Callee("busy", 0.1)})
    await completed(rig, campaign_id)

    assert raised == [1]
    [contact] = await rig.store.contacts(campaign_id)
    assert (contact.outcome, contact.attempts) == ("busy", 2)
    assert rig.switch.callees[phone].dialled == 2
    assert await nothing_left_behind(rig, campaign_id) == {phone: 1}


async def test_a_redis_error_reserving_the_slot_frees_the_number_at_once(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    phone = number()
    raised = fail_once(rig.dialer.live, "reserve_slot", REDIS_GONE, monkeypatch)
    campaign_id = await run_campaign(rig, {phone: Callee("reject", 0.1)})
    await completed(rig, campaign_id)

    assert raised == [1]
    [contact] = await rig.store.contacts(campaign_id)
    assert (contact.outcome, contact.attempts) == ("rejected", 1)
    assert rig.switch.callees[phone].dialled == 1
    assert await nothing_left_behind(rig, campaign_id) == {phone: 1}


async def test_the_outcome_reader_survives_an_error_applying_an_outcome(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    phone = number()
    # The first outcome read fails on something no dependency list names.
    raised = fail_once(rig.store, "attempt", RuntimeError("unexpected"), monkeypatch)
    campaign_id = await run_campaign(rig, {phone: Callee("answer", 0.1)})
    async with asyncio.timeout(20):
        while not (channels := [ch for ch in rig.switch.channels.values() if ch.answered]):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    [channel] = channels
    stamp = datetime.now(UTC)
    outcome = outcomes.CallOutcome(
        call_id=channel.uuid,
        direction="outbound",
        callee=phone,
        started_at=stamp,
        ended_at=stamp,
        duration_s=1,
        status="booked",
    )
    await rig.redis.xadd(rig.stream, outcomes.entry(outcome))  # type: ignore[arg-type]
    rig.switch.hangup(channel, "NORMAL_CLEARING", by="callee")
    await completed(rig, campaign_id)

    assert raised == [1]
    [contact] = await rig.store.contacts(campaign_id)
    # The outcome was applied after all: booked on the one call, not failed and retried.
    assert (contact.outcome, contact.attempts) == ("booked", 1)
    assert await nothing_left_behind(rig, campaign_id) == {phone: 1}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_database_refusing_connections_is_unavailable_not_an_error(
    database_url: str,
) -> None:
    parts = urlsplit(database_url)
    server = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    name = parts.path.lstrip("/")
    store = await Store.open(database_url)
    try:
        await store.migrate()
        postgres_provision.execute(server, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            # Its pooled connections are dropped, so the next query has to connect.
            postgres_provision.execute(
                server,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
            )
            for _ in range(2):  # the dropped connection, then a refused new one
                with pytest.raises(DependencyUnavailable):
                    await store.ping()
        finally:
            postgres_provision.execute(server, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await store.ping()  # and back once it is admitted again
    finally:
        await store.close()
