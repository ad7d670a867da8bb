"""The dialer's campaign API as ops use it: real database (SQLite and PostgreSQL), real Redis,
callsim's Event Socket; the dialing loop is off, so campaigns stay where the API puts them."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from dialer_harness import api_settings
from fastapi.testclient import TestClient

from dialer.app import create_app

TOKEN = secrets.token_urlsafe(24)
CSV = (
    "phone,name,timezone,interest\n"
    "+1 (212) 555-0142,Ann Lee,,knee MRI\n"
    "212-555-0142,Ann L.,,duplicate of the first\n"
    "123 456 7890,Nobody,,not a real number\n"
    "+44 20 7946 0958,Bob Grey,Europe/London,head CT\n"
    "+7 495 123-45-67,Ivan,Mars/Olympus,bad zone\n"
)


@pytest.fixture
def api(
    database_url: str, redis_url: str, esl_emulator: tuple[int, str], key_prefix: str
) -> Iterator[TestClient]:
    settings = api_settings(database_url, redis_url, esl_emulator, key_prefix, TOKEN)
    with TestClient(create_app(settings, run_loop=False)) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield client


def create_csv(api: TestClient, **fields: str) -> dict[str, Any]:
    reply = api.post(
        "/campaigns",
        data={"name": "Knee follow-up", **fields},
        files={"file": ("contacts.csv", CSV.encode(), "text/csv")},
    )
    assert reply.status_code == 201, reply.text
    created: dict[str, Any] = reply.json()
    return created


def test_every_campaign_route_needs_the_token(api: TestClient) -> None:
    api.headers.pop("Authorization")
    for auth in (None, "Bearer wrong-token-wrong-token", f"Basic {TOKEN}"):
        headers = {} if auth is None else {"Authorization": auth}
        reply = api.get("/campaigns", headers=headers)
        assert reply.status_code == 401
        assert reply.json()["code"] == "unauthorized"
    assert api.post("/dnc", json={"number": "+12125550142"}).status_code == 401
    assert api.post("/campaigns/x/start").status_code == 401
    assert api.get("/health").status_code == 200  # ops endpoints stay open
    assert api.get("/campaigns", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_a_csv_import_reports_bad_rows_and_merges_duplicates(api: TestClient) -> None:
    created = create_csv(api, default_region="US", timezone="America/New_York")
    assert created["imported"] == 2
    assert created["errors_total"] == 2
    rows = {error["row"]: error for error in created["errors"]}
    assert set(rows) == {4, 6}
    assert "valid" in rows[4]["error"]
    assert "time zone" in rows[6]["error"]
    assert rows[6]["value"] == "Mars/Olympus"
    contacts = api.get(f"/campaigns/{created['id']}/contacts").json()
    by_phone = {c["phone"]: c for c in contacts}
    assert set(by_phone) == {"+12125550142", "+442079460958"}
    assert by_phone["+12125550142"]["name"] == "Ann Lee"  # the first row of a duplicate wins
    assert by_phone["+442079460958"]["timezone"] == "Europe/London"
    assert all(c["state"] == "pending" for c in contacts)
    view = api.get(f"/campaigns/{created['id']}").json()
    assert view["state"] == "draft"
    assert view["counts"]["state"]["pending"] == 2
    assert sum(view["counts"]["state"].values()) == 2


def test_a_json_campaign_and_its_lifecycle(api: TestClient) -> None:
    reply = api.post(
        "/campaigns",
        json={
            "campaign": {"name": "Reminders", "purpose": "service", "concurrency": 3},
            "contacts": [{"phone": "+12125550143", "name": "Eve", "study": "knee"}],
        },
    )
    assert reply.status_code == 201, reply.text
    campaign = reply.json()["id"]
    for action, state in (
        ("start", "running"),
        ("start", "running"),  # idempotent
        ("pause", "paused"),
        ("pause", "paused"),
        ("resume", "running"),
        ("cancel", "cancelled"),
        ("cancel", "cancelled"),
    ):
        reply = api.post(f"/campaigns/{campaign}/{action}")
        assert reply.status_code == 200, (action, reply.text)
        assert reply.json()["state"] == state
    refused = api.post(f"/campaigns/{campaign}/start")
    assert refused.status_code == 400
    assert "cancelled" in refused.json()["detail"]
    assert api.post("/campaigns/no-such-id/start").status_code == 404


@pytest.mark.parametrize(
    ("campaign", "refusal"),
    [
        ({"profile": "ru", "purpose": "marketing", "timezone": "Europe/Moscow"}, "38-FZ"),
        ({"profile": "us", "purpose": "marketing"}, "consent"),
        (
            {"windows": json.dumps({"hours": {"mon": [{"start": "18:00", "end": "09:00"}]}})},
            "mon",
        ),
    ],
    ids=["ru-marketing", "us-marketing-without-consent", "a-window-ending-before-it-starts"],
)
def test_a_campaign_that_breaks_the_rules_does_not_start(
    api: TestClient, campaign: dict[str, str], refusal: str
) -> None:
    created = create_csv(api, **campaign)
    reply = api.post(f"/campaigns/{created['id']}/start")
    assert reply.status_code == 400
    assert reply.json()["code"] == "not_startable"
    assert refusal in reply.json()["detail"]
    assert api.get(f"/campaigns/{created['id']}").json()["state"] == "draft"


def test_bad_uploads_are_refused_with_the_reason(api: TestClient) -> None:
    no_phone = api.post(
        "/campaigns",
        data={"name": "x"},
        files={"file": ("c.csv", b"name,city\nAnn,Paris\n", "text/csv")},
    )
    assert no_phone.status_code == 400
    assert "phone" in no_phone.json()["detail"]
    assert api.get("/campaigns").json() == []  # no empty campaign left behind
    bad_json = api.post(
        "/campaigns", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400
    bad_spec = api.post("/campaigns", json={"campaign": {"name": ""}, "contacts": []})
    assert bad_spec.status_code == 400
    assert "name" in bad_spec.json()["detail"]
    text = api.post("/campaigns", content=b"phone\n", headers={"Content-Type": "text/plain"})
    assert text.status_code == 400


def test_the_do_not_call_list(api: TestClient) -> None:
    created = create_csv(api, default_region="US")
    added = api.post("/dnc", json={"number": "(212) 555-0142"})
    assert added.status_code == 200
    assert added.json() == {"number": "+12125550142", "changed": True}
    assert api.post("/dnc", json={"number": "+1 212 555 0142"}).json()["changed"] is False
    listed = api.get("/dnc").json()
    assert [entry["number"] for entry in listed] == ["+12125550142"]
    # The listed number's contact is skipped at once, in every campaign.
    contacts = {c["phone"]: c for c in api.get(f"/campaigns/{created['id']}/contacts").json()}
    assert contacts["+12125550142"]["state"] == "skipped"
    assert contacts["+12125550142"]["outcome"] == "skipped_dnc"
    assert api.delete("/dnc/+12125550142").status_code == 200
    missing = api.delete("/dnc/+12125550142")
    assert missing.status_code == 404
    assert api.post("/dnc", json={"number": "not a number"}).status_code == 400
