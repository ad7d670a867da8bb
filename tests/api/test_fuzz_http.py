"""Every HTTP API fuzzed from its own OpenAPI schema: no input may earn a 5xx, and every answer
must be one the schema documents (status, content type, headers, body).

Schemathesis generates the requests (valid ones and ones that break the schema) from
``app.openapi()``; they go to the app in process through Starlette's TestClient, so the app's
lifespan runs on the fakes of conftest.py and nothing leaves the process. The examples are
derandomized, so a run tries the same inputs every time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from fakes import echo_llm_app
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from policy_fakes import MemoryCalendar, MemoryDeadlines, MemoryPublisher, MemorySessions
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from callkit.models import ModelStore
from llm.app import create_app as llm_app
from llm.settings import LlmSettings
from policy_engine.app import create_app as policy_app
from policy_engine.script import load_script
from policy_engine.settings import PolicySettings

ROOT = Path(__file__).parents[2]
EXAMPLES = 30
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
#: Inputs tried per operation, for the run's summary.
TRIED: Counter[str] = Counter()


def _send(client: TestClient, kwargs: dict[str, Any]) -> httpx.Response:
    """The request Schemathesis built, encoded on the wire as requests would (multipart,
    forms, raw bytes alike), sent to the app through its TestClient."""
    wire = requests.Request(
        method=kwargs["method"],
        url=kwargs["url"],
        params=kwargs.get("params"),
        headers=kwargs.get("headers"),
        cookies=kwargs.get("cookies"),
        files=kwargs.get("files"),
        data=kwargs.get("data"),
        json=kwargs.get("json"),
    ).prepare()
    body = wire.body.encode() if isinstance(wire.body, str) else wire.body
    return client.request(
        wire.method or kwargs["method"],
        wire.url or kwargs["url"],
        headers=dict(wire.headers),
        content=body,
    )


def _fuzz_operation(client: TestClient, operation: Any, examples: int) -> int:
    tried = 0

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(operation.as_strategy(generation_mode=m) for m in GenerationMode))
    def one(case: Any) -> None:
        nonlocal tried
        tried += 1
        kwargs = case.as_transport_kwargs(base_url="http://testserver")
        response = _send(client, kwargs)
        case.validate_response(response, checks=CHECKS)

    one()
    return tried


def fuzz(
    app: FastAPI,
    *,
    examples: int = EXAMPLES,
    paths: frozenset[str] | None = None,
    name: str | None = None,
) -> dict[str, int]:
    """Fuzz every operation of ``app``'s schema (or those under ``paths``); the inputs tried
    per operation."""
    schema = schemathesis.openapi.from_dict(app.openapi())
    tried: dict[str, int] = {}
    with TestClient(app, raise_server_exceptions=False) as client:
        for result in schema.get_all_operations():
            operation = result.ok()
            if paths is not None and operation.path not in paths:
                continue
            tried[operation.label] = _fuzz_operation(client, operation, examples)
    TRIED.update({f"{name or app.title} {k}": v for k, v in tried.items()})
    return tried


@pytest.fixture(scope="module", autouse=True)
def _summary() -> Iterator[None]:
    yield
    width = max((len(k) for k in TRIED), default=0)
    print("\ninputs tried per operation:")
    for label, count in sorted(TRIED.items()):
        print(f"  {label:<{width}}  {count}")


def _every_operation_tried(
    tried: dict[str, int], app: FastAPI, paths: frozenset[str] | None = None
) -> None:
    routes = {
        f"{method.upper()} {path}"
        for path, item in app.openapi()["paths"].items()
        for method in item
        if paths is None or path in paths
    }
    assert set(tried) == routes
    assert all(n > 0 for n in tried.values())


def test_asr_gateway(asr: FastAPI) -> None:
    _every_operation_tried(fuzz(asr), asr)


def test_tts_gateway(tts: FastAPI) -> None:
    _every_operation_tried(fuzz(tts), tts)


def test_notifier(notifier: FastAPI) -> None:
    _every_operation_tried(fuzz(notifier), notifier)


def test_fs_bridge(bridge: FastAPI) -> None:
    _every_operation_tried(fuzz(bridge), bridge)


def test_llm_service_shell() -> None:
    def serve(settings: LlmSettings, models: ModelStore) -> FastAPI:
        return echo_llm_app(settings.served_model_name)

    # The served model's own routes belong to llama.cpp's server (here a stand-in); the service
    # adds the ops routes around it.
    ops = frozenset({"/health", "/ready", "/metrics"})
    app = llm_app(LlmSettings.load(served_model_name="clinic-agent"), serve=serve)
    _every_operation_tried(fuzz(app, paths=ops, name="llm"), app, ops)


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
    _every_operation_tried(fuzz(app), app)
    with TestClient(app, raise_server_exceptions=False) as client:
        # Within the size limit, nested deeper than any JSON parser goes.
        deep = client.post("/dialog", content=b"[" * 4000)
    assert deep.status_code == 400
    assert deep.json()["code"] == "invalid_json"
