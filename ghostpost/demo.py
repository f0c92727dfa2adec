"""Demo data: Avery Chen, her agency team, a local account and a live window."""

from __future__ import annotations

from datetime import timedelta

from ghostpost.bootstrap import Container
from ghostpost.domain.model import Role, Source
from ghostpost.services import clients, directory, posts, windows
from ghostpost.services.context import Actor
from ghostpost.worker import Worker

PRINCIPAL = "Avery Chen"
HANDLE = "avery"
PEOPLE = (
    # email, name, role, demo password, is the principal
    ("avery@demo.ghostpost.test", "Avery Chen", Role.MANAGER, "avery-demo-pass", True),
    ("morgan@demo.ghostpost.test", "Morgan Lee", Role.MANAGER, "morgan-demo-pass", False),
    ("jordan@demo.ghostpost.test", "Jordan Park", Role.WRITER, "jordan-demo-pass", False),
    ("sam@demo.ghostpost.test", "Sam Rivera", Role.WRITER, "sam-demo-pass", False),
    ("rita@demo.ghostpost.test", "Rita Okafor", Role.AUDITOR, "rita-demo-pass", False),
    ("ada@demo.ghostpost.test", "Ada Brennan", Role.ADMIN, "ada-demo-pass", False),
)
#: DEMO ONLY: fixed, published credentials so the README's curl example works as written.
DEMO_CLIENT_ID = "demo-scheduler"
DEMO_CLIENT_SECRET = "demo-scheduler-secret-change-me"
DEMO_CLIENT_OWNER = "morgan@demo.ghostpost.test"
#: The writers the demo scheduler may name (never the principal: a manager owns the client).
DEMO_CLIENT_AUTHORS = ("jordan@demo.ghostpost.test", "sam@demo.ghostpost.test")
NOTICE = "During the show, some of my posts will be written by my extended team."
REMINDER = "Reminder: my team helps run this account during the conference."
SAMPLE_POSTS = (
    ("jordan", "Doors open at DevSummit! Come find us at booth 12 https://example.com/booth"),
    ("avery", "Thrilled to be on stage this morning. Thank you all for coming."),
    ("sam", "Slides from the keynote are up: https://example.com/keynote-slides"),
    ("jordan", "Live Q&A starts in 10 minutes in Hall B."),
    ("sam", "Our CTO's talk on reliable publishing pipelines is packed. Standing room only!"),
    ("jordan", "Lunch break. Back at 13:30 with the product roadmap session."),
    ("avery", "Great questions from the audience today. Keep them coming."),
    ("sam", "Roadmap recap thread below."),
    ("jordan", "Thanks to every partner who stopped by the booth today."),
    ("sam", "Tomorrow: workshops from 9:00. Bring a laptop."),
    ("jordan", "Day one in numbers: 3 talks, 2 workshops, 1 very tired team."),
)


def seed_demo(container: Container) -> str:
    """Create the demo data if missing, publish what is due, and describe how to log in."""
    ctx = container.services
    system = Actor.system("demo")
    with ctx.uow() as uow:
        existing = uow.principals.by_name(PRINCIPAL)
    if existing is None:
        principal = directory.create_principal(ctx, system, PRINCIPAL)
        account = directory.create_account(
            ctx, system, principal_id=principal.id, platform="local", handle=HANDLE
        )
        users = {}
        for email, name, role, password, is_principal in PEOPLE:
            users[email.split("@")[0]] = directory.create_user(
                ctx,
                system,
                email=email,
                name=name,
                role=role,
                password=password,
                principal_id=principal.id if is_principal else None,
            )
        for key in ("jordan", "sam", "morgan"):
            directory.assign_writer(ctx, system, user_id=users[key].id, account_id=account.id)
        now = ctx.clock.now()
        window = windows.create_window(
            ctx,
            Actor.for_user(users["morgan"]),
            windows.WindowSpec(
                account_id=account.id,
                name="DevSummit 2026",
                starts_at=now - timedelta(minutes=5),
                ends_at=now + timedelta(days=30),
                notice_text=NOTICE,
                reminder_text=REMINDER,
                reminder_every=10,
                reason="Avery is on stage and in meetings at DevSummit all month; the team "
                "posts the talks and answers as they happen.",
            ),
        )
        windows.approve_notice(ctx, Actor.for_user(users["avery"]), window.id)
        worker = Worker(container)
        worker.run(once=True)  # the notice goes out first, so delegated posts flow at once
        for who, text in SAMPLE_POSTS:
            author = users[who]
            posts.submit_post(
                ctx,
                Actor.for_user(author),
                posts.SubmitPost(
                    account_id=account.id, author_id=author.id, text=text, source=Source.CLI
                ),
            )
        worker.run(once=True)
        status = "Seeded the demo"
    else:
        status = "Demo data already present"
    _ensure_demo_client(container)
    lines = [
        f"{status}: principal {PRINCIPAL}, local account @{HANDLE}, window 'DevSummit 2026'.",
        "",
        "Demo users (email / password / role):",
    ]
    for email, _name, role, password, is_principal in PEOPLE:
        suffix = " (the principal)" if is_principal else ""
        lines.append(f"  {email:30} {password:18} {role.value}{suffix}")
    lines += ["", f"Timeline: {container.settings.public_url}/@{HANDLE}"]
    if container.mailer is not None:
        lines.append(f"Notification emails: {container.mailer.describe()} (scripts/demo: printed")
        lines.append(
            "  on this console by `ghostpost mailbox`); choose them at /account/notifications"
        )
    else:
        lines.append("Notification emails: recorded, not sent (no GHOSTPOST_SMTP_HOST)")
    lines += [
        "",
        "Demo API client 'Demo scheduler' (OAuth 2.0 client credentials; may name Jordan Park "
        "(default) or Sam Rivera as the author, never the principal):",
        f"  client_id      {DEMO_CLIENT_ID}",
        f"  client_secret  {DEMO_CLIENT_SECRET}   (demo only: real secrets are random)",
        f"  curl -u {DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET} -d grant_type=client_credentials "
        f"{container.settings.public_url}/oauth/token",
    ]
    return "\n".join(lines)


def _ensure_demo_client(container: Container) -> None:
    """Create the demo scheduler's API client unless it exists (demo databases seeded earlier)."""
    ctx = container.services
    with ctx.uow() as uow:
        exists = uow.api_clients.by_client_id(DEMO_CLIENT_ID) is not None
        account = uow.accounts.by_handle("local", HANDLE)
        owner = uow.users.by_email(DEMO_CLIENT_OWNER)
    if exists or account is None or owner is None:
        return
    clients.create_client(
        ctx,
        Actor.system("demo"),
        name="Demo scheduler",
        owner_email=DEMO_CLIENT_OWNER,
        # What a scheduler needs, no more (not guards:write: the guards are the principal's).
        scopes=["posts:read", "posts:write", "windows:read", "audit:read"],
        account_ids=[account.id],
        default_author_email="jordan@demo.ghostpost.test",
        author_emails=DEMO_CLIENT_AUTHORS,
        fixed_credentials=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
    )
