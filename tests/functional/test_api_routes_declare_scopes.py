"""Every API route declares its OAuth scope, or is listed as public with a reason."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.views import MethodView

from ghostpost.api.oauth import require_scope
from ghostpost.api.scopes import PUBLIC_API_ENDPOINTS, SCOPES

pytestmark = pytest.mark.backend_independent(
    "reads the app's URL map and view attributes; no request reaches a database"
)

API_PREFIXES = ("/api/", "/compat/")
#: Methods Flask answers itself, without calling the view.
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}


def _scope_of(handler: Any) -> str | None:
    scope = getattr(handler, "required_scope", None)
    return scope if isinstance(scope, str) else None


def undeclared_api_routes(app: Flask) -> list[str]:
    """Return "METHOD /rule (endpoint)" for each API route without a known scope or exemption."""
    problems = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIXES) or rule.endpoint in PUBLIC_API_ENDPOINTS:
            continue
        view = app.view_functions[rule.endpoint]
        view_class = getattr(view, "view_class", None)
        for method in sorted((rule.methods or set()) - AUTOMATIC_METHODS):
            scope = _scope_of(view)
            if scope is None and view_class is not None:
                # A MethodView: the scope sits on the method that handles this HTTP verb.
                scope = _scope_of(getattr(view_class, method.lower(), None))
            if scope not in SCOPES:
                problems.append(f"{method} {rule.rule} ({rule.endpoint}): scope {scope!r}")
    return problems


def test_every_api_route_of_the_app_declares_a_scope_or_is_public(app: Flask) -> None:
    assert undeclared_api_routes(app) == []


def test_the_app_has_api_routes_to_check(app: Flask) -> None:
    api_rules = [r for r in app.url_map.iter_rules() if r.rule.startswith(API_PREFIXES)]
    assert api_rules, "no /api/ or /compat/ routes registered: the check would prove nothing"


def test_every_public_endpoint_exists_and_says_why(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    registered = [name for name in PUBLIC_API_ENDPOINTS if name in endpoints]
    assert all(reason.strip() for reason in PUBLIC_API_ENDPOINTS.values())
    # Endpoints of a blueprint that this build does not register are allowed to be missing,
    # but every listed endpoint of a registered blueprint must exist (no stale exemptions).
    blueprints = set(app.blueprints)
    stale = [
        name
        for name in PUBLIC_API_ENDPOINTS
        if name.split(".")[0] in blueprints and name not in registered
    ]
    assert stale == []


def test_the_checker_flags_a_route_without_a_scope() -> None:
    app = Flask(__name__)

    @app.get("/api/v1/naked")
    def naked() -> str:
        return "anyone"

    @app.get("/api/v1/scoped")
    @require_scope("posts:read")
    def scoped() -> str:
        return "token holders"

    @app.get("/compat/mastodon/api/v1/bare")
    def bare() -> str:
        return "anyone"

    @app.get("/elsewhere")
    def elsewhere() -> str:
        return "not an API route"

    class Half(MethodView):
        @require_scope("posts:read")
        def get(self) -> str:
            return "read"

        def post(self) -> str:
            return "unguarded write"

    app.add_url_rule("/api/v1/half", view_func=Half.as_view("half"))

    class Whole(MethodView):
        decorators = [require_scope("posts:write")]  # noqa: RUF012

        def post(self) -> str:
            return "guarded"

    app.add_url_rule("/api/v1/whole", view_func=Whole.as_view("whole"), methods=["POST"])

    assert undeclared_api_routes(app) == [
        "GET /api/v1/naked (naked): scope None",
        "GET /compat/mastodon/api/v1/bare (bare): scope None",
        "POST /api/v1/half (half): scope None",
    ]


def test_the_checker_flags_an_unknown_scope() -> None:
    app = Flask(__name__)

    def view() -> str:
        return "?"

    view.required_scope = "posts:everything"  # type: ignore[attr-defined]
    app.add_url_rule("/api/v1/odd", view_func=view)
    assert undeclared_api_routes(app) == ["GET /api/v1/odd (view): scope 'posts:everything'"]
