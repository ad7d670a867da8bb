"""Policy engine figures: time to the first reply sentence over HTTP (SSE) for scripted turns and
for turns that call the LLM, and the dialogue suite's completion and slot accuracy.

Starts the embedded LLM (`python -m llm`) and the policy engine (`python -m policy_engine`) on
free ports, plays booking calls through POST /dialog with Accept: text/event-stream, then runs
the dialogue suite in-process against the same LLM. A turn waiting on the LLM says an
acknowledgement first: its first sentence is that, and the answer's first sentence is reported
apart.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from callkit.contracts import dialog
from callkit.llm_client import LlmClient
from callkit.redis_provision import ensure, free_port
from devstack import start, stop
from policy_engine.dialogues import load_dialogues, run_suite
from policy_engine.script import load_script

ROOT = Path(__file__).resolve().parent.parent
SCRIPTED_TARGET_MS = 50.0
CALLS = 4


async def first_sentence_ms(
    client: httpx.AsyncClient, url: str, call: str, event: dialog.Event
) -> tuple[float, float, float, dialog.ReplyDone | None]:
    """(ms to the first reply.sentence, ms to the first one past an acknowledgement, ms to
    reply.done, the reply.done)."""
    started = time.perf_counter()
    first = answer = float("nan")
    done: dialog.ReplyDone | None = None
    request = dialog.DialogRequest(session_id=call, event=event)
    async with client.stream(
        "POST",
        f"{url}/dialog",
        json=request.model_dump(mode="json"),
        headers={"Accept": "text/event-stream"},
    ) as response:
        response.raise_for_status()
        kind = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                kind = line[7:].strip()
                continue
            if not line.startswith("data: "):
                continue
            parsed = dialog.parse_sse(kind, line[6:])
            if isinstance(parsed, dialog.DialogError):
                raise RuntimeError(f"the turn failed: {parsed.code}: {parsed.message}")
            if isinstance(parsed, dialog.ReplySentence):
                at = (time.perf_counter() - started) * 1000
                first = at if math.isnan(first) else first
                if math.isnan(answer) and not (parsed.cache_key or "").startswith("ack."):
                    answer = at
            else:
                done = parsed
    return first, answer, (time.perf_counter() - started) * 1000, done


def open_day() -> str:
    day = datetime.now().date() + timedelta(days=2)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day.isoformat()


async def http_turns(url: str) -> tuple[list[float], list[float], list[float], list[float]]:
    scripted: list[float] = []
    with_llm: list[float] = []
    llm_answer: list[float] = []
    llm_whole: list[float] = []
    turns = [
        "My name is Bench Caller.",
        "I keep getting pins and needles in my fingers.",  # read by the LLM
        "For about a month.",
        "Is the scanner very loud inside?",  # a free answer written by the LLM
        "Tingling.",
        "No.",
        "Yes.",
        "No.",
        open_day(),
        "The first one.",
        "Yes.",
        "This number.",
        "40 and 70 kilos.",
        "No.",
        "No.",
        "Yes.",
    ]
    async with httpx.AsyncClient(timeout=60) as client:
        for n in range(CALLS):
            call = f"bench-{uuid.uuid4().hex[:10]}"
            await first_sentence_ms(client, url, call, dialog.CallStarted(caller="+15550009999"))
            for i, text in enumerate(turns):
                first, answer, whole, done = await first_sentence_ms(
                    client, url, call, dialog.UserUtterance(text=text, segment_id=i)
                )
                if done is not None and done.llm_calls:
                    with_llm.append(first)
                    llm_answer.append(answer)
                    llm_whole.append(whole)
                else:
                    scripted.append(first)
            status = done.status if done is not None else None
            if status != "booked":
                print(f"  warning: bench call {n} ended {status!r}, not booked")
    return scripted, with_llm, llm_answer, llm_whole


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    redis_url = ensure(ROOT / ".run", env_url=os.environ.get("REDIS_URL") or None)
    llm_port, policy_port = free_port(), free_port()
    llm = start("llm", {"LLM_PORT": str(llm_port)}, llm_port, timeout_s=120)
    llm_url = f"http://127.0.0.1:{llm_port}/v1"
    namespace = f"bench-appt-{uuid.uuid4().hex[:6]}"
    policy = start(
        "policy_engine",
        {
            "POLICY_PORT": str(policy_port),
            "POLICY_LLM_BASE_URL": llm_url,
            "REDIS_URL": redis_url,
            "POLICY_CALENDAR_NAMESPACE": namespace,
        },
        policy_port,
        timeout_s=120,
    )
    try:
        time.sleep(2)  # let the engine's LLM warm-up finish
        scripted, with_llm, answers, whole = asyncio.run(
            http_turns(f"http://127.0.0.1:{policy_port}")
        )
        print(f"POST /dialog over SSE, {CALLS} booking calls, this machine:")
        p50, p95 = pct(scripted, 0.5), pct(scripted, 0.95)
        print(
            f"  scripted turn, first sentence   p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  (n={len(scripted)})"
            f"   target {SCRIPTED_TARGET_MS:.0f} ms   p95 ratio {p95 / SCRIPTED_TARGET_MS:.2f}"
        )
        if with_llm:
            print(
                f"  LLM turn, first sentence        p50 {pct(with_llm, 0.5):6.0f} ms  p95 "
                f"{pct(with_llm, 0.95):6.0f} ms  (n={len(with_llm)}); whole turn mean "
                f"{statistics.fmean(whole):.0f} ms"
            )
            print(
                f"  LLM turn, the answer's first    p50 {pct(answers, 0.5):6.0f} ms  p95 "
                f"{pct(answers, 0.95):6.0f} ms  (past the acknowledgement)"
            )

        async def suite() -> Any:
            system = (ROOT / "prompts" / "system.en.txt").read_text(encoding="utf-8")
            async with LlmClient(llm_url, "clinic-agent") as client:
                await client.warm_up(system)
                return await run_suite(
                    load_script(ROOT / "prompts" / "clinic"),
                    redis_url,
                    load_dialogues([ROOT / "tests" / "dialogues"]),
                    llm=client,
                    system_prompt=system,
                    run_id=f"bench-suite-{uuid.uuid4().hex[:6]}",
                )

        report = asyncio.run(suite())
        print("\nDialogue suite against the embedded LLM (in-process engine):")
        for line in report.lines()[-10:]:
            print(f"  {line}" if line else "")
    finally:
        stop(policy)
        stop(llm)


if __name__ == "__main__":
    main()
