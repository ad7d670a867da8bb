"""The TTS gateway served for real: Piper, Redis, files, prerender, cancellation, OpenAI shape."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
import wave
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest
import redis as syncredis
from serving import serving_in_thread

from callkit.audio import resample, ulaw_decode, ulaw_encode
from callkit.redis_provision import free_port
from tts_gateway.app import create_app
from tts_gateway.settings import TtsSettings

PROMPTS = """
states:
  greeting:
    say: {en: "Hello, you have reached the clinic. How can I help you?"}
  confirm:
    say: {en: "So that is {date} at {time}?"}
"""
LONG = " ".join(
    f"This is sentence number {i} of a long reply that the caller will interrupt."
    for i in range(1, 13)
)


@pytest.fixture(scope="module")
def tts(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[tuple[str, TtsSettings]]:
    """One gateway for the module (loading Piper and prerendering take a second each time): each
    test speaks texts of its own, so no test meets another's cache entries."""
    tmp_path = tmp_path_factory.mktemp("tts")
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "script.yaml").write_text(PROMPTS)
    settings = TtsSettings.load(
        redis_url=redis_url,
        cache_dir=tmp_path / "cache",
        cache_namespace=f"test-tts-{uuid.uuid4().hex[:8]}",
        prompts_dir=prompts,
        cache_ttl_s=60,
    )
    app = create_app(settings)
    with serving_in_thread(app, free_port()) as url:
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/ready").status_code != 200:
            assert time.monotonic() < deadline, "TTS gateway not ready"
            time.sleep(0.1)
        yield url, settings
    client = syncredis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{settings.cache_namespace}:*"):
        client.delete(key)
    client.close()


def synth(url: str, **body: object) -> httpx.Response:
    return httpx.post(f"{url}/synthesize", json=body, timeout=60)


def metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{}"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"metric {name} not found")


def transcribe(pcm16k: bytes) -> str:
    from faster_whisper import WhisperModel

    from callkit.models import ModelStore, Registry

    model = WhisperModel(
        str(ModelStore(Registry.load()).resolve("whisper-base")), device="cpu", compute_type="int8"
    )
    audio = np.frombuffer(pcm16k, "<i2").astype(np.float32) / 32768
    segments, _ = model.transcribe(audio, language="en", beam_size=1, vad_filter=False)
    return " ".join(s.text.strip() for s in segments)


def test_miss_then_hit_gives_the_same_call_rate_audio(tts) -> None:
    url, _ = tts
    text = "Your M R I is booked for tomorrow at 3:30 pm."
    first = synth(url, text=text, sample_rate=8000)
    assert first.status_code == 200
    assert first.headers["x-cache"] == "miss"
    assert first.headers["x-sample-rate"] == "8000"
    assert first.headers["content-type"].startswith("audio/L16;rate=8000")
    seconds = len(first.content) / 2 / 8000
    assert 1.5 < seconds < 8
    second = synth(url, text=text, sample_rate=8000)
    assert second.headers["x-cache"] == "hit"
    assert second.content == first.content
    other_rate = synth(url, text=text, sample_rate=16000)
    assert other_rate.headers["x-cache"] == "miss"
    # Piper varies its timing between syntheses (up to ~7% seen); a wrong rate would be 50% off.
    assert len(other_rate.content) == pytest.approx(2 * len(first.content), rel=0.15)


def spoken_words(text: str) -> list[str]:
    """Text as words the way they are said, so "$120" and "one hundred twenty dollars" compare equal."""
    import re

    from tts_gateway.text import normalizer_for

    return re.sub(
        r"[^a-z' ]+", " ", normalizer_for("en").normalize(text).lower().replace("-", " ")
    ).split()


def word_errors(reference: list[str], heard: list[str]) -> int:
    row = list(range(len(heard) + 1))
    for i, r in enumerate(reference, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(heard, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def test_telephone_audio_is_intelligible(tts) -> None:
    """8 kHz, through G.711 µ-law and back, then transcribed: the words and numbers survive."""
    url, _ = tts
    text = "Please call us back at 555-123-4567. Your visit costs $120."
    pcm8k = synth(url, text=text, sample_rate=8000).content
    line = ulaw_decode(ulaw_encode(pcm8k))
    reference = spoken_words(text)
    heard = spoken_words(transcribe(resample(line, 8000, 16000)))
    # Piper varies its delivery from one synthesis to the next; allow one slip in ~20 words.
    assert word_errors(reference, heard) <= 1, (reference, heard)


def test_redis_entry_expires_and_the_file_level_still_serves(tts, redis_url: str) -> None:
    url, settings = tts
    app_text = "Please arrive fifteen minutes early."
    client = syncredis.Redis.from_url(redis_url)
    before = set(client.scan_iter(match=f"{settings.cache_namespace}:*"))
    synth(url, text=app_text)
    keys = list(set(client.scan_iter(match=f"{settings.cache_namespace}:*")) - before)
    assert len(keys) == 1
    assert 0 < client.ttl(keys[0]) <= settings.cache_ttl_s
    client.delete(keys[0])  # what expiry does
    again = synth(url, text=app_text)
    assert again.headers["x-cache"] == "hit"  # from the file cache...
    assert client.exists(keys[0])  # ...and promoted back to Redis
    client.close()


def test_fixed_prompts_are_prerendered_at_start_up(tts) -> None:
    url, _ = tts
    for rate in (8000, 16000):
        reply = synth(
            url, text="Hello, you have reached the clinic. How can I help you?", sample_rate=rate
        )
        assert reply.headers["x-cache"] == "hit", rate
    # A template is filled per call, so it is not prerendered.
    assert synth(url, text="So that is {date} at {time}?").headers["x-cache"] == "miss"
    ready = httpx.get(f"{url}/ready").json()
    assert ready["checks"]["prerender"] == "ok"


async def test_client_disconnect_stops_synthesis_and_caches_nothing(tts) -> None:
    url, _ = tts
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream("POST", f"{url}/synthesize", json={"text": LONG}) as response:
            assert response.headers["x-cache"] == "miss"
            async for chunk in response.aiter_bytes():
                assert chunk
                break  # the caller barged in
        deadline = time.monotonic() + 2
        while metric(url, "tts_active_syntheses") > 0:
            assert time.monotonic() < deadline, "synthesis kept running after the client left"
            await asyncio.sleep(0.02)
        assert metric(url, "tts_cancel_seconds_count") >= 1
        again = await client.post(f"{url}/synthesize", json={"text": LONG, "sample_rate": 8000})
        assert again.headers["x-cache"] == "miss"
        assert (await client.post(f"{url}/synthesize", json={"text": LONG})).headers[
            "x-cache"
        ] == "miss"


def test_openai_client_gets_wav_and_pcm(tts) -> None:
    url, _ = tts
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    wav_bytes = client.audio.speech.create(
        model="piper",
        voice="piper-en_US-joe-medium",
        input="Thank you for calling.",
        response_format="wav",
    ).content
    with wave.open(io.BytesIO(wav_bytes)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        frames = len(w.readframes(10**9)) // 2  # a streamed WAV's header cannot know its length
    assert frames > 8000
    pcm = client.audio.speech.create(
        model="piper",
        voice="piper-en_US-joe-medium",
        input="Thank you for calling.",
        response_format="pcm",
    ).content
    # 1.5x the 16 kHz sample count (a wrong rate would be off by a third); Piper timing varies a little.
    assert len(pcm) == pytest.approx(frames * 2 * 24000 / 16000, rel=0.15)  # OpenAI pcm is 24 kHz
    with pytest.raises(openai.BadRequestError, match="response_format 'mp3' is not served"):
        client.audio.speech.create(
            model="piper", voice="piper-en_US-joe-medium", input="Hi.", response_format="mp3"
        )
    with pytest.raises(openai.NotFoundError, match="unknown voice 'alloy'"):
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.")


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"text": "  \n "}, 400, "text is empty"),
        ({"text": "x" * 1001}, 413, "the limit is 1000"),
        ({"text": "hello\x07there"}, 400, "control characters"),
        ({"text": "hi", "voice": "nobody"}, 404, "unknown voice 'nobody'"),
        ({"text": "hi", "sample_rate": 44100}, 422, "sample_rate: Input should be 8000 or 16000"),
        ({"text": "hi", "format": "mp3"}, 422, "format: Input should be 'pcm_s16le' or 'wav'"),
        ({"text": "hi", "speed": 9}, 422, "speed: Input should be less than or equal to 2"),
        ({"text": "hi", "volume": 3}, 422, "volume: Extra inputs are not permitted"),
    ],
)
def test_bad_requests_get_a_clear_4xx(
    tts, body: dict[str, object], status: int, detail: str
) -> None:
    url, _ = tts
    reply = synth(url, **body)
    assert reply.status_code == status
    assert detail in reply.json()["detail"]
    assert synth(url, text="Still working.").status_code == 200  # other requests unaffected


def test_voices_are_listed(tts) -> None:
    url, _ = tts
    voices = httpx.get(f"{url}/v1/voices").json()
    assert voices["default"] == "piper-en_US-joe-medium"
    assert voices["voices"][0]["native_sample_rate"] == 22050
