"""The append-only guard stays in place: after every migration step and after `db upgrade`, the
triggers refusing UPDATE and DELETE (and TRUNCATE on PostgreSQL) on the ledger tables exist.

On SQLite a `batch_alter_table` of a ledger table recreates the table without its triggers
(migration 0004's docstring says to re-create them in any such migration); this walks every
revision, one at a time, so a migration that forgets fails here on the backend under test
(GP_TEST_DB=sqlite or postgresql).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from ghostpost.cli import alembic_config, main

GUARDED_FROM = "0004_ledger_checkpoints"
TABLES = ("ledger_entries", "ledger_checkpoints")


def expected_triggers(dialect: str) -> set[tuple[str, str]]:
    """(table, trigger) pairs the guard consists of."""
    if dialect == "postgresql":
        return {(t, f"{t}_{kind}") for t in TABLES for kind in ("append_only", "no_truncate")}
    return {(t, f"{t}_no_{action}") for t in TABLES for action in ("update", "delete")}


def triggers(url: str) -> set[tuple[str, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as db:
            if engine.dialect.name == "postgresql":
                rows = db.execute(
                    sa.text(
                        "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c"
                        " ON c.oid = t.tgrelid WHERE NOT t.tgisinternal AND t.tgenabled <> 'D'"
                    )
                ).all()
            else:
                rows = db.execute(
                    sa.text("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")
                ).all()
        return {(str(table), str(name)) for table, name in rows if table in TABLES}
    finally:
        engine.dispose()


def dialect_of(url: str) -> str:
    return "postgresql" if url.startswith("postgresql") else "sqlite"


def test_every_migration_step_keeps_the_ledger_triggers(fresh_database_url: str) -> None:
    config = alembic_config(fresh_database_url)
    revisions = [r.revision for r in ScriptDirectory.from_config(config).walk_revisions()][::-1]
    assert GUARDED_FROM in revisions
    expected = expected_triggers(dialect_of(fresh_database_url))
    guarded = False
    for revision in revisions:
        command.upgrade(config, revision)
        guarded = guarded or revision == GUARDED_FROM
        if guarded:
            assert triggers(fresh_database_url) >= expected, f"after {revision}"


def test_db_upgrade_ends_with_the_triggers_that_refuse_changes(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("GHOSTPOST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("GHOSTPOST_DATABASE_URL", fresh_database_url)
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert triggers(fresh_database_url) >= expected_triggers(dialect_of(fresh_database_url))
    engine = sa.create_engine(fresh_database_url)
    try:
        with engine.begin() as db:
            db.execute(
                sa.text(
                    "INSERT INTO ledger_entries (seq, occurred_at, tag, actor, subject, data,"
                    " prev_hash, entry_hash) VALUES (1, 't', 'x', 'a', 's', '{}', :h, :h)"
                ),
                {"h": "0" * 64},
            )
        for statement in (
            "UPDATE ledger_entries SET tag = 'y'",
            "DELETE FROM ledger_entries",
        ):
            with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as db:
                db.execute(sa.text(statement))
    finally:
        engine.dispose()


def test_downgrading_and_upgrading_again_restores_the_triggers(fresh_database_url: str) -> None:
    config = alembic_config(fresh_database_url)
    command.upgrade(config, "head")
    command.downgrade(config, "0003_idempotency_keys")
    assert triggers(fresh_database_url) == set()
    command.upgrade(config, "head")
    assert triggers(fresh_database_url) >= expected_triggers(dialect_of(fresh_database_url))
