"""The bridge's ASR stream across a lost gateway connection, on a real WebSocket server: the
next session gets what the lost one never turned into words, then what was said meanwhile."""

from __future__ import annotations

import asyncio

from websockets.asyncio.server import ServerConnection, serve

from callkit.contracts.asr import ServerEvent, TranscriptFinal
from fs_bridge.clients import AsrStream


async def test_a_new_session_hears_what_the_lost_one_had_not_finalized() -> None:
    sessions: list[list[bytes]] = []
    got: asyncio.Queue[bytes] = asyncio.Queue()
    timing = {"start_ms": 0, "end_ms": 900, "confidence": 0.9, "language": "en"}
    final = TranscriptFinal.model_validate(
        {"segment_id": 0, "text": "Laura.", "raw_text": "laura"} | timing
    )

    async def gateway(ws: ServerConnection) -> None:
        await ws.recv()  # session.start
        audio: list[bytes] = []
        sessions.append(audio)
        async for message in ws:
            assert isinstance(message, bytes)
            audio.append(message)
            await got.put(message)
            if len(sessions) == 1 and message == b"named":
                await ws.send(final.model_dump_json())  # the words up to here are heard
            if len(sessions) == 1 and message == b"knee-2":
                ws.transport.abort()  # the gateway dies mid-sentence
                return

    heard: list[ServerEvent] = []
    finalized = asyncio.Event()

    async def on_event(event: ServerEvent) -> None:
        heard.append(event)
        finalized.set()

    async with serve(gateway, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        audio: asyncio.Queue[bytes] = asyncio.Queue()
        stream = AsrStream(f"ws://127.0.0.1:{port}/", "call-1", "en", audio, on_event)
        task = asyncio.create_task(stream.run())
        try:
            for chunk in (b"my-name", b"named"):
                await audio.put(chunk)
                assert await asyncio.wait_for(got.get(), 5) == chunk
            await asyncio.wait_for(finalized.wait(), 5)
            for chunk in (b"knee-1", b"knee-2"):
                await audio.put(chunk)
                assert await asyncio.wait_for(got.get(), 5) == chunk
            await audio.put(b"knee-3")  # said while no gateway answered
            while len(sessions) < 2 or len(sessions[1]) < 3:
                await asyncio.wait_for(got.get(), 10)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert heard == [final]
    assert sessions[0] == [b"my-name", b"named", b"knee-1", b"knee-2"]
    # The finalized words are not sent again; the unfinished sentence is, whole, and in order.
    assert sessions[1] == [b"knee-1", b"knee-2", b"knee-3"]
    assert stream.reconnects == 1
