"""The one failure mapping every platform adapter uses (ghostpost.adapters.http)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import requests

from ghostpost.adapters.base import PermanentError, RetryableError
from ghostpost.adapters.http import PlatformHttp, error_text, retry_after
from ghostpost.adapters.outbound import OutboundPolicy
from ghostpost.clock import FixedClock

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def answer(status: int, body: object = None, **headers: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.url = "https://api.x.test/2/tweets"
    response._content = b"" if body is None else json.dumps(body).encode()
    response.headers.update(headers)
    return response


def test_x_problem_details_and_their_listed_errors_are_kept() -> None:
    body = {
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "errors": [{"message": "text is too long"}, {"message": "reply is closed"}, {"x": 1}],
    }
    assert error_text(answer(400, body)) == (
        "HTTP 400: One or more parameters to your request was invalid. text is too long "
        "reply is closed"
    )
    assert error_text(answer(400, {"errors": [{"message": "Rate limit exceeded"}]})) == (
        "HTTP 400: Rate limit exceeded"
    )


def test_a_429_waits_for_the_latest_exhausted_rate_limit_family() -> None:
    now = NOW.timestamp()
    limited = answer(
        429,
        **{
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(int(now) + 60),
            "x-user-limit-24hour-remaining": "0",
            "x-user-limit-24hour-reset": str(int(now) + 3600),
            "x-app-limit-24hour-remaining": "12",
            "x-app-limit-24hour-reset": str(int(now) + 86400),
        },
    )
    assert retry_after(limited, now) == 3600
    assert retry_after(answer(429, **{"Retry-After": "7"}), now) == 7


def test_after_a_5xx_only_retry_after_counts_not_the_rate_limit_reset() -> None:
    now = NOW.timestamp()
    down = answer(503, **{"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(now) + 900)})
    assert retry_after(down, now) is None
    assert retry_after(answer(503, **{"Retry-After": "30"}), now) == 30


def test_with_a_clock_the_reset_is_judged_by_that_clock() -> None:
    clock = FixedClock(NOW)
    http = PlatformHttp(5, OutboundPolicy()).with_clock(clock)
    limited = answer(
        429, **{"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(NOW.timestamp()) + 90)}
    )
    failure = http.failure(limited)
    assert isinstance(failure, RetryableError) and failure.retry_after == 90
    assert isinstance(http.failure(answer(403, {"detail": "Forbidden"})), PermanentError)
    assert isinstance(http.failure(answer(302)), PermanentError)
