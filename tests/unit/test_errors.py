"""One decision about what is worth retrying, shared by every service."""

from __future__ import annotations

import errno

import pytest

from callkit.errors import (
    ConfigError,
    DependencyTimeout,
    DependencyUnavailable,
    InvalidInput,
    RateLimited,
    is_retryable,
)


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
