"""The dialer holds its pacing while the agent is full: against callsim's Event Socket, real Redis
and both databases, with the bridges' load keys (``bridge:{replica}:load``) written as a bridge
writes them."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from test_dialer_dialing import ALWAYS, Rig, number, rig  # noqa: F401  (rig: the fixture)

from callsim.switch import Callee
from dialer.core.states import CampaignState, ContactState
from dialer.spec import CampaignSpec, ContactRow


def dialled(callees: dict[str, Callee]) -> int:
    return sum(callee.dialled for callee in callees.values())


async def until_dialled(callees: dict[str, Callee], count: int, wait_s: float = 10) -> None:
    async with asyncio.timeout(wait_s):
        while dialled(callees) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_nothing_is_dialled_while_every_bridge_is_full_and_no_more_than_its_free_places(
    rig: Rig,  # noqa: F811
    key_prefix: str,
) -> None:
    rig.dialer.config.bridge_loads = f"{key_prefix}bridge:*:load"  # this test's bridges only
    one, two = f"{key_prefix}bridge:one:load", f"{key_prefix}bridge:two:load"
    await rig.redis.set(one, json.dumps({"active": 2, "max": 2}), ex=60)
    await rig.redis.set(two, json.dumps({"active": 3, "max": 1}), ex=60)  # over: frees nothing
    callees = {number(): Callee("answer", ring_s=6.0) for _ in range(3)}
    rig.switch.callees.update(callees)
    now = datetime.now(UTC)
    spec = CampaignSpec(name="capacity", windows=ALWAYS, concurrency=3, calls_per_second=20)
    campaign_id = await rig.store.create_campaign(spec, now=now)
    rows = [ContactRow(row=i + 2, phone=phone) for i, phone in enumerate(callees)]
    await rig.store.add_contacts(campaign_id, rows, now=now)
    await rig.store.transition(campaign_id, CampaignState.RUNNING, now=now)

    await asyncio.sleep(1.0)  # ten ticks of the loop
    assert dialled(callees) == 0
    contacts = await rig.store.contacts(campaign_id)
    assert {(c.state, c.attempts) for c in contacts} == {
        (ContactState.PENDING, 0)
    }  # nothing claimed

    # One place frees: one call, and no second while it rings (no bridge counts it yet).
    await rig.redis.set(one, json.dumps({"active": 1, "max": 2}), ex=60)
    await until_dialled(callees, 1)
    await asyncio.sleep(1.0)
    assert dialled(callees) == 1

    # No bridge reports at all: the dialer dials as it would without one, up to the campaign's
    # concurrency.
    await rig.redis.delete(one, two)
    await until_dialled(callees, 3)
    assert dialled(callees) == 3
