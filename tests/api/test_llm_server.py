"""The LLM service's shell around a served model: ops routes, settings, the OpenAI wire."""

from __future__ import annotations

import openai
import pytest
from fakes import echo_llm_app
from fastapi import FastAPI
from fastapi.testclient import TestClient

from callkit.errors import ConfigError
from callkit.models import ModelStore
from llm.app import create_app, gguf_path
from llm.settings import LlmSettings


def test_the_served_model_answers_the_official_client_beside_the_ops_routes() -> None:
    served: list[str] = []

    def serve(settings: LlmSettings, models: ModelStore) -> FastAPI:
        served.append(settings.model)
        return echo_llm_app(settings.served_model_name)

    app = create_app(LlmSettings.load(served_model_name="clinic-agent"), serve=serve)
    assert served == ["qwen2.5-coder-0.5b-instruct-q4"]
    with TestClient(app) as client:
        assert client.get("/health").json()["service"] == "llm"
        assert client.get("/ready").status_code == 200
        api = openai.OpenAI(base_url="http://testserver/v1", api_key="none", http_client=client)
        assert [m.id for m in api.models.list()] == ["clinic-agent"]
        reply = api.chat.completions.create(
            model="clinic-agent", messages=[{"role": "user", "content": "Is it open on Sunday?"}]
        )
        metrics = client.get("/metrics").text
    assert reply.choices[0].message.content == "You said: Is it open on Sunday?"
    assert 'route="/v1/chat/completions",status="200"} 1.0' in metrics


def test_a_model_of_another_engine_is_refused_before_anything_loads() -> None:
    with pytest.raises(
        ConfigError, match=r"is a faster-whisper model; the embedded server runs llama\.cpp"
    ):
        gguf_path(LlmSettings.load(model="whisper-tiny.en"))
