"""LLM serving figures: start-up, time to first token with and without a prefix-cache hit,
decode speed and JSON-schema extraction latency, through the project's own client.

Runs against the embedded server (`python -m llm`, started here on a free port) and, when
LLM_BENCH_VLLM_URL is set (e.g. http://gpu-host:8000/v1), against a vLLM server too.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import subprocess
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from callkit.llm_client import LlmClient
from callkit.redis_provision import free_port
from devstack import start, stop

ROOT = Path(__file__).resolve().parent.parent
SYSTEM = (ROOT / "prompts" / "system.en.txt").read_text(encoding="utf-8").strip()
TURNS = [
    "Hello, I have had a pain in my lower back for two weeks.",
    "How much does an MRI of the knee cost?",
    "Can I come tomorrow afternoon?",
    "My name is Anna and I am 42 years old.",
    "Do I need a referral from a doctor?",
]
REPEAT = 5
STARTUP_TARGET_S = 5.0


class Booking(BaseModel):
    intent: Literal["book_appointment", "ask_price", "other"]
    study: Literal["MRI", "CT", "ultrasound", "unknown"]
    body_part: str
    day: Literal["today", "tomorrow", "other", "unknown"]


def median(xs: list[float]) -> float:
    return statistics.median(xs)


async def measure(url: str, label: str) -> None:
    async with LlmClient(url, "clinic-agent", total_timeout_s=120) as llm:
        backend = await llm.backend()
        print(f"\n[{label}] backend={backend} url={url}")
        # 1. No cache hit: a unique first line makes the whole prompt new to the server.
        cold = []
        for turn in TURNS[:3]:
            msgs = [
                {"role": "system", "content": f"Session {secrets.token_hex(8)}.\n{SYSTEM}"},
                {"role": "user", "content": turn},
            ]
            cold.append((await llm.complete(msgs, max_tokens=1, temperature=0)).ttft_s)
        # 2. Cache hit: the fixed system prompt first, a new turn after it.
        await llm.warm_up(SYSTEM)
        warm = []
        for turn in TURNS:
            msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": turn}]
            warm.append((await llm.complete(msgs, max_tokens=1, temperature=0)).ttft_s)
        # 3. Decode speed on a longer reply.
        speeds = []
        for turn in TURNS[:3]:
            msgs = [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": turn + " Please explain in detail."},
            ]
            r = await llm.complete(msgs, max_tokens=96, temperature=0)
            if r.completion_tokens > 1 and r.total_s > r.ttft_s:
                speeds.append((r.completion_tokens - 1) / (r.total_s - r.ttft_s))
        # 4. Schema-constrained extraction.
        extraction = []
        for _ in range(3):
            msgs = [
                {"role": "system", "content": "Extract the caller's request as JSON."},
                {"role": "user", "content": "Hi, could I book an MRI of my knee for tomorrow?"},
            ]
            started = time.perf_counter()
            result = await llm.extract(msgs, Booking, max_tokens=80)
            extraction.append(time.perf_counter() - started)
    tokens = len(SYSTEM.split())
    print(f"  system prompt                 ~{tokens} words")
    print(f"  TTFT, no prefix-cache hit     median {median(cold) * 1000:7.0f} ms  (n={len(cold)})")
    print(
        f"  TTFT, prefix-cache hit        median {median(warm) * 1000:7.0f} ms  (n={len(warm)})"
        f"   hit/miss ratio {median(warm) / median(cold):.2f}"
    )
    if speeds:
        print(
            f"  decode                        median {median(speeds):7.1f} tok/s (n={len(speeds)})"
        )
    print(
        f"  JSON-schema extraction        median {median(extraction) * 1000:7.0f} ms  (n={len(extraction)})"
        f"   last: {result.model_dump()}"
    )


def start_embedded() -> tuple[subprocess.Popen[str], str, float]:
    port = free_port()
    started = time.perf_counter()
    proc = start("llm", {"LLM_PORT": str(port)}, port, timeout_s=120)
    return proc, f"http://127.0.0.1:{port}/v1", time.perf_counter() - started


def main() -> None:
    proc, url, startup = start_embedded()
    print(
        f"embedded server start-up (process start to /ready, incl. model load and warm-up): "
        f"{startup:.2f} s   target {STARTUP_TARGET_S:.0f} s   ratio {startup / STARTUP_TARGET_S:.2f}"
    )
    try:
        asyncio.run(measure(url, "embedded llama.cpp"))
    finally:
        stop(proc)
    vllm = os.environ.get("LLM_BENCH_VLLM_URL")
    if vllm:
        asyncio.run(measure(vllm, "vLLM"))
    else:
        print("\n[vLLM] skipped: set LLM_BENCH_VLLM_URL to a vLLM server's /v1 URL to measure it")


if __name__ == "__main__":
    main()
