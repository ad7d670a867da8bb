"""The outbound opening's data: why the clinic calls, from the dialer's campaign context, where
an outbound call starts, the texts said on it, and a broken outbound section refused."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from callkit.contracts.campaign import CampaignCall
from callkit.errors import ConfigError
from policy_engine.dialog.walk import say_of, walk
from policy_engine.outbound import call_reason, contact_study
from policy_engine.script import load_script

CLINIC = Path(__file__).parents[2] / "prompts" / "clinic"
SCRIPT = load_script(CLINIC)


def campaign(purpose: str = "service", **fields: str) -> CampaignCall:
    return CampaignCall(
        call_id="a-1",
        campaign_id="c-1",
        contact_id="k-1",
        attempt=1,
        campaign_name="Knee follow-ups",
        purpose=purpose,
        locale="en",
        phone="+15550104455",
        fields=fields,
    )


@pytest.mark.parametrize(
    ("call", "locale", "reason", "study"),
    [
        (campaign(study="knee MRI"), "en", "about your request for an MRI of the knee", "mri_knee"),
        (campaign(study="knee MRI"), "ru", "по поводу вашей заявки на МРТ коленного сустава", "mri_knee"),
        (campaign(study="MRI of the lower back"), "en", "about your request for an MRI of the lumbar spine", "mri_spine"),
        # A study the catalogue does not have is said as the list has it, and sets no study.
        (campaign(study="dental X-ray"), "en", "about your request for dental X-ray", None),
        (campaign(reason="your test results"), "en", "about your test results", None),
        (campaign(study="knee MRI", reason="a follow-up"), "en", "about your request for an MRI of the knee", "mri_knee"),
        (campaign("marketing"), "en", "to offer you a diagnostic study at our clinic", None),
        (campaign("informational", notes="x"), "en", "with some information from the clinic", None),
        (None, "en", "about booking a study at our clinic", None),
    ],
)  # fmt: skip
def test_why_the_clinic_calls(
    call: CampaignCall | None, locale: str, reason: str, study: str | None
) -> None:
    assert call_reason(SCRIPT, call, locale) == reason
    assert contact_study(SCRIPT, call, locale) == study


def test_a_cell_is_said_plain_and_short() -> None:
    said = call_reason(SCRIPT, campaign(reason='  {odd} "cell"  ' + "x" * 200), "en")
    assert said is not None
    assert "{" not in said
    assert '"' not in said
    assert len(said) < 100


def test_an_outbound_call_starts_at_its_own_opening() -> None:
    assert walk(SCRIPT, {}, [], direction="outbound") == ([], "outbound_greeting")
    assert walk(SCRIPT, {}, []) == ([], "greeting")
    said = ["outbound_greeting"]
    # A study the contact list named goes straight to its price once now suits.
    known = {"good_time": True, "client_name": "Helen Brooks", "study_type": "mri_knee"}
    assert walk(SCRIPT, known, said, direction="outbound")[1] == "announce_price"
    # Not now: the call back.
    assert walk(SCRIPT, {"good_time": False}, said, direction="outbound")[1] == "goodbye_callback"


def test_outbound_goodbyes_never_thank_for_calling() -> None:
    for state in SCRIPT.states.values():
        if state.kind != "exit":
            continue
        _, texts = say_of(state, {}, "outbound")
        assert "thank you for calling" not in texts["en"].lower(), state.id
        assert "спасибо за звонок" not in texts["ru"].lower(), state.id
    _, inbound = say_of(SCRIPT.states["farewell"], {}, "inbound")
    assert "Thank you for calling" in inbound["en"]


def test_the_call_back_goodbye_says_the_time_only_when_there_is_one() -> None:
    state = SCRIPT.states["goodbye_callback"]
    assert "{callback_when}" in say_of(state, {"callback_at": "2026-11-24T23:00:00+00:00"})[1]["en"]
    assert "{callback_when}" not in say_of(state, {})[1]["en"]


def _broken(tmp_path: Path, edit: Any) -> Path:
    target = tmp_path / "clinic"
    shutil.copytree(CLINIC, target)
    data = yaml.safe_load((target / "script.yaml").read_text(encoding="utf-8"))
    edit(data)
    (target / "script.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return target


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["outbound"].update(start="hello_there"),
            r"outbound: start state 'hello_there' is not a state",
        ),
        (
            lambda d: d["outbound"]["reasons"][0]["say"].update(en="about your request"),
            r"reason 'study' needs a 'en' text with \{value\}",
        ),
        (
            lambda d: d["outbound"]["default"].pop("ru"),
            r"outbound: 'default' has no 'ru' text",
        ),
        (
            lambda d: d.pop("outbound"),
            r"\{call_reason\} is used but 'outbound' does not say why",
        ),
        (
            lambda d: d["states"]["farewell"]["variants"][0].update({"if": "direction:sideways"}),
            r"state 'farewell': condition 'direction:sideways' names no direction",
        ),
        (
            lambda d: d["states"]["farewell"]["variants"][0]["say"].pop("ru"),
            r"state 'farewell': 'variants \(direction:outbound\)' has no 'ru' text",
        ),
    ],
    ids=["unknown-start", "reason-without-value", "default-locale", "no-outbound", "bad-direction", "variant-locale"],
)  # fmt: skip
def test_a_broken_outbound_section_is_refused(tmp_path: Path, edit: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_script(_broken(tmp_path, edit))
