"""The bridge's TTS and policy clients against a real HTTP server: what they retry, and when.

A refused request (400, 413) is not sent again; a busy service (429, 503) is, after the
Retry-After it asked for; a Retry-After longer than a call can wait ends the retries.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from callkit.contracts import dialog
from callkit.errors import DependencyUnavailable, InvalidInput, PayloadTooLarge
from fs_bridge.clients import PolicyClient, TtsClient

Reply = tuple[int, dict[str, str], bytes]


@dataclass
class ScriptedServer:
    """An HTTP/1.1 server answering each request with the next scripted reply."""

    replies: list[Reply]
    arrivals: list[float] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.arrivals.append(time.monotonic())
        lines = head.decode("latin-1").split("\r\n")
        self.paths.append(lines[0].split(" ")[1])
        length = next(
            (
                int(v)
                for k, _, v in (h.partition(":") for h in lines[1:])
                if k.lower() == "content-length"
            ),
            0,
        )
        await reader.readexactly(length)
        status, headers, body = self.replies.pop(0)
        out = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
        out += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + body)
        await writer.drain()
        writer.close()


@pytest.fixture
async def server() -> AsyncIterator[tuple[ScriptedServer, str]]:
    scripted = ScriptedServer([])
    srv = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    async with srv:
        yield scripted, f"http://127.0.0.1:{port}"


async def _speak(url: str) -> bytes:
    async with httpx.AsyncClient() as http:
        return b"".join([c async for c in TtsClient(url, http).speak("Hello.")])


@pytest.mark.parametrize(("status", "error"), [(400, InvalidInput), (413, PayloadTooLarge)])
async def test_a_refused_sentence_is_not_sent_again(
    server: tuple[ScriptedServer, str], status: int, error: type[Exception]
) -> None:
    scripted, url = server
    scripted.replies = [(status, {}, b'{"error": "no"}'), (200, {}, b"\x01\x00" * 80)]
    with pytest.raises(error):
        await _speak(url)
    assert len(scripted.arrivals) == 1


async def test_a_busy_tts_gateway_is_asked_again_after_its_retry_after(
    server: tuple[ScriptedServer, str],
) -> None:
    scripted, url = server
    pcm = b"\x01\x00" * 80
    scripted.replies = [(429, {"Retry-After": "1"}, b""), (200, {}, pcm)]
    assert await _speak(url) == pcm
    first, second = scripted.arrivals
    assert 1.0 <= second - first < 1.5  # the asked second, not the client's own 0.2 s pause


async def test_a_retry_after_longer_than_a_call_can_wait_ends_the_retries(
    server: tuple[ScriptedServer, str],
) -> None:
    scripted, url = server
    scripted.replies = [(503, {"Retry-After": "120"}, b""), (200, {}, b"\x01\x00")]
    with pytest.raises(DependencyUnavailable):
        await _speak(url)
    assert len(scripted.arrivals) == 1


async def test_the_policy_engine_is_asked_again_after_a_429(
    server: tuple[ScriptedServer, str],
) -> None:
    scripted, url = server
    done = dialog.ReplyDone(session_id="call-1", state="greeting", slots={}, actions=[])
    sse = dialog.sse_frame(dialog.ReplySentence(text="Hello.")) + dialog.sse_frame(done)
    scripted.replies = [
        (429, {"Retry-After": "0"}, b""),
        (502, {}, b""),
        (200, {"Content-Type": "text/event-stream"}, sse),
    ]
    async with httpx.AsyncClient() as http:
        client = PolicyClient(url, http)
        replies = [r async for r in client.events("call-1", dialog.CallStarted(event_id="s"))]
    assert replies == [dialog.ReplySentence(text="Hello."), done]
    assert scripted.paths == ["/dialog"] * 3


async def test_a_refused_policy_event_is_dropped_without_a_retry(
    server: tuple[ScriptedServer, str],
) -> None:
    scripted, url = server
    scripted.replies = [(422, {}, b'{"detail": "bad"}'), (200, {}, b"")]
    async with httpx.AsyncClient() as http:
        client = PolicyClient(url, http)
        replies = [r async for r in client.events("call-1", dialog.CallStarted(event_id="s"))]
    assert replies == []
    assert len(scripted.arrivals) == 1
