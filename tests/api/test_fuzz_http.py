"""Every HTTP API fuzzed from its own OpenAPI schema (tests/fuzzing.py), each app in process on
the fakes of conftest.py, so nothing leaves the process. The dialer's API, which needs its real
database and Redis scripts, is fuzzed in tests/integration/test_dialer_fuzz.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import echo_llm_app
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fuzzing import every_operation_tried, fuzz, summary
from policy_fakes import MemoryCalendar, MemoryDeadlines, MemoryPublisher, MemorySessions

from callkit.models import ModelStore
from llm.app import create_app as llm_app
from llm.settings import LlmSettings
from policy_engine.app import create_app as policy_app
from policy_engine.script import load_script
from policy_engine.settings import PolicySettings

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module", autouse=True)
def _summary() -> Iterator[None]:
    yield
    print("\n" + summary())


def test_asr_gateway(asr: FastAPI) -> None:
    every_operation_tried(fuzz(asr), asr)


def test_tts_gateway(tts: FastAPI) -> None:
    every_operation_tried(fuzz(tts), tts)


def test_notifier(notifier: FastAPI) -> None:
    every_operation_tried(fuzz(notifier), notifier)


def test_fs_bridge(bridge: FastAPI) -> None:
    every_operation_tried(fuzz(bridge), bridge)


def test_llm_service_shell() -> None:
    def serve(settings: LlmSettings, models: ModelStore) -> FastAPI:
        return echo_llm_app(settings.served_model_name)

    # The served model's own routes belong to llama.cpp's server (here a stand-in); the service
    # adds the ops routes around it.
    ops = frozenset({"/health", "/ready", "/metrics"})
    app = llm_app(LlmSettings.load(served_model_name="clinic-agent"), serve=serve)
    every_operation_tried(fuzz(app, paths=ops, name="llm"), app, ops)


def test_policy_engine() -> None:
    script_dir = ROOT / "prompts" / "clinic"
    settings_ = PolicySettings.load(
        llm_enabled=False,
        script_dir=script_dir,
        system_prompt_file=ROOT / "prompts" / "system.en.txt",
        max_body_bytes=4096,
        redis_url="redis://127.0.0.1:1/0",
    )
    app = policy_app(
        settings_,
        sessions=MemorySessions(),
        calendar=MemoryCalendar(load_script(script_dir).schedule),
        publisher=MemoryPublisher(),
        deadlines=MemoryDeadlines(),
    )
    every_operation_tried(fuzz(app), app)
    with TestClient(app, raise_server_exceptions=False) as client:
        # Within the size limit, nested deeper than any JSON parser goes.
        deep = client.post("/dialog", content=b"[" * 4000)
    assert deep.status_code == 400
    assert deep.json()["code"] == "invalid_json"
