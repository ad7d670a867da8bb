"""Whole calls: callsim's FreeSWITCH and scripted callers against the real bridge, ASR gateway,
TTS gateway, policy engine (with the embedded LLM) and Redis, as separate processes.

Each test plays a script from tests/calls and checks the report a user would read: booked or
not, v2v measured on the fork's audio, barge-ins that stop the agent, backchannels and echo
that do not, a silent caller hung up on politely, and a policy engine restarted mid-call. The
stack logs at DEBUG, and the booking call's personal data must not be in any service's log."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import logging
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

import devstack
from callkit.contracts.streams import CALLS_COMPLETED
from callkit.logging import JsonFormatter, Redactor, WireTrafficFilter
from callkit.redis_provision import free_port
from callsim.callees import CalleeBook
from callsim.esl_server import EslServer
from callsim.run import RunOptions, load_deployment, run_call, summary_lines
from callsim.script import CallScript, load_script
from callsim.switch import Switch
from notifier.columns import Layout
from policy_engine.script import load_script as load_policy_script

ROOT = Path(__file__).parents[2]
CALLS = ROOT / "tests" / "calls"
SERVICES = (
    "asr_gateway",
    "tts_gateway",
    "policy_engine",
    "notifier",
    "fs_bridge",
    "dialer",
)  # LLM: embedded_llm
FORK_PASSWORD = "fork-" + uuid.uuid4().hex[:8]
ESL_PASSWORD = "esl-" + uuid.uuid4().hex[:8]
#: What the booking callee (outbound/booking_by_phone.yaml) gives away that the agent's own lines
#: do not: the number in the forms it is dialled, written and read back, the name and the
#: callee's own answers.
BOOKING_PII = re.compile(
    r"\+?1?2125550111|212[ .)-]*555[ .-]0111|\b(?:john|smith|forty[ -]five|eighty|two weeks|left knee)\b",
    re.IGNORECASE,
)


@dataclass
class Stack:
    env: dict[str, str]
    ports: devstack.Ports
    loop: asyncio.AbstractEventLoop
    switch: Switch
    redis_url: str
    tmp: Path
    services: dict[str, subprocess.Popen[str]]

    @property
    def sheet(self) -> Path:
        """The notifier's CSV sink, the sheet's rows as the demo writes them."""
        return Path(self.env["NOTIFY_CSV_PATH"])

    def options(self, bridge_port: int | None = None) -> RunOptions:
        return devstack.caller_options(
            bridge_port or self.ports.bridge,
            fork_password=FORK_PASSWORD,
            redis_url=self.redis_url,
            recordings=self.tmp / "callsim",
        )

    def call(self, script: CallScript, during: Any = None) -> dict[str, Any]:
        options = self.options()
        future = asyncio.run_coroutine_threadsafe(run_call(self.switch, script, options), self.loop)
        if during is not None:
            during()
        report = future.result(timeout=420)
        print("\n".join(summary_lines(report)))
        (self.tmp / f"{script.name}.json").write_text(json.dumps(report, indent=1))
        return report


@pytest.fixture(scope="module")
def stack(
    redis_url: str, embedded_llm: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("whole-call")
    ports = devstack.Ports.free()
    env = devstack.stack_env(
        ports,
        redis_url=redis_url,
        esl_password=ESL_PASSWORD,
        fork_password=FORK_PASSWORD,
        recordings=tmp / "bridge",
    ) | {
        "TTS_PRERENDER_RATES": "[16000]",
        "POLICY_LLM_BASE_URL": embedded_llm,
        "POLICY_CALENDAR_NAMESPACE": f"test-appt-{uuid.uuid4().hex[:8]}",
        "BRIDGE_SILENCE_S": "4",
        "DIALER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'dialer.db'}",
        "DIALER_TICK_S": "0.2",
        # The notifier reads calls:completed in a group of its own, so a notifier of `make serve`
        # on the same Redis still gets every call, and writes this stack's sheet as CSV.
        "NOTIFY_SINK": "csv",
        "NOTIFY_CSV_PATH": str(tmp / "calls.csv"),
        "NOTIFY_GROUP": f"whole-call-{uuid.uuid4().hex[:8]}",
        "NOTIFY_DEAD_STREAM": f"calls:dead:whole-call-{uuid.uuid4().hex[:8]}",
        "NOTIFY_BLOCK_MS": "500",  # its shutdown waits out one blocking read
        # Every line a service can write, so that the booking test sees any personal data leak.
        "LOG_LEVEL": "DEBUG",
    }
    with redis.Redis.from_url(redis_url) as r:
        # The group starts at the stream's end: this stack's sheet gets this stack's calls, not
        # every outcome earlier runs left on the same Redis (a new notifier reads from the start).
        r.xgroup_create(CALLS_COMPLETED, env["NOTIFY_GROUP"], id="$", mkstream=True)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    switch = Switch(fork_build="jambonz")
    server = EslServer(switch, ESL_PASSWORD, "127.0.0.1", ports.esl)
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        services = devstack.start_all(SERVICES, ports, env, tmp, timeout_s=240)
        try:
            yield Stack(env, ports, loop, switch, redis_url, tmp, services)
        finally:
            devstack.stop_all(services)  # a restarted service is in here too
    finally:
        with redis.Redis.from_url(redis_url) as r, contextlib.suppress(redis.ResponseError):
            r.delete(env["NOTIFY_DEAD_STREAM"])
            r.xgroup_destroy(CALLS_COMPLETED, env["NOTIFY_GROUP"])  # absent if it never started
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


#: A calling window that is always open: the campaign tests dial whenever they run.
ALL_WEEK = {
    "hours": {
        d: [{"start": "00:00", "end": "24:00"}]
        for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    }
}


def dialer_api(stack: Stack) -> httpx.Client:
    """The stack's dialer API, with its token."""
    return httpx.Client(
        base_url=f"http://127.0.0.1:{stack.ports.dialer}",
        headers={"Authorization": f"Bearer {stack.env['DIALER_API_TOKEN']}"},
        timeout=30,
    )


def run_to_the_end(api: httpx.Client, campaign_id: str, timeout_s: float) -> list[dict[str, Any]]:
    """Wait for a started campaign to complete; its contacts."""
    deadline = time.monotonic() + timeout_s
    while api.get(f"/campaigns/{campaign_id}").json()["state"] != "completed":
        assert time.monotonic() < deadline, api.get(f"/campaigns/{campaign_id}").json()
        time.sleep(0.5)
    contacts: list[dict[str, Any]] = api.get(f"/campaigns/{campaign_id}/contacts").json()
    return contacts


def sheet_row(stack: Stack, call_id: str, timeout_s: float = 60) -> dict[str, str]:
    """The call's row in the stack's sheet, by column key, once the notifier has written it."""
    keys = [column.key for column in Layout.build().columns]  # the notifier's default layout
    deadline = time.monotonic() + timeout_s
    while True:
        if stack.sheet.exists():
            with stack.sheet.open(newline="", encoding="utf-8") as f:
                for row in csv.reader(f):
                    named = dict(zip(keys, row, strict=False))
                    if named.get("call_id") == call_id:
                        return named
        assert time.monotonic() < deadline, f"no row for {call_id} in {stack.sheet}"
        time.sleep(0.2)


def leaks(logs: Path) -> list[str]:
    """Every log line under ``logs`` that holds the booking caller's data in plain text."""
    return [
        f"{path.name}: {line[:300]}"
        for path in sorted(logs.glob("*.log"))
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        if BOOKING_PII.search(line)
    ]


def test_a_barge_in_stops_the_agent_and_is_answered(stack: Stack) -> None:
    report = stack.call(load_script(CALLS / "barge_in.yaml"))
    (barge,) = report["barge_ins"]
    assert barge["correct"], barge  # it went quiet and did not take up its sentence again
    assert barge["yield_ms"] is not None, barge
    agent_lines = [line["text"] for line in report["transcript"] if line["role"] == "agent"]
    assert any("$520" in text for text in agent_lines)  # the price question was answered
    assert report["spurious_stops"] == []
    assert report["hung_up_by"] == "uuid_kill"  # the goodbye said over the agent still ends it


def test_a_backchannel_over_echo_loses_nothing_and_a_pause_is_waited_for(stack: Stack) -> None:
    report = stack.call(load_script(CALLS / "backchannel.yaml"))
    assert report["errors"] == []
    (backchannel,) = report["barge_ins"]
    assert backchannel["should_stop"] is False
    assert backchannel["stopped"] is False, backchannel  # not stopped for good
    assert backchannel["correct"], backchannel  # resumed without losing its words, or never quiet
    assert report["spurious_stops"] == []  # its own echo never stopped it
    (paused,) = [turn for turn in report["turns"] if turn.get("cut_in") is not None]
    assert paused["cut_in"] is False, paused  # "My name is ... Peter Brown." heard whole
    assert report["v2v"]["n"] >= 2


def test_a_silent_caller_is_reprompted_then_hung_up_on(stack: Stack) -> None:
    report = stack.call(load_script(CALLS / "silent_caller.yaml"))
    assert report["hung_up_by"] == "uuid_kill"
    agent_lines = [line["text"] for line in report["transcript"] if line["role"] == "agent"]
    assert any("Sorry, could you tell me your name?" in text for text in agent_lines)
    assert any("I can't hear you" in text for text in agent_lines)
    checks = {c["check"]: c for c in report["expect"]}
    assert checks["status"]["passed"], checks["status"]


def test_a_key_press_for_a_person_transfers_the_call(stack: Stack) -> None:
    """DTMF reaches the agent over the Event Socket; its transfer comes back as uuid_transfer."""
    report = stack.call(load_script(CALLS / "dtmf_transfer.yaml"))
    assert report["errors"] == []
    # prompts/clinic/clinic.yaml's transfer_target, routed by freeswitch/conf/dialplan/transfer.xml
    assert report["transferred_to"] == "operator"
    assert report["hangup_cause"] != "NO_ROUTE_DESTINATION"
    assert report["bridged_to"] == RunOptions().operator_destination
    agent_lines = [line["text"] for line in report["transcript"] if line["role"] == "agent"]
    assert any("putting you through to a colleague" in text for text in agent_lines)
    checks = {c["check"]: c for c in report["expect"]}
    assert checks["status"]["passed"], checks["status"]


def test_the_call_goes_on_when_the_policy_engine_restarts(stack: Stack) -> None:
    script = CallScript.model_validate(
        {
            "name": "policy-restart",
            "caller": {"voice": "piper:en_US-joe-medium", "codec": "L16"},
            "turns": [
                "My name is Laura Martin.",
                "My knee hurts, for two weeks, a sharp pain.",
                "No, I have not.",
                {"hangup": {}},
            ],
        }
    )
    policy = stack.services["policy_engine"]

    def restart_policy() -> None:
        # Let the call get going, then kill the engine and start a new one on the same port.
        with httpx.Client() as client:
            for _ in range(120):
                metrics = client.get(f"http://127.0.0.1:{stack.ports.policy}/metrics").text
                if 'policy_events_total{type="user.utterance"}' in metrics:
                    break
                threading.Event().wait(0.5)
        policy.kill()
        policy.wait(10)
        stack.services["policy_engine"] = devstack.launch(
            "policy_engine", env=stack.env, output=stack.tmp / "policy-restarted.log"
        )

    report = stack.call(script, during=restart_policy)  # the new engine serves later tests
    assert report["errors"] == []
    agent_lines = [line["text"] for line in report["transcript"] if line["role"] == "agent"]
    # The script went on past the restart: the doctor question, then the recommendation.
    assert any("seen a doctor" in text for text in agent_lines)
    assert any("I would recommend" in text for text in agent_lines)


def test_a_file_mode_call_goes_on_across_an_event_socket_drop(stack: Stack) -> None:
    """The upstream mod_audio_fork (playAudio files + sendmsg playback) with the bridge in file
    mode; mid-call the event socket goes away and comes back: the bridge reconnects, finds its call
    still up (uuid_exists) and the call goes on."""
    switch = Switch(fork_build="drachtio")
    esl_port, bridge_port = free_port(), free_port()
    server = EslServer(switch, ESL_PASSWORD, "127.0.0.1", esl_port)
    asyncio.run_coroutine_threadsafe(server.start(), stack.loop).result(10)
    seen: list[str] = []
    switch.listeners.append(
        lambda e: seen.append(e.get("Event-Subclass") or e.get("Event-Name") or "")
    )
    env = {
        **stack.env,
        "BRIDGE_PORT": str(bridge_port),
        "BRIDGE_ESL_PORT": str(esl_port),
        "BRIDGE_PLAYBACK": "file",
        "BRIDGE_RECORDINGS_DIR": str(stack.tmp / "bridge-file"),
    }
    script = CallScript.model_validate(
        {
            "name": "file-mode-esl-drop",
            "caller": {"voice": "piper:en_US-joe-medium", "codec": "G722"},
            "turns": [
                "My name is Laura Martin.",
                "My knee hurts, for two weeks, a sharp pain.",
                {"hangup": {}},
            ],
        }
    )
    metrics_url = f"http://127.0.0.1:{bridge_port}/metrics"
    noticed: list[bool] = []

    async def drop_the_event_socket() -> None:
        # Cut the event socket as the caller starts its second turn; back 1.5 s later.
        await server.close()
        async with httpx.AsyncClient() as client:
            for _ in range(40):
                if "bridge_esl_connected 0.0" in (await client.get(metrics_url)).text:
                    noticed.append(True)
                    break
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)
        await server.start()

    def progress(line: str) -> None:
        if not dropping and "turn 2/" in line and "agent silent" in line:
            dropping.append(asyncio.get_running_loop().create_task(drop_the_event_socket()))

    dropping: list[asyncio.Task[None]] = []
    with devstack.running(
        "fs_bridge", env, bridge_port, timeout_s=60, output=stack.tmp / "bridge-file.log"
    ):
        options = stack.options(bridge_port)
        report = asyncio.run_coroutine_threadsafe(
            run_call(switch, script, options, progress), stack.loop
        ).result(timeout=300)
        print("\n".join(summary_lines(report)))
        final_metrics = httpx.get(metrics_url).text
    asyncio.run_coroutine_threadsafe(server.close(), stack.loop).result(10)

    assert report["errors"] == [], report["errors"]
    assert dropping, "the caller never reached its second turn"
    assert noticed == [True]  # the socket went away mid-call and the bridge saw it...
    assert "bridge_esl_connected 1.0" in final_metrics  # ...and reconnected
    assert seen.count("mod_audio_fork::play_audio") >= 2  # the agent spoke through files
    agent_lines = [line["text"] for line in report["transcript"] if line["role"] == "agent"]
    # The script went on past the drop: the symptoms were heard and answered.
    assert any("seen a doctor" in text for text in agent_lines), agent_lines
    assert report["v2v"]["n"] == 2


def test_a_campaign_contact_books_by_phone(stack: Stack) -> None:
    """The dialer originates through the emulated switch; the answered leg runs the deployment's
    outbound extension, its audio forks to the bridge, and the callee books on the phone; its
    outcome has the bridge's v2v of every turn, and its sheet row the recording. The stack runs at
    DEBUG, and no service's log (callsim's included) holds the callee's number, name or words in
    plain text."""
    path = CALLS / "outbound" / "booking_by_phone.yaml"
    script = load_script(path)
    reports = stack.tmp / "callee-reports"
    options = stack.options()

    async def install() -> CalleeBook:
        load_deployment(stack.switch, options)
        book = CalleeBook(stack.switch, options, reports)
        book.add(path, script)
        return book

    # callsim runs in this process: its lines go through the services' redaction, at DEBUG.
    callsim_log = logging.FileHandler(stack.tmp / "callsim.log", encoding="utf-8")
    callsim_log.setFormatter(JsonFormatter(Redactor(), service="callsim"))
    callsim_log.addFilter(WireTrafficFilter())
    logger = logging.getLogger("callsim")
    saved_level = logger.level
    logger.addHandler(callsim_log)
    logger.setLevel(logging.DEBUG)
    book = asyncio.run_coroutine_threadsafe(install(), stack.loop).result(10)
    campaign = {"name": "whole-call campaign", "windows": ALL_WEEK}
    try:
        with dialer_api(stack) as api:
            created = api.post(
                "/campaigns",
                json={"campaign": campaign, "contacts": [{"phone": "(212) 555-0111"}]},
            )
            assert created.status_code == 201, created.text
            campaign_id = created.json()["id"]
            assert api.post(f"/campaigns/{campaign_id}/start").json()["state"] == "running"
            (contact,) = run_to_the_end(api, campaign_id, 300)
    finally:
        asyncio.run_coroutine_threadsafe(book.aclose(), stack.loop).result(15)
        logger.removeHandler(callsim_log)
        logger.setLevel(saved_level)
        callsim_log.close()
    assert (contact["state"], contact["outcome"], contact["attempts"]) == ("done", "booked", 1)
    (report_path,) = reports.glob("*.json")
    report = json.loads(report_path.read_text())
    print("\n".join(summary_lines(report)))
    assert report["errors"] == []
    assert report["spurious_stops"] == []
    checks = {c["check"]: c for c in report["expect"]}
    assert all(c["passed"] for c in checks.values()), checks
    outcome = report["outcome"]
    assert outcome["status"] == "booked"
    assert outcome["slots"]["appointment_date"]
    assert outcome["direction"] == "outbound"
    assert outcome["campaign_id"] == campaign_id
    # The number dialled was never asked for: it came with the call.
    assert outcome["slots"]["phone"] == script.caller.number
    assert outcome["latency"]["first_audio_ms"] is not None
    assert report["hung_up_by"] == "uuid_kill"  # the agent hung up after its farewell
    # The callee said "Hello?" and was taken for a person within a pause: the opening answered
    # it, then one reply per answer of the callee.
    assert outcome["amd"]["answered_by"] == "human"
    assert outcome["amd"]["verdict_ms"] < 3000
    assert report["v2v"]["n"] == 12
    assert all(t["v2v_ms"] is not None and t["v2v_ms"] > 0 for t in report["turns"])
    # The outcome carries the bridge's own figure for each of those turns, and one more for each
    # answer the agent began at a pause within it (the rest then crossed its reply).
    assert len(outcome["latency"]["v2v_ms"]) >= report["v2v"]["n"], outcome["latency"]
    assert all(ms > 0 for ms in outcome["latency"]["v2v_ms"])
    assert outcome["latency"]["v2v_p50_ms"] is not None
    assert Path(report["recording"]).stat().st_size > 16000 * 4 * 10
    bridge_recording = stack.tmp / "bridge" / f"{report['call_id']}.wav"
    assert bridge_recording.stat().st_size > 16000 * 4 * 10
    assert Path(outcome["recording_path"]) == bridge_recording
    # The sheet's row of the call, as the notifier wrote it, points at that recording.
    row = sheet_row(stack, report["call_id"])
    assert Path(row["recording"]) == bridge_recording, row
    assert row["campaign"] == campaign_id
    agent_lines = [line["text"] for line in report["transcript"] if line["role"] == "agent"]
    assert any("You're booked" in text for text in agent_lines)

    # The callee's number, name and words were logged (at DEBUG), but only as redacted fields.
    assert leaks(stack.tmp) == []
    bridge_log = (stack.tmp / "fs_bridge.log").read_text(encoding="utf-8")
    assert '"caller": "<redacted:' in bridge_log
    assert '"text": "<redacted:' in bridge_log


def test_a_campaign_leaves_its_message_on_a_voicemail_keeps_an_opt_out_and_a_callback(
    stack: Stack,
) -> None:
    """Three callees at once: a voicemail box (its greeting, then the beep), a person who asks
    never to be called again, a person who asks to be called back tomorrow after six. The box
    hears nothing over its greeting and gets the message; the opt-out is on the do-not-call list
    at once and a second campaign never dials it; the callback is a scheduled attempt."""
    names = ("voicemail.yaml", "opt_out.yaml", "callback_tomorrow.yaml")
    paths = [CALLS / "outbound" / name for name in names]
    scripts = {path.name: load_script(path) for path in paths}
    reports = stack.tmp / "campaign-reports"
    options = stack.options()

    async def install() -> CalleeBook:
        load_deployment(stack.switch, options)
        book = CalleeBook(stack.switch, options, reports)
        for path in paths:
            book.add(path, scripts[path.name])
        return book

    book = asyncio.run_coroutine_threadsafe(install(), stack.loop).result(10)
    windows = ALL_WEEK
    numbers = {name: s.caller.number for name, s in scripts.items()}

    def settled(contacts: list[dict[str, Any]]) -> bool:
        return all(
            c["state"] in ("done", "scheduled", "skipped") and c["attempts"] for c in contacts
        )

    try:
        with dialer_api(stack) as api:
            created = api.post(
                "/campaigns",
                json={
                    "campaign": {"name": "three callees", "windows": windows, "concurrency": 3},
                    "contacts": [{"phone": number} for number in numbers.values()],
                },
            )
            assert created.status_code == 201, created.text
            campaign_id = created.json()["id"]
            api.post(f"/campaigns/{campaign_id}/start").raise_for_status()
            deadline = time.monotonic() + 240
            while not settled(contacts := api.get(f"/campaigns/{campaign_id}/contacts").json()):
                assert time.monotonic() < deadline, contacts
                time.sleep(0.5)
            by_number = {c["phone"]: c for c in contacts}
            dnc = [entry["number"] for entry in api.get("/dnc").json()]
            again = api.post(
                "/campaigns",
                json={
                    "campaign": {"name": "second campaign", "windows": windows},
                    "contacts": [{"phone": numbers["opt_out.yaml"]}],
                },
            )
            assert again.status_code == 201, again.text
            second = again.json()["id"]
            api.post(f"/campaigns/{second}/start").raise_for_status()
            (skipped,) = run_to_the_end(api, second, 60)
    finally:
        asyncio.run_coroutine_threadsafe(book.aclose(), stack.loop).result(15)

    voicemail = by_number[numbers["voicemail.yaml"]]
    assert (voicemail["state"], voicemail["outcome"]) == ("done", "voicemail")
    opted_out = by_number[numbers["opt_out.yaml"]]
    assert (opted_out["state"], opted_out["outcome"]) == ("done", "opt_out")
    assert numbers["opt_out.yaml"] in dnc
    assert (skipped["outcome"], skipped["attempts"]) == ("skipped_dnc", 0)
    callback = by_number[numbers["callback_tomorrow.yaml"]]
    assert (callback["state"], callback["attempts"]) == ("scheduled", 1)  # its next attempt
    # Tomorrow after six, in the clinic's time (the contact list gave no zone of its own).
    zone = load_policy_script(ROOT / "prompts" / "clinic").schedule.zone
    due = datetime.fromisoformat(callback["next_attempt_at"]).astimezone(zone)
    today = datetime.now(zone).date()
    assert due.date() == today + timedelta(days=1)
    assert due.hour >= 18

    by_script = {}
    for report_path in reports.glob("*.json"):
        report = json.loads(report_path.read_text())
        by_script[report["script"]] = report
    box = by_script[scripts["voicemail.yaml"].name]
    print("\n".join(summary_lines(box)))
    assert box["outcome"]["amd"]["answered_by"] == "machine"
    greeting = next(line for line in box["transcript"] if line.get("kind") == "voicemail")
    agent = [line for line in box["transcript"] if line["role"] == "agent_audio"]
    assert agent, "the box recorded no message"
    # Nothing over the greeting (it lasts about six seconds): the message came after it.
    assert min(line["t_ms"] for line in agent) > greeting["t_ms"] + 4000
    said = " ".join(line["text"] for line in box["transcript"] if line["role"] == "agent")
    assert "call us back" in said
    for name in ("opt_out.yaml", "callback_tomorrow.yaml"):
        report = by_script[scripts[name].name]
        checks = {c["check"]: c for c in report["expect"]}
        assert all(c["passed"] for c in checks.values()), (name, checks)
