"""The ASR gateway served for real: Silero VAD, faster-whisper, many sessions, bad input, OpenAI."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import openai
import pytest
import websockets
from serving import serving_in_thread

from asr_gateway.app import create_app
from asr_gateway.engines import FasterWhisperEngine
from asr_gateway.settings import AsrSettings
from callkit.audio import PcmFrame, resample, ulaw_decode, ulaw_encode, write_wav
from callkit.models import ModelStore, Registry
from tts_gateway.engines import CancelToken, PiperEngine
from tts_gateway.text import normalizer_for

# No comma in either: Piper pauses 250-380 ms at one, which the turn model rightly may take for
# an end of turn ("Hi."); these tests count two turns (the turn model: test_asr_turn.py).
FIRST = "My name is John Smith."
SECOND = "My knee has hurt for two weeks."
LEAD_S, GAP_S = 0.5, 1.0


@pytest.fixture(scope="module")
def piper() -> PiperEngine:
    return PiperEngine.from_registry(
        ModelStore(Registry.load()), "piper-en_US-joe-medium", threads=2
    )


@pytest.fixture(scope="module")
def speech(piper: PiperEngine) -> dict[str, Any]:
    """Two utterances spoken by Piper at 16 kHz, with silence around them; boundaries known."""
    norm = normalizer_for("en")

    def say(text: str) -> bytes:
        s = piper.synthesize(norm.normalize(text), speed=1.0, cancel=CancelToken())
        return resample(s.audio.tobytes(), s.sample_rate, 16000)

    one, two = say(FIRST), say(SECOND)
    silence = lambda s: bytes(int(16000 * s) * 2)  # noqa: E731
    audio = silence(LEAD_S) + one + silence(GAP_S) + two + silence(GAP_S)
    first_end_ms = int(1000 * (LEAD_S + len(one) / 32000))
    return {
        "audio": audio,
        "swapped": silence(LEAD_S) + two + silence(GAP_S) + one + silence(GAP_S),
        "one": one,
        "two": two,
        "first_end_ms": first_end_ms,
        "second_start_ms": first_end_ms + int(GAP_S * 1000),
    }


def start_gateway(port: int, **overrides: Any) -> Any:
    settings = AsrSettings.load(model="whisper-tiny.en", **overrides)
    return serving_in_thread(create_app(settings), port)


@pytest.fixture
def gateway(free_port: int) -> Iterator[str]:
    with start_gateway(free_port) as url:
        yield url.replace("http", "ws") + "/ws/transcribe"


async def stream(
    url: str,
    audio: bytes,
    *,
    rate: int = 16000,
    chunk_ms: int = 20,
    speedup: float = 4.0,
    start: dict[str, Any] | None = None,
    close: bool = True,
) -> list[dict[str, Any]]:
    """Send a session.start, the audio in chunks (faster than real time), session.close; collect events."""
    events: list[dict[str, Any]] = []
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "session.start", "sample_rate": rate, **(start or {})}))
        events.append(json.loads(await ws.recv()))
        step = rate * chunk_ms // 1000 * 2

        async def reader() -> None:
            async for message in ws:
                events.append(json.loads(message))

        task = asyncio.create_task(reader())
        for i in range(0, len(audio), step):
            await ws.send(audio[i : i + step])
            await asyncio.sleep(chunk_ms / 1000 / speedup)
        if close:
            await ws.send(json.dumps({"type": "session.close"}))
        await asyncio.wait_for(task, 60)
    return events


def of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


async def test_two_utterances_give_ordered_events_and_finals(
    free_port: int, speech: dict[str, Any]
) -> None:
    # This test is about the order and times of the events of two utterances, so it ends them
    # on the fixed silence (the turn model ends a complete sentence sooner: test_asr_turn.py).
    with start_gateway(free_port, turn_detection=False) as url:
        url = url.replace("http", "ws") + "/ws/transcribe"
        events = await stream(url, speech["audio"], speedup=1.0)  # real time, as a call sends it
    kinds = [e["type"] for e in events]
    assert kinds[0] == "session.created"
    assert kinds[-1] == "session.closed"
    finals = of(events, "transcript.final")
    assert [f["segment_id"] for f in finals] == [1, 2]
    assert "john smith" in finals[0]["text"].lower()
    assert "knee" in finals[1]["text"].lower()
    assert "two weeks" in finals[1]["raw_text"].lower() or "2 weeks" in finals[1]["text"].lower()
    # Audio-timeline times match where the speech really is.
    assert abs(finals[0]["start_ms"] - LEAD_S * 1000) < 250
    assert abs(finals[0]["end_ms"] - speech["first_end_ms"]) < 350
    assert abs(finals[1]["start_ms"] - speech["second_start_ms"]) < 250
    # Per utterance: speech_start, then partials, then speech_end, then its final.
    for seg in (1, 2):
        start = next(
            i
            for i, e in enumerate(events)
            if e["type"] == "vad.speech_start" and abs(e["t_ms"] - finals[seg - 1]["start_ms"]) < 5
        )
        end = next(
            i
            for i, e in enumerate(events)
            if e["type"] == "vad.speech_end" and e["t_ms"] == finals[seg - 1]["end_ms"]
        )
        final = events.index(finals[seg - 1])
        assert start < end < final
        partials = [
            i
            for i, e in enumerate(events)
            if e["type"] == "transcript.partial" and e["segment_id"] == seg
        ]
        assert partials, "no partial for a 2-second utterance"
        assert all(start < i < final for i in partials)
        for i in partials:
            assert events[i]["text"].startswith(events[i]["stable_text"])


async def test_telephone_audio_at_8khz_through_g711(gateway: str, speech: dict[str, Any]) -> None:
    line = ulaw_decode(ulaw_encode(resample(speech["audio"], 16000, 8000)))
    events = await stream(gateway, line, rate=8000)
    finals = of(events, "transcript.final")
    assert len(finals) == 2
    assert "smith" in finals[0]["text"].lower()
    assert "knee" in finals[1]["text"].lower()


async def test_input_commit_forces_a_final_without_waiting_for_silence(
    gateway: str, speech: dict[str, Any]
) -> None:
    async with websockets.connect(gateway) as ws:
        await ws.send(json.dumps({"type": "session.start", "sample_rate": 16000}))
        await ws.recv()
        audio = bytes(8000) + speech["one"]  # speech up to the very end, no trailing silence
        for i in range(0, len(audio), 640):
            await ws.send(audio[i : i + 640])
        await ws.send(json.dumps({"type": "input.commit"}))
        deadline = time.monotonic() + 30
        while True:
            event = json.loads(
                await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic()))
            )
            if event["type"] == "transcript.final":
                break
        assert "smith" in event["text"].lower()


async def test_silence_and_noise_produce_no_transcript(gateway: str) -> None:
    rng = np.random.default_rng(7)
    noise = (rng.standard_normal(16000 * 4) * 40).astype("<i2").tobytes()  # faint line hiss
    events = await stream(gateway, noise)
    assert of(events, "transcript.final") == []
    assert of(events, "vad.speech_start") == []


async def test_bad_input_gets_errors_and_the_session_goes_on(
    gateway: str, speech: dict[str, Any]
) -> None:
    async with websockets.connect(gateway) as ws:
        await ws.send(json.dumps({"type": "session.start", "sample_rate": 16000}))
        await ws.recv()
        await ws.send(b"\x00\x01\x02")  # odd length
        assert json.loads(await ws.recv())["code"] == "odd_frame"
        await ws.send(bytes(70_000))  # over 64 KiB
        assert json.loads(await ws.recv())["code"] == "payload_too_large"
        await ws.send("{not json")
        error = json.loads(await ws.recv())
        assert (error["code"], error["recoverable"]) == ("invalid_json", True)
        await ws.send(json.dumps({"type": "session.dance"}))
        assert (
            "expected one of: input.commit, session.close, session.configure"
            in json.loads(await ws.recv())["message"]
        )
        # ...and it still transcribes.
        audio = speech["one"] + bytes(32000)
        for i in range(0, len(audio), 640):
            await ws.send(audio[i : i + 640])
        while (event := json.loads(await asyncio.wait_for(ws.recv(), 30)))[
            "type"
        ] != "transcript.final":
            pass
        assert "smith" in event["text"].lower()


@pytest.mark.parametrize(
    ("first", "code"),
    [
        (b"\x00\x00" * 160, "expected_session_start"),
        ('{"type": "session.start", "sample_rate": 44100}', "invalid_event"),
        ('{"type": "input.commit"}', "unknown_event_type"),
    ],
)
async def test_a_session_must_start_with_a_valid_session_start(
    gateway: str, first: bytes | str, code: str
) -> None:
    async with websockets.connect(gateway) as ws:
        await ws.send(first)
        error = json.loads(await ws.recv())
        assert error["type"] == "error"
        assert error["code"] == code
        assert error["recoverable"] is False
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)


async def test_sessions_over_the_limit_are_refused_recoverably(free_port: int) -> None:
    with start_gateway(free_port, max_sessions=1) as url:
        ws_url = url.replace("http", "ws") + "/ws/transcribe"
        async with websockets.connect(ws_url) as first:
            await first.send(json.dumps({"type": "session.start"}))
            assert json.loads(await first.recv())["type"] == "session.created"
            async with websockets.connect(ws_url) as second:
                error = json.loads(await second.recv())
                assert (error["code"], error["recoverable"]) == ("too_many_sessions", True)
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await second.recv()
                assert closed.value.rcvd.code == 1013


async def test_concurrent_sessions_share_the_model(gateway: str, speech: dict[str, Any]) -> None:
    # Real time, as calls send it: at 4x the turn model's verdict on the 1 s gap can come after
    # the second sentence has begun (on 2 busy cores), and the two sentences are one turn.
    results = await asyncio.gather(
        *(stream(gateway, speech["audio"], speedup=1.0) for _ in range(3))
    )
    for events in results:
        finals = of(events, "transcript.final")
        assert len(finals) == 2
        assert "knee" in finals[1]["text"].lower()


def test_a_batch_transcribes_each_clip_as_one_at_a_time_does(speech: dict[str, Any]) -> None:
    engine = FasterWhisperEngine(ModelStore(Registry.load()), "whisper-tiny.en", device="cpu")
    clips = [
        np.frombuffer(speech[k], "<i2").astype(np.float32) / 32768 for k in ("one", "two", "one")
    ]
    batch = engine.transcribe_batch(clips, language="en", hotwords=["Smith"])
    alone = [engine.transcribe(c, language="en", hotwords=["Smith"]) for c in clips]
    assert [b.text for b in batch] == [a.text for a in alone]
    assert "john smith" in batch[0].text.lower()
    assert "knee" in batch[1].text.lower()
    for result in batch:
        (segment,) = result.segments
        assert segment.no_speech_prob < 0.3
        assert segment.avg_logprob > -1.0


async def test_sessions_share_one_pass_of_the_model_and_keep_their_own_words(
    free_port: int, speech: dict[str, Any]
) -> None:
    # Faster than real time, so that the sessions' utterances end together and share passes;
    # the fixed silence ends them (at 4x the turn model's verdict on the 1 s gap can come after
    # the next sentence began, on 2 busy cores).
    with start_gateway(free_port, max_batch=4, turn_detection=False) as url:
        ws_url = url.replace("http", "ws") + "/ws/transcribe"
        runs = await asyncio.gather(
            stream(ws_url, speech["audio"]),
            stream(ws_url, speech["swapped"]),
            stream(ws_url, speech["audio"]),
        )
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(url + "/metrics")).text
    for events, first, second in zip(
        runs, ("john", "knee", "john"), ("knee", "john", "knee"), strict=True
    ):
        finals = [f["text"].lower() for f in of(events, "transcript.final")]
        assert len(finals) == 2, finals
        assert first in finals[0], finals
        assert second in finals[1], finals
    passes = float(metrics.split("asr_batch_size_count ")[1].split()[0])
    jobs = float(metrics.split("asr_batch_size_sum ")[1].split()[0])
    assert jobs > passes  # some passes carried more than one session's audio


def test_openai_client_transcribes_a_file(free_port: int, speech: dict[str, Any], tmp_path) -> None:
    path = tmp_path / "call.wav"
    write_wav(path, PcmFrame(speech["audio"], 16000))
    with start_gateway(free_port) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        with path.open("rb") as f:
            plain = client.audio.transcriptions.create(model="whisper-1", file=f)
        assert "knee" in plain.text.lower()
        with path.open("rb") as f:
            verbose = client.audio.transcriptions.create(
                model="whisper-1", file=f, response_format="verbose_json"
            )
        assert verbose.language == "en"
        assert verbose.duration == pytest.approx(len(speech["audio"]) / 32000, rel=0.01)
        assert verbose.segments
        assert verbose.segments[0].start < 1.5
        with path.open("rb") as f:
            srt = client.audio.transcriptions.create(
                model="whisper-1", file=f, response_format="srt"
            )
        assert "00:00:0" in srt
        assert " --> " in srt
        with path.open("rb") as f:
            vtt = client.audio.transcriptions.create(
                model="whisper-1", file=f, response_format="vtt"
            )
        assert vtt.startswith("WEBVTT")
        bad = httpx.post(
            f"{url}/v1/audio/transcriptions",
            files={"file": ("x.wav", io.BytesIO(b"not audio"))},
            data={"model": "whisper-1"},
        )
        assert bad.status_code == 415
        assert "could not decode" in bad.json()["error"]["message"]


# ---------------------------------------------------------------- encoder windows

SHORT_ANSWERS = ["No.", "Yes.", "Okay.", "Seven.", "Thank you."]


def as_final(pcm: bytes) -> np.ndarray:
    """A clip as the gateway hands a final to the model: 0.9 s before, 0.95 s after."""
    audio = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
    return np.concatenate([np.zeros(14400, np.float32), audio, np.zeros(15200, np.float32)])


def spoken_words(text: str) -> list[str]:
    return "".join(c if c.isalnum() else " " for c in text.lower()).split()


@pytest.fixture(scope="module")
def engines() -> dict[str, FasterWhisperEngine]:
    store = ModelStore(Registry.load())
    return {
        "full": FasterWhisperEngine(store, "whisper-tiny.en", device="cpu", window_s=30),
        "fitted": FasterWhisperEngine(store, "whisper-tiny.en", device="cpu", window_s=15),
        # Shorter than anyone would configure: Whisper loops on short answers here.
        "tight": FasterWhisperEngine(store, "whisper-tiny.en", device="cpu", window_s=1),
    }


@pytest.mark.parametrize("timestamps", [False, True])
def test_a_fitted_window_hears_what_the_full_window_hears(
    engines: dict[str, FasterWhisperEngine], speech: dict[str, Any], timestamps: bool
) -> None:
    for key, expected in (("one", "john smith"), ("two", "knee")):
        clip = as_final(speech[key])
        full = engines["full"].transcribe(
            clip, language="en", hotwords=[], with_timestamps=timestamps
        )
        fitted = engines["fitted"].transcribe(
            clip, language="en", hotwords=[], with_timestamps=timestamps
        )
        assert fitted.window_s == 15.0  # the encoder read half the window
        assert full.window_s == 30
        assert spoken_words(fitted.text) == spoken_words(full.text)
        assert expected in fitted.text.lower()


def test_short_answers_do_not_come_back_repeated(
    engines: dict[str, FasterWhisperEngine], piper: PiperEngine
) -> None:
    retried = 0
    for answer in SHORT_ANSWERS:
        syn = piper.synthesize(answer, speed=1.0, cancel=CancelToken())
        clip = as_final(resample(syn.audio.tobytes(), syn.sample_rate, 16000))
        tight = engines["tight"].transcribe(clip, language="en", hotwords=[])
        full = engines["full"].transcribe(clip, language="en", hotwords=[])
        # "No. No." or "7 7" from the short window was decoded again over the full one.
        assert spoken_words(tight.text) == spoken_words(full.text), answer
        retried += tight.retried
    # The loop is real on these answers, and caught: some of them went round twice.
    assert retried >= 1


def test_a_fitted_window_gives_the_file_api_its_segment_times(
    engines: dict[str, FasterWhisperEngine], speech: dict[str, Any]
) -> None:
    audio = np.frombuffer(speech["audio"], "<i2").astype(np.float32) / 32768
    result = engines["fitted"].transcribe(audio, language="en", hotwords=[], with_timestamps=True)
    assert result.window_s == 15.0
    assert len(result.segments) == 2
    first, second = result.segments
    assert "john smith" in first.text.lower()
    assert "knee" in second.text.lower()
    assert first.start_s < LEAD_S + 0.3
    assert first.end_s <= second.start_s
    assert second.start_s * 1000 == pytest.approx(speech["second_start_ms"], abs=700)
    assert second.end_s <= len(audio) / 16000


def trimmed(pcm: bytes) -> bytes:
    """The clip without its leading and trailing quiet (Piper leaves ~0.1-0.3 s each side)."""
    samples = np.frombuffer(pcm, "<i2")
    loud = np.nonzero(np.abs(samples.astype(np.int32)) > 500)[0]
    return samples[loud[0] : loud[-1] + 1].tobytes()


async def test_a_pause_mid_sentence_withdraws_the_early_final_and_the_utterance_stays_whole(
    free_port: int, speech: dict[str, Any]
) -> None:
    pause = bytes(int(16000 * 0.35) * 2)  # long enough to start an early final, not to end
    audio = (
        bytes(16000)
        + trimmed(speech["one"])
        + pause
        + trimmed(speech["two"])
        + bytes(int(16000 * GAP_S) * 2)
    )
    # The first part is a complete sentence, which the turn model would rightly end at this
    # pause; the fixed end silence is what this test is about.
    with start_gateway(free_port, turn_detection=False) as url:
        events = await stream(url.replace("http", "ws") + "/ws/transcribe", audio, speedup=1.0)
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(url + "/metrics")).text
    (final,) = of(events, "transcript.final")
    # Both parts in the one final (the second's "knee" is at times heard as "name": its last
    # words are the ones to look for).
    assert "john smith" in final["text"].lower()
    assert "two weeks" in final["text"].lower().replace("2 ", "two ")

    def early(outcome: str) -> float:
        return float(metrics.split(f'asr_early_finals_total{{outcome="{outcome}"}} ')[1].split()[0])

    assert early("withdrawn") >= 1  # started in the pause, dropped when speech went on
    assert early("used") == 1  # the one at the real end gave the final


def test_a_batch_with_a_clip_longer_than_one_window_loses_none_of_it(
    engines: dict[str, FasterWhisperEngine], speech: dict[str, Any]
) -> None:
    # A 34 s utterance (ASR_MAX_SPEECH_MS allows 60 s): its last words lie past 30 s.
    long_clip = as_final(speech["two"] + bytes(16000 * 2 * 28) + speech["one"])
    short, long = engines["fitted"].transcribe_batch(
        [as_final(speech["two"]), long_clip], language="en", hotwords=[]
    )
    assert "knee" in short.text.lower()
    assert "knee" in long.text.lower()
    assert "john smith" in long.text.lower()
