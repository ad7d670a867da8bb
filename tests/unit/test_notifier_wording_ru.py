"""A Russian sheet's values: status names, dates, money and a summary in Russian, clinic time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from callkit.contracts.outcome import STATUSES, CallOutcome
from callkit.errors import ConfigError
from notifier.columns import DEFAULT_TIMEZONE, Layout
from notifier.settings import NotifySettings
from notifier.wording import STATUS_RU

ROOT = Path(__file__).resolve().parents[2]


def outcome(**overrides: Any) -> CallOutcome:
    body: dict[str, Any] = {
        "call_id": "call-ru-1",
        "direction": "inbound",
        "caller": "+79161234567",
        "started_at": "2026-11-21T10:00:00+00:00",
        "ended_at": "2026-11-21T10:03:05+00:00",
        "duration_s": 185,
        "status": "booked",
        "slots": {
            "client_name": "Иван Петрович Сидоров",
            "phone": "+7 916 123-45-67",
            "symptoms": "болит колено",
            "symptoms_duration": "две недели",
            "study_type": "МРТ коленного сустава",
            "appointment_date": "2026-12-01",
            "appointment_time": "14:30",
            "price": 4500,
            "currency": "RUB",
        },
        "summary": "Booked MRI of the knee on 2026-12-01 at 14:30.",
    }
    return CallOutcome.model_validate(body | overrides)


def cells(o: CallOutcome, keys: list[str], locale: str = "ru", tz: str = "Europe/Moscow") -> Any:
    layout = Layout.build(["call_id", *keys], locale, tz)  # type: ignore[arg-type]
    return dict(zip(keys, layout.row(o)[1:], strict=True))


def test_every_status_has_a_russian_name() -> None:
    assert STATUS_RU.keys() == STATUSES.keys()
    assert len(set(STATUS_RU.values())) == len(STATUS_RU)  # no two statuses read the same


def test_a_booked_call_reads_in_russian_in_moscow_time() -> None:
    row = cells(
        outcome(),
        ["timestamp", "appointment", "price", "status", "direction", "summary"],
    )
    assert row == {
        "timestamp": "21.11.2026 13:03:05",  # 10:03:05 UTC is 13:03:05 in Moscow
        "appointment": "01.12.2026 14:30",
        "price": "4500 ₽",
        "status": "записан",
        "direction": "входящий",
        "summary": "Записан: МРТ коленного сустава, 01.12.2026 14:30; "
        "жалоба: болит колено (две недели).",
    }


def test_a_call_back_is_written_in_the_clinics_time() -> None:
    o = outcome(
        status="callback",
        direction="outbound",
        slots={"callback_at": "2026-11-22T07:00:00+00:00", "study_type": "УЗИ брюшной полости"},
        amd={"answered_by": "human", "cue": "reply_to_prompt", "verdict_ms": 900},
    )
    row = cells(o, ["status", "callback_at", "answered_by", "summary"])
    assert row == {
        "status": "перезвонить",
        "callback_at": "22.11.2026 10:00:00",
        "answered_by": "человек",
        "summary": "Перезвонить; обсуждали: УЗИ брюшной полости; "
        "перезвонить с 22.11.2026 10:00 по местному времени.",
    }


@pytest.mark.parametrize(
    ("attempts", "words"),
    [(1, "1 попытки"), (3, "3 попыток"), (5, "5 попыток"), (11, "11 попыток"), (21, "21 попытки")],
)
def test_a_campaign_contacts_row_counts_its_attempts_in_russian(attempts: int, words: str) -> None:
    o = outcome(
        call_id="contact:42",
        direction="outbound",
        status="not_interested",
        slots={"client_name": "Анна"},
        summary=f"campaign Flu: not_interested after {attempts} attempt(s)",
        attempts=attempts,
    )
    assert cells(o, ["summary"]) == {"summary": f"Итог кампании: не заинтересован после {words}."}


def test_extras_the_staff_must_act_on_are_in_the_russian_summary() -> None:
    o = outcome(
        slots={
            "study_type": "КТ грудной клетки",
            "appointment_date": "2026-12-02",
            "appointment_time": "09:00",
            "video_conclusion": True,
            "contraindications": True,
        }
    )
    assert cells(o, ["summary"])["summary"] == (
        "Записан: КТ грудной клетки, 02.12.2026 09:00; с видеозаключением; "
        "есть противопоказания, уточнить."
    )


def test_an_english_sheet_keeps_its_values_and_shows_the_clinics_offset() -> None:
    o = outcome(
        slots={
            "appointment_date": "2026-12-01",
            "appointment_time": "14:30",
            "price": 510,
            "currency": "USD",
        }
    )
    row = cells(
        o,
        ["timestamp", "appointment", "price", "status", "direction", "summary"],
        locale="en",
        tz="America/New_York",
    )
    assert row == {
        "timestamp": "2026-11-21T05:03:05-05:00",
        "appointment": "2026-12-01 14:30",
        "price": "510 USD",
        "status": "booked",
        "direction": "inbound",
        "summary": "Booked MRI of the knee on 2026-12-01 at 14:30.",
    }


def test_the_default_zone_is_the_default_clinics() -> None:
    schedule = yaml.safe_load((ROOT / "prompts/clinic/schedule.yaml").read_text(encoding="utf-8"))
    assert schedule["timezone"] == DEFAULT_TIMEZONE
    assert NotifySettings.load().timezone == DEFAULT_TIMEZONE


def test_an_unknown_time_zone_stops_start_up() -> None:
    with pytest.raises(ConfigError, match="Europe/Moscow"):
        NotifySettings.load(timezone="Moscow")
