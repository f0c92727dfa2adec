"""Email notifications, end to end: real events through the web forms and the worker, real
emails through a local SMTP server (aiosmtpd on 127.0.0.1) read back by the test."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from flask.testing import FlaskClient
from sqlalchemy import select

from ghostpost.adapters.base import PermanentError
from ghostpost.adapters.mail import SmtpMailer
from ghostpost.bootstrap import Container, smtp_server
from ghostpost.clock import FixedClock
from ghostpost.db.models import NotificationPreferenceRow, NotificationRow, PostRow
from ghostpost.domain.states import PostState
from ghostpost.settings import Settings
from tests.functional.test_web_windows import form as window_form
from tests.functional.test_worker_failures import FakePlatform
from tests.support.live import free_port
from tests.support.web import csrf_from, post_form, sign_in
from tests.support.world import World, settings_for

LINK = "http://ghostpost.test"


@dataclass
class Received:
    to: list[str]
    message: EmailMessage


class Inbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.mail: list[Received] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.mail.append(Received(list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def take(self) -> list[Received]:
        taken, self.mail = self.mail, []
        return taken


@pytest.fixture(scope="module")
def local_smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def inbox(local_smtp: tuple[Inbox, int]) -> Inbox:
    local_smtp[0].take()  # nothing left over from another test
    return local_smtp[0]


@pytest.fixture
def settings(database_url: str, tmp_path: Path, local_smtp: tuple[Inbox, int]) -> Settings:
    return settings_for(database_url, tmp_path).replace(
        smtp_host="127.0.0.1", smtp_port=local_smtp[1], smtp_from="ghostpost@ghostpost.test"
    )


def body(mail: Received) -> str:
    part = mail.message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def only(inbox: Inbox) -> Received:
    mails = inbox.take()
    assert len(mails) == 1, [m.message["Subject"] for m in mails]
    return mails[0]


def only_to(inbox: Inbox, address: str) -> Received:
    """The one email to `address` (others, e.g. the principal's, are dropped)."""
    mails = [mail for mail in inbox.take() if mail.to == [address]]
    assert len(mails) == 1, [m.message["Subject"] for m in mails]
    return mails[0]


def switch_user(client: FlaskClient, email_address: str) -> None:
    client.post("/logout", data={"csrf_token": csrf_from(client, "/home")})
    sign_in(client, email_address)


def compose(client: FlaskClient, world: World, text: str) -> None:
    data = {
        "csrf_token": csrf_from(client, "/compose"),
        "account_id": str(world.account.id),
        "text": text,
        "publish_at": "",
        "timezone": "UTC",
        "action": "submit",
    }
    assert client.post("/compose", data=data).status_code == 302


def latest_post(container: Container) -> tuple[int, str]:
    with container.sessions() as db:
        row = db.execute(select(PostRow.id, PostRow.public_id).order_by(PostRow.id.desc())).first()
    assert row is not None
    return row.id, row.public_id


def outbox(container: Container) -> list[tuple[str, str, int, str | None]]:
    """(kind, status, attempts, last error) of every recorded notification."""
    with container.sessions() as db:
        rows = db.execute(
            select(
                NotificationRow.kind,
                NotificationRow.status,
                NotificationRow.attempts,
                NotificationRow.last_error,
            ).order_by(NotificationRow.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def open_window(world: World, client: FlaskClient, *, approval: bool, approve: bool = True) -> int:
    """A manager opens a window (web form) starting now; the principal approves its notice
    (web form) and the worker publishes it. Leaves the principal signed in."""
    sign_in(client, world.manager.email)
    data = window_form(
        account_id=str(world.account.id),
        starts_at="2026-11-21T09:00",
        ends_at="2026-11-21T17:00",
        **({"requires_approval": "y"} if approval else {}),
    )
    assert post_form(client, "/windows/new", data, "/windows/new").status_code == 302
    with world.ctx.uow() as uow:
        window = uow.windows.covering(world.account.id, world.container.clock.now())
    assert window is not None
    switch_user(client, world.principal.email)
    if approve:
        response = post_form(client, f"/approvals/notices/{window.id}", {}, "/approvals")
        assert response.status_code == 302
    world.run_worker()
    return window.id


def pending_post(world: World, client: FlaskClient, text: str) -> str:
    """The writer composes a post (web form) that waits for the principal's approval."""
    open_window(world, client, approval=True)
    switch_user(client, world.writer_a.email)
    compose(client, world, text)
    post_id, public_id = latest_post(world.container)
    assert world.post(post_id).state is PostState.PENDING_APPROVAL
    return public_id


def test_a_notice_awaiting_approval_emails_the_principal_once(
    world: World, client: FlaskClient, inbox: Inbox
) -> None:
    sign_in(client, world.manager.email)
    notice = "During the show my team posts too: {disclosure_url}"
    data = window_form(account_id=str(world.account.id), notice_text=notice)
    assert post_form(client, "/windows/new", data, "/windows/new").status_code == 302
    assert inbox.take() == []  # recorded with the window; only the worker sends
    world.run_worker()
    mail = only(inbox)
    assert mail.to == [world.principal.email]
    assert mail.message["From"] == "ghostpost@ghostpost.test"
    assert mail.message["Subject"] == "A notice for @avery (local) waits for your approval"
    text = body(mail)
    assert f"{LINK}/approvals" in text and "Web Summit" in text
    # The notice quoted as it will be posted: the link in place of its placeholder.
    assert f"my team posts too: {LINK}/@avery/disclosure" in text and "{disclosure_url}" not in text
    assert world.manager.name not in text
    world.run_worker()
    assert inbox.take() == []  # exactly once
    assert outbox(world.container) == [("notice_awaits_approval", "sent", 1, None)]


def test_a_post_awaiting_approval_emails_the_principal_without_the_writers_name(
    world: World, client: FlaskClient, inbox: Inbox
) -> None:
    pending_post(world, client, "Backstage with the speakers")
    inbox.take()  # the notice's email
    world.run_worker()
    mail = only(inbox)
    assert mail.to == [world.principal.email]
    assert mail.message["Subject"] == "A post for @avery (local) waits for your approval"
    text = body(mail)
    assert "Backstage with the speakers" in text and f"{LINK}/approvals" in text
    assert world.writer_a.name not in text and world.writer_a.email not in text


def test_a_held_post_released_back_to_approval_emails_the_principal_again(
    world: World, client: FlaskClient, inbox: Inbox
) -> None:
    public_id = pending_post(world, client, "Held, then released")
    world.run_worker()
    inbox.take()  # the notice's and the first approval's emails
    switch_user(client, world.manager.email)
    grant = {"account_id": str(world.account.id), "user_id": str(world.writer_a.id)}
    removed = post_form(
        client, "/windows/assignments/remove", {**grant, "confirm": "yes"}, "/windows"
    )
    assert removed.status_code == 302
    assert post_form(client, "/windows/assignments", grant, "/windows").status_code == 302
    page = f"/posts/{public_id}"
    assert post_form(client, f"{page}/release", {"next": page}, page).status_code == 302

    world.run_worker()
    mail = only(inbox)
    assert mail.to == [world.principal.email]
    assert mail.message["Subject"] == "A post for @avery (local) waits for your approval"
    assert "Held, then released" in body(mail)


def test_a_policy_change_proposal_emails_the_principal(
    world: World, client: FlaskClient, inbox: Inbox
) -> None:
    window_id = open_window(world, client, approval=False)
    inbox.take()
    switch_user(client, world.manager.email)
    data = window_form(
        account_id=str(world.account.id),
        starts_at="2026-11-21T09:00",
        ends_at="2026-11-21T17:00",
        reminder_every="20",  # weaker: waits for the principal
    )
    path = f"/windows/{window_id}/edit"
    assert post_form(client, path, data, path).status_code == 302
    world.run_worker()
    mail = only(inbox)
    assert mail.to == [world.principal.email]
    assert mail.message["Subject"] == "A policy change for @avery (local) waits for your approval"
    assert f"{LINK}/approvals" in body(mail)


def test_a_rejection_emails_the_writer_with_the_reason_and_a_link_to_the_post(
    world: World, client: FlaskClient, inbox: Inbox
) -> None:
    public_id = pending_post(world, client, "A joke that will not land")
    switch_user(client, world.principal.email)
    data = {"decision": "reject", "comment": "Not on brand"}
    assert post_form(client, f"/approvals/posts/{public_id}", data, "/approvals").status_code == 302
    inbox.take()
    world.run_worker()
    mail = only_to(inbox, world.writer_a.email)
    assert mail.message["Subject"] == "Your post for @avery (local) was rejected"
    text = body(mail)
    assert "Not on brand" in text and f"{LINK}/posts/{public_id}" in text


def test_a_post_refused_at_window_end_emails_the_writer(
    world: World, client: FlaskClient, inbox: Inbox, clock: FixedClock
) -> None:
    public_id = pending_post(world, client, "Nobody approves this in time")
    world.run_worker()
    inbox.take()
    clock.advance(hours=9)  # past the window's end
    world.run_worker()
    mail = only_to(inbox, world.writer_a.email)
    assert mail.message["Subject"] == (
        "Your post for @avery (local) was not published: its window ended"
    )
    assert f"{LINK}/posts/{public_id}" in body(mail)


def test_a_failed_post_emails_the_writer(
    world: World, client: FlaskClient, inbox: Inbox, container: Container
) -> None:
    open_window(world, client, approval=False)
    platform = FakePlatform(container)
    container.publishers["local"] = platform
    platform.script = [PermanentError("422 Validation failed: banned word")]
    switch_user(client, world.writer_a.email)
    compose(client, world, "A post the platform refuses")
    inbox.take()
    world.run_worker()
    _, public_id = latest_post(container)
    mail = only_to(inbox, world.writer_a.email)
    assert mail.message["Subject"] == "Your post for @avery (local) failed to publish"
    text = body(mail)
    assert "banned word" in text and f"{LINK}/posts/{public_id}" in text


def test_a_kind_turned_off_sends_nothing_and_the_digest_summarises_the_day(
    world: World, client: FlaskClient, inbox: Inbox, clock: FixedClock
) -> None:
    sign_in(client, world.principal.email)
    page = client.get("/account/notifications").get_data(as_text=True)
    assert (
        'id="kind-notice_awaits_approval" name="kind" value="notice_awaits_approval" checked'
        in (page)
    )
    assert 'value="daily_digest">' in page  # the digest is off by default
    assert "no-smtp" not in page
    # Everything but the notice emails, plus the digest.
    kinds = ["post_awaits_approval", "policy_change_proposed", "daily_digest"]
    response = post_form(
        client, "/account/notifications", {"kind": kinds}, "/account/notifications"
    )  # type: ignore[dict-item]
    assert response.status_code == 302
    open_window(world, client, approval=False, approve=False)
    assert inbox.take() == []
    assert outbox(world.container)[0][:2] == ("notice_awaits_approval", "off")
    # Next day the worker sends the digest of yesterday, once.
    clock.advance(days=1)
    world.run_worker()
    world.run_worker()
    mail = only(inbox)
    assert mail.to == [world.principal.email]
    assert mail.message["Subject"] == "ghostpost digest for 2026-11-21: 1 event"
    text = body(mail)
    assert "A notice for @avery (local) waits for your approval" in text
    assert f"{LINK}/approvals" in text and f"{LINK}/account/notifications" in text


def test_a_dead_mail_server_leaves_publishing_intact_and_the_email_is_retried(
    world: World, client: FlaskClient, inbox: Inbox, container: Container, clock: FixedClock
) -> None:
    live = container.mailer
    # Nobody listens on that port.
    container.mailer = SmtpMailer(smtp_server(container.settings.replace(smtp_port=free_port())))
    open_window(world, client, approval=False)
    switch_user(client, world.writer_a.email)
    compose(client, world, "Published whatever the mail server does")
    world.run_worker()
    post_id, _ = latest_post(container)
    assert world.post(post_id).state is PostState.PUBLISHED
    [(kind, status, attempts, error)] = outbox(container)
    assert (kind, status, attempts) == ("notice_awaits_approval", "pending", 1)
    assert error is not None and "Connection" in error
    # The server is back: after the retry delay the email goes out, once.
    container.mailer = live
    world.run_worker()
    assert inbox.take() == []  # not before its retry time
    clock.advance(minutes=2)
    world.run_worker()
    assert only(inbox).to == [world.principal.email]
    assert outbox(container)[0][:3] == ("notice_awaits_approval", "sent", 2)


def test_without_smtp_notifications_are_recorded_and_the_page_says_so(
    world: World, client: FlaskClient, inbox: Inbox, container: Container
) -> None:
    container.mailer = None
    open_window(world, client, approval=False, approve=False)
    assert inbox.take() == []
    assert outbox(container) == [("notice_awaits_approval", "pending", 0, None)]
    html = client.get("/account/notifications").get_data(as_text=True)
    assert "No mail server is configured: notifications are recorded below but not sent" in html
    assert "A notice for @avery (local) waits for your approval" in html
    assert "waiting to be sent" in html


def test_nobody_changes_another_users_choices(
    world: World, client: FlaskClient, container: Container
) -> None:
    sign_in(client, world.writer_a.email)
    # Without the CSRF token: refused, nothing stored.
    response = client.post("/account/notifications", data={"kind": "post_failed"})
    assert response.status_code == 400
    # Naming another user changes nothing of theirs: the form only ever saves the signer's.
    data = {"kind": "post_failed", "user_id": str(world.principal.id)}
    assert post_form(client, "/account/notifications", data).status_code == 302
    with container.sessions() as db:
        rows = db.execute(
            select(NotificationPreferenceRow.user_id, NotificationPreferenceRow.enabled).where(
                NotificationPreferenceRow.kind == "post_rejected"
            )
        ).all()
    assert [tuple(row) for row in rows] == [(world.writer_a.id, False)]
    # An unknown kind is a form error, not a 500.
    bad = post_form(client, "/account/notifications", {"kind": "everything"})
    assert bad.status_code == 422
