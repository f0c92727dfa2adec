"""The one place web errors become HTTP responses: problem+json for JSON clients, HTML otherwise."""

from __future__ import annotations

import logging

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException

from ghostpost.db.engine import DATABASE_UNAVAILABLE
from ghostpost.domain.errors import DomainError
from ghostpost.http_surface import http_problem_code, problem_response, problem_title
from ghostpost.services.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PolicyRefused,
    ValidationFailed,
)
from ghostpost.services.exports import ExportLimitReached

log = logging.getLogger("ghostpost.web")

STATUS_FOR: dict[type[DomainError], int] = {
    ExportLimitReached: 429,
    NotFound: 404,
    Forbidden: 403,
    Conflict: 409,
    ValidationFailed: 422,
    PolicyRefused: 422,
}


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" or request.path.startswith(("/api/", "/healthz"))


def problem(status: int, code: str, detail: str, **extra: object) -> Response:
    """Render an RFC 9457 problem, as JSON or as an HTML page titled as the JSON is."""
    if _wants_json():
        return problem_response(status, code, detail, **extra)
    title = problem_title(status, code)
    html = render_template("error.html", status=status, title=title, detail=detail)
    return Response(html, status=status, mimetype="text/html")


def register(app: Flask) -> None:
    """Attach the handlers to the app."""

    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> Response:
        status = next((s for t, s in STATUS_FOR.items() if isinstance(exc, t)), 400)
        extra: dict[str, object] = {}
        if isinstance(exc, ValidationFailed) and exc.fields:
            extra["errors"] = exc.fields
        response = problem(status, exc.code, exc.message, **extra)
        if isinstance(exc, ExportLimitReached):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        response = problem(status, http_problem_code(exc), exc.description or "")
        if exc.response is not None and "Retry-After" in exc.response.headers:
            response.headers["Retry-After"] = exc.response.headers["Retry-After"]
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, int):
            response.headers["Retry-After"] = str(retry_after)
        return response

    def _db_down(exc: Exception) -> Response:
        log.error("database unavailable: %s", exc)
        response = problem(
            503, "database_unavailable", "The database is not reachable or busy; retry shortly."
        )
        response.headers["Retry-After"] = "5"
        return response

    for error_type in DATABASE_UNAVAILABLE:
        app.register_error_handler(error_type, _db_down)
