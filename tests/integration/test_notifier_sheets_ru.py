"""The Russian clinic's "Лист4" over the real gspread-asyncio path, and an English worksheet that
keeps its header: both against the local Google stand-in."""

from __future__ import annotations

import uuid
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from test_notifier import LIST4, outcome, publish
from test_notifier_sheets import drain, google, r, sink  # noqa: F401 (fixtures)

from notifier.columns import Layout
from notifier.consumer import ConsumerConfig, NotifierMetrics, OutcomeConsumer
from notifier.settings import NotifySettings
from notifier.sinks.sheets import SheetsSink


def russian_call(n: int, **overrides: Any) -> dict[str, Any]:
    slots = {
        "client_name": "Мария Ивановна Котова",
        "phone": "+7 916 123-45-67",
        "age": 54,
        "weight_kg": 68,
        "symptoms": "головные боли",
        "symptoms_duration": "месяц",
        "study_type": "МРТ головного мозга",
        "appointment_date": "2026-12-01",
        "appointment_time": "14:30",
        "price": 5200,
        "currency": "RUB",
    }
    return outcome(n, caller="+79161234567", summary="Booked.", **({"slots": slots} | overrides))


def consumer_for(
    redis: aioredis.Redis, s: SheetsSink, stream: str, settings: NotifySettings
) -> OutcomeConsumer:
    return OutcomeConsumer(
        redis,
        s,
        Layout.build(settings.columns, settings.locale, settings.timezone),
        ConsumerConfig(stream=stream, dead_stream=stream + ":dead", block_ms=50, backoff_s=0.05),
        NotifierMetrics(CollectorRegistry()),
    )


async def test_the_russian_clinics_rows_read_in_russian_in_moscow_time(google, r) -> None:  # noqa: F811
    fake, creds, base = google
    settings = NotifySettings.load(locale="ru", timezone="Europe/Moscow", worksheet="Лист4")
    stream = f"test:{uuid.uuid4().hex[:8]}:completed"
    try:
        await publish(
            r,
            stream,
            russian_call(1),
            russian_call(2, status="callback", slots={"callback_at": "2026-11-22T07:00:00+00:00"}),
        )
        await drain(consumer_for(r, sink(creds, base), stream, settings))
    finally:
        await r.delete(stream, stream + ":dead")
    header, booked, callback = fake.sheet.rows
    assert header[:10] == LIST4
    row = dict(zip(header, booked, strict=True))
    assert row["Timestamp"] == "21.11.2026 13:01:00"  # 10:01 UTC, in Moscow
    assert row["Имя клиента"] == "Мария Ивановна Котова"
    assert row["Тип исследования"] == "МРТ головного мозга"
    assert row["Дата/время записи"] == "01.12.2026 14:30"
    assert row["Стоимость"] == "5200 ₽"
    assert row["Статус"] == "записан"
    assert row["Направление"] == "входящий"
    assert row["Итог"] == (
        "Записан: МРТ головного мозга, 01.12.2026 14:30; жалоба: головные боли (месяц)."
    )
    again = dict(zip(header, callback, strict=True))
    assert again["Статус"] == "перезвонить"
    assert again["Итог"] == "Перезвонить; перезвонить с 22.11.2026 10:00 по местному времени."


async def test_an_english_worksheet_keeps_its_header_and_values(google, r) -> None:  # noqa: F811
    fake, creds, base = google
    settings = NotifySettings.load(locale="en", timezone="America/New_York")
    layout = Layout.build(settings.columns, settings.locale, settings.timezone)
    fake.sheet.rows = [layout.header]  # a worksheet the notifier filled before
    stream = f"test:{uuid.uuid4().hex[:8]}:completed"
    try:
        await publish(r, stream, outcome(1))
        await drain(consumer_for(r, sink(creds, base), stream, settings))
    finally:
        await r.delete(stream, stream + ":dead")
    header, first = fake.sheet.rows
    assert header[:10] == [
        "Timestamp",
        "Client name",
        "Phone",
        "Age",
        "Weight (kg)",
        "Symptoms",
        "Study",
        "Appointment",
        "Price",
        "Status",
    ]
    row = dict(zip(header, first, strict=True))
    assert row["Timestamp"] == "2026-11-21T05:01:00-05:00"
    assert row["Appointment"] == "2026-11-23 15:30"
    assert row["Status"] == "booked"
    assert row["Summary"] == "Booked an MRI of the knee."
