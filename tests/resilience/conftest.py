"""The kill tests' stack, one per module: see killstack.Stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from killstack import ESL_PASSWORD, FORK_PASSWORD, SERVICES, AppendOnlyRedis, EmulatedSwitch, Stack

import devstack


@pytest.fixture(scope="module")
def stack(embedded_llm: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("kills")
    redis = AppendOnlyRedis(tmp / "redis")
    redis.start()  # every service of the stack uses it, none the suite's shared Redis
    ports = devstack.Ports.free()
    env = devstack.stack_env(
        ports,
        redis_url=redis.url,
        esl_password=ESL_PASSWORD,
        fork_password=FORK_PASSWORD,
        recordings=tmp / "bridge",
    ) | {
        "TTS_PRERENDER_RATES": "[16000]",
        "TTS_CACHE_DIR": str(tmp / "tts-cache"),
        "POLICY_LLM_BASE_URL": embedded_llm,
        "BRIDGE_SILENCE_S": "4",
        "NOTIFY_SINK": "csv",
        "NOTIFY_CSV_PATH": str(tmp / "calls.csv"),
        "NOTIFY_LOCALE": "en",
        # A killed notifier's unacknowledged entries are claimed by the next one within a second.
        "NOTIFY_CLAIM_IDLE_MS": "1000",
    }
    stack = Stack(tmp, redis, EmulatedSwitch(ports.esl), ports, env)
    try:
        stack.fs.open()
        try:
            stack.services.update(devstack.start_all(SERVICES, ports, env, tmp, timeout_s=240))
            yield stack
        finally:
            devstack.stop_all(stack.services)  # restarted services are in here too
            stack.fs.close()
    finally:
        redis.stop()
