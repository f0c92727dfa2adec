"""Images through /api/v1: upload (POST /api/v1/media), describe, attach with `media_ids`.
Every attack goes through the real routes with real tokens; a refusal stores nothing."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select

from ghostpost.db.models import MediaUploadRow, PostMediaRow, PostRow
from ghostpost.domain.ledger import LedgerTag
from ghostpost.services import exports, media, windows
from ghostpost.services.context import Actor
from tests.support import images
from tests.support.api import Scheduler, scheduler_for
from tests.support.world import NOTICE, World


@pytest.fixture
def live_window(world: World):  # type: ignore[no-untyped-def]
    return world.approve_notice(world.open_window(every=10))


@pytest.fixture
def scheduler(client: FlaskClient, world: World, live_window) -> Scheduler:  # type: ignore[no-untyped-def]
    return scheduler_for(client, world)


def upload(
    scheduler: Scheduler, data: bytes, description: str = "A red square", name: str = "a.png"
) -> Any:
    response = scheduler.post(
        "/api/v1/media",
        data={"file": (io.BytesIO(data), name), "description": description},
        content_type="multipart/form-data",
    )
    # werkzeug's test client spools a body over 500 kB to a temporary file it never closes.
    response.request.environ["wsgi.input"].close()
    return response


def uploaded_id(
    scheduler: Scheduler, data: bytes | None = None, description: str = "A red square"
) -> str:
    response = upload(scheduler, data or images.png(), description)
    assert response.status_code == 201, response.get_json()
    media_id: str = response.get_json()["id"]
    return media_id


def body(world: World, media_ids: list[str], text: str = "Keynote at 10") -> dict[str, Any]:
    return {
        "account": world.account.id,
        "text": text,
        "author": world.writer_a.email,
        "media_ids": media_ids,
    }


def stored(world: World) -> tuple[int, int, int, int, int]:
    """Posts, their images, ledger entries, uploads and files: what a refusal leaves as is."""
    with world.container.sessions() as session:
        posts, images_, uploads = (
            session.scalar(select(func.count()).select_from(row))
            for row in (PostRow, PostMediaRow, MediaUploadRow)
        )
    with world.ctx.uow(read_only=True) as uow:
        entries = len(list(uow.ledger.entries()))
    files = len([p for p in Path(world.container.settings.media_dir).rglob("*") if p.is_file()])
    return posts or 0, images_ or 0, entries, uploads or 0, files


def submitted_entries(world: World) -> list[Any]:
    with world.ctx.uow(read_only=True) as uow:
        return [e for e in uow.ledger.entries() if e.tag == LedgerTag.POST_SUBMITTED]


def assert_refused(response: Any, field: str, words: str) -> None:
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    problem = response.get_json()
    assert any(field in key for key in problem.get("errors", {})), problem
    assert words in problem["detail"], problem


def test_an_uploaded_image_is_attached_and_the_ledger_names_its_hash_and_alt_text(
    scheduler: Scheduler, world: World
) -> None:
    media_id = uploaded_id(scheduler, images.jpeg_with_gps(), "Stage at the keynote")
    response = scheduler.create(body(world, [media_id]))
    assert response.status_code == 201, response.get_json()
    [entry] = submitted_entries(world)
    [image] = entry.data["images"]
    assert image["alt_text"] == "Stage at the keynote"
    data = Path(world.container.settings.media_dir, image["hash"][:2], image["hash"]).read_bytes()
    # The GPS coordinates and the camera's make are gone from the bytes kept (and sent).
    assert b"PhoneMaker" not in data
    with Image.open(io.BytesIO(data)) as reopened:
        assert not reopened.getexif()


def test_another_clients_upload_cannot_be_attached(
    client: FlaskClient, scheduler: Scheduler, world: World
) -> None:
    intruder = scheduler_for(client, world, name="Other scheduler")
    theirs = uploaded_id(intruder)
    before = stored(world)
    response = scheduler.create(body(world, [theirs]))
    assert_refused(response, "media_ids", "No image")
    assert stored(world) == before
    # Nor read or described.
    assert scheduler.get(f"/api/v1/media/{theirs}").status_code == 404


def test_an_image_already_attached_cannot_go_on_a_second_post(
    scheduler: Scheduler, world: World
) -> None:
    media_id = uploaded_id(scheduler)
    assert scheduler.create(body(world, [media_id])).status_code == 201
    before = stored(world)
    response = scheduler.create(body(world, [media_id], text="Another post"))
    assert_refused(response, "media_ids", "already attached")
    assert stored(world) == before
    # Its description, as approved, is fixed.
    changed = scheduler.http.put(
        f"/api/v1/media/{media_id}", json={"description": "other"}, headers=scheduler.auth
    )
    assert changed.status_code == 409


@pytest.mark.parametrize(
    ("data", "name", "words"),
    [
        (images.SVG_AS_PNG, "logo.png", "not a JPEG, PNG, WebP or GIF"),
        (images.HTML_AS_PNG, "page.png", "not a JPEG, PNG, WebP or GIF"),
        (images.bomb_png(), "bomb.png", "decompression bomb"),
        (images.animated_gif(), "moving.gif", "animated"),
    ],
    ids=["svg", "html", "bomb", "animated"],
)
def test_files_that_are_not_plain_images_are_refused_by_name_and_store_nothing(
    scheduler: Scheduler, world: World, data: bytes, name: str, words: str
) -> None:
    before = stored(world)
    response = upload(scheduler, data, name=name)
    assert_refused(response, "file", words)
    assert stored(world) == before


def test_missing_alt_text_is_refused_unless_the_window_relaxes_it_for_delegated_posts(
    scheduler: Scheduler, world: World, live_window
) -> None:  # type: ignore[no-untyped-def]
    media_id = uploaded_id(scheduler, description="")
    before = stored(world)
    assert_refused(scheduler.create(body(world, [media_id])), "media_ids", "alt text")
    assert stored(world) == before
    # The principal agrees to relax it for this window's delegated posts.
    spec = windows.WindowSpec(
        reason="The principal is at a conference; the team posts.",
        account_id=world.account.id,
        name=live_window.name,
        starts_at=live_window.policy.starts_at,
        ends_at=live_window.policy.ends_at,
        notice_text=live_window.policy.notice_text,
        reminder_text=live_window.policy.reminder_text,
        reminder_every=live_window.policy.reminder_every,
        alt_text_required=False,
    )
    windows.update_window(world.ctx, Actor.for_user(world.principal), live_window.id, spec)
    assert scheduler.create(body(world, [media_id])).status_code == 201


def test_more_images_than_the_platform_takes_are_refused(
    scheduler: Scheduler, world: World
) -> None:
    ids = [uploaded_id(scheduler, images.png(color=(i, 0, 0))) for i in range(5)]
    before = stored(world)
    assert_refused(scheduler.create(body(world, ids)), "media_ids", "at most 4")
    assert stored(world) == before


def test_a_replay_with_other_images_is_a_conflict(scheduler: Scheduler, world: World) -> None:
    first, second = uploaded_id(scheduler), uploaded_id(scheduler, images.png(color=(1, 2, 3)))
    key = str(uuid.uuid4())
    assert scheduler.create(body(world, [first]), key=key).status_code == 201
    before = stored(world)
    replay = scheduler.create(body(world, [second]), key=key)
    assert replay.status_code == 422
    assert replay.get_json()["code"] == "idempotency_key_reused"
    assert stored(world) == before


def test_images_do_not_change_the_disclosure_decisions(scheduler: Scheduler, world: World) -> None:
    plain = scheduler.create(body(world, [], text="Same words")).get_json()
    with_image = scheduler.create(body(world, [uploaded_id(scheduler)], text="Same words"))
    assert with_image.status_code == 201
    illustrated = with_image.get_json()
    assert illustrated["text_if_published_now"] == plain["text_if_published_now"]
    assert illustrated["decisions"]["tag"] == plain["decisions"]["tag"]
    assert illustrated["decided_at_publication"] == plain["decided_at_publication"]


def _post_id(world: World, public_id: str) -> int:
    with world.ctx.uow(read_only=True) as uow:
        post = uow.posts.by_public_id(public_id)
        assert post is not None
        return post.id


def test_the_worker_sends_the_clean_image_and_the_local_page_shows_it_with_its_alt_text(
    scheduler: Scheduler, world: World
) -> None:
    media_id = uploaded_id(scheduler, images.jpeg_with_gps(), 'Stage "A" at <night>')
    created = scheduler.create(body(world, [media_id])).get_json()
    world.run_worker()
    post = world.post(_post_id(world, created["id"]))
    assert post.state.value == "published", post.state_reason
    status = world.container.local_store.get("avery", int(post.platform_post_id or 0))
    assert status is not None
    [image] = status.media
    page = scheduler.http.get(f"/@avery/{status.id}")
    assert 'alt="Stage &#34;A&#34; at &lt;night&gt;"' in page.get_data(as_text=True)
    served = scheduler.http.get(f"/@avery/{status.id}/media/0")
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert hashlib.sha256(served.data).hexdigest() == image.content_hash
    assert b"PhoneMaker" not in served.data
    # The ledger says which image went out.
    with world.ctx.uow(read_only=True) as uow:
        [publishing] = [
            e
            for e in uow.ledger.entries()
            if e.tag == LedgerTag.POST_PUBLISHING and e.subject == f"post:{created['id']}"
        ]
    assert publishing.data["images"] == [
        {"hash": image.content_hash, "alt_text": 'Stage "A" at <night>'}
    ]


def test_an_image_altered_on_disk_is_never_sent(scheduler: Scheduler, world: World) -> None:
    media_id = uploaded_id(scheduler)
    created = scheduler.create(body(world, [media_id])).get_json()
    [entry] = submitted_entries(world)
    content_hash = entry.data["images"][0]["hash"]
    path = Path(world.container.settings.media_dir, content_hash[:2], content_hash)
    path.write_bytes(images.png(color=(0, 0, 0)))  # another picture under the approved name
    world.run_worker()
    post = world.post(_post_id(world, created["id"]))
    assert post.state.value == "failed"
    assert "altered" in (post.state_reason or "")
    # Only the window's notice went out.
    assert [s.text for s in world.container.local_store.timeline("avery")] == [NOTICE]


def test_the_authorship_export_names_each_posts_images_by_hash(
    scheduler: Scheduler, world: World
) -> None:
    first, second = uploaded_id(scheduler), uploaded_id(scheduler, images.png(color=(9, 9, 9)))
    created = scheduler.create(body(world, [first, second])).get_json()
    plain = scheduler.create(body(world, [], text="No pictures")).get_json()
    [entry] = [e for e in submitted_entries(world) if e.subject == f"post:{created['id']}"]
    hashes = [image["hash"] for image in entry.data["images"]]
    rows = authorship_rows(world)
    assert rows[created["id"]]["images"] == f"2: {hashes[0]} {hashes[1]}"
    assert rows[plain["id"]]["images"] == ""


def authorship_rows(world: World) -> dict[str, dict[str, str]]:
    """The authorship CSV an auditor downloads, by post id."""
    export = exports.prepare_export(
        world.ctx,
        Actor.for_user(world.auditor),
        "authorship",
        "csv",
        exports.ExportFilters(),
        public_keys=world.container.keyring.public_keys(),
    )
    text = "".join(export.stream())
    return {row["post_id"]: row for row in csv.DictReader(io.StringIO(text, newline=""))}


def test_uploads_never_attached_are_purged_after_a_day(scheduler: Scheduler, world: World) -> None:
    kept = uploaded_id(scheduler)
    assert scheduler.create(body(world, [kept])).status_code == 201
    dropped = uploaded_id(scheduler, images.png(color=(5, 5, 5)))
    assert media.purge_unattached(world.ctx) == 0
    world.container.clock.advance(days=1, seconds=1)  # type: ignore[attr-defined]
    assert media.purge_unattached(world.ctx) == 1
    with world.ctx.uow(read_only=True) as uow:
        assert uow.media.get_upload(dropped) is None
        assert uow.media.get_upload(kept) is not None


def test_the_preview_refuses_the_images_a_create_would_refuse(
    scheduler: Scheduler, world: World
) -> None:
    media_id = uploaded_id(scheduler, description="")
    response = scheduler.post("/api/v1/preview", body(world, [media_id]))
    assert_refused(response, "media_ids", "alt text")


def test_an_image_larger_than_other_requests_may_be_is_uploaded(
    scheduler: Scheduler, world: World
) -> None:
    noise = Image.frombytes("RGB", (700, 700), bytes(range(256)) * 5742 + bytes(348))
    out = io.BytesIO()
    noise.save(out, format="PNG", compress_level=0)
    assert len(out.getvalue()) > 1024 * 1024  # the limit of every other request body
    response = upload(scheduler, out.getvalue())
    assert response.status_code == 201, response.get_data(as_text=True)
