"""Shared fixtures: a migrated database per test, a fixed clock, the app and its services.

Databases are copied from templates built once per session: one migrated with Alembic, and one
that also holds the seeded world (tests/support/world.py). A test that asks for `world` starts
on a copy of the seeded template instead of building the world again (10 committed
transactions and six password hashes per test); `world` checks that nothing touched the copy
before it, so every test sees exactly the world it would have built itself.
"""

from __future__ import annotations

import gc
import itertools
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from hypothesis import settings as hypothesis_settings
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket

from ghostpost import create_app
from ghostpost.bootstrap import Container, bootstrap
from ghostpost.cli import alembic_config
from ghostpost.clock import FixedClock
from ghostpost.db.base import Base
from ghostpost.domain.model import Window
from ghostpost.settings import Settings
from tests.support.compiled_cache import share_engine_statements, share_mapper_statements
from tests.support.pds_fixture import bluesky_pds  # noqa: F401  (session-wide real PDS)
from tests.support.platforms import case  # noqa: F401  (each real platform, connected)
from tests.support.postgres import PostgresServer, running_postgres
from tests.support.richtext_oracle import richtext_oracle  # noqa: F401  (one Node for @atproto/api)
from tests.support.routing_cache import install as share_url_rules
from tests.support.tracing import generation_untraced, untraced
from tests.support.world import (
    SEEDED_FROM,
    TEST_HASHER,
    OpenedTemplate,
    World,
    WorldTemplate,
    build_world,
    build_world_template,
    derive_template,
    settings_for,
)

# Tests never fail on wall-clock time: Hypothesis' default 200 ms deadline per example failed
# a property test on a machine busy with other work (an example took 308 ms once, 40 ms again).
hypothesis_settings.register_profile("ghostpost", deadline=None)
hypothesis_settings.load_profile("ghostpost")

START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
#: GP_TEST_DB=postgresql runs the whole suite against a real PostgreSQL server it starts itself.
BACKEND = os.environ.get("GP_TEST_DB", "sqlite")
if BACKEND not in ("sqlite", "postgresql"):
    raise RuntimeError(f"GP_TEST_DB must be sqlite or postgresql, not {BACKEND!r}")
_database_numbers = itertools.count(1)
# Every test builds an app; its ~120 URL rules are compiled once per session.
share_url_rules()
# Every test builds an engine; each statement is compiled once per session, not once per test.
share_mapper_statements(Base.registry.mappers)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def pytest_report_header() -> str:
    return f"ghostpost database backend: {BACKEND}"


#: Full collections only after this many younger ones (Python's default is 10); see below.
FULL_COLLECTION_EVERY = 1000


def pytest_collection_finish(session: pytest.Session) -> None:
    """Keep the garbage collector's full passes off the modules, caches and collected tests.

    A part's process holds 500,000-700,000 objects once its caches are warm (the collected
    modules and tests, the shared compiled statements, Hypothesis' state), and each full pass of
    the collector walked all of them: 9 s of its 123 s of CPU for tests/functional's second half,
    5 of them inside the state-machine test, which allocates fast. Frozen, what collection
    built is never walked again; with full passes 100 times rarer, the garbage they would have
    found waits longer. Measured on that half, alone, with coverage (2026-12-07): time in the
    collector 11.0 s -> 2.8 s, CPU 118-123 s -> 110 s, peak RSS 383 -> 576 MB (the waiting
    garbage); tests/unit/domain 37.0 -> 35.2 s. Young collections keep their defaults: a larger
    first threshold made them cost more (tests/unit/domain: 1.0 -> 3.6 s).
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, leave out the tests marked `backend_independent(reason)` (run on SQLite)."""
    for item in items:
        marker = item.get_closest_marker("backend_independent")
        if marker is not None and not (marker.args and str(marker.args[0]).strip()):
            raise pytest.UsageError(f"{item.nodeid}: backend_independent needs a reason")
    if BACKEND != "postgresql":
        return
    left_out = [item for item in items if item.get_closest_marker("backend_independent")]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not item.get_closest_marker("backend_independent")]


#: The PostgreSQL pass traces coverage in these tests only. Its coverage adds to SQLite's only
#: what PostgreSQL alone runs (its branches in ghostpost/db: the locking insert, the deferred
#: append, idempotency claims, streamed exports, disconnects), and these tests reach all of
#: it: the combined report is the same with or without the others traced, which then run
#: about 30% less CPU. Check after changing PostgreSQL-only code: scripts/postgresql-coverage-gaps.
TRACE_ALL = os.environ.get("GP_TRACE_ALL") == "1"  # every test traced, for that check
POSTGRESQL_TRACED = (
    "tests/integration/",
    "tests/functional/test_api_idempotency.py",
    "tests/functional/test_api_posts.py",
    "tests/functional/test_database_outage.py",
    "tests/functional/test_disclosure_integrity_hotpath.py",
    "tests/functional/test_export_limits.py",
    "tests/functional/test_exports.py",
    "tests/functional/test_mastodon_idempotency.py",
)


#: The SQLite pass runs the tests listed in tests/sqlite_untraced.txt (test ids, or files)
#: untraced: every branch of ghostpost each reaches, the traced tests reach too, so the report
#: is the same (chosen by scripts/sqlite-untraced-plan from a run with per-test contexts,
#: costliest first; checked by scripts/sqlite-untraced-check). A test not listed is traced.
SQLITE_UNTRACED_TESTS = frozenset(
    line.strip()
    for line in (Path(__file__).parent / "sqlite_untraced.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)


def sqlite_untraced(nodeid: str) -> bool:
    """Whether the SQLite pass runs this test untraced."""
    return nodeid in SQLITE_UNTRACED_TESTS or nodeid.split("::")[0] in SQLITE_UNTRACED_TESTS


def _untraced(nodeid: str) -> bool:
    if TRACE_ALL:
        return False
    if BACKEND == "postgresql":
        return not nodeid.startswith(POSTGRESQL_TRACED)
    return sqlite_untraced(nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """Under coverage, a test outside POSTGRESQL_TRACED (PostgreSQL) or listed in
    tests/sqlite_untraced.txt (SQLite) runs untraced."""
    if not _untraced(item.nodeid):
        yield
        return
    with untraced():
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Under coverage, a `@given` test's body is traced, Hypothesis generating its inputs is not."""
    with generation_untraced(getattr(item, "obj", None)):
        yield


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer | None]:
    if BACKEND != "postgresql":
        yield None
        return
    with running_postgres() as server:
        yield server


@pytest.fixture
def fresh_database_url(tmp_path: Path, postgres: PostgresServer | None) -> Iterator[str]:
    """An empty database on the backend under test."""
    if postgres is None:
        yield sqlite_url(tmp_path / f"fresh-{next(_database_numbers)}.db")
        return
    name = f"fresh_{next(_database_numbers)}"
    yield postgres.create_database(name)
    postgres.drop_database(name)


@pytest.fixture(scope="session")
def migrated_template(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None
) -> str:
    """One database migrated with Alembic; every test gets a copy (fast, and real migrations)."""
    if postgres is None:
        path = tmp_path_factory.mktemp("template") / "template.db"
        command.upgrade(alembic_config(sqlite_url(path)), "head")
        return str(path)
    url = postgres.create_database("gp_template")
    command.upgrade(alembic_config(url), "head")
    return "gp_template"


@pytest.fixture(scope="session")
def world_template(
    tmp_path_factory: pytest.TempPathFactory,
    migrated_template: str,
    postgres: PostgresServer | None,
) -> WorldTemplate:
    """A copy of the migrated template with the world built into it, at START (built once)."""
    root = tmp_path_factory.mktemp("world-template")
    if postgres is None:
        path = root / "world.db"
        shutil.copy(migrated_template, path)
        url, database = sqlite_url(path), str(path)
    else:
        database = "gp_world_template"
        url = postgres.create_database(database, template=migrated_template)
    return build_world_template(url, database, settings_for(url, root), START, TEST_HASHER)


@pytest.fixture
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    migrated_template: str,
    postgres: PostgresServer | None,
    clock: FixedClock,
) -> Iterator[str]:
    """A database of the test's own: the seeded world's template when the test asks for
    `world` with the clock at START (the world would be built the same), else the migrated one.
    On PostgreSQL it is dropped after the test: the cluster lives on a tmpfs, where the suite's
    1,400 copies of a 7 MB template held about 9.5 GB of memory until the run ended."""
    template = migrated_template
    if "world" in request.fixturenames and clock.now() == START:
        # A module may keep a template built further than the world, for the tests that ask
        # for its fixture: `pytest.mark.seeded_template(fixture, template fixture)`.
        further = request.node.get_closest_marker("seeded_template")
        if further is not None and further.args[0] in request.fixturenames:
            seeded: WorldTemplate = request.getfixturevalue(further.args[1])
        elif "opened_window" in request.fixturenames:
            seeded = request.getfixturevalue("opened_template").seeded
        else:
            seeded = request.getfixturevalue("world_template")
        request.node.stash[SEEDED_FROM] = seeded
        seeded.copy_files_to(tmp_path)
        template = seeded.database
    if postgres is None:
        path = tmp_path / "ghostpost.db"
        shutil.copy(template, path)
        yield sqlite_url(path)
        return
    name = f"test_{next(_database_numbers)}"
    yield postgres.create_database(name, template=template)
    postgres.drop_database(name)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return settings_for(database_url, tmp_path)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def container(settings: Settings, clock: FixedClock) -> Iterator[Container]:
    built = bootstrap(settings, clock=clock, password_hasher=TEST_HASHER)
    share_engine_statements(built.engine)
    yield built
    built.dispose()


@pytest.fixture
def world(request: pytest.FixtureRequest, container: Container) -> World:
    """A principal with a local account, two writers, a manager, an auditor, an outsider."""
    seeded = request.node.stash.get(SEEDED_FROM, None)
    if seeded is None:
        return build_world(container)
    return seeded.world_for(container)


@pytest.fixture(scope="session")
def opened_template(
    tmp_path_factory: pytest.TempPathFactory,
    world_template: WorldTemplate,
    postgres: PostgresServer | None,
) -> OpenedTemplate:
    """A copy of the world's template with `opened_window`'s window built into it (once)."""
    seeded, window, _ = derive_template(
        tmp_path_factory,
        world_template,
        postgres,
        "opened",
        lambda world: world.approve_notice(world.open_window()),
    )
    return OpenedTemplate(seeded, window)


@pytest.fixture
def opened_window(request: pytest.FixtureRequest, world: World) -> Window:
    """The local account's window, opened now with the defaults and its notice approved:
    `world.approve_notice(world.open_window())`, the template's when the test started on its
    copy (`database_url` starts a test asking for this fixture there)."""
    template: OpenedTemplate = request.getfixturevalue("opened_template")
    if request.node.stash.get(SEEDED_FROM, None) is template.seeded:
        return template.window_for(world)
    return world.approve_notice(world.open_window())


class SharedTemplateCode(BytecodeCache):
    """Jinja's compiled templates, kept for the whole session: every test's app is created with
    the same Jinja settings, so parsing and compiling each template once is enough. A bucket is
    keyed by the template's name and file and checks the source's checksum on load."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


TEMPLATE_CODE = SharedTemplateCode()


@pytest.fixture
def app(container: Container):  # type: ignore[no-untyped-def]
    built = create_app(container=container)
    built.jinja_env.bytecode_cache = TEMPLATE_CODE
    return built


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()
