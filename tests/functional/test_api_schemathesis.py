"""Schemathesis fuzzes every operation of /api/v1/openapi.json with a valid token: no request it
generates, valid or not, gets a 5xx, an undocumented status or media type, or a body or header
that breaks the document.

Each operation runs MAX_EXAMPLES cases per mode through Hypothesis (`operation.as_strategy`),
against a real database on the backend under test:

- positive: data the document allows (mostly unknown accounts and writers, so 404 and 422);
- steered: positive data pointed at the client's real account, writer and posts, so the
  success responses (201 with a post, 200 pages) are checked against their schemas too;
- negative: data the document forbids (wrong types, missing fields, bad headers), for the
  operations that take any input; it must be refused with a 4xx (`negative_data_rejection`,
  `missing_required_header`).

Each case prints its operation, mode, case count and statuses (`pytest -s`). The sequences that
follow the document's links (create -> get -> cancel) are in test_api_stateful_fuzz.py.
"""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.transport.serialization import Binary

from ghostpost import create_app
from ghostpost.api.docs import openapi_document
from ghostpost.settings import Settings
from tests.conftest import BACKEND
from tests.support import images
from tests.support.api import ALL_SCOPES, Scheduler, scheduler_for
from tests.support.tracing import generation_untraced
from tests.support.world import World

#: Examples per operation and generation mode: bounded so the whole file runs in seconds.
#: The document's input space is explored in full on SQLite; PostgreSQL runs every operation
#: and mode on fewer cases, enough to send its unknown ids, huge numbers and odd text to that
#: database too (hostile values PostgreSQL alone refuses are pinned in test_hostile_input.py).
MAX_EXAMPLES = {"sqlite": 30, "postgresql": 12}[BACKEND]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    # Both only judge negative cases: forbidden data must get a 4xx, a missing header a 4xx.
    negative_data_rejection,
    missing_required_header,
]


#: What refusing data the document forbids may answer: schemathesis's default statuses, and 413,
#: which a body over the 1 MiB limit gets before it is parsed (a generated thread of long
#: texts reaches it now and then; the operations document it).
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [
                    *("400", "401", "403", "404", "405", "406", "409", "413", "415"),
                    *("422", "428", "429", "5xx"),
                ]
            }
        }
    }
)


#: The app the document is read from. It needs no database: building it connects to nothing.
DOCUMENT_APP = create_app(
    Settings(database_url="sqlite:///:memory:", secret_key="x" * 32, environment="test")
)
DOCUMENT = openapi_document(DOCUMENT_APP)
#: One schema for the module. Each case is sent to its test's own app (`app=` in
#: call_and_validate), but the schema keeps the constants schemathesis harvests from the app's
#: modules (its analysis.constants), and harvesting them again for each test's new app was 30%
#: of this file's time (py-spy: 7.6 s of 25.7 s on SQLite, measured 2026-12-07).
SCHEMA = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", DOCUMENT_APP, config=CONFIG)
_OPS = {
    (method.upper(), path): op
    for path, item in DOCUMENT["paths"].items()
    for method, op in item.items()
    if method in ("get", "post", "put", "patch", "delete")
}
OPERATIONS = list(_OPS)
#: Operations with a body or query/header parameters: the ones negative data can reach.
TAKE_INPUT = {
    key
    for key, op in _OPS.items()
    if "requestBody" in op or any(p.get("in") != "path" for p in op.get("parameters", []))
}
CASES = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode}")
    for method, path in OPERATIONS
    for mode in ("positive", "steered", "negative")
    if mode != "negative" or (method, path) in TAKE_INPUT
]


@pytest.fixture
def settings(settings: Settings) -> Settings:  # overrides tests/conftest.py: no rate limit here
    return settings.replace(api_rate_limit="100000 per minute")


@pytest.fixture
def scheduler(client: FlaskClient, world: World) -> Scheduler:
    world.approve_notice(world.open_window(hours=24 * 30))
    # Every scope, audit:read and guards:write included, so every operation can answer 2xx.
    scheduler = scheduler_for(client, world, scopes=(*ALL_SCOPES, "audit:read", "guards:write"))
    created = scheduler.create(
        {"account": world.account.id, "text": "A first post", "author": world.writer_a.email}
    )
    assert created.status_code == 201
    world.run_notary()  # a signed tree head, so the public log's operations can answer 2xx
    return scheduler


def steer(case: Any, world: World, post_id: str, media_id: str) -> Any:
    """Point generated references at things that exist for this client."""
    if case.operation.path == "/api/v1/media":
        # An image the client could upload (random bytes are never one).
        case.body = {"file": Binary(images.png()), "description": "A chart"}
    elif isinstance(case.body, dict) and case.operation.path in (
        "/api/v1/posts",
        "/api/v1/preview",
    ):
        case.body.update(account=world.account.id, author=world.writer_a.email)
    if "account_id" in case.path_parameters:
        case.path_parameters["account_id"] = world.account.id
    if "post_id" in case.path_parameters:
        case.path_parameters["post_id"] = post_id
    if "media_id" in case.path_parameters:
        case.path_parameters["media_id"] = media_id
    for name in ("account", "author", "window", "cursor"):
        case.query.pop(name, None)
    if case.operation.path == "/api/v1/public/consistency":
        case.query.update({"from": 1, "to": 1})
    return case


def test_the_document_lists_every_api_route(app: Flask) -> None:
    routes = {
        (method, rule.rule.replace("<", "{").replace(">", "}"))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api_v1.")
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    assert routes == set(OPERATIONS)


def test_the_fuzzed_document_is_the_one_each_test_app_serves(client: FlaskClient) -> None:
    # The cases are drawn from DOCUMENT_APP's document and sent to the test's app.
    assert client.get("/api/v1/openapi.json").get_json() == DOCUMENT


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_every_operation_conforms_to_the_document(
    app: Flask, world: World, scheduler: Scheduler, method: str, path: str, mode: str
) -> None:
    operation = SCHEMA[path][method]
    post_id = scheduler.get("/api/v1/posts").get_json()["items"][0]["id"]
    uploaded = scheduler.post(
        "/api/v1/media",
        data={"file": (io.BytesIO(images.png()), "a.png")},
        content_type="multipart/form-data",
    )
    media_id = uploaded.get_json()["id"]
    generation = GenerationMode.NEGATIVE if mode == "negative" else GenerationMode.POSITIVE
    strategy = operation.as_strategy(generation_mode=generation)
    if mode == "steered":
        strategy = strategy.map(lambda case: steer(case, world, post_id, media_id))
    statuses: Counter[int] = Counter()
    checks = CHECKS
    if mode == "steered" and path == "/api/v1/media":
        # The steered body is a real image put in place of the generated one; schemathesis
        # reads a replaced multipart body as schema-violating, which this check then judges.
        checks = [check for check in CHECKS if check is not negative_data_rejection]

    @given(case=strategy)
    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def run(case: Any) -> None:
        response = case.call_and_validate(headers=scheduler.auth, checks=checks, app=app)
        statuses[response.status_code] += 1

    # Coverage traces each case's call of the API, not schemathesis generating the cases.
    with generation_untraced(run):
        run()
    # The case count for this operation and mode (`pytest -s` shows it).
    print(
        f"\n{method} {path} {mode}: {sum(statuses.values())} cases {dict(sorted(statuses.items()))}"
    )
    if mode == "steered":
        assert any(200 <= status < 300 for status in statuses), statuses
