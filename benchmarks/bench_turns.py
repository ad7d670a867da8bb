"""Turn-taking on the whole stack: barge-ins, backchannels, echo, mid-sentence pauses, v2v.

Starts the call path with devstack (embedded LLM, ASR and TTS gateways, policy engine, bridge) on
free ports, callsim's FreeSWITCH in this process, and plays scripts built here, one call at a
time, with espeak-ng voices and Piper's joe as callers over G.711 (PCMU and PCMA) lines that
return the agent's voice (echo at -6, -12 and -18 dB, 60 to 250 ms late):

- interjection calls: real questions over the agent ("Sorry, where exactly is the clinic?"),
  the first of each call during the greeting, each followed by a backchannel ("uh-huh",
  "mm-hmm", ...) over the agent's answer; the caller's name and symptoms said with a 700 ms
  pause in the middle ("My name is | Peter Brown.");
- a cough call: a 250 ms shaped noise burst, generated here, over the agent;
- echo-only calls, every gain with every delay, where the caller only answers after the agent.

Prints, against the targets: the agent's yield to a barge-in (callsim's played channel) p50 and
p95 (150 / 250 ms), whether it stopped for good, whether its next reply answered the question
(address and opening hours from prompts/clinic/clinic.yaml), backchannels resumed, with words
lost (over 20 ms) and the agent finishing what it was saying (>= 95%), false yields on echo
(callsim's stops with nobody interjecting and the bridge's own yield counter; 0), premature cuts
of paused turns (<= 5%), voice-to-voice p50/p95 of the plain turns (600 / 900 ms), and the
bridge's CPU per second of call with BRIDGE_VAD=true against a repeat of some calls with the
bridge restarted with BRIDGE_VAD=false (the VAD may add 20%: a ratio of 1.2). Then every
failure: which voice, line and phrase, and what the agent did.

The exit status is non-zero only when the stack could not run (a service that did not start),
never for a figure off its target. The report goes to .run/bench-turns/report.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from callkit.audio import wav_header
from callkit.errors import ConfigError
from callsim.caller import LOST_OK_MS
from callsim.esl_server import EslServer
from callsim.run import RunOptions, interjection_summary, percentile, prepare_voices, run_call
from callsim.script import CallScript
from callsim.switch import Switch
from devstack import (
    CALL_PATH,
    SERVICES,
    StartError,
    bench_stack,
    caller_options,
    start,
    start_all,
    stop,
    stop_all,
)

ROOT = Path(__file__).resolve().parent.parent
NAME = "bench-turns"
BRIDGE = "fs_bridge"

YIELD_P50_TARGET_MS = 150
YIELD_P95_TARGET_MS = 250
BACKCHANNEL_FINISHED_TARGET = 0.95
FALSE_YIELDS_TARGET = 0
PREMATURE_CUT_TARGET = 0.05
V2V_P50_TARGET_MS = 600
V2V_P95_TARGET_MS = 900
CPU_RATIO_TARGET = 1.2

VOICES = (
    "espeak:en-gb",
    "espeak:en-us+f3",
    "piper:en_US-joe-medium",
    "espeak:en-gb-scotland",
    "espeak:en-us",
    "espeak:en-gb-x-rp",
    "espeak:en-us+m3",
)
#: (gain dB, delay ms): every gain with every delay.
ECHOES = tuple((gain, delay) for gain in (-6, -12, -18) for delay in (60, 150, 250))
NOISE_DBFS = -60.0
NAMES = ("Peter Brown", "Anna Kowalski", "Moira Campbell", "James Miller", "Sarah Connor",
         "David Wilson", "Laura Bennett", "Tom Fletcher", "Helen Price")  # fmt: skip

#: Questions over the agent, by the FAQ topic whose answer should come next.
QUESTIONS: dict[str, tuple[str, ...]] = {
    "address": (
        "Sorry, where exactly is the clinic?",
        "Wait, what is your address?",
        "Where are you located?",
        "Sorry, how do I get to you?",
        "Hold on, where is the clinic, which street is it on?",
    ),
    "hours": (
        "Wait, what time do you close today?",
        "What are your opening hours?",
        "Sorry, are you open on Saturday?",
        "When do you open in the morning?",
        "Hang on, are you open at the weekend?",
    ),
    "price": (
        "How much does the scan cost?",
        "Sorry, what is the price?",
        "How much is it?",
        "Wait, how much does an MRI cost?",
        "Excuse me, how much do your studies cost?",
    ),
}
#: What an answer on the topic says (prompts/clinic/clinic.yaml and faq.yaml), lower case.
ANSWERS: dict[str, re.Pattern[str]] = {
    "address": re.compile(r"harbor street|central park"),
    "hours": re.compile(r"monday to friday|in the morning|saturday from|closed on sunday"),
    "price": re.compile(r"\bcosts?\b|start at|\$|dollars"),
}
BACKCHANNELS = ("uh-huh", "yeah", "okay", "right", "mm-hmm")
COUGH = "[cough]"
SYMPTOMS = (
    "My left knee has hurt for | about two weeks.",
    "My lower back has been aching since | last month.",
    "I have a pain in my | right shoulder.",
    "My neck has hurt for | about three weeks.",
    "My hip has been sore for | two months now.",
)
PLAIN_SYMPTOMS = (
    "My left knee has hurt for two weeks.",
    "My back has ached for a month.",
    "My right shoulder hurts when I lift my arm.",
    "I have had headaches for three weeks.",
    "My hip hurts, for two months.",
)
#: A question as a plain turn (after the agent's turn), whose long answer the next barge-in cuts.
PRICE_ASKED = (
    "Before that, how much does the scan cost?",
    "Sorry, first, what does it cost?",
    "Can you tell me the price first?",
    "How much will it cost me?",
    "First, is it expensive?",
)
PLAIN_FOLLOW_UPS = ("It is a sharp pain.", "It is a dull ache.", "It is aching.")


# --------------------------------------------------------------------------- the scripts


@dataclass(frozen=True)
class Planned:
    """One script and what its steps are meant to test."""

    group: str  # interjections | cough | echo
    script: CallScript
    #: Per interjection step, in order: its kind, phrase, after_agent_ms, topic, which turn.
    interjections: tuple[dict[str, Any], ...] = ()

    @property
    def line(self) -> str:
        s = self.script
        echo = s.line.echo
        where = f"echo {echo.gain_db:g} dB/{echo.delay_ms} ms" if echo else "no echo"
        return f"{s.caller.voice} {s.caller.codec} {where}"


def _script(name: str, voice: str, codec: str, echo: tuple[int, int], turns: list[Any]) -> Any:
    return CallScript.model_validate(
        {
            "name": name,
            "direction": "inbound",
            "caller": {"voice": voice, "codec": codec},
            "line": {"echo": {"gain_db": echo[0], "delay_ms": echo[1]}, "noise_dbfs": NOISE_DBFS},
            "timing": {"agent_turn_gap_ms": 800, "step_timeout_s": 30, "max_call_s": 180},
            "turns": turns,
        }
    )


def interjection_call(i: int) -> Planned:
    """Five questions over the agent, each over the answer to the one before (the first over
    its greeting), a backchannel over most answers; the name and the symptoms said with a
    pause, a question asked as a plain turn, one plain answer."""
    voice, codec = VOICES[i % len(VOICES)], ("PCMU", "PCMA")[i % 2]
    echo = ECHOES[(4 * i) % len(ECHOES)]
    first, second = ("address", "hours") if i % 2 == 0 else ("hours", "address")
    turns: list[Any] = []
    meta: list[dict[str, Any]] = []

    def over(kind: str, text: str, at: int, topic: str | None, where: str) -> None:
        turns.append({kind: {"after_agent_ms": at, "say": text}})
        meta.append({"step": len(turns), "kind": kind, "say": text, "after_agent_ms": at,
                     "topic": topic, "over": where})  # fmt: skip

    def ask(k: int, topic: str, where: str, at: int = 1000, backchannel: bool = True) -> None:
        over("barge_in", QUESTIONS[topic][(i + k) % 5], at, topic, where)
        if backchannel:
            word = BACKCHANNELS[(i + k) % len(BACKCHANNELS)]
            at = (1300, 1600, 1900, 2100, 1500)[(i + k) % 5]
            over("backchannel", word, at, None, f"the answer on {topic}")

    # The greeting's first sentence ("Hello!") is short: the second begins about 1 s in.
    ask(0, first, "the greeting", (1300, 1700, 2200, 2700, 3100)[i % 5])
    ask(1, second, f"the answer on {first}")
    turns.append({"say_with_pause": {"say": f"My name is | {NAMES[i % len(NAMES)]}.",
                                     "pause_ms": 700}})  # fmt: skip
    turns.append({"say": PRICE_ASKED[i % len(PRICE_ASKED)]})
    ask(2, first, "the answer on price", (1200, 1500, 1800, 2000, 1400)[i % 5])
    ask(3, "price", f"the answer on {first}")
    ask(4, second, "the answer on price", backchannel=False)
    turns.append({"say_with_pause": {"say": SYMPTOMS[i % len(SYMPTOMS)], "pause_ms": 700}})
    turns.append({"say": PLAIN_FOLLOW_UPS[i % len(PLAIN_FOLLOW_UPS)]})
    turns.append({"hangup": {}})
    script = _script(f"turns-interject-{i + 1}", voice, codec, echo, turns)
    return Planned("interjections", script, tuple(meta))


def cough_call(cough_wav: Path) -> Planned:
    """Five coughs over the agent's greeting, each after it took its sentence up again."""
    turns: list[Any] = []
    meta: list[dict[str, Any]] = []
    for at, over in (
        (1500, "the greeting"),
        *((ms, "the greeting, resumed") for ms in (700, 700, 600, 600)),
    ):
        turns.append({"backchannel": {"after_agent_ms": at, "say": COUGH}})
        meta.append({"step": len(turns), "kind": "backchannel", "say": COUGH,
                     "after_agent_ms": at, "topic": None, "over": over})  # fmt: skip
    turns.append({"hangup": {}})
    script = _script("turns-cough", f"wav:{cough_wav}", "PCMA", (-12, 150), turns)
    return Planned("cough", script, tuple(meta))


def echo_call(i: int) -> Planned:
    """Plain answers after the agent's turns, on one of the nine echo lines."""
    voice, codec = VOICES[(i + 1) % len(VOICES)], ("PCMA", "PCMU")[i % 2]
    echo = ECHOES[i % len(ECHOES)]
    turns = [
        {"say": f"Hi, my name is {NAMES[i % len(NAMES)]}."},
        {"say": PLAIN_SYMPTOMS[i % len(PLAIN_SYMPTOMS)]},
        {"hangup": {}},
    ]
    name = f"turns-echo-{-echo[0]}db-{echo[1]}ms"
    return Planned("echo", _script(name, voice, codec, echo, turns))


def suite(quick: bool, cough_wav: Path) -> list[Planned]:
    if quick:
        echoes = [echo_call(i) for i in (0, 4, 8)]  # -6/60, -12/150, -18/250
        return [interjection_call(0), interjection_call(1), cough_call(cough_wav), *echoes]
    return [
        *(interjection_call(i) for i in range(5)),
        cough_call(cough_wav),
        *(echo_call(i) for i in range(len(ECHOES))),
    ]


def repeat_set(planned: list[Planned], quick: bool) -> list[Planned]:
    """The calls played again with BRIDGE_VAD=false: echo calls (the VAD runs on every frame
    of the caller channel, so their CPU per second compares like with like)."""
    return [p for p in planned if p.group == "echo"][: 1 if quick else 2]


def write_cough(path: Path) -> None:
    """A cough: 250 ms of low-passed noise, a sharp onset and a decaying tail, with 100 ms of
    silence either side, 16 kHz mono."""
    rate = 16000
    rng = np.random.default_rng(7)
    n = rate // 4
    noise = np.convolve(rng.standard_normal(n + 7), np.ones(8) / 8, mode="valid")[:n]
    t = np.arange(n) / rate
    envelope = np.minimum(1.0, t / 0.012) * np.exp(-np.maximum(0.0, t - 0.03) / 0.07)
    burst = noise * envelope
    burst *= 0.6 * 32767 / float(np.max(np.abs(burst)))
    pad = np.zeros(rate // 10)
    pcm = np.concatenate([pad, burst, pad]).astype("<i2").tobytes()
    path.write_bytes(wav_header(rate, 1, len(pcm)) + pcm)


# --------------------------------------------------------------------------- measuring


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bridge_counters(client: httpx.AsyncClient, port: int) -> dict[str, float]:
    """The bridge's yield, resume and stop counters."""
    try:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    except httpx.HTTPError:
        return {}
    wanted = ("bridge_yields_total", "bridge_resumes_total", "bridge_barge_ins_total")
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            found[name] = float(value)
    return found


@dataclass
class Played:
    """A call as played: the plan, callsim's report, the bridge's CPU and counters over it."""

    plan: Planned
    report: dict[str, Any]
    bridge_cpu_s: float
    counters: dict[str, float] = field(default_factory=dict)

    @property
    def call_s(self) -> float:
        return float(self.report.get("duration_ms") or 0) / 1000


async def play_one(
    switch: Switch,
    options: RunOptions,
    plan: Planned,
    bridge: subprocess.Popen[str],
    client: httpx.AsyncClient,
    port: int,
) -> Played:
    before_cpu, before = cpu_seconds(bridge.pid), await bridge_counters(client, port)
    report = await run_call(switch, plan.script, options)
    after_cpu, after = cpu_seconds(bridge.pid), await bridge_counters(client, port)
    counters = {k.removeprefix("bridge_"): after[k] - before.get(k, 0.0) for k in after}
    played = Played(plan, report, after_cpu - before_cpu, counters)
    i = report.get("interjections") or {}
    print(f"  {plan.script.name:<26} {played.call_s:5.0f} s  {plan.line:<44} "
          f"yields {i.get('yield_n', 0)}  bridge yields {counters.get('yields_total', 0):.0f}  "
          f"errors {len(report.get('errors', []))}", flush=True)  # fmt: skip
    return played


def _skipped_steps(report: dict[str, Any]) -> set[int]:
    """Interjection steps the agent had finished before (callsim's error names the turn)."""
    found = set()
    for error in report.get("errors", []):
        m = re.match(r"turn (\d+): the agent had stopped before the", error)
        if m:
            found.add(int(m.group(1)))
    return found


def interjections(played: list[Played]) -> list[dict[str, Any]]:
    """Every measured interjection with its call, line, phrase and place in the script; the
    reply that followed a question, and whether it answered it."""
    rows = []
    for p in played:
        skipped = _skipped_steps(p.report)
        said = p.report.get("transcript", [])
        callers = [t for t in said if t["role"] == "caller"]
        asr = (p.report.get("asr") or {}).get("lines") or []
        for meta, b in zip(p.plan.interjections, p.report.get("barge_ins", []), strict=False):
            row = {**b, **meta, "call": p.plan.script.name, "line": p.plan.line,
                   "over_agent": meta["step"] not in skipped}  # fmt: skip
            if meta["topic"] is not None:
                onset = b["caller_onset_ms"]
                nxt = next((t["t_ms"] for t in callers
                            if t["t_ms"] > onset and t.get("kind") != "backchannel"), None)  # fmt: skip
                reply = [t["text"] for t in said if t["role"] == "agent" and t["t_ms"] >= onset
                         and (nxt is None or t["t_ms"] < nxt)]  # fmt: skip
                row["reply"] = " ".join(reply)
                row["heard"] = next((a["in_call"] for a in asr if a["t_ms"] == onset), None)
                row["answered"] = bool(ANSWERS[meta["topic"]].search(row["reply"].lower()))
            rows.append(row)
    return rows


def figures(
    played: list[Played], repeat_on: list[Played], repeat_off: list[Played]
) -> dict[str, Any]:
    rows = interjections(played)
    measured = [r for r in rows if r["over_agent"]]
    barges = [r for r in measured if r["kind"] == "barge_in"]
    bcs = [r for r in measured if r["kind"] == "backchannel"]
    turns = [t for p in played for t in p.report.get("turns", [])]
    summary = interjection_summary(measured, turns)
    barge_yields = [r["yield_ms"] for r in barges if r["yield_ms"] is not None]
    questions = [r for r in barges if r["topic"] in ("address", "hours")]
    prices = [r for r in barges if r["topic"] == "price"]
    greeting = [r for r in barges if r["over"] == "the greeting"]
    finished = [r for r in bcs if r["correct"]]
    echo_calls = [p for p in played if p.plan.group == "echo"]
    plain = [t["v2v_ms"] for t in turns if t.get("cut_in") is None and t["v2v_ms"] is not None]
    paused = [t for t in turns if t.get("cut_in") is not None]

    def per_s(group: list[Played]) -> float | None:
        seconds = sum(p.call_s for p in group)
        return sum(p.bridge_cpu_s for p in group) / seconds if seconds else None

    on, off = per_s(repeat_on), per_s(repeat_off)
    return {
        "calls": len(played),
        "call_errors": sum(bool(p.report.get("errors")) for p in played),
        "summary": summary,
        "barge_ins": {
            "n": len(barges),
            "not_over_agent": sum(r["kind"] == "barge_in" and not r["over_agent"] for r in rows),
            "yield_n": len(barge_yields),
            "yield_p50_ms": percentile(barge_yields, 0.5),
            "yield_p95_ms": percentile(barge_yields, 0.95),
            "stopped": sum(bool(r["correct"]) for r in barges),
            "during_greeting": len(greeting),
            "greeting_stopped": sum(bool(r["correct"]) for r in greeting),
            "questions": len(questions),
            "answered": sum(bool(r.get("answered")) for r in questions),
            "price_questions": len(prices),
            "price_answered": sum(bool(r.get("answered")) for r in prices),
        },
        "backchannels": {
            "n": len(bcs),
            "yielded": sum(bool(r["yielded"]) for r in bcs),
            "resumed": sum(bool(r["yielded"] and r["resumed"]) for r in bcs),
            "words_lost": sum((r.get("lost_ms") or 0) > LOST_OK_MS for r in bcs),
            "lost_ms": sum(r.get("lost_ms") or 0 for r in bcs),
            "repeated_ms": sum(r.get("repeated_ms") or 0 for r in bcs),
            "finished": len(finished),
            "finished_share": len(finished) / len(bcs) if bcs else None,
        },
        "echo": {
            "calls": len(echo_calls),
            "spurious_stops": sum(len(p.report.get("spurious_stops", [])) for p in echo_calls),
            "bridge_yields": sum(p.counters.get("yields_total", 0) for p in echo_calls),
            "bridge_stops": sum(p.counters.get("barge_ins_total", 0) for p in echo_calls),
            "false_yield_calls": sum(_false_yields(p) > 0 for p in echo_calls),
        },
        "paused": {
            "n": len(paused),
            "cut": sum(bool(t["cut_in"]) for t in paused),
            "share": sum(bool(t["cut_in"]) for t in paused) / len(paused) if paused else None,
        },
        "v2v": {
            "n": len(plain),
            "p50_ms": percentile(plain, 0.5),
            "p95_ms": percentile(plain, 0.95),
        },
        "cpu": {
            "all_calls_per_s": per_s(played),
            "vad_on_per_s": on,
            "vad_off_per_s": off,
            "ratio": on / off if on is not None and off else None,
            "repeat": [p.plan.script.name for p in repeat_off],
        },
        "rows": rows,
    }


def _false_yields(p: Played) -> int:
    """Times the agent gave way on an echo call with nobody interjecting: callsim's stops with
    the caller silent, or the bridge's own yields (the larger)."""
    return max(len(p.report.get("spurious_stops", [])), int(p.counters.get("yields_total", 0)))


# --------------------------------------------------------------------------- printing


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _pct(part: int, whole: int) -> str:
    return "-" if not whole else f"{part}/{whole} = {100 * part / whole:.0f}%"


def _ratio(value: float | None, target: float) -> str:
    return "-" if value is None or not target else f"{value / target:.2f}"


def print_figures(f: dict[str, Any]) -> None:
    b, c, e, pz, v, cpu = (
        f["barge_ins"],
        f["backchannels"],
        f["echo"],
        f["paused"],
        f["v2v"],
        f["cpu"],
    )
    s = f["summary"]
    print(f"\nTurn-taking ({f['calls']} calls, {f['call_errors']} with caller-side errors):")
    print(f"  barge-in yield        p50 {_ms(b['yield_p50_ms'])}  p95 {_ms(b['yield_p95_ms'])} "
          f"(n={b['yield_n']} of {b['n']})  target p50 <= {YIELD_P50_TARGET_MS} / p95 <= "
          f"{YIELD_P95_TARGET_MS} ms  ratio {_ratio(b['yield_p50_ms'], YIELD_P50_TARGET_MS)} / "
          f"{_ratio(b['yield_p95_ms'], YIELD_P95_TARGET_MS)}")  # fmt: skip
    print(f"  stop command          p50 {_ms(s['command_stop_p50_ms'])}  p95 "
          f"{_ms(s['command_stop_p95_ms'])} (all interjections; killAudio after the onset)")  # fmt: skip
    print(f"  barge-ins stopped     {_pct(b['stopped'], b['n'])} (yielded, not taken back); during "
          f"the greeting {_pct(b['greeting_stopped'], b['during_greeting'])}"
          + (f"; {b['not_over_agent']} more were said with the agent silent (not measured)"
             if b["not_over_agent"] else ""))  # fmt: skip
    print(f"  question answered     {_pct(b['answered'], b['questions'])} (address, opening "
          f"hours: the next reply says them); price {_pct(b['price_answered'], b['price_questions'])}")  # fmt: skip
    share = c["finished_share"]
    print(f"  backchannels          {c['n']}: yielded {c['yielded']}, resumed {c['resumed']}"
          f" ({_pct(c['resumed'], c['yielded'])} of yields), words lost in {c['words_lost']} "
          f"({c['lost_ms']} ms), repeated {c['repeated_ms']} ms")  # fmt: skip
    print(f"  agent finished        {_pct(c['finished'], c['n'])} of backchannels  target >= "
          f"{BACKCHANNEL_FINISHED_TARGET:.0%}  ratio "
          f"{'-' if share is None else f'{share / BACKCHANNEL_FINISHED_TARGET:.2f}'}")  # fmt: skip
    print(f"  false yields on echo  {e['false_yield_calls']} of {e['calls']} echo calls (callsim "
          f"stops with nobody interjecting {e['spurious_stops']}, bridge yields {e['bridge_yields']:.0f},"
          f" bridge stops {e['bridge_stops']:.0f})  target {FALSE_YIELDS_TARGET}")  # fmt: skip
    pshare = pz["share"]
    print(f"  premature cuts        {_pct(pz['cut'], pz['n'])} of paused turns  target <= "
          f"{PREMATURE_CUT_TARGET:.0%}  ratio "
          f"{'-' if pshare is None else f'{pshare / PREMATURE_CUT_TARGET:.2f}'}")  # fmt: skip
    print(f"  voice-to-voice        p50 {_ms(v['p50_ms'])}  p95 {_ms(v['p95_ms'])} (n={v['n']} plain "
          f"turns)  target p50 <= {V2V_P50_TARGET_MS} / p95 <= {V2V_P95_TARGET_MS} ms  ratio "
          f"{_ratio(v['p50_ms'], V2V_P50_TARGET_MS)} / {_ratio(v['p95_ms'], V2V_P95_TARGET_MS)}")  # fmt: skip
    on, off, ratio = cpu["vad_on_per_s"], cpu["vad_off_per_s"], cpu["ratio"]
    print(f"  bridge CPU            {_num(cpu['all_calls_per_s'])} CPU-s per call-s over all "
          f"calls; {', '.join(cpu['repeat'])}: VAD on {_num(on)}, VAD off {_num(off)}, ratio "
          f"{_num(ratio)}  target <= {CPU_RATIO_TARGET}  ratio "
          f"{_ratio(ratio, CPU_RATIO_TARGET)}")  # fmt: skip


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def failure_lines(played: list[Played], f: dict[str, Any]) -> list[str]:
    """Each failure with its voice, line and phrase, and what the agent did."""
    out = []
    for r in f["rows"]:
        where = f"{r['call']} ({r['line']}) {r['kind']} {r['say']!r} at {r['after_agent_ms']} ms over {r['over']}"
        if not r["over_agent"]:
            out.append(f"{where}: the agent was silent when it began (not measured)")
            continue
        if r["kind"] == "barge_in":
            if not r["yielded"]:
                out.append(f"{where}: did not yield")
            elif r["resumed"]:
                out.append(f"{where}: yielded in {r['yield_ms']} ms, then took it back at "
                           f"{r['resumed_ms']} ms (should stop)")  # fmt: skip
            elif (r["yield_ms"] or 0) > YIELD_P95_TARGET_MS:
                out.append(f"{where}: slow yield {r['yield_ms']} ms (stop command "
                           f"{r['command_stop_ms']} ms)")  # fmt: skip
            if r["topic"] is not None and not r.get("answered"):
                out.append(f"{where}: heard as {r.get('heard')!r}; the next reply did not "
                           f"answer {r['topic']}: {(r.get('reply') or '(nothing)')[:160]!r}")  # fmt: skip
        elif not r["correct"]:
            if not r["resumed"]:
                out.append(f"{where}: yielded in {r['yield_ms']} ms and did not resume "
                           f"(audio again at {r['agent_audio_again_ms']} ms)")  # fmt: skip
            else:
                out.append(f"{where}: resumed at {r['resumed_ms']} ms but lost {r['lost_ms']} ms "
                           f"(repeated {r['repeated_ms']} ms)")  # fmt: skip
    for p in played:
        name = f"{p.plan.script.name} ({p.plan.line})"
        if p.plan.group == "echo" and _false_yields(p):
            stops = ", ".join(
                f"{s['kind']} at {s['t_ms']} ms" for s in p.report.get("spurious_stops", [])
            )
            out.append(f"{name}: false yield on echo: bridge yields "
                       f"{p.counters.get('yields_total', 0):.0f}, stops "
                       f"{p.counters.get('barge_ins_total', 0):.0f}; callsim saw {stops or 'no stop'}")  # fmt: skip
        for t in p.report.get("turns", []):
            if t.get("cut_in"):
                where = "in a pause" if t.get("cut_in_pause") else "over the caller"
                out.append(f"{name}: premature cut of {t['text']!r} at {t['cut_in_ms']} ms ({where}; "
                           f"caller spoke {t['caller_speech_start_ms']}-{t['caller_speech_end_ms']} ms)")  # fmt: skip
            elif t.get("cut_in") is None and (t["v2v_ms"] or 0) > V2V_P95_TARGET_MS:
                out.append(f"{name}: slow reply {t['v2v_ms']} ms after {t['text']!r}")
            elif t["v2v_ms"] is None:
                out.append(f"{name}: no reply to {t['text']!r}")
        for error in p.report.get("errors", []):
            out.append(f"{name}: {error}")
    return out


# --------------------------------------------------------------------------- the run


def arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Turn-taking on the whole stack: barge-ins, backchannels and a cough over "
        "echo through G.711, echo-only calls, mid-sentence pauses, voice-to-voice, and the "
        "bridge's CPU with and without its VAD; figures against their targets, then each "
        "failure with its voice, line and phrase.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer calls (2 interjection calls, "
                        "the cough, 3 echo lines; the VAD-off repeat of one echo call)")  # fmt: skip
    parser.add_argument("--report", type=Path, default=ROOT / ".run" / NAME / "report.json",
                        help="where the JSON report goes (default .run/bench-turns/report.json)")  # fmt: skip
    return parser.parse_args(argv)


async def restart_bridge(
    procs: dict[str, subprocess.Popen[str]], env: dict[str, str], stack_ports: Any, logs: Path
) -> None:
    """Only the bridge again, with ``env`` (the switch keeps running; it reconnects)."""
    service = SERVICES[BRIDGE]
    await asyncio.to_thread(stop, procs.pop(BRIDGE))
    procs[BRIDGE] = await asyncio.to_thread(
        start, service.module, env, service.port(stack_ports), args=service.argv(stack_ports),
        ready_path=service.ready_path, timeout_s=120, output=logs / f"{BRIDGE}-novad.log",
    )  # fmt: skip


async def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.monotonic()
    report: dict[str, Any] = {"quick": args.quick, "load_before": os.getloadavg()}
    stack = bench_stack(NAME, {"BRIDGE_SILENCE_S": "4", "BRIDGE_VAD": "true"})
    logs, ports = stack.folder, stack.ports
    tmp = tempfile.TemporaryDirectory(prefix="bench-turns-")
    cough = Path(tmp.name) / "cough.wav"
    write_cough(cough)
    planned = suite(args.quick, cough)
    again = repeat_set(planned, args.quick)
    lines = await asyncio.to_thread(lambda: sum(prepare_voices(p.script) for p in planned))
    print(f"Turn-taking suite: {len(planned)} calls, then {len(again)} again with BRIDGE_VAD=false"
          f"; {lines} caller lines synthesized in {time.monotonic() - t0:.0f} s", flush=True)  # fmt: skip
    switch = Switch(fork_build="jambonz")
    server = EslServer(switch, stack.esl_password, "127.0.0.1", ports.esl)
    await server.start()
    options = caller_options(ports.bridge, fork_password=stack.fork_password,
                             redis_url=stack.redis_url, recordings=logs / "callsim")  # fmt: skip
    procs: dict[str, subprocess.Popen[str]] = {}
    client = httpx.AsyncClient(timeout=10)
    try:
        procs = await asyncio.to_thread(start_all, CALL_PATH, ports, stack.env, logs, timeout_s=300)
        report["startup_s"] = round(time.monotonic() - t0, 1)
        print(f"  stack up in {report['startup_s']:.0f} s", flush=True)
        played = [await play_one(switch, options, p, procs[BRIDGE], client, ports.bridge)
                  for p in planned]  # fmt: skip
        names = {p.script.name for p in again}
        print("  restarting the bridge with BRIDGE_VAD=false", flush=True)
        await restart_bridge(procs, stack.env | {"BRIDGE_VAD": "false"}, ports, logs)
        off = [await play_one(switch, options, p, procs[BRIDGE], client, ports.bridge)
               for p in again]  # fmt: skip
        on = [p for p in played if p.plan.script.name in names]
        result = figures(played, on, off)
        print_figures(result)
        problems = failure_lines(played, result)
        print(f"\nFailures ({len(problems)}):" if problems else "\nFailures: none")
        for line in problems:
            print(f"  {line}")
        report["figures"] = {k: v for k, v in result.items() if k != "rows"}
        report["interjections"] = result["rows"]
        report["failures"] = problems
        report["calls"] = [{"plan": p.plan.group, "line": p.plan.line, "bridge_cpu_s": p.bridge_cpu_s,
                            "bridge_counters": p.counters, "report": p.report} for p in played]  # fmt: skip
        report["vad_off_calls"] = [{"line": p.plan.line, "bridge_cpu_s": p.bridge_cpu_s,
                                    "bridge_counters": p.counters, "report": p.report}
                                   for p in off]  # fmt: skip
    finally:
        await client.aclose()
        await asyncio.to_thread(stop_all, procs)
        await server.close()
        tmp.cleanup()
        report["wall_s"] = round(time.monotonic() - t0, 1)
        report["load_after"] = os.getloadavg()
        load = "/".join(f"{x:.1f}" for x in report["load_before"])
        print(f"  wall time             {report['wall_s'] / 60:.1f} min on {os.cpu_count()} cores"
              f" (load average {load} before, "
              f"{'/'.join(f'{x:.1f}' for x in report['load_after'])} after)")  # fmt: skip
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=1, default=str, ensure_ascii=False))
        shown = args.report.relative_to(ROOT) if args.report.is_relative_to(ROOT) else args.report
        print(f"report: {shown}")
    return report


async def _until_sigterm(args: argparse.Namespace) -> None:
    """The run, cancelled by SIGTERM as by Ctrl-C, so its processes are stopped either way."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    await run(args)


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    try:
        asyncio.run(_until_sigterm(args))
    except (StartError, ConfigError, OSError) as exc:
        print(f"bench-turns could not run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError) as exc:
        how = "Ctrl-C" if isinstance(exc, KeyboardInterrupt) else "SIGTERM"
        print(f"stopped ({how}); every process the bench started is stopped", file=sys.stderr)
        return 130 if isinstance(exc, KeyboardInterrupt) else 143
    return 0


if __name__ == "__main__":
    sys.exit(main())
