"""pytest fixture `bluesky_pds`: one real Bluesky PDS (tests/support/bluesky_pds.py) per session.

Use it from a conftest.py: `from tests.support.pds_fixture import bluesky_pds  # noqa: F401`.
Never skips: without Node.js or the node modules the tests fail, telling to run scripts/pds-deps.
Tests share the PDS, so each should create its own account (unique `<name>.test` handle).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.bluesky_pds import BlueskyPds, PdsNotInstalled, running_bluesky_pds


@pytest.fixture(scope="session")
def bluesky_pds() -> Iterator[BlueskyPds]:
    try:
        with running_bluesky_pds() as pds:
            yield pds
    except PdsNotInstalled as err:
        pytest.fail(f"local Bluesky PDS unavailable: {err}", pytrace=False)
