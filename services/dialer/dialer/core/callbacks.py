"""Callbacks asked for on calls the clinic received: the standing campaign that keeps them.

A caller who rang in and asked to be called back ("call me tomorrow after six") ends their call
with the outcome ``callback`` and, when they named a moment, its ``callback_at``. The dialer
makes that request a contact of a standing campaign of its own, one per language
(:func:`campaign_id` is the same on every replica, so whichever creates it first creates the
only one), and from then on it is dialled like any contact: the do-not-call list, the calling
window in the contact's local time and the frequency caps are checked when it is due.

A request is one contact per number: the same number asking again moves its waiting callback to
the newer request's time instead of adding a second call, and a number called back already is
called back again, with a fresh attempt budget. Requests are told apart by the call they were
made on, so an outcome read twice (a redelivered stream entry) schedules nothing twice, and an
older request read after a newer one changes nothing.

The contact's fields say why the clinic calls, in the columns the script's outbound opening
reads (``callback_study``, ``callback_name``): "I'm calling back, as you asked, about an MRI of
the knee". The functions here are pure; the store and the engine apply what they decide.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from callkit.contracts.outcome import CallOutcome
from callkit.errors import InvalidInput
from dialer.core.states import Profile, Purpose
from dialer.importer import normalize_number, number_timezone
from dialer.spec import CampaignSpec, ContactRow, RetryPolicy

#: The namespace of the standing campaigns' ids (uuid5 of ``callbacks/<locale>``).
NAMESPACE: Final = uuid.UUID("6f1c2b7e-1d5a-4c36-9a52-3f6c0b8e4d21")

#: The inbound call the request was made on: it tells one request from another.
REQUEST_FIELD: Final = "callback_of"
#: When the caller asked (the end of their call, ISO-8601 UTC): a newer request wins.
REQUESTED_AT_FIELD: Final = "callback_requested_at"
#: The contact's attempts before this request: its budget counts only the ones after.
ATTEMPTS_BEFORE_FIELD: Final = "callback_attempts_before"
#: The study the caller asked about, as the sheet names it: the opening says it, and the call
#: goes straight to its price.
STUDY_FIELD: Final = "callback_study"
#: The caller's name, for an opening that has no study to name.
NAME_FIELD: Final = "callback_name"

#: Why a waiting callback contact waits.
REASON: Final = "callback asked for on an inbound call"

#: The calling rules of the region the dialer's numbers are from.
_PROFILES: Final = {"US": Profile.US, "GB": Profile.UK, "RU": Profile.RU}
_LOCALE = re.compile(r"^[a-z]{2}")


def campaign_id(locale: str) -> str:
    """The standing callbacks campaign of ``locale``: one id, whichever replica asks."""
    return str(uuid.uuid5(NAMESPACE, f"callbacks/{locale}"))


def is_standing(campaign_id_: str, spec: CampaignSpec) -> bool:
    """Whether the campaign is a standing callbacks campaign (it never completes)."""
    return campaign_id_ == campaign_id(spec.locale)


def campaign_spec(locale: str, *, region: str, timezone: str = "UTC") -> CampaignSpec:
    """The standing campaign as the dialer creates it: a service call (the caller asked for
    it), under the calling rules of the dialer's region, with the default windows, retries and
    caps. ``timezone`` is the zone of numbers that phonenumbers cannot place in one."""
    return CampaignSpec(
        name=f"Callbacks ({locale})",
        purpose=Purpose.SERVICE,
        profile=_PROFILES.get(region.upper(), Profile.NONE),
        timezone=timezone,
        default_region=region.upper(),
        locale=locale,
    )


def outcome_locale(outcome: CallOutcome, default: str) -> str:
    """The language the caller spoke (the outcome's ``locale``: ``ru``, or ``ru-RU`` from a
    writer that names the region too), else ``default`` (an outcome written before outcomes
    said their language)."""
    said = outcome.locale
    if said and (m := _LOCALE.match(said.strip().lower())):
        return m.group(0)
    return default


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """A callback an inbound caller asked for, as the store keeps it."""

    call_id: str
    contact: ContactRow
    #: When to call: the moment they asked for, else ``callback_after_min`` after their call.
    due: datetime
    requested_at: datetime

    @property
    def consent(self) -> str:
        return f"asked for a callback on call {self.call_id}"


def callback_number(outcome: CallOutcome, region: str) -> str | None:
    """The number to call back in E.164: the one the caller gave on the call, else their caller
    id; None when neither is a number (a withheld caller id says ``anonymous``)."""
    for raw in (outcome.slots.phone, outcome.caller):
        if raw:
            with contextlib.suppress(InvalidInput):
                return normalize_number(raw, region)
    return None


def callback_request(
    outcome: CallOutcome, *, region: str, retry: RetryPolicy
) -> CallbackRequest | None:
    """The callback an outcome asks for; None unless it is an inbound ``callback`` with a number
    to call."""
    if outcome.direction != "inbound" or outcome.status != "callback":
        return None
    phone = callback_number(outcome, region)
    if phone is None:
        return None
    requested_at = _aware(outcome.ended_at)
    due = requested_callback_at(outcome) or requested_at + timedelta(
        minutes=retry.callback_after_min
    )
    fields = {REQUEST_FIELD: outcome.call_id, REQUESTED_AT_FIELD: requested_at.isoformat()}
    name = (outcome.slots.client_name or "").strip()
    if outcome.slots.study_type:
        fields[STUDY_FIELD] = outcome.slots.study_type
    if name:
        fields[NAME_FIELD] = name
    contact = ContactRow(
        row=1,  # no file: the header's line
        phone=phone,
        name=name or None,
        timezone=number_timezone(phone),
        fields=fields,
    )
    return CallbackRequest(outcome.call_id, contact, due, requested_at)


def requested_callback_at(outcome: CallOutcome) -> datetime | None:
    """The ``callback_at`` the dialog recorded (ISO-8601; UTC when it names no zone)."""
    value = (outcome.slots.model_extra or {}).get("callback_at")
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return _aware(datetime.fromisoformat(value))
    return None


def supersedes(request: CallbackRequest, fields: dict[str, Any]) -> bool:
    """Whether ``request`` is newer than the one a contact's ``fields`` hold (a contact of
    another origin holds none): the same request read again, or an older one, is not."""
    if fields.get(REQUEST_FIELD) == request.call_id:
        return False
    held = fields.get(REQUESTED_AT_FIELD)
    if isinstance(held, str):
        with contextlib.suppress(ValueError):
            return request.requested_at > _aware(datetime.fromisoformat(held))
    return True


def request_fields(request: CallbackRequest, attempts_before: int) -> dict[str, str]:
    """The fields of a contact that carries ``request`` after ``attempts_before`` attempts."""
    return request.contact.fields | {ATTEMPTS_BEFORE_FIELD: str(attempts_before)}


def attempts_before(fields: dict[str, Any]) -> int:
    """The contact's attempts before its current request (0 for a contact of no request)."""
    try:
        return max(0, int(fields.get(ATTEMPTS_BEFORE_FIELD, 0)))
    except (TypeError, ValueError):
        return 0


def attempts_spent(attempts: int, fields: dict[str, Any]) -> int:
    """The attempts of the contact's current request (its retry budget counts these)."""
    return max(0, attempts - attempts_before(fields))


def _aware(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
