"""The dialer's campaign API fuzzed from its own OpenAPI schema (tests/fuzzing.py), on each
database it runs on (an SQLite file, PostgreSQL) with real Redis and callsim's Event Socket: no
input may earn a 5xx, every answer is one the schema documents, and nothing a fuzzed request
did leaves the store unreadable for the campaign a user created before it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from dialer_harness import api_settings
from fastapi.testclient import TestClient
from fuzzing import every_operation_tried, fuzz, summary

from dialer.app import create_app

TOKEN = secrets.token_urlsafe(24)
#: Inputs per operation: fewer than the in-process suite's, as each one is a database round trip.
EXAMPLES = 20


@pytest.fixture(scope="module", autouse=True)
def _summary() -> Iterator[None]:
    yield
    print("\n" + summary())


def test_no_input_earns_a_server_error(
    database_url: str, redis_url: str, esl_emulator: tuple[int, str], key_prefix: str
) -> None:
    settings = api_settings(database_url, redis_url, esl_emulator, key_prefix, TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    kind = database_url.split(":", 1)[0].split("+", 1)[0]
    app = create_app(settings, run_loop=False)
    with TestClient(app) as client:
        created = client.post(
            "/campaigns",
            headers=auth,
            json={
                "campaign": {"name": "Before the fuzz"},
                "contacts": [{"phone": "+12125550142"}],
            },
        )
        assert created.status_code == 201, created.text
    tried = fuzz(app, examples=EXAMPLES, headers=auth, name=f"dialer ({kind})")
    every_operation_tried(tried, app)
    with TestClient(app) as client:
        # The store still answers, and the campaign made before the fuzz is still there whole.
        campaign = client.get(f"/campaigns/{created.json()['id']}", headers=auth)
        assert campaign.status_code == 200
        assert campaign.json()["name"] == "Before the fuzz"
        contacts = client.get(f"/campaigns/{created.json()['id']}/contacts", headers=auth)
        assert [c["phone"] for c in contacts.json()] == ["+12125550142"]
        # The fuzzed requests carried the token: the valid ones reached the store.
        assert len(client.get("/campaigns", headers=auth).json()) > 1
