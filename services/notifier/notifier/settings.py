"""Notifier configuration (environment prefix ``NOTIFY_``)."""

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from callkit.settings import ServiceSettings, prefixed_config


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
