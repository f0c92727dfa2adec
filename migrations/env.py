"""Alembic environment: the URL comes from ghostpost Settings unless the caller set one."""

from __future__ import annotations

from alembic import context

from ghostpost.db import models  # noqa: F401  (registers the tables)
from ghostpost.db.base import Base
from ghostpost.db.engine import make_engine
from ghostpost.settings import Settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or Settings.load().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                # Never queue behind a long lock forever during a deploy.
                connection.exec_driver_sql("SET lock_timeout = '10s'")
                # End the transaction the SET began, or Alembic would nest in it and never commit.
                connection.commit()
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        # Also when a migration refuses (e.g. 0008 finding two users of one principal): the
        # pooled connection must close now, not whenever the garbage collector finds it.
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
