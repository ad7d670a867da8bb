"""The number a call can be called back on, and when there is none.

An inbound call's caller id is whatever the switch passed in call.started: a number, or, when
the caller withholds it, FreeSWITCH's ``anonymous`` (some carriers send ``unknown``,
``restricted`` or nothing at all). Only a caller id that reads as a phone number of the
clinic's country (or a full international one) is a number the clinic can call; a number the
caller gave on the call (the ``phone`` slot) comes before it.
"""

from __future__ import annotations

import phonenumbers

from policy_engine.parsers import plausible_number, region_of


def caller_number(raw: str | None, default_country_code: str) -> str | None:
    """The caller id in E.164, or None when it is no number the clinic could dial: missing,
    withheld (``anonymous``), or text that is no plausible number (``0000000000``)."""
    text = (raw or "").strip()
    if not any(c.isdigit() for c in text):
        return None
    try:
        number = phonenumbers.parse(text, region_of(default_country_code))
    except phonenumbers.NumberParseException:
        return None
    if number.extension or not plausible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
