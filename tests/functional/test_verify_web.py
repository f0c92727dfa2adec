"""The public /verify page through the Flask test client: its forms refuse bad input with a form
message (never a 500, never a service call), and it is rate-limited per address.

Checking a real answer in the browser is tests/browser/test_verify_page.py.
"""

from __future__ import annotations

import json
import re

import pytest
from flask.testing import FlaskClient

from ghostpost.web.security import VERIFY_LIMIT
from tests.support.web import csrf_from, sign_in
from tests.support.world import World

BAD_URLS = {
    "": "Enter the address (URL) of a post.",
    "   ": "Enter the address (URL) of a post.",
    "https://example.social/@a/" + "1" * 2100: "at most 2048 characters",
    "javascript:alert(1)": "starts with https://",
    "ftp://example.social/@a/1": "starts with https://",
    "example.social/@a/1": "starts with https://",
    "https://": "starts with https://",
    "http://[::1": "starts with https://",
    "https://example.social/@a/1\x00": "no spaces or control characters",
    "https://example.social/@a /1": "no spaces or control characters",
}


def form_message(html: str) -> str:
    found = re.search(r'<p class="flash error" role="alert" id="[a-z-]+">([^<]*)</p>', html)
    assert found, "no form message on the page"
    return found.group(1)


def test_the_bare_page_shows_both_forms_to_anyone(client: FlaskClient) -> None:
    response = client.get("/verify")

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'name="url"' in html and 'name="answer"' in html
    assert "Check a proof you were given" in html
    assert "verify.js" not in html  # no answer, nothing to check


def test_an_empty_overlong_or_non_http_url_gets_a_form_message(client: FlaskClient) -> None:
    # The service is never asked: these never reach verify_post_url.
    for url, message in BAD_URLS.items():
        response = client.get("/verify", query_string={"url": url})

        assert response.status_code == 422, url
        assert message in form_message(response.get_data(as_text=True)), url


@pytest.mark.parametrize(
    ("pasted", "message"),
    [
        ("", "Paste the answer you were given"),
        ("{not json", "This is not JSON (line 1, column 2)"),
        ('{"format": NaN}', "This is not JSON"),
        ("[" * 100_000, "at most 64 KiB"),
        ("[" * 50_000 + "]" * 50_000, "at most 64 KiB"),
        ("[" * 20_000 + "]" * 20_000, "nested too deeply"),
        ('["ghostpost-verify/v1"]', "This is not a verify answer"),
        ('{"format": "other/v1", "proof": {}}', "This is not a verify answer"),
        ('{"format": "ghostpost-verify/v1", "proof": null}', "carries no proof"),
        ('{"format": "ghostpost-verify/v1", "proof": "x"}', "carries no proof"),
    ],
    ids=[
        *("empty", "bad-json", "nan", "huge", "huge-nested", "deep"),
        *("array", "format", "null", "str"),
    ],
)
def test_a_pasted_answer_that_cannot_be_checked_gets_a_form_message(
    client: FlaskClient, pasted: str, message: str
) -> None:
    token = csrf_from(client, "/verify")

    response = client.post("/verify", data={"answer": pasted, "csrf_token": token})

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in form_message(html)
    assert "verify.js" not in html and "verify-answer" not in html


def test_a_pasted_answer_needs_the_csrf_token(client: FlaskClient) -> None:
    answer = json.dumps({"format": "ghostpost-verify/v1", "proof": None})

    response = client.post("/verify", data={"answer": answer})

    assert response.status_code == 400


def test_verifications_are_rate_limited_per_address_and_the_bare_form_is_free(
    client: FlaskClient,
) -> None:
    amount = int(VERIFY_LIMIT.split()[0])
    for _ in range(amount):
        assert client.get("/verify", query_string={"url": "ftp://x"}).status_code == 422
    assert client.get("/verify").status_code == 200  # not counted

    refused = client.get("/verify", query_string={"url": "ftp://x"})
    other = client.get(
        "/verify", query_string={"url": "ftp://x"}, environ_base={"REMOTE_ADDR": "10.9.9.9"}
    )

    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    as_json = client.get(
        "/verify", query_string={"url": "ftp://x"}, headers={"Accept": "application/json"}
    )
    assert as_json.status_code == 429
    # The API's 429 problem, code and title: one type, whichever surface throttles.
    problem = as_json.get_json(force=True)
    assert (problem["code"], problem["title"]) == ("rate_limited", "Too many requests")
    assert "Too many verifications" in refused.get_data(as_text=True)
    assert other.status_code == 422


def test_a_url_ghostpost_never_published_is_answered_in_plain_words(client: FlaskClient) -> None:
    response = client.get("/verify", query_string={"url": " https://example.social/@x/1 "})

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Not published through ghostpost" in html
    assert 'value="https://example.social/@x/1"' in html
    assert "verify.js" not in html  # no proof to check


def test_a_real_team_post_shows_the_team_to_visitors_and_the_writer_to_auditors_only(
    world: World, client: FlaskClient
) -> None:
    world.approve_notice(world.open_window())
    team = world.submit(world.writer_a, "Team wrote this")
    own = world.submit(world.principal, "I wrote this myself")
    world.run_worker()  # the notice, both posts, then a notary pass
    team_url, own_url = world.post(team.id).platform_url, world.post(own.id).platform_url

    visitor_team = client.get("/verify", query_string={"url": team_url}).get_data(as_text=True)
    visitor_own = client.get("/verify", query_string={"url": own_url}).get_data(as_text=True)

    assert "Written by the team" in visitor_team and "verify.js" in visitor_team
    assert world.writer_a.name not in visitor_team
    assert "Written by the team" not in visitor_own
    assert world.principal.name in visitor_own

    sign_in(client, world.auditor.email)
    auditor_team = client.get("/verify", query_string={"url": team_url}).get_data(as_text=True)
    assert world.writer_a.name in auditor_team
