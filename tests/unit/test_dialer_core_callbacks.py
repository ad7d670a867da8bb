"""Inbound callbacks: which outcome asks for one, which number is called back and when, the
standing campaign that keeps them, and the opening the callback call says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callkit.contracts.campaign import CampaignCall
from callkit.contracts.outcome import CallOutcome, Slots
from dialer.core import callbacks
from dialer.core.compliance import campaign_problems
from dialer.core.states import Profile, Purpose
from dialer.spec import RetryPolicy
from policy_engine.outbound import call_reason, contact_study
from policy_engine.script import load_script

PROMPTS = Path(__file__).parents[2] / "prompts"
ENDED = datetime(2026, 11, 23, 15, 4, tzinfo=UTC)
ASKED = "2026-11-24T23:00:00+00:00"  # "tomorrow after six" in New York
RETRY = RetryPolicy()


def inbound(
    status: str = "callback",
    *,
    caller: str | None = "+12125550142",
    call_id: str = "in-1",
    ended: datetime = ENDED,
    **slots: Any,
) -> CallOutcome:
    return CallOutcome(
        call_id=call_id,
        direction="inbound",
        caller=caller,
        callee="+12125550100",
        started_at=ended - timedelta(minutes=2),
        ended_at=ended,
        duration_s=120,
        status=status,  # type: ignore[arg-type]
        slots=Slots(**slots),
    )


def request(outcome: CallOutcome, region: str = "US") -> callbacks.CallbackRequest:
    found = callbacks.callback_request(outcome, region=region, retry=RETRY)
    assert found is not None
    return found


def test_a_callback_at_a_named_moment_is_due_then_on_the_callers_own_number() -> None:
    found = request(
        inbound(client_name="Anna Smith", study_type="MRI of the knee", callback_at=ASKED)
    )
    assert found.due == datetime(2026, 11, 24, 23, 0, tzinfo=UTC)
    assert found.requested_at == ENDED
    assert (found.contact.phone, found.contact.name) == ("+12125550142", "Anna Smith")
    assert found.contact.timezone == "America/New_York"  # its calling window is New York's
    assert found.contact.fields == {
        "callback_of": "in-1",
        "callback_requested_at": ENDED.isoformat(),
        "callback_study": "MRI of the knee",
        "callback_name": "Anna Smith",
    }
    assert "in-1" in found.consent


def test_without_a_moment_it_is_due_after_the_campaigns_callback_delay() -> None:
    found = request(inbound())
    assert found.due == ENDED + timedelta(minutes=RETRY.callback_after_min)
    assert set(found.contact.fields) == {"callback_of", "callback_requested_at"}


@pytest.mark.parametrize(
    ("caller", "dictated", "region", "called"),
    [
        ("+12125550142", "+12125550199", "US", "+12125550199"),  # the number they gave wins
        ("anonymous", "+12125550199", "US", "+12125550199"),
        ("2125550142", None, "US", "+12125550142"),  # a national caller id, the dialer's region
        ("8 916 123-45-67", None, "RU", "+79161234567"),
        ("anonymous", None, "US", None),  # a withheld caller id and no number given
        ("0000000000", None, "US", None),
        (None, None, "US", None),
        ("", "not a number", "US", None),
    ],
)
def test_the_number_called_back(
    caller: str | None, dictated: str | None, region: str, called: str | None
) -> None:
    outcome = inbound(caller=caller, phone=dictated)
    assert callbacks.callback_number(outcome, region) == called
    found = callbacks.callback_request(outcome, region=region, retry=RETRY)
    assert (found.contact.phone if found else None) == called


@pytest.mark.parametrize("status", ["booked", "not_interested", "opt_out", "incomplete"])
def test_only_a_callback_asks_for_one(status: str) -> None:
    assert callbacks.callback_request(inbound(status), region="US", retry=RETRY) is None


def test_an_outbound_callback_is_its_own_campaigns_retry() -> None:
    outbound = inbound().model_copy(update={"direction": "outbound"})
    assert callbacks.callback_request(outbound, region="US", retry=RETRY) is None


def test_the_standing_campaign_has_one_id_per_language_on_every_replica() -> None:
    en, ru = callbacks.campaign_id("en"), callbacks.campaign_id("ru")
    assert en == callbacks.campaign_id("en")
    assert en != ru
    assert len(en) == 36  # the campaigns table's id
    spec = callbacks.campaign_spec("ru", region="RU", timezone="Europe/Moscow")
    assert callbacks.is_standing(ru, spec)
    assert not callbacks.is_standing(en, spec)  # another language's id is another campaign


@pytest.mark.parametrize(
    ("region", "profile"),
    [("US", Profile.US), ("GB", Profile.UK), ("RU", Profile.RU), ("DE", Profile.NONE)],
)
def test_the_standing_campaign_keeps_the_rules_of_the_dialers_region(
    region: str, profile: Profile
) -> None:
    spec = callbacks.campaign_spec("en", region=region)
    assert (spec.profile, spec.purpose, spec.locale) == (profile, Purpose.SERVICE, "en")
    # It starts under its profile like any campaign an operator would start.
    assert campaign_problems(spec, contacts=1, contacts_without_consent=1) == []


def test_a_request_read_again_or_an_older_one_changes_nothing() -> None:
    first = request(inbound(call_id="in-1", ended=ENDED))
    held = callbacks.request_fields(first, 0)
    assert not callbacks.supersedes(first, held)  # the same entry delivered twice
    newer = request(inbound(call_id="in-2", ended=ENDED + timedelta(hours=1)))
    older = request(inbound(call_id="in-0", ended=ENDED - timedelta(hours=1)))
    assert callbacks.supersedes(newer, held)
    assert not callbacks.supersedes(older, held)
    assert callbacks.supersedes(first, {"study": "knee MRI"})  # a contact of no request


def test_a_new_request_has_a_fresh_attempt_budget() -> None:
    fields = callbacks.request_fields(request(inbound()), attempts_before=3)
    assert callbacks.attempts_spent(3, fields) == 0
    assert callbacks.attempts_spent(5, fields) == 2
    assert callbacks.attempts_spent(2, {}) == 2  # a contact of no request counts them all


@pytest.mark.parametrize(
    ("said", "default", "locale"),
    [
        ("ru", "en", "ru"),
        ("ru-RU", "en", "ru"),
        ("EN", "ru", "en"),
        (None, "ru", "ru"),  # written before outcomes said their language: the dialer's own
        ("", "en", "en"),
        ("?", "ru", "ru"),
    ],
)
def test_the_callers_language_when_the_outcome_says_it(
    said: str | None, default: str, locale: str
) -> None:
    outcome = inbound().model_copy(update={"locale": said})
    assert callbacks.outcome_locale(CallOutcome.model_validate(outcome.model_dump()), default) == (
        locale
    )


def opening_call(found: callbacks.CallbackRequest, locale: str) -> CampaignCall:
    return CampaignCall(
        call_id="out-1",
        campaign_id=callbacks.campaign_id(locale),
        contact_id="k-1",
        attempt=1,
        campaign_name="Callbacks",
        purpose="service",
        locale=locale,
        phone=found.contact.phone,
        name=found.contact.name,
        fields=found.contact.fields,
    )


@pytest.mark.parametrize(
    ("clinic", "locale", "slots", "reason", "study"),
    [
        (
            "clinic",
            "en",
            {"client_name": "Anna Smith", "study_type": "MRI of the knee"},
            "back, as you asked, about an MRI of the knee",
            "mri_knee",
        ),
        ("clinic", "en", {"client_name": "Anna Smith"}, "back, Anna Smith, as you asked", None),
        (
            "clinic_ru",
            "ru",
            {"client_name": "Анна", "study_type": "МРТ коленного сустава"},
            "вам, как вы и просили, по поводу МРТ коленного сустава",
            "mri_knee",
        ),
        ("clinic_ru", "ru", {"client_name": "Анна"}, "вам, Анна, как вы и просили", None),
    ],
)
def test_the_callback_call_says_the_caller_asked_for_it(
    clinic: str, locale: str, slots: dict[str, str], reason: str, study: str | None
) -> None:
    """What the script's opening makes of the callback contact's fields: "I'm calling back, as
    you asked, about an MRI of the knee", and the study it names is not asked for again."""
    script = load_script(PROMPTS / clinic)
    call = opening_call(request(inbound(**slots)), locale)
    assert call_reason(script, call, locale) == reason
    assert contact_study(script, call, locale) == study
