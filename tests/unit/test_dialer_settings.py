"""The dialer's callback settings: what compose gives it for each clinic, and what it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from callkit.errors import ConfigError
from deploycheck.compose import env_example, interpolate
from dialer.app import engine_config
from dialer.settings import DialerSettings

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {"DIALER_API_TOKEN": "t" * 24, "ESL_PASSWORD": "esl-secret", "POSTGRES_PASSWORD": "pg"}


def compose_environment(**env: str) -> dict[str, str]:
    """The dialer service's environment as compose gives it with .env.example's values and
    ``env`` on top."""
    example, _ = env_example(ROOT / ".env.example")
    raw = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    given: Any = interpolate(raw["services"]["dialer"]["environment"], example | SECRETS | env)
    return {k: str(v) for k, v in given.items()}


def settings_from(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> DialerSettings:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return DialerSettings.load()


@pytest.mark.parametrize(
    ("env", "locale", "timezone"),
    [
        ({}, "en", "America/New_York"),  # the English demo clinic
        (
            {
                "CLINIC": "clinic_ru",
                "AGENT_LANGUAGE": "ru",
                "CLINIC_TIMEZONE": "Europe/Moscow",
                "DIALER_DEFAULT_REGION": "RU",
            },
            "ru",
            "Europe/Moscow",
        ),
    ],
    ids=["clinic", "clinic_ru"],
)
def test_compose_gives_the_dialer_the_clinics_language_and_zone_for_callbacks(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], locale: str, timezone: str
) -> None:
    config = engine_config(settings_from(monkeypatch, compose_environment(**env)))
    assert (config.callback_locale, config.callback_timezone) == (locale, timezone)


def test_without_settings_callbacks_are_in_english_and_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIALER_CALLBACK_LOCALE", raising=False)
    monkeypatch.delenv("DIALER_CALLBACK_TIMEZONE", raising=False)
    config = engine_config(
        settings_from(
            monkeypatch, {"DIALER_API_TOKEN": "t" * 24, "DIALER_ESL_PASSWORD": "esl-secret"}
        )
    )
    assert (config.callback_locale, config.callback_timezone) == ("en", "UTC")


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        (
            "DIALER_CALLBACK_TIMEZONE",
            "Europe/Moskow",
            "DIALER_CALLBACK_TIMEZONE: Value error, unknown timezone 'Europe/Moskow'",
        ),
        ("DIALER_CALLBACK_TIMEZONE", "MSK+3", "unknown timezone 'MSK+3'"),
        ("DIALER_CALLBACK_LOCALE", "russian", "DIALER_CALLBACK_LOCALE: String should match"),
    ],
)
def test_a_bad_callback_setting_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        settings_from(
            monkeypatch,
            {"DIALER_API_TOKEN": "t" * 24, "DIALER_ESL_PASSWORD": "esl-secret", var: value},
        )
    assert expected in err.value.message
