"""The bridge's Event Socket client against the emulated FreeSWITCH: login, events, api and
bgapi, a refused password, and reconnecting after the switch goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from callkit.esl import Event
from callkit.redis_provision import free_port
from callsim.esl_server import EslServer
from callsim.switch import Switch
from fs_bridge.esl import EslClient


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 (polling what another task changes)
            await asyncio.sleep(0.02)


async def test_login_events_api_and_bgapi() -> None:
    switch = Switch()
    port = free_port()
    server = EslServer(switch, "s3cret", "127.0.0.1", port)
    await server.start()
    events: list[Event] = []
    client = EslClient("127.0.0.1", port, "s3cret", on_event=events.append)
    client.start()
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        ch = switch.create_channel(direction="inbound", caller="+1555", destination="100")
        switch.answer(ch)
        await _until(lambda: any(e.name == "CHANNEL_ANSWER" for e in events))
        assert not any(e.name == "CHANNEL_CREATE" for e in events)  # not subscribed
        assert (await client.api(f"uuid_exists {ch.uuid}")).strip() == "true"
        assert await client.api("uuid_break no-such-uuid") == "-ERR No such channel!\n"
        assert await client.bgapi(f"uuid_kill {ch.uuid}") == "+OK\n"
        await _until(lambda: any(e.name == "CHANNEL_HANGUP_COMPLETE" for e in events))
        hangup = next(e for e in events if e.name == "CHANNEL_HANGUP_COMPLETE")
        assert hangup.get("Hangup-Cause") == "NORMAL_CLEARING"
    finally:
        await client.close()
        await server.close()


async def test_a_wrong_password_never_connects_and_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    switch = Switch()
    port = free_port()
    server = EslServer(switch, "right", "127.0.0.1", port)
    await server.start()
    client = EslClient("127.0.0.1", port, "wrong-password-value", on_event=lambda e: None)
    client.start()
    try:
        await asyncio.sleep(1.0)
        assert not client.connected.is_set()
        reasons = [getattr(r, "reason", "") for r in caplog.records]
        assert any("refused the password (BRIDGE_ESL_PASSWORD)" in r for r in reasons)
        assert "wrong-password-value" not in caplog.text + " ".join(reasons)
    finally:
        await client.close()
        await server.close()


async def test_it_reconnects_when_the_switch_comes_back() -> None:
    port = free_port()
    switch = Switch()
    server = EslServer(switch, "pw", "127.0.0.1", port)
    await server.start()
    reconnected = asyncio.Event()

    async def on_connect() -> None:
        if client.connects >= 2:
            reconnected.set()

    client = EslClient("127.0.0.1", port, "pw", on_event=lambda e: None, on_connect=on_connect)
    client.start()
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        await server.close()  # FreeSWITCH restarts
        await _until(lambda: not client.connected.is_set())
        server = EslServer(switch, "pw", "127.0.0.1", port)
        await server.start()
        await asyncio.wait_for(reconnected.wait(), 15)
        assert (await client.api("create_uuid")).count("-") == 4
    finally:
        await client.close()
        await server.close()
