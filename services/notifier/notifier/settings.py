"""Notifier configuration (environment prefix ``NOTIFY_``)."""

import os
import socket
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from callkit.contracts.streams import CALLS_COMPLETED, CALLS_DEAD
from callkit.settings import ServiceSettings, prefixed_config
from notifier.columns import DEFAULT_LAYOUT, DEFAULT_TIMEZONE, clinic_zone


class NotifySettings(ServiceSettings):
    model_config = prefixed_config("NOTIFY_")
    service_name: ClassVar[str] = "notifier"

    port: int = Field(
        8085, ge=1, le=65535, description="TCP port of the health and metrics endpoints."
    )
    sink: Literal["csv", "sheets"] = Field(
        "csv", description="Where call rows go: a local CSV file or Google Sheets."
    )
    csv_path: Path = Field(Path("data/calls.csv"), description="CSV sink file (NOTIFY_SINK=csv).")
    google_credentials_file: Path | None = Field(
        None, description="Service-account JSON key file, mounted read-only (NOTIFY_SINK=sheets)."
    )
    spreadsheet_id: str | None = Field(
        None, description="The spreadsheet's id, from its URL (NOTIFY_SINK=sheets)."
    )
    worksheet: str = Field("Лист4", min_length=1, description="Worksheet (tab) the rows go to.")
    sheets_api_url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="Send Sheets API calls here instead of Google (an emulator or proxy).",
    )
    sheets_timeout_s: float = Field(
        20.0, gt=0, le=300, description="Timeout of one Sheets API call, in seconds."
    )
    locale: Literal["ru", "en"] = Field(
        "ru",
        description="The sheet's language: Russian headers as in the original worksheet, status "
        "names, dates and a summary in Russian; or English (status keys, the call's own summary).",
    )
    timezone: str = Field(
        DEFAULT_TIMEZONE,
        min_length=1,
        description="The clinic's time zone (IANA name, as in the clinic's schedule.yaml): "
        "the timestamp and call-back times are written in it, e.g. Europe/Moscow.",
    )
    columns: list[str] = Field(
        list(DEFAULT_LAYOUT), description="Column layout, as a JSON list of column keys."
    )
    stream: str = Field(
        CALLS_COMPLETED, min_length=1, description="Redis stream of finished calls."
    )
    dead_stream: str = Field(
        CALLS_DEAD, min_length=1, description="Redis stream for entries that cannot be written."
    )
    group: str = Field(
        "notifier", min_length=1, description="Consumer group shared by notifier replicas."
    )
    consumer: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
        description="This replica's consumer name.",
    )
    batch: int = Field(50, ge=1, le=1000, description="Entries taken and rows appended per batch.")
    claim_idle_ms: int = Field(
        60000,
        ge=100,
        description="Pending entries idle this long are claimed from a crashed replica.",
    )
    block_ms: int = Field(
        2000,
        ge=10,
        le=60000,
        description="Longest wait for new entries in one read; shutdown waits for it too.",
    )
    max_deliveries: int = Field(
        5,
        ge=1,
        le=100,
        description="Deliveries after which a failing entry goes to the dead stream.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        clinic_zone(value)  # an unknown name stops start-up with the reason
        return value

    @model_validator(mode="after")
    def _sheets_needs_credentials(self) -> "NotifySettings":
        if self.sink == "sheets":
            missing = [
                name
                for name, value in (
                    ("NOTIFY_GOOGLE_CREDENTIALS_FILE", self.google_credentials_file),
                    ("NOTIFY_SPREADSHEET_ID", self.spreadsheet_id),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"NOTIFY_SINK=sheets needs {' and '.join(missing)}")
        return self
