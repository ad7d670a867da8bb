"""ASR gateway figures: final and first-partial latency against the true end of speech, WER
against offline transcription of the same audio, concurrent real-time streams, the gateway's own
overhead on a final, and memory for a 1-minute and a 30-minute session.

Starts `python -m asr_gateway` as an operator would, streams at real time over the WebSocket.
Arguments pick parts: `wer`, `concurrency`, `memory`, `realtimestt` (default: all; the last one
needs the environment `make bench-realtimestt` creates).
Test set: clinic sentences spoken by Piper (and by espeak-ng when it is installed), clean and
through 8 kHz G.711 µ-law.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets

import devstack
from callkit.audio import resample, ulaw_decode, ulaw_encode
from callkit.contracts.asr import (
    SERVER_EVENTS,
    ServerEvent,
    SessionClose,
    SessionCreated,
    SessionStart,
    TranscriptFinal,
    TranscriptPartial,
)
from callkit.models import ModelStore, Registry
from callkit.redis_provision import free_port

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = [
    "Hello, I would like to book an MRI of my knee.",
    "My name is John Smith.",
    "The pain started about two weeks ago.",
    "It is a sharp pain when I climb the stairs.",
    "I have not seen a doctor yet.",
    "Tomorrow afternoon would be perfect for me.",
    "I am forty two years old and I weigh eighty kilograms.",
    "Do I need to bring anything with me?",
    "My lower back has been aching for a month.",
    "The headache gets worse in the evening.",
    "Yes, I saw my family doctor last week.",
    "She said I should have a scan of my shoulder.",
    "How much does the ultrasound of the abdomen cost?",
    "Can I come on Wednesday morning at nine thirty?",
    "The second time you offered works better for me.",
    "Please call me back on this number.",
    "I am allergic to iodine and I have a pacemaker.",
    "I would like the video conclusion as well.",
    "Is there a discount for pensioners?",
    "Where exactly is the clinic and is there parking?",
    "No, thank you, that is all for today.",
    "Could you repeat the date and the time, please?",
    "My daughter will come with me to the appointment.",
    "I will bring my passport and the referral.",
]
LEAD_S, TAIL_S = 0.4, 1.2


def voices() -> dict[str, list[np.ndarray]]:
    """Per voice, one 16 kHz int16 clip per sentence."""
    from tts_gateway.engines import CancelToken, PiperEngine
    from tts_gateway.text import normalizer_for

    engine = PiperEngine.from_registry(
        ModelStore(Registry.load()), "piper-en_US-joe-medium", threads=2
    )
    norm = normalizer_for("en")
    out: dict[str, list[np.ndarray]] = {"piper": []}
    for s in SENTENCES:
        syn = engine.synthesize(norm.normalize(s), speed=1.0, cancel=CancelToken())
        out["piper"].append(
            np.frombuffer(resample(syn.audio.tobytes(), syn.sample_rate, 16000), "<i2")
        )
    if shutil.which("espeak-ng"):
        out["espeak"] = []
        with tempfile.TemporaryDirectory() as tmp:
            for i, s in enumerate(SENTENCES):
                path = Path(tmp) / f"{i}.wav"
                subprocess.run(
                    ["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(path), s], check=True
                )
                with wave.open(str(path)) as w:
                    pcm = w.readframes(w.getnframes())
                    out["espeak"].append(
                        np.frombuffer(resample(pcm, w.getframerate(), 16000), "<i2")
                    )
    return out


def speech_bounds(clip: np.ndarray) -> tuple[float, float]:
    """Where the voice in a clip truly starts and ends, in seconds: the first and last 10 ms
    with energy within 40 dB of the clip's loudest (the voices leave 0.1-0.3 s of quiet around
    their speech, which a clip's own ends would count as speech)."""
    frames = clip[: len(clip) // 160 * 160].astype(np.float32).reshape(-1, 160)
    rms = np.sqrt((frames * frames).mean(axis=1))
    loud = np.nonzero(rms > rms.max() / 100)[0]
    return loud[0] / 100, (loud[-1] + 1) / 100


def telephone(clip: np.ndarray) -> np.ndarray:
    line8k = ulaw_decode(ulaw_encode(resample(clip.tobytes(), 16000, 8000)))
    return np.frombuffer(resample(line8k, 8000, 16000), "<i2")


_CONTRACTIONS = [
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"'m\b"), " am"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"\b(it|that|there|what|where|here|who|he|she)'s\b"), r"\1 is"),
    (re.compile(r"\blet's\b"), "let us"),
]


def words(text: str) -> list[str]:
    """Words for WER: numbers spelled out, lower case, contractions expanded ("I'm" = "I am"),
    as Whisper's own English normalizer scores them."""
    from tts_gateway.text import normalizer_for

    text = re.sub(r"\b(\d{1,2})[.:]?(\d{2})\s?([AaPp])\.?[Mm]\.?", r"\1:\2 \3m", text)
    text = normalizer_for("en").normalize(text).lower().replace("-", " ").replace("’", "'")
    for pattern, expanded in _CONTRACTIONS:
        text = pattern.sub(expanded, text)
    return re.sub(r"[^a-z' ]+", " ", text).split()


def edits(ref: list[str], hyp: list[str]) -> int:
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)]


async def open_session(ws: Any, start: SessionStart) -> SessionCreated:
    """Send ``session.start`` and return the gateway's ``session.created``; a refusal raises."""
    await ws.send(start.model_dump_json())
    answer: ServerEvent = SERVER_EVENTS.parse(await ws.recv())
    if not isinstance(answer, SessionCreated):
        raise RuntimeError(f"the ASR gateway did not open the session: {answer!r}")
    return answer


async def stream_utterance(
    url: str, clip: np.ndarray, *, repeats: int = 1, gap_s: float = TAIL_S, offset_s: float = 0.0
) -> dict[str, Any]:
    """Send lead silence, then the clip ``repeats`` times with gaps, at real time.

    Returns the finals (arrival time, event), the first partial's arrival, and the wall time at
    which each utterance's voice truly started and ended (``speech_bounds``), so latency is
    measured against the speech itself.
    """
    await asyncio.sleep(offset_s)
    gap = np.zeros(int(gap_s * 16000), np.int16)
    parts = [np.zeros(int(LEAD_S * 16000), np.int16)]
    bounds = []
    position = LEAD_S
    onset, offset = speech_bounds(clip)
    for _ in range(repeats):
        parts += [clip, gap]
        bounds.append((position + onset, position + offset))
        position += len(clip) / 16000 + gap_s
    data = np.concatenate(parts).tobytes()
    step = 640  # 20 ms
    finals: list[tuple[float, TranscriptFinal]] = []
    first_partial: list[float] = []
    async with websockets.connect(url, max_size=2**20) as ws:
        await open_session(ws, SessionStart(sample_rate=16000))
        t0 = time.perf_counter()

        async def reader() -> None:
            async for message in ws:
                event = SERVER_EVENTS.parse(message)
                if isinstance(event, TranscriptPartial) and not first_partial:
                    first_partial.append(time.perf_counter())
                elif isinstance(event, TranscriptFinal):
                    finals.append((time.perf_counter(), event))

        task = asyncio.create_task(reader())
        for i in range(0, len(data), step):
            await asyncio.sleep(max(0.0, t0 + i / 32000 - time.perf_counter()))
            await ws.send(data[i : i + step])
        await ws.send(SessionClose().model_dump_json())
        await asyncio.wait_for(task, 60)
    return {
        "finals": finals,
        "text": " ".join(e.text for _, e in finals),
        "first_partial": first_partial[0] if first_partial else None,
        "utterances": [(t0 + a, t0 + b) for a, b in bounds],
    }


def final_delays(r: dict[str, Any]) -> list[float]:
    """For each utterance, its last final's arrival minus the true end of its speech."""
    delays = []
    for start, end in r["utterances"]:
        mine = [
            t
            for t, e in r["finals"]
            if t >= end and abs(e.start_ms / 1000 - (start - r["utterances"][0][0] + LEAD_S)) < 1.5
        ]
        if mine:
            delays.append(max(mine) - end)
    return delays


def start_gateway(model: str, port: int, **env: str) -> subprocess.Popen[str]:
    settings = {"ASR_PORT": str(port), "ASR_MODEL": model, "ASR_MAX_SESSIONS": "32", **env}
    return devstack.start("asr_gateway", settings, port, timeout_s=90)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def metric(text: str, name: str, labels: str = "") -> float:
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else float("nan")


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


async def latency_and_wer(model: str, clips: dict[str, list[np.ndarray]]) -> None:
    port = free_port()
    proc = start_gateway(model, port)
    url = f"ws://127.0.0.1:{port}/ws/transcribe"
    try:
        from faster_whisper import WhisperModel

        offline = WhisperModel(
            str(ModelStore(Registry.load()).resolve(model)),
            device="cpu",
            compute_type="int8",
            cpu_threads=2,
        )
        print(f"\n[{model}] RSS after load {rss_mb(proc.pid):.0f} MB   target 1000 MB")
        finals, partials = [], []
        pooled = [0, 0, 0]  # gateway errors, offline errors, words over every voice and line
        for voice, voice_clips in clips.items():
            for line_kind in ("clean", "g711"):
                e_gw = e_off = n = 0
                differing: list[str] = []
                for sentence, clip in zip(SENTENCES, voice_clips, strict=True):
                    audio = clip if line_kind == "clean" else telephone(clip)
                    r = await stream_utterance(url, audio)
                    heard = r["text"]
                    finals.extend(final_delays(r))
                    if r["first_partial"]:
                        partials.append(r["first_partial"] - r["utterances"][0][0])
                    padded = np.concatenate(
                        [
                            np.zeros(int(LEAD_S * 16000), np.int16),
                            audio,
                            np.zeros(int(TAIL_S * 16000), np.int16),
                        ]
                    )
                    segs, _ = offline.transcribe(
                        padded.astype(np.float32) / 32768,
                        language="en",
                        beam_size=1,
                        vad_filter=False,
                        condition_on_previous_text=False,
                    )
                    off_text = " ".join(s.text.strip() for s in segs)
                    ref = words(sentence)
                    gw, off = edits(ref, words(heard)), edits(ref, words(off_text))
                    if gw != off:
                        differing.append(f"      {gw} vs {off} errors: {heard!r} / {off_text!r}")
                    e_gw, e_off, n = e_gw + gw, e_off + off, n + len(ref)
                pooled = [pooled[0] + e_gw, pooled[1] + e_off, pooled[2] + n]
                ratio = (e_gw / n) / (e_off / n) if e_off else (1.0 if e_gw == 0 else float("inf"))
                print(
                    f"  WER {voice:6} {line_kind:5}  gateway {100 * e_gw / n:5.1f}%   offline {100 * e_off / n:5.1f}%"
                    f"   ratio {ratio:.2f} (target <= 1.1)"
                )
                if differing:
                    print("\n".join(differing))
        e_gw, e_off, n = pooled
        print(
            f"  WER all {n} words   gateway {100 * e_gw / n:5.1f}%   offline {100 * e_off / n:5.1f}%"
            f"   ratio {e_gw / max(e_off, 1):.2f}  (Piper's voice differs between syntheses and one"
            f" word is {100 * 2 * len(clips) / n:.1f} points of one set's WER)"
        )
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text

        def mean(name: str, labels: str = "") -> float:
            return metric(text, f"{name}_sum", labels) / metric(text, f"{name}_count", labels)

        print(
            f"  final after true end of speech   p50 {pct(finals, 50) * 1000:5.0f} ms  p95 {pct(finals, 95) * 1000:5.0f} ms"
            f"  (includes the 500 ms end-of-speech silence)"
        )
        print(
            f"  first partial after speech start p50 {pct(partials, 50) * 1000:5.0f} ms  p95 {pct(partials, 95) * 1000:5.0f} ms"
        )
        final = '{kind="final"}'
        model_ms = mean("asr_inference_seconds", final) * 1000
        wait_ms = mean("asr_queue_wait_seconds", final) * 1000
        overhead_ms = mean("asr_final_overhead_seconds") * 1000
        print(
            f"  per final: model {model_ms:.0f} ms, queue wait {wait_ms:.0f} ms,"
            f" gateway's own overhead {overhead_ms:.1f} ms (target 30 ms)"
        )
    finally:
        devstack.stop(proc)


async def concurrency(model: str, clip: np.ndarray, batch: int = 1) -> None:
    """Independent calls: each stream starts at a random offset and says three utterances."""
    port = free_port()
    proc = start_gateway(model, port, ASR_MAX_BATCH=str(batch))
    url = f"ws://127.0.0.1:{port}/ws/transcribe"
    rng = np.random.default_rng(3)
    print(
        f"\n[{model}, up to {batch} session(s) per pass of the model] concurrent real-time "
        "streams, 3 utterances each, random starts "
        "(target: final p95 < 1 s after the true end of speech, with the 500 ms end silence)"
    )
    sustained = 0
    try:
        for n in (1, 2, 4, 6, 8):
            offsets = rng.uniform(0, 3.0, n)
            results = await asyncio.gather(
                *(stream_utterance(url, clip, repeats=3, gap_s=2.0, offset_s=o) for o in offsets)
            )
            delays = [d for r in results for d in final_delays(r)]
            missing = 3 * n - len(delays)
            p95 = pct(delays, 95)
            ok = missing == 0 and p95 < 1.0
            print(
                f"  {n} streams: final p50 {pct(delays, 50) * 1000:5.0f} ms  p95 {p95 * 1000:5.0f} ms"
                f"  missing {missing}  {'ok' if ok else 'over target'}",
                flush=True,
            )
            if not ok:
                break
            sustained = n
        print(f"  sustained: {sustained} concurrent streams (target >= 4 with tiny.en)")
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        passes, jobs = metric(text, "asr_batch_size_count"), metric(text, "asr_batch_size_sum")
        print(
            f"  {jobs:.0f} jobs in {passes:.0f} passes of the model: {jobs / max(passes, 1):.2f} per pass"
        )
    finally:
        devstack.stop(proc)


async def memory(model: str, clip: np.ndarray) -> None:
    """RSS after a 1-minute and after a 30-minute session (audio sent faster than real time)."""
    port = free_port()
    proc = start_gateway(model, port)
    url = f"ws://127.0.0.1:{port}/ws/transcribe"
    period = np.concatenate([clip, np.zeros(16000 * 8, np.int16)])  # speech every ~10 s
    try:
        async with websockets.connect(url, max_size=2**20) as ws:
            await open_session(ws, SessionStart(sample_rate=16000, partials=False))
            reader = asyncio.create_task(_drain(ws))
            sent_s = 0.0
            marks: dict[int, float] = {}
            for minute in (1, 5, 10, 20, 30):
                while sent_s < minute * 60:
                    data = period.tobytes()
                    for i in range(0, len(data), 32000):
                        await ws.send(data[i : i + 32000])
                    sent_s += len(period) / 16000
                    await asyncio.sleep(0.05)  # let the model keep up with the finals
                await asyncio.sleep(2)
                marks[minute] = rss_mb(proc.pid)
                print(
                    f"  session audio {sent_s / 60:4.1f} min: RSS {marks[minute]:.0f} MB",
                    flush=True,
                )
            await ws.send(SessionClose().model_dump_json())
            await asyncio.wait_for(reader, 120)
        print(f"  RSS 30-minute vs 1-minute session: {marks[30] - marks[1]:+.0f} MB")
    finally:
        devstack.stop(proc)


async def _drain(ws: Any) -> None:
    async for _ in ws:
        pass


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def versus_realtimestt(clips: dict[str, list[np.ndarray]]) -> None:
    """The gateway and RealtimeSTT on the same clips, same model, real time, one stream each."""
    venv = ROOT / ".venv-realtimestt" / "bin" / "python"
    if not venv.exists():
        print("\n[RealtimeSTT] skipped: run `make bench-realtimestt` to create its environment")
        return
    store = ModelStore(Registry.load())
    model = str(store.resolve("whisper-base"))
    silero = str(store.resolve("silero-vad") / "silero_vad.onnx")
    out_dir = ROOT / ".run" / "bench" / "clips"
    out_dir.mkdir(parents=True, exist_ok=True)
    meta: list[dict[str, Any]] = []
    for i, (sentence, clip) in enumerate(zip(SENTENCES, clips["piper"], strict=True)):
        audio = np.concatenate(
            [np.zeros(int(LEAD_S * 16000), np.int16), clip, np.zeros(int(TAIL_S * 16000), np.int16)]
        )
        with wave.open(str(out_dir / f"{i}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(audio.tobytes())
        meta.append(
            {
                "file": f"{i}.wav",
                "text": sentence,
                "speech_start_s": LEAD_S,
                "speech_end_s": LEAD_S + len(clip) / 16000,
            }
        )
    (out_dir / "clips.json").write_text(json.dumps(meta))

    port = free_port()
    proc = start_gateway("whisper-base", port)
    url = f"ws://127.0.0.1:{port}/ws/transcribe"
    gw_final, gw_first, gw_err, words_n, audio_s = [], [], 0, 0, 0.0
    try:
        cpu0 = cpu_of(proc.pid)
        for sentence, clip in zip(SENTENCES, clips["piper"], strict=True):
            r = await stream_utterance(url, clip)
            gw_final.extend(final_delays(r))
            if r["first_partial"]:
                gw_first.append(r["first_partial"] - r["utterances"][0][0])
            errors = edits(words(sentence), words(r["text"]))
            if errors:
                print(f"  gateway heard {r['text']!r} for {sentence!r}")
            gw_err += errors
            words_n += len(words(sentence))
            audio_s += LEAD_S + len(clip) / 16000 + TAIL_S
        gw_cpu = (cpu_of(proc.pid) - cpu0) / audio_s
    finally:
        devstack.stop(proc)

    result_path = out_dir / "realtimestt.json"
    done = await asyncio.to_thread(
        subprocess.run,
        [
            str(venv),
            str(ROOT / "benchmarks" / "realtimestt" / "compare.py"),
            model,
            silero,
            str(out_dir),
            str(result_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0 or not result_path.exists():
        print(f"\n[RealtimeSTT] failed: {done.stderr[-800:]}")
        return
    rt = json.loads(result_path.read_text())
    rt_err = 0
    for m, r in zip(meta, rt, strict=True):
        errors = edits(words(m["text"]), words(r["text"]))
        if errors:
            print(f"  RealtimeSTT heard {r['text']!r} for {m['text']!r}")
        rt_err += errors
    rt_final = [r["final_after_end_s"] for r in rt]
    rt_first = [
        r["first_update_after_start_s"] for r in rt if r["first_update_after_start_s"] is not None
    ]
    rt_cpu = sum(r["cpu_s"] for r in rt) / sum(r["audio_s"] for r in rt)
    print(
        "\n[gateway vs RealtimeSTT 1.1.2] whisper base int8, Piper clips, one real-time stream, 500 ms end silence"
    )
    print(f"  {'':32} {'gateway':>12} {'RealtimeSTT':>12}")
    print(
        f"  {'final after end of speech p50':32} {pct(gw_final, 50) * 1000:10.0f}ms {pct(rt_final, 50) * 1000:10.0f}ms"
    )
    print(
        f"  {'final after end of speech p95':32} {pct(gw_final, 95) * 1000:10.0f}ms {pct(rt_final, 95) * 1000:10.0f}ms"
    )
    print(
        f"  {'first partial after start p50':32} {pct(gw_first, 50) * 1000:10.0f}ms {pct(rt_first, 50) * 1000:10.0f}ms"
    )
    print(f"  {'WER':32} {100 * gw_err / words_n:11.1f}% {100 * rt_err / words_n:11.1f}%")
    print(f"  {'CPU seconds per audio second':32} {gw_cpu:12.2f} {rt_cpu:12.2f}")


def main() -> None:
    print(
        f"ASR gateway benchmark, {os.cpu_count()} cores; espeak-ng {'found' if shutil.which('espeak-ng') else 'not installed (Piper voice only)'}"
    )
    parts = set(sys.argv[1:]) or {"wer", "concurrency", "memory", "realtimestt"}
    clips = voices()
    if "wer" in parts:
        asyncio.run(latency_and_wer("whisper-base", clips))
    if "concurrency" in parts:
        for batch in (1, 4):
            asyncio.run(concurrency("whisper-tiny.en", clips["piper"][0], batch))
    if "memory" in parts:
        print("\n[whisper-base] memory")
        asyncio.run(memory("whisper-base", clips["piper"][1]))
    if "realtimestt" in parts:
        asyncio.run(versus_realtimestt(clips))


if __name__ == "__main__":
    main()
