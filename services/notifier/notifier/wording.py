"""What the sheet's cells say in its locale: status names, dates and times, the summary.

An English sheet shows the outcome as the policy engine and the dialer wrote it (status keys,
their summary line); a Russian sheet gets Russian status names, dates as ДД.ММ.ГГГГ and a summary
composed here from the outcome's facts, so a Russian sheet reads the same whichever language the
call itself was in. Every time is shown in the clinic's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Final, Literal
from zoneinfo import ZoneInfo

from callkit.contracts.outcome import CallOutcome

Locale = Literal["ru", "en"]

STATUS_RU: Final[dict[str, str]] = {
    "booked": "записан",
    "callback": "перезвонить",
    "not_interested": "не заинтересован",
    "opt_out": "просит не звонить",
    "transferred": "переведён на сотрудника",
    "wrong_number": "ошибочный номер",
    "incomplete": "не завершён",
    "failed": "сбой",
    "busy": "занято",
    "no_answer": "нет ответа",
    "voicemail": "автоответчик",
    "invalid_number": "неверный номер",
    "rejected": "вызов отклонён",
    "skipped_dnc": "в списке «не звонить»",
}

DIRECTION_RU: Final[dict[str, str]] = {"inbound": "входящий", "outbound": "исходящий"}
ANSWERED_BY_RU: Final[dict[str, str]] = {
    "human": "человек",
    "machine": "автоответчик",
    "unknown": "не определено",
}
#: Currency codes a Russian sheet writes as their sign.
CURRENCY_SIGN_RU: Final[dict[str, str]] = {"RUB": "₽", "RUR": "₽", "USD": "$", "EUR": "€"}


def _attempts_ru(n: int) -> str:
    """ "после N попыток" in Russian: the genitive singular after 1, 21, 31..., plural otherwise."""
    return f"{n} попытки" if n % 10 == 1 and n % 100 != 11 else f"{n} попыток"


@dataclass(frozen=True, slots=True)
class Wording:
    """The sheet's locale and the clinic's time zone: how one row's values are written."""

    locale: Locale
    zone: ZoneInfo

    def status(self, status: str) -> str:
        return STATUS_RU.get(status, status) if self.locale == "ru" else status

    def direction(self, direction: str) -> str:
        return DIRECTION_RU.get(direction, direction) if self.locale == "ru" else direction

    def answered_by(self, who: str) -> str:
        return ANSWERED_BY_RU.get(who, who) if self.locale == "ru" else who

    def local(self, at: datetime) -> datetime:
        """A moment in the clinic's time (a moment without a zone is taken as UTC)."""
        return (at if at.tzinfo else at.replace(tzinfo=ZoneInfo("UTC"))).astimezone(self.zone)

    def moment(self, at: datetime) -> str:
        """A moment as the sheet shows it: ISO with the clinic's offset in English, ДД.ММ.ГГГГ
        ЧЧ:ММ:СС clinic time in Russian."""
        local = self.local(at)
        if self.locale == "ru":
            return f"{local:%d.%m.%Y %H:%M:%S}"
        return local.isoformat(timespec="seconds")

    def day(self, iso: str) -> str:
        """An ISO date (the appointment's, already the clinic's own) in the sheet's form."""
        if self.locale != "ru":
            return iso
        try:
            return f"{date.fromisoformat(iso):%d.%m.%Y}"
        except ValueError:
            return iso

    def appointment(self, day: str | None, time: str | None) -> str:
        parts = [self.day(day) if day else None, time]
        return " ".join(p for p in parts if p)

    def money(self, amount: str, currency: str | None) -> str:
        if self.locale == "ru" and currency:
            currency = CURRENCY_SIGN_RU.get(currency.upper(), currency)
        return f"{amount} {currency or ''}".strip()

    def summary(self, o: CallOutcome) -> str:
        if self.locale != "ru":
            return o.summary or ""
        return self._summary_ru(o)

    def _summary_ru(self, o: CallOutcome) -> str:
        s = o.slots
        extra = s.model_extra or {}
        attempts = (o.model_extra or {}).get("attempts")
        status = STATUS_RU.get(o.status, o.status)
        if isinstance(attempts, int):
            # A campaign contact's own row: its outcome after all its attempts.
            return f"Итог кампании: {status} после {_attempts_ru(attempts)}."
        parts: list[str] = []
        if o.status == "booked" and s.study_type:
            when = self.appointment(s.appointment_date, s.appointment_time)
            parts.append(f"Записан: {s.study_type}" + (f", {when}" if when else ""))
        else:
            parts.append(status[:1].upper() + status[1:])
            if s.study_type:
                parts.append(f"обсуждали: {s.study_type}")
        if s.symptoms:
            complaint = s.symptoms
            if s.symptoms_duration:
                complaint += f" ({s.symptoms_duration})"
            parts.append(f"жалоба: {complaint}")
        callback_at = extra.get("callback_at")
        if o.status == "callback" and callback_at:
            try:
                at = datetime.fromisoformat(str(callback_at))
            except ValueError:
                parts.append(f"перезвонить: {callback_at}")
            else:
                parts.append(f"перезвонить с {self.local(at):%d.%m.%Y %H:%M} по местному времени")
        if s.video_conclusion is True:
            parts.append("с видеозаключением")
        if extra.get("discount") is True:
            parts.append("со скидкой")
        if extra.get("contraindications") is True:
            parts.append("есть противопоказания, уточнить")
        return "; ".join(parts) + "."
