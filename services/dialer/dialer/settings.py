"""Dialer configuration (environment prefix ``DIALER_``)."""

import os
import socket
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator

from callkit.contracts.streams import CALLS_COMPLETED
from callkit.errors import InvalidInput
from callkit.settings import ServiceSettings, prefixed_config
from dialer.core.windows import zone


class DialerSettings(ServiceSettings):
    model_config = prefixed_config("DIALER_")
    service_name: ClassVar[str] = "dialer"

    port: int = Field(8086, ge=1, le=65535, description="TCP port of the campaign API.")
    database_url: str = Field(
        "sqlite+aiosqlite:///data/dialer.db",
        pattern=r"^(sqlite\+aiosqlite|postgresql\+asyncpg)://",
        description="Campaign database: an SQLite file, or PostgreSQL (postgresql+asyncpg://).",
    )
    api_token: SecretStr = Field(
        min_length=16,
        description="Bearer token every campaign API call must carry (required; never logged).",
    )
    default_region: str = Field(
        "US",
        pattern=r"^[A-Z]{2}$",
        description="ISO country of do-not-call numbers given without a +country code.",
    )
    esl_host: str = Field("127.0.0.1", description="FreeSWITCH event socket host.")
    esl_port: int = Field(8021, ge=1, le=65535, description="FreeSWITCH event socket port.")
    esl_password: SecretStr = Field(
        description="FreeSWITCH event socket password (required; never logged)."
    )
    dialplan_target: str = Field(
        "outbound XML agent",
        pattern=r"^[A-Za-z0-9_.-]+ XML [A-Za-z0-9_.-]+$",
        description="Where an answered call goes: '<extension> XML <context>' of the dialplan.",
    )
    replica: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
        min_length=1,
        description="This replica's name on its claims (leases) and slots.",
    )
    tick_s: float = Field(0.5, gt=0, le=10, description="How often campaigns are looked at.")
    lease_s: float = Field(
        60.0,
        ge=5,
        le=3600,
        description="A claim's lease; renewed while its call lasts, taken over when its replica "
        "dies.",
    )
    max_call_s: float = Field(
        900.0, gt=0, description="Longest call; a number's one-call lock expires after it."
    )
    outcome_wait_s: float = Field(
        120.0,
        gt=0,
        description="After an answered call hangs up, how long to wait for the dialog's outcome "
        "before finishing the contact as failed.",
    )
    completed_stream: str = Field(
        CALLS_COMPLETED, min_length=1, description="Stream of finished calls (read and written)."
    )
    group: str = Field(
        "dialer", min_length=1, description="Consumer group of the dialer's replicas on it."
    )
    callback_locale: str = Field(
        "en",
        pattern=r"^[a-z]{2}$",
        description="Language of a callback whose call's outcome does not say the caller's (its "
        "callbacks campaign and the script's locale): the clinic's language, ru with clinic_ru.",
    )
    callback_timezone: str = Field(
        "UTC",
        min_length=1,
        description="IANA zone of the callbacks campaign: the calling window of numbers "
        "phonenumbers cannot place in one zone (Russian mobiles), e.g. Europe/Moscow.",
    )

    @field_validator("callback_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zone(value)  # an unknown name stops start-up with the reason
        except InvalidInput as exc:
            raise ValueError(exc.message) from None
        return value
