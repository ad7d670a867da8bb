"""Error types shared by every service; whether an error is worth retrying is decided here."""

from __future__ import annotations

import asyncio
import errno
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from pydantic import ValidationError


class AgentError(Exception):
    """Base of the stack's own errors.

    ``code`` is a stable machine-readable name sent on the wire (`error.code`);
    ``retryable`` says whether repeating the same operation later may succeed.
    """

    code: str = "internal_error"
    retryable: bool = False
    http_status: int = 500

    def __init__(
        self, message: str, *, code: str | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        #: How long the dependency asked us to wait before trying again (its Retry-After).
        self.retry_after_s = retry_after_s


class InvalidInput(AgentError):
    """The caller sent something malformed; repeating it will fail the same way."""

    code = "invalid_input"
    http_status = 400


class PayloadTooLarge(InvalidInput):
    """A message or body is over a configured size limit."""

    code = "payload_too_large"
    http_status = 413


class UnsupportedFormat(InvalidInput):
    """Audio or text in a format, sample rate or encoding the service does not take."""

    code = "unsupported_format"
    http_status = 415


class NotFound(AgentError):
    """A named thing (session, voice, model) does not exist."""

    code = "not_found"
    http_status = 404


class ConfigError(AgentError):
    """Configuration is missing or invalid; the service cannot start until it is fixed."""

    code = "config_error"


class ModelError(AgentError):
    """A model file is missing, incomplete or does not match its registered hash."""

    code = "model_error"


class DependencyUnavailable(AgentError):
    """A service this one needs (Redis, the LLM, Google) cannot be reached right now."""

    code = "dependency_unavailable"
    retryable = True
    http_status = 503


class DependencyTimeout(DependencyUnavailable):
    """A dependency did not answer within its deadline."""

    code = "dependency_timeout"
    http_status = 504


class RateLimited(DependencyUnavailable):
    """A dependency asked us to slow down (HTTP 429 or a quota error)."""

    code = "rate_limited"
    http_status = 429


# HTTP statuses that mean "try again later" rather than "your request is wrong".
RETRYABLE_HTTP_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

_RETRYABLE_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
    }
)


def is_retryable(exc: BaseException) -> bool:
    """Whether repeating the operation that raised ``exc`` may succeed.

    The one place the stack decides this, so retry loops (tenacity) in every service agree.
    Third-party errors are judged by their shape (a ``status_code`` attribute, a network
    errno, a timeout) so this module does not import every client library.
    """
    if isinstance(exc, AgentError):
        return exc.retryable
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return True
    if isinstance(exc, ConnectionError):
        return True
    if isinstance(exc, OSError) and exc.errno in _RETRYABLE_ERRNOS:
        return True
    status = _status_of(exc)
    if status is not None:
        return status in RETRYABLE_HTTP_STATUSES
    name = type(exc).__name__
    # redis-py and httpx name their transient failures consistently.
    return name in {
        "ConnectError",
        "ConnectTimeout",
        "ReadTimeout",
        "WriteTimeout",
        "PoolTimeout",
        "RemoteProtocolError",
        "ReadError",
        "WriteError",
        "BusyLoadingError",
        "TryAgainError",
        "APIConnectionError",
        "APITimeoutError",
    }


def error_for_status(
    status: int, message: str, *, retry_after_s: float | None = None
) -> AgentError:
    """The stack's error for an HTTP status a dependency answered with.

    408, 429 and 5xx are worth retrying (the dependency is busy, restarting or overloaded);
    every other 4xx says the request itself is wrong and will fail the same way again.
    """
    error: type[AgentError]
    if status in (408, 504):
        error = DependencyTimeout
    elif status == 429:
        error = RateLimited
    elif status >= 500 or status in RETRYABLE_HTTP_STATUSES:
        error = DependencyUnavailable
    elif status == 404:
        error = NotFound
    elif status == 413:
        error = PayloadTooLarge
    elif status == 415:
        error = UnsupportedFormat
    elif 400 <= status < 500:
        error = InvalidInput
    else:  # 1xx/3xx where a final answer was expected: the dependency misbehaves
        error = DependencyUnavailable
    return error(message, retry_after_s=retry_after_s)


#: Longest Retry-After taken as given; anything longer is treated as this long.
MAX_RETRY_AFTER_S = 3600.0


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date (RFC 9110 10.2.3).

    None when absent or unreadable; a date in the past is 0; capped at ``MAX_RETRY_AFTER_S``.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(0.0, seconds), MAX_RETRY_AFTER_S)


def _status_of(exc: BaseException) -> int | None:
    for attr in ("status_code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def validation_problems(exc: ValidationError) -> str:
    """A pydantic error as one line naming each bad field: "event.text: Field required; …"."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
    )
