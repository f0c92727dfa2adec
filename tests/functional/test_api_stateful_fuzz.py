"""Schemathesis' stateful fuzzing of /api/v1: sequences that follow the document's OpenAPI links.

`POST /api/v1/posts` links its 201 to `GET /api/v1/posts/{post_id}` and to
`POST /api/v1/posts/{post_id}/cancel` (`post_id` is `$response.body#/id`), and the 200 of the
GET links on to the cancel, so `schema.as_state_machine()` chains create -> get -> cancel (and
create -> cancel -> ...) with the ids the API really returned. Every response, positive or
negative data, is checked with Schemathesis' default checks (server errors, status codes, media
types, headers, body schemas, negative data rejection, stateful checks) except
`positive_data_acceptance`: schema-valid data may name things that do not exist or that the
client may not use (an unknown cursor, author or window), which the API rightly answers 422 or
404 and a JSON schema cannot express. The run is derandomized so CI
sees the same sequences every time, and prints how many calls it made per operation.

Each scenario runs against its own copy of one seeded database (a file copy on SQLite, `CREATE
DATABASE ... TEMPLATE` on PostgreSQL): Hypothesis needs a scenario's responses, and so the rules
it can draw next, to depend on that scenario alone.
"""

from __future__ import annotations

import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy.engine import make_url

from ghostpost import create_app
from ghostpost.bootstrap import Container, bootstrap
from ghostpost.clock import FixedClock
from ghostpost.settings import Settings
from tests.conftest import BACKEND
from tests.support.api import ALL_SCOPES, scheduler_for
from tests.support.postgres import PostgresServer
from tests.support.tracing import steps_traced_only, traced_step
from tests.support.world import World

#: Scenarios (Hypothesis examples) and the most calls in one: well under a minute per backend.
#: Which call sequences break the API is explored in full on SQLite; PostgreSQL replays a third
#: as many, enough to run every link (create -> get -> cancel) on its statements too.
SCENARIOS = {"sqlite": 60, "postgresql": 20}[BACKEND]
STEPS = 8
CREATE = "POST /api/v1/posts"
GET = "GET /api/v1/posts/{post_id}"
CANCEL = "POST /api/v1/posts/{post_id}/cancel"


@pytest.fixture
def settings(settings: Settings) -> Settings:  # overrides tests/conftest.py: no rate limit here
    return settings.replace(api_rate_limit="100000 per minute")


def test_the_document_links_a_created_post_to_its_operations(app: Flask) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    links = schema.raw_schema["paths"]["/api/v1/posts"]["post"]["responses"]["201"]["links"]
    assert {link["parameters"]["post_id"] for link in links.values()} == {"$response.body#/id"}
    assert schema.statistic.transitions.total >= 3


def clone_database(url: str, postgres: PostgresServer | None) -> str:
    """Copy a database nothing is connected to; return the copy's URL."""
    name = f"fuzz_{uuid.uuid4().hex[:12]}"
    if postgres is None:
        source = Path(make_url(url).database or "")
        copy = source.with_name(f"{name}.db")
        shutil.copy(source, copy)
        return f"sqlite:///{copy}"
    return postgres.create_database(name, template=make_url(url).database)


class Copies:
    """A WSGI app that is, each scenario, a new app on a new copy of the seeded database."""

    def __init__(self, settings: Settings, clock: FixedClock, make: Callable[[], str]) -> None:
        self.settings, self.clock, self.make = settings, clock, make
        self.start = clock.now()
        self.container: Container | None = None
        self.app: Flask | None = None

    @traced_step
    def renew(self) -> None:
        self.close()
        self.clock.set(self.start)
        settings = self.settings.replace(database_url=self.make())
        self.container = bootstrap(
            settings, clock=self.clock, password_hasher=PasswordHasher(1, 8, 1)
        )
        self.app = create_app(container=self.container)

    def close(self) -> None:
        if self.container is not None:
            self.container.dispose()
            self.container = None

    @traced_step
    def __call__(self, environ: Any, start_response: Any) -> Any:
        assert self.app is not None
        return self.app(environ, start_response)


@pytest.fixture
def copies(
    settings: Settings,
    clock: FixedClock,
    container: Container,
    client: FlaskClient,
    world: World,
    postgres: PostgresServer | None,
) -> Iterator[tuple[Copies, dict[str, str], World]]:
    world.approve_notice(world.open_window(hours=24 * 30))
    # Every scope, so every linked operation can answer 2xx; the token is in every copy.
    auth = scheduler_for(client, world, scopes=(*ALL_SCOPES, "audit:read")).auth
    container.dispose()  # PostgreSQL copies a template only while nobody is connected to it
    apps = Copies(settings, clock, lambda: clone_database(settings.database_url, postgres))
    apps.renew()
    yield apps, auth, world
    apps.close()


def test_stateful_sequences_follow_the_links_without_errors(
    copies: tuple[Copies, dict[str, str], World],
) -> None:
    apps, auth, world = copies
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", apps)
    calls: Counter[tuple[str, int]] = Counter()
    scenarios = 0
    failures: list[str] = []

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            nonlocal scenarios
            scenarios += 1
            apps.renew()

        def before_call(self, case: Any) -> None:
            # Valid submissions point at the client's real account and writer so they create
            # posts (201) whose links the machine can follow; negative data is left alone.
            positive = case.meta is None or not case.meta.generation.mode.is_negative
            if case.operation.label == CREATE and positive and isinstance(case.body, dict):
                case.body.update(account=world.account.id, author=world.writer_a.email)
                case.body.pop("publish_at", None)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": auth}

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            calls[(case.operation.label, response.status_code)] += 1

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            # Collected rather than raised: the database outlives each scenario, so Hypothesis
            # could not replay a failing one identically; the list names every failure instead.
            try:
                case.validate_response(
                    response,
                    excluded_checks=[positive_data_acceptance],
                    transport_kwargs=kwargs or None,
                    recorder=self.recorder,
                )
            except (AssertionError, FailureGroup) as exc:
                failures.append(f"{case.operation.label} -> {response.status_code}: {exc}")

    # Coverage traces the calls of the API (and each scenario's new copy), not Schemathesis
    # generating them and checking the responses against the document.
    with steps_traced_only():
        Machine.run(
            settings=hypothesis_settings(
                max_examples=SCENARIOS,
                stateful_step_count=STEPS,
                derandomize=True,
                phases=[Phase.generate],  # as Schemathesis runs it: the API keeps its state
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
        )
    total = sum(calls.values())
    print(f"\nschemathesis stateful: {scenarios} scenarios, {total} calls")
    for (label, status), count in sorted(calls.items()):
        print(f"  {label} -> {status}: {count}")
    assert not failures, "\n\n".join(failures)
    assert calls[(CREATE, 201)] > 0, calls
    assert calls[(GET, 200)] > 0, calls
    assert calls[(CANCEL, 200)] > 0, calls
    assert not any(status >= 500 for _, status in calls), calls
