"""The one place /api/v1 turns errors into RFC 9457 problems (`application/problem+json`).

Every problem has a stable `type` (`urn:ghostpost:problem:<code>`), its `code`, a `title` that
is the same for every problem of that type, the HTTP `status` and a human `detail`. Validation
problems add `errors`, a map from field name to messages; policy refusals add `refusal`.
Bad input is always a 4xx: nothing a client sends produces a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response
from werkzeug.exceptions import HTTPException

from ghostpost.db.engine import DATABASE_UNAVAILABLE
from ghostpost.domain.errors import DomainError, InvalidTransition
from ghostpost.http_surface import PROBLEM_MIMETYPE as PROBLEM_MIMETYPE  # /api/v1 documents it
from ghostpost.http_surface import http_problem_code, status_phrase
from ghostpost.http_surface import problem_response as problem
from ghostpost.services.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PolicyRefused,
    ValidationFailed,
)
from ghostpost.services.exports import ExportLimitReached
from ghostpost.services.idempotency import IdempotencyMismatch, RequestInFlight

log = logging.getLogger("ghostpost.api")


#: Service errors -> (status, code); the first matching class wins (subclasses first).
SERVICE_ERRORS: tuple[tuple[type[DomainError], int, str], ...] = (
    (PolicyRefused, 422, "policy_refused"),
    (IdempotencyMismatch, 422, "idempotency_key_reused"),
    (RequestInFlight, 409, "idempotency_key_in_flight"),
    (ValidationFailed, 422, "validation_failed"),
    (NotFound, 404, "not_found"),
    (Forbidden, 403, "forbidden"),
    (Conflict, 409, "conflict"),
    (InvalidTransition, 409, "conflict"),
    (ExportLimitReached, 429, "export_limit_reached"),
)


class ApiProblem(Exception):
    """Raised by the API glue to answer with a problem right away."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = dict(errors or {})
        self.headers = dict(headers or {})


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    """Return an RFC 9457 problem response; validation problems name their fields in `errors`."""
    if errors:
        extra["errors"] = dict(errors)
    return problem(status, code, detail, headers=headers, **extra)


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow/webargs messages ({"json": {"a": {"b": ["..."]}}}) into {"a.b": [...]}."""
    found: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = "body" if key == "_schema" else str(key)
            found.update(_flatten(value, f"{prefix}.{name}" if prefix else name))
    elif isinstance(messages, list | tuple):
        texts = [str(m) for m in messages if not isinstance(m, Mapping | list | tuple)]
        if texts:
            found[prefix or "body"] = texts
        for item in messages:
            if isinstance(item, Mapping | list | tuple):
                found.update(_flatten(item, prefix))
    else:
        found[prefix or "body"] = [str(messages)]
    return found


def _webargs_errors(exc: HTTPException) -> dict[str, list[str]]:
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages") if isinstance(data, Mapping) else None
    if not isinstance(messages, Mapping):
        return {}
    # Drop webargs' location level: {"json": {...}} / {"query": {...}} / {"headers": {...}}.
    merged: dict[str, list[str]] = {}
    for value in messages.values():
        merged.update(_flatten(value))
    return merged


def _http(exc: HTTPException) -> Response:
    status = exc.code or 500
    headers: dict[str, str] = {}
    if exc.response is not None and "Retry-After" in exc.response.headers:
        headers["Retry-After"] = exc.response.headers["Retry-After"]
    data = getattr(exc, "data", None)
    if isinstance(data, Mapping) and isinstance(data.get("headers"), Mapping):
        headers.update(data["headers"])
    if status >= 500:
        original = getattr(exc, "original_exception", None)
        if original is not None:
            log.error("unexpected error in the API", exc_info=original)
        return problem_response(
            500, "internal_error", "Something went wrong on our side; it has been logged."
        )
    errors = _webargs_errors(exc)
    if status == 400 and errors:
        return problem_response(400, "invalid_json", "The body is not valid JSON.", errors=errors)
    if status == 422:
        return problem_response(
            422,
            "validation_failed",
            "The request has invalid fields: " + ", ".join(sorted(errors)) + ".",
            errors=errors,
        )
    if status == 413:
        return problem_response(
            413, "payload_too_large", "The request body is larger than the 1 MiB allowed."
        )
    detail = exc.description or status_phrase(status)
    return problem_response(status, http_problem_code(exc), detail, headers=headers)


def _domain(exc: DomainError) -> Response:
    status, code = next(
        ((s, c) for error_type, s, c in SERVICE_ERRORS if isinstance(exc, error_type)),
        (400, exc.code),
    )
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    if isinstance(exc, ValidationFailed):
        errors = {name: [message] for name, message in exc.fields.items()}
    if isinstance(exc, PolicyRefused):
        extra["refusal"] = {"code": exc.refusal_code, "message": exc.message}
    if isinstance(exc, RequestInFlight | ExportLimitReached):
        headers["Retry-After"] = str(exc.retry_after)
    return problem_response(status, code, exc.message, errors=errors, headers=headers, **extra)


def _api_problem(exc: ApiProblem) -> Response:
    return problem_response(
        exc.status, exc.code, exc.detail, errors=exc.errors, headers=exc.headers
    )


def _db_down(exc: Exception) -> Response:
    log.error("database unavailable: %s", exc)
    return problem_response(
        503,
        "database_unavailable",
        "The database is not reachable or busy; retry shortly.",
        headers={"Retry-After": "5"},
    )


def register(bp: Blueprint) -> None:
    """Attach the handlers to an API blueprint."""
    bp.register_error_handler(ApiProblem, _api_problem)
    bp.register_error_handler(DomainError, _domain)
    bp.register_error_handler(HTTPException, _http)
    for error_type in DATABASE_UNAVAILABLE:
        bp.register_error_handler(error_type, _db_down)
