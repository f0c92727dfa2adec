"""What the two HTTP surfaces (web pages and the API) share, so neither imports the other: the
app's container and service context, the RFC 9457 problem response, the app's one rate
limiter, and streamed export downloads (DESIGN.md §6)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from http import HTTPStatus
from inspect import iscoroutinefunction
from types import FunctionType
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from ghostpost.bootstrap import Container
from ghostpost.export_slots import make_slots
from ghostpost.metrics import metrics_of
from ghostpost.rate_limits import RateLimiter, rate_limiter
from ghostpost.services import exports
from ghostpost.services.context import ServiceContext


class App(Flask):
    """Flask, remembering which plain functions are not coroutines.

    Flask asks `ensure_sync` about every before/after/teardown hook and view on every request
    (14 times per API create), and each answer inspects the function's code flags again.
    A plain function's answer never changes, so it is asked once; anything else (a bound
    method, a partial, an `async def`) goes to Flask's own answer as before."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._known_sync: set[FunctionType] = set()

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        if func in self._known_sync:
            return func
        if isinstance(func, FunctionType) and not iscoroutinefunction(func):
            self._known_sync.add(func)
            return func
        return super().ensure_sync(func)


PROBLEM_MIMETYPE = "application/problem+json"
TYPE_PREFIX = "urn:ghostpost:problem:"


#: Each problem type's title (code -> title), the same on every surface that answers it: a
#: client may show the title and branch on the code. A code not listed is titled by its status.
PROBLEM_TITLES: dict[str, str] = {
    "invalid_json": "Malformed JSON",
    "unsupported_media_type": "Unsupported media type",
    "payload_too_large": "Request body too large",
    "validation_failed": "Invalid request",
    "policy_refused": "Refused by the disclosure policy",
    "not_found": "Not found",
    "forbidden": "Forbidden",
    "conflict": "Conflict",
    "idempotency_key_missing": "Idempotency-Key header missing",
    "idempotency_key_invalid": "Idempotency-Key header invalid",
    "idempotency_key_reused": "Idempotency-Key reused with another body",
    "idempotency_key_in_flight": "Request with this Idempotency-Key in flight",
    "rate_limited": "Too many requests",
    "unauthorized": "Unauthorized",
    "invalid_token": "Access token invalid",
    "insufficient_scope": "Scope missing",
    "insecure_transport": "HTTPS required",
    "export_limit_reached": "Too many exports running",
    "database_unavailable": "Service unavailable",
    "internal_error": "Internal error",
}


def status_phrase(status: int) -> str:
    """The HTTP status's reason phrase ("Not Found"), or "Error" for a status HTTP lacks."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_title(status: int, code: str) -> str:
    """The title of the problem type `code` (PROBLEM_TITLES), else the status's phrase."""
    return PROBLEM_TITLES.get(code) or status_phrase(status)


def http_problem_code(exc: HTTPException) -> str:
    """The problem code of an HTTP error raised by Flask, werkzeug or a throttle: its name in
    snake case ("method_not_allowed"), except a throttle, which is `rate_limited` wherever
    it is answered."""
    if exc.code == 429:
        return "rate_limited"
    return (exc.name or "error").lower().replace(" ", "_")


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **members: Any,
) -> Response:
    """Return an RFC 9457 problem: a stable `type` (`urn:ghostpost:problem:<code>`), its
    `code`, the type's title (`problem_title`), the HTTP `status`, a human `detail`, then any
    extra `members`."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "code": code,
        "title": problem_title(status, code),
        "status": status,
        "detail": detail,
        **members,
    }
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    response.headers.update(dict(headers or {}))
    return response


def container() -> Container:
    """Return the app's container."""
    found: Container = current_app.extensions["ghostpost"]
    return found


def services() -> ServiceContext:
    """Return the service context."""
    return container().services


_SLOTS = "ghostpost.export_slots"
_slots_lock = threading.Lock()
_RATE_LIMITER = "ghostpost.rate_limiter"


def rate_limiter_of(app: Flask) -> RateLimiter:
    """Return the app's rate limiter (built on first use from `rate_limit_storage_uri`): the
    web's sign-in limits and the API's budgets count in the same store."""
    with _slots_lock:
        found = app.extensions.get(_RATE_LIMITER)
        if found is None:
            built: Container = app.extensions["ghostpost"]
            found = app.extensions[_RATE_LIMITER] = rate_limiter(
                built.settings.rate_limit_storage_uri
            )
    limiter: RateLimiter = found
    return limiter


def share_rate_limiter(source: Flask, target: Flask) -> None:
    """Make `target` (another app on the same container, such as the Mastodon face) count in
    `source`'s limiter: a client's budget is one budget whichever host it calls."""
    limiter = rate_limiter_of(source)
    with _slots_lock:
        target.extensions[_RATE_LIMITER] = limiter


def export_slots(app: Flask) -> exports.ExportSlots:
    """Return the app's export counters (built on first use from the rate-limit storage)."""
    with _slots_lock:
        found = app.extensions.get(_SLOTS)
        if found is None:
            built: Container = app.extensions["ghostpost"]
            settings, clock = built.settings, built.clock
            # A lease outlives the longest a chunk may take to send, several times over.
            ttl = max(60.0, 4 * settings.export_send_timeout_seconds)
            found = make_slots(
                settings.rate_limit_storage_uri, lambda: clock.now().timestamp(), ttl
            )
            app.extensions[_SLOTS] = found
    slots: exports.ExportSlots = found
    return slots


def _socket() -> socket.socket | None:
    """Return the client's socket where the server exposes it (werkzeug, gunicorn)."""
    for key in ("werkzeug.socket", "gunicorn.socket"):
        found = request.environ.get(key)
        if isinstance(found, socket.socket):
            return found
    return None


def attachment(export: exports.Export) -> Response:
    """Return the export as a streamed download (the rows are read while it is sent).

    Admitted first (raises ExportLimitReached: 429). While it streams, the download holds a
    slot and a database connection; both go back when the response is closed, which the server
    does when the download ends, fails, or its reader stops reading: every chunk must be taken
    within `export_send_timeout_seconds` (a socket timeout, where the server exposes its
    socket), else the server drops the connection.
    """
    built = container()
    settings = built.settings
    lease = exports.admit(
        export,
        export_slots(current_app._get_current_object()),  # type: ignore[attr-defined]
        exports.ExportLimits(settings.export_max_concurrent, settings.export_max_per_reader),
    )
    sock = _socket()
    timeout = settings.export_send_timeout_seconds
    in_progress = metrics_of(current_app._get_current_object()).exports_in_progress  # type: ignore[attr-defined]
    in_progress.inc()
    released = threading.Lock()

    def release() -> None:
        lease.release()
        # Once: the body's end and the response's close both release.
        if released.acquire(blocking=False):
            in_progress.dec()

    def body() -> Iterator[str]:
        previous = sock.gettimeout() if sock is not None else None
        if sock is not None:
            sock.settimeout(timeout)
        try:
            for chunk in export.stream():
                lease.renew()
                yield chunk
        finally:
            # Released here too: some servers (and test clients) close the response late.
            release()
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.settimeout(previous)  # a kept-alive connection waits as before

    response = Response(body(), content_type=export.media_type)
    response.call_on_close(release)  # also when the body never started
    response.headers["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
