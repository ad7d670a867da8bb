"""A call the clinic places: what the dialer's campaign context brings to its opening.

Before each originate the dialer writes the call's :class:`CampaignCall` (the campaign's
purpose, the contact's name, number and other columns) to ``campaign:call:{call_id}``. The
engine reads it on an outbound ``call.started`` through ``CampaignCalls``: the opening says why
the clinic calls (``call_reason``), and what the contact list already knows (the name, the
number, a study it names) is not asked again. Without it the opening gives the script's
generic reason.
"""

from __future__ import annotations

import re
from typing import Protocol

from callkit.contracts.campaign import CampaignCall
from policy_engine.script import Script
from policy_engine.understand import study_in

# A contact list's cell is free text: said inside a sentence, it is kept short and plain.
MAX_VALUE_CHARS = 80


class CampaignCalls(Protocol):
    """The dialer's context of the calls it places, by call id."""

    async def get(self, call_id: str) -> CampaignCall | None:
        """The call's context; None when there is none (or it cannot be read)."""


def _plain(value: str) -> str:
    text = re.sub(r"[{}<>\[\]\"]", " ", value)
    text = re.sub(r"\s+", " ", text).strip(" .,;:!?")
    return text[:MAX_VALUE_CHARS].rstrip()


def contact_study(script: Script, call: CampaignCall | None, locale: str) -> str | None:
    """The catalogue study a column that names studies names ("knee MRI": ``mri_knee``), in
    the call's language or another of the script's (a contact list written in English for a call
    in Russian)."""
    if call is None or script.outbound is None:
        return None
    languages = [locale, *(other for other in script.locales if other != locale)]
    for reason in script.outbound.reasons:
        cell = call.fields.get(reason.field, "").strip()
        if not (reason.names_study and cell):
            continue
        for need_modality in (True, False):
            for language in languages:
                study = study_in(cell, script, language, need_modality=need_modality)
                if study is not None:
                    return study
    return None


def call_reason(script: Script, call: CampaignCall | None, locale: str) -> str | None:
    """Why the clinic calls, as the opening says it ("about your request for an MRI of the
    knee"): the first reason whose column the contact has, else the campaign's purpose, else
    the script's default. None for a script without outbound calls."""
    outbound = script.outbound
    if outbound is None:
        return None
    if call is not None:
        for reason in outbound.reasons:
            cell = _plain(call.fields.get(reason.field, ""))
            if not cell:
                continue
            study = contact_study(script, call, locale) if reason.names_study else None
            value = script.catalogue.study(study).name[locale] if study else cell
            return reason.say[locale].replace("{value}", value)
        purpose = outbound.purposes.get(call.purpose)
        if purpose is not None:
            return purpose[locale]
    return outbound.default[locale]
