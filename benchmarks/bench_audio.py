"""Audio primitives on the call path: cost per 20 ms frame and the ratio to real time.

Every call pays these per frame (split the stereo fork stream, resample, G.711 at the edges),
so their cost bounds how many calls one core can carry. Prints one line per operation.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from callkit.audio import StreamResampler, alaw_encode, split_stereo, ulaw_decode, ulaw_encode

FRAME_MS = 20
REPEAT = 5000


def bench(name: str, fn: Callable[[], object], audio_ms: float = FRAME_MS) -> None:
    for _ in range(200):
        fn()
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(REPEAT):
            fn()
        samples.append((time.perf_counter() - start) / REPEAT)
    per_frame_us = sorted(samples)[len(samples) // 2] * 1e6
    rtf = per_frame_us / (audio_ms * 1000)
    calls = 1 / rtf if rtf else float("inf")
    print(
        f"{name:<44} {per_frame_us:8.1f} µs/frame   RTF {rtf:.5f}   ≈{calls:,.0f} streams per core"
    )


def main() -> None:
    rng = np.random.default_rng(1)
    mono16 = (rng.standard_normal(320) * 3000).astype("<i2").tobytes()
    stereo16 = (rng.standard_normal(640) * 3000).astype("<i2").tobytes()
    mono8 = (rng.standard_normal(160) * 3000).astype("<i2").tobytes()
    ulaw = ulaw_encode(mono8)
    print(f"audio primitives, {FRAME_MS} ms frames, median of 5 x {REPEAT} runs, one thread")
    bench("split stereo 16 kHz (fork stream)", lambda: split_stereo(stereo16))
    up = StreamResampler(8000, 16000)
    bench("resample 8 -> 16 kHz (stream, HQ)", lambda: up.process(mono8))
    down = StreamResampler(16000, 8000)
    bench("resample 16 -> 8 kHz (stream, HQ)", lambda: down.process(mono16))
    piper = StreamResampler(22050, 16000)
    piper_frame = (rng.standard_normal(441) * 3000).astype("<i2").tobytes()
    bench("resample 22.05 -> 16 kHz (Piper, stream)", lambda: piper.process(piper_frame))
    bench("G.711 µ-law encode 8 kHz", lambda: ulaw_encode(mono8))
    bench("G.711 µ-law decode 8 kHz", lambda: ulaw_decode(ulaw))
    bench("G.711 A-law encode 8 kHz", lambda: alaw_encode(mono8))


if __name__ == "__main__":
    main()
