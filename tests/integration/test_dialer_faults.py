"""One failed call to the database or Redis, at the worst moment of a call's life.

The dialer runs against callsim's Event Socket, real Redis and both databases, as in
test_dialer_dialing.py; one of its store or Redis calls fails once, where an outage would make
it fail. The contact must still end as its callee dictates, dialled as often as its attempts
say, with one sheet row, and nothing the attempt held (a call slot, the number's lock) left
behind, without waiting for a lease or a lock to lapse.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from dialer_harness import (
    ALWAYS,
    Rig,
    add_campaign,
    dialog_outcome,
    engine_config,
    nothing_live,
    number,
    running_dialer,
    sheet_rows,
)
from dialer_harness import (
    completed as harness_completed,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from callkit import postgres_provision
from callkit.contracts.campaign import call_key
from callkit.errors import DependencyUnavailable
from callsim.switch import Callee
from dialer.live import number_key
from dialer.spec import CampaignSpec, RetryPolicy
from dialer.store import Store


@pytest.fixture
async def rig(
    database_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> AsyncIterator[Rig]:
    config = engine_config(
        "faults-replica",
        key_prefix,
        # Longer than any test waits: a contact that only a lapsed lease, an expired lock
        # or a lost outcome's timeout would free makes the test fail, not pass late.
        lease_s=60,
        max_call_s=120,
        outcome_wait_s=120,
    )
    async with running_dialer(
        hostname="dialer-faults",
        password="dialer-faults",
        config=config,
        database_url=database_url,
        redis_url=redis_url,
        recordings=tmp_path,
    ) as rig:
        yield rig


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
    rig.switch.callees.update(callees)
    spec = CampaignSpec(
        name="faults",
        windows=ALWAYS,
        concurrency=2,
        calls_per_second=20,
        retry=RetryPolicy(max_attempts=max_attempts, busy_after_min=0.01),
    )
    return await add_campaign(rig.store, list(callees), spec)


async def nothing_left_behind(rig: Rig, campaign_id: str) -> dict[str, int]:
    """No call in flight, no slot, no number lock; the sheet rows per number."""
    await nothing_live(rig, campaign_id)
    assert not rig.dialer.leftovers
    contacts = await rig.store.contacts(campaign_id)
    assert not await rig.redis.exists(*(number_key(c.phone) for c in contacts))
    rows: dict[str, int] = {}
    for row in await sheet_rows(rig.redis, rig.stream):
        rows[str(row.callee)] = rows.get(str(row.callee), 0) + 1
    return rows


async def completed(rig: Rig, campaign_id: str) -> None:
    await harness_completed(rig, campaign_id, wait_s=25)


async def ends_as_its_callee_says(
    rig: Rig, raised: list[int], callee: Callee, outcome: str, *, attempts: int
) -> None:
    """A campaign of one contact runs through the one failure to its end: the contact ends
    with its callee's outcome, dialled once per attempt, with one sheet row and nothing left
    behind."""
    phone = number()
    campaign_id = await run_campaign(rig, {phone: callee})
    await completed(rig, campaign_id)

    assert raised == [1]
    [contact] = await rig.store.contacts(campaign_id)
    assert (contact.outcome, contact.attempts) == (outcome, attempts)
    assert rig.switch.callees[phone].dialled == attempts
    assert await nothing_left_behind(rig, campaign_id) == {phone: 1}


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
    # The failed claim cost nothing: one attempt, one call, ended as the callee said.
    await ends_as_its_callee_says(rig, raised, Callee("reject", 0.1), "rejected", attempts=1)


@pytest.mark.parametrize("step", ["freeing the number", "writing the sheet row"])
async def test_a_redis_error_after_an_attempt_is_stored_leaks_no_lock_and_no_row(
    rig: Rig, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if step == "freeing the number":
        # The first attempt's number lock: left held, the retry would wait for it to lapse.
        raised = fail_once(rig.dialer.live, "release_number", REDIS_GONE, monkeypatch)
    else:
        # The final attempt's row: left unwritten, the sheet would never hear of the contact.
        raised = fail_once(rig.redis, "xadd", REDIS_GONE, monkeypatch)
    await ends_as_its_callee_says(rig, raised, Callee("busy", 0.1), "busy", attempts=2)


async def test_a_redis_error_reserving_the_slot_frees_the_number_at_once(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    raised = fail_once(rig.dialer.live, "reserve_slot", REDIS_GONE, monkeypatch)
    await ends_as_its_callee_says(rig, raised, Callee("reject", 0.1), "rejected", attempts=1)


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
    await rig.redis.xadd(rig.stream, dialog_outcome(channel.uuid, "booked", phone))  # type: ignore[arg-type]
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
