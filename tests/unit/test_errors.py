"""One decision about what is worth retrying, shared by every service."""

from __future__ import annotations

import errno
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import pytest

from callkit.errors import (
    MAX_RETRY_AFTER_S,
    AgentError,
    ConfigError,
    DependencyTimeout,
    DependencyUnavailable,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    UnsupportedFormat,
    error_for_status,
    is_retryable,
    parse_retry_after,
)
from callkit.retry import jittered, retrying

T = TypeVar("T")


class HttpError(Exception):
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


class ConnectError(Exception):
    """Named like httpx's transient error."""


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (DependencyUnavailable("redis down"), True),
        (DependencyTimeout("llm slow"), True),
        (RateLimited("sheets quota"), True),
        (InvalidInput("bad frame"), False),
        (ConfigError("no key"), False),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (OSError(errno.ECONNREFUSED, "refused"), True),
        (OSError(errno.ENOENT, "no such file"), False),
        (HttpError(429), True),
        (HttpError(503), True),
        (HttpError(400), False),
        (HttpError(404), False),
        (ConnectError(), True),
        (ValueError("bug"), False),
    ],
)
def test_retryable_classification(exc: BaseException, retryable: bool) -> None:
    assert is_retryable(exc) is retryable


def test_errors_carry_http_status_and_code() -> None:
    assert (RateLimited("x").http_status, RateLimited("x").code) == (429, "rate_limited")
    assert InvalidInput("x", code="invalid_json").code == "invalid_json"


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (400, InvalidInput, False),
        (401, InvalidInput, False),
        (404, NotFound, False),
        (413, PayloadTooLarge, False),
        (415, UnsupportedFormat, False),
        (422, InvalidInput, False),
        (408, DependencyTimeout, True),
        (429, RateLimited, True),
        (500, DependencyUnavailable, True),
        (502, DependencyUnavailable, True),
        (503, DependencyUnavailable, True),
        (504, DependencyTimeout, True),
    ],
)
def test_an_http_status_maps_to_one_error_and_one_retry_decision(
    status: int, error: type[AgentError], retryable: bool
) -> None:
    exc = error_for_status(status, "answered", retry_after_s=2.0)
    assert type(exc) is error
    assert is_retryable(exc) is retryable
    assert exc.retry_after_s == 2.0


NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("3", 3.0),
        (" 0 ", 0.0),
        ("Sat, 01 Mar 2025 12:00:07 GMT", 7.0),
        ("Sat, 01 Mar 2025 11:59:00 GMT", 0.0),  # already past: now
        ("999999", MAX_RETRY_AFTER_S),
        ("-5", None),
        ("1.5", None),  # delay-seconds is an integer
        ("soon", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(
    header: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


async def _retried(call: Callable[[], Awaitable[T]]) -> T:
    async for attempt in retrying(attempts=5, first_wait_s=0.01, max_wait_s=1.0):
        with attempt:
            return await call()
    raise AssertionError("unreachable")


async def test_retries_wait_the_asked_retry_after_and_give_up_on_refusals() -> None:
    calls: list[float] = []

    async def busy_then_ok() -> str:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RateLimited("slow down", retry_after_s=0.3)
        return "ok"

    assert await _retried(busy_then_ok) == "ok"
    assert calls[1] - calls[0] >= 0.3

    refused: list[int] = []

    async def bad_request() -> None:
        refused.append(1)
        raise error_for_status(400, "bad")

    with pytest.raises(InvalidInput):
        await _retried(bad_request)
    assert refused == [1]


def test_reconnect_pauses_are_spread_not_identical() -> None:
    pauses = {jittered(2.0) for _ in range(50)}
    assert all(1.0 <= p <= 2.0 for p in pauses)
    assert len(pauses) > 40
