"""Every service answers /health, /ready and /metrics, and reports errors in one shape."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fakes import EnergyVad, FakeSwitch, MemoryRedis, MemorySink, ToneRecognizer, bridge_settings
from fastapi import FastAPI
from fastapi.testclient import TestClient

from asr_gateway.app import create_app as asr_app
from asr_gateway.settings import AsrSettings
from callkit.errors import NotFound
from fs_bridge.app import create_app as bridge_app

REDIS_SERVICES = ["tts", "notifier", "bridge"]
SERVICE_NAME = {"tts": "tts_gateway", "notifier": "notifier", "bridge": "fs_bridge"}


def ready_within(client: TestClient, seconds: float = 2.0) -> dict[str, object]:
    """/ready's body once it says ready (the bridge logs in to the switch in the background)."""
    deadline = time.monotonic() + seconds
    ready = client.get("/ready")
    while ready.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.02)
        ready = client.get("/ready")
    assert ready.status_code == 200, ready.json()
    body: dict[str, object] = ready.json()
    return body


@pytest.mark.parametrize("name", REDIS_SERVICES)
def test_ready_when_redis_answers(name: str, request: pytest.FixtureRequest) -> None:
    app: FastAPI = request.getfixturevalue(name)
    with TestClient(app) as client:
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json()["service"] == SERVICE_NAME[name]
        checks = ready_within(client)["checks"]
        assert isinstance(checks, dict)
        assert checks["redis"] == "ok"
    redis: MemoryRedis = request.getfixturevalue("memory_redis")
    assert "PING" in redis.commands
    assert redis.closed, "the service closes its Redis client on shutdown"


@pytest.mark.parametrize("name", REDIS_SERVICES)
def test_not_ready_but_alive_when_redis_is_down(
    name: str, request: pytest.FixtureRequest, memory_redis: MemoryRedis
) -> None:
    app: FastAPI = request.getfixturevalue(name)
    with TestClient(app) as client:
        memory_redis.reachable = False
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "not_ready"
        assert body["checks"]["redis"] == "redis did not answer PING: ConnectionError"
        memory_redis.reachable = True
        assert client.get("/ready").json()["checks"]["redis"] == "ok"


def test_asr_is_ready_once_its_model_is_loaded(recognizer: ToneRecognizer) -> None:
    loaded: list[str] = []

    def load(settings: AsrSettings, _models: object) -> ToneRecognizer:
        loaded.append(settings.model)
        return recognizer

    app = asr_app(
        AsrSettings.load(model="whisper-tiny.en"),
        load_engine=load,
        load_vad=lambda _s, _m: EnergyVad(),
    )
    assert loaded == [], "nothing is loaded before start-up"
    with TestClient(app) as client:
        # The recognizer and the end-of-turn model (the registry's, loaded for real).
        assert client.get("/ready").json()["checks"] == {"model": "ok", "turn_model": "ok"}
    assert loaded == ["whisper-tiny.en"]


def test_asr_refuses_a_model_the_registry_does_not_know() -> None:
    with pytest.raises(
        NotFound,
        match=r"unknown model 'whisper-huge-nonexistent'; the registry has: .*whisper-base",
    ):
        asr_app(AsrSettings.load(model="whisper-huge-nonexistent"))


def test_metrics_count_requests_by_route_template(tts: FastAPI) -> None:
    with TestClient(tts) as client:
        for _ in range(3):
            client.get("/health")
        client.get("/no/such/route")
        text = client.get("/metrics").text
    assert 'http_requests_total{method="GET",route="/health",status="200"} 3.0' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "http_request_duration_seconds_bucket" in text


def test_errors_have_detail_error_id_and_code(tts: FastAPI) -> None:
    with TestClient(tts) as client:
        missing = client.get("/no/such/route")
        assert missing.status_code == 404
        assert set(missing.json()) == {"detail", "error_id", "code"}
        wrong_method = client.post("/health")
        assert wrong_method.status_code == 405
        assert wrong_method.json()["code"] == "http_405"


def test_the_notifier_is_not_ready_while_its_sink_refuses_writes(
    notifier: FastAPI, sink: MemorySink
) -> None:
    with TestClient(notifier) as client:
        ready_within(client)
        sink.available = False
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"redis": "ok", "sink": "memory sink is unavailable"}


def test_the_bridge_reports_its_event_socket(bridge: FastAPI) -> None:
    with TestClient(bridge) as client:
        ready_within(client)
        assert "bridge_esl_connected 1.0" in client.get("/metrics").text


def test_the_bridge_is_not_ready_when_the_switch_refuses_its_password(
    memory_redis: MemoryRedis, switch: FakeSwitch, tmp_path: Path
) -> None:
    wrong = bridge_settings(tmp_path, esl_password="not-the-password")
    app = bridge_app(wrong, connect_redis=memory_redis.connect, event_socket=switch.connect)
    with TestClient(app) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {
            "redis": "ok",
            "freeswitch": "FreeSWITCH event socket 127.0.0.1:8021 not connected",
        }
        assert "bridge_esl_connected 0.0" in client.get("/metrics").text
