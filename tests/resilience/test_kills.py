"""Services killed mid-call: each one gets SIGKILL (the Event Socket: its connection dropped) in
the middle of a four-turn call, and the test checks what the caller hears and that the call's
row is written once.

The call: a name, a symptom, a question answered, then a refusal the agent says goodbye to and
hangs up on. What each kill costs the caller is in the test's assertions: the call goes on to
the agent's goodbye, every answer after the kill is heard, and the call has exactly one
calls:completed entry and one row in the notifier's CSV file."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import redis as syncredis
from killstack import Stack

from callkit.contracts.streams import CALLS_COMPLETED
from callsim.script import CallScript

TURNS = [
    "My name is Laura Martin.",
    "My knee hurts, for two weeks, a sharp pain.",
    "No, I have not.",
    "No thanks, I'm not interested.",
]


def script(name: str) -> CallScript:
    return CallScript.model_validate(
        {
            "name": name,
            "caller": {"voice": "piper:en_US-joe-medium", "codec": "L16"},
            "turns": TURNS,
            "expect": {"status": "not_interested"},
        }
    )


class At:
    """A progress callback that runs ``action`` once, in a thread of its own (callsim's loop
    must not wait for a kill or a restart), at the first line holding every one of ``words``."""

    def __init__(self, action: Callable[[], None], *words: str) -> None:
        self.action = action
        self.words = words
        self.thread: threading.Thread | None = None
        self.failure: BaseException | None = None

    def __call__(self, line: str) -> None:
        if self.thread is None and all(word in line for word in self.words):
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()

    def _run(self) -> None:
        try:
            self.action()
        except BaseException as exc:  # reported by done()
            self.failure = exc

    def done(self) -> None:
        assert self.thread is not None, f"the call never reached {self.words}"
        self.thread.join(180)
        if self.failure is not None:
            raise self.failure


def call_with(stack: Stack, name: str, action: Callable[[], None], *words: str) -> dict[str, Any]:
    """The four-turn call, ``action`` run at the first progress line holding ``words``."""
    kill = At(action, *words)
    report = stack.call(script(name), kill)
    kill.done()
    return report


def agent_lines(report: dict[str, Any]) -> list[str]:
    return [line["text"] for line in report["transcript"] if line["role"] == "agent"]


def assert_heard_to_the_goodbye(report: dict[str, Any]) -> None:
    """The call went on: every turn answered, then the agent's goodbye and its hang-up."""
    assert report["errors"] == [], report["errors"]
    said = " ".join(agent_lines(report))
    for answer in ("What is bothering you?", "seen a doctor", "I would recommend", "goodbye"):
        assert answer in said, (answer, said)
    assert report["hung_up_by"] == "uuid_kill"  # the agent ended it, after its goodbye
    checks = {c["check"]: c for c in report["expect"]}
    assert checks["status"]["passed"], checks["status"]


def assert_one_row(stack: Stack, call_id: str) -> None:
    """Once the notifier has nothing pending, the call has one entry and one row."""
    client = syncredis.Redis.from_url(stack.redis.url)
    try:
        deadline = time.monotonic() + 60
        while True:
            group = next(
                g for g in client.xinfo_groups(CALLS_COMPLETED) if g["name"] == b"notifier"
            )
            if stack.rows(call_id) and group["pending"] == 0 and not group["lag"]:
                break
            assert time.monotonic() < deadline, (group, stack.rows(call_id))
            time.sleep(0.2)
    finally:
        client.close()
    assert stack.completed_entries(call_id) == 1
    (row,) = stack.rows(call_id)
    assert row["Status"] == "not_interested"
    assert row["Client name"] == "Laura Martin"


def test_the_caller_is_heard_across_an_asr_gateway_kill(stack: Stack) -> None:
    """Killed as the caller begins the symptom; the restarted gateway gets the audio the bridge
    kept meanwhile, and the symptom is answered."""

    def kill_and_restart() -> None:
        stack.kill("asr_gateway")
        stack.relaunch("asr_gateway")

    report = call_with(stack, "kill-asr", kill_and_restart, "turn 2/4", "agent silent")
    assert_heard_to_the_goodbye(report)
    assert_one_row(stack, report["call_id"])


def test_the_reply_is_spoken_across_a_tts_gateway_kill(stack: Stack) -> None:
    """Killed while the agent asks about a doctor, and started again 3 s later (a supervisor's
    restart delay), so the next reply's sentences are asked of a gateway that is not there:
    each is spoken once it is back, none lost."""

    def kill_and_restart() -> None:
        stack.kill("tts_gateway")
        time.sleep(3)
        stack.relaunch("tts_gateway")

    report = call_with(stack, "kill-tts", kill_and_restart, "turn 3/4", "agent speaking")
    bridge_log = (stack.tmp / "fs_bridge.log").read_text(encoding="utf-8")
    assert "TTS gateway unavailable; retrying" in bridge_log  # a sentence met the outage
    assert_heard_to_the_goodbye(report)
    said = agent_lines(report)
    assert any("costs $450" in line for line in said)
    assert any("Would you like to book it?" in line for line in said)
    assert "did not catch that" not in " ".join(said)  # no apology: nothing was lost
    assert_one_row(stack, report["call_id"])


def test_a_call_ended_while_the_notifier_is_down_gets_its_row_once(stack: Stack) -> None:
    """Killed mid-call and started again only after the call ended: the outcome waited in the
    stream, and the new notifier writes it, once."""
    report = call_with(
        stack, "kill-notifier", lambda: stack.kill("notifier"), "turn 2/4", "agent silent"
    )
    assert stack.rows(report["call_id"]) == []  # nothing wrote it while the notifier was down
    stack.relaunch("notifier")
    stack.wait_ready("notifier")
    assert_heard_to_the_goodbye(report)
    assert_one_row(stack, report["call_id"])


def test_the_call_goes_on_across_a_redis_kill(stack: Stack) -> None:
    """Redis killed as the caller begins the symptom and started again a second later from its
    append-only file: the dialogue's session, the outcome stream and the notifier's group are
    all there, and the call goes on."""

    def kill_and_restart() -> None:
        stack.redis.kill()
        time.sleep(1)
        stack.redis.start()

    report = call_with(stack, "kill-redis", kill_and_restart, "turn 2/4", "agent silent")
    assert_heard_to_the_goodbye(report)
    assert_one_row(stack, report["call_id"])


def test_the_call_goes_on_across_an_event_socket_drop(stack: Stack) -> None:
    """The switch's Event Socket cut abruptly (no goodbye on the wire) as the caller begins the
    symptom, back 1.5 s later: the bridge reconnects and the agent's hang-up still reaches the
    switch."""
    metrics_url = f"http://127.0.0.1:{stack.ports.bridge}/metrics"
    noticed: list[bool] = []

    def drop() -> None:
        stack.fs.drop()
        for _ in range(40):
            if "bridge_esl_connected 0.0" in httpx.get(metrics_url).text:
                noticed.append(True)
                break
            time.sleep(0.05)
        time.sleep(1.5)
        stack.fs.run(stack.fs.esl.start())

    report = call_with(stack, "drop-esl", drop, "turn 2/4", "agent silent")
    assert noticed == [True]  # the bridge saw the socket go...
    assert "bridge_esl_connected 1.0" in httpx.get(metrics_url).text  # ...and came back
    assert_heard_to_the_goodbye(report)
    assert_one_row(stack, report["call_id"])
