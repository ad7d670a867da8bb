"""What an outbound callee says on pickup: a person who speaks first, a voicemail with or
without its beep, a call screener; and the answering-machine suite built on them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from callkit.contracts.outcome import CallOutcome
from callkit.errors import ConfigError
from callsim.callees import check_scripts
from callsim.run import answered_by, callee_of
from callsim.script import STOCK_GREETINGS, CallScript, load_script, load_scripts

AMD_SUITE = Path(__file__).resolve().parents[2] / "benchmarks" / "amd"


def callee(tmp_path: Path, outbound: dict[str, Any], **rest: Any) -> CallScript:
    path = tmp_path / "callee.yaml"
    script = {
        "direction": "outbound",
        "outbound": outbound,
        "caller": {"number": "+12125550299"},
        **rest,
    }
    path.write_text(yaml.safe_dump(script, allow_unicode=True), encoding="utf-8")
    return load_script(path)


def test_an_old_script_keeps_its_behaviour(tmp_path: Path) -> None:
    person = callee(tmp_path, {"answer_after_rings": 2}).outbound
    assert (person.greeting, person.greeting_delay_ms, person.greeting_of("answer")) == (
        None,
        0,
        None,
    )
    box = callee(tmp_path, {"outcome": "voicemail"}).outbound
    assert box.voicemail_beep is True
    assert box.greeting_of("voicemail") == (
        "Hi, you have reached my voicemail. Please leave a message after the tone."
    )
    assert (box.voicemail_wait_s, box.voicemail_max_s) == (5.0, 60.0)


def test_a_person_may_speak_first_after_a_silence(tmp_path: Path) -> None:
    out = callee(tmp_path, {"greeting": "Hello?", "greeting_delay_ms": 2000}).outbound
    assert (out.greeting_of("answer"), out.greeting_delay_ms) == ("Hello?", 2000)
    retried = callee(tmp_path, {"attempts": ["busy", "answer"], "greeting": "Yes, speaking."})
    assert retried.outbound.greeting_of(retried.outbound.outcome_of(1)) is None  # busy: no words
    assert retried.outbound.greeting_of(retried.outbound.outcome_of(2)) == "Yes, speaking."


@pytest.mark.parametrize(
    ("outbound", "problem"),
    [
        ({"greeting_delay_ms": 2000}, "give a greeting"),
        ({"outcome": "voicemail", "greeting": "Hello?"}, "never answers in person"),
        ({"attempts": ["busy", "screener"], "greeting": "Hello?"}, "never answers in person"),
        ({"greeting": ""}, "greeting"),
        ({"greeting": "Hello?", "greeting_delay_ms": 20000}, "greeting_delay_ms"),
        ({"outcome": "voicemail", "voicemail_wait_s": 0}, "voicemail_wait_s"),
        ({"outcome": "voicemail", "voicemail_max_s": 0}, "voicemail_max_s"),
        ({"outcome": "machine"}, "outcome"),
    ],
)
def test_callee_fields_that_cannot_be_played_are_refused(
    tmp_path: Path, outbound: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        callee(tmp_path, outbound)


def test_a_person_who_answers_on_a_later_call_may_greet(tmp_path: Path) -> None:
    out = callee(tmp_path, {"attempts": ["voicemail", "answer"], "greeting": "Hello?"}).outbound
    assert [out.greeting_of(out.outcome_of(n)) for n in (1, 2)] == [
        STOCK_GREETINGS["voicemail"],
        "Hello?",
    ]


def test_a_screener_answers_like_a_person_and_has_its_own_prompt(tmp_path: Path) -> None:
    script = callee(tmp_path, {"outcome": "screener", "answer_after_rings": 2})
    assert script.outbound.ever_answers
    assert "screening service" in (script.outbound.greeting_of("screener") or "")
    switch_side = callee_of(script)
    assert (switch_side.outcome, switch_side.ring_s) == ("answer", 2.0)
    own = callee(tmp_path, {"outcome": "screener", "voicemail_greeting": "Who is calling?"})
    assert own.outbound.greeting_of("screener") == "Who is calling?"


def test_a_voicemail_without_a_beep_loads(tmp_path: Path) -> None:
    box = callee(tmp_path, {"outcome": "voicemail", "voicemail_beep": False}).outbound
    assert box.voicemail_beep is False
    assert callee_of(callee(tmp_path, {"attempts": ["busy", "voicemail"]})).attempts == [
        "busy",
        "answer",
    ]


def _outcome(**extra: Any) -> CallOutcome:
    return CallOutcome.model_validate(
        {
            "call_id": "c1",
            "direction": "outbound",
            "started_at": "2026-01-05T10:00:00Z",
            "ended_at": "2026-01-05T10:00:20Z",
            "duration_s": 20,
            "status": "voicemail",
            **extra,
        }
    )


def test_expect_names_who_answered_and_the_outcome_says_who_the_agent_heard(
    tmp_path: Path,
) -> None:
    script = callee(tmp_path, {"outcome": "voicemail"}, expect={"answered_by": "machine"})
    assert script.expect.answered_by == "machine"
    with pytest.raises(ConfigError, match="answered_by"):
        callee(tmp_path, {"outcome": "voicemail"}, expect={"answered_by": "robot"})
    heard = _outcome(amd={"answered_by": "machine", "cue": "beep", "verdict_ms": 5200.0})
    assert answered_by(heard) == "machine"
    assert answered_by(_outcome()) is None  # an outcome from before the agent told them apart
    assert answered_by(None) is None


def test_the_answering_machine_suite_names_what_each_callee_is() -> None:
    scripts = load_scripts(AMD_SUITE)
    check_scripts(scripts)  # outbound, one script a number
    assert len(scripts) >= 34
    kinds: dict[str, int] = {}
    for path, script in scripts:
        out = script.outbound
        machine = out.outcome in ("voicemail", "screener")
        assert script.expect.answered_by == ("machine" if machine else "human"), path.name
        assert script.name.replace("-", "_") == path.stem, path.name
        assert ("machine" if machine else "human") in path.stem.split("_")[:2], path.name
        if machine:
            assert script.expect.status == "voicemail", path.name
            assert not script.turns, f"{path.name}: a machine takes a message, it has no turns"
        kind = out.outcome if out.voicemail_beep or out.outcome != "voicemail" else "no_beep"
        kinds[f"{script.language}:{kind}"] = kinds.get(f"{script.language}:{kind}", 0) + 1
    wanted = {"en:voicemail": 8, "en:no_beep": 2, "en:screener": 2, "en:answer": 8}
    wanted |= {"ru:voicemail": 2, "ru:answer": 2}
    assert {k: min(kinds.get(k, 0), n) for k, n in wanted.items()} == wanted
