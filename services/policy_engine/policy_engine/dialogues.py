"""`python -m policy_engine.dialogues`: run scripted text dialogues and score the engine.

Each YAML file is one call: what the caller says turn by turn (or a silence, a barge-in, a key
press, a hang-up) and what must be true at the end (status, slots, things said and never said).
The report gives completion and slot accuracy over the booking dialogues, per-turn latency with
and without the LLM, and checks that no appointment slot was booked twice and that no dialogue
hears one question more than twice in a row (turns that are the same question and nothing else).

Dialogue file::

    name: knee-happy-path
    booking: true                 # counts toward completion and slot accuracy
    caller: "+15551234567"
    now: "2026-11-23T09:00"       # the clinic's clock for this call (default: this value)
    direction: outbound           # a call the clinic placed (default: inbound)
    contact: {name: Helen Brooks, phone: "+15552929292"}   # call.started's contact
    campaign:                     # the dialer's campaign:call:{call_id}, written before the call
      purpose: service            # informational | service | marketing (default: service)
      name: Helen Brooks
      fields: {study: knee MRI}
    turns:
      - "Hi, my name is John Smith."            # an utterance
      - {silence: 8}
      - {interrupt: {heard: "From what you", say: "How much is it?"}}
      - {dtmf: "1"}
      - {hangup: NORMAL_CLEARING}     # the end (sent anyway after the last turn)
    recording_path: /rec/x.wav    # optional: what the bridge reports with the hang-up
    latency: {v2v_ms: [640]}
    expect:
      status: booked
      slots: {client_name: John Smith, appointment_time: "offered:1"}
      says: ["costs $450"]
      never_says: ["system prompt"]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as time_of_day
from pathlib import Path
from typing import Any

import yaml
from redis.asyncio import Redis
from redis.exceptions import RedisError

from callkit.contracts.campaign import CampaignCall, call_key
from callkit.contracts.dialog import (
    CallEnded,
    CallMachine,
    CallStarted,
    Contact,
    DialogReply,
    Dtmf,
    Event,
    HeardUtterance,
    UserInterrupted,
    UserSilence,
    UserUtterance,
)
from callkit.contracts.outcome import Amd, CallLatency
from callkit.contracts.streams import APPOINTMENT_PREFIX, CALLS_COMPLETED
from callkit.llm_client import LlmClient
from callkit.redis_client import connect
from policy_engine.engine import DialogEngine
from policy_engine.publishing import RedisPublisher
from policy_engine.script import Script, load_script
from policy_engine.session import Sentence
from policy_engine.settings import PolicySettings
from policy_engine.stores.calendar import RedisCalendar
from policy_engine.stores.campaigns import RedisCampaignCalls
from policy_engine.stores.sessions import RedisSessionStore

DEFAULT_NOW = "2026-11-23T09:00"
MAX_IN_ROW = 2
DEFAULTS = PolicySettings.model_construct()


@dataclass
class Result:
    name: str
    booking: bool
    status: str | None
    problems: list[str] = field(default_factory=list)
    slot_total: int = 0
    slot_right: int = 0
    turn_ms: list[tuple[float, bool]] = field(default_factory=list)  # (ms, used the LLM)
    first_ms: list[tuple[float, bool]] = field(default_factory=list)
    answer_ms: list[tuple[float, bool]] = field(default_factory=list)  # past an acknowledgement
    acknowledged: int = 0  # turns that said an acknowledgement first
    booked_key: str | None = None
    turns: int = 0  # caller turns (utterances, barge-ins with words, keys)
    llm_turns: list[str] = field(default_factory=list)  # the question asked, per turn the
    # parsers alone did not understand
    transcript: list[tuple[str, str]] = field(default_factory=list)  # (who, what), in order

    @property
    def passed(self) -> bool:
        return not self.problems


def _matches(expected: Any, actual: Any, offered: list[str]) -> bool:
    if isinstance(expected, str) and expected.startswith("offered:"):
        index = int(expected.split(":", 1)[1]) - 1
        return 0 <= index < len(offered) and actual == offered[index]
    if (
        isinstance(expected, float | int)
        and isinstance(actual, float | int)
        and not isinstance(expected, bool)
    ):
        return abs(float(expected) - float(actual)) < 0.51
    if isinstance(expected, str) and isinstance(actual, str):
        return expected.strip().lower() == actual.strip().lower()
    return bool(expected == actual)


def campaign_call(spec: dict[str, Any], call_id: str) -> CampaignCall:
    """The dialer's context of a dialogue's outbound call, from its ``campaign`` entry."""
    body = dict(spec["campaign"])
    contact = spec.get("contact") or {}
    return CampaignCall(
        call_id=call_id,
        campaign_id=str(body.pop("campaign_id", "dialogues")),
        contact_id=str(body.pop("contact_id", call_id)),
        attempt=int(body.pop("attempt", 1)),
        campaign_name=str(body.pop("campaign_name", spec.get("name", "dialogue"))),
        purpose=body.pop("purpose", "service"),
        locale=str(body.pop("locale", spec.get("locale") or "en")),
        phone=str(body.pop("phone", contact.get("phone") or spec.get("caller") or "")),
        **body,
    )


def _spoken(event: Event) -> str:
    """What the caller did, as a transcript line."""
    if isinstance(event, UserUtterance):
        return event.text
    if isinstance(event, UserInterrupted):
        said = f" and said: {event.utterance.text}" if event.utterance else ""
        return f"(cut in after hearing: {event.heard_text!r}){said}"
    if isinstance(event, Dtmf):
        return f"(keys {event.digits})"
    if isinstance(event, UserSilence):
        return f"(silent {event.seconds:g} s)"
    if isinstance(event, CallEnded):
        return f"(hangs up: {event.cause})"
    return f"({type(event).__name__})"


async def run_dialogue(
    engine: DialogEngine, spec: dict[str, Any], call_id: str, *, redis: Redis | None = None
) -> Result:
    """One dialogue as one call; ``redis`` is where a ``campaign`` entry is written (the
    engine's campaign context store reads it)."""
    now = datetime.fromisoformat(str(spec.get("now", DEFAULT_NOW))).replace(
        tzinfo=engine.script.schedule.zone
    )
    engine.clock = lambda: now
    result = Result(name=spec["name"], booking=bool(spec.get("booking")), status=None)
    said: list[str] = []
    offered_seen: list[str] = []
    asked_in_row: list[str] = []  # the question the last turns were, and nothing else
    before: dict[str, Any] = {"state": "", "llm_turns": 0}

    async def send(event: Event) -> DialogReply:
        started = time.perf_counter()
        first: list[float] = []
        answer: list[float] = []

        async def emit(sentence: Sentence) -> None:
            if not first:
                first.append(time.perf_counter())
            if not answer and sentence.source != "ack":
                answer.append(time.perf_counter())

        result.transcript.append(("caller", _spoken(event)))
        reply = await engine.handle(call_id, event, emit)
        result.transcript.extend(("agent", r.text) for r in reply.replies if not reply.replayed)
        used = reply.llm_calls > 0 and not reply.replayed
        result.turn_ms.append(((time.perf_counter() - started) * 1000, used))
        if first:
            result.first_ms.append(((first[0] - started) * 1000, used))
        if answer:
            result.answer_ms.append(((answer[0] - started) * 1000, used))
        said.extend(r.text for r in reply.replies)
        session = await engine.get(call_id)
        if isinstance(event, UserUtterance | Dtmf) or (
            isinstance(event, UserInterrupted) and event.utterance is not None
        ):
            result.turns += 1
        if session.llm_turns > before["llm_turns"]:
            result.llm_turns.append(str(before["state"]) or "start")
        before.update(state=session.state, llm_turns=session.llm_turns)
        # A turn that said nothing (after the exit) leaves the session's last reply as it was.
        last = session.last_reply if reply.replies else []
        if not reply.replayed and any(x.source == "ack" for x in last):
            result.acknowledged += 1
        if not reply.replayed:
            # A turn that is one question's text and nothing else continues the run (an
            # acknowledgement before it is no answer).
            spoken = [x for x in last if x.source != "ack"]
            asked = {x.state for x in spoken if x.source in ("say", "reprompt")}
            only_asks = all(x.source in ("say", "reprompt") for x in spoken)
            if len(asked) != 1 or not only_asks:
                asked_in_row.clear()
            else:
                question = asked.pop() or ""
                if asked_in_row and asked_in_row[-1] != question:
                    asked_in_row.clear()
                asked_in_row.append(question)
                if len(asked_in_row) == MAX_IN_ROW + 1:
                    result.problems.append(f"asked {question} {MAX_IN_ROW + 1} times in a row")
        for t in session.offered_times:
            if t not in offered_seen:
                offered_seen.append(t)
        return reply

    contact = spec.get("contact")
    campaign = campaign_call(spec, call_id) if "campaign" in spec else None
    if campaign is not None:
        if redis is None:
            result.problems.append("a campaign entry needs the suite's Redis")
        else:
            await redis.set(call_key(call_id), campaign.model_dump_json(), ex=3600)
    await send(
        CallStarted(
            direction=spec.get("direction", "inbound"),
            caller=spec.get("caller"),
            campaign_id=campaign.campaign_id if campaign is not None else None,
            contact=Contact.model_validate(contact) if contact else None,
            locale=spec.get("locale") or None,
            amd=Amd.model_validate(spec["amd"]) if "amd" in spec else None,
        )
    )
    hung_up = False
    # What the bridge reports with the hang-up: the recording and the call's figures.
    recording_path = spec.get("recording_path")
    latency = CallLatency.model_validate(spec["latency"]) if "latency" in spec else None

    def ended(cause: str) -> CallEnded:
        return CallEnded(cause=cause, recording_path=recording_path, latency=latency)

    for i, turn in enumerate(spec.get("turns", [])):
        if isinstance(turn, str):
            await send(UserUtterance(text=turn, segment_id=i))
        elif "silence" in turn:
            await send(UserSilence(seconds=float(turn["silence"])))
        elif "interrupt" in turn:
            body = turn["interrupt"]
            said_too = body.get("say")
            await send(
                UserInterrupted(
                    heard_text=body["heard"],
                    utterance=HeardUtterance(text=said_too, segment_id=i) if said_too else None,
                )
            )
        elif "dtmf" in turn:
            await send(Dtmf(digits=str(turn["dtmf"])))
        elif "machine" in turn:  # the bridge heard a voicemail's beep after the opening
            await send(CallMachine(amd=Amd.model_validate(turn["machine"]), event_id=f"m{i}"))
        elif "hangup" in turn:
            await send(ended(str(turn["hangup"] or "NORMAL_CLEARING")))
            hung_up = True
        elif "repeat" in turn:  # the same utterance again, as a retry of the last segment
            await send(UserUtterance(text=turn["repeat"], segment_id=i - 1))
        else:
            result.problems.append(f"turn {i}: unknown turn {turn!r}")
    if not hung_up:
        await send(ended("NORMAL_CLEARING"))
    session = await engine.get(call_id)
    result.status = session.status
    expect = spec.get("expect", {})
    if "status" in expect and session.status != expect["status"]:
        result.problems.append(f"status {session.status!r}, expected {expect['status']!r}")
    for slot, wanted in (expect.get("slots") or {}).items():
        result.slot_total += 1
        actual = session.slots.get(slot)
        if _matches(wanted, actual, offered_seen):
            result.slot_right += 1
        else:
            result.problems.append(f"slot {slot} = {actual!r}, expected {wanted!r}")
    text = " ".join(said).lower()
    for phrase in expect.get("says", []):
        if phrase.lower() not in text:
            result.problems.append(f"never said {phrase!r}")
    for phrase in expect.get("never_says", []):
        if phrase.lower() in text:
            result.problems.append(f"said {phrase!r}")
    hold = session.hold
    if hold is not None and hold.booked:
        result.booked_key = f"{hold.modality}:{hold.date}:{hold.time}"
        owner = await engine.calendar.owner(
            hold.modality, date.fromisoformat(hold.date), time_of_day.fromisoformat(hold.time)
        )
        if owner != f"booked:{call_id}":
            result.problems.append(f"slot {result.booked_key} is owned by {owner!r}")
    return result


@dataclass
class Report:
    results: list[Result]

    @property
    def bookings(self) -> list[Result]:
        return [r for r in self.results if r.booking]

    @property
    def completion(self) -> float:
        b = self.bookings
        return sum(r.status == "booked" for r in b) / len(b) if b else 0.0

    @property
    def booked_with_every_slot_right(self) -> float:
        b = self.bookings
        ok = [r for r in b if r.status == "booked" and r.slot_right == r.slot_total]
        return len(ok) / len(b) if b else 0.0

    @property
    def slot_accuracy(self) -> float:
        total = sum(r.slot_total for r in self.results)
        return sum(r.slot_right for r in self.results) / total if total else 0.0

    @property
    def double_bookings(self) -> list[str]:
        keys = [r.booked_key for r in self.results if r.booked_key]
        return sorted({k for k in keys if keys.count(k) > 1})

    def lines(self, *, transcripts: bool = False) -> list[str]:
        out = []
        for r in self.results:
            mark = "ok  " if r.passed else "FAIL"
            out.append(f"{mark} {r.name:<40} status={r.status}")
            out.extend(f"       - {p}" for p in r.problems)
            if transcripts:
                out.extend(f"       {who:>6}: {text}" for who, text in r.transcript)

        def pct(values: list[float], q: float) -> float:
            values = sorted(values)
            return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

        scripted = [ms for r in self.results for ms, used in r.first_ms if not used]
        with_llm = [ms for r in self.results for ms, used in r.first_ms if used]
        answers_llm = [ms for r in self.results for ms, used in r.answer_ms if used]
        turns_llm = [ms for r in self.results for ms, used in r.turn_ms if used]
        passed = sum(r.passed for r in self.results)
        by_question = Counter(q for r in self.results for q in r.llm_turns)
        llm_turns = sum(by_question.values())
        turns = sum(r.turns for r in self.results)
        out += [
            "",
            f"dialogues: {len(self.results)}, all expectations met: {passed}/{len(self.results)}",
            f"booking dialogues: {len(self.bookings)}; booked: {self.completion:.1%}; "
            f"booked with every slot right: {self.booked_with_every_slot_right:.1%} (target 95%)",
            f"slot accuracy over all dialogues: {self.slot_accuracy:.1%}",
            f"double bookings: {len(self.double_bookings)}",
            f"first sentence, scripted turns: p50 {pct(scripted, 0.5):.1f} ms, p95 "
            f"{pct(scripted, 0.95):.1f} ms (n={len(scripted)}; target 50 ms)",
            f"first sentence, turns with LLM: p50 {pct(with_llm, 0.5):.0f} ms, p95 "
            f"{pct(with_llm, 0.95):.0f} ms (n={len(with_llm)})",
            f"first sentence past the acknowledgement, turns with LLM: p50 "
            f"{pct(answers_llm, 0.5):.0f} ms, p95 {pct(answers_llm, 0.95):.0f} ms, mean "
            f"{statistics.fmean(answers_llm) if answers_llm else float('nan'):.0f} ms; "
            f"acknowledged turns: {sum(r.acknowledged for r in self.results)}",
            f"whole turn with LLM: p50 {pct(turns_llm, 0.5):.0f} ms "
            f"(mean {statistics.fmean(turns_llm) if turns_llm else float('nan'):.0f} ms)",
            f"caller turns the parsers alone did not understand (the LLM's): {llm_turns} of "
            f"{turns}"
            + (
                " (" + ", ".join(f"{q} {n}" for q, n in by_question.most_common()) + ")"
                if by_question
                else ""
            ),
        ]
        return out


def load_dialogues(paths: Sequence[Path]) -> list[dict[str, Any]]:
    specs = []
    for path in paths:
        files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
        for f in files:
            spec = yaml.safe_load(f.read_text(encoding="utf-8"))
            spec.setdefault("name", f.stem)
            specs.append(spec)
    return specs


async def run_suite(
    script: Script,
    redis_url: str,
    specs: list[dict[str, Any]],
    *,
    llm: LlmClient | None,
    system_prompt: str,
    run_id: str,
    progress: bool = False,
    llm_deadline_s: float = DEFAULTS.llm_deadline_s,
    ack_after_s: float = DEFAULTS.ack_after_s,
) -> Report:
    redis = connect(redis_url)
    suite_stream = f"{CALLS_COMPLETED}:suite:{run_id}"
    try:
        engine = DialogEngine(
            script,
            sessions=RedisSessionStore(redis, ttl_s=86400),
            calendar=RedisCalendar(redis, script.schedule, prefix=f"{APPOINTMENT_PREFIX}-{run_id}"),
            publisher=RedisPublisher(redis, completed_stream=suite_stream),
            llm=llm,
            system_prompt=system_prompt,
            llm_deadline_s=llm_deadline_s,
            ack_after_s=ack_after_s,
            campaigns=RedisCampaignCalls(redis),
        )
        results = []
        for n, spec in enumerate(specs, 1):
            result = await run_dialogue(engine, spec, f"{run_id}-{n:03d}", redis=redis)
            results.append(result)
            if progress:
                print(
                    f"[{n}/{len(specs)}] {'ok  ' if result.passed else 'FAIL'} {result.name}",
                    file=sys.stderr,
                    flush=True,
                )
        return Report(results)
    finally:
        with contextlib.suppress(RedisError, OSError):
            await redis.delete(suite_stream)
        await redis.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m policy_engine.dialogues",
        description="Run scripted text dialogues against the policy engine and report "
        "completion, slot accuracy and per-turn latency.",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="dialogue YAML files or folders")
    parser.add_argument("--script-dir", type=Path, default=Path("prompts/clinic"))
    parser.add_argument("--system-prompt", type=Path, default=Path("prompts/system.en.txt"))
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--llm-url", help="OpenAI-compatible base URL; without it, parsers only")
    parser.add_argument("--llm-model", default="clinic-agent")
    parser.add_argument(
        "--llm-deadline-s",
        type=float,
        default=DEFAULTS.llm_deadline_s,
        help="the engine's POLICY_LLM_DEADLINE_S",
    )
    parser.add_argument(
        "--ack-after-s",
        type=float,
        default=DEFAULTS.ack_after_s,
        help="the engine's POLICY_ACK_AFTER_S (0: no acknowledgements)",
    )
    parser.add_argument(
        "--transcript", action="store_true", help="print each dialogue's turns as they went"
    )
    args = parser.parse_args(argv)
    script = load_script(args.script_dir)
    specs = load_dialogues(args.paths)

    async def go() -> Report:
        llm = LlmClient(args.llm_url, args.llm_model) if args.llm_url else None
        try:
            return await run_suite(
                script,
                args.redis_url,
                specs,
                llm=llm,
                system_prompt=args.system_prompt.read_text(encoding="utf-8"),
                run_id=f"suite-{int(time.time())}",
                progress=True,
                llm_deadline_s=args.llm_deadline_s,
                ack_after_s=args.ack_after_s,
            )
        finally:
            if llm is not None:
                await llm.aclose()

    report = asyncio.run(go())
    print("\n".join(report.lines(transcripts=args.transcript)))
    return 0 if report.booked_with_every_slot_right >= 0.95 and not report.double_bookings else 1


if __name__ == "__main__":
    sys.exit(main())
