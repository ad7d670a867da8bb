"""The bridge's phrase file: which busy text a refused call hears (and that the TTS gateway
prerenders it), and the endings that leave a caller's words unfinished."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callkit.errors import ConfigError
from fs_bridge.bargein import BargeInDetector
from fs_bridge.busy import load_phrases
from fs_bridge.turns import TurnConfig, TurnTaker
from tts_gateway.prerender import fixed_prompts

ROOT = Path(__file__).resolve().parents[2]
PHRASES_FILE = ROOT / "prompts" / "bridge.json"


@pytest.mark.parametrize("language", ["en", "ru"])
def test_every_busy_phrase_is_prerendered_by_the_tts_gateway(language: str) -> None:
    phrases = load_phrases(PHRASES_FILE, language)
    prerendered = set(fixed_prompts(ROOT / "prompts", language))
    for direction in ("inbound", "outbound"):
        assert phrases.busy[direction][language] in prerendered, direction


def write(tmp_path: Path, busy: object) -> Path:
    path = tmp_path / "bridge.json"
    path.write_text(json.dumps({"busy": busy}, ensure_ascii=False), encoding="utf-8")
    return path


BUSY = {
    "inbound": {"say": {"en": "Lines busy, call back.", "ru": "Линии заняты, перезвоните."}},
    "outbound": {"say": {"en": "Lines busy, we will call you."}},
}


@pytest.mark.parametrize(
    ("direction", "locale", "expected"),
    [
        ("inbound", "en", "Lines busy, call back."),
        ("inbound", "ru", "Линии заняты, перезвоните."),
        ("inbound", "ru-RU", "Линии заняты, перезвоните."),
        ("inbound", "RU_ru", "Линии заняты, перезвоните."),
        ("inbound", None, "Lines busy, call back."),  # the bridge's language
        ("inbound", "de", "Lines busy, call back."),  # no German text: the bridge's language
        ("outbound", "en", "Lines busy, we will call you."),
        ("outbound", "ru", "Lines busy, we will call you."),  # outbound has no ru: its default
        ("transfer", "ru", "Линии заняты, перезвоните."),  # an unknown direction is inbound
    ],
)
def test_the_refused_call_hears_its_direction_and_locale(
    tmp_path: Path, direction: str, locale: str | None, expected: str
) -> None:
    phrases = load_phrases(write(tmp_path, BUSY), "en")
    assert phrases.busy_text(direction, locale) == expected


@pytest.mark.parametrize(
    ("busy", "problem"),
    [
        ({"inbound": {"say": {"ru": "Линии заняты."}}}, "no text for the bridge's language 'en'"),
        ({"inbound": {"say": {"en": "Hello {name}, busy."}}}, "no placeholders"),
        ({"inbound": {"say": {"en": ""}}}, "expected a fixed text"),
        ({"inbound": "busy"}, "needs 'say'"),
        ({"sideways": {"say": {"en": "Busy."}}}, "expected one of inbound, outbound"),
        ("busy", "expected an object with 'busy'"),  # busy is no object
    ],
)
def test_a_phrase_file_that_cannot_say_the_busy_phrase_is_refused(
    tmp_path: Path, busy: object, problem: str
) -> None:
    path = write(tmp_path, busy)
    with pytest.raises(ConfigError, match=problem.replace("{", r"\{")) as refused:
        load_phrases(path, "en")
    assert str(path) in refused.value.message


def test_a_phrase_file_that_is_not_json_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "bridge.json"
    path.write_text("busy:\n  inbound: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_phrases(path, "en")


@pytest.mark.parametrize(
    "unfinished",
    [{"endings": {"en": ["and", ""]}}, {"endings": {"en": "and"}}, {"words": {"en": ["and"]}}],
)
def test_malformed_unfinished_endings_are_refused(tmp_path: Path, unfinished: object) -> None:
    path = tmp_path / "bridge.json"
    path.write_text(json.dumps({"busy": BUSY, "unfinished": unfinished}), encoding="utf-8")
    with pytest.raises(ConfigError, match="unfinished") as refused:
        load_phrases(path, "en")
    assert str(path) in refused.value.message


def test_the_shipped_unfinished_endings_leave_complete_answers_alone() -> None:
    """A complete answer held for the rest of a sentence costs the caller a second of silence:
    none of the usual short answers ends on an unfinished ending."""
    phrases = load_phrases(PHRASES_FILE, "en")
    for locale, complete, unfinished in (
        (
            "en",
            ["Yes, I am.", "I'd like to.", "I think so.", "Yes, it is.", "Who am I speaking with?"],
            ["My name is.", "Hi, this is...", "My knee and", "Tuesday, um"],
        ),
        ("ru", ["Что?", "Кто это?", "Да, конечно."], ["Меня зовут...", "Болит колено и"]),
    ):
        endings = phrases.unfinished_endings(locale)
        assert endings, locale
        core = TurnTaker("call-1", TurnConfig(), BargeInDetector(), unfinished=endings)
        assert [t for t in complete if core.ends_unfinished(t)] == [], locale
        assert [t for t in unfinished if not core.ends_unfinished(t)] == [], locale
