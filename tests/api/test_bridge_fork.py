"""The bridge's audio fork endpoint lets in only FreeSWITCH: credentials are checked first."""

from __future__ import annotations

import base64

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("freeswitch", "wrong"),
        basic("someone", "fork-secret"),
        {"Authorization": "Basic %%%"},
    ],
    ids=["none", "wrong-password", "wrong-user", "garbled"],
)
def test_a_fork_without_the_right_credentials_is_refused(
    bridge: FastAPI, headers: dict[str, str]
) -> None:
    with TestClient(bridge) as client:
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect("/fork/call-1", headers=headers) as ws,
        ):
            ws.receive_bytes()
        metrics = client.get("/metrics").text
    assert refused.value.code == 1008
    assert 'bridge_fork_refused_total{reason="auth"} 1.0' in metrics
    assert "bridge_calls_total 0.0" in metrics
