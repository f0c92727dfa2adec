"""The world of tests/support/world.py, on the in-memory unit of work: same cast, same services.

`MemoryWorld.run_worker` drives the worker's own service calls (expire ended windows, claim the
next due post, record what the platform answered) with a platform that accepts every post; the
worker's process, adapters and notary are what the DB-backed tests cover.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ghostpost.clock import FixedClock
from ghostpost.domain.ledger import LedgerEntry
from ghostpost.domain.length import Budget, budget_for
from ghostpost.domain.model import Account, Post, Role, Source, User, Window
from ghostpost.domain.policy import ReminderMode, TagMode, TagPosition
from ghostpost.secretbox import SecretBox, generate_key, parse_keys
from ghostpost.services import directory, posts, publishing, windows
from ghostpost.services.context import Actor, ServiceContext
from ghostpost.textseg import default_segmenter
from tests.support.memory_uow import MemoryUnitsOfWork, Resealer

NOTICE = "During the show, some of my posts will be written by my extended team."
REMINDER = "Reminder: my team helps run this account."
#: Cheap argon2 parameters (as tests/support/world.py): the hash's strength is not under test.
HASHER = PasswordHasher(1, 8, 1)
WORKER = "memory-worker"
LEASE = timedelta(seconds=60)


def _account_budget(account: Account) -> Budget:
    # As ghostpost.bootstrap.account_budget (not imported: it pulls in the SQL side).
    return budget_for(
        account.platform,
        default_segmenter(),
        limit=account.max_chars,
        url_length=account.url_length,
    )


def _check_password(stored: str, password: str) -> tuple[bool, bool]:
    try:
        HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    return True, HASHER.check_needs_rehash(stored)


def _binding(account: Account) -> str:
    return f"memory-account:{account.id}:{account.platform}:{account.base_url}:{account.remote_id}"


def memory_context(clock: FixedClock, units: MemoryUnitsOfWork | None = None) -> ServiceContext:
    """The services' context over an in-memory database, with the given clock."""
    box = SecretBox(parse_keys(generate_key("memory")))
    resealer = Resealer(
        active_key_id=lambda: box.active_key_id,
        key_id_of=box.key_id_of,
        reseal_account=lambda account, sealed: box.seal(
            box.open(sealed, bound_to=_binding(account)), bound_to=_binding(account)
        ),
    )
    return ServiceContext(
        uow=units or MemoryUnitsOfWork(resealer=resealer),
        clock=clock,
        budget_for=_account_budget,
        hash_password=HASHER.hash,
        check_password=_check_password,
        seal_credentials=lambda account, secret: box.seal(secret, bound_to=_binding(account)),
        seal_secret=lambda bound_to, secret: box.seal(secret, bound_to=bound_to),
        open_secret=lambda bound_to, sealed: box.open(sealed, bound_to=bound_to),
    )


@dataclass
class MemoryWorld:
    """A principal with a local account, two writers, a manager, an auditor, an outsider."""

    ctx: ServiceContext
    clock: FixedClock
    account: Account
    principal: User
    manager: User
    writer_a: User
    writer_b: User
    auditor: User
    outsider: User
    published: list[int] = field(default_factory=list)

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
    ) -> Window:
        start = starts_at or self.clock.now()
        return windows.create_window(
            self.ctx,
            Actor.for_user(self.manager),
            windows.WindowSpec(
                reason="The principal is at a conference; the team posts.",
                account_id=self.account.id,
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

    def live_window(self, **options: Any) -> Window:
        """A window open from now whose notice is approved and published."""
        window = self.open_window(**options)
        self.approve_notice(window)
        self.run_worker()
        live = self.window(window.id)
        assert live.notice_published_at is not None
        return live

    def submit(self, author: User, text: str, publish_at: datetime | None = None) -> Post:
        return posts.submit_post(
            self.ctx,
            Actor.for_user(author),
            posts.SubmitPost(
                account_id=self.account.id,
                author_id=author.id,
                text=text,
                source=Source.WEB,
                publish_at=publish_at,
            ),
        )

    def run_worker(self) -> int:
        """Publish what is due, one post at a time, as Worker.publish_one does; the platform
        accepts every post."""
        count = 0
        while True:
            publishing.expire_ended_windows(self.ctx)
            claim = publishing.claim_next(self.ctx, WORKER, LEASE)
            if claim is None:
                return count
            number = len(self.published) + 1
            receipt = publishing.Receipt(f"memory-{number}", f"https://local.test/{number}")
            publishing.record_published(self.ctx, claim, receipt)
            self.published.append(claim.post.id)
            count += 1

    def post(self, post_id: int) -> Post:
        with self.ctx.uow(read_only=True) as uow:
            found = uow.posts.get(post_id)
        assert found is not None
        return found

    def window(self, window_id: int) -> Window:
        with self.ctx.uow(read_only=True) as uow:
            found = uow.windows.get(window_id)
        assert found is not None
        return found

    def posts(self) -> list[Post]:
        with self.ctx.uow(read_only=True) as uow:
            return uow.posts.list_for_account(self.account.id)

    def entries(self) -> list[LedgerEntry]:
        with self.ctx.uow(read_only=True) as uow:
            return list(uow.ledger.entries())

    def timeline(self) -> list[str]:
        """The texts published on the account, in publishing order."""
        return [self.post(post_id).final_text for post_id in self.published]

    def events(self, post: Post) -> list[dict[str, Any]]:
        """The ledger entries about one post, oldest first: {"tag", "actor", **data}."""
        return [
            {"tag": e.tag, "actor": e.actor, **e.data}
            for e in self.entries()
            if e.subject == f"post:{post.public_id}"
        ]

    def stored(self) -> tuple[int, int]:
        """(posts, ledger entries): what a refusal must leave unchanged."""
        return len(self.posts()), len(self.entries())


def build_memory_world(ctx: ServiceContext, clock: FixedClock) -> MemoryWorld:
    """The cast of tests/support/world.py.build_world, built through the same services."""
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
    return MemoryWorld(ctx, clock, account, avery, manager, writer_a, writer_b, auditor, outsider)
