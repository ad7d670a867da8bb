"""A caller who withholds their number: the caller id read as a number to call or as none, the
``caller:withheld`` condition, and the callback goodbye that then promises no call back."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from callkit.errors import ConfigError
from policy_engine.dialog.caller import caller_number
from policy_engine.dialog.walk import condition_holds, say_of
from policy_engine.script import load_script

ROOT = Path(__file__).parents[2]
CLINIC = ROOT / "prompts" / "clinic"
SCRIPT = load_script(CLINIC)
SCRIPT_RU = load_script(ROOT / "prompts" / "clinic_ru")
# How the goodbye promises a call back.
PROMISES = {"en": ("we will call you back", "we'll call you back"), "ru": ("мы перезвоним",)}


@pytest.mark.parametrize(
    ("raw", "country_code", "number"),
    [
        ("+15551919191", "1", "+15551919191"),
        ("5551919191", "1", "+15551919191"),  # national, as some carriers pass it
        ("+79161234567", "1", "+79161234567"),  # a foreign caller of the US clinic
        ("89161234567", "7", "+79161234567"),
        ("anonymous", "1", None),  # FreeSWITCH, for a withheld caller id
        ("Anonymous", "7", None),
        ("unknown", "1", None),
        ("restricted", "44", None),
        ("", "1", None),
        ("   ", "1", None),
        (None, "1", None),
        ("0000000000", "1", None),  # a placeholder, not a number anyone answers
        ("123", "1", None),
    ],
)
def test_the_caller_id_as_a_number_to_call(
    raw: str | None, country_code: str, number: str | None
) -> None:
    assert caller_number(raw, country_code) == number


@pytest.mark.parametrize(
    ("slots", "direction", "no_caller_id", "holds"),
    [
        ({}, "inbound", True, True),
        ({"phone": "+15551919191"}, "inbound", True, False),  # the number given on the call
        ({}, "inbound", False, False),
        ({}, "outbound", True, False),  # the clinic dialled the number it calls back
    ],
)
def test_caller_withheld_holds_only_without_any_number_to_call(
    slots: dict[str, Any], direction: str, no_caller_id: bool, holds: bool
) -> None:
    assert condition_holds("caller:withheld", slots, direction, no_caller_id=no_caller_id) is holds


@pytest.mark.parametrize(("script", "locale"), [(SCRIPT, "en"), (SCRIPT, "ru"), (SCRIPT_RU, "ru")])
def test_the_callback_goodbye_promises_no_call_back_without_a_number(
    script: Any, locale: str
) -> None:
    state = script.states["goodbye_callback"]
    later = "2026-11-24T23:00:00+00:00"
    withheld = [
        say_of(state, slots, "inbound", no_caller_id=True)[1][locale]
        for slots in ({}, {"callback_at": later})
    ]
    promised = [
        say_of(state, {}, "inbound")[1][locale],
        say_of(state, {"callback_at": later}, "inbound")[1][locale],
        say_of(state, {"phone": "+15551919191"}, "inbound", no_caller_id=True)[1][locale],
        say_of(state, {}, "outbound", no_caller_id=True)[1][locale],
    ]
    promises = PROMISES[locale]
    for text in withheld:
        assert "{clinic_phone}" in text
        assert not any(promise in text for promise in promises)
    for text in promised:
        assert any(promise in text for promise in promises)
        assert "{clinic_phone}" not in text


def _with_condition(tmp_path: Path, condition: str) -> Path:
    target = tmp_path / "clinic"
    shutil.copytree(CLINIC, target)
    path = target / "script.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["states"]["ask_phone"]["next"] = [
        {"if": condition, "to": "goodbye_unresolved"},
        {"to": "ask_age_weight"},
    ]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return target


def test_a_script_may_branch_on_a_withheld_caller(tmp_path: Path) -> None:
    script = load_script(_with_condition(tmp_path, "caller:withheld"))
    assert script.states["ask_phone"].transitions[0].when == "caller:withheld"


@pytest.mark.parametrize("condition", ["caller:hidden", "caller:known"])
def test_an_unknown_caller_condition_is_refused(tmp_path: Path, condition: str) -> None:
    with pytest.raises(ConfigError, match=rf"state 'ask_phone': condition '{condition}'"):
        load_script(_with_condition(tmp_path, condition))
