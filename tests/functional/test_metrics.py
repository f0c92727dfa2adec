"""GET /metrics: Prometheus text for the operator's scraper, and for no one else."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from ghostpost import create_app
from ghostpost.bootstrap import bootstrap
from ghostpost.clock import FixedClock
from ghostpost.settings import Settings, SettingsError
from tests.support.web import sign_in
from tests.support.world import World

TOKEN = "metrics-token-0123456789abcdef-0123"
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings(settings: Settings) -> Settings:  # overrides tests/conftest.py: /metrics on
    return settings.replace(metrics_token=TOKEN)


def samples(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Cookie": "x=y"}],
    ids=["none", "wrong", "no-bearer", "cookie"],
)
def test_without_the_token_there_is_no_metrics_page(client: FlaskClient, headers: dict) -> None:  # type: ignore[type-arg]
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 404
    assert b"ghostpost_" not in response.get_data()


def test_a_signed_in_manager_without_the_token_gets_nothing_either(
    world: World, client: FlaskClient
) -> None:
    sign_in(client, world.manager.email)
    assert client.get("/metrics").status_code == 404


def test_with_no_token_configured_the_page_does_not_exist(
    settings: Settings, client: FlaskClient
) -> None:
    off = bootstrap(settings.replace(metrics_token=""))
    try:
        response = create_app(container=off).test_client().get("/metrics", headers=SCRAPER)
    finally:
        off.dispose()
    assert response.status_code == 404


def test_a_short_token_is_a_configuration_error(settings: Settings) -> None:
    with pytest.raises(SettingsError, match="metrics_token"):
        settings.replace(metrics_token="short")


def test_the_scraper_sees_queue_outcomes_notary_lag_latency_and_exports(
    world: World, clock: FixedClock, client: FlaskClient
) -> None:
    world.approve_notice(world.open_window())
    world.submit(world.writer_a, "Great keynote")
    before = samples(client)
    assert before[("ghostpost_queue_posts", (("state", "scheduled"),))] >= 1
    assert before[("ghostpost_queue_posts", (("state", "cancelled"),))] == 0
    unsigned = before[("ghostpost_notary_unsigned_entries", ())]
    assert unsigned > 0, "entries were appended and no notary pass ran"

    clock.advance(hours=3)
    world.run_worker()  # publishes what is due, then a notary pass signs the head
    after = samples(client)
    local = (("outcome", "published"), ("platform", "local"))
    assert after[("ghostpost_publish_outcomes_posts", local)] >= 1
    assert after[("ghostpost_notary_unsigned_entries", ())] == 0
    assert after[("ghostpost_notary_seconds_since_signature", ())] == 0
    assert after[("ghostpost_ledger_entries", ())] > before[("ghostpost_ledger_entries", ())]

    sign_in(client, world.auditor.email)
    assert client.get("/queue").status_code == 200
    export = client.get("/ledger/export?report=authorship&format=csv")
    assert export.status_code == 200
    during = samples(client)
    assert during[("ghostpost_exports_in_progress", ())] == 1, "the download is still open"
    export.get_data()
    export.close()
    done = samples(client)
    assert done[("ghostpost_exports_in_progress", ())] == 0
    queue = (("method", "GET"), ("route", "/queue"))
    assert done[("ghostpost_request_duration_seconds_count", queue)] == 1
