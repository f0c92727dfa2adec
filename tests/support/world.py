"""Builders for a small, realistic cast: the principal, agency staff and one local account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ghostpost.bootstrap import Container
from ghostpost.domain.model import Account, Post, Role, Source, User, Window
from ghostpost.domain.policy import ReminderMode, TagMode, TagPosition
from ghostpost.services import directory, posts, windows
from ghostpost.services.context import Actor
from ghostpost.services.ledger_integrity import NotaryPass
from ghostpost.worker import Worker

NOTICE = "During the show, some of my posts will be written by my extended team."
REMINDER = "Reminder: my team helps run this account."


@dataclass
class World:
    container: Container
    account: Account
    principal: User
    manager: User
    writer_a: User
    writer_b: User
    auditor: User
    outsider: User

    @property
    def ctx(self):  # type: ignore[no-untyped-def]
        return self.container.services

    def open_window(
        self,
        *,
        starts_at: datetime | None = None,
        hours: float = 8,
        every: int = 10,
        reminder_mode: ReminderMode = ReminderMode.INLINE,
        tag_mode: TagMode = TagMode.WHEN_FITS,
        tag_position: TagPosition = TagPosition.END,
        requires_approval: bool = False,
        account: Account | None = None,
    ) -> Window:
        start = starts_at or self.container.clock.now()
        return windows.create_window(
            self.ctx,
            Actor.for_user(self.manager),
            windows.WindowSpec(
                account_id=(account or self.account).id,
                name="Conference",
                starts_at=start,
                ends_at=start + timedelta(hours=hours),
                notice_text=NOTICE,
                reminder_text=REMINDER,
                reminder_every=every,
                reminder_mode=reminder_mode,
                tag_mode=tag_mode,
                tag_position=tag_position,
                requires_approval=requires_approval,
            ),
        )

    def approve_notice(self, window: Window) -> Window:
        return windows.approve_notice(self.ctx, Actor.for_user(self.principal), window.id)

    def submit(
        self,
        author: User,
        text: str,
        publish_at: datetime | None = None,
        account: Account | None = None,
    ) -> Post:
        return posts.submit_post(
            self.ctx,
            Actor.for_user(author),
            posts.SubmitPost(
                account_id=(account or self.account).id,
                author_id=author.id,
                text=text,
                source=Source.WEB,
                publish_at=publish_at,
            ),
        )

    def run_worker(self) -> int:
        """Publish what is due, then run a notary pass (as the worker's loop would)."""
        return Worker(self.container, worker_id="test-worker").run(once=True)

    def run_notary(self) -> NotaryPass:
        """Run one notary pass now: verify the new entries and sign the ledger's head."""
        return self.container.notary.run_pass()

    def post(self, post_id: int) -> Post:
        with self.ctx.uow() as uow:
            found = uow.posts.get(post_id)
        assert found is not None
        return found


def build_world(container: Container) -> World:
    ctx = container.services
    system = Actor.system("test")
    principal = directory.create_principal(ctx, system, "Avery Chen")
    account = directory.create_account(
        ctx, system, principal_id=principal.id, platform="local", handle="avery"
    )

    def user(email: str, name: str, role: Role, principal_id: int | None = None) -> User:
        return directory.create_user(
            ctx,
            system,
            email=email,
            name=name,
            role=role,
            password="password-123",
            principal_id=principal_id,
        )

    avery = user("avery@example.test", "Avery Chen", Role.MANAGER, principal.id)
    manager = user("morgan@example.test", "Morgan Lee", Role.MANAGER)
    writer_a = user("jordan@example.test", "Jordan Park", Role.WRITER)
    writer_b = user("sam@example.test", "Sam Rivera", Role.WRITER)
    auditor = user("rita@example.test", "Rita Okafor", Role.AUDITOR)
    outsider = user("casey@example.test", "Casey Doe", Role.WRITER)
    for member in (writer_a, writer_b):
        directory.assign_writer(ctx, system, user_id=member.id, account_id=account.id)
    return World(container, account, avery, manager, writer_a, writer_b, auditor, outsider)
