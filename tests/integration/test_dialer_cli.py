"""`agent-campaign` as ops run it, against a served dialer (real SQLite, Redis, callsim's ESL)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import serving_in_thread

from dialer.app import create_app
from dialer.cli import bar, main, progress_line
from dialer.settings import DialerSettings

TOKEN = secrets.token_urlsafe(24)


@pytest.fixture
def url(
    tmp_path: Path,
    redis_url: str,
    esl_emulator: tuple[int, str],
    key_prefix: str,
    free_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    settings = DialerSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}",
        redis_url=redis_url,
        api_token=TOKEN,
        esl_port=esl_emulator[0],
        esl_password=esl_emulator[1],
        group=f"{key_prefix}dialer",
        completed_stream=f"{key_prefix}calls:completed",
    )
    monkeypatch.setenv("DIALER_API_TOKEN", TOKEN)
    with serving_in_thread(create_app(settings, run_loop=False), free_port) as base:
        monkeypatch.setenv("DIALER_URL", base)
        yield base


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_campaign_from_a_csv_to_a_paused_one(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "contacts.csv"
    # An Excel export in a Russian locale: Windows-1251, semicolons.
    csv.write_bytes(
        "телефон;имя;исследование\n+7 495 123-45-67;Иван Петров;МРТ колена\nнет;Никто;\n".encode(
            "cp1251"
        )
    )
    code, out, _ = run(
        capsys, "create", str(csv), "--name", "Колено", "--region", "RU",
        "--timezone", "Europe/Moscow", "--profile", "ru",
    )  # fmt: skip
    assert code == 0
    assert "1 contacts imported" in out
    assert "1 rows rejected" in out
    assert "row 3:" in out
    campaign = out.split()[1].rstrip(":")
    code, out, _ = run(capsys, "--json", "contacts", campaign)
    (contact,) = json.loads(out)
    assert (contact["phone"], contact["name"], contact["timezone"]) == (
        "+74951234567",
        "Иван Петров",
        "Europe/Moscow",
    )
    assert run(capsys, "start", campaign)[0] == 0
    code, out, _ = run(capsys, "pause", campaign)
    assert code == 0
    assert "state   paused" in out
    code, out, _ = run(capsys, "--json", "status", campaign)
    assert json.loads(out)["state"] == "paused"
    code, out, _ = run(capsys, "list")
    assert campaign in out


def test_the_do_not_call_list_and_errors_in_words(
    url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "dnc", "add", "(212) 555-0142")[1].strip() == "+12125550142: added"
    assert "already listed" in run(capsys, "dnc", "add", "+1 212 555 0142")[1]
    assert "+12125550142" in run(capsys, "dnc", "list")[1]
    assert run(capsys, "dnc", "remove", "+12125550142")[0] == 0
    code, _, err = run(capsys, "dnc", "remove", "+12125550142")
    assert code == 1
    assert "404" in err
    assert "not on the do-not-call list" in err
    code, _, err = run(capsys, "start", "no-such-campaign")
    assert code == 1
    assert "no campaign" in err
    code, _, err = run(capsys, "--token", "wrong-token-wrong-token", "list")
    assert code == 1
    assert "401" in err
    monkeypatch.delenv("DIALER_API_TOKEN")
    code, _, err = run(capsys, "list")
    assert code == 1
    assert "DIALER_API_TOKEN" in err
    code, _, err = run(
        capsys, f"--token={TOKEN}", "--url", "http://127.0.0.1:9", "--timeout", "2", "list"
    )
    assert code == 1
    assert "cannot reach the dialer" in err


def test_the_progress_line_shows_finished_contacts_and_outcomes() -> None:
    assert bar(3, 12, width=12) == "[###.........] 3/12"
    line = progress_line(
        {
            "state": "running",
            "counts": {
                "state": {"done": 5, "skipped": 1, "dialing": 2, "pending": 4},
                "outcome": {"booked": 2, "busy": 3, "skipped_dnc": 1, "no_answer": 0},
            },
        }
    )
    assert "6/12" in line
    assert "live 2" in line
    assert "booked 2, busy 3, skipped_dnc 1" in line
    assert "no_answer" not in line
