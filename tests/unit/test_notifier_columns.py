"""The sheet row of an outcome: every column from the shared outcome contract."""

from __future__ import annotations

import json

from callkit.contracts.outcome import parse_entry
from notifier.columns import Layout

OUTCOME = {
    "version": 1,
    "call_id": "call-0001",
    "direction": "inbound",
    "caller": "+15551230000",
    "started_at": "2026-11-21T10:00:00+00:00",
    "ended_at": "2026-11-21T10:03:05+00:00",
    "duration_s": 185.2,
    "status": "booked",
    "slots": {
        "client_name": "Jon Smith",
        "study_type": "MRI of the knee",
        "appointment_date": "2026-11-24",
        "appointment_time": "15:30",
        "price": 510,
        "currency": "USD",
    },
    "recording_path": "recordings/call-0001.wav",
    "latency": {"v2v_ms": [820.0, 760.0], "barge_ins": 0, "barge_in_stop_ms": []},
}


def test_the_row_holds_the_recording_path_and_the_booking() -> None:
    outcome = parse_entry({b"outcome": json.dumps(OUTCOME).encode()})
    layout = Layout.build(locale="en")
    row = dict(zip(layout.header, layout.row(outcome), strict=True))
    assert row["Recording"] == "recordings/call-0001.wav"
    assert row["Appointment"] == "2026-11-24 15:30"
    assert row["Price"] == "510 USD"
    assert row["Status"] == "booked"
    assert row["Duration (s)"] == "185"


def test_a_call_without_a_recording_leaves_the_cell_empty() -> None:
    outcome = parse_entry({b"outcome": json.dumps(OUTCOME | {"recording_path": None}).encode()})
    layout = Layout.build(["call_id", "recording"], locale="ru")
    assert layout.row(outcome) == ["call-0001", ""]
