"""Under load, with real processes: 32 concurrent API clients and web sessions submit 2,000
posts across 5 accounts through gunicorn while worker processes publish them (4 on
PostgreSQL, 1 on SQLite, whose single writer lock makes more pointless).

Every post is published exactly once and none is lost; every account's timeline keeps the
reminder cadence exactly, with every delegated post tagged or its skip recorded; the ledger
chain verifies and names one `post:published` per post.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests

from ghostpost.clock import FixedClock
from ghostpost.domain.ledger import first_broken_entry
from ghostpost.domain.model import Account, Role, Window
from ghostpost.domain.states import PostState
from ghostpost.services import clients, directory, windows
from ghostpost.services.context import Actor
from ghostpost.settings import Settings
from tests.conftest import BACKEND
from tests.support.processes import gunicorn, workers
from tests.support.timeline import assert_policy_kept
from tests.support.web import PASSWORD
from tests.support.world import World

pytestmark = pytest.mark.slow

POSTS = 2000
ACCOUNTS = 5
API_CLIENTS = 24
WEB_SESSIONS = 8
WORKERS = 4 if BACKEND == "postgresql" else 1
DONE_STATES = {PostState.PUBLISHED, PostState.FAILED, PostState.REFUSED, PostState.CANCELLED}


@pytest.fixture
def clock() -> FixedClock:
    # Worker processes read the real clock, so windows must be open in real time.
    from datetime import UTC, datetime

    return FixedClock(datetime.now(UTC))


def five_accounts(world: World) -> tuple[list[Account], list[Window]]:
    """Avery's account plus four more executives', each with an open window and its notice."""
    system = Actor.system("test")
    accounts, opened = [world.account], []
    principals = [world.principal]
    for number in range(1, ACCOUNTS):
        principal = directory.create_principal(world.ctx, system, f"Executive {number}")
        accounts.append(
            directory.create_account(
                world.ctx,
                system,
                principal_id=principal.id,
                platform="local",
                handle=f"exec{number}",
            )
        )
        principals.append(
            directory.create_user(
                world.ctx,
                system,
                email=f"exec{number}@example.test",
                name=f"Executive {number}",
                role=Role.MANAGER,
                password=PASSWORD,
                principal_id=principal.id,
            )
        )
    for account, principal in zip(accounts, principals, strict=True):
        for writer in (world.writer_a, world.writer_b):
            if account.id != world.account.id:
                directory.assign_writer(world.ctx, system, user_id=writer.id, account_id=account.id)
        window = world.open_window(account=account, every=10, hours=2)
        opened.append(windows.approve_notice(world.ctx, Actor.for_user(principal), window.id))
    return accounts, opened


def api_submitter(
    url: str, client_id: str, secret: str, jobs: list[tuple[int, str, str]], out: list[object]
) -> None:
    with requests.Session() as http:
        token = http.post(
            f"{url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
            timeout=30,
        ).json()["access_token"]
        for account_id, author, text in jobs:
            response = http.post(
                f"{url}/api/v1/posts",
                json={"account": account_id, "text": text, "author": author},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
                timeout=60,
            )
            out.append((response.status_code, text, response.text[:300]))


def web_submitter(
    url: str, email: str, jobs: list[tuple[int, str, str]], out: list[object]
) -> None:
    with requests.Session() as browser:

        def csrf(path: str) -> str:
            page = browser.get(url + path, timeout=30).text
            found = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert found, page[:300]
            return found.group(1)

        signed_in = browser.post(
            f"{url}/login",
            data={"email": email, "password": PASSWORD, "csrf_token": csrf("/login")},
            timeout=30,
            allow_redirects=False,
        )
        assert signed_in.status_code == 302, signed_in.text[:300]
        token = csrf("/compose")
        for account_id, _author, text in jobs:
            response = browser.post(
                f"{url}/compose",
                data={
                    "account_id": str(account_id),
                    "text": text,
                    "timezone": "UTC",
                    "csrf_token": token,
                },
                timeout=60,
                allow_redirects=False,
            )
            ok = response.status_code == 302 and "/posts/" in response.headers.get("Location", "")
            out.append((201 if ok else response.status_code, text, response.text[:300]))


def test_2000_posts_from_32_clients_with_workers_publishing_exactly_once(
    world: World, settings: Settings, tmp_path: Path
) -> None:
    accounts, opened = five_accounts(world)
    system = Actor.system("test")
    api_clients = [
        clients.create_client(
            world.ctx,
            system,
            name=f"Scheduler {n}",
            owner_email=world.manager.email,
            scopes=["posts:write"],
            account_ids=[a.id for a in accounts],
            author_emails=[world.writer_a.email, world.writer_b.email],
        )
        for n in range(3)
    ]
    writers = [world.writer_a.email, world.writer_b.email]
    jobs = [
        (accounts[i % ACCOUNTS].id, writers[i % 2], f"Update {i} from the conference floor")
        for i in range(POSTS)
    ]
    submitters = API_CLIENTS + WEB_SESSIONS
    shares = [jobs[n::submitters] for n in range(submitters)]
    results: list[list[object]] = [[] for _ in range(submitters)]

    started = time.monotonic()
    with (
        gunicorn(
            settings,
            tmp_path / "gunicorn.log",
            GHOSTPOST_API_RATE_LIMIT="100000 per minute",
            # The 32 clients keep their connections, as a load balancer in front would (where
            # gunicorn's docs advise a longer keep-alive). At gunicorn's default of 2 s, a
            # loaded machine that stalled the server's event loop that long had it close an
            # idle connection just as a client sent its next form post on it: that client got
            # no answer and its thread ended (seen once, with py-spy pausing every process).
            GUNICORN_CMD_ARGS="--keep-alive 30",
        ) as url,
        workers(settings, tmp_path, WORKERS),
    ):
        threads = []
        for n in range(submitters):
            if n < API_CLIENTS:
                api_client, secret = api_clients[n % len(api_clients)]
                target, args = (
                    api_submitter,
                    (url, api_client.client_id, secret, shares[n], results[n]),
                )
            else:
                target, args = web_submitter, (url, writers[n % 2], shares[n], results[n])
            threads.append(threading.Thread(target=target, args=args))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        submitted_in = time.monotonic() - started

        # Wait for the worker to drain the queue. Each look is one GROUP BY (a few ms), not
        # 2,000 posts loaded, twice a second: the look must not take the CPU the worker
        # publishes with (at ten a second it was several seconds of a drain's CPU).
        account_ids = [a.id for a in accounts]
        deadline = time.monotonic() + 300
        while True:
            # Read-only: no turn on SQLite's writer lock, which the worker waits for.
            with world.ctx.uow(read_only=True) as uow:
                states = uow.posts.count_by_state(account_ids=account_ids, window_id=None)
            if all(state in DONE_STATES for state in states) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    published_in = time.monotonic() - started

    answers = [r for share in results for r in share]
    assert len(answers) == POSTS
    failures = [r for r in answers if r[0] != 201]  # type: ignore[index]
    assert not failures, failures[:5]
    assert set(states) == {PostState.PUBLISHED}, states

    with world.ctx.uow() as uow:
        posts = [p for a in accounts for p in uow.posts.list_for_account(a.id)]
        entries = list(uow.ledger.entries())
    regular = [p for p in posts if p.submitted_text.startswith("Update ")]
    assert sorted(p.submitted_text for p in regular) == sorted(t for _, _, t in jobs), "none lost"
    statuses = [
        s for a in accounts for s in world.container.local_store.timeline(a.handle, limit=10_000)
    ]
    assert len(statuses) == len(posts), "one platform status per post"
    assert len({p.platform_post_id for p in posts}) == len(posts), "none published twice"
    for account, window in zip(accounts, opened, strict=True):
        assert_policy_kept(world.container, account, window)
    assert first_broken_entry(entries) is None
    published = Counter(e.subject for e in entries if e.tag == "post:published")
    assert set(published.values()) == {1} and len(published) == len(posts)
    print(
        f"\n{BACKEND}: {POSTS} posts from {submitters} clients submitted in {submitted_in:.1f} s, "
        f"all {len(posts)} (with notices and reminders) published in {published_in:.1f} s "
        f"by {WORKERS} worker(s)"
    )
