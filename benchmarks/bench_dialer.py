"""The outbound campaign dialer on the whole stack: one campaign of mostly short calls.

Starts the call path with devstack (embedded LLM, ASR and TTS gateways, policy engine, bridge)
and the dialer (``python -m dialer``, its database an SQLite file in .run/bench-dialer/, or a
PostgreSQL database of its own with BENCH_DIALER_DB=postgresql), all on free ports; callsim's
switch runs in this process with a scripted callee behind every number of the campaign.

The campaign (BENCH_DIALER_CONTACTS contacts, default 200) runs at CampaignSpec's default
concurrency and originate rate with a 5 s originate timeout: busy lines and no answers (each
retried once), unallocated numbers, rejects, answered calls that decline at once ("No thank
you, I'm not interested."), voicemail boxes (about 15%: the short greetings of the
answering-machine corpus in benchmarks/amd/, each ending in a beep, where the agent leaves the
campaign's message), BENCH_DIALER_BOOKINGS (default 3) whole bookings by phone
(tests/calls/outbound/booking_by_phone.yaml, its number rewritten), and contacts that must never
be dialled: on the do-not-call list (half listed before the import, half after it), or in a
zone where it is night. Prints:

- contacts finished per minute, originates per minute against the trunk's rate, wall time;
- the dialer's own time per originate (``dialer_originate_prepare_seconds`` on its /metrics);
- how long a person waited for the agent p50/p95, as the dialer's abandon rule counts it
  (``dialer.core.breaker.agent_heard_after_ms``: from the answer to the agent's first audio, or,
  when the agent listened first, from the end of the person's greeting to the opening), of the
  calls a person answered; target 2000 ms (the rule leaves machines out: the agent waits for a
  box's beep);
- how the voicemail contacts ended: their outcomes, the answering-machine verdicts of their
  calls (machine or not, the cue, the time to the verdict), the calls' statuses, and the
  messages left (the agent's audio after the machine verdict) and who hung up;
- double dials: a number with two channels up at once on the switch, or dialled more often than
  its attempts say; target 0;
- do-not-call and calling-window violations: such a contact dialled at all; target 0;
- whether every contact ended as its callee dictates, and its one sheet row;
- the dialer's memory: RSS from /proc before and after the campaign, and /metrics'
  ``process_resident_memory_bytes``;
- the campaign's final counts by state and outcome.

BENCH_DIALER_MAX_S (default 900) bounds the wait for the campaign; what was measured by then is
printed all the same. Every process it started is stopped at the end, on Ctrl-C and on SIGTERM.
The report goes to .run/bench-dialer/report.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from redis.exceptions import RedisError

from callkit import postgres_provision
from callkit.contracts import outcome as outcomes
from callkit.contracts.streams import CALLS_COMPLETED
from callkit.errors import InvalidInput
from callkit.esl import Event
from callsim.callees import CalleeBook
from callsim.esl_server import EslServer
from callsim.run import load_deployment, percentile, prepare_voices
from callsim.script import CallScript, load_script
from callsim.switch import Callee, Switch
from devstack import (
    CALL_PATH,
    SERVICES,
    BenchStack,
    StartError,
    answers,
    bench_stack,
    caller_options,
    launch,
    stop_all,
)
from dialer.core.breaker import ABANDON_AFTER_S, agent_heard_after_ms
from dialer.engine import CONTACT_ROW_PREFIX
from dialer.spec import WEEKDAYS, CallingWindows, CampaignSpec, RetryPolicy, Span

ROOT = Path(__file__).resolve().parent.parent
NAME = "bench-dialer"
BOOKING = ROOT / "tests" / "calls" / "outbound" / "booking_by_phone.yaml"
#: Voicemail boxes with a short greeting and a beep (the answering-machine corpus), in turn.
VOICEMAILS = tuple(
    ROOT / "benchmarks" / "amd" / f"machine_beep_{name}.yaml"
    for name in (
        "us_short",
        "name_only",
        "nyc_fast",
        "scotland_short",
        "carrier_not_available",
        "uk_carrier",
        "family_caribbean",
        "uk_echo",
    )
)
FIRST_AUDIO_TARGET_MS = ABANDON_AFTER_S * 1000
START_TIMEOUT_S = 300.0
POLL_S = 1.0
DECLINE = "No thank you, I'm not interested."
#: Area codes whose 555-0100…0199 numbers the importer accepts (reserved for fiction). 212 is
#: left out: tests/calls/outbound answers on some of its numbers, and `make serve` may run them.
AREAS = ("312", "415", "617", "646", "718", "305", "404", "503", "206", "702", "713", "214")
#: Shares of the campaign by kind; bookings are a count of their own, unallocated the rest.
SHARES = {
    "dnc": 0.04,
    "night": 0.04,
    "not_interested": 0.06,
    "no_answer": 0.06,
    "busy": 0.20,
    "reject": 0.10,
    "voicemail": 0.15,
}
#: The outcome each kind's callee dictates (a night contact has none: it waits for its window).
EXPECTED = {
    "booking": "booked",
    "not_interested": "not_interested",
    "busy": "busy",
    "no_answer": "no_answer",
    "reject": "rejected",
    "unallocated": "invalid_number",
    "dnc": "skipped_dnc",
    "voicemail": "voicemail",
}
#: The far end of a call that is not answered: (callsim's outcome, rings before it).
UNANSWERED = {"busy": ("busy", 1), "no_answer": ("no_answer", 0), "reject": ("reject", 1)}
UNALLOCATED = ("unallocated", 0)
CALLING_HOURS = Span(start="08:00", end="21:00")


@dataclass(frozen=True)
class Planned:
    """One contact of the campaign and what its callee does."""

    index: int
    number: str
    kind: str
    timezone: str


@dataclass
class Watch:
    """The switch's own view of the campaign: originates per number, and channels up at once."""

    numbers: dict[str, str] = field(default_factory=dict)  # channel uuid -> number dialled
    originated: dict[str, int] = field(default_factory=dict)
    live: dict[str, set[str]] = field(default_factory=dict)
    most: dict[str, int] = field(default_factory=dict)
    up: int = 0
    most_up: int = 0

    def __call__(self, event: Event) -> None:
        channel = event.get("Unique-ID") or ""
        if event.name == "CHANNEL_CREATE":
            # The number as dialled: an answered leg is transferred to the outbound extension,
            # which becomes its destination.
            number = self.numbers[channel] = event.get("Caller-Destination-Number") or ""
            self.originated[number] = self.originated.get(number, 0) + 1
            live = self.live.setdefault(number, set())
            live.add(channel)
            self.most[number] = max(self.most.get(number, 0), len(live))
            self.up += 1
            self.most_up = max(self.most_up, self.up)
        elif event.name == "CHANNEL_HANGUP_COMPLETE" and channel in self.numbers:
            live = self.live.get(self.numbers[channel], set())
            if channel in live:
                live.discard(channel)
                self.up -= 1


@dataclass
class Scrape:
    """What the bench reads from the dialer's /metrics."""

    rss_bytes: float | None = None
    originates: float | None = None
    prepare_count: float = 0.0
    prepare_sum_s: float = 0.0
    prepare_buckets: list[tuple[float, float]] = field(default_factory=list)  # (le, cumulative)


# --------------------------------------------------------------------------- the campaign


def numbers() -> Iterator[str]:
    for area in AREAS:
        for line in range(100):
            yield f"+1{area}55501{line:02d}"


def zone_at(now: datetime, hour: float) -> str:
    """The whole-hour zone (``Etc/GMT±N``) whose clock is nearest ``hour`` at ``now``."""

    def distance(name: str) -> float:
        local = now.astimezone(ZoneInfo(name))
        off = abs(local.hour + local.minute / 60 - hour)
        return min(off, 24 - off)

    names = ["UTC" if h == 0 else f"Etc/GMT{-h:+d}" for h in range(-12, 15)]
    return min(names, key=distance)


def plan(total: int, bookings: int, *, open_zone: str, night_zone: str) -> list[Planned]:
    """The campaign's contacts: every kind spread over the list, the bookings evenly apart (so
    they rarely hold both call slots at once)."""
    capacity = len(AREAS) * 100
    if not 1 <= total <= capacity or not 0 <= bookings <= total:
        raise SystemExit(
            f"BENCH_DIALER_CONTACTS must be 1..{capacity} and BENCH_DIALER_BOOKINGS 0..contacts; "
            f"got {total} and {bookings}"
        )
    kinds: list[str] = []
    for kind, share in SHARES.items():
        wanted = round(share * total)
        kinds += [kind] * (max(1, wanted) if total >= 10 else wanted)
    kinds = kinds[: total - bookings]
    kinds += ["unallocated"] * (total - bookings - len(kinds))
    random.Random(7).shuffle(kinds)
    for k in range(bookings):
        kinds.insert(round((k + 1) * total / (bookings + 1)) - 1, "booking")
    return [
        Planned(i, number, kind, night_zone if kind == "night" else open_zone)
        for i, (number, kind) in enumerate(zip(numbers(), kinds, strict=False))
    ]


def spec(open_zone: str) -> CampaignSpec:
    """Calling hours 08:00-21:00 local every day; retries soon enough to finish in the run."""
    return CampaignSpec(
        name="bench-dialer",
        timezone=open_zone,
        windows=CallingWindows(hours={day: [CALLING_HOURS] for day in WEEKDAYS}),
        retry=RetryPolicy(max_attempts=2, busy_after_min=0.1, no_answer_after_min=0.1),
        originate_timeout_s=5,
    )


def behind(template: CallScript, contact: Planned) -> CallScript:
    """``template`` answering on the contact's number."""
    return template.model_copy(
        update={
            "name": f"{template.name}-{contact.index}",
            "caller": template.caller.model_copy(update={"number": contact.number}),
        }
    )


def script_for(
    contact: Planned, booking: CallScript, voicemails: list[CallScript]
) -> CallScript | None:
    """The callee script behind a contact's number; None for those never to be dialled."""
    if contact.kind == "booking":
        return behind(booking, contact)
    if contact.kind == "voicemail":
        return behind(voicemails[contact.index % len(voicemails)], contact)
    if contact.kind == "not_interested":
        return CallScript.model_validate(
            {
                "name": f"bench-not-interested-{contact.index}",
                "direction": "outbound",
                "outbound": {"answer_after_rings": 1},
                "caller": {"number": contact.number},
                "timing": {"agent_turn_gap_ms": 800},
                "turns": [{"say": DECLINE}, {"hangup": {}}],
                "expect": {"status": "not_interested"},
            }
        )
    if contact.kind in ("dnc", "night"):
        return None
    outcome, rings = UNANSWERED.get(contact.kind, UNALLOCATED)
    return CallScript.model_validate(
        {
            "name": f"bench-{contact.kind}-{contact.index}",
            "direction": "outbound",
            "outbound": {"outcome": outcome, "answer_after_rings": rings},
            "caller": {"number": contact.number},
        }
    )


# --------------------------------------------------------------------------- the stack


async def start_services(
    names: tuple[str, ...],
    stack: BenchStack,
    env: dict[str, str],
    procs: dict[str, subprocess.Popen[str]],
) -> None:
    """devstack's services one after the other, as ``start_all`` starts them, but each is in
    ``procs`` the moment it is launched: a Ctrl-C during a slow start still stops it."""
    for name in names:
        service = SERVICES[name]
        log = stack.folder / f"{name}.log"
        proc = procs[name] = launch(
            service.module, args=service.argv(stack.ports), env=env, output=log
        )
        url = service.url(stack.ports, service.ready_path)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not await asyncio.to_thread(answers, url):
            if proc.poll() is not None:
                raise StartError(f"{name} exited with status {proc.returncode}; see {log}")
            if time.monotonic() > deadline:
                raise StartError(
                    f"{name} did not answer {url} in {START_TIMEOUT_S:.0f} s; see {log}"
                )
            await asyncio.sleep(0.2)


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (its peak) of a process, in bytes, from /proc; empty without procfs."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    found = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(rest.split()[0]) * 1024
    return found


async def scrape(client: httpx.AsyncClient) -> Scrape:
    found = Scrape()
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "process_resident_memory_bytes":
                found.rss_bytes = sample.value
            elif sample.name == "dialer_originates_total":
                found.originates = sample.value
            elif sample.name == "dialer_originate_prepare_seconds_bucket":
                found.prepare_buckets.append((float(sample.labels["le"]), sample.value))
            elif sample.name == "dialer_originate_prepare_seconds_count":
                found.prepare_count = sample.value
            elif sample.name == "dialer_originate_prepare_seconds_sum":
                found.prepare_sum_s = sample.value
    return found


def bucket_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The upper bound of the histogram bucket that holds the ``q`` quantile."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] == 0:
        return None
    return next(le for le, cumulative in ordered if cumulative >= q * ordered[-1][1])


async def all_contacts(client: httpx.AsyncClient, campaign_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        page = await client.get(
            f"/campaigns/{campaign_id}/contacts", params={"limit": 1000, "offset": len(found)}
        )
        page.raise_for_status()
        batch: list[dict[str, Any]] = page.json()
        found += batch
        if len(batch) < 1000:
            return found


async def completed_since(redis: aioredis.Redis, since: str) -> list[outcomes.CallOutcome]:
    """Every outcome on calls:completed from ``since`` (a stream id) on."""
    read: list[outcomes.CallOutcome] = []
    start = since
    while True:
        batch: Any = await redis.xrange(CALLS_COMPLETED, min=start, max="+", count=500)
        for _, fields in batch:
            try:
                read.append(outcomes.parse_entry(fields))
            except InvalidInput:
                continue
        if len(batch) < 500:
            return read
        start = "(" + batch[-1][0].decode()


# --------------------------------------------------------------------------- figures


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _scaled(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _bound(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:.1f} MiB"


def judge(
    contacts: list[Planned], final: dict[str, dict[str, Any]], watch: Watch
) -> dict[str, Any]:
    """Double dials, do-not-call and window violations, and outcomes against the callees."""
    double: list[dict[str, Any]] = []
    wrong: list[dict[str, Any]] = []
    dnc = {"contacts": 0, "dialled": 0, "skipped": 0}
    night = {"contacts": 0, "dialled": 0, "put_off": 0}
    right = judged = 0
    for contact in contacts:
        seen = final.get(contact.number) or {}
        dialled = watch.originated.get(contact.number, 0)
        attempts = int(seen.get("attempts") or 0)
        if watch.most.get(contact.number, 0) > 1 or dialled > attempts:
            double.append(
                {"contact": contact.index, "kind": contact.kind, "dialled": dialled,
                 "attempts": attempts, "most_at_once": watch.most.get(contact.number, 0)}
            )  # fmt: skip
        if contact.kind == "dnc":
            dnc["contacts"] += 1
            dnc["dialled"] += dialled > 0
            dnc["skipped"] += seen.get("outcome") == "skipped_dnc"
        if contact.kind == "night":
            night["contacts"] += 1
            night["dialled"] += dialled > 0
            reason = seen.get("reason") or ""
            night["put_off"] += seen.get("state") == "scheduled" and "calling hours" in reason
            continue
        judged += 1
        if seen.get("outcome") == EXPECTED[contact.kind]:
            right += 1
        else:
            wrong.append(
                {"contact": contact.index, "kind": contact.kind, "expected": EXPECTED[contact.kind],
                 "state": seen.get("state"), "outcome": seen.get("outcome"),
                 "reason": seen.get("reason"), "attempts": attempts, "dialled": dialled}
            )  # fmt: skip
    return {
        "double_dials": double,
        "dnc": dnc,
        "window": night,
        "as_dictated": {"right": right, "of": judged, "wrong": wrong},
    }


def callee_reports(folder: Path) -> list[dict[str, Any]]:
    """The reports of the answered calls the callee scripts played (unanswered ones are short)."""
    found = [json.loads(path.read_text(encoding="utf-8")) for path in folder.glob("*.json")]
    return [r for r in found if "turns" in r]


def _slots_right(report: dict[str, Any]) -> bool:
    checks = report.get("expect") or []
    return bool(checks) and all(c["passed"] for c in checks)


def figures(
    contacts: list[Planned],
    final: dict[str, dict[str, Any]],
    watch: Watch,
    completed: list[outcomes.CallOutcome],
    *,
    campaign_id: str,
    campaign_s: float,
    metrics: Scrape,
    reports: list[dict[str, Any]],
) -> dict[str, Any]:
    """Throughput, the dialer's own time, first audio and the sheet rows of the campaign."""
    answered = [o for o in completed if o.call_id in watch.numbers]
    # The two-second rule is about people: on a machine the agent waits for the beep.
    people = [o for o in answered if not answered_by_machine(o)]
    rows = [
        o.call_id
        for o in completed
        if o.call_id.startswith(CONTACT_ROW_PREFIX) and o.campaign_id == campaign_id
    ]
    # How long each person waited for the agent, as the dialer's two-second rule counts it.
    first = [agent_heard_after_ms(o) for o in people]
    spoke = [ms for ms in first if ms is not None]
    lengths = [o.duration_s for o in answered]
    callable_numbers = {c.number for c in contacts if c.kind != "night"}
    states = [c["state"] for n, c in final.items() if n in callable_numbers]
    finished = sum(state in ("done", "skipped") for state in states)
    originates = sum(watch.originated.values())
    minutes = max(campaign_s, 1e-9) / 60
    bookings = [r for r in reports if str(r.get("script", "")).startswith("outbound-booking")]
    count = metrics.prepare_count
    return {
        "finished": finished,
        "done": states.count("done"),
        "skipped": states.count("skipped"),
        "campaign_s": round(campaign_s, 1),
        "finished_per_min": finished / minutes,
        "originates": originates,
        "originates_metric": metrics.originates,
        "originates_per_min": originates / minutes,
        "most_at_once": watch.most_up,
        "prepare": {
            "count": count,
            "mean_ms": metrics.prepare_sum_s / count * 1000 if count else None,
            "p50_le_ms": _scaled(bucket_quantile(metrics.prepare_buckets, 0.5)),
            "p95_le_ms": _scaled(bucket_quantile(metrics.prepare_buckets, 0.95)),
            "buckets": metrics.prepare_buckets,
        },
        "first_audio_ms": {
            "n": len(first),
            "p50": percentile(spoke, 0.5),
            "p95": percentile(spoke, 0.95),
            "max": max(spoke) if spoke else None,
            "over_target": sum(ms > FIRST_AUDIO_TARGET_MS for ms in spoke),
            "never": len(first) - len(spoke),
            "values": spoke,
        },
        "answered": {
            "calls": len(answered),
            "machines": len(answered) - len(people),
            "length_p50_s": percentile(lengths, 0.5),
            "length_max_s": max(lengths) if lengths else None,
            "bookings_right": sum(_slots_right(r) for r in bookings),
            "bookings": len(bookings),
            # The agent's playback stopped with no caller cutting in (callsim's spurious stops).
            "spurious_stops": sum(
                len({stop["t_ms"] for stop in r.get("spurious_stops") or []}) for r in reports
            ),
            "calls_with_errors": sum(bool(r.get("errors")) for r in reports),
        },
        "sheet_rows": {"rows": len(set(rows)), "twice": len(rows) - len(set(rows))},
        "voicemail": voicemail_figures(contacts, final, watch, answered, reports),
    }


def answered_by_machine(outcome: outcomes.CallOutcome) -> bool:
    return outcome.amd is not None and outcome.amd.answered_by == "machine"


def voicemail_figures(
    contacts: list[Planned],
    final: dict[str, dict[str, Any]],
    watch: Watch,
    answered: list[outcomes.CallOutcome],
    reports: list[dict[str, Any]],
) -> dict[str, Any]:
    """How the voicemail contacts ended: their outcomes, and what their calls did (the
    answering-machine verdicts, the calls' statuses, the messages the boxes took)."""
    boxes = {c.number for c in contacts if c.kind == "voicemail"}
    ended = Counter(
        str((final.get(n) or {}).get("outcome") or (final.get(n) or {}).get("state")) for n in boxes
    )
    calls = [o for o in answered if watch.numbers.get(o.call_id) in boxes]
    verdicts = [o.amd for o in calls if o.amd is not None]
    machine_ms = [a.verdict_ms for a in verdicts if a.answered_by == "machine"]
    verdict_at = {o.call_id: o.amd.verdict_ms for o in calls if o.amd is not None}
    box_reports = [r for r in reports if watch.numbers.get(str(r.get("call_id"))) in boxes]
    messages = over_greeting = 0
    for r in box_reports:
        agent = [line for line in r.get("transcript") or [] if line.get("role") == "agent_audio"]
        at = verdict_at.get(str(r.get("call_id")))
        # The agent's audio after the machine verdict is its message; before it, the agent
        # talked over the greeting (it took the box for a person first).
        messages += at is not None and any(line["t_ms"] >= at for line in agent)
        over_greeting += at is not None and any(line["t_ms"] < at for line in agent)
    return {
        "contacts": len(boxes),
        "ended": dict(ended.most_common()),
        "calls": len(calls),
        "statuses": dict(Counter(o.status for o in calls).most_common()),
        "answered_by": dict(Counter(a.answered_by for a in verdicts).most_common()),
        "cues": dict(Counter(a.cue for a in verdicts).most_common()),
        "no_verdict": len(calls) - len(verdicts),
        "verdict_ms": {
            "p50": percentile(machine_ms, 0.5),
            "p95": percentile(machine_ms, 0.95),
            "max": max(machine_ms) if machine_ms else None,
        },
        "messages_left": messages,
        # What the call's own outcome says (the policy engine's summary of a voicemail).
        "recorded_message_left": sum(
            "message left" in (o.summary or "") and "no message left" not in (o.summary or "")
            for o in calls
            if o.status == "voicemail"
        ),
        "agent_over_greeting": over_greeting,
        "hung_up_by": dict(Counter(str(r.get("hung_up_by")) for r in box_reports).most_common()),
        "callee_reports": len(box_reports),
    }


def print_results(report: dict[str, Any]) -> None:
    c, f, m = report["config"], report["figures"], report["memory"]
    per_min = f["finished_per_min"]
    rate = c["calls_per_second"] * 60
    print("\nResults:")
    print(f"  contacts finished     {f['finished']}/{c['contacts']} in "
          f"{f['campaign_s'] / 60:.1f} min: {per_min:.1f} per minute ({f['skipped']} skipped "
          f"without a call, {c['mix']['night']} waiting for their window)")  # fmt: skip
    print(f"  originates            {f['originates']}: {f['originates_per_min']:.1f} per minute "
          f"= {f['originates_per_min'] / rate:.2f} of the trunk's {rate:.0f}; most calls at once "
          f"{f['most_at_once']} (concurrency {c['concurrency']})")  # fmt: skip
    p = f["prepare"]
    share = (p["mean_ms"] or 0) / (1000 / c["calls_per_second"])
    mean = "-" if p["mean_ms"] is None else f"{p['mean_ms']:.2f}"
    print(f"  dialer per originate  mean {mean} ms, p50 <= "
          f"{_bound(p['p50_le_ms'])} ms, p95 <= {_bound(p['p95_le_ms'])} ms (n={p['count']:.0f}, "
          f"/metrics histogram); {share:.4f} of the "
          f"{1000 / c['calls_per_second']:.0f} ms between originates")  # fmt: skip
    a = f["first_audio_ms"]
    ratio = f"  p95 ratio {a['p95'] / FIRST_AUDIO_TARGET_MS:.2f}" if a["p95"] else ""
    print(f"  person waits (2 s rule) p50 {_ms(a['p50'])} ms  p95 {_ms(a['p95'])} ms  max "
          f"{_ms(a['max'])} ms (n={a['n']})  target {FIRST_AUDIO_TARGET_MS:.0f} ms{ratio}; "
          f"over it {a['over_target']}, agent never spoke {a['never']}")  # fmt: skip
    b = f["answered"]
    print(f"  answered calls        {b['calls']}, length p50 {_ms(b['length_p50_s'])} s, max "
          f"{_ms(b['length_max_s'])} s ({b['machines']} by a machine); bookings with every slot right {b['bookings_right']}/"
          f"{b['bookings']} (the callee scripts' checks); agent playback stopped with nobody "
          f"cutting in {b['spurious_stops']}, calls with caller-side errors "
          f"{b['calls_with_errors']}")  # fmt: skip
    v = f["voicemail"]
    t = v["verdict_ms"]
    print(f"  voicemail contacts    {v['contacts']} ended {v['ended']}; their calls {v['calls']}: "
          f"status {v['statuses']}, verdicts {v['answered_by']} by {v['cues']} (none "
          f"{v['no_verdict']}), machine verdict p50 {_ms(t['p50'])} ms p95 {_ms(t['p95'])} ms; "
          f"messages left {v['messages_left']}/{v['callee_reports']} (the calls' outcomes say "
          f"{v['recorded_message_left']}), agent over the greeting "
          f"{v['agent_over_greeting']}, hung up by {v['hung_up_by']}")  # fmt: skip
    j = report["checks"]
    print(f"  double dials          {len(j['double_dials'])}  target 0")
    print(f"  do-not-call dialled   {j['dnc']['dialled']} of {j['dnc']['contacts']}  target 0  "
          f"({j['dnc']['skipped']} skipped_dnc)")  # fmt: skip
    print(f"  outside-window dialled {j['window']['dialled']} of {j['window']['contacts']}  "
          f"target 0  ({j['window']['put_off']} put off to their calling hours)")  # fmt: skip
    d = j["as_dictated"]
    wrong = ", ".join(f"{w['kind']}: {w['outcome'] or w['state']}" for w in d["wrong"][:8])
    print(
        f"  as the callee says    {d['right']}/{d['of']}" + (f"  (wrong: {wrong})" if wrong else "")
    )
    r = f["sheet_rows"]
    later = (
        ""
        if report["campaign"].get("state") == "completed"
        else f" (the {f['skipped']} skipped get theirs when the campaign completes)"
    )
    print(f"  sheet rows            {r['rows']} for {f['done']} contacts done{later}, "
          f"{r['twice']} written twice")  # fmt: skip
    print(f"  dialer memory         RSS {_mib(m['before'].get('VmRSS'))} before, "
          f"{_mib(m['after'].get('VmRSS'))} after, peak {_mib(m['after'].get('VmHWM'))}; "
          f"/metrics {_mib(m['metrics_before'])} -> {_mib(m['metrics_after'])}")  # fmt: skip
    camp = report["campaign"]
    print(f"  campaign              {camp.get('state')}"
          + (f" ({camp['reason']})" if camp.get("reason") else "")
          + f"; abandon rate {camp.get('abandon_rate')}")  # fmt: skip
    print(f"    by outcome {(camp.get('counts') or {}).get('outcome')}")
    print(f"    by state   {(camp.get('counts') or {}).get('state')}")
    print(f"  wall time             {report['wall_s'] / 60:.1f} min "
          f"(stack up in {report['startup_s']:.0f} s)")  # fmt: skip


# --------------------------------------------------------------------------- the run


def database(folder: Path, kind: str) -> tuple[str, str | None, str | None]:
    """The dialer's database URL, fresh for this run; with the PostgreSQL server and database
    name to drop afterwards."""
    if kind == "postgresql":
        server = postgres_provision.ensure(
            ROOT / ".run", env_url=os.environ.get("DATABASE_TEST_URL") or None
        )
        name = f"bench_dialer_{uuid.uuid4().hex[:12]}"
        postgres_provision.create_database(server, name)
        return postgres_provision.sqlalchemy_url(server, database=name), server, name
    path = folder / "dialer.db"
    for stale in (path, path.with_name("dialer.db-wal"), path.with_name("dialer.db-shm")):
        stale.unlink(missing_ok=True)
    return f"sqlite+aiosqlite:///{path}", None, None


async def run_campaign(
    client: httpx.AsyncClient,
    contacts: list[Planned],
    campaign: CampaignSpec,
    dialer_pid: int,
    report: dict[str, Any],
) -> tuple[str, dict[str, dict[str, Any]], float]:
    """Create and start the campaign, wait until every contact that may be called is finished;
    the campaign's id, its contacts by number, and the seconds until the last one finished."""
    dnc = [c.number for c in contacts if c.kind == "dnc"]
    for number in dnc[: len(dnc) // 2]:  # listed before the import: skipped as it is read
        (await client.post("/dnc", json={"number": number})).raise_for_status()
    body = {
        "campaign": campaign.model_dump(mode="json"),
        "contacts": [{"phone": c.number, "timezone": c.timezone} for c in contacts],
    }
    created = await client.post("/campaigns", json=body)
    created.raise_for_status()
    campaign_id: str = created.json()["id"]
    report["import"] = {k: created.json()[k] for k in ("imported", "duplicates", "errors_total")}
    for number in dnc[len(dnc) // 2 :]:  # listed after it: the waiting contacts are skipped
        (await client.post("/dnc", json={"number": number})).raise_for_status()
    (await client.post(f"/campaigns/{campaign_id}/start")).raise_for_status()
    started = time.monotonic()
    deadline = started + float(os.environ.get("BENCH_DIALER_MAX_S", "900"))
    night = {c.number for c in contacts if c.kind == "night"}
    finished_n, last_finish, shown = -1, started, started
    peak_rss = 0
    by_number: dict[str, dict[str, Any]] = {}
    while True:
        by_number = {c["phone"]: c for c in await all_contacts(client, campaign_id)}
        peak_rss = max(peak_rss, memory(dialer_pid).get("VmRSS", 0))
        done = [
            c for n, c in by_number.items() if n not in night and c["state"] in ("done", "skipped")
        ]
        put_off = [by_number[n] for n in night if by_number.get(n, {}).get("state") == "scheduled"]
        if len(done) != finished_n:
            finished_n, last_finish = len(done), time.monotonic()
        state = (await client.get(f"/campaigns/{campaign_id}")).json()["state"]
        now = time.monotonic()
        if now - shown >= 30:
            shown = now
            print(f"  {now - started:5.0f} s  finished {finished_n}/{len(contacts) - len(night)}, "
                  f"campaign {state}", flush=True)  # fmt: skip
        if finished_n == len(contacts) - len(night) and len(put_off) == len(night):
            break
        if state != "running":
            print(f"  the campaign is {state}: no longer waiting for it", flush=True)
            break
        if now > deadline:
            print(f"  gave up waiting after {now - started:.0f} s (BENCH_DIALER_MAX_S)", flush=True)
            report["timed_out"] = True
            break
        await asyncio.sleep(POLL_S)
    report["memory"]["peak_sampled"] = peak_rss
    return campaign_id, by_number, last_finish - started


async def main() -> None:
    t0 = time.monotonic()
    total = int(os.environ.get("BENCH_DIALER_CONTACTS", "200"))
    bookings = int(os.environ.get("BENCH_DIALER_BOOKINGS", "3"))
    stack = bench_stack(NAME)
    out, ports = stack.folder, stack.ports
    now = datetime.now(UTC)
    open_zone, night_zone = zone_at(now, 14.5), zone_at(now, 2.5)
    contacts = plan(total, bookings, open_zone=open_zone, night_zone=night_zone)
    campaign = spec(open_zone)
    mix = {k: sum(c.kind == k for c in contacts) for k in (*EXPECTED, "night")}
    kind = "postgresql" if os.environ.get("BENCH_DIALER_DB") == "postgresql" else "sqlite"
    group = f"bench-dialer-{os.getpid()}"
    env = stack.env | {"DIALER_GROUP": group, "DIALER_REPLICA": "bench-dialer"}
    report: dict[str, Any] = {
        "config": {
            "contacts": total,
            "bookings": bookings,
            "database": kind,
            "concurrency": campaign.concurrency,
            "calls_per_second": campaign.calls_per_second,
            "originate_timeout_s": campaign.originate_timeout_s,
            "retry": campaign.retry.model_dump(),
            "zones": {"open": open_zone, "night": night_zone},
            "mix": mix,
        },
        "memory": {},
    }
    print(f"Dialer campaign: {total} contacts {mix}, concurrency {campaign.concurrency}, "
          f"{campaign.calls_per_second:g} call/s, originate timeout {campaign.originate_timeout_s} s, "
          f"{report['config']['database']}", flush=True)  # fmt: skip
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)

    for folder in (out / "callees", out / "callsim"):
        shutil.rmtree(folder, ignore_errors=True)
    switch = Switch(fork_build="jambonz")
    options = caller_options(
        ports.bridge,
        fork_password=stack.fork_password,
        redis_url=stack.redis_url,
        recordings=out / "callsim",
    )
    load_deployment(switch, options)  # the gateways and the outbound extension
    book = CalleeBook(switch, options, out / "callees")
    template = load_script(BOOKING)
    voicemails = [load_script(path) for path in VOICEMAILS]
    # Their greetings are spoken ahead, so a box picking up does not hold the switch's calls.
    await asyncio.to_thread(lambda: sum(prepare_voices(v) for v in voicemails))
    for contact in contacts:
        script = script_for(contact, template, voicemails)
        if script is None:  # never to be dialled: a call that reaches it is counted and refused
            switch.callees[contact.number] = Callee("reject")
        else:
            book.add(Path(f"{NAME}/{script.name}"), script)
    watch = Watch()
    switch.listeners.append(watch)
    server = EslServer(switch, stack.esl_password, "127.0.0.1", ports.esl)
    redis = aioredis.Redis.from_url(stack.redis_url)
    procs: dict[str, subprocess.Popen[str]] = {}
    client = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{ports.dialer}",
        headers={"Authorization": f"Bearer {env['DIALER_API_TOKEN']}"},
        timeout=30,
    )
    pg_server = pg_name = None
    try:
        env["DIALER_DATABASE_URL"], pg_server, pg_name = database(out, kind)
        await server.start()
        await start_services((*CALL_PATH, "dialer"), stack, env, procs)
        report["startup_s"] = round(time.monotonic() - t0, 1)
        print(f"  stack up in {report['startup_s']:.0f} s", flush=True)
        pid = procs["dialer"].pid
        report["memory"]["before"] = memory(pid)
        report["memory"]["metrics_before"] = (await scrape(client)).rss_bytes
        since = f"{int(time.time() * 1000)}-0"
        campaign_id, final, campaign_s = await run_campaign(client, contacts, campaign, pid, report)
        await asyncio.sleep(1.0)  # the last contact rows reach the stream
        after = await scrape(client)
        report["memory"]["after"] = memory(pid)
        report["memory"]["metrics_after"] = after.rss_bytes
        report["campaign"] = (await client.get(f"/campaigns/{campaign_id}")).json()
        report["campaign"].pop("spec", None)
        report["checks"] = judge(contacts, final, watch)
        report["figures"] = figures(
            contacts,
            final,
            watch,
            await completed_since(redis, since),
            campaign_id=campaign_id,
            campaign_s=campaign_s,
            metrics=after,
            reports=callee_reports(out / "callees"),
        )
        report["switch_faults"] = list(switch.faults)
        report["wall_s"] = round(time.monotonic() - t0, 1)
        print_results(report)
    finally:
        await book.aclose()
        await client.aclose()
        await asyncio.to_thread(stop_all, procs)  # the switch keeps answering while they stop
        await server.close()
        try:
            await redis.xgroup_destroy(CALLS_COMPLETED, group)
        except RedisError:
            pass
        await redis.aclose()
        if pg_server is not None and pg_name is not None:
            postgres_provision.drop_database(pg_server, pg_name)
        report.setdefault("wall_s", round(time.monotonic() - t0, 1))
        path = out / "report.json"
        path.write_text(json.dumps(report, indent=1, default=str))
        print(f"\nreport: {path.relative_to(ROOT)}")


def arguments(argv: list[str] | None = None) -> None:
    """``--help`` prints what the bench does; its settings are the environment variables above."""
    argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Settings (environment): BENCH_DIALER_CONTACTS (default 200), "
        "BENCH_DIALER_BOOKINGS (default 3), BENCH_DIALER_DB (sqlite or postgresql), "
        "BENCH_DIALER_MAX_S (default 900).",
    ).parse_args(argv)


if __name__ == "__main__":
    arguments()
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("stopped (Ctrl-C); every process it started is stopped", file=sys.stderr)
        sys.exit(130)
    except asyncio.CancelledError:
        print("stopped (SIGTERM); every process it started is stopped", file=sys.stderr)
        sys.exit(143)
