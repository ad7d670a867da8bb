"""The clinic script is data: it loads, it is checked at start-up, and it compiles into a graph."""

from __future__ import annotations

import ast
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from callkit.errors import ConfigError
from policy_engine.diagram import main as diagram_main
from policy_engine.dialog.walk import walk
from policy_engine.graph import mermaid
from policy_engine.script import ENGINE_STATES, load_script
from tts_gateway.prerender import fixed_prompts

ROOT = Path(__file__).parents[2]
CLINIC = ROOT / "prompts" / "clinic"
SNAPSHOT = ROOT / "tests" / "snapshots" / "policy_graph.mmd"

# Every state of the original design's script.
ORIGINAL_STATES = [
    "greeting",
    "ask_client_name",
    "ask_symptoms",
    "ask_symptoms_duration",
    "ask_pain_character",
    "ask_visited_doctor",
    "ask_study_request",
    "recommend_study",
    "announce_price",
    "ask_study_decision",
    "offer_video_conclusion",
    "announce_media_price",
    "ask_appointment_date",
    "offer_appointment_times",
    "confirm_time",
    "ask_phone",
    "ask_age_weight",
    "check_contraindications",
    "check_discounts",
    "remind_documents",
    "provide_address",
    "provide_contacts",
    "confirm_appointment",
    "farewell",
    "end",
]


def test_the_script_has_every_state_of_the_original_design_in_both_locales() -> None:
    script = load_script(CLINIC)
    assert set(ORIGINAL_STATES) <= set(script.states)
    assert script.locales == ("en", "ru")
    for state in script.states.values():
        if state.kind != "end":
            assert set(state.say) == {"en", "ru"}, state.id


def test_the_graph_diagram_matches_its_snapshot(capsys: pytest.CaptureFixture[str]) -> None:
    """A change to the script's flow shows up here; regenerate with
    `python -m policy_engine.diagram > tests/snapshots/policy_graph.mmd` and review the diff."""
    current = mermaid(load_script(CLINIC))
    assert current == SNAPSHOT.read_text(encoding="utf-8")
    assert diagram_main(["--script-dir", str(CLINIC)]) == 0
    assert capsys.readouterr().out == current


def test_the_happy_path_walks_every_question_in_script_order() -> None:
    script = load_script(CLINIC)
    path, stop = walk(script, {}, [])
    assert (path, stop) == ([], "greeting")
    said = [s.id for s in script.states.values() if s.kind == "announce"]
    answers: dict[str, Any] = {}
    asked = []
    while True:
        path, stop = walk(script, answers, said)
        if stop is None or script.states[stop].kind != "question":
            break
        asked.append(stop)
        for slot in script.states[stop].slots:
            answers[slot] = slot not in ("visited_doctor",)
    assert stop == "farewell"
    assert asked[:3] == ["ask_client_name", "ask_symptoms", "ask_symptoms_duration"]
    assert asked[-1] == "confirm_appointment"
    assert "ask_study_request" not in asked  # only after a doctor's visit


def test_fixed_prompts_are_what_the_tts_gateway_prerenders() -> None:
    """Every fixed question and phrase the engine marks cacheable is in the prerender set."""
    prerendered = set(fixed_prompts(ROOT / "prompts", "en"))
    script = load_script(CLINIC)
    for state in script.states.values():
        for which in ("say", "reprompt"):
            text = getattr(state, which).get("en")
            if text and "{" not in text:
                assert text.strip() in prerendered, (state.id, which)
    assert "We are at {address}." not in prerendered


# ------------------------------------------------------------------ broken scripts are refused


def _broken(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], file: str = "script.yaml"
) -> Path:
    target = tmp_path / "clinic"
    shutil.copytree(CLINIC, target)
    data = yaml.safe_load((target / file).read_text(encoding="utf-8"))
    edit(data)
    (target / file).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return target


def _set(path: list[str], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _delete(path: list[str]) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            _set(["states", "ask_phone", "next"], "ask_agee"),
            r"state 'ask_phone': next state 'ask_agee' is not a state",
        ),
        (
            _delete(["states", "ask_symptoms", "say", "ru"]),
            r"state 'ask_symptoms': 'say' has no 'ru' text",
        ),
        (
            _set(["states", "ask_phone", "slots"], ["telephone"]),
            r"state 'ask_phone': unknown slot 'telephone'",
        ),
        (
            _set(["states", "ask_phone", "say", "en"], "Your {phone_number}, please?"),
            r"state 'ask_phone': 'say' \(en\) uses unknown placeholder\(s\) \['phone_number'\]",
        ),
        (
            _set(["states", "ask_visited_doctor", "next", 0, "if"], "maybe:visited_doctor"),
            r"state 'ask_visited_doctor': condition 'maybe:visited_doctor'",
        ),
        (
            _set(["states", "greeting", "next"], "ask_symptoms"),
            r"state 'ask_client_name' cannot be reached from 'greeting'",
        ),
        (_delete(["states", "goodbye_silence"]), r"state 'goodbye_silence' is missing"),
        (
            _set(["states", "ask_phone", "kind"], "announce"),
            r"state 'ask_phone': only questions collect slots",
        ),
        (_delete(["phrases", "time_taken"]), r"phrases: 'time_taken' is missing"),
        (
            _set(["states", "farewell", "status"], "happy"),
            r"state 'farewell': an exit needs a status",
        ),
        (
            _set(["states", "ask_phone", "fallback"], ["skip"]),
            r"state 'ask_phone': fallback 'skip' needs slots a booking can do without; \['phone'\]",
        ),
        (
            _set(["states", "ask_symptoms", "fallback"], ["spell"]),
            r"state 'ask_symptoms': fallback 'spell' is for a question that asks the name",
        ),
        (
            _set(["states", "ask_phone", "fallback"], ["offer_person", "keypad"]),
            r"state 'ask_phone': fallback 'offer_person' ends the fallback, it must be last",
        ),
    ],
    ids=[
        "unknown-target",
        "missing-locale",
        "unknown-slot",
        "unknown-placeholder",
        "bad-condition",
        "unreachable",
        "missing-engine-state",
        "announce-with-slots",
        "missing-phrase",
        "bad-status",
        "skip-a-required-slot",
        "spell-without-a-name",
        "offer-person-not-last",
    ],
)
def test_a_broken_script_is_refused_naming_the_state(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_script(_broken(tmp_path, edit))


def test_broken_facts_are_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"schedule.yaml: timezone: .*unknown timezone 'Mars/Olympus'"
    ):
        load_script(_broken(tmp_path, _set(["timezone"], "Mars/Olympus"), "schedule.yaml"))
    with pytest.raises(
        ConfigError, match=r"catalogue.yaml: default_study 'mri_toe' is not a study"
    ):
        load_script(_broken(tmp_path / "b", _set(["default_study"], "mri_toe"), "catalogue.yaml"))
    with pytest.raises(ConfigError, match=r"schedule.yaml: days: .*opening 20:00:00 is not before"):
        load_script(
            _broken(tmp_path / "c", _set(["days", "monday"], ["20:00", "08:00"]), "schedule.yaml")
        )


def test_a_yaml_error_names_the_file(tmp_path: Path) -> None:
    target = tmp_path / "clinic"
    shutil.copytree(CLINIC, target)
    (target / "faq.yaml").write_text("topics: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"faq.yaml: not valid YAML"):
        load_script(target)


def test_the_diagram_cli_exits_2_on_a_broken_script(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = _broken(tmp_path, _set(["start"], "hello"))
    assert diagram_main(["--script-dir", str(broken)]) == 2
    assert "start state 'hello' is not a state" in capsys.readouterr().err


# ------------------------------------------------------------------ the states the engine names


@pytest.mark.parametrize("state", sorted(ENGINE_STATES))
def test_renaming_a_state_the_engine_names_is_refused(tmp_path: Path, state: str) -> None:
    target = tmp_path / "clinic"
    shutil.copytree(CLINIC, target)
    text = (target / "script.yaml").read_text(encoding="utf-8")
    # Renamed everywhere in the script (its key and every transition to it), as an editor would.
    (target / "script.yaml").write_text(
        re.sub(rf"\b{state}\b", f"{state}_renamed", text), encoding="utf-8"
    )
    with pytest.raises(
        ConfigError, match=rf"state '{state}' is missing; the engine goes there by name when"
    ):
        load_script(target)


def test_a_state_the_engine_names_must_keep_its_kind(tmp_path: Path) -> None:
    edit = _set(["states", "recommend_study", "kind"], "exit")
    with pytest.raises(
        ConfigError, match=r"state 'recommend_study' must be of kind 'announce', not 'exit'"
    ):
        load_script(_broken(tmp_path, edit))


def test_every_state_named_in_the_engines_code_is_declared() -> None:
    """A string in the engine's code that is a state of the script must be in ENGINE_STATES."""
    script = load_script(CLINIC)
    kinds = {"question", "announce", "exit", "end"}  # kind names; "end" is also a state
    package = ROOT / "services" / "policy_engine" / "policy_engine"
    named: dict[str, str] = {}
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            value = node.value if isinstance(node, ast.Constant) else None
            if isinstance(value, str) and value in script.states and value not in kinds:
                named[value] = str(path.relative_to(package))
    assert named, "the scan finds the engine's own state names"
    undeclared = {s: where for s, where in named.items() if s not in ENGINE_STATES}
    assert undeclared == {}
