"""Where call rows go: a local CSV file (the embedded default) or Google Sheets."""

from notifier.sinks.base import Sink
from notifier.sinks.csv import CsvSink

__all__ = ["CsvSink", "Sink"]
