"""HTTP for the platform adapters: timeouts, and one mapping of failures to retryable/permanent.

Retryable: the connection failed, the request timed out (the platform may or may not have the
post: the caller's dedupe decides), 408, 425, 429 (with Retry-After), 5xx. Permanent: every
other 4xx. Request bodies and Authorization headers are never put into error messages or logs.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from ghostpost.adapters.base import PermanentError, RetryableError

USER_AGENT = "ghostpost/1 (+https://github.com/ghostpost)"
RETRYABLE_STATUSES = frozenset({408, 425, 429})
#: Platform error text kept in a post's error field; enough to act on, never a whole page.
MAX_ERROR_TEXT = 300


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Read Retry-After (seconds or HTTP date) or x-rate-limit-reset (epoch seconds)."""
    now = time.time() if now is None else now
    value = headers.get("Retry-After")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, when.timestamp() - now)
    reset = headers.get("x-rate-limit-reset")
    if reset and reset.strip().isdigit():
        return max(0.0, float(reset) - now)
    return None


def error_text(response: requests.Response) -> str:
    """The platform's own error message, shortened (JSON `error`/`detail`/`message` fields)."""
    message = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        # XRPC: {"error": "InvalidRequest", "message": "..."}; OAuth: error + error_description;
        # X: title + detail; Mastodon: {"error": "Validation failed: ..."}.
        error = body.get("error")
        code = error if isinstance(error, str) else ""
        detail: str = next(
            (
                str(body[key])
                for key in ("error_description", "detail", "message", "title")
                if isinstance(body.get(key), str) and body[key]
            ),
            "",
        )
        message = f"{code}: {detail}" if code and detail and code != detail else detail or code
    if not message:
        message = response.text.strip()[:MAX_ERROR_TEXT] or response.reason or ""
    return f"HTTP {response.status_code}: {message[:MAX_ERROR_TEXT]}"


class PlatformHttp:
    """A requests session with a timeout and the shared failure mapping."""

    def __init__(self, timeout: float, session: requests.Session | None = None) -> None:
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    def request(
        self, method: str, url: str, *, expect: tuple[int, ...] = (200, 201), **kwargs: Any
    ) -> requests.Response:
        """Send a request; return the response if its status is expected, else raise."""
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.Timeout as exc:
            raise RetryableError(
                f"timed out after {self.timeout:g} s talking to {_host(url)}"
            ) from exc
        except requests.ConnectionError as exc:
            raise RetryableError(f"could not reach {_host(url)}") from exc
        if response.status_code in expect:
            return response
        raise self.failure(response)

    def failure(self, response: requests.Response) -> RetryableError | PermanentError:
        """Map a response the caller did not expect to the right error kind."""
        text = error_text(response)
        status = response.status_code
        if status in RETRYABLE_STATUSES or status >= 500:
            return RetryableError(text, retry_after=retry_after_seconds(response.headers))
        return PermanentError(text)


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class BadBaseUrl(ValueError):
    """An instance or PDS URL ghostpost will not talk to."""


def normalize_base_url(text: str) -> str:
    """`mastodon.social` -> `https://mastodon.social`; https only, except plain http on loopback."""
    text = text.strip().rstrip("/")
    if not text:
        raise BadBaseUrl("Enter the server address, e.g. mastodon.social.")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    if not host or parts.username or parts.password or parts.query or parts.fragment:
        raise BadBaseUrl(f"{text!r} is not a server address.")
    if parts.path not in ("", "/"):
        raise BadBaseUrl("Enter only the server address, without a path.")
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise BadBaseUrl("Only https:// servers can be connected.")
    if parts.scheme not in ("http", "https"):
        raise BadBaseUrl("Only https:// servers can be connected.")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def utc_now_iso(now: datetime) -> str:
    """An RFC 3339 timestamp with milliseconds and Z, as Bluesky records and X expect."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
