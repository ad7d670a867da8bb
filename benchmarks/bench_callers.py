"""Whole calls from callers that are not the demo: the persona suite in benchmarks/callers.

Starts the call path with devstack (embedded LLM, ASR and TTS gateways, policy engine, bridge,
on free ports; callsim's switch runs in this process), places every persona call one at a time,
then several at once, and prints per call and overall:

- booked with every slot right: the outcome on calls:completed against the persona's facts
  (status, name, phone, age, weight, day, time, yes/no answers); target 90% of the callers;
- voice-to-voice p50/p95/max on the fork's audio timeline; targets 1.0 s / 2.0 s;
- LLM turns (the policy engine's ``turn`` entries on calls:events with LLM calls) and their
  latency next to the scripted turns';
- the longest silence the caller waited after it stopped speaking; target none over 2.5 s;
- repeated questions: the same question more than twice in a row; target none;
- in-call against offline word errors (the same model on the caller channel of the call's
  recording); target within 1.15x;
- with 3 and 4 callers at once: voice-to-voice p50/p95; targets 1.5 s / 2.5 s for 3.

BENCH_CALLERS=03,07 runs only the callers whose file names start so; BENCH_AT_ONCE=3,4 the
sizes of the concurrent rounds (empty: none), of the first callers selected; BENCH_ALONE=0
skips the calls one at a time; BENCH_MAX_CALL_S caps every call's length. Reports go to .run/bench-callers/reports.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from callsim.esl_server import EslServer
from callsim.run import percentile, run_call
from callsim.script import CallScript, load_scripts
from callsim.switch import Switch
from devstack import CALL_PATH, bench_stack, caller_options, start_all, stop_all

ROOT = Path(__file__).resolve().parent.parent
CALLERS = ROOT / "benchmarks" / "callers"
BOOKED_TARGET = 0.9
V2V_P50_TARGET_MS, V2V_P95_TARGET_MS = 1000, 2000
WAIT_TARGET_MS = 2500
WER_RATIO_TARGET = 1.15
AT_ONCE_TARGETS_MS = {3: (1500, 2500)}


def _selected() -> list[tuple[Path, CallScript]]:
    scripts = load_scripts(CALLERS)
    cap = os.environ.get("BENCH_MAX_CALL_S")
    if cap:  # a call cut short at the cap is a call that did not book
        for _, script in scripts:
            script.timing.max_call_s = min(script.timing.max_call_s, float(cap))
    wanted = [w for w in os.environ.get("BENCH_CALLERS", "").split(",") if w.strip()]
    if wanted:
        scripts = [(p, s) for p, s in scripts if any(p.name.startswith(w.strip()) for w in wanted)]
    return scripts


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _right(report: dict[str, Any]) -> bool:
    checks = report.get("expect") or []
    return bool(checks) and all(c["passed"] for c in checks)


def _v2v(report: dict[str, Any]) -> list[float]:
    return [t["v2v_ms"] for t in report.get("turns", []) if t["v2v_ms"] is not None]


def _line(report: dict[str, Any]) -> str:
    v2v = _v2v(report)
    policy = report.get("policy") or {}
    persona = report.get("persona") or {}
    repeats = persona.get("repeats") or {}
    most = repeats.get("most_asked") or {}
    asr = report.get("asr") or {}
    in_call, offline = asr.get("in_call") or {}, asr.get("offline") or {}
    failed = [
        c["check"].removeprefix("slots.") for c in report.get("expect", []) if not c["passed"]
    ]
    status = (report.get("outcome") or {}).get("status")
    verdict = "RIGHT" if _right(report) else "WRONG"
    return (
        f"  {verdict:<5} {report['script']:<36} {report.get('voice', ''):<24} "
        f"{report.get('codec', ''):<4}  status {status}"
        + (f" (wrong: {', '.join(failed)})" if failed and status else "")
        + f"\n        v2v p50/p95/max {_ms(percentile(v2v, 0.5))}/{_ms(percentile(v2v, 0.95))}/"
        f"{_ms(max(v2v) if v2v else None)} ms (n={len(v2v)})  longest wait "
        f"{_ms(report.get('longest_wait_ms'))} ms  LLM turns {policy.get('llm_turns')}/"
        f"{policy.get('turns')} p50 {_ms(policy.get('llm_p50_ms'))} ms max "
        f"{_ms(policy.get('llm_max_ms'))} ms  same question in a row "
        f"{repeats.get('max_in_row')}, most asked {most.get('ask')} x{most.get('times')}"
        f"  word errors in-call "
        f"{in_call.get('errors')}/{in_call.get('words')} offline {offline.get('errors')}/"
        f"{offline.get('words')}"
        + (f"\n        errors: {'; '.join(report['errors'])}" if report.get("errors") else "")
    )


def _overall(reports: list[dict[str, Any]], label: str) -> None:
    n = len(reports)
    right = sum(_right(r) for r in reports)
    v2v = [v for r in reports for v in _v2v(r)]
    policy = [r.get("policy") or {} for r in reports]
    llm = [ms for p in policy for ms in p.get("llm_ms", [])]
    turns = sum(p.get("turns", 0) for p in policy)
    scripted = [t["ms"] for p in policy for t in p.get("by_turn", []) if not t["llm_calls"]]
    waits = [r["longest_wait_ms"] for r in reports if r.get("longest_wait_ms") is not None]
    long_waits = [
        t["longest_wait_ms"]
        for r in reports
        for t in r.get("turns", [])
        if (t.get("longest_wait_ms") or 0) > WAIT_TARGET_MS
    ]
    repeats = [
        run
        for r in reports
        for run in ((r.get("persona") or {}).get("repeats") or {}).get("over_two", [])
    ]
    in_call = sum(((r.get("asr") or {}).get("in_call") or {}).get("errors") or 0 for r in reports)
    offline = sum(((r.get("asr") or {}).get("offline") or {}).get("errors") or 0 for r in reports)
    words = sum(((r.get("asr") or {}).get("in_call") or {}).get("words") or 0 for r in reports)
    p50, p95 = percentile(v2v, 0.5), percentile(v2v, 0.95)
    print(f"\n{label} ({n} calls):")
    print(f"  booked with every slot right  {right}/{n} = {right / max(n, 1):.0%}  "
          f"target {BOOKED_TARGET:.0%}")  # fmt: skip
    print(f"  voice-to-voice  p50 {_ms(p50)} ms  p95 {_ms(p95)} ms  max "
          f"{_ms(max(v2v) if v2v else None)} ms  (n={len(v2v)})  targets "
          f"{V2V_P50_TARGET_MS}/{V2V_P95_TARGET_MS} ms"
          + (f"  p50 ratio {p50 / V2V_P50_TARGET_MS:.2f}" if p50 else ""))  # fmt: skip
    print(f"  LLM turns       {len(llm)}/{turns} policy turns  LLM p50 "
          f"{_ms(percentile(llm, 0.5))} ms  p95 {_ms(percentile(llm, 0.95))} ms  max "
          f"{_ms(max(llm) if llm else None)} ms  (scripted p50 {_ms(percentile(scripted, 0.5))} ms)")  # fmt: skip
    print(f"  longest wait    {_ms(max(waits) if waits else None)} ms  turns over "
          f"{WAIT_TARGET_MS} ms: {len(long_waits)}")  # fmt: skip
    runs = ", ".join(f"{x['ask']} x{x['times']}" for x in repeats)
    print(
        f"  questions asked more than twice in a row: {len(repeats)}"
        + (f"  ({runs})" if runs else "")
    )
    ratio = f"{in_call / offline:.2f}x" if offline else "-"
    print(f"  word errors     in-call {in_call}, offline {offline} over {words} words  "
          f"ratio {ratio}  target {WER_RATIO_TARGET}x")  # fmt: skip


def _save(out: Path, everything: dict[str, Any]) -> None:
    (out / "reports.json").write_text(json.dumps(everything, indent=1, default=str))


async def main() -> None:
    stack = bench_stack("bench-callers")
    redis_url, out, ports = stack.redis_url, stack.folder, stack.ports
    esl_pw, fork_pw, env = stack.esl_password, stack.fork_password, stack.env
    scripts = _selected()
    sizes = [int(k) for k in os.environ.get("BENCH_AT_ONCE", "3,4").split(",") if k.strip()]
    main_task = asyncio.current_task()
    assert main_task is not None
    # Stopped from outside, it still stops the stack and keeps what it measured.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    switch = Switch(fork_build="jambonz")
    server = EslServer(switch, esl_pw, "127.0.0.1", ports.esl)
    await server.start()
    procs: dict[str, subprocess.Popen[str]] = {}
    everything: dict[str, Any] = {"alone": [], "at_once": {}}
    try:
        procs = await asyncio.to_thread(start_all, CALL_PATH, ports, env, out, timeout_s=300)
        options = caller_options(
            ports.bridge,
            fork_password=fork_pw,
            redis_url=redis_url,
            recordings=out / "callsim",
            asr_port=ports.asr,
        )
        alone = scripts if os.environ.get("BENCH_ALONE", "1") != "0" else []
        if alone:
            print(f"Persona callers, one at a time ({len(alone)}):", flush=True)
        for path, script in alone:
            started = time.monotonic()
            report = await run_call(switch, script, options)
            report["file"] = str(path.relative_to(ROOT))
            report["wall_s"] = round(time.monotonic() - started, 1)
            everything["alone"].append(report)
            print(_line(report), flush=True)
            _save(out, everything)  # a long run that is stopped keeps what it measured
        if alone:
            _overall(everything["alone"], "Persona callers, one at a time")
        for k in sizes:
            batch = [s for _, s in scripts[:k]]
            if len(batch) < k:
                break
            results = await asyncio.gather(*(run_call(switch, s, options) for s in batch))
            everything["at_once"][str(k)] = results
            for r in results:
                print(_line(r))
            _overall(list(results), f"{k} callers at once")
            target = AT_ONCE_TARGETS_MS.get(k)
            if target:
                print(f"  targets for {k} at once: v2v p50 {target[0]} ms, p95 {target[1]} ms")
    finally:
        stop_all(procs)
        await server.close()
        _save(out, everything)
        print(f"\nreports: {(out / 'reports.json').relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main())
