"""Service settings read their prefixed environment and name the variable when it is wrong."""

from __future__ import annotations

import pytest

from asr_gateway.settings import AsrSettings
from callkit.errors import ConfigError
from fs_bridge.settings import BridgeSettings
from llm.settings import LlmSettings
from notifier.settings import NotifySettings
from policy_engine.settings import PolicySettings
from tts_gateway.settings import TtsSettings

DEFAULT_PORTS = [
    (AsrSettings, "ASR_PORT", 8081),
    (TtsSettings, "TTS_PORT", 8082),
    (PolicySettings, "POLICY_PORT", 8083),
    (LlmSettings, "LLM_PORT", 8000),
    (NotifySettings, "NOTIFY_PORT", 8085),
    (BridgeSettings, "BRIDGE_PORT", 8080),
]


@pytest.fixture(autouse=True)
def _bridge_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_ESL_PASSWORD", "s3cret-esl")
    monkeypatch.setenv("BRIDGE_FORK_PASSWORD", "s3cret-fork")
    for _, var, _ in DEFAULT_PORTS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)


@pytest.mark.parametrize(("cls", "var", "port"), DEFAULT_PORTS)
def test_each_service_has_its_default_port_and_its_prefix(monkeypatch, cls, var, port) -> None:
    assert cls.load().port == port
    monkeypatch.setenv(var, "9123")
    assert cls.load().port == 9123


def test_redis_url_is_shared_and_unprefixed(monkeypatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://cache.internal:6380/2")
    assert TtsSettings.load().redis_url == "redis://cache.internal:6380/2"
    assert PolicySettings.load().redis_url == "redis://cache.internal:6380/2"


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("ASR_PORT", "eighty", "ASR_PORT: Input should be a valid integer"),
        ("ASR_PORT", "70000", "ASR_PORT: Input should be less than or equal to 65535"),
        ("ASR_DEVICE", "tpu", "ASR_DEVICE: Input should be 'auto', 'cpu' or 'cuda'"),
        ("REDIS_URL", "http://localhost:6379", "REDIS_URL: String should match pattern"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL: Input should be"),
    ],
)
def test_invalid_values_are_refused_naming_the_variable(monkeypatch, var, value, expected) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as err:
        AsrSettings.load()
    assert expected in err.value.message
    assert repr(value) in err.value.message  # says what arrived


def test_missing_secret_is_named_and_a_bad_one_is_never_echoed(monkeypatch) -> None:
    monkeypatch.delenv("BRIDGE_ESL_PASSWORD")
    with pytest.raises(ConfigError, match="BRIDGE_ESL_PASSWORD: Field required"):
        BridgeSettings.load()
    monkeypatch.setenv("BRIDGE_ESL_PASSWORD", "hunter2-secret")
    settings = BridgeSettings.load()
    assert "hunter2-secret" not in repr(settings)
    assert settings.esl_password.get_secret_value() == "hunter2-secret"


def test_settings_are_immutable_once_built() -> None:
    settings = AsrSettings.load()
    with pytest.raises(ValueError, match="frozen"):
        settings.port = 1  # type: ignore[misc]
