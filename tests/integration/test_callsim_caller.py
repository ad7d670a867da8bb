"""Scripted callers against a fake agent whose delays are known: the report's v2v, barge-in stop
latency and verdicts must match what the fake did, on the fork's audio timeline."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import uuid
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis.asyncio as aioredis
import websockets
import yaml

from callkit.contracts import live
from callkit.contracts import outcome as outcomes
from callsim import fsconf
from callsim.line import CallerLine, LineOptions, through_codec
from callsim.run import RunOptions, run_call, summary_lines
from callsim.script import CallScript
from callsim.switch import Switch

FRAME_BYTES = 320 * 2 * 2  # 20 ms of 16 kHz stereo L16
END_SILENCE_FRAMES = 15  # the fake hears the end of speech after 300 ms of silence
REPLY_DELAY_FRAMES = 20  # ... and answers 400 ms later
BARGE_FRAMES = 35  # speech this long (700 ms) over the agent is an interruption
KILL_DELAY_FRAMES = 5  # ... which stops the agent 100 ms later
REPLY_S = 2.0  # long enough for a barge-in (stopped 1.4 s in) and a backchannel to land on
SHORT_REPLY_S = 0.6  # for calls that only need the agent to answer
ROOT = Path(__file__).resolve().parents[2]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float32) ** 2))) if x.size else 0.0


def agent_audio(seconds: float) -> bytes:
    """A stand-in for speech: a warbling tone, loud enough to be heard as the agent."""
    t = np.arange(int(16000 * seconds)) / 16000
    tone = np.sin(2 * np.pi * (300 + 80 * np.sin(2 * np.pi * 3 * t)) * t) * 6000
    return tone.astype("<i2").tobytes()


class FakeAgent:
    """A bridge stand-in on the jambonz streaming protocol: greets, answers every caller turn
    after fixed delays, and stops (killAudio) when the caller talks over it long enough."""

    def __init__(self) -> None:
        #: How long each reply plays, the greeting first; the last one repeats.
        self.reply_s = [SHORT_REPLY_S]
        self.metadata: dict[str, Any] | None = None
        self.replies_sent_at: list[int] = []
        self.kills_sent_at: list[int] = []
        #: Reply index -> frames into it at which the agent stops itself, caller or not.
        self.self_stop: dict[int, int] = {}

    async def handler(self, ws: Any) -> None:
        frame_no = 0
        onset: int | None = None  # first voiced frame of the caller's current speech
        silence = 0
        heard_speech = False
        playing_until = 0  # frame number the current agent audio ends at
        reply_at: int | None = None
        barge_kill_at: int | None = None

        async def play() -> None:
            nonlocal playing_until
            seconds = self.reply_s[min(len(self.replies_sent_at), len(self.reply_s) - 1)]
            await ws.send(agent_audio(seconds))
            playing_until = frame_no + int(seconds * 50)
            self.replies_sent_at.append(frame_no)

        try:
            async for message in ws:
                if isinstance(message, str):
                    if self.metadata is None:
                        self.metadata = (
                            json.loads(message) if message.startswith("{") else {"raw": message}
                        )
                        await play()  # the greeting
                    continue
                frame_no += 1
                left = np.frombuffer(message, "<i2")[0::2]
                agent_playing = frame_no < playing_until
                if _rms(left) > 300:
                    if onset is None:
                        onset = frame_no
                    silence = 0
                    heard_speech = True
                else:
                    silence += 1
                    if silence >= END_SILENCE_FRAMES:
                        onset = None
                talking = onset is not None and silence < 4  # still speaking now
                if (
                    agent_playing
                    and talking
                    and onset is not None
                    and frame_no - onset == BARGE_FRAMES
                    and barge_kill_at is None
                ):
                    barge_kill_at = frame_no + KILL_DELAY_FRAMES
                if barge_kill_at is not None and frame_no >= barge_kill_at:
                    await ws.send(json.dumps({"type": "killAudio"}))
                    self.kills_sent_at.append(frame_no)
                    playing_until = frame_no
                    barge_kill_at = None
                    heard_speech = True  # answer the interruption once it ends
                if heard_speech and silence == END_SILENCE_FRAMES:
                    heard_speech = False
                    if not agent_playing:  # over the agent it was a backchannel: go on
                        reply_at = frame_no + REPLY_DELAY_FRAMES
                if reply_at is not None and frame_no >= reply_at:
                    reply_at = None
                    await play()
                index = len(self.replies_sent_at) - 1
                if self.self_stop.get(index) == frame_no - self.replies_sent_at[index]:
                    await ws.send(json.dumps({"type": "killAudio"}))
                    self.kills_sent_at.append(frame_no)
                    playing_until = frame_no
        except websockets.ConnectionClosed:
            pass


@pytest.fixture
async def fake_agent() -> AsyncIterator[tuple[FakeAgent, str]]:
    agent = FakeAgent()
    async with websockets.serve(
        agent.handler, "127.0.0.1", 0, subprotocols=["audio.drachtio.org"]
    ) as server:
        port = server.sockets[0].getsockname()[1]
        yield agent, f"ws://127.0.0.1:{port}/fork/{{uuid}}"


SCRIPT = {
    "name": "fake-agent-timing",
    "caller": {"voice": "espeak:en-us", "codec": "PCMU"},
    "timing": {"agent_turn_gap_ms": 300, "step_timeout_s": 20, "end_timeout_s": 2},
    "turns": [
        "Hi, I need a scan.",
        "My knee hurts.",
        {"barge_in": {"after_agent_ms": 600, "say": "Sorry, how much?"}},
        {"backchannel": {"after_agent_ms": 800, "say": "okay"}},
        {"hangup": {}},
    ],
}


async def test_the_report_matches_the_fake_agents_known_delays(
    fake_agent: tuple[FakeAgent, str], tmp_path: Path
) -> None:
    agent, url = fake_agent
    # The barge-in lands on the third reply, the backchannel on the fourth.
    agent.reply_s = [SHORT_REPLY_S, SHORT_REPLY_S, REPLY_S]
    switch = Switch(fork_build="jambonz")
    options = RunOptions(fork_url=url, recordings=tmp_path)
    report = await run_call(switch, CallScript.model_validate(SCRIPT), options)
    assert report["errors"] == [], report["errors"]
    assert agent.metadata is not None
    assert agent.metadata["callId"] == report["call_id"]
    # v2v = the fake's 300 ms end-of-speech wait + 400 ms delay, plus at most two 20 ms ticks
    # for the streamed audio to reach the played channel.
    expected = (END_SILENCE_FRAMES + REPLY_DELAY_FRAMES) * 20
    turns = report["turns"]
    assert len(turns) == 2
    for turn in turns:
        assert expected - 20 <= turn["v2v_ms"] <= expected + 60, turn
        assert turn["agent_first_audio_ms"] - turn["caller_speech_end_ms"] == turn["v2v_ms"]
    barge, backchannel = report["barge_ins"]
    assert barge["kind"] == "barge_in"
    assert barge["should_stop"]
    assert barge["stopped"]
    assert barge["correct"]
    # Stopped after 700 ms of speech + 100 ms, within two ticks.
    stop_expected = (BARGE_FRAMES + KILL_DELAY_FRAMES) * 20
    assert stop_expected - 40 <= barge["stop_latency_ms"] <= stop_expected + 60, barge
    assert backchannel["kind"] == "backchannel"
    assert not backchannel["should_stop"]
    assert not backchannel["stopped"], (backchannel, report["transcript"])
    assert backchannel["correct"]
    assert report["spurious_stops"] == []
    assert report["hung_up_by"] == "caller"
    assert report["passed"] is True
    assert report["v2v"]["n"] == 2
    # The recording is the fork's timeline: stereo, caller left, agent right.
    with wave.open(report["recording"]) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 16000)
        assert abs(w.getnframes() / 16000 * 1000 - report["duration_ms"]) <= 40
    text = "\n".join(summary_lines(report))
    assert "backchannel" in text
    assert "v2v p50" in text


async def test_an_agent_that_stops_with_the_caller_silent_is_reported(
    fake_agent: tuple[FakeAgent, str], tmp_path: Path
) -> None:
    agent, url = fake_agent
    agent.reply_s = [3.0]
    agent.self_stop = {0: 50}  # one second into the greeting, nobody speaking
    script = CallScript.model_validate({**SCRIPT, "turns": ["Hi, I need a scan.", {"hangup": {}}]})
    report = await run_call(
        Switch(fork_build="jambonz"), script, RunOptions(fork_url=url, recordings=tmp_path)
    )
    stops = report["spurious_stops"]
    assert stops, report["transcript"]
    assert all(900 <= stop["t_ms"] <= 1200 for stop in stops), stops
    assert report["passed"] is False
    assert any("no barge-in" in line for line in summary_lines(report))


async def test_a_missing_bridge_is_reported_not_hung(tmp_path: Path, dead_port: int) -> None:
    switch = Switch()
    script = CallScript.model_validate({**SCRIPT, "timing": {"step_timeout_s": 2}})
    report = await run_call(
        switch,
        script,
        RunOptions(
            fork_url=f"ws://127.0.0.1:{dead_port}/fork/{{uuid}}",
            recordings=tmp_path,
            fork_start_timeout_s=2,
        ),
    )
    assert report["passed"] is False
    assert any("audio fork to start" in e for e in report["errors"])


async def test_inbound_calls_run_through_the_deployments_dialplan(
    fake_agent: tuple[FakeAgent, str], tmp_path: Path
) -> None:
    """What reaches the bridge is built by freeswitch/conf's dialplan, so breaking it breaks calls."""
    agent, url = fake_agent
    short = {**SCRIPT, "caller": {**SCRIPT["caller"], "number": "+1 555 0199"}}
    short["turns"] = ["Hello there.", {"hangup": {}}]
    script = CallScript.model_validate(short)
    report = await run_call(
        Switch(fork_build="jambonz"), script, RunOptions(fork_url=url, recordings=tmp_path)
    )
    assert report["errors"] == [], report["errors"]
    assert agent.metadata == {
        "callId": report["call_id"],
        "direction": "inbound",
        "caller": "+1 555 0199",  # spaces and all: the dialplan separates arguments with |
        "callee": script.callee,
        "language": "en",
    }

    broken = tmp_path / "freeswitch"
    shutil.copytree(fsconf.DEFAULT_DIR, broken)
    dialplan = broken / "conf" / "dialplan" / "agent.xml"
    dialplan.write_text(dialplan.read_text().replace("|stereo|16k|", "|stereo|"))
    switch = Switch(fork_build="jambonz")
    options = RunOptions(
        fork_url=url,
        recordings=tmp_path,
        freeswitch_dir=broken,
        fork_password="other",
        fork_start_timeout_s=2,
    )
    script = CallScript.model_validate({**short, "timing": {"step_timeout_s": 2}})
    report = await run_call(switch, script, options)
    assert report["passed"] is False
    assert any("api_on_answer failed" in e for e in report["errors"]), report["errors"]


async def test_callsim_run_cli_writes_a_json_report(
    fake_agent: tuple[FakeAgent, str], tmp_path: Path
) -> None:
    _, url = fake_agent
    script = tmp_path / "call.yaml"
    short = {**SCRIPT, "turns": ["Hello there.", {"hangup": {}}]}
    script.write_text(json.dumps(short))  # JSON is YAML
    out = tmp_path / "report.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callsim", "run", "--script", str(script), "--report", str(out),
        "--fork-url", url, "--fork-build", "jambonz", "--recordings", str(tmp_path),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    report = json.loads(out.read_text())
    assert report["script"] == "fake-agent-timing"
    assert report["v2v"]["n"] == 1
    assert "PASS  fake-agent-timing" in stderr.decode()
    assert f"report: {out}" in stderr.decode()


async def test_callsim_run_refuses_a_broken_script(tmp_path: Path) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text("name: bad\nturns:\n  - {say: hi, dtmf: '1'}\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callsim", "run", "--script", str(script),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await proc.communicate()
    assert proc.returncode == 2
    assert "a turn is exactly one of say, barge_in" in stderr.decode()


def test_echo_is_a_delayed_attenuated_copy_of_the_agent() -> None:
    line = CallerLine("L16", LineOptions(echo_delay_ms=100, echo_gain_db=-20))
    # Tick k's frame() is handed what was played during tick k-1.
    played = [agent_audio(0.02) if tick == 3 else bytes(640) for tick in range(12)]
    heard = [line.frame(played[tick - 1] if tick else None) for tick in range(12)]
    levels = [_rms(np.frombuffer(h, "<i2")) for h in heard]
    loudest = int(np.argmax(levels))
    assert loudest == 3 + 5  # heard 100 ms after it was played
    assert 0.08 < levels[loudest] / _rms(np.frombuffer(played[3], "<i2")) < 0.12  # -20 dB


@pytest.mark.parametrize("codec", ["PCMU", "PCMA", "G722", "L16"])
def test_every_codec_keeps_speech_aligned_and_intelligible(codec: str) -> None:
    speech = agent_audio(0.5)
    out = np.frombuffer(through_codec(codec, speech), "<i2").astype(np.float64)
    ref = np.frombuffer(speech, "<i2").astype(np.float64)
    lag = 22 if codec == "G722" else 0  # G.722's QMF filters delay 22 samples (1.4 ms)
    corr = np.corrcoef(ref[400:7000], out[400 + lag : 7000 + lag])[0, 1]
    assert corr > 0.99, corr


async def test_expect_checks_and_agent_lines_come_from_redis(
    tmp_path: Path, redis_url: str
) -> None:
    """The stack writes the outcome and the agent's sentences; the report checks `expect`."""
    redis = aioredis.Redis.from_url(redis_url)
    streams = f"test-calls-{uuid.uuid4().hex[:8]}"

    class WritingAgent(FakeAgent):
        async def handler(self, ws: Any) -> None:
            await super().handler(ws)
            assert self.metadata is not None
            call_id = self.metadata["callId"]
            sentence = live.AgentSentence(call_id=call_id, text="Hello!", t_ms=20)
            await redis.xadd(f"{streams}:events", live.entry(sentence))
            # An entry this reader cannot parse is skipped, not fatal.
            await redis.xadd(f"{streams}:events", {"call_id": call_id, "type": "future.kind"})
            outcome = outcomes.CallOutcome(
                call_id=call_id,
                direction="inbound",
                started_at=datetime.now(UTC),
                ended_at=datetime.now(UTC),
                duration_s=1.0,
                status="booked",
                slots=outcomes.Slots(client_name="Jon"),
                latency=outcomes.CallLatency(v2v_ms=[640.0]),
            )
            await redis.xadd(f"{streams}:completed", outcomes.entry(outcome))

    agent = WritingAgent()
    script = CallScript.model_validate(
        {
            **SCRIPT,
            "turns": ["Hello, my name is Jon.", {"hangup": {}}],
            "expect": {"status": "booked", "slots": {"client_name": "Jon", "phone": "+1555"}},
        }
    )
    try:
        async with websockets.serve(
            agent.handler, "127.0.0.1", 0, subprotocols=["audio.drachtio.org"]
        ) as server:
            port = server.sockets[0].getsockname()[1]
            options = RunOptions(
                fork_url=f"ws://127.0.0.1:{port}/fork/{{uuid}}",
                recordings=tmp_path,
                redis_url=redis_url,
                outcome_timeout_s=5,
                outcome_stream=f"{streams}:completed",
                events_stream=f"{streams}:events",
            )
            report = await run_call(Switch(fork_build="jambonz"), script, options)
    finally:
        await redis.delete(f"{streams}:completed", f"{streams}:events")
        await redis.aclose()
    checks = {c["check"]: c for c in report["expect"]}
    assert checks["status"]["passed"] is True
    assert checks["slots.client_name"]["passed"] is True
    assert checks["slots.phone"]["passed"] is False  # the outcome has no phone
    assert report["passed"] is False
    agent_lines = [line for line in report["transcript"] if line["role"] == "agent"]
    assert agent_lines == [{"role": "agent", "text": "Hello!", "t_ms": 20}]
    assert report["outcome"]["latency"]["v2v_ms"] == [640.0]  # the outcome as the stack wrote it


async def test_callsim_run_places_calls_on_a_running_emulator(
    fake_agent: tuple[FakeAgent, str], tmp_path: Path, free_port: int
) -> None:
    """`callsim serve --control-port` is the stack's FreeSWITCH; `callsim run --emulator` asks it
    to place the call and gets the progress and the report back."""
    agent, url = fake_agent
    serve = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callsim", "serve", "--esl-port", "0", "--esl-password", "pw",
        "--fork-build", "jambonz", "--fork-url", url, "--control-port", str(free_port),
        "--recordings", str(tmp_path), stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert serve.stderr is not None
        for _ in range(2):  # "Event Socket on …", then "control port on …"
            line = await asyncio.wait_for(serve.stderr.readline(), 30)
        assert b"control port on" in line
        script = tmp_path / "call.yaml"
        script.write_text(json.dumps({**SCRIPT, "turns": ["Hi.", {"hangup": {}}]}))
        out = tmp_path / "report.json"
        run = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callsim", "run", "--script", str(script), "--report", str(out),
            "--emulator", f"http://127.0.0.1:{free_port}", stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(run.communicate(), 60)
        assert run.returncode == 0, stderr.decode()
        report = json.loads(out.read_text())
        assert report["v2v"]["n"] == 1
        assert agent.metadata is not None
        assert agent.metadata["callId"] == report["call_id"]
    finally:
        serve.terminate()
        await serve.wait()


async def test_transfer_setvar_multi_and_hupall_reply_as_freeswitch_does() -> None:
    switch = Switch()
    ch = switch.create_channel(direction="inbound", caller="+15550001", destination="100")
    assert await switch.api("uuid_setvar_multi", f"{ch.uuid} a=1;b=two") == "+OK\n"
    assert (ch.variables["a"], ch.variables["b"]) == ("1", "two")
    assert await switch.api("uuid_transfer", "no-such-uuid 1000") == "-ERR No such channel!\n"
    assert (await switch.api("uuid_transfer", ch.uuid)).startswith("-USAGE:")
    reply = await switch.api("hupall", "MANAGER_REQUEST")
    assert reply == "+OK hangup all channels with cause MANAGER_REQUEST\n"
    assert switch.channels == {}


async def _transfer_mid_call(
    fake: tuple[FakeAgent, str], tmp_path: Path, destination: str, **options: Any
) -> tuple[dict[str, Any], list[Any], str]:
    """An inbound call through the deployment's dialplan, transferred over the API once the
    fork is up; the report, the switch's events after the transfer and the API's reply."""
    switch = Switch(fork_build="jambonz")
    events: list[Any] = []
    script = CallScript.model_validate(
        {**SCRIPT, "turns": ["Hello there.", "I need a person.", {"hangup": {}}]}
    )
    agent, url = fake
    run = RunOptions(fork_url=url, recordings=tmp_path, **options)
    call = asyncio.create_task(run_call(switch, script, run))
    for _ in range(1000):
        ch = next(iter(switch.channels.values()), None)
        if ch is not None and len(agent.replies_sent_at) > 1:  # the agent answered a turn
            break
        await asyncio.sleep(0.01)
    assert ch is not None
    assert ch.forks
    switch.listeners.append(events.append)
    reply = await switch.api("uuid_transfer", f"{ch.uuid} {destination}")
    report = await asyncio.wait_for(call, 30)
    return report, events, reply


@pytest.mark.parametrize(
    "destination", ["1000 XML default", "nobody XML transfer", "operator XML nowhere"]
)
async def test_a_transfer_the_dialplan_has_no_route_for_hangs_up_the_caller(
    fake_agent: tuple[FakeAgent, str], tmp_path: Path, destination: str
) -> None:
    """As FreeSWITCH does: the API says +OK, then the hunt finds nothing and the call ends."""
    report, events, reply = await _transfer_mid_call(fake_agent, tmp_path, destination)
    assert reply == "+OK\n"
    assert report["hangup_cause"] == "NO_ROUTE_DESTINATION"
    assert report["hung_up_by"] == "switch"
    assert report["transferred_to"] is None
    hangup = next(e for e in events if e.name == "CHANNEL_HANGUP_COMPLETE")
    assert hangup.get("Hangup-Cause") == "NO_ROUTE_DESTINATION"


async def test_the_clinics_transfer_target_rings_the_operator_without_the_agent(
    fake_agent: tuple[FakeAgent, str], tmp_path: Path
) -> None:
    """prompts/clinic/clinic.yaml's target has a route: the fork to the agent stops and the
    call is bridged to OPERATOR_DESTINATION."""
    target = yaml.safe_load((ROOT / "prompts/clinic/clinic.yaml").read_text())["transfer_target"]
    report, events, reply = await _transfer_mid_call(
        fake_agent, tmp_path, target, operator_destination="sofia/gateway/carrier/+15550142"
    )
    assert reply == "+OK\n"
    assert report["transferred_to"] == "operator"
    assert report["bridged_to"] == "sofia/gateway/carrier/+15550142"
    assert report["hung_up_by"] == "caller"  # the scripted caller's part ends at the transfer
    assert report["errors"] == []
    ran = [(e.get("Application"), e.get("Application-Data")) for e in events]
    assert ("bridge", "sofia/gateway/carrier/+15550142") in ran
    fork_stop = next(d for a, d in ran if a == "set" and d.startswith("agent_fork_stopped="))
    assert fork_stop == "agent_fork_stopped=+OK Success"
    assert events[0].name == "CHANNEL_UNPARK"


async def test_a_transfer_with_no_operator_configured_ends_the_call(
    fake_agent: tuple[FakeAgent, str], tmp_path: Path
) -> None:
    report, _, _ = await _transfer_mid_call(
        fake_agent, tmp_path, "operator XML transfer", operator_destination=""
    )
    assert report["transferred_to"] == "operator"
    assert report["hangup_cause"] == "UNALLOCATED_NUMBER"  # vars.xml's default destination


def test_the_bundled_call_scripts_load() -> None:
    from callsim.script import load_scripts

    scripts = load_scripts(Path(__file__).parents[1] / "calls")
    names = {s.name for _, s in scripts}
    assert {"knee-mri-booking", "barge-in-on-price", "backchannel-over-echo-and-a-pause"} <= names
    kinds = {step.kind for _, s in scripts for step in s.turns}
    assert {"say", "barge_in", "backchannel", "silence", "hangup"} <= kinds


async def test_an_outbound_script_answers_the_agents_originate(
    fake_agent: tuple[FakeAgent, str], tmp_path: Path
) -> None:
    """The dialer originates to the script's number; the scripted callee answers after its
    rings, the fork starts on answer, and the call is measured like an inbound one."""
    agent, url = fake_agent
    switch = Switch(fork_build="jambonz")
    number = "+15557654321"
    script = CallScript.model_validate(
        {
            **SCRIPT,
            "name": "outbound-answer",
            "direction": "outbound",
            "outbound": {"answer_after_rings": 1, "outcome": "answer"},
            "caller": {"number": number, "voice": "espeak:en-us", "codec": "PCMA"},
            "turns": ["Yes, speaking.", {"hangup": {}}],
        }
    )
    call_uuid = str(uuid.uuid4())
    fork = f"uuid_audio_fork {call_uuid} start {url.format(uuid=call_uuid)} stereo 16k"
    # No JSON in originate variables (its braces and commas break the {vars} parser).
    fork += " audio_fork campaign-7 true true 16000"

    async def dial() -> str:
        await asyncio.sleep(0.3)
        return await switch.api(
            "originate",
            # Without send_silence_when_idle no stereo frame goes out while the agent is
            # silent, and the far end's end of speech is never heard.
            f"{{origination_uuid={call_uuid},send_silence_when_idle=-1,api_on_answer='{fork}'}}"
            f"sofia/gateway/carrier/{number} &park()",
        )

    report, reply = await asyncio.gather(
        run_call(switch, script, RunOptions(recordings=tmp_path)), dial()
    )
    assert reply == f"+OK {call_uuid}\n"
    assert report["call_id"] == call_uuid
    assert report["errors"] == []
    assert report["v2v"]["n"] == 1
    assert agent.metadata == {"raw": "campaign-7"}

    busy = CallScript.model_validate(
        {**script.model_dump(), "outbound": {"outcome": "busy"}, "expect": {"status": "busy"}}
    )
    report, reply = await asyncio.gather(
        run_call(switch, busy, RunOptions(recordings=tmp_path)),
        switch.api("originate", f"sofia/gateway/carrier/{number} &park()"),
    )
    assert reply == "-ERR USER_BUSY\n"
    assert report["passed"] is True
