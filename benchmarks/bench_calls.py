"""Whole-call figures on this machine: the callsim suite through the real stack.

Starts the embedded LLM, the ASR and TTS gateways, the policy engine, the bridge and callsim's
FreeSWITCH (the same processes `make serve` runs, on free ports), then plays tests/calls and
prints: voice-to-voice p50/p95, barge-in yield p50/p95 (the caller's onset to the agent's
audio dropping on the played channel; target 150 ms), the false-stop rate on backchannel and
echo scripts (a backchannel that stopped the agent for good or lost words; target under 5%), answer-to-greeting time, CPU seconds per
call, each service's RSS and CPU per call-second from its own process metrics
(process_resident_memory_bytes, process_cpu_seconds_total on /metrics), and v2v with several
calls at once (how many hold real time).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx

from callsim.esl_server import EslServer
from callsim.run import percentile, run_call
from callsim.script import CallScript, load_script, load_scripts
from callsim.switch import Switch
from devstack import CALL_PATH, bench_stack, caller_options, start_all, stop_all

ROOT = Path(__file__).resolve().parent.parent
CALLS = ROOT / "tests" / "calls"
STOP_TARGET_MS = 150
#: Calls the bridge admits at once in this bench (BRIDGE_MAX_CALLS); twice as many are offered to
#: see that the admitted ones keep their speed and the rest hear the busy phrase.
CAPACITY = 2
OVERLOAD_TARGET = 1.2  # admitted calls' v2v p95 against an unloaded call's, at twice the capacity
FALSE_STOP_TARGET = 0.05
REPEATS = int(os.environ.get("BENCH_CALL_REPEATS", "2"))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main() -> None:
    stack = bench_stack("bench-calls", {"BRIDGE_SILENCE_S": "4", "BRIDGE_MAX_CALLS": str(CAPACITY)})
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
        reports: list[dict[str, Any]] = []
        cpu: list[float] = []
        services = _service_ports(ports)
        before_suite = await _process_metrics(services)
        for _ in range(REPEATS):
            for _path, script in load_scripts(CALLS):
                before = sum(_cpu_seconds(p.pid) for p in procs.values() if p.poll() is None)
                report = await run_call(switch, script, options)
                after = sum(_cpu_seconds(p.pid) for p in procs.values() if p.poll() is None)
                report["cpu_s"] = after - before
                cpu.append((after - before) / max(0.001, report.get("duration_ms", 1) / 1000))
                reports.append(report)
                print(f"  {'PASS' if report.get('passed') else 'FAIL'} {script.name:<28} "
                      f"v2v p50 {report.get('v2v', {}).get('p50_ms')} ms", flush=True)  # fmt: skip
        v2v = [t["v2v_ms"] for r in reports for t in r.get("turns", []) if t["v2v_ms"] is not None]
        stops = [b["stop_latency_ms"] for r in reports for b in r.get("barge_ins", [])
                 if b["should_stop"] and b["stop_latency_ms"] is not None]  # fmt: skip
        should_not = [b for r in reports for b in r.get("barge_ins", []) if not b["should_stop"]]
        echo_calls = [r for r in reports if "echo" in r["script"]]
        # A backchannel goes wrong when the agent stopped for good or lost words resuming.
        false_stops = sum(not b["correct"] for b in should_not) + sum(
            bool(r["spurious_stops"]) for r in echo_calls
        )
        chances = len(should_not) + len(echo_calls)
        after_suite = await _process_metrics(services)
        call_s = sum(r.get("duration_ms", 0) for r in reports) / 1000
        async with httpx.AsyncClient() as client:
            greeting = (await client.get(f"http://127.0.0.1:{ports.bridge}/metrics")).text
        g_sum = _metric(greeting, "bridge_answer_to_greeting_seconds_sum")
        g_count = _metric(greeting, "bridge_answer_to_greeting_seconds_count")
        print(f"\nWhole calls on this machine ({len(reports)} calls, {REPEATS}x the suite):")
        print(
            f"  voice-to-voice          p50 {percentile(v2v, 0.5)} ms  p95 {percentile(v2v, 0.95)} ms  (n={len(v2v)})"
        )
        if stops:
            p50, p95 = percentile(stops, 0.5) or 0, percentile(stops, 0.95) or 0
            print(f"  barge-in yield          p50 {p50} ms  p95 {p95} ms  target {STOP_TARGET_MS} ms  "
                  f"p50 ratio {p50 / STOP_TARGET_MS:.1f}")  # fmt: skip
        rate = false_stops / chances if chances else 0.0
        print(f"  false stops             {false_stops}/{chances} backchannel and echo chances = "
              f"{rate:.0%}  target under {FALSE_STOP_TARGET:.0%}")  # fmt: skip
        if g_count:
            print(
                f"  answer to greeting      mean {g_sum / g_count * 1000:.0f} ms over {g_count:.0f} calls"
            )
        print(f"  CPU per call            {sum(cpu) / len(cpu):.2f} CPU-seconds per second of call "
              f"(all services; this machine has {os.cpu_count()} cores)")  # fmt: skip
        print(f"  per service (process metrics over {call_s:.0f} s of calls, one at a time):")
        for name in services:
            cpu_0, _ = before_suite.get(name, (None, None))
            cpu_1, rss = after_suite.get(name, (None, None))
            if cpu_0 is None or cpu_1 is None or rss is None or not call_s:
                print(f"    {name:<10} no process metrics")
                continue
            print(f"    {name:<10} RSS {rss / 2**20:6.1f} MiB  CPU {(cpu_1 - cpu_0) / call_s:.3f} "
                  "CPU-seconds per call-second")  # fmt: skip
        echo = load_script(CALLS / "echo_line.yaml")
        alone = await run_call(switch, echo, options)
        alone_v2v = [t["v2v_ms"] for t in alone.get("turns", []) if t["v2v_ms"] is not None]
        for k in (CAPACITY, 2 * CAPACITY):
            batch = [
                CallScript.model_validate({**echo.model_dump(), "name": f"echo-{i}"})
                for i in range(k)
            ]
            refused_before = await _refused(ports.bridge)
            results = await asyncio.gather(*(run_call(switch, s, options) for s in batch))
            busy = round(await _refused(ports.bridge) - refused_before)
            kv2v = [
                t["v2v_ms"] for r in results for t in r.get("turns", []) if t["v2v_ms"] is not None
            ]
            errors = sum(len(r.get("errors", [])) for r in results)
            print(f"  {k} calls at once         v2v p50 {percentile(kv2v, 0.5)} ms  p95 "
                  f"{percentile(kv2v, 0.95)} ms  busy phrase {busy} of {k}  errors {errors}")  # fmt: skip
            base, loaded = percentile(alone_v2v, 0.95), percentile(kv2v, 0.95)
            if k > CAPACITY and base and loaded:
                print(f"  overload (capacity {CAPACITY}, {k} offered): admitted calls' v2v p95 "
                      f"{loaded} ms against {base} ms alone = {loaded / base:.2f}  "
                      f"target <= {OVERLOAD_TARGET}")  # fmt: skip
    finally:
        stop_all(procs)
        await server.close()


async def _refused(bridge_port: int) -> float:
    """Calls the bridge has answered with the busy phrase so far (every line was taken)."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{bridge_port}/metrics")).text
    return _metric(text, "bridge_calls_refused_total")


def _service_ports(ports: Any) -> dict[str, int]:
    """The services of a call whose /metrics carry process metrics."""
    return {
        "bridge": ports.bridge,
        "asr": ports.asr,
        "tts": ports.tts,
        "policy": ports.policy,
        "llm": ports.llm,
    }


async def _process_metrics(services: dict[str, int]) -> dict[str, tuple[float, float]]:
    """Per service: (CPU seconds so far, resident memory in bytes), from its /metrics."""
    found: dict[str, tuple[float, float]] = {}
    async with httpx.AsyncClient(timeout=5) as client:
        for name, port in services.items():
            try:
                text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            except httpx.HTTPError:
                continue
            cpu, rss = (
                _metric(text, "process_cpu_seconds_total"),
                _metric(text, "process_resident_memory_bytes"),
            )
            if rss:
                found[name] = (cpu, rss)
    return found


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


if __name__ == "__main__":
    asyncio.run(main())
