"""A scheduler posts through /api/v1 with a real OAuth token: create, read, list, cancel,
preview, windows and accounts; it only ever sees its own accounts."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ghostpost.api import v1
from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import Account
from ghostpost.domain.policy import TagMode
from ghostpost.domain.states import PostState
from ghostpost.services import clients, directory
from ghostpost.services.context import Actor
from tests.conftest import START
from tests.support.api import Scheduler, fetch_token, scheduler_for
from tests.support.world import World


@pytest.fixture
def live_window(world: World):  # type: ignore[no-untyped-def]
    window = world.open_window(every=10)
    return world.approve_notice(window)


@pytest.fixture
def scheduler(client: FlaskClient, world: World, live_window) -> Scheduler:  # type: ignore[no-untyped-def]
    return scheduler_for(client, world)


def other_account(world: World, handle: str = "avery_work") -> Account:
    return directory.create_account(
        world.ctx,
        Actor.system("test"),
        principal_id=world.principal.principal_id or 0,
        platform="local",
        handle=handle,
    )


def body(world: World, text: str = "Keynote at 10, see you there", **extra: object) -> dict:  # type: ignore[type-arg]
    return {"account": world.account.id, "text": text, "author": world.writer_a.email, **extra}


def ledger_entries(world: World, tag: str) -> list:  # type: ignore[type-arg]
    with world.ctx.uow() as uow:
        return [e for e in uow.ledger.entries() if e.tag == tag]


def test_a_scheduler_submits_a_post_tagged_and_attributed_to_its_writer(
    scheduler: Scheduler, world: World
) -> None:
    response = scheduler.create(body(world, in_reply_to="109876543210"))

    assert response.status_code == 201
    post = response.get_json()
    assert response.headers["Location"] == f"/api/v1/posts/{post['id']}"
    assert "Idempotent-Replayed" not in response.headers
    # A reply through the API waits for a person (the window's reply_policy, approve by default).
    assert post["state"] == "pending_approval"
    assert post["approval_reasons"] == [
        "a reply through the API or the Mastodon face: a person approves it"
    ]
    # Not final until it goes out: the worker decides the tag, reminder and notice hold then.
    assert post["text_if_published_now"] == "Keynote at 10, see you there #team"
    assert post["decided_at_publication"] == ["tag", "reminder", "notice_hold"]
    assert post["published_text"] is None
    assert "final_text" not in post
    assert post["author"] == {"email": world.writer_a.email, "name": world.writer_a.name}
    assert post["account"] == {"id": world.account.id, "platform": "local", "handle": "avery"}
    assert post["submitter"] == f"client:{scheduler.client.client_id}"
    assert post["source"] == "api"
    assert post["in_reply_to"] == "109876543210"
    assert post["decisions"]["tag"]["outcome"] == "applied"
    assert post["decisions"]["delegated"] is True
    [entry] = ledger_entries(world, LedgerTag.POST_SUBMITTED)
    assert entry.subject == f"post:{post['id']}"
    assert entry.actor == f"client:{scheduler.client.client_id}"
    assert entry.data["writer"]["email"] == world.writer_a.email
    assert entry.data["source"] == "api"
    assert entry.data["extra"] == {"in_reply_to": "109876543210"}


def test_a_skipped_tag_reports_what_it_needs_and_has(client: FlaskClient, world: World) -> None:
    world.approve_notice(world.open_window())
    scheduler = scheduler_for(client, world)
    text = "x" * 497  # "#team" needs 6 characters with its space; 3 are left of 500

    post = scheduler.create(body(world, text)).get_json()

    assert post["text_if_published_now"] == text
    assert post["decisions"]["tag"] == {
        "outcome": "skipped",
        "tag": "#team",
        "needs": 6,
        "has": 3,
        "unit": "characters",
        "summary": "#team skipped: needs 6, has 3 characters",
    }


def test_a_required_tag_that_does_not_fit_is_refused_with_how_much_to_cut(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window(tag_mode=TagMode.REQUIRED))
    scheduler = scheduler_for(client, world)

    response = scheduler.create(body(world, "x" * 497))

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["type"] == "urn:ghostpost:problem:policy_refused"
    assert problem["refusal"]["code"] == "tag_does_not_fit"
    assert "Cut 3 characters" in problem["detail"]
    assert ledger_entries(world, LedgerTag.POST_SUBMITTED) == []


def test_a_mention_with_an_overlong_domain_counts_in_full_so_a_required_tag_is_refused(
    client: FlaskClient, world: World
) -> None:
    # Issue 16: Mastodon shortens "@alice@<domain>" to "@alice" only when the domain has at most
    # 253 characters (Extractor::MAX_DOMAIN_LENGTH). Counting the 254-character one as "@alice"
    # (242 of 500) let the tag in and the server refuse the post; it is 497, so 3 are left.
    world.approve_notice(world.open_window(tag_mode=TagMode.REQUIRED))
    scheduler = scheduler_for(client, world)
    text = "@alice@" + "x" * 250 + ".com " + "x" * 235

    response = scheduler.create(body(world, text))

    assert response.status_code == 422
    assert response.get_json()["refusal"]["code"] == "tag_does_not_fit"
    assert "Cut 3 characters" in response.get_json()["detail"]
    assert ledger_entries(world, LedgerTag.POST_SUBMITTED) == []


def test_a_post_before_the_notice_is_published_says_it_will_be_held(
    client: FlaskClient, world: World
) -> None:
    world.open_window()  # notice not approved, so not published
    scheduler = scheduler_for(client, world)

    post = scheduler.create(body(world)).get_json()

    assert post["decisions"]["held_reason"] == "waiting for the window's notice to be published"


def test_the_principal_through_their_own_client_is_not_tagged(
    client: FlaskClient, world: World, live_window: object
) -> None:
    own, secret = clients.create_client(
        world.ctx,
        Actor.system("test"),
        name="Avery's own scheduler",
        owner_email=world.principal.email,
        scopes=["posts:write"],
        account_ids=[world.account.id],
        author_emails=[world.principal.email],
    )
    scheduler = Scheduler(client, own, fetch_token(client, own.client_id, secret))

    post = scheduler.create({**body(world), "author": world.principal.email}).get_json()

    assert post["text_if_published_now"] == "Keynote at 10, see you there"
    assert post["decided_at_publication"] == ["reminder"], "the principal's words never change"
    assert post["decisions"]["delegated"] is False
    assert post["decisions"]["tag"]["outcome"] == "not_delegated"


def test_a_managers_client_naming_the_principal_is_refused(
    scheduler: Scheduler, world: World
) -> None:
    # Used to be 201 with delegated: false (issue 12): the principal did not submit it.
    response = scheduler.create({**body(world), "author": world.principal.email})

    assert response.status_code == 422
    assert response.get_json()["errors"] == {"author": [clients.AUTHOR_NOT_ALLOWED]}
    assert ledger_entries(world, LedgerTag.POST_SUBMITTED) == []


@pytest.mark.parametrize(
    ("publish_at", "timezone", "expected"),
    [
        ("2026-11-21T16:30:00+01:00", None, "2026-11-21T15:30:00+00:00"),
        ("2026-11-21T15:30:00Z", None, "2026-11-21T15:30:00+00:00"),
        ("2026-11-21T10:30:00", "America/New_York", "2026-11-21T15:30:00+00:00"),
    ],
)
def test_publish_at_takes_an_offset_or_a_local_time_with_its_zone(
    scheduler: Scheduler, world: World, publish_at: str, timezone: str | None, expected: str
) -> None:
    extra = {"publish_at": publish_at} | ({"timezone": timezone} if timezone else {})

    post = scheduler.create(body(world, **extra)).get_json()

    assert post["publish_at"] == expected


def test_an_author_not_assigned_to_the_account_is_refused_like_an_unknown_one(
    scheduler: Scheduler, world: World
) -> None:
    outsider = scheduler.create({**body(world), "author": world.outsider.email})
    unknown = scheduler.create({**body(world), "author": "nobody@example.test"})

    for response in (outsider, unknown):
        assert response.status_code == 422
        assert response.get_json()["errors"] == {"author": [clients.AUTHOR_NOT_ALLOWED]}
    assert ledger_entries(world, LedgerTag.POST_SUBMITTED) == []


def test_a_client_cannot_post_to_or_read_an_account_it_is_not_limited_to(
    scheduler: Scheduler, world: World
) -> None:
    elsewhere = other_account(world)
    own_post = world.submit(world.principal, "Posted by Avery herself", account=elsewhere)

    create = scheduler.create({**body(world), "account": elsewhere.id})
    read = scheduler.get(f"/api/v1/posts/{own_post.public_id}")
    listing = scheduler.get(f"/api/v1/posts?account={elsewhere.id}")
    windows = scheduler.get(f"/api/v1/windows?account={elsewhere.id}")

    assert [r.status_code for r in (create, read, listing, windows)] == [404, 404, 404, 404]
    assert all(r.mimetype == "application/problem+json" for r in (create, read, listing))


def test_get_returns_the_post_and_unknown_or_malformed_ids_are_404(
    scheduler: Scheduler, world: World
) -> None:
    created = scheduler.create(body(world)).get_json()

    found = scheduler.get(f"/api/v1/posts/{created['id']}")

    assert found.status_code == 200
    assert found.get_json() == created
    for missing in ("0d3c6c0e-5b5e-4c2b-9a4c-1b1f0f0f0f0f", "not-a-uuid", "%00", "1"):
        response = scheduler.get(f"/api/v1/posts/{missing}")
        assert response.status_code == 404
        assert response.get_json()["code"] == "not_found"


def test_the_list_pages_through_every_post_newest_first_with_an_opaque_cursor(
    scheduler: Scheduler, world: World
) -> None:
    ids = [scheduler.create(body(world, f"Post number {n}")).get_json()["id"] for n in range(5)]

    seen: list[str] = []
    url = "/api/v1/posts?limit=2&author=" + world.writer_a.email
    pages = 0
    while url:
        page = scheduler.get(url).get_json()
        pages += 1
        seen += [item["id"] for item in page["items"]]
        url = (
            f"/api/v1/posts?limit=2&author={world.writer_a.email}&cursor={page['next']}"
            if page["next"]
            else ""
        )

    assert pages == 3
    assert seen == list(reversed(ids))


def test_the_list_filters_by_state_window_and_author(
    scheduler: Scheduler, world: World, live_window
) -> None:  # type: ignore[no-untyped-def]
    by_a = scheduler.create(body(world)).get_json()
    by_b = scheduler.create({**body(world), "author": world.writer_b.email}).get_json()
    scheduler.post(f"/api/v1/posts/{by_b['id']}/cancel")

    def ids(query: str) -> list[str]:
        response = scheduler.get("/api/v1/posts?" + query)
        assert response.status_code == 200, response.get_json()
        return [item["id"] for item in response.get_json()["items"]]

    assert ids("state=cancelled") == [by_b["id"]]
    assert ids(f"author={world.writer_a.email}") == [by_a["id"]]
    assert ids("author=nobody@example.test") == []
    assert by_a["id"] in ids(f"window={live_window.id}&state=scheduled")
    assert scheduler.get("/api/v1/posts?window=999").status_code == 404


def test_cancel_cancels_the_clients_own_queued_post_once(
    scheduler: Scheduler, world: World
) -> None:
    post = scheduler.create(body(world)).get_json()

    cancelled = scheduler.post(f"/api/v1/posts/{post['id']}/cancel")
    again = scheduler.post(f"/api/v1/posts/{post['id']}/cancel")

    assert cancelled.status_code == 200
    assert cancelled.get_json()["state"] == PostState.CANCELLED.value
    assert again.status_code == 409
    assert again.get_json()["code"] == "conflict"
    [entry] = ledger_entries(world, LedgerTag.POST_CANCELLED)
    assert entry.actor == f"client:{scheduler.client.client_id}"


def test_a_client_may_not_cancel_a_post_it_did_not_submit(
    scheduler: Scheduler, world: World
) -> None:
    from_the_web = world.submit(world.writer_a, "Written in the web app")

    response = scheduler.post(f"/api/v1/posts/{from_the_web.public_id}/cancel")

    assert response.status_code == 403
    assert world.post(from_the_web.id).state is PostState.SCHEDULED


def test_preview_returns_the_text_if_published_now_and_decisions_and_stores_nothing(
    scheduler: Scheduler, world: World
) -> None:
    with world.ctx.uow() as uow:
        before = len(list(uow.ledger.entries()))

    ok = scheduler.post("/api/v1/preview", body(world))
    refused = scheduler.post("/api/v1/preview", body(world, "y" * 600))

    assert ok.status_code == 200
    assert ok.get_json()["accepted"] is True
    assert ok.get_json()["text_if_published_now"] == "Keynote at 10, see you there #team"
    assert ok.get_json()["decided_at_publication"] == ["tag", "reminder", "notice_hold"]
    assert refused.status_code == 200
    assert refused.get_json()["accepted"] is False
    assert refused.get_json()["text_if_published_now"] is None, "it would not go out"
    assert refused.get_json()["decisions"]["refusal"]["code"] == "over_budget"
    assert "cut 100 characters" in refused.get_json()["decisions"]["refusal"]["message"]
    with world.ctx.uow() as uow:
        assert len(list(uow.ledger.entries())) == before
        assert uow.posts.list_for_account(world.account.id) == [
            p for p in uow.posts.list_for_account(world.account.id) if p.kind.value == "notice"
        ]


def test_windows_and_accounts_list_only_the_clients_accounts(
    client: FlaskClient, world: World, live_window
) -> None:  # type: ignore[no-untyped-def]
    elsewhere = other_account(world)
    world.open_window(account=elsewhere, starts_at=START + timedelta(days=1))
    scheduler = scheduler_for(client, world)

    windows = scheduler.get("/api/v1/windows").get_json()["items"]
    accounts = scheduler.get("/api/v1/accounts").get_json()["items"]

    assert [w["id"] for w in windows] == [live_window.id]
    assert windows[0]["tag"] == "#team"
    assert windows[0]["reminder_every"] == 10
    assert accounts == [{"id": world.account.id, "platform": "local", "handle": "avery"}]


def test_every_operation_needs_a_token_with_its_scope(client: FlaskClient, world: World) -> None:
    reader = scheduler_for(client, world, scopes=["posts:read"])
    writer = scheduler_for(client, world, scopes=["posts:write"])

    anonymous = client.get("/api/v1/posts")
    wrong_scope_create = reader.create(body(world))
    wrong_scope_read = writer.get("/api/v1/posts")
    wrong_scope_windows = reader.get("/api/v1/windows")

    assert anonymous.status_code == 401
    assert anonymous.mimetype == "application/problem+json"
    assert [r.status_code for r in (wrong_scope_create, wrong_scope_read, wrong_scope_windows)] == [
        403,
        403,
        403,
    ]


def test_the_openapi_document_and_docs_page_are_public(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json")
    page = client.get("/api/v1/docs")

    assert document.status_code == 200
    spec = document.get_json()
    assert spec["openapi"].startswith("3.")
    flow = spec["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/oauth/token"
    assert set(flow["scopes"]) == {
        "posts:write",
        "posts:read",
        "windows:read",
        "audit:read",
        "guards:write",
    }
    assert {"/api/v1/posts", "/api/v1/preview", "/api/v1/windows"} <= set(spec["paths"])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "POST /api/v1/posts" in html
    assert "Idempotency-Key" in html
    assert 'id="schema-Post"' in html
    assert "<script" not in html


def test_the_openapi_document_built_on_first_use_is_the_one_built_at_start_up(
    app: Flask, client: FlaskClient
) -> None:
    """The app builds its document when first asked (see ghostpost.api.v1.Api): what it then
    serves is exactly, key order included, the document built eagerly when /api/v1 registers."""
    api = app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    eager = Flask("eager")
    eager_api = v1.init_app(eager, deferred_document=False)
    assert api._built_spec is None  # nothing built by create_app
    assert eager_api._built_spec is not None

    # Two requests at once on the app that has not built it yet: one builds, both get it.
    with ThreadPoolExecutor(2) as pool:
        served = list(pool.map(lambda _: client.get("/api/v1/openapi.json"), range(2)))

    expected = eager_api.spec.to_dict()
    assert json.dumps(api.spec.to_dict()) == json.dumps(expected)  # in the same order
    assert [r.get_json() for r in served] == [expected, expected]  # served with keys sorted
