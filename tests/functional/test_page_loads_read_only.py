"""Staff and public page loads read in read-only units of work: a long write (a publish, an
export claim, a notary pass) never makes a page wait, and a page view never takes the lock."""

from __future__ import annotations

import threading
import time

from flask.testing import FlaskClient

from tests.support.web import sign_in
from tests.support.world import World

#: The pages an agency keeps open during a live event, signed in as the manager.
STAFF_PAGES = (
    "/queue",
    "/windows",
    "/coverage",
    "/ledger",
    "/accounts",
    "/compose",
)


def test_pages_answer_while_a_writer_holds_the_write_lock(
    world: World, client: FlaskClient
) -> None:
    window = world.open_window()
    world.approve_notice(window)
    post = world.submit(world.writer_a, "Slides from the keynote are up")
    sign_in(client, world.manager.email)
    # Warm the pages once, so a first-request cost does not count as waiting.
    for path in STAFF_PAGES:
        assert client.get(path).status_code == 200, path

    pages = [*STAFF_PAGES, f"/posts/{post.public_id}", f"/@{world.account.handle}", "/"]
    statuses: dict[str, int] = {}

    def load_pages() -> None:
        for path in pages:
            statuses[path] = client.get(path).status_code

    with world.ctx.uow() as writer:
        # An uncommitted write: SQLite's BEGIN IMMEDIATE lock, PostgreSQL's row locks.
        writer.principals.add("Uncommitted while pages load")
        reader = threading.Thread(target=load_pages)
        started = time.monotonic()
        reader.start()
        reader.join(timeout=20)
        waited = time.monotonic() - started
        assert not reader.is_alive(), "a page load waited for the writer"
    assert statuses == dict.fromkeys(pages, 200)
    assert waited < 10
