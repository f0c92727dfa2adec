"""Compose in the staff web app: role rules, the live preview (JSON) and the no-JavaScript flows."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
from flask.testing import FlaskClient

from ghostpost.domain.model import Account, Post, Role, Source
from ghostpost.domain.policy import TagMode
from ghostpost.services import directory
from ghostpost.services.context import Actor
from tests.support.web import csrf_from, sign_in
from tests.support.world import World

FITS_TAG_EXACTLY = 494  # 494 + " #team" = 500, the local (Mastodon) limit
TOO_LONG_FOR_TAG = 496  # room for 4, the tag needs 6


def posts_of(world: World, account: Account | None = None) -> list[Post]:
    with world.ctx.uow() as uow:
        return uow.posts.list_for_account((account or world.account).id)


def regular_posts(world: World) -> list[Post]:
    return [p for p in posts_of(world) if p.kind.value == "regular"]


def preview(client: FlaskClient, token: str, **body: object) -> tuple[int, dict[str, object]]:
    response = client.post(
        "/compose/preview",
        json=body,
        headers={"X-CSRFToken": token, "Accept": "application/json"},
    )
    return response.status_code, response.get_json()


def compose_form(
    client: FlaskClient, world: World, text: str, action: str = "submit", **fields: str
) -> tuple[int, str, str | None]:
    token = csrf_from(client, "/compose")
    data = {
        "csrf_token": token,
        "account_id": str(world.account.id),
        "text": text,
        "publish_at": "",
        "timezone": "UTC",
        "action": action,
        **fields,
    }
    response = client.post("/compose", data=data)
    return response.status_code, response.get_data(as_text=True), response.headers.get("Location")


def second_account(world: World) -> Account:
    """Another principal's account, to which only the outsider is assigned."""
    ctx, system = world.ctx, Actor.system("test")
    other = directory.create_principal(ctx, system, "Blake Ortiz")
    account = directory.create_account(
        ctx, system, principal_id=other.id, platform="local", handle="blake"
    )
    directory.assign_writer(ctx, system, user_id=world.outsider.id, account_id=account.id)
    return account


class FormAudit(HTMLParser):
    """Collects form controls and labels, to check that every control is labelled."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[str] = []
        self.labelled: set[str] = set()
        self.inline_scripts = 0
        self.inline_styles = 0
        self.post_forms_without_token = 0
        self._form_method: str | None = None
        self._form_has_token = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "style" in a or tag == "style":
            self.inline_styles += 1
        if tag == "script" and not a.get("src"):
            self.inline_scripts += 1
        if tag == "form":
            self._form_method = (a.get("method") or "get").lower()
            self._form_has_token = False
        if tag == "input" and a.get("name") == "csrf_token":
            self._form_has_token = True
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.controls.append(a.get("id") or f"<{tag} name={a.get('name')} without id>")
        if tag == "label" and a.get("for"):
            self.labelled.add(a["for"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            if self._form_method == "post" and not self._form_has_token:
                self.post_forms_without_token += 1
            self._form_method = None


def audit(html: str) -> FormAudit:
    found = FormAudit()
    found.feed(html)
    return found


# --------------------------------------------------------------------------------------------
# Who may compose, for which account
# --------------------------------------------------------------------------------------------


def test_a_writer_sees_a_labelled_form_for_their_own_accounts_only(
    world: World, client: FlaskClient
) -> None:
    other = second_account(world)
    sign_in(client, world.writer_a.email)
    response = client.get("/compose")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "@avery" in html and "@blake" not in html
    form = audit(html)
    # Four image slots (issue 16): a file and its alt text each, every one labelled.
    slots = {f"image_{n}{alt}" for n in range(1, 5) for alt in ("", "_alt")}
    # And one labelled field for a thread's next part (issue 16).
    parts = {"part_2"}
    # And the yes for a delegated post that would go out without the tag (issue 17).
    untagged = {"untagged_ok"}
    assert (
        set(form.controls)
        == {"account", "text", "publish_at", "timezone"} | slots | parts | untagged
    )
    assert set(form.controls) <= form.labelled
    for label in ("Account", "Post text", "Publish at", "Time zone"):
        assert f">{label}</label>" in html
    assert form.inline_scripts == 0 and form.inline_styles == 0
    assert form.post_forms_without_token == 0
    assert 'src="/static/compose.js"' in html
    assert "<option selected>UTC</option>" in html
    assert "Europe/Paris" in html
    assert ">Preview</button>" in html
    # The button says what it does: with no time, it publishes now.
    assert ">Publish now</button>" in html and 'data-later="Schedule post"' in html
    # Asking for another principal's account is refused, not silently replaced.
    assert client.get(f"/compose?account={other.id}").status_code == 403
    assert client.get(f"/compose?account={world.account.id}").status_code == 200


def test_a_writer_without_accounts_is_told_so_and_cannot_reach_other_accounts(
    world: World, client: FlaskClient
) -> None:
    sign_in(client, world.outsider.email)
    html = client.get("/compose").get_data(as_text=True)
    assert "not assigned to any account" in html
    assert client.get(f"/compose?account={world.account.id}").status_code == 403
    status, _, _ = compose_form(client, world, "Trying anyway")
    assert status == 403
    assert regular_posts(world) == []


def test_auditors_may_not_compose(world: World, client: FlaskClient) -> None:
    sign_in(client, world.auditor.email)
    assert client.get("/compose").status_code == 403
    token = csrf_from(client, "/home")
    status, body = preview(client, token, account_id=world.account.id, text="hi")
    assert status == 403
    assert body["status"] == 403


def test_anonymous_visitors_are_sent_to_sign_in(world: World, client: FlaskClient) -> None:
    response = client.get("/compose?account=1")
    assert response.status_code == 302
    assert "/login?next=" in response.headers["Location"]


# --------------------------------------------------------------------------------------------
# The live preview (JSON), computed by the same policy engine as publishing
# --------------------------------------------------------------------------------------------


def test_the_counter_counts_the_tag_ghostpost_will_add(world: World, client: FlaskClient) -> None:
    world.open_window()
    sign_in(client, world.writer_a.email)
    token = csrf_from(client, "/compose")
    status, body = preview(client, token, account_id=world.account.id, text="Hello from the booth")
    assert status == 200
    assert body["text_if_published_now"] == "Hello from the booth #team"
    assert body["counter"] == {"text": "26 / 500 — #team will be added", "over": False}
    lines = {item["label"]: item["text"] for item in body["items"]}
    assert lines["Tag"] == "#team will be added"
    assert lines["Posting as"] == "Jordan Park for @avery — a delegated post"
    assert lines["Notice"] == "Will be held until the window's notice is published"
    assert body["refusal"] is None
    assert regular_posts(world) == []  # a preview stores nothing


def test_a_text_too_long_for_the_tag_shows_the_skip_with_its_numbers(
    world: World, client: FlaskClient
) -> None:
    world.open_window(tag_mode=TagMode.WHEN_FITS)
    sign_in(client, world.writer_a.email)
    token = csrf_from(client, "/compose")
    exact = "x" * FITS_TAG_EXACTLY
    _, body = preview(client, token, account_id=world.account.id, text=exact)
    assert body["counter"]["text"] == "500 / 500 — #team will be added"
    text = "x" * TOO_LONG_FOR_TAG
    _, body = preview(client, token, account_id=world.account.id, text=text)
    assert body["text_if_published_now"] == text
    assert body["counter"] == {
        "text": "496 / 500 — #team skipped: needs 6, has 4 characters",
        "over": False,
    }
    tag = next(item for item in body["items"] if item["label"] == "Tag")
    assert tag == {
        "label": "Tag",
        "text": "#team skipped: needs 6, has 4 characters",
        "tone": "warn",
    }


def test_a_required_tag_that_does_not_fit_says_how_much_to_cut(
    world: World, client: FlaskClient
) -> None:
    world.open_window(tag_mode=TagMode.REQUIRED)
    sign_in(client, world.writer_a.email)
    token = csrf_from(client, "/compose")
    _, body = preview(client, token, account_id=world.account.id, text="x" * TOO_LONG_FOR_TAG)
    assert body["outcome"] == "refuse"
    assert body["counter"] == {
        "text": "496 / 500 — #team does not fit: cut 2 characters",
        "over": True,
    }
    assert "Cut 2 characters." in str(body["refusal"])


def test_a_post_over_the_platform_limit_is_refused_with_the_cut(
    world: World, client: FlaskClient
) -> None:
    world.open_window()
    sign_in(client, world.writer_a.email)
    token = csrf_from(client, "/compose")
    _, body = preview(client, token, account_id=world.account.id, text="y" * 503)
    assert body["counter"] == {"text": "503 / 500 — cut 3 characters", "over": True}
    assert body["refusal"] == "The post is 503 characters, over the limit of 500: cut 3 characters."


def test_the_counter_uses_the_platform_rules_of_the_account(
    world: World, client: FlaskClient
) -> None:
    ctx, system = world.ctx, Actor.system("test")
    x_account = directory.create_account(
        ctx, system, principal_id=world.account.principal_id, platform="x", handle="avery_x"
    )
    directory.assign_writer(ctx, system, user_id=world.writer_a.id, account_id=x_account.id)
    world.open_window(account=x_account)
    sign_in(client, world.writer_a.email)
    token = csrf_from(client, "/compose")
    # X weighs CJK characters 2 and every URL 23: 3*2 + 1 + 23 + 6 (" #team") = 36.
    text = "日本語 https://example.com/a/very/long/path/that/x/shortens"
    _, body = preview(client, token, account_id=x_account.id, text=text)
    assert body["counter"]["text"] == "36 / 280 — #team will be added"


def test_delegated_posts_outside_any_window_are_refused_in_the_preview(
    world: World, client: FlaskClient
) -> None:
    sign_in(client, world.writer_a.email)
    token = csrf_from(client, "/compose")
    _, body = preview(client, token, account_id=world.account.id, text="No window yet")
    assert body["outcome"] == "refuse"
    assert "need an active delegation window" in str(body["refusal"])
    window = next(item for item in body["items"] if item["label"] == "Window")
    assert window["tone"] == "bad"


def test_the_principal_previews_their_own_untagged_post(world: World, client: FlaskClient) -> None:
    world.open_window()
    sign_in(client, world.principal.email)
    token = csrf_from(client, "/compose")
    _, body = preview(client, token, account_id=world.account.id, text="My own words")
    assert body["text_if_published_now"] == "My own words"
    assert body["decided_at_publication"] == ["reminder"]
    assert body["counter"]["text"] == "12 / 500"
    lines = {item["label"]: item["text"] for item in body["items"]}
    assert lines["Tag"] == "None: the principal's own post is never tagged"
    assert "not delegated" in lines["Posting as"]


def test_the_preview_shows_the_scheduled_time_in_utc(world: World, client: FlaskClient) -> None:
    world.open_window()
    sign_in(client, world.writer_a.email)
    token = csrf_from(client, "/compose")
    _, body = preview(
        client,
        token,
        account_id=str(world.account.id),
        text="Later",
        publish_at="2026-11-21T15:30",
        timezone="Europe/Paris",
    )
    assert body["publish_at_utc"] == "2026-11-21T14:30:00+00:00"
    when = next(item for item in body["items"] if item["label"] == "Publish")
    assert when["text"] == "2026-11-21 15:30 Europe/Paris = 2026-11-21 14:30 UTC"


def test_preview_input_errors_come_back_as_problems(world: World, client: FlaskClient) -> None:
    world.open_window()
    sign_in(client, world.writer_a.email)
    token = csrf_from(client, "/compose")
    status, body = preview(
        client, token, account_id=world.account.id, text="x", timezone="Mars/Olympus"
    )
    assert status == 422
    assert body["errors"] == {"timezone": "unknown time zone"}
    status, body = preview(
        client, token, account_id=world.account.id, text="x", publish_at="2026-11-20T09:00"
    )
    assert status == 422
    assert (
        body["detail"]
        == "The time to publish has passed: choose a later time, or leave it empty to publish now."
    )
    response = client.post(
        "/compose/preview",
        data="[1, 2]",
        content_type="application/json",
        headers={"X-CSRFToken": token, "Accept": "application/json"},
    )
    assert response.status_code == 400


def test_the_preview_needs_the_csrf_header(world: World, client: FlaskClient) -> None:
    sign_in(client, world.writer_a.email)
    response = client.post(
        "/compose/preview",
        json={"account_id": world.account.id, "text": "hi"},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400
    assert "CSRF" in response.get_json()["detail"]


# --------------------------------------------------------------------------------------------
# Without JavaScript: the Preview and Submit buttons
# --------------------------------------------------------------------------------------------


def test_the_preview_button_renders_the_server_preview_and_keeps_the_text(
    world: World, client: FlaskClient
) -> None:
    world.open_window()
    sign_in(client, world.writer_a.email)
    status, html, _ = compose_form(client, world, "Line one\r\nLine two", action="preview")
    assert status == 200
    assert "23 / 500 — #team will be added" in html  # one character per line break
    assert "Line one\nLine two #team</div>" in html
    # The newline after the tag is eaten by HTML parsers; one leading line break survives.
    assert ">\nLine one\nLine two</textarea>" in html
    assert regular_posts(world) == []


def test_submitting_queues_the_post_and_opens_its_page(world: World, client: FlaskClient) -> None:
    window = world.open_window()
    world.approve_notice(window)
    world.run_worker()  # the notice goes out, so the post is not held
    sign_in(client, world.writer_a.email)
    status, _, location = compose_form(client, world, "Live from the keynote")
    assert status == 302
    [post] = regular_posts(world)
    assert location == f"/posts/{post.public_id}"
    assert post.author_id == world.writer_a.id
    assert post.submitter == f"user:{world.writer_a.id}"
    assert post.source is Source.WEB
    assert post.final_text == "Live from the keynote #team"
    page = client.get(location).get_data(as_text=True)
    assert "Submitted: publishing now.</div>" in page
    assert "scheduled for" not in page
    assert "Live from the keynote #team" in page


def test_scheduling_with_a_time_zone_stores_the_utc_time(world: World, client: FlaskClient) -> None:
    world.open_window()
    sign_in(client, world.writer_a.email)
    status, _, location = compose_form(
        client, world, "See you at 15:30", publish_at="2026-11-21T15:30", timezone="Europe/Paris"
    )
    assert status == 302
    [post] = regular_posts(world)
    assert post.publish_at == datetime(2026, 11, 21, 14, 30, tzinfo=UTC)
    page = client.get(str(location)).get_data(as_text=True)
    assert "scheduled for 2026-11-21 14:30 UTC" in page
    # A draft with a time says so on its button.
    html = client.get("/compose").get_data(as_text=True)
    assert ">Publish now</button>" in html
    response = client.post(
        "/compose",
        data={
            "csrf_token": csrf_from(client, "/compose"),
            "account": str(world.account.id),
            "text": "Later",
            "publish_at": "2026-11-21T15:30",
            "timezone": "UTC",
            "action": "preview",
        },
    )
    assert ">Schedule post</button>" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("publish_at", "timezone", "message"),
    [
        ("2027-03-28T02:30", "Europe/Paris", "does not exist in Europe/Paris"),
        ("tomorrow", "UTC", "must be a date and time"),
        ("2026-11-21T12:00", "Nowhere/Special", "Unknown time zone"),
        ("2026-11-21T07:00", "UTC", "The time to publish has passed"),
    ],
)
def test_bad_times_re_render_the_form_with_the_message(
    world: World, client: FlaskClient, publish_at: str, timezone: str, message: str
) -> None:
    world.open_window(hours=24 * 200)
    sign_in(client, world.writer_a.email)
    status, html, _ = compose_form(
        client, world, "Keep this text", publish_at=publish_at, timezone=timezone
    )
    assert status == 422
    assert message in html
    assert ">\nKeep this text</textarea>" in html
    assert 'aria-invalid="true"' in html
    assert regular_posts(world) == []


def test_a_refused_post_re_renders_with_the_cut_and_keeps_the_text(
    world: World, client: FlaskClient
) -> None:
    world.open_window(tag_mode=TagMode.REQUIRED)
    sign_in(client, world.writer_a.email)
    text = "z" * TOO_LONG_FOR_TAG
    status, html, _ = compose_form(client, world, text)
    assert status == 422
    assert "Cut 2 characters." in html
    assert f">\n{text}</textarea>" in html
    assert "#team does not fit: cut 2 characters" in html
    assert regular_posts(world) == []


def test_a_missing_account_is_asked_for(world: World, client: FlaskClient) -> None:
    sign_in(client, world.writer_a.email)
    status, html, _ = compose_form(client, world, "Where to?", account_id="")
    assert status == 422
    assert "Choose an account." in html


def test_the_principal_posts_as_themself_without_a_tag(world: World, client: FlaskClient) -> None:
    sign_in(client, world.principal.email)
    status, _, _ = compose_form(client, world, "Straight from me, no window needed")
    assert status == 302
    [post] = regular_posts(world)
    assert post.author_id == world.principal.id
    assert post.is_delegated is False
    assert post.final_text == "Straight from me, no window needed"


def test_a_delegated_post_in_an_approval_window_says_it_awaits_approval(
    world: World, client: FlaskClient
) -> None:
    world.open_window(requires_approval=True)
    sign_in(client, world.writer_a.email)
    _, _, location = compose_form(client, world, "Please approve me")
    page = client.get(str(location)).get_data(as_text=True)
    assert "waits for the principal&#39;s approval" in page


def test_compose_form_posts_need_the_csrf_token(world: World, client: FlaskClient) -> None:
    world.open_window()
    sign_in(client, world.writer_a.email)
    response = client.post(
        "/compose",
        data={"account_id": str(world.account.id), "text": "no token", "action": "submit"},
    )
    assert response.status_code == 400
    assert regular_posts(world) == []


def test_managers_assigned_to_an_account_compose_too(world: World, client: FlaskClient) -> None:
    directory.assign_writer(
        world.ctx, Actor.system("test"), user_id=world.manager.id, account_id=world.account.id
    )
    world.open_window()
    sign_in(client, world.manager.email)
    assert client.get("/compose").status_code == 200
    status, _, _ = compose_form(client, world, "From the manager")
    assert status == 302
    assert world.manager.role is Role.MANAGER
    assert re.search(r"#team$", regular_posts(world)[0].final_text)


def test_a_delegated_post_going_out_without_the_tag_needs_an_explicit_yes(
    world: World, client: FlaskClient
) -> None:
    window = world.open_window()
    world.approve_notice(window)
    world.run_worker()
    sign_in(client, world.writer_a.email)
    untagged = "x" * 496  # the tag needs 6 characters, 4 are left: "when it fits" skips it
    status, html, _ = compose_form(client, world, untagged)
    assert status == 422
    assert "would go out without #team" in html
    assert 'name="untagged_ok"' in html
    assert regular_posts(world) == []
    # The preview says so too, and offers the box.
    status, html, _ = compose_form(client, world, untagged, action="preview")
    assert status == 200 and 'name="untagged_ok"' in html and "untagged-ok" in html
    status, _, _ = compose_form(client, world, untagged, untagged_ok="1")
    assert status == 302
    [post] = regular_posts(world)
    assert post.final_text == untagged
    # A post that carries the tag needs no such yes.
    assert compose_form(client, world, "Short and tagged")[0] == 302


def test_the_principal_needs_no_yes_for_an_untagged_post(world: World, client: FlaskClient) -> None:
    world.open_window()
    sign_in(client, world.principal.email)
    assert compose_form(client, world, "y" * 496)[0] == 302


def test_over_the_limit_is_refused_and_the_preview_shows_no_final_text(
    world: World, client: FlaskClient
) -> None:
    world.open_window()
    sign_in(client, world.writer_a.email)
    status, html, _ = compose_form(client, world, "z" * 600)
    assert status == 422 and "cut 100 characters" in html
    assert "z" * 600 not in html.split('id="preview"')[1].split("</section>")[0]
    assert regular_posts(world) == []


def test_refusals_give_times_in_words_not_iso(world: World, client: FlaskClient) -> None:
    sign_in(client, world.writer_a.email)  # no window: a delegated post is refused
    status, html, _ = compose_form(client, world, "Hello", publish_at="2027-02-01T09:00")
    assert status == 422
    assert "none covers 2027-02-01 09:00 UTC" in html
    assert "T09:00:00+00:00" not in html
