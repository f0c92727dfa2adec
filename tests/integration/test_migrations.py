"""Alembic: the migrations build the schema the models describe, up and down."""

from __future__ import annotations

from alembic import command

from ghostpost.cli import alembic_config


def test_upgrading_an_empty_database_matches_the_models_exactly(fresh_database_url: str) -> None:
    config = alembic_config(fresh_database_url)
    command.upgrade(config, "head")
    command.check(config)  # raises when models and migrations disagree


def test_the_schema_downgrades_to_nothing_and_upgrades_again(fresh_database_url: str) -> None:
    config = alembic_config(fresh_database_url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    command.check(config)
