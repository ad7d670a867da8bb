"""Placing a scripted call on the emulated switch and reporting on it.

Inbound calls run through the deployment's own dialplan (freeswitch/conf, rendered by the
image's entrypoint as at container start): whatever it sets, answers, forks and parks is what the
emulated switch does, so a broken dialplan breaks the emulated calls too. Outbound scripts wait
for the agent to originate a call to the caller's number and answer it after the given rings (or
are busy, do not answer, are a voicemail, reject it or do not exist), attempt by attempt
(:func:`callee_of`, :func:`answer`; ``callsim serve --callees`` keeps them waiting for a dialer).
With a Redis URL the report adds the agent's sentences (``calls:events``) and checks
the script's ``expect`` against the call's outcome (``calls:completed``); both are read
through the shared contracts (:mod:`callkit.contracts`).

The report's ``asr`` part compares what the caller said (the script's lines) with the finals the
agent received in the call (``caller.final`` on ``calls:events``) and, given the ASR gateway's
URL, with offline transcription of the caller channel of the call's own recording by the same
model (``POST /v1/audio/transcriptions``, one request per caller utterance): in-call and
offline word errors for every call.

A persona script hears the agent through ``calls:events`` (the bridge's ``agent.sentence``
entries for the call) and is judged against its own facts: the report's ``persona`` part has
each exchange (what the agent said, the question the persona took it for, the answer), the
longest run of one question, and ``expect`` checks every slot the persona gave. ``policy``
has the policy engine's turns (``turn`` entries): how many needed the LLM, and how long they took.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis.asyncio as aioredis

from callkit.audio import read_wav, wav_header
from callkit.contracts import live
from callkit.contracts import outcome as outcomes
from callkit.contracts.streams import CALLS_COMPLETED, CALLS_EVENTS
from callkit.errors import AgentError, InvalidInput
from callsim import fsconf
from callsim.caller import LOST_OK_MS, TICK_MS, Ears, ScriptedCaller, Utterance
from callsim.fsconf import ConfError, Dialplan, expand
from callsim.line import RATE
from callsim.script import MACHINES, CallScript
from callsim.switch import Callee, Channel, Switch
from callsim.voices import voice_for
from callsim.wer import wer

RING_S = 1.0  # one ring, shortened so outbound tests do not wait six seconds a ring
#: How long after the caller's words end a stop is still theirs: the recognizer's final for the
#: rest of a sentence the agent began to answer at a pause can come this late under load.
CROSSED_FINAL_MS = 3000


@dataclass
class RunOptions:
    fork_url: str = "ws://127.0.0.1:8080/fork/{uuid}"
    fork_user: str | None = None
    fork_password: str | None = None
    recordings: Path = Path("recordings/callsim")
    redis_url: str | None = None
    outcome_timeout_s: float = 15.0
    outcome_stream: str = CALLS_COMPLETED
    events_stream: str = CALLS_EVENTS
    originate_timeout_s: float = 120.0
    #: How long an answered call waits for the switch's audio fork to reach the agent before
    #: it is reported and hung up (a bridge that is down, a dialplan that starts no fork). At
    #: most the caller's own 20 s.
    fork_start_timeout_s: float = 20.0
    #: The deployment's FreeSWITCH folder: inbound calls run through its dialplan.
    freeswitch_dir: Path = fsconf.DEFAULT_DIR
    #: The ASR gateway (``http://host:port``): the report adds offline transcription of the
    #: caller channel by the same model, to compare with what the call heard.
    asr_url: str | None = None
    asr_timeout_s: float = 60.0
    #: OPERATOR_DESTINATION of the emulated deployment: where a call handed to a person rings.
    operator_destination: str = "sofia/gateway/carrier/+15550100100"


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def interjection_summary(
    barge_ins: list[dict[str, Any]], turns: list[dict[str, Any]]
) -> dict[str, Any]:
    """What the caller heard when it talked over the agent and paused mid-sentence, over one
    call's (or a suite's) barge-ins, backchannels and turns."""
    yields = [b["yield_ms"] for b in barge_ins if b.get("yield_ms") is not None]
    commands = [b["command_stop_ms"] for b in barge_ins if b.get("command_stop_ms") is not None]
    backchannels = [b for b in barge_ins if b["kind"] == "backchannel"]
    yielded = [b for b in backchannels if b.get("yielded")]
    lost = [b for b in backchannels if (b.get("lost_ms") or 0) > LOST_OK_MS]
    paused = [t for t in turns if t.get("cut_in") is not None]
    return {
        "yield_n": len(yields),
        "yield_p50_ms": percentile(yields, 0.5),
        "yield_p95_ms": percentile(yields, 0.95),
        "command_stop_p50_ms": percentile(commands, 0.5),
        "command_stop_p95_ms": percentile(commands, 0.95),
        "barge_ins": len(barge_ins) - len(backchannels),
        "backchannels": len(backchannels),
        "backchannels_yielded": len(yielded),
        "backchannel_resumed_share": _share(sum(bool(b["resumed"]) for b in yielded), len(yielded)),
        "backchannel_words_lost": len(lost),
        "backchannel_lost_ms": sum(b.get("lost_ms") or 0 for b in backchannels),
        "backchannel_repeated_ms": sum(b.get("repeated_ms") or 0 for b in backchannels),
        "paused_turns": len(paused),
        "premature_cuts": sum(bool(t["cut_in"]) for t in paused),
        "premature_cut_share": _share(sum(bool(t["cut_in"]) for t in paused), len(paused)),
    }


def interjection_line(s: dict[str, Any]) -> str | None:
    """``interjection_summary`` in one line; None when there was nothing to measure."""
    parts = []
    if s["yield_n"]:
        parts.append(
            f"yield p50 {s['yield_p50_ms']} ms, p95 {s['yield_p95_ms']} ms (n={s['yield_n']}; "
            f"stop command p50 {s['command_stop_p50_ms']} ms)"
        )
    if s["backchannels"]:
        resumed = s["backchannel_resumed_share"]
        parts.append(
            f"backchannels {s['backchannels_yielded']}/{s['backchannels']} yielded, resumed "
            f"{'-' if resumed is None else f'{resumed:.0%}'}, words lost in "
            f"{s['backchannel_words_lost']} of them ({s['backchannel_lost_ms']} ms)"
        )
    if s["paused_turns"]:
        parts.append(f"premature cuts {s['premature_cuts']}/{s['paused_turns']} paused turns")
    return "; ".join(parts) or None


async def run_call(
    switch: Switch,
    script: CallScript,
    options: RunOptions,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Play one script to its end; the report as a JSON-ready dict."""
    started = time.time()
    placed = (
        await _inbound(switch, script, options, progress)
        if script.direction == "inbound"
        else await _outbound(switch, script, options, progress)
    )
    if placed is None:
        return _report_without_call(script, options, started)
    return await play(switch, placed, script, options, started)


async def play(
    switch: Switch,
    caller: ScriptedCaller,
    script: CallScript,
    options: RunOptions,
    started: float | None = None,
) -> dict[str, Any]:
    """Play an attached caller's script to its end (``max_call_s`` at most); the report."""
    started = time.time() if started is None else started
    max_s = script.timing.max_call_s
    try:
        async with asyncio.timeout(max_s):
            if not await _fork_started(caller, options.fork_start_timeout_s):
                caller.errors.append(
                    f"timed out after {options.fork_start_timeout_s:g}s waiting for the audio "
                    "fork to start"
                )
                switch.hangup(caller.channel, "NORMAL_CLEARING", by="caller")
            await caller.run()  # on a call already hung up it returns at once
    except TimeoutError:
        caller.errors.append(f"the call ran past max_call_s={max_s:g}")
        if not caller.hung_up:
            switch.hangup(caller.channel, "NORMAL_CLEARING", by="caller")
    finally:
        if isinstance(caller.ears, StreamEars):
            await caller.ears.aclose()
    return await _report(switch, caller, script, options, started)


async def _fork_started(caller: ScriptedCaller, timeout_s: float) -> bool:
    """Whether the fork's first frame reached the caller within ``timeout_s`` (True as well when
    the call ended first: the caller reports that itself)."""
    deadline = time.monotonic() + timeout_s
    while caller.timeline.tick == 0 and not caller.hung_up:
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(TICK_MS / 1000)
    return True


class StreamEars:
    """What the agent said in one call, from the bridge's ``agent.sentence`` entries on
    ``calls:events`` (written as each sentence goes out, before its audio has played)."""

    def __init__(self, redis_url: str, stream: str, call_id: str) -> None:
        self._client: Any = aioredis.Redis.from_url(redis_url)
        self._stream = stream
        self._wanted = call_id.encode()
        self._last = f"{int(time.time() * 1000) - 1000}-0"  # the call has not begun yet
        self.problem: str | None = None

    async def agent_said(self) -> list[str]:
        said: list[str] = []
        try:
            entries = await self._client.xrange(self._stream, min=f"({self._last}", max="+")
        except Exception as exc:  # redis errors: the persona hears nothing, the report says so
            self.problem = f"could not read {self._stream}: {type(exc).__name__}"
            return said
        for entry_id, fields in entries:
            self._last = entry_id.decode()
            if fields.get(b"call_id") != self._wanted:
                continue
            try:
                event = live.parse_entry(fields)
            except InvalidInput:
                continue
            if isinstance(event, live.AgentSentence):
                said.append(event.text)
        return said

    async def aclose(self) -> None:
        await self._client.aclose()


async def _inbound(
    switch: Switch,
    script: CallScript,
    options: RunOptions,
    progress: Callable[[str], None] | None,
) -> ScriptedCaller:
    ch = switch.create_channel(
        direction="inbound",
        caller=script.caller.number,
        destination=script.callee,
        codec=script.caller.codec,
        variables={
            "sip_from_user": script.caller.number.lstrip("+"),
            "sip_to_user": script.callee,
            "caller_id_number": script.caller.number,
            "destination_number": script.callee,
            # What a proxy in front would tag per dialled number; the dialplan reads it.
            "sip_h_X-Agent-Language": script.language,
        },
    )
    caller = _attach(switch, ch, script, options, progress)
    try:
        loaded = load_deployment(switch, options)
    except ConfError as exc:
        caller.errors.append(f"the FreeSWITCH configuration was refused: {exc}")
        switch.hangup(ch, "DESTINATION_OUT_OF_ORDER")
        return caller
    context = loaded.context
    ch.context = context
    found = loaded.dialplan.hunt(context, {**ch.variables, "uuid": ch.uuid})
    if found is None:
        caller.errors.append(f"no extension of context {context!r} takes {script.callee!r}")
        switch.hangup(ch, "NO_ROUTE_DESTINATION")
        return caller
    for action in found[1]:
        data = expand(action.data, {**switch.globals, **ch.variables, "uuid": ch.uuid})
        if action.application in ("set", "export"):
            name, _, value = data.partition("=")
            ch.variables[name] = value
        elif action.application == "answer":
            switch.answer(ch)
            for reply in await switch.api_on(ch, "api_on_answer"):
                if not reply.startswith("+OK"):
                    caller.errors.append(f"api_on_answer failed: {reply.strip() or 'no reply'}")
        elif action.application == "park":
            ch.state = "CS_PARK"
            switch.fire_channel("CHANNEL_PARK", ch)
            break  # park holds the call until the bridge acts on it
        elif action.application == "hangup":
            caller.errors.append(f"the dialplan hung up: {data or 'NORMAL_CLEARING'}")
            switch.hangup(ch, data or "NORMAL_CLEARING")
            break
        else:
            caller.errors.append(f"dialplan application {action.application!r} is not emulated")
    return caller


@dataclass(frozen=True)
class Deployment:
    """What the switch holds after reading the deployment's configuration."""

    dialplan: Dialplan
    context: str  # where the carrier's calls enter (the SIP profile's context)
    globals: dict[str, str]
    gateways: frozenset[str]


def deployment(switch: Switch, options: RunOptions) -> Deployment:
    """The deployment's configuration, rendered the way the FreeSWITCH image renders it at start."""
    base, sep, rest = options.fork_url.rpartition("/{uuid}")
    if not sep or rest:
        raise ConfError(f"fork_url must end in /{{uuid}} (got {options.fork_url!r})")
    key = (
        base,
        options.fork_user,
        options.fork_password,
        switch.fork_build,
        options.operator_destination,
        str(options.freeswitch_dir),
    )
    cached = _DEPLOYMENTS.get(key)
    if cached is None:
        env = {
            # Callers without credentials still send some: the deployment always authenticates.
            "ESL_PASSWORD": secrets.token_urlsafe(12),
            "FORK_PASSWORD": options.fork_password or secrets.token_urlsafe(12),
            "FORK_USER": options.fork_user or "freeswitch",
            "FORK_URL": base,
            "AUDIO_FORK": switch.fork_build,
            "OPERATOR_DESTINATION": options.operator_destination,
        }
        conf = fsconf.render(options.freeswitch_dir, env)
        cached = _DEPLOYMENTS[key] = Deployment(
            conf.dialplan(), conf.inbound_context(), conf.globals, frozenset(conf.gateways())
        )
    return cached


def load_deployment(switch: Switch, options: RunOptions) -> Deployment:
    """Configure the switch as FreeSWITCH is after start-up: globals, dialplan, gateways."""
    found = deployment(switch, options)
    switch.globals = dict(found.globals)
    switch.dialplan = found.dialplan
    switch.gateways = set(found.gateways)
    return found


_DEPLOYMENTS: dict[tuple[str, str | None, str | None, str, str, str], Deployment] = {}

#: A script's outcome as the switch plays it: a voicemail or a screener answers like a person.
_SWITCH_OUTCOME = {"voicemail": "answer", "screener": "answer"}


def callee_of(
    script: CallScript,
    on_answer: Callable[[Channel], None] | None = None,
    on_failure: Callable[[Channel], None] | None = None,
) -> Callee:
    """The switch's far end for an outbound script: its outcomes, attempt by attempt."""
    out = script.outbound
    return Callee(
        _SWITCH_OUTCOME.get(out.outcome, out.outcome),
        out.answer_after_rings * RING_S,
        attempts=[_SWITCH_OUTCOME.get(o, o) for o in out.attempts],
        on_answer=on_answer,
        on_failure=on_failure,
    )


def answer(
    switch: Switch,
    ch: Channel,
    script: CallScript,
    options: RunOptions,
    attempt: int,
    progress: Callable[[str], None] | None = None,
) -> ScriptedCaller:
    """The scripted callee picks up ``ch`` (its ``attempt``-th call): a person (who may speak
    first), a voicemail that plays its greeting (and a beep), or a call screener's prompt. What
    they say is queued before the first frame, so the agent hears it from the answer on."""
    ch.codec = script.caller.codec  # negotiated by the answer's SDP
    caller = _attach(switch, ch, script, options, progress)
    out = script.outbound
    outcome = caller.answered_as = out.outcome_of(attempt)
    said = out.greeting_of(outcome)
    if outcome in MACHINES:
        assert said is not None
        caller.speak(outcome, said)
        if outcome == "voicemail" and out.voicemail_beep:
            caller.line.queue(_beep())
    elif said is not None:
        if out.greeting_delay_ms:
            caller.line.queue(bytes(RATE * out.greeting_delay_ms // 1000 * 2))
        caller.speak("say", said)
    return caller


def prepare_voices(script: CallScript) -> int:
    """Synthesize a script's fixed lines ahead of its calls (the voices keep them), so a callee
    picking up does not hold the switch's other calls while its greeting is spoken; how many."""
    voice = voice_for(script.caller.voice, script.caller.speed)
    out = script.outbound
    lines = {out.greeting_of(o) for o in (*out.attempts, out.outcome)}
    for step in script.turns:
        spec = step.barge_in or step.backchannel
        if step.say_with_pause is not None:
            lines.update(step.say_with_pause.parts)
        else:
            lines.add(step.say if spec is None else spec.say)
    texts = sorted(t for t in lines if t)
    for text in texts:
        voice.speak(text)
    return len(texts)


async def _outbound(
    switch: Switch,
    script: CallScript,
    options: RunOptions,
    progress: Callable[[str], None] | None,
) -> ScriptedCaller | None:
    number = script.caller.number
    attached: asyncio.Future[ScriptedCaller] = asyncio.get_running_loop().create_future()

    def on_answer(ch: Channel) -> None:
        caller = answer(switch, ch, script, options, callee.dialled, progress)
        if not attached.done():
            attached.set_result(caller)

    callee = callee_of(script, on_answer)
    switch.callees[number] = callee
    if not script.outbound.ever_answers:
        return None  # the switch itself answers the originate with the failure
    try:
        return await asyncio.wait_for(attached, options.originate_timeout_s)
    except TimeoutError:
        return None
    finally:
        callee.on_answer = None  # a later call to the number rings nobody's script


def _beep() -> bytes:
    t = np.arange(int(16000 * 0.4)) / 16000
    tone = (np.sin(2 * np.pi * 1000 * t) * 8000).astype("<i2").tobytes()
    return bytes(16000) + tone  # half a second of silence, then the tone


def _attach(
    switch: Switch,
    ch: Channel,
    script: CallScript,
    options: RunOptions,
    progress: Callable[[str], None] | None,
) -> ScriptedCaller:
    recording = options.recordings / f"{ch.uuid}.wav"
    ears: Ears | None = None
    if script.persona is not None and options.redis_url:
        ears = StreamEars(options.redis_url, options.events_stream, ch.uuid)
    return ScriptedCaller(switch, ch, script, recording=recording, progress=progress, ears=ears)


#: The call status (callkit.contracts.outcome) an unanswered outcome stands for.
_STATUS_OF = {"reject": "rejected", "unallocated": "invalid_number"}


def _report_without_call(script: CallScript, options: RunOptions, started: float) -> dict[str, Any]:
    expected = script.expect.status
    outcome = script.outbound.outcome_of(1)
    status = _STATUS_OF.get(outcome, outcome)
    checks = []
    if expected is not None:
        checks.append(
            {
                "check": "status",
                "expected": expected,
                "actual": status,
                "passed": expected == status,
            }
        )
    return {
        "call_id": None,
        "script": script.name,
        "direction": script.direction,
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(),
        "note": f"the callee's outcome was {outcome}; no media",
        "expect": checks,
        "errors": [],
        "passed": all(c["passed"] for c in checks),
    }


async def _report(
    switch: Switch,
    caller: ScriptedCaller,
    script: CallScript,
    options: RunOptions,
    started: float,
) -> dict[str, Any]:
    ch = caller.channel
    measured = caller.measurements()
    v2v = [t["v2v_ms"] for t in measured["turns"] if t["v2v_ms"] is not None]
    transcript: list[dict[str, Any]] = [
        {"role": "caller", "text": u.text, "t_ms": u.onset_tick * TICK_MS, "kind": u.kind}
        for u in caller.utterances
    ]
    for run in caller.timeline.agent_runs:
        transcript.append(
            {
                "role": "agent_audio",
                "t_ms": run[0] * TICK_MS,
                "duration_ms": (run[1] - run[0]) * TICK_MS,
            }
        )
    windows = [(b["caller_onset_ms"], b["caller_onset_ms"] + 3000) for b in measured["barge_ins"]]
    # The agent stopping while the caller speaks is the caller's doing (the agent took a pause
    # inside a sentence for its end and talked over the rest), and so is a stop for the rest
    # of their words once it is recognized (they crossed the reply that began at the pause:
    # up to CROSSED_FINAL_MS after they ended, on a busy machine): only a stop with the caller
    # silent that long is spurious. Backchannels are judged by their own should-not-stop check.
    windows += [
        (u.onset_tick * TICK_MS, u.end_tick * TICK_MS + CROSSED_FINAL_MS)
        for u in caller.utterances
        if u.kind != "backchannel"
    ]
    spurious = [
        {"t_ms": tick * TICK_MS, "kind": kind}
        for tick, kind in caller.timeline.stops
        if not any(lo <= tick * TICK_MS <= hi for lo, hi in windows)
    ]
    outcome: outcomes.CallOutcome | None = None
    checks: list[dict[str, Any]] = []
    finals: list[dict[str, Any]] | None = None
    policy_turns: list[dict[str, Any]] | None = None
    if options.redis_url:
        outcome, agent_lines, finals, policy_turns = await _from_redis(
            options, ch.uuid, caller.started_wall or started
        )
        transcript.extend(agent_lines)
    transcript.sort(key=lambda line: line.get("t_ms") or 0)
    checks = _expect_checks(script, outcome, bool(options.redis_url))
    if caller.persona is not None and not script.expect.status and not script.expect.slots:
        checks = _persona_checks(caller, outcome, bool(options.redis_url))
    waits = [t["longest_wait_ms"] for t in measured["turns"] if t["longest_wait_ms"] is not None]
    barge_ok = all(b["correct"] for b in measured["barge_ins"])
    report = {
        "call_id": ch.uuid,
        "script": script.name,
        "direction": script.direction,
        "voice": script.caller.voice,
        "codec": script.caller.codec,
        "started_at": datetime.fromtimestamp(caller.started_wall or started, UTC).isoformat(),
        "duration_ms": caller.timeline.tick * TICK_MS,
        "recording": str(caller.recording)
        if caller.recording and caller.recording.exists()
        else None,
        "hangup_cause": ch.hangup_cause,
        "hung_up_by": ch.hung_up_by,
        "transferred_to": ch.transferred_to,
        "bridged_to": ch.bridged_to,
        "transcript": transcript,
        "turns": measured["turns"],
        "barge_ins": measured["barge_ins"],
        "interjections": interjection_summary(measured["barge_ins"], measured["turns"]),
        "v2v": {
            "n": len(v2v),
            "p50_ms": percentile(v2v, 0.5),
            "p95_ms": percentile(v2v, 0.95),
            "mean_ms": round(statistics.fmean(v2v), 1) if v2v else None,
        },
        "longest_wait_ms": max(waits) if waits else None,
        "spurious_stops": spurious,
        "policy": _policy_report(policy_turns),
        "persona": _persona_report(caller),
        "asr": await _asr_report(caller, script, options, finals),
        "outcome": outcome.model_dump(mode="json") if outcome is not None else None,
        "expect": checks,
        "errors": caller.errors,
        "faults": list(switch.faults),
    }
    report["passed"] = (
        not caller.errors
        and barge_ok
        and not spurious
        and all(c["passed"] is not False for c in checks)
    )
    return report


def _policy_report(turns: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """The policy engine's turns of the call: how many needed the LLM, and their times."""
    if turns is None:
        return None
    llm = [t["ms"] for t in turns if t["llm_calls"]]
    scripted = [t["ms"] for t in turns if not t["llm_calls"]]
    return {
        "turns": len(turns),
        "llm_turns": len(llm),
        "llm_ms": llm,
        "llm_p50_ms": percentile(llm, 0.5),
        "llm_max_ms": max(llm) if llm else None,
        "scripted_p50_ms": percentile(scripted, 0.5),
        "by_turn": turns,
    }


def _persona_checks(
    caller: ScriptedCaller, outcome: outcomes.CallOutcome | None, have_redis: bool
) -> list[dict[str, Any]]:
    """A persona's own verdict: the outcome it should have, every slot it gave."""
    assert caller.persona is not None
    if outcome is not None:
        return caller.persona.checks(outcome.status, outcome.slots.model_dump())
    return [
        {
            "check": "status",
            "expected": caller.persona.expected()["status"],
            "actual": None,
            "passed": False if have_redis else None,
            "note": "no outcome on calls:completed for this call"
            if have_redis
            else "skipped: no --redis-url to read the outcome from",
        }
    ]


def _persona_report(caller: ScriptedCaller) -> dict[str, Any] | None:
    persona = caller.persona
    if persona is None:
        return None
    ears = caller.ears
    return {
        "exchanges": caller.exchanges,
        "repeats": persona.repeats(),
        "expected": persona.expected(),
        "hearing_problem": getattr(ears, "problem", None),
    }


async def _from_redis(
    options: RunOptions, call_id: str, started_wall: float
) -> tuple[
    outcomes.CallOutcome | None, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]
]:
    """The call's outcome, the agent's sentences, the caller's finals and the policy engine's
    turns, as the call had them."""
    assert options.redis_url is not None
    client: Any = aioredis.Redis.from_url(options.redis_url)
    outcome: outcomes.CallOutcome | None = None
    lines: list[dict[str, Any]] = []
    finals: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    wanted = call_id.encode()
    try:
        deadline = time.monotonic() + options.outcome_timeout_s
        while outcome is None and time.monotonic() < deadline:
            for _, fields in await client.xrevrange(options.outcome_stream, count=500):
                if wanted not in fields.get(b"outcome", b""):
                    continue  # another call's: not worth parsing
                try:
                    parsed = outcomes.parse_entry(fields)
                except InvalidInput as exc:
                    lines.append({"role": "note", "text": f"unreadable outcome: {exc}", "t_ms": 0})
                    continue
                if parsed.call_id == call_id:
                    outcome = parsed
                    break
            if outcome is None:
                await asyncio.sleep(0.2)
        # Every entry since the call began (other calls' entries interleave with its own).
        since = f"{int(started_wall * 1000) - 1000}-0"
        for entry_id, fields in await client.xrange(options.events_stream, min=since, max="+"):
            if fields.get(b"call_id") != wanted:
                continue
            try:
                event = live.parse_entry(fields)
            except InvalidInput:
                continue  # a kind this version does not know, or a broken entry
            if isinstance(event, live.TurnTimed):
                turns.append({"state": event.state, "ms": event.ms, "llm_calls": event.llm_calls})
                continue
            if not isinstance(event, live.AgentSentence | live.CallerFinal):
                continue
            at_ms = int(entry_id.decode().split("-")[0])
            t_ms = event.t_ms if event.t_ms is not None else at_ms - int(started_wall * 1000)
            if isinstance(event, live.CallerFinal):
                finals.append({"text": event.text, "t_ms": max(0, t_ms)})
            else:
                lines.append({"role": "agent", "text": event.text, "t_ms": max(0, t_ms)})
    except (OSError, AgentError) as exc:
        lines.append({"role": "note", "text": f"could not read Redis: {exc}", "t_ms": 0})
    except Exception as exc:  # redis errors: the report says so rather than failing
        lines.append(
            {"role": "note", "text": f"could not read Redis: {type(exc).__name__}", "t_ms": 0}
        )
    finally:
        await client.aclose()
    return outcome, lines, finals, turns


# ---------------------------------------------------------------- in-call vs offline words

# Of the caller channel around an utterance's voiced frames: Whisper needs silence around words
# (the gateway pads each in-call utterance with 0.5 s too).
CLIP_BEFORE_MS = 500
CLIP_AFTER_MS = 1000


async def _asr_report(
    caller: ScriptedCaller,
    script: CallScript,
    options: RunOptions,
    finals: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """In-call and offline word errors against what the caller said, and the lines side by side.

    In-call: every final the agent received, in order, against every line the caller said
    (backchannels and interruptions included: the recognizer hears those too). Offline: the
    same model on each utterance's stretch of the caller channel of callsim's recording.
    """
    said = [u for u in caller.utterances if u.text.strip()]
    offline, problem = await _offline(caller, said, script, options)
    lines: list[dict[str, Any]] = []
    for i, u in enumerate(said):
        nxt = said[i + 1].onset_tick * TICK_MS if i + 1 < len(said) else None
        heard = (
            None
            if finals is None
            else " ".join(
                f["text"]
                for f in finals
                if f["t_ms"] >= u.onset_tick * TICK_MS and (nxt is None or f["t_ms"] < nxt)
            )
        )
        lines.append(
            {
                "t_ms": u.onset_tick * TICK_MS,
                "said": u.text,
                "in_call": heard,
                "offline": None if offline is None else offline[i],
            }
        )
    reference = " ".join(u.text for u in said)
    in_call = None if finals is None else wer(reference, " ".join(f["text"] for f in finals))
    off = None if offline is None else wer(reference, " ".join(offline))
    ratio = None
    if in_call is not None and off is not None and off["errors"]:
        ratio = round(float(in_call["errors"] or 0) / float(off["errors"] or 1), 2)
    return {
        "in_call": in_call,
        "offline": off,
        "in_call_vs_offline": ratio,
        "offline_problem": problem,
        "finals": finals,
        "lines": lines,
    }


async def _offline(
    caller: ScriptedCaller, said: list[Utterance], script: CallScript, options: RunOptions
) -> tuple[list[str] | None, str | None]:
    """Offline transcripts of each utterance, or None and why not."""
    if options.asr_url is None:
        return None, "no ASR URL given: offline transcription skipped"
    if caller.recording is None or not caller.recording.exists():
        return None, "the call has no recording"
    try:
        recording = read_wav(caller.recording)
    except (InvalidInput, OSError) as exc:
        return None, f"the recording could not be read: {exc}"
    channel = np.frombuffer(recording.data, "<i2").reshape(-1, recording.channels)[:, 0]
    per_ms = recording.sample_rate // 1000
    texts: list[str] = []
    url = options.asr_url.rstrip("/") + "/v1/audio/transcriptions"
    async with httpx.AsyncClient(timeout=options.asr_timeout_s) as client:
        for i, u in enumerate(said):
            begin = max(0, u.onset_tick * TICK_MS - CLIP_BEFORE_MS) * per_ms
            end = (u.end_tick * TICK_MS + CLIP_AFTER_MS) * per_ms
            if i + 1 < len(said):  # never into the next utterance
                end = min(end, said[i + 1].onset_tick * TICK_MS * per_ms)
            pcm = channel[begin:end].astype("<i2").tobytes()
            if not pcm:
                texts.append("")
                continue
            wav = wav_header(recording.sample_rate, 1, len(pcm)) + pcm
            try:
                response = await client.post(
                    url,
                    files={"file": ("caller.wav", wav, "audio/wav")},
                    data={"language": script.language, "response_format": "json"},
                )
                response.raise_for_status()
                texts.append(str(response.json().get("text", "")))
            except (httpx.HTTPError, ValueError) as exc:
                return None, f"offline transcription failed: {type(exc).__name__}: {exc}"
    return texts, None


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return bool(expected == actual)
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return abs(float(expected) - float(actual)) < 0.51
    if isinstance(expected, str) and isinstance(actual, str):
        return expected.strip().lower() == actual.strip().lower()
    return bool(expected == actual)


def answered_by(outcome: outcomes.CallOutcome | None) -> str | None:
    """Who the agent took the callee for (the outcome's ``amd``); None when it does not say."""
    amd = outcome.model_dump(mode="json").get("amd") if outcome is not None else None
    return amd.get("answered_by") if isinstance(amd, dict) else None


def _expect_checks(
    script: CallScript, outcome: outcomes.CallOutcome | None, have_redis: bool
) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    wanted: list[tuple[str, Any, Any]] = []
    slots = outcome.slots.model_dump() if outcome is not None else {}
    if script.expect.status is not None:
        wanted.append(("status", script.expect.status, outcome.status if outcome else None))
    if script.expect.answered_by is not None:
        wanted.append(("amd.answered_by", script.expect.answered_by, answered_by(outcome)))
    for slot, value in script.expect.slots.items():
        wanted.append((f"slots.{slot}", value, slots.get(slot)))
    for check, expected, actual in wanted:
        if not have_redis:
            checks.append({"check": check, "expected": expected, "actual": None, "passed": None,
                           "note": "skipped: no --redis-url to read the outcome from"})  # fmt: skip
        elif outcome is None:
            checks.append({"check": check, "expected": expected, "actual": None, "passed": False,
                           "note": "no outcome on calls:completed for this call"})  # fmt: skip
        else:
            checks.append(
                {
                    "check": check,
                    "expected": expected,
                    "actual": actual,
                    "passed": _same(expected, actual),
                }
            )
    return checks


def _pause_note(turn: dict[str, Any]) -> str:
    """A turn said with pauses: whether the agent waited for the whole sentence."""
    if turn.get("cut_in") is None:
        return ""
    if not turn["cut_in"]:
        return "; the agent waited through the caller's pauses"
    where = "in a pause" if turn.get("cut_in_pause") else "over the caller"
    return f"; the agent CUT IN at {turn['cut_in_ms']} ms ({where})"


def _interjection_note(b: dict[str, Any]) -> str:
    """One barge-in or backchannel: what the agent did, what it should have, the verdict."""
    head = f"  {b['kind']} at {b['caller_onset_ms']} ms: "
    verdict = "ok" if b["correct"] else "WRONG"
    should = "stop" if b["should_stop"] else "go on"
    if not b.get("yielded", b["stopped"]):
        return f"{head}did not yield (should {should})  {verdict}"
    command = b.get("command_stop_ms")
    said = f"yielded in {b['stop_latency_ms']} ms (stop command "
    said += f"{command if command is not None else '-'} ms)"
    if b.get("resumed"):
        said += (
            f", resumed at {b['resumed_ms']} ms, lost {b['lost_ms']} ms, repeated "
            f"{b['repeated_ms']} ms"
        )
    else:
        said += ", did not resume"
    return f"{head}{said} (should {should})  {verdict}"


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The report as a person reads it on a terminal."""
    out = [
        f"{'PASS' if report.get('passed') else 'FAIL'}  {report['script']}  (call {report.get('call_id')})"
    ]
    for line in report.get("transcript", []):
        t = f"{(line.get('t_ms') or 0) / 1000:7.2f}s"
        if line["role"] == "caller":
            out.append(f"  {t}  caller: {line['text']}  [{line.get('kind')}]")
        elif line["role"] == "agent":
            out.append(f"  {t}  agent:  {line['text']}")
        elif line["role"] == "agent_audio":
            out.append(f"  {t}  agent audio {line['duration_ms'] / 1000:.1f}s")
    for turn in report.get("turns", []):
        v2v = turn["v2v_ms"]
        out.append(
            f"  turn {turn['index']}: speech end {turn['caller_speech_end_ms']} ms, agent audio "
            f"{turn['agent_first_audio_ms']} ms, v2v {v2v if v2v is not None else '-'} ms"
            + _pause_note(turn)
        )
    for b in report.get("barge_ins", []):
        out.append(_interjection_note(b))
    v2v = report.get("v2v") or {}
    if v2v.get("n"):
        out.append(f"  v2v p50 {v2v['p50_ms']} ms, p95 {v2v['p95_ms']} ms (n={v2v['n']})")
    line = interjection_line(report["interjections"]) if report.get("interjections") else None
    if line:
        out.append(f"  {line}")
    asr = report.get("asr") or {}
    if asr.get("in_call") is not None or asr.get("offline") is not None:
        parts = [
            f"{name} {(asr[name] or {}).get('errors')}/{(asr[name] or {}).get('words')} words"
            for name in ("in_call", "offline")
            if asr.get(name) is not None
        ]
        out.append("  word errors: " + ", ".join(parts).replace("_", "-"))
    for stop in report.get("spurious_stops", []):
        out.append(f"  agent stopped with no barge-in at {stop['t_ms']} ms ({stop['kind']})")
    for check in report.get("expect", []):
        mark = {True: "ok", False: "FAIL", None: "skipped"}[check["passed"]]
        out.append(
            f"  expect {check['check']} = {check['expected']!r}: {mark} (got {check['actual']!r})"
        )
    for error in report.get("errors", []):
        out.append(f"  error: {error}")
    if report.get("recording"):
        out.append(f"  recording: {report['recording']}")
    return out
