"""Sign-in throttling per address, per account and address, and per account (only for addresses
that failed), so that nobody can lock a real user out from elsewhere; without telling which
accounts exist; and rate-limit counters shared by several processes through Redis."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ghostpost import create_app
from ghostpost.bootstrap import Container, bootstrap
from ghostpost.clock import FixedClock
from ghostpost.settings import Settings
from tests.support.api import create_api_client, fetch_token
from tests.support.redis_server import running_redis
from tests.support.web import PASSWORD
from tests.support.world import TEST_HASHER, World, build_world


def attempt(client: FlaskClient, email: str, password: str, address: str) -> int:
    """One sign-in POST from `address` in a fresh browser, with that page's CSRF token."""
    client = client.application.test_client()
    environ = {"REMOTE_ADDR": address}
    page = client.get("/login", environ_base=environ).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": found.group(1)},
        environ_base=environ,
    )
    return response.status_code


def test_failed_sign_ins_from_one_address_lock_that_address_out_of_that_account(
    client: FlaskClient, world: World
) -> None:
    email = world.writer_a.email
    statuses = [attempt(client, email, "wrong-password", "10.0.0.1") for _ in range(5)]
    assert statuses == [401] * 5
    # The sixth try from that address is refused, even with the right password...
    assert attempt(client, email, PASSWORD, "10.0.0.1") == 429
    # ...but the real user, elsewhere, is not locked out by someone else's guesses.
    assert attempt(client, email, PASSWORD, "10.0.9.9") == 302
    # Another account from the guessing address is not affected either.
    assert attempt(client, world.writer_b.email, PASSWORD, "10.0.0.1") == 302


def test_guesses_spread_over_many_addresses_meet_the_account_limit(
    client: FlaskClient, world: World
) -> None:
    email = world.principal.email
    statuses = [attempt(client, email, "wrong-password", f"10.3.0.{n}") for n in range(1, 21)]
    assert statuses == [401] * 20
    # Past the account's limit, every address that has failed recently is refused...
    assert attempt(client, email, "wrong-password", "10.3.0.1") == 429
    assert attempt(client, email, PASSWORD, "10.3.0.2") == 429
    # ...while a correct password from an address with no recent failures still works.
    assert attempt(client, email, PASSWORD, "10.3.1.1") == 302


def test_unknown_and_known_emails_are_throttled_alike(client: FlaskClient, world: World) -> None:
    for email in ("nobody@example.test", world.auditor.email):
        statuses = [attempt(client, email, "wrong", f"10.1.{len(email)}.1") for _ in range(6)]
        # Same answers in the same order: the limit tells nothing about which emails exist.
        assert statuses == [401] * 5 + [429], email


def test_successful_sign_ins_never_lock_an_account(client: FlaskClient, world: World) -> None:
    statuses = [attempt(client, world.manager.email, PASSWORD, f"10.2.0.{n}") for n in range(12)]
    assert statuses == [302] * 12


@pytest.fixture
def two_processes(settings: Settings, clock: FixedClock) -> Iterator[tuple[Flask, Flask, World]]:
    """Two app instances (like two gunicorn processes) sharing one database and one Redis."""
    with running_redis() as redis_url:
        shared = settings.replace(rate_limit_storage_uri=redis_url, api_rate_limit="5 per minute")
        # The test hasher, as every other test's world: what is counted is attempts, not hashing.
        first: Container = bootstrap(shared, clock=clock, password_hasher=TEST_HASHER)
        second: Container = bootstrap(shared, clock=clock, password_hasher=TEST_HASHER)
        try:
            world = build_world(first)
            yield create_app(container=first), create_app(container=second), world
        finally:
            first.dispose()
            second.dispose()


def test_with_redis_the_sign_in_limit_holds_across_processes(
    two_processes: tuple[Flask, Flask, World],
) -> None:
    first, second, world = two_processes
    a, b = first.test_client(), second.test_client()
    address = "192.0.2.10"
    statuses = [attempt(a if n % 2 else b, f"x{n}@example.test", "no", address) for n in range(10)]
    assert statuses == [401] * 10
    # Five attempts went to each process; with per-process memory neither would refuse yet.
    assert attempt(a, world.writer_a.email, PASSWORD, address) == 429
    assert attempt(b, world.writer_a.email, PASSWORD, address) == 429


def test_with_redis_the_failures_per_account_and_address_hold_across_processes(
    two_processes: tuple[Flask, Flask, World],
) -> None:
    first, second, world = two_processes
    a, b = first.test_client(), second.test_client()
    email, address = world.writer_b.email, "192.0.2.20"
    statuses = [attempt(a if n % 2 else b, email, "wrong", address) for n in range(5)]
    assert statuses == [401] * 5
    assert attempt(a, email, PASSWORD, address) == 429
    assert attempt(b, email, PASSWORD, "192.0.2.21") == 302


def test_with_redis_an_api_clients_budget_holds_across_processes(
    two_processes: tuple[Flask, Flask, World],
) -> None:
    first, second, world = two_processes
    api_client, secret = create_api_client(world)
    token = fetch_token(first.test_client(), api_client.client_id, secret)
    statuses = [
        (first if n % 2 else second)
        .test_client()
        .get("/api/v1/accounts", headers={"Authorization": f"Bearer {token}"})
        .status_code
        for n in range(6)
    ]
    # "5 per minute" for the client, counted once across both processes.
    assert statuses == [200] * 5 + [429]
