"""Campaign calls on the emulated switch, placed by the shared Event Socket client over TCP.

The switch is configured from freeswitch/conf as FreeSWITCH is after start-up (its gateways, its
dialplan), so an originate through an unknown gateway, to a callee that is busy or never
answers, to a number the carrier does not know, or into an extension the dialplan lacks, ends
the way a real switch ends it; an answered call runs the deployment's own ``outbound`` extension
and forks its audio, with the campaign's variables in the metadata, to a WebSocket server here.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import websockets

from callkit.audiofork import SUBPROTOCOL, parse_metadata
from callkit.esl import Event
from callkit.esl_client import EslClient
from callsim.callees import CalleeBook
from callsim.esl_server import EslServer
from callsim.run import RunOptions, load_deployment
from callsim.script import CallScript
from callsim.switch import Callee, Switch
from fs_bridge.session import call_started

PASSWORD = "originate-test"
EVENTS = (
    "CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_EXECUTE CHANNEL_PARK CHANNEL_HANGUP_COMPLETE "
    "BACKGROUND_JOB CUSTOM mod_audio_fork::connect avmd::start avmd::beep"
)
CAMPAIGN = "campaign_id=c-42,contact_id=k-7,attempt_id=a-3,call_direction=outbound"
CLINIC = "+15550100100"
TARGET = "outbound XML agent"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ForkServer:
    """The bridge's side of the audio fork: the metadata frame and how much audio came."""

    metadata: dict[str, str] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    frames: dict[str, int] = field(default_factory=dict)

    async def handler(self, ws: Any) -> None:
        path = ws.request.path
        self.paths.append(path)
        try:
            async for message in ws:
                if isinstance(message, str):
                    self.metadata.setdefault(path, message)
                else:
                    self.frames[path] = self.frames.get(path, 0) + 1
        except websockets.ConnectionClosed:
            pass


@dataclass
class Rig:
    switch: Switch
    client: EslClient
    events: list[Event]
    fork: ForkServer

    def of(self, name: str, uuid: str) -> list[Event]:
        return [e for e in self.events if e.name == name and e.get("Unique-ID") == uuid]

    async def until(self, predicate: Callable[[], Any], wait_s: float = 5.0) -> Any:
        async with asyncio.timeout(wait_s):
            while not (found := predicate()):  # noqa: ASYNC110 (events arrive on another task)
                await asyncio.sleep(0.01)
        return found

    async def hangup_complete(self, uuid: str) -> Event:
        found: list[Event] = await self.until(lambda: self.of("CHANNEL_HANGUP_COMPLETE", uuid))
        return found[0]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    fork = ForkServer()
    async with websockets.serve(fork.handler, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as ws:
        port = ws.sockets[0].getsockname()[1]
        switch = Switch(hostname="callsim-originate")
        options = RunOptions(fork_url=f"ws://127.0.0.1:{port}/fork/{{uuid}}", recordings=tmp_path)
        load_deployment(switch, options)
        server = EslServer(switch, PASSWORD, port=0)
        await server.start()
        events: list[Event] = []
        client = EslClient(
            "127.0.0.1", server.port, PASSWORD, events=EVENTS, on_event=events.append
        )
        client.start()
        await asyncio.wait_for(client.connected.wait(), 10)
        try:
            yield Rig(switch, client, events, fork)
        finally:
            await client.close()
            await server.close()


def leg(uuid: str, number: str, timeout_s: int = 5, gateway: str = "carrier") -> str:
    return (
        f"{{origination_uuid={uuid},origination_caller_id_number={CLINIC},"
        f"originate_timeout={timeout_s},{CAMPAIGN}}}sofia/gateway/{gateway}/{number}"
    )


async def test_an_unknown_gateway_is_refused_before_any_leg_exists(rig: Rig) -> None:
    uuid = "0a000000-0000-4000-8000-000000000001"
    reply = await rig.client.originate(
        leg(uuid, "+12125550111", gateway="nosuch"), TARGET, timeout_s=5
    )
    assert reply == "-ERR INVALID_GATEWAY"
    assert not rig.of("CHANNEL_CREATE", uuid)  # sofia gave up before the leg was created
    assert await rig.client.api(f"uuid_exists {uuid}") == "false"
    assert rig.switch.channels == {}


@pytest.mark.parametrize(
    ("callee", "cause", "sip_status"),
    [
        (Callee("busy", 0.05), "USER_BUSY", "486"),
        (Callee("no_answer"), "NO_ANSWER", None),
        (Callee("reject", 0.05), "CALL_REJECTED", "603"),
        (None, "UNALLOCATED_NUMBER", "404"),  # no callee: the carrier's 404
    ],
)
async def test_an_unanswered_call_ends_with_the_carriers_cause_and_the_campaign_variables(
    rig: Rig, callee: Callee | None, cause: str, sip_status: str | None
) -> None:
    number = "+15557000099"
    if callee is not None:
        rig.switch.callees[number] = callee
    uuid = f"0b000000-0000-4000-8000-{len(cause):012d}"
    reply = await rig.client.originate(leg(uuid, number, timeout_s=1), TARGET, timeout_s=5)
    assert reply == f"-ERR {cause}"
    done = await rig.hangup_complete(uuid)
    assert done.get("Hangup-Cause") == cause
    assert done.get("variable_hangup_cause") == cause
    assert (done.get("variable_campaign_id"), done.get("variable_contact_id")) == ("c-42", "k-7")
    assert done.get("variable_attempt_id") == "a-3"
    assert done.get("Caller-Channel-Answered-Time") == "0"  # never answered
    assert done.get("variable_billsec") == "0"
    assert done.get("variable_sip_term_status") == sip_status
    assert (await rig.client.api(f"uuid_exists {uuid}")) == "false"


async def test_an_answered_call_runs_the_outbound_extension_and_forks_to_the_bridge(
    rig: Rig,
) -> None:
    number = "+12125550111"
    rig.switch.callees[number] = Callee("answer", 0.05)
    uuid = "0c000000-0000-4000-8000-000000000001"
    assert await rig.client.originate(leg(uuid, number), TARGET, timeout_s=5) == f"+OK {uuid}"
    job = next(e for e in rig.events if e.name == "BACKGROUND_JOB")
    assert (job.get("Job-Command"), job.body) == ("originate", f"+OK {uuid}\n")
    assert job.get("Job-Command-Arg", "").endswith(f"sofia/gateway/carrier/{number} {TARGET}")
    await rig.until(lambda: rig.of("CHANNEL_PARK", uuid))
    apps = [e.get("Application") for e in rig.of("CHANNEL_EXECUTE", uuid)]
    assert apps[-3:] == ["avmd_start", "set", "park"]  # the fork starts from a set, then park
    await rig.until(lambda: [e for e in rig.events if e.subclass == "mod_audio_fork::connect"])
    path = f"/fork/{uuid}"
    await rig.until(lambda: rig.fork.frames.get(path, 0) >= 5)  # silence when idle flows
    metadata = json.loads(rig.fork.metadata[path])
    assert metadata == {
        "callId": uuid,
        "direction": "outbound",
        "caller": CLINIC,
        "callee": number,
        "language": "en",
        "campaign_id": "c-42",
        "contact_id": "k-7",
        "attempt_id": "a-3",
        "contact": {"phone": number},
    }
    started = call_started(uuid, parse_metadata(rig.fork.metadata[path]))  # what the bridge sends
    assert (started.direction, started.campaign_id, started.callee) == ("outbound", "c-42", number)
    assert started.contact is not None
    assert started.contact.phone == number

    # After a restart the dialer finds its calls again: uuid_exists and show channels.
    assert await rig.client.api(f"uuid_exists {uuid}") == "true"
    rows = json.loads(await rig.client.api("show channels as json"))
    assert rows["row_count"] == 1
    row = rows["rows"][0]
    assert (row["uuid"], row["direction"], row["application"]) == (uuid, "outbound", "park")
    assert (row["dest"], row["initial_dest"], row["callstate"]) == ("outbound", number, "ACTIVE")
    listing = (await rig.client.api("show channels")).splitlines()
    assert listing[0].startswith("uuid,direction,created,created_epoch,name,state,")
    assert listing[1].startswith(f"{uuid},outbound,")
    assert listing[-1] == "1 total."

    assert await rig.client.api(f"uuid_kill {uuid}") == "+OK\n"
    done = await rig.hangup_complete(uuid)
    assert done.get("Hangup-Cause") == "NORMAL_CLEARING"
    assert done.get("Caller-Channel-Answered-Time") != "0"
    assert done.get("variable_campaign_id") == "c-42"
    assert done.get("Caller-RDNIS") == number
    assert await rig.client.api("show channels") == "\n0 total.\n"


@pytest.mark.parametrize(
    ("target", "cause"),
    [
        ("nosuch XML default", "NO_ROUTE_DESTINATION"),  # no such context at all
        ("nosuch XML agent", "UNALLOCATED_NUMBER"),  # the agent context's catch-all takes it
    ],
)
async def test_an_extension_the_dialplan_lacks_hangs_up_the_answered_call(
    rig: Rig, target: str, cause: str
) -> None:
    number = "+12125550122"
    rig.switch.callees[number] = Callee("answer", 0.0)
    uuid = f"0d000000-0000-4000-8000-{len(target):012d}"
    # The originate succeeds (the person answered); then routing fails and hangs up on them.
    assert await rig.client.originate(leg(uuid, number), target, timeout_s=5) == f"+OK {uuid}"
    done = await rig.hangup_complete(uuid)
    assert done.get("Hangup-Cause") == cause
    assert done.get("Caller-Channel-Answered-Time") != "0"
    assert not rig.fork.paths


async def test_a_call_from_the_carrier_to_outbound_never_reaches_the_campaign_extension(
    rig: Rig,
) -> None:
    ch = rig.switch.create_channel(direction="inbound", caller="+15551112222", destination="x")
    ch.context = "agent"
    assert await rig.client.api(f"uuid_transfer {ch.uuid} outbound XML agent") == "+OK\n"
    done = await rig.hangup_complete(ch.uuid)
    assert done.get("Hangup-Cause") == "UNALLOCATED_NUMBER"  # direction inbound: not_a_number
    assert not rig.fork.paths


async def test_attempts_follow_the_sequence(rig: Rig) -> None:
    number = "+12125550133"
    rig.switch.callees[number] = Callee("answer", 0.05, attempts=["busy", "no_answer", "answer"])
    replies = [
        await rig.client.originate(
            leg(f"0e000000-0000-4000-8000-00000000000{i}", number, timeout_s=1),
            "&park()",
            timeout_s=5,
        )
        for i in range(1, 5)
    ]
    assert replies[:3] == [
        "-ERR USER_BUSY",
        "-ERR NO_ANSWER",
        "+OK 0e000000-0000-4000-8000-000000000003",
    ]
    assert replies[3] == "+OK 0e000000-0000-4000-8000-000000000004"  # the last one repeats


def callee_script(name: str, number: str, outbound: dict[str, Any], **rest: Any) -> CallScript:
    return CallScript.model_validate(
        {
            "name": name,
            "direction": "outbound",
            "outbound": outbound,
            "caller": {"number": number, "voice": "espeak:en-us", "codec": "PCMU"},
            **rest,
        }
    )


async def test_scripted_callees_answer_at_once_and_leave_a_report_per_call(
    rig: Rig, tmp_path: Path
) -> None:
    """Two numbers called at the same time: one is busy and then answers (and hangs up at
    once), the other is a voicemail whose beep mod_avmd reports."""
    reports = tmp_path / "reports"
    options = RunOptions(fork_url="ws://unused/fork/{uuid}", recordings=tmp_path / "rec")
    book = CalleeBook(rig.switch, options, reports)
    retry, box = "+15557000011", "+15557000012"
    book.add(
        Path("retry.yaml"),
        callee_script(
            "retry",
            retry,
            {"answer_after_rings": 0, "attempts": ["busy", "answer"]},
            turns=[{"hangup": {"immediately": True}}],
        ),
    )
    book.add(
        Path("box.yaml"),
        callee_script(
            "box",
            box,
            {"answer_after_rings": 0, "outcome": "voicemail", "voicemail_greeting": "Hi."},
            timing={"end_timeout_s": 3},
        ),
    )
    ids = {
        "busy": "0f000000-0000-4000-8000-000000000001",
        "answer": "0f000000-0000-4000-8000-000000000002",
        "box": "0f000000-0000-4000-8000-000000000003",
    }
    try:
        first, voicemail = await asyncio.gather(
            rig.client.originate(leg(ids["busy"], retry), TARGET, timeout_s=5),
            rig.client.originate(leg(ids["box"], box), TARGET, timeout_s=5),
        )
        assert first == "-ERR USER_BUSY"
        assert voicemail == f"+OK {ids['box']}"
        second = await rig.client.originate(leg(ids["answer"], retry), TARGET, timeout_s=5)
        assert second == f"+OK {ids['answer']}"
        beep = await rig.until(
            lambda: [e for e in rig.events if e.subclass == "avmd::beep"], wait_s=10
        )
        assert (beep[0].get("Unique-ID"), beep[0].get("Beep-Status")) == (ids["box"], "DETECTED")
        assert abs(float(beep[0].get("Frequency") or 0) - 1000) <= 50
        assert any(e.subclass == "avmd::start" for e in rig.events)
        written = await rig.until(
            lambda: {p.stem for p in reports.glob("*.json")} >= set(ids.values()), wait_s=10
        )
        assert written
    finally:
        await book.aclose()
    busy = json.loads((reports / f"{ids['busy']}.json").read_text())
    assert (busy["attempt"], busy["outcome"], busy["hangup_cause"]) == (1, "busy", "USER_BUSY")
    answered = json.loads((reports / f"{ids['answer']}.json").read_text())
    assert (answered["attempt"], answered["script"], answered["call_id"]) == (
        2,
        "retry",
        ids["answer"],
    )
    assert (answered["hung_up_by"], answered["errors"]) == ("caller", [])
    voicemail_report = json.loads((reports / f"{ids['box']}.json").read_text())
    said = [line["kind"] for line in voicemail_report["transcript"] if line["role"] == "caller"]
    assert said == ["voicemail"]


def test_the_beep_detector_hears_a_tone_and_not_a_voice() -> None:
    from callsim.beep import BeepDetector
    from callsim.line import through_codec
    from callsim.voices import voice_for

    greeting = voice_for("espeak:en-us", 1.0).speak(
        "Hi, you have reached my voicemail. Please leave a message after the tone."
    )
    t = np.arange(8000) / 16000
    beep = (np.sin(2 * np.pi * 1000 * t) * 8000).astype("<i2").tobytes()
    for codec in ("PCMU", "G722"):
        detector = BeepDetector()
        line = through_codec(codec, greeting + beep)
        found = [i // 640 for i in range(0, len(line), 640) if detector.feed(line[i : i + 640])]
        assert found
        assert found[0] >= len(greeting) // 640  # in the beep, not the voice
        assert len(found) == 1  # reported once, as mod_avmd does


async def test_callsim_serve_loads_the_callees_and_writes_their_reports(
    free_port: int, tmp_path: Path
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callsim",
        "serve",
        "--esl-port",
        str(free_port),
        "--esl-password",
        PASSWORD,
        "--callees",
        str(ROOT / "tests/calls/outbound"),
        "--reports",
        str(tmp_path),
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    client = EslClient("127.0.0.1", free_port, PASSWORD, events="BACKGROUND_JOB", on_event=len)
    try:
        assert proc.stderr is not None
        said = ""
        while "Event Socket on" not in said:
            line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
            assert line, f"callsim serve exited: {said}"
            said += line
        assert "7 callees from" in said
        client.start()
        await asyncio.wait_for(client.connected.wait(), 10)
        uuid = "10000000-0000-4000-8000-000000000001"
        reply = await client.originate(leg(uuid, "+12125550155"), TARGET, timeout_s=5)
        assert reply == "-ERR UNALLOCATED_NUMBER"  # tests/calls/outbound/unallocated.yaml
        report = json.loads((tmp_path / f"{uuid}.json").read_text())
        assert (report["script"], report["outcome"]) == ("outbound-unallocated", "unallocated")
    finally:
        await client.close()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
