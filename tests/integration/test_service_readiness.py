"""Readiness against the real dependencies: Redis, the model files, the LLM server, the Event Socket."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from asr_gateway.app import create_app as asr_app
from asr_gateway.settings import AsrSettings
from fs_bridge.app import create_app as bridge_app
from fs_bridge.settings import BridgeSettings
from notifier.app import create_app as notifier_app
from notifier.settings import NotifySettings
from policy_engine.app import create_app as policy_app
from policy_engine.settings import PolicySettings
from tts_gateway.app import create_app as tts_app
from tts_gateway.settings import TtsSettings

# Each factory gets a Redis URL and the LLM's base URL (only the policy engine uses the LLM).
REDIS_SERVICES: list[tuple[str, Callable[[str, str], FastAPI]]] = [
    # Prerender readiness has its own test (tests/integration/test_tts_gateway.py).
    ("tts_gateway", lambda url, _: tts_app(TtsSettings.load(redis_url=url, prerender=False))),
    (
        "policy_engine",
        lambda url, llm: policy_app(PolicySettings.load(redis_url=url, llm_base_url=llm)),
    ),
    # Its shutdown waits out one blocking read: a short one.
    ("notifier", lambda url, _: notifier_app(NotifySettings.load(redis_url=url, block_ms=200))),
    ("fs_bridge", lambda url, _: bridge_app(_bridge_settings(url))),
]
ESL: dict[str, tuple[int, str]] = {}


def _bridge_settings(url: str) -> BridgeSettings:
    port, password = ESL.get("emulator", (1, "x"))
    return BridgeSettings.load(
        redis_url=url, esl_port=port, esl_password=password, fork_password="fork-secret"
    )


@pytest.fixture(autouse=True)
def _emulated_freeswitch(esl_emulator: tuple[int, str]) -> None:
    """The bridge is ready only with FreeSWITCH's Event Socket connected: callsim's here."""
    ESL["emulator"] = esl_emulator


@pytest.mark.parametrize(("name", "factory"), REDIS_SERVICES, ids=[n for n, _ in REDIS_SERVICES])
def test_ready_when_redis_answers(
    name: str, factory: Any, redis_url: str, embedded_llm: str
) -> None:
    with TestClient(factory(redis_url, embedded_llm)) as client:
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json()["service"] == name
        ready = client.get("/ready")
        for _ in range(100):  # the bridge connects to the Event Socket in the background
            if ready.status_code == 200:
                break
            time.sleep(0.05)
            ready = client.get("/ready")
        assert ready.status_code == 200, ready.json()
        assert ready.json()["checks"]["redis"] == "ok"


@pytest.mark.parametrize(("name", "factory"), REDIS_SERVICES, ids=[n for n, _ in REDIS_SERVICES])
def test_not_ready_but_alive_when_redis_is_down(
    name: str, factory: Any, dead_port: int, embedded_llm: str
) -> None:
    with TestClient(factory(f"redis://127.0.0.1:{dead_port}/0", embedded_llm)) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "not_ready"
        assert "redis did not answer" in body["checks"]["redis"]


def test_asr_is_ready_once_its_model_is_loaded() -> None:
    with TestClient(asr_app(AsrSettings.load(model="whisper-tiny.en"))) as client:
        assert client.get("/ready").json()["checks"] == {"model": "ok", "turn_model": "ok"}


def test_policy_readiness_names_the_llm_problem_when_the_llm_is_required(
    redis_url: str, embedded_llm: str, dead_port: int
) -> None:
    down = PolicySettings.load(
        redis_url=redis_url, llm_base_url=f"http://127.0.0.1:{dead_port}/v1", require_llm=True
    )
    with TestClient(policy_app(down)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert "LLM unreachable" in ready.json()["checks"]["llm"]
    wrong = PolicySettings.load(
        redis_url=redis_url,
        llm_base_url=embedded_llm,
        llm_model="gpt-nonexistent",
        require_llm=True,
    )
    with TestClient(policy_app(wrong)) as client:
        check = client.get("/ready").json()["checks"]["llm"]
        assert "not 'gpt-nonexistent' (POLICY_LLM_MODEL)" in check


def test_policy_is_ready_without_the_llm_and_says_so_in_metrics(
    redis_url: str, dead_port: int
) -> None:
    down = PolicySettings.load(redis_url=redis_url, llm_base_url=f"http://127.0.0.1:{dead_port}/v1")
    with TestClient(policy_app(down)) as client:
        assert client.get("/ready").status_code == 200
        for _ in range(200):
            if "policy_llm_up 0.0" in client.get("/metrics").text:
                break
            time.sleep(0.02)
        else:
            raise AssertionError("policy_llm_up never reported the LLM down")


def test_the_bridge_reports_its_event_socket(redis_url: str, dead_port: int) -> None:
    with TestClient(bridge_app(_bridge_settings(redis_url))) as client:
        for _ in range(100):
            if client.get("/ready").status_code == 200:
                break
            time.sleep(0.05)
        assert "bridge_esl_connected 1.0" in client.get("/metrics").text
    down = BridgeSettings.load(
        redis_url=redis_url, esl_port=dead_port, esl_password="x", fork_password="y"
    )
    with TestClient(bridge_app(down)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert "event socket" in ready.json()["checks"]["freeswitch"]
        assert "bridge_esl_connected 0.0" in client.get("/metrics").text
