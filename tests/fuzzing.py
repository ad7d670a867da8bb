"""Fuzzing an HTTP API from its own OpenAPI schema: no input may earn a 5xx, and every answer
must be one the schema documents (status, content type, headers, body).

Schemathesis generates the requests (valid ones and ones that break the schema) from
``app.openapi()``; they go to the app in process through Starlette's TestClient, so the app's
lifespan runs on whatever the test gave it. The examples are derandomized, so a run tries the
same inputs every time.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import requests
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

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


def send(client: TestClient, kwargs: dict[str, Any]) -> httpx.Response:
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


def fuzz_operation(client: TestClient, operation: Any, examples: int) -> int:
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
        response = send(client, kwargs)
        case.validate_response(response, checks=CHECKS)

    one()
    return tried


def fuzz(
    app: FastAPI,
    *,
    examples: int = EXAMPLES,
    paths: frozenset[str] | None = None,
    name: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, int]:
    """Fuzz every operation of ``app``'s schema (or those under ``paths``), sending ``headers``
    (credentials) with every request unless the generated case sets its own; the inputs tried
    per operation."""
    schema = schemathesis.openapi.from_dict(app.openapi())
    tried: dict[str, int] = {}
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers.update(headers or {})
        for result in schema.get_all_operations():
            operation = result.ok()
            if paths is not None and operation.path not in paths:
                continue
            tried[operation.label] = fuzz_operation(client, operation, examples)
    TRIED.update({f"{name or app.title} {k}": v for k, v in tried.items()})
    return tried


def every_operation_tried(
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


def summary() -> str:
    """The inputs tried per operation so far, one line each."""
    width = max((len(k) for k in TRIED), default=0)
    lines = ["inputs tried per operation:"]
    lines += [f"  {label:<{width}}  {count}" for label, count in sorted(TRIED.items())]
    return "\n".join(lines)
