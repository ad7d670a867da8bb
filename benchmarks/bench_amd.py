"""Answering-machine detection on the whole stack: a campaign to the callees of benchmarks/amd.

Starts the call path with devstack (embedded LLM, ASR and TTS gateways, policy engine, bridge)
and the dialer (its database a fresh SQLite file in .run/bench-amd/), all on free ports;
callsim's switch runs in this process with every script of benchmarks/amd behind its number:
voicemails with and without a beep, call screeners, and people who speak first, late or not at
all. The campaign carries the agent's language, so the contacts go into one campaign per
language of the suite (en, ru), run side by side; their concurrency adds up to ``--concurrency``
(the bridge's BRIDGE_MAX_CALLS, 4 by default). Every contact is called once.

Each outcome on calls:completed says who the agent took the callee for (``amd``:
``answered_by``, ``cue``, ``verdict_ms`` from the answer to the verdict). Prints, per script,
what its ``expect`` says against what the outcome says (answered_by, cue, verdict, status, and
the agent's first audio after the answer), then:

- machines detected (``answered_by: machine`` of the voicemails and screeners); target >= 95%;
- people classified as machines; target <= 2%;
- time to the verdict, median and p95; target a median within 3 s;
- the status each callee should end with (voicemail for every machine), and how long a person
  waited for the agent as the dialer's abandon rule counts it (from the answer, or from the end
  of their greeting when the agent listened first; over 2 s the call counts as abandoned).

A campaign that pauses itself is resumed and the pause reported: the dialer's abandon rule
counts an answered call whose agent spoke more than 2 s after the answer, and listening first
makes many. An outcome without ``amd`` (a stack from before the detection) is reported as
such: the detection figures then count nothing, and the status figures still stand. The exit status is
non-zero only when the bench itself could not run (a service that did not start, the dialer's
API refusing the campaign), never for a figure off its target. The report goes to
.run/bench-amd/report.json, each callee's own report to .run/bench-amd/callees/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from callkit.contracts import outcome as outcome_contract
from callkit.contracts.streams import CALLS_COMPLETED
from callkit.errors import ConfigError
from callkit.esl import Event
from callsim.callees import CalleeBook, check_scripts
from callsim.esl_server import EslServer
from callsim.run import load_deployment, percentile, prepare_voices
from callsim.script import MACHINES, CallScript, load_scripts
from callsim.switch import Switch
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
from dialer.spec import WEEKDAYS, CallingWindows, CampaignSpec, RetryPolicy, Span

ROOT = Path(__file__).resolve().parent.parent
NAME = "bench-amd"
SUITE = ROOT / "benchmarks" / "amd"
MACHINES_TARGET = 0.95  # share of machines detected, at least
PEOPLE_AS_MACHINES_TARGET = 0.02  # share of people taken for machines, at most
VERDICT_MEDIAN_TARGET_MS = 3000.0
FIRST_AUDIO_TARGET_MS = ABANDON_AFTER_S * 1000  # the dialer's abandon rule
START_TIMEOUT_S = 300.0
POLL_S = 1.0
PROGRESS_S = 15.0
MAX_RESUMES = 10


class HarnessError(Exception):
    """The bench could not do its part (as opposed to a figure off its target)."""


@dataclass(frozen=True)
class Callee:
    """One script of the suite and what it expects."""

    file: str
    script: CallScript

    @property
    def number(self) -> str:
        return self.script.caller.number

    @property
    def expected(self) -> str:
        """machine or human, from the script's expect (else its outcome)."""
        said = self.script.expect.answered_by
        if said is not None:
            return said
        return "machine" if self.script.outbound.outcome in MACHINES else "human"


@dataclass
class Watch:
    """The switch's view: the number each channel dialled (a call's id is its channel's uuid)."""

    numbers: dict[str, str] = field(default_factory=dict)

    def __call__(self, event: Event) -> None:
        if event.name == "CHANNEL_CREATE":
            self.numbers[event.get("Unique-ID") or ""] = (
                event.get("Caller-Destination-Number") or ""
            )


# --------------------------------------------------------------------------- the campaign


def selected(folder: Path, only: Sequence[str]) -> list[Callee]:
    scripts = load_scripts(folder)
    check_scripts(scripts)
    if only:
        scripts = [(p, s) for p, s in scripts if any(w in p.stem for w in only)]
    if not scripts:
        raise HarnessError(f"no script of {folder} matches --only {','.join(only)}")
    return [Callee(str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path), s)
            for path, s in scripts]  # fmt: skip


def open_zone(now: datetime) -> str:
    """The whole-hour zone where it is nearest 14:30 now: inside every day's calling hours."""

    def distance(name: str) -> float:
        local = now.astimezone(ZoneInfo(name))
        off = abs(local.hour + local.minute / 60 - 14.5)
        return min(off, 24 - off)

    return min(["UTC", *(f"Etc/GMT{-h:+d}" for h in range(-12, 15) if h)], key=distance)


def shares(sizes: dict[str, int], total: int) -> dict[str, int]:
    """Concurrency per language, in proportion to its contacts, at least 1 each, ``total`` in
    all (more only when there are more languages than calls at once)."""
    left = dict.fromkeys(sizes, 1)
    for _ in range(max(0, total - len(sizes))):
        lang = max(sizes, key=lambda k: sizes[k] / left[k])
        left[lang] += 1
    return left


def campaign_spec(
    lang: str, zone: str, concurrency: int, on_voicemail: str | None
) -> dict[str, Any]:
    spec = CampaignSpec(
        name=f"{NAME}-{lang}",
        timezone=zone,
        windows=CallingWindows(hours={d: [Span(start="08:00", end="21:00")] for d in WEEKDAYS}),
        retry=RetryPolicy(max_attempts=1),
        concurrency=concurrency,
        calls_per_second=2.0,
        originate_timeout_s=10,
        locale=lang,
    ).model_dump(mode="json")
    if on_voicemail is not None:  # only when asked: a dialer from before AMD has no such field
        spec["on_voicemail"] = on_voicemail
    return spec


# --------------------------------------------------------------------------- the stack


async def start_services(
    names: Sequence[str],
    stack: BenchStack,
    env: dict[str, str],
    procs: dict[str, subprocess.Popen[str]],
) -> None:
    """devstack's services one after the other, each in ``procs`` the moment it is launched, so
    a Ctrl-C during a slow start still stops it."""
    for name in names:
        service = SERVICES[name]
        log = stack.folder / f"{name}.log"
        print(f"  starting {name}", flush=True)
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


def _ok(response: httpx.Response, what: str) -> Any:
    if response.is_error:
        raise HarnessError(f"{what}: HTTP {response.status_code} {response.text[:500]}")
    return response.json()


async def create_campaigns(
    client: httpx.AsyncClient,
    callees: list[Callee],
    concurrency: int,
    on_voicemail: str | None,
) -> dict[str, str]:
    """One campaign per language, created and started; their ids by language."""
    zone = open_zone(datetime.now(UTC))
    by_lang: dict[str, list[Callee]] = {}
    for callee in callees:
        by_lang.setdefault(callee.script.language, []).append(callee)
    split = shares({k: len(v) for k, v in by_lang.items()}, concurrency)
    ids: dict[str, str] = {}
    for lang, members in by_lang.items():
        body = {
            "campaign": campaign_spec(lang, zone, split[lang], on_voicemail),
            "contacts": [{"phone": c.number, "timezone": zone} for c in members],
        }
        created = _ok(await client.post("/campaigns", json=body), f"creating the {lang} campaign")
        if created.get("imported") != len(members):
            raise HarnessError(f"the {lang} campaign imported {created.get('imported')} of "
                               f"{len(members)} contacts: {created}")  # fmt: skip
        ids[lang] = created["id"]
        print(f"  campaign {lang}: {len(members)} contacts, concurrency {split[lang]}", flush=True)
    for lang, campaign_id in ids.items():
        _ok(await client.post(f"/campaigns/{campaign_id}/start"), f"starting the {lang} campaign")
    return ids


async def contacts_of(client: httpx.AsyncClient, campaign_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        page = await client.get(
            f"/campaigns/{campaign_id}/contacts", params={"limit": 1000, "offset": len(found)}
        )
        batch: list[dict[str, Any]] = _ok(page, "reading the campaign's contacts")
        found += batch
        if len(batch) < 1000:
            return found


class Outcomes:
    """The outcomes on calls:completed of the calls this switch placed, as raw JSON (so a field
    the contract does not know yet, or lacks, reads as it was written)."""

    def __init__(self, redis: aioredis.Redis, since: str, watch: Watch) -> None:
        self._redis = redis
        self._after = since
        self._watch = watch
        self.by_call: dict[str, dict[str, Any]] = {}

    async def read(self) -> list[dict[str, Any]]:
        """The outcomes that arrived since the last read."""
        new: list[dict[str, Any]] = []
        while True:
            batch: Any = await self._redis.xrange(
                CALLS_COMPLETED, min=self._after, max="+", count=500
            )
            for entry_id, fields in batch:
                self._after = "(" + entry_id.decode()
                try:
                    data = json.loads(fields.get(b"outcome", b""))
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue
                call_id = data.get("call_id") if isinstance(data, dict) else None
                if call_id in self._watch.numbers and call_id not in self.by_call:
                    self.by_call[call_id] = data
                    new.append(data)
            if len(batch) < 500:
                return new


def _amd_text(outcome: dict[str, Any]) -> str:
    amd = outcome.get("amd")
    if not isinstance(amd, dict):
        return "amd missing"
    return f"{amd.get('answered_by')}/{amd.get('cue')} at {_s(amd.get('verdict_ms'))}"


async def wait_for_contacts(
    client: httpx.AsyncClient,
    campaigns: dict[str, str],
    outcomes: Outcomes,
    by_number: dict[str, Callee],
    watch: Watch,
    max_s: float,
    pauses: list[dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], bool]:
    """Until every contact is finished (or ``max_s``): the contacts by number, and whether the
    wait ran out. A campaign that pauses itself is resumed, and why it paused kept in
    ``pauses``."""
    started = shown = time.monotonic()
    total = len(by_number)
    contacts: dict[str, dict[str, Any]] = {}
    while True:
        for data in await outcomes.read():
            callee = by_number.get(watch.numbers.get(data["call_id"], ""))
            name = callee.script.name if callee else data.get("callee")
            print(f"  {time.monotonic() - started:5.0f} s  {name}: {data.get('status')} "
                  f"({_amd_text(data)})", flush=True)  # fmt: skip
        states: dict[str, str] = {}
        for lang, campaign_id in campaigns.items():
            for contact in await contacts_of(client, campaign_id):
                contacts[contact["phone"]] = contact
            view = _ok(await client.get(f"/campaigns/{campaign_id}"), "reading a campaign")
            states[lang] = str(view["state"])
            if view["state"] == "paused" and len(pauses) < MAX_RESUMES:
                # The dialer's own breakers (abandoned calls, a failing trunk) judge the
                # campaign, not the detection: note why and go on, so every callee is called.
                pauses.append({"campaign": lang, "after_s": round(time.monotonic() - started),
                               "reason": view.get("reason"),
                               "abandon_rate": view.get("abandon_rate")})  # fmt: skip
                print(f"  {time.monotonic() - started:5.0f} s  the {lang} campaign paused itself "
                      f"({view.get('reason')}); resumed to call the rest", flush=True)  # fmt: skip
                _ok(await client.post(f"/campaigns/{campaign_id}/resume"), "resuming a campaign")
                states[lang] = "running"
        finished = sum(c["state"] in ("done", "skipped") for c in contacts.values())
        now = time.monotonic()
        if now - shown >= PROGRESS_S:
            shown = now
            print(f"  {now - started:5.0f} s  finished {finished}/{total}, campaigns {states}",
                  flush=True)  # fmt: skip
        if finished >= total:
            return contacts, False
        if all(state != "running" for state in states.values()):
            print(f"  the campaigns are {states}: no longer waiting for them", flush=True)
            return contacts, False
        if now - started > max_s:
            print(f"  gave up waiting after {now - started:.0f} s (--max-s)", flush=True)
            return contacts, True
        await asyncio.sleep(POLL_S)


# --------------------------------------------------------------------------- figures


def _s(ms: Any) -> str:
    return "-" if not isinstance(ms, int | float) else f"{ms / 1000:.1f} s"


def _pct(part: int, whole: int) -> str:
    return "-" if not whole else f"{100 * part / whole:.0f}%"


def rows(
    callees: list[Callee],
    contacts: dict[str, dict[str, Any]],
    outcomes: dict[str, dict[str, Any]],
    watch: Watch,
) -> list[dict[str, Any]]:
    """Per script: what it expects, and what its call's outcome says."""
    call_of = {number: call for call, number in watch.numbers.items() if call in outcomes}
    found = []
    for callee in callees:
        contact = contacts.get(callee.number) or {}
        call = call_of.get(callee.number)
        outcome = outcomes.get(call or "") or {}
        amd = outcome.get("amd") if isinstance(outcome.get("amd"), dict) else None
        latency = outcome.get("latency") or {}
        found.append(
            {
                "script": callee.script.name,
                "file": callee.file,
                "language": callee.script.language,
                "kind": callee.script.outbound.outcome,
                "beep": callee.script.outbound.voicemail_beep
                if callee.script.outbound.outcome == "voicemail"
                else None,
                "expected": callee.expected,
                "expected_status": callee.script.expect.status,
                "call_id": call,
                "dialled": sum(n == callee.number for n in watch.numbers.values()),
                "status": outcome.get("status") or contact.get("outcome"),
                "contact_state": contact.get("state"),
                "amd": amd,
                "answered_by": (amd or {}).get("answered_by"),
                "cue": (amd or {}).get("cue"),
                "verdict_ms": (amd or {}).get("verdict_ms"),
                "first_audio_ms": latency.get("first_audio_ms"),
                # How long a person waited, as the dialer's two-second rule counts it.
                "waited_ms": agent_heard_after_ms(
                    outcome_contract.CallOutcome.model_validate(outcome)
                )
                if outcome
                else None,
                "duration_s": outcome.get("duration_s"),
            }
        )
    return found


def figures(table: list[dict[str, Any]]) -> dict[str, Any]:
    machines = [r for r in table if r["expected"] == "machine"]
    people = [r for r in table if r["expected"] == "human"]
    judged = [r for r in table if r["amd"] is not None]
    verdicts = [float(r["verdict_ms"]) for r in judged if isinstance(r["verdict_ms"], int | float)]
    detected = sum(r["answered_by"] == "machine" for r in machines)
    as_machines = sum(r["answered_by"] == "machine" for r in people)
    median = statistics.median(verdicts) if verdicts else None

    def verdict_of(group: list[dict[str, Any]]) -> dict[str, Any]:
        ms = [float(r["verdict_ms"]) for r in group if isinstance(r["verdict_ms"], int | float)]
        return {"n": len(ms), "p50": statistics.median(ms) if ms else None,
                "p95": percentile(ms, 0.95)}  # fmt: skip

    heard = [float(r["waited_ms"]) for r in people if r["waited_ms"] is not None]
    return {
        "scripts": len(table),
        "outcomes": sum(r["call_id"] is not None for r in table),
        "with_amd": len(judged),
        "machines": {
            "n": len(machines),
            "detected": detected,
            "share": detected / len(machines) if machines and judged else None,
            "unknown": sum(r["answered_by"] == "unknown" for r in machines),
            "status_voicemail": sum(r["status"] == "voicemail" for r in machines),
        },
        "people": {
            "n": len(people),
            "as_machines": as_machines,
            "share": as_machines / len(people) if people and judged else None,
            "unknown": sum(r["answered_by"] == "unknown" for r in people),
            "status_voicemail": sum(r["status"] == "voicemail" for r in people),
            "first_audio_p50_ms": statistics.median(heard) if heard else None,
            "first_audio_p95_ms": percentile(heard, 0.95),
            "first_audio_over_target": sum(ms > FIRST_AUDIO_TARGET_MS for ms in heard),
        },
        "verdict_ms": {
            "n": len(verdicts),
            "p50": median,
            "p95": percentile(verdicts, 0.95),
            "machines": verdict_of(machines),
            "people": verdict_of(people),
        },
        "status_as_expected": sum(
            r["expected_status"] is not None and r["status"] == r["expected_status"] for r in table
        ),
        "status_expected": sum(r["expected_status"] is not None for r in table),
        "cues": {
            cue: sum(r["cue"] == cue for r in judged)
            for cue in sorted({str(r["cue"]) for r in judged})
        },
    }


def print_table(table: list[dict[str, Any]]) -> None:
    width = max(len(r["script"]) for r in table)
    print(f"\n  {'script':{width}}  expect   got      cue             verdict  status (expected)"
          "                 first audio")  # fmt: skip
    for r in table:
        got = r["answered_by"] or ("-" if r["call_id"] is None else "missing")
        mark = " " if r["answered_by"] is None else ("✓" if got == r["expected"] else "✗")
        status = f"{r['status'] or '-'} ({r['expected_status'] or '-'})"
        ok = "" if r["expected_status"] is None or r["status"] == r["expected_status"] else " ✗"
        cue = str(r["cue"] or "-")
        print(f"  {r['script']:{width}}  {r['expected']:7}  {got:7}{mark} {cue:15} "
              f"{_s(r['verdict_ms']):>7}  {status + ok:33} {_s(r['first_audio_ms']):>7}")  # fmt: skip


def _ratio(value: float | None, target: float) -> str:
    return "-" if value is None else f"{value / target:.2f}"


def print_figures(f: dict[str, Any]) -> None:
    m, p, v = f["machines"], f["people"], f["verdict_ms"]
    print("\nResults:")
    print(f"  outcomes              {f['outcomes']} of {f['scripts']} scripts; with amd "
          f"{f['with_amd']}")  # fmt: skip
    if not f["with_amd"]:
        print("  amd                   MISSING on every outcome: this stack does not tell "
              "machines from people yet; the detection figures below count nothing")  # fmt: skip
    elif f["with_amd"] < f["outcomes"]:
        print(f"  amd                   missing on {f['outcomes'] - f['with_amd']} outcomes "
              "(counted as not detected)")  # fmt: skip
    share = m["share"]
    print(f"  machines detected     {m['detected']}/{m['n']} = {_pct(m['detected'], m['n'])} "
          f"(unknown {m['unknown']})  target >= {MACHINES_TARGET:.0%}  ratio "
          f"{_ratio(share, MACHINES_TARGET)}")  # fmt: skip
    share = p["share"]
    print(f"  people as machines    {p['as_machines']}/{p['n']} = {_pct(p['as_machines'], p['n'])} "
          f"(unknown {p['unknown']})  target <= {PEOPLE_AS_MACHINES_TARGET:.0%}  ratio "
          f"{'-' if share is None else f'{share / PEOPLE_AS_MACHINES_TARGET:.2f}'}")  # fmt: skip
    print(f"  time to verdict       p50 {_s(v['p50'])}  p95 {_s(v['p95'])} (n={v['n']}; machines "
          f"p50 {_s(v['machines']['p50'])}, people p50 {_s(v['people']['p50'])})  target p50 <= "
          f"{VERDICT_MEDIAN_TARGET_MS / 1000:.0f} s  ratio "
          f"{_ratio(v['p50'], VERDICT_MEDIAN_TARGET_MS)}")  # fmt: skip
    print(f"  status as expected    {f['status_as_expected']}/{f['status_expected']}; machines "
          f"recorded voicemail {m['status_voicemail']}/{m['n']}, people recorded voicemail "
          f"{p['status_voicemail']}/{p['n']}")  # fmt: skip
    print(f"  a person waits        p50 {_s(p['first_audio_p50_ms'])}  p95 "
          f"{_s(p['first_audio_p95_ms'])} (from the answer, or from the end of their greeting when the agent listened first: the dialer's rule); over "
          f"{FIRST_AUDIO_TARGET_MS / 1000:.0f} s (abandoned) "
          f"{p['first_audio_over_target']}")  # fmt: skip
    if f["cues"]:
        print(f"  cues                  {f['cues']}")


# --------------------------------------------------------------------------- the run


def arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Answering-machine detection on the whole stack: one campaign per language "
        "to the callee scripts of benchmarks/amd; prints expected against detected per script, "
        "detection rates and time to verdict against their targets.",
    )
    parser.add_argument("--callees", type=Path, default=SUITE, help="folder of callee scripts "
                        "(default: benchmarks/amd)")  # fmt: skip
    parser.add_argument("--only", default="", help="comma-separated parts of script file names "
                        "to run (e.g. machine_beep,human_hello)")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=4, help="calls at once over all "
                        "campaigns (default 4, the bridge's BRIDGE_MAX_CALLS)")  # fmt: skip
    parser.add_argument(
        "--on-voicemail",
        choices=("message", "hangup"),
        default=None,
        help="what the campaign does on a machine (default: the dialer's own)",
    )
    parser.add_argument("--max-s", type=float, default=420.0, help="longest wait for the "
                        "campaigns, in seconds (default 420)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.monotonic()
    callees = selected(args.callees, [w.strip() for w in args.only.split(",") if w.strip()])
    kinds = {k: sum(c.expected == k for c in callees) for k in ("machine", "human")}
    print(f"AMD suite: {len(callees)} callees ({kinds['machine']} machines, {kinds['human']} "
          f"people) from {args.callees}, {args.concurrency} calls at once", flush=True)  # fmt: skip
    lines = await asyncio.to_thread(lambda: sum(prepare_voices(c.script) for c in callees))
    print(f"  {lines} callee lines synthesized in {time.monotonic() - t0:.0f} s", flush=True)

    stack = bench_stack(NAME)
    out, ports = stack.folder, stack.ports
    for folder in (out / "callees", out / "callsim"):
        shutil.rmtree(folder, ignore_errors=True)
    for stale in ("dialer.db", "dialer.db-wal", "dialer.db-shm"):
        (out / stale).unlink(missing_ok=True)
    group = f"{NAME}-{time.time_ns()}"
    env = stack.env | {
        "DIALER_GROUP": group,
        "DIALER_REPLICA": NAME,
        "DIALER_DATABASE_URL": f"sqlite+aiosqlite:///{out / 'dialer.db'}",
    }
    report: dict[str, Any] = {"config": {"scripts": [c.file for c in callees],
                                         "concurrency": args.concurrency,
                                         "on_voicemail": args.on_voicemail}}  # fmt: skip
    switch = Switch(fork_build="jambonz")
    options = caller_options(
        ports.bridge, fork_password=stack.fork_password, redis_url=stack.redis_url,
        recordings=out / "callsim",
    )  # fmt: skip
    load_deployment(switch, options)  # the gateways and the outbound extension
    book = CalleeBook(switch, options, out / "callees")
    for callee in callees:
        book.add(Path(callee.file), callee.script)
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
    try:
        await server.start()
        await start_services((*CALL_PATH, "dialer"), stack, env, procs)
        report["startup_s"] = round(time.monotonic() - t0, 1)
        print(f"  stack up in {report['startup_s']:.0f} s", flush=True)
        outcomes = Outcomes(redis, f"{int(time.time() * 1000)}-0", watch)
        campaigns = await create_campaigns(client, callees, args.concurrency, args.on_voicemail)
        report["campaigns"] = campaigns
        started = time.monotonic()
        pauses: list[dict[str, Any]] = []
        report["self_pauses"] = pauses
        contacts, timed_out = await wait_for_contacts(
            client, campaigns, outcomes, {c.number: c for c in callees}, watch, args.max_s, pauses
        )
        report["campaign_s"] = round(time.monotonic() - started, 1)
        report["timed_out"] = timed_out
        await asyncio.sleep(1.0)  # an outcome written just as the last contact finished
        await outcomes.read()
        table = rows(callees, contacts, outcomes.by_call, watch)
        report["scripts"] = table
        report["figures"] = figures(table)
        print_table(table)
        print_figures(report["figures"])
        for pause in pauses:
            print(f"  campaign paused       {pause['campaign']} after {pause['after_s']} s: "
                  f"{pause['reason']}; resumed")  # fmt: skip
        if timed_out:
            print(f"  not finished          the wait ran out after {args.max_s:g} s (--max-s)")
        report["wall_s"] = round(time.monotonic() - t0, 1)
        print(f"  wall time             {report['wall_s'] / 60:.1f} min (stack up in "
              f"{report['startup_s']:.0f} s, campaigns {report['campaign_s']:.0f} s)")  # fmt: skip
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
        report.setdefault("wall_s", round(time.monotonic() - t0, 1))
        path = out / "report.json"
        path.write_text(json.dumps(report, indent=1, default=str, ensure_ascii=False))
        print(f"\nreport: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return report


async def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await run(args)
    except (HarnessError, StartError, ConfigError, httpx.HTTPError, RedisError, OSError) as exc:
        print(f"bench-amd could not run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        print("stopped (Ctrl-C); every process it started is stopped", file=sys.stderr)
        sys.exit(130)
    except asyncio.CancelledError:
        print("stopped (SIGTERM); every process it started is stopped", file=sys.stderr)
        sys.exit(143)
