"""TTS gateway figures: first byte cached and uncached, real-time factor, 4 concurrent syntheses,
cancellation, memory across 1,000 syntheses, and intelligibility through G.711.

Starts `python -m tts_gateway` on a free port with a private cache, as an operator would run it.
Targets (2-core CPU): cached first byte p50 < 10 ms, uncached < 150 ms for one sentence, RSS with
one voice < 500 MB and flat, WER < 5 % after 8 kHz µ-law.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import Literal

import httpx
import numpy as np

from callkit.audio import resample, ulaw_decode, ulaw_encode
from callkit.contracts import tts
from callkit.models import ModelStore, Registry
from callkit.redis_provision import ensure, free_port
from devstack import start, stop

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = [
    "Thank you for calling, how can I help you today?",
    "Could you tell me your full name, please?",
    "How long have you had this pain?",
    "Have you seen a doctor about it yet?",
    "I would recommend an M R I of the knee.",
    "The study takes about twenty minutes.",
    "Would you like a video conclusion from our radiologist?",
    "We have a free slot tomorrow morning.",
    "Please bring your passport and any previous scans.",
    "Is there anything else I can help you with?",
]
WER_SET = [
    "The M R I of the lumbar spine costs $120.",
    "Your appointment is on 2026-11-23 at 3:30 pm.",
    "Please call us back at 555-123-4567.",
    "A video conclusion costs $25 more.",
    "You told me you are 42 years old and weigh 80 kg.",
    "We are open from 8 am to 8 pm, Monday to Saturday.",
    "Your visit is on Friday, December 4th at 10:15 am.",
    "The ultrasound of the abdomen costs $85.50.",
    "Our address is 12 Main Street, second floor.",
    "Bring your passport and the referral from your doctor.",
]


Rate = Literal[8000, 16000]


def synthesize(text: str, rate: Rate) -> dict[str, object]:
    """The POST /synthesize body: raw L16 at ``rate``."""
    return tts.SynthesizeRequest(text=text, sample_rate=rate).model_dump(mode="json")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


async def first_byte(
    client: httpx.AsyncClient, url: str, text: str, rate: Rate = 8000
) -> tuple[float, str, int]:
    started = time.perf_counter()
    total = 0
    ttfb = 0.0
    async with client.stream("POST", f"{url}/synthesize", json=synthesize(text, rate)) as r:
        r.raise_for_status()
        async for chunk in r.aiter_bytes():
            if not total:
                ttfb = time.perf_counter() - started
            total += len(chunk)
        return ttfb, r.headers[tts.CACHE_HEADER], total


def metric(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else float("nan")


def wer(reference: str, hypothesis: str) -> tuple[int, int]:
    from tts_gateway.text import normalizer_for

    norm = normalizer_for("en")

    def words(s: str) -> list[str]:
        # The ASR writes times its own way ("3.30pm", "1015 AM"); score them as the times they are.
        s = re.sub(r"\b(\d{1,2})[.:]?(\d{2})\s?([AaPp])\.?[Mm]\.?", r"\1:\2 \3m", s)
        s = norm.normalize(s).lower().replace("-", " ")
        return re.sub(r"[^a-z' ]+", " ", s).split()

    ref, hyp = words(reference), words(hypothesis)
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)], len(ref)


async def run(url: str, pid: int) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        rss_start = rss_mb(pid)
        # Uncached, one sentence each; then the same again, cached.
        miss = [await first_byte(client, url, s) for s in SENTENCES]
        hit = [await first_byte(client, url, s) for s in SENTENCES]
        if any(c != "miss" for _, c, _ in miss) or any(c != "hit" for _, c, _ in hit):
            raise SystemExit("unexpected cache results: the cache namespace is not private")
        miss_ms = [t * 1000 for t, _, _ in miss]
        hit_ms = [t * 1000 for t, _, _ in hit]
        print(
            f"first byte, uncached one sentence   p50 {p(miss_ms, 50):6.1f} ms  p95 {p(miss_ms, 95):6.1f} ms"
            f"   target 150 ms  ratio {p(miss_ms, 50) / 150:.2f}"
        )
        print(
            f"first byte, cached                  p50 {p(hit_ms, 50):6.1f} ms  p95 {p(hit_ms, 95):6.1f} ms"
            f"   target  10 ms  ratio {p(hit_ms, 50) / 10:.2f}"
        )

        # Real-time factor on a whole multi-sentence reply.
        long_text = " ".join(SENTENCES) + f" Reference {uuid.uuid4().hex[:6]}."
        started = time.perf_counter()
        _, _, size = await first_byte(client, url, long_text, 16000)
        elapsed = time.perf_counter() - started
        audio_s = size / 2 / 16000
        print(
            f"real-time factor, {audio_s:4.1f} s reply         {elapsed / audio_s:.3f}   ({elapsed:.2f} s wall)"
        )

        # Four concurrent syntheses.
        async def one(i: int) -> tuple[float, int]:
            text = f"{SENTENCES[i % 10]} {SENTENCES[(i + 3) % 10]} Case {i} {uuid.uuid4().hex[:4]}."
            ttfb, _, n = await first_byte(client, url, text, 16000)
            return ttfb, n

        started = time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(4)))
        wall = time.perf_counter() - started
        produced = sum(n for _, n in results) / 2 / 16000
        ttfbs = [t * 1000 for t, _ in results]
        print(
            f"4 concurrent syntheses              {produced:4.1f} s of audio in {wall:.2f} s "
            f"= {produced / wall:.1f}x real time; first byte p50 {p(ttfbs, 50):.0f} ms, max {max(ttfbs):.0f} ms"
        )

        # Cancellation: leave after the first chunk and close the connection, as the bridge does
        # on barge-in (a pooled connection left open would keep the request alive).
        for i in range(8):
            text = " ".join(SENTENCES) + f" Cancelled {i} {uuid.uuid4().hex[:4]}."
            async with (
                httpx.AsyncClient(timeout=60) as own,
                own.stream("POST", f"{url}/synthesize", json=synthesize(text, 16000)) as r,
            ):
                async for _ in r.aiter_bytes():
                    break
        await asyncio.sleep(0.5)
        text = (await client.get(f"{url}/metrics")).text
        count, total = (
            metric(text, "tts_cancel_seconds_count"),
            metric(text, "tts_cancel_seconds_sum"),
        )
        print(
            f"cancellation (client leaves)        mean {total / count * 1000:5.1f} ms until the CPU is free"
            f" (n={count:.0f})   target 50 ms; active now {metric(text, 'tts_active_syntheses'):.0f}"
        )

        # Memory across 1,000 syntheses (unique texts, so every one is synthesized).
        marks = {0: rss_mb(pid)}
        for i in range(1, 1001):
            await first_byte(
                client, url, f"Your booking number is {i}, {SENTENCES[i % 10].lower()}"
            )
            if i % 250 == 0:
                marks[i] = rss_mb(pid)
                print(f"  ... {i} syntheses, RSS {marks[i]:.0f} MB", flush=True)
        print(
            f"RSS with one voice: at start {rss_start:.0f} MB, before the loop {marks[0]:.0f} MB, "
            f"after 1,000 syntheses {marks[1000]:.0f} MB   target 500 MB  ratio {marks[1000] / 500:.2f}"
        )

        # Intelligibility through the telephone path.
        from faster_whisper import WhisperModel

        model = WhisperModel(
            str(ModelStore(Registry.load()).resolve("whisper-base")),
            device="cpu",
            compute_type="int8",
            cpu_threads=2,
        )
        errors = words = 0
        for sentence in WER_SET:
            pcm8k = (
                await client.post(f"{url}/synthesize", json=synthesize(sentence, 8000))
            ).content
            line16k = resample(ulaw_decode(ulaw_encode(pcm8k)), 8000, 16000)
            audio = np.frombuffer(line16k, "<i2").astype(np.float32) / 32768
            segments, _ = model.transcribe(
                audio,
                language="en",
                beam_size=1,
                vad_filter=False,
                condition_on_previous_text=False,
            )
            heard = " ".join(s.text.strip() for s in segments)
            e, n = wer(sentence, heard)
            errors += e
            words += n
            if e:
                print(f"  WER detail: {e}/{n} errors: {heard!r}")
        print(
            f"intelligibility, 8 kHz µ-law -> whisper base   WER {100 * errors / words:.1f}% "
            f"({errors}/{words} words)   target 5%"
        )


def main() -> None:
    redis_url = ensure(ROOT / ".run", env_url=os.environ.get("REDIS_URL") or None)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "TTS_PORT": str(port),
            "REDIS_URL": redis_url,
            "TTS_CACHE_DIR": tmp,
            "TTS_CACHE_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}",
            "TTS_PRERENDER": "false",
        }
        proc = start("tts_gateway", env, port, timeout_s=60)
        try:
            url = f"http://127.0.0.1:{port}"
            print(
                f"tts_gateway pid {proc.pid}, voice piper-en_US-joe-medium, {os.cpu_count()} cores"
            )
            asyncio.run(run(url, proc.pid))
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
