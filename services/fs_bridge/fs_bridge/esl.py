"""The bridge's Event Socket: the shared asyncio client (:mod:`callkit.esl_client`) with the
bridge's subscription, and the seam tests replace.

The bridge hears answers, hang-ups, DTMF, playback and the audio fork's own events; its password
comes from ``BRIDGE_ESL_PASSWORD``. Connection, reconnect, ``api``/``bgapi`` and staying in step
with late replies are the shared client's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from callkit import esl_client
from callkit.esl_client import EventHandler

__all__ = [
    "EVENTS",
    "EslClient",
    "EventHandler",
    "EventSocket",
    "EventSocketFactory",
    "connect_event_socket",
]

EVENTS = (
    "CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE DTMF PLAYBACK_START PLAYBACK_STOP "
    "BACKGROUND_JOB CUSTOM avmd::beep mod_audio_fork::connect mod_audio_fork::connect_failed "
    "mod_audio_fork::disconnect mod_audio_fork::play_audio mod_audio_fork::kill_audio"
)


class EslClient(esl_client.EslClient):
    """The shared client, subscribed to the bridge's events."""

    def __init__(
        self,
        host: str,
        port: int,
        password: str,
        *,
        on_event: EventHandler,
        on_connect: Callable[[], Coroutine[Any, Any, None]] | None = None,
        connect_timeout_s: float = 5.0,
        reply_timeout_s: float = 10.0,
        max_backoff_s: float = 10.0,
    ) -> None:
        super().__init__(
            host,
            port,
            password,
            events=EVENTS,
            on_event=on_event,
            on_connect=on_connect,
            password_setting="BRIDGE_ESL_PASSWORD",
            connect_timeout_s=connect_timeout_s,
            reply_timeout_s=reply_timeout_s,
            max_backoff_s=max_backoff_s,
        )


class EventSocket(Protocol):
    """What the bridge needs of FreeSWITCH's Event Socket (``EslClient`` is the real one)."""

    connected: asyncio.Event

    def start(self) -> None: ...

    async def close(self) -> None: ...

    async def api(self, command: str) -> str: ...

    async def bgapi(self, command: str, timeout_s: float = 60.0) -> str: ...

    async def sendmsg_playback(self, call_uuid: str, path: str) -> None: ...


#: Builds the Event Socket from the host, port and password, with the bridge's two callbacks.
EventSocketFactory = Callable[
    [str, int, str, EventHandler, Callable[[], Coroutine[Any, Any, None]]], EventSocket
]


def connect_event_socket(
    host: str,
    port: int,
    password: str,
    on_event: EventHandler,
    on_connect: Callable[[], Coroutine[Any, Any, None]],
) -> EventSocket:
    return EslClient(host, port, password, on_event=on_event, on_connect=on_connect)
