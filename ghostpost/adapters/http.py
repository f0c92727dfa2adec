"""HTTP for the platform adapters: the outbound policy, timeouts, and one failure mapping.

Every request goes through the OutboundPolicy (ghostpost.adapters.outbound): checked, pinned to
the checked address, no redirects followed. Retryable: the connection failed, the request timed
out (the platform may or may not have the post: the caller's dedupe decides), 408, 425, 429
(with Retry-After; X's rate-limit headers), 5xx. Permanent: every other 4xx, and any 3xx.
Waits are judged against the clock the adapter was given (`with_clock`). Request bodies and
Authorization headers are never put into error messages or logs, and neither is the body of a
failed response: only a platform's own short error fields (JSON `error`, `message`, ...) are
kept; anything else is logged as its SHA-256 and length.
"""

from __future__ import annotations

import copy
import email.utils
import hashlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from ghostpost.adapters.base import PermanentError, RetryableError
from ghostpost.adapters.outbound import OutboundPolicy, OutboundRefused, parse_host
from ghostpost.clock import Clock

USER_AGENT = "ghostpost/1 (+https://github.com/ghostpost)"
RETRYABLE_STATUSES = frozenset({408, 425, 429})
#: Platform error text kept in a post's error field; enough to act on, never a whole page.
MAX_ERROR_TEXT = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]+")
#: The rate-limit families X reports (`<family>-remaining`, `<family>-reset` in epoch seconds).
_RATE_LIMIT_FAMILIES = ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour")
#: How many of X's `errors[].message` follow the problem's detail.
_LISTED_ERRORS = 2
log = logging.getLogger(__name__)


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


def retry_after(response: requests.Response, now: float | None = None) -> float | None:
    """How long to wait before retrying a failed request (None: the caller's backoff decides).

    A 429 waits for the latest exhausted rate-limit family (X), else for Retry-After, else for
    x-rate-limit-reset. Any other status waits only for Retry-After: X sends its rate-limit
    reset with every response, and after a 5xx it says nothing about when X is back (waiting
    for it could stall the account for 15 minutes).
    """
    headers = response.headers
    now = time.time() if now is None else now
    if response.status_code != 429:
        value = headers.get("Retry-After")
        return retry_after_seconds({"Retry-After": value}, now=now) if value else None
    resets = [
        float(headers[f"{family}-reset"])
        for family in _RATE_LIMIT_FAMILIES
        if headers.get(f"{family}-remaining", "").strip() == "0"
        and headers.get(f"{family}-reset", "").strip().isdigit()
    ]
    if resets:
        return max(0.0, max(resets) - now)
    return retry_after_seconds(headers, now=now)


def error_text(response: requests.Response) -> str:
    """The platform's own error message, shortened (JSON `error`/`detail`/`message` fields,
    then X's first `errors[].message`).

    A body without such fields (an HTML page, an internal service's answer) is never quoted:
    its SHA-256 and length go to the log, the message says only the status.
    """
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
        listed = body.get("errors")
        for item in listed[:_LISTED_ERRORS] if isinstance(listed, list) else []:
            more = item.get("message") if isinstance(item, dict) else None
            if isinstance(more, str) and more and more not in message:
                message = f"{message} {more}" if message else more
    message = " ".join(_CONTROL.sub(" ", message).split())
    if not message:
        log_unshown_body(response)
        return f"HTTP {response.status_code} {response.reason or ''}".rstrip()
    return f"HTTP {response.status_code}: {message[:MAX_ERROR_TEXT]}"


def log_unshown_body(response: requests.Response) -> None:
    """Log what identifies a response body that is not shown to anyone: its hash and length."""
    content = response.content or b""
    log.warning(
        "%s answered HTTP %s; body not shown: %d bytes, sha256 %s",
        _host(response.url or ""),
        response.status_code,
        len(content),
        hashlib.sha256(content).hexdigest(),
    )


class PlatformHttp:
    """A requests session with a timeout and the shared failure mapping."""

    def __init__(
        self, timeout: float, policy: OutboundPolicy, session: requests.Session | None = None
    ) -> None:
        self.timeout = timeout
        self.policy = policy
        self.session = policy.install(session or requests.Session())
        self.session.headers["User-Agent"] = USER_AGENT
        self._now: Callable[[], float] = time.time

    def with_clock(self, clock: Clock) -> PlatformHttp:
        """The same client (one session), judging rate-limit resets by `clock` instead of the
        wall clock: X's resets are epoch seconds, read against the time the service runs on."""
        judged = copy.copy(self)
        judged._now = lambda: clock.now().timestamp()
        return judged

    def oauth_session(self, session: requests.Session) -> requests.Session:
        """Make an OAuth client session (Authlib's) obey the same policy and timeout."""
        session.headers["User-Agent"] = USER_AGENT
        return self.policy.install(session)

    def request(
        self, method: str, url: str, *, expect: tuple[int, ...] = (200, 201), **kwargs: Any
    ) -> requests.Response:
        """Send a request; return the response if its status is expected, else raise."""
        kwargs.setdefault("timeout", self.timeout)
        kwargs["allow_redirects"] = False
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
        status = response.status_code
        if 300 <= status < 400:
            log_unshown_body(response)
            return PermanentError(
                f"{_host(response.url or '')} answered with a redirect (HTTP {status}); "
                "ghostpost follows no redirects: enter the server's own address"
            )
        text = error_text(response)
        if status in RETRYABLE_STATUSES or status >= 500:
            return RetryableError(text, retry_after=retry_after(response, self._now()))
        return PermanentError(text)


class BadBaseUrl(ValueError):
    """An instance or PDS URL ghostpost will not talk to."""


def normalize_base_url(text: str, policy: OutboundPolicy) -> str:
    """`mastodon.social` -> `https://mastodon.social`, checked against the outbound policy.

    The host comes back in one canonical spelling (an IPv6 address in brackets); the port must
    be 1-65535; plain http and internal addresses only where the policy allows them.
    """
    text = text.strip().rstrip("/")
    if not text:
        raise BadBaseUrl("Enter the server address, e.g. mastodon.social.")
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        if "port" in str(exc).lower():
            raise BadBaseUrl("The port must be a number from 1 to 65535.") from None
        raise BadBaseUrl(f"{text[:200]!r} is not a server address.") from None
    if not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise BadBaseUrl(f"{text[:200]!r} is not a server address.")
    if parts.path not in ("", "/"):
        raise BadBaseUrl("Enter only the server address, without a path.")
    if parts.scheme not in ("http", "https"):
        raise BadBaseUrl("Only https:// servers can be connected.")
    if port == 0:
        raise BadBaseUrl("The port must be a number from 1 to 65535.")
    try:
        host = parse_host(parts.hostname)
    except OutboundRefused as exc:
        raise BadBaseUrl(str(exc)) from None
    shown = f"[{host}]" if ":" in str(host) else str(host)
    default_port = {"http": 80, "https": 443}[parts.scheme]
    base_url = f"{parts.scheme}://{shown}" + (f":{port}" if port and port != default_port else "")
    try:
        # Names are resolved and checked on every request, not here: a form needs no DNS.
        policy.check(base_url, resolve=False)
    except OutboundRefused as exc:
        raise BadBaseUrl(str(exc)) from None
    return base_url


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def utc_now_iso(now: datetime) -> str:
    """An RFC 3339 timestamp with milliseconds and Z, as Bluesky records and X expect."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
