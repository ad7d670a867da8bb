"""Two dialer replicas on one PostgreSQL and one Redis; one is killed with SIGKILL mid-campaign.

The replicas are real processes (`python -m dialer`) against callsim's Event Socket in this
process. Every contact must still be finished, dialled exactly as often as its attempts say,
never twice at once, and an answered call of the killed replica must be found again on the
switch and finished with its dialog's outcome instead of being dialled again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import httpx
import pytest
import redis.asyncio as aioredis
from dialer_harness import (
    ALWAYS,
    Watch,
    add_campaign,
    dialog_outcome,
    number,
    open_store,
    serving_switch,
)

import devstack
from callkit.redis_provision import free_port
from callsim.switch import Callee, Switch
from dialer.core.states import CampaignState
from dialer.spec import CampaignSpec, RetryPolicy

PASSWORD = "replica-test"


@pytest.fixture
async def switch(tmp_path: Path) -> AsyncIterator[tuple[Switch, int]]:
    async with serving_switch("replica-test", PASSWORD, tmp_path) as (sw, server):
        yield sw, server.port


def replica(
    name: str, database_url: str, redis_url: str, esl_port: int, prefix: str, log: TextIO
) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DIALER_PORT": str(port),
        "DIALER_DATABASE_URL": database_url,
        "DIALER_API_TOKEN": "replica-test-token-0123",
        "DIALER_ESL_PORT": str(esl_port),
        "DIALER_ESL_PASSWORD": PASSWORD,
        "DIALER_REPLICA": name,
        "DIALER_TICK_S": "0.2",
        "DIALER_LEASE_S": "5",
        "DIALER_COMPLETED_STREAM": f"{prefix}calls:completed",
        "DIALER_GROUP": f"{prefix}dialer",
    }
    proc = devstack.launch("dialer", env=env, output=log)
    return proc, port


async def ready(port: int, proc: subprocess.Popen[str]) -> None:
    async with httpx.AsyncClient() as client, asyncio.timeout(30):
        while True:
            assert proc.poll() is None, "the replica exited"
            try:
                if (await client.get(f"http://127.0.0.1:{port}/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_replica_killed_mid_campaign_loses_nothing_and_dials_nobody_twice(
    database_url: str,
    redis_url: str,
    key_prefix: str,
    switch: tuple[Switch, int],
    tmp_path: Path,
) -> None:
    sw, esl_port = switch
    watch = Watch()
    sw.listeners.append(watch)
    busy = [number() for _ in range(8)]
    answering = [number() for _ in range(4)]
    for phone in busy:
        sw.callees[phone] = Callee("busy", 1.0)
    for phone in answering:
        # Rings longer than a lease: still ringing when the survivor takes the contact over,
        # so only asking the switch keeps it from dialling the person a second time.
        sw.callees[phone] = Callee("answer", 9.0)
    store = await open_store(database_url)
    spec = CampaignSpec(
        name="replicas",
        windows=ALWAYS,
        concurrency=6,
        calls_per_second=20,
        retry=RetryPolicy(max_attempts=2, busy_after_min=0.02, failed_after_min=0.02),
    )
    campaign_id = await add_campaign(store, busy + answering, spec, start=False)

    logs = contextlib.ExitStack()
    a_log = logs.enter_context((tmp_path / "a.log").open("w"))
    b_log = logs.enter_context((tmp_path / "b.log").open("w"))
    a, a_port = replica("a", database_url, redis_url, esl_port, key_prefix, a_log)
    b: subprocess.Popen[str] | None = None
    redis = aioredis.Redis.from_url(redis_url)
    try:
        await ready(a_port, a)
        await store.transition(campaign_id, CampaignState.RUNNING, now=datetime.now(UTC))

        # Replica a dials alone until calls of its own ring at people who will answer; then
        # replica b joins, and a is killed while both run.
        async with asyncio.timeout(20):
            while True:
                ringing = [
                    c
                    for c in await store.contacts(campaign_id, limit=50)
                    if c.lease_owner == "a" and c.phone in answering and watch.live.get(c.phone)
                ]
                if ringing:
                    break
                await asyncio.sleep(0.05)
        b, b_port = replica("b", database_url, redis_url, esl_port, key_prefix, b_log)
        await ready(b_port, b)
        a.send_signal(signal.SIGKILL)
        a.wait(5)

        # The dialog ends each answered call with its outcome, a few seconds later.
        answered_done: set[str] = set()
        async with asyncio.timeout(60):
            while (record := await store.campaign(campaign_id)) is not None and (
                record.state != CampaignState.COMPLETED
            ):
                for ch in list(sw.channels.values()):
                    dialled = watch.numbers.get(ch.uuid)
                    if ch.answered and dialled in answering and dialled not in answered_done:
                        answered_done.add(dialled)
                        entry = dialog_outcome(ch.uuid, "booked")
                        await redis.xadd(f"{key_prefix}calls:completed", entry)  # type: ignore[arg-type]
                        sw.hangup(ch, "NORMAL_CLEARING", by="callee")
                await asyncio.sleep(0.2)
        assert b.poll() is None
        contacts = {c.phone: c for c in await store.contacts(campaign_id, limit=50)}
        assert all(c.state == "done" for c in contacts.values()), contacts
        for phone, contact in contacts.items():
            # Dialled exactly as often as its attempts say, and never two calls at once.
            assert watch.originated.get(phone, 0) == contact.attempts, phone
            assert watch.most.get(phone, 0) == 1, phone
        for phone in answering:
            # Answered once, found again by the survivor when its replica died: never redialled.
            assert contacts[phone].outcome == "booked"
            assert contacts[phone].attempts == 1
        for phone in busy:
            assert contacts[phone].outcome in ("busy", "failed")
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(15)
        logs.close()
        await redis.aclose()
        await store.close()
