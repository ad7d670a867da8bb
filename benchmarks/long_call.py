"""Memory over a long call: the bridge's (and the ASR gateway's) RSS after a 1-minute and a 30-minute call.

Starts the stack as bench_calls.py does, then plays two calls through callsim: a short one (one
question and a minute of silence) and a long one (the same question every 90 seconds for
LONG_CALL_MINUTES, default 30), sampling each service's resident memory every 10 seconds. A
per-call state that grows with the call's length shows as a long-call RSS above the short-call
one. Not part of `make bench` (it takes as long as the call): `make bench-long-call`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from callsim.esl_server import EslServer
from callsim.run import RunOptions, run_call
from callsim.script import CallScript
from callsim.switch import Switch
from devstack import CALL_PATH, bench_stack, caller_options, start_all, stop_all

ROOT = Path(__file__).resolve().parent.parent
MINUTES = float(os.environ.get("LONG_CALL_MINUTES", "30"))
QUESTIONS = ("What is your address?", "What are your opening hours?", "Where are you located?")
GAP_S = 75.0  # caller silence between questions: the agent reprompts once (BRIDGE_SILENCE_S)
SILENCE_S = 60


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def script(name: str, minutes: float) -> CallScript:
    turns: list[Any] = [
        "Hi, my name is John Smith, my left knee has hurt for two weeks, it is a sharp pain."
    ]
    cycles = max(1, round(minutes * 60 / (GAP_S + 10)))
    for i in range(cycles):
        turns.append({"silence": {"seconds": GAP_S}})
        turns.append(QUESTIONS[i % len(QUESTIONS)])
    turns.append({"hangup": {}})
    return CallScript.model_validate(
        {
            "name": name,
            "caller": {
                "number": "+15551230000",
                "voice": "piper:en_US-joe-medium",
                "codec": "G722",
            },
            "timing": {"agent_turn_gap_ms": 800, "max_call_s": minutes * 60 + 600},
            "turns": turns,
        }
    )


async def sample(procs: dict[str, subprocess.Popen[str]], into: list[dict[str, float]]) -> None:
    started = time.monotonic()
    while True:
        into.append(
            {"t_s": time.monotonic() - started}
            | {k: rss_mb(p.pid) for k, p in procs.items() if p.poll() is None}
        )
        await asyncio.sleep(10)


async def play(
    switch: Switch, call: CallScript, options: RunOptions, procs: dict[str, subprocess.Popen[str]]
) -> tuple[dict[str, Any], list[dict[str, float]]]:
    samples: list[dict[str, float]] = []
    sampler = asyncio.create_task(sample(procs, samples))
    try:
        report = await run_call(switch, call, options, progress=None)
    finally:
        sampler.cancel()
    await asyncio.sleep(5)  # let the call's tasks end before reading the memory
    samples.append({"t_s": -1} | {k: rss_mb(p.pid) for k, p in procs.items()})
    return report, samples


async def main() -> int:
    stack = bench_stack(
        "bench-long-call",
        {
            # The caller is quiet for 75 s at a time: one reprompt, then it asks its next question.
            "BRIDGE_SILENCE_S": str(SILENCE_S),
            "BRIDGE_MAX_CALL_S": str(MINUTES * 60 + 900),
        },
    )
    redis_url, logs, ports = stack.redis_url, stack.folder, stack.ports
    esl_pw, fork_pw, env = stack.esl_password, stack.fork_password, stack.env
    switch = Switch(fork_build="jambonz")
    server = EslServer(switch, esl_pw, "127.0.0.1", ports.esl)
    await server.start()
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        procs = await asyncio.to_thread(start_all, CALL_PATH, ports, env, logs, timeout_s=300)
        options = caller_options(
            ports.bridge, fork_password=fork_pw, redis_url=redis_url, recordings=logs / "callsim"
        )
        watched = {"bridge": procs["fs_bridge"], "asr": procs["asr_gateway"]}
        print(f"a short call (one question), then a {MINUTES:g}-minute call; RSS every 10 s")
        short, short_rss = await play(switch, script("short-call", 1.0), options, watched)
        print(f"  short call: {short['duration_ms'] / 1000:.0f} s, {len(short['turns'])} turns, "
              f"errors {short['errors']}", flush=True)  # fmt: skip
        long, long_rss = await play(switch, script("long-call", MINUTES), options, watched)
        print(f"  long call:  {long['duration_ms'] / 1000:.0f} s, {len(long['turns'])} turns, "
              f"errors {long['errors']}")  # fmt: skip
        print("\nResident memory (MB)            after short call   after long call   "
              "peak during long call   long/short")  # fmt: skip
        for name in watched:
            after_short, after_long = short_rss[-1][name], long_rss[-1][name]
            peak = max(s[name] for s in long_rss if name in s)
            print(f"  {name:<30} {after_short:>10.1f} {after_long:>17.1f} {peak:>20.1f} "
                  f"{after_long / after_short:>15.2f}")  # fmt: skip
        print("\nBridge RSS during the long call, every 5 minutes:")
        for s in long_rss[:-1:30]:
            print(
                f"  t={s['t_s'] / 60:5.1f} min  bridge {s['bridge']:.1f} MB  asr {s['asr']:.1f} MB"
            )
        return 0 if not short["errors"] and not long["errors"] else 1
    finally:
        stop_all(procs)
        await server.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
