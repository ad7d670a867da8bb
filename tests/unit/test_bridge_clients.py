"""The bridge's clients speak POST /dialog and POST /synthesize through the shared contracts."""

from __future__ import annotations

import json

import httpx

from callkit.contracts import dialog
from callkit.contracts.outcome import CallLatency
from callkit.contracts.tts import SynthesizeRequest
from fs_bridge.clients import PolicyClient, TtsClient


def _stream(*frames: bytes) -> bytes:
    return b"".join(frames)


async def test_the_reply_stream_arrives_as_models_and_unreadable_events_are_skipped() -> None:
    seen: list[dict[str, object]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        body = _stream(
            dialog.sse_frame(dialog.ReplySentence(text="Goodbye.")),
            b'event: reply.sentence\ndata: {"cache_key": "no text"}\n\n',
            dialog.sse_frame(
                dialog.ReplyDone(
                    session_id="call-1",
                    state="farewell",
                    slots={},
                    actions=[dialog.HangupAction()],
                    status="booked",
                    ended=True,
                )
            ),
        )
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = PolicyClient("http://policy", http, attempts=1)
        ended = dialog.CallEnded(
            cause="NORMAL_CLEARING",
            event_id="call.ended",
            recording_path="recordings/call-1.wav",
            latency=CallLatency(v2v_ms=[810.0], barge_ins=1, barge_in_stop_ms=[700.0]),
        )
        replies = [r async for r in client.events("call-1", ended)]

    assert replies[0] == dialog.ReplySentence(text="Goodbye.")
    assert len(replies) == 2  # the sentence without text was not one the bridge can say
    done = replies[1]
    assert isinstance(done, dialog.ReplyDone)
    assert done.actions == [dialog.HangupAction()]
    # What the policy engine receives is a valid request carrying the call's figures.
    request = dialog.DialogRequest.model_validate(seen[0])
    assert isinstance(request.event, dialog.CallEnded)
    assert request.event.recording_path == "recordings/call-1.wav"
    assert request.event.latency == ended.latency


async def test_a_sentence_is_asked_for_at_the_call_rate_and_its_audio_streams_back() -> None:
    seen: list[SynthesizeRequest] = []
    audio = b"\x01\x00" * 1600

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/synthesize"
        seen.append(SynthesizeRequest.model_validate_json(request.content))
        return httpx.Response(
            200, content=audio, headers={"content-type": "audio/L16;rate=8000;channels=1"}
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = TtsClient("http://tts/", http, attempts=1)
        heard = b"".join([chunk async for chunk in client.speak("Good morning.", 8000)])
        russian = b"".join([chunk async for chunk in client.speak("Добрый день.", 8000, "ru")])

    assert heard == russian == audio
    assert seen == [
        SynthesizeRequest(text="Good morning.", sample_rate=8000, format="pcm_s16le"),
        # A Russian call asks for its own language's voice.
        SynthesizeRequest(text="Добрый день.", sample_rate=8000, format="pcm_s16le", language="ru"),
    ]
