"""Images through the Mastodon face: /api/v1 and /api/v2/media, media_ids[] on statuses,
media_attachments in the status; the attacks of the native API, in Mastodon's shapes."""

from __future__ import annotations

import dataclasses
import io
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from ghostpost.domain.model import Post, Window
from ghostpost.domain.policy import TagMode
from ghostpost.domain.states import PostState
from ghostpost.settings import Settings
from tests.functional.test_mastodon_face import FACE_HOST, App, app_for, snapshot
from tests.functional.test_post_deletion import face, signed_in_token
from tests.support import images
from tests.support.world import World


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, mastodon_host=FACE_HOST)


@pytest.fixture
def opened(world: World, opened_window: Window) -> World:
    return world


def upload(app: App, data: bytes, description: str = "", version: str = "v2") -> Any:
    return app.call(
        "POST",
        f"/api/{version}/media",
        data={"file": (io.BytesIO(data), "photo.jpg"), "description": description},
        content_type="multipart/form-data",
    )


def test_an_app_uploads_describes_and_attaches_an_image_as_on_mastodon(
    client: FlaskClient, opened: World
) -> None:
    app = app_for(client, opened, opened.account)
    uploaded = upload(app, images.jpeg_with_gps(width=4, height=2))
    assert uploaded.status_code == 200, uploaded.get_data(as_text=True)
    entity = uploaded.get_json()
    assert entity["type"] == "image" and entity["blurhash"] is None
    assert entity["meta"]["original"] == {"width": 4, "height": 2, "size": "4x2", "aspect": 2.0}
    assert entity["description"] is None
    media_id = entity["id"]
    described = app.call("PUT", f"/api/v1/media/{media_id}", data={"description": "A red bar"})
    assert described.get_json()["description"] == "A red bar"
    assert app.get(f"/api/v1/media/{media_id}").get_json()["description"] == "A red bar"
    status = app.call(
        "POST", "/api/v1/statuses", data={"status": "Look", "media_ids[]": [media_id]}
    )
    assert status.status_code == 200, status.get_data(as_text=True)
    [attachment] = status.get_json()["media_attachments"]
    assert attachment["id"] == media_id and attachment["description"] == "A red bar"
    again = app.get(f"/api/v1/statuses/{status.get_json()['id']}").get_json()
    assert again["media_attachments"] == [attachment]
    # Updated: the URL served at once; now only once the status is published (until then,
    # to its uploader alone: see test_an_image_is_public_only_while_its_post_is_published).
    opened.run_worker()
    # The URL serves the cleaned bytes, without a token, from ghostpost's own host.
    served = client.get(attachment["url"].removeprefix("http://ghostpost.test"))
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert b"PhoneMaker" not in served.data
    with Image.open(io.BytesIO(served.data)) as reopened:
        assert not reopened.getexif()


def test_another_apps_image_cannot_be_attached_or_read(client: FlaskClient, opened: World) -> None:
    app = app_for(client, opened, opened.account)
    other = app_for(client, opened, opened.account, name="Other app")
    theirs = upload(other, images.png(), "Theirs").get_json()["id"]
    assert app.get(f"/api/v1/media/{theirs}").status_code == 404
    before = snapshot(opened)
    status = app.call("POST", "/api/v1/statuses", data={"status": "Hi", "media_ids[]": [theirs]})
    assert status.status_code == 422
    assert "media_ids" in status.get_json()["error"]
    assert snapshot(opened) == before


@pytest.mark.parametrize(
    "data", [images.SVG_AS_PNG, images.bomb_png()], ids=["svg-named-jpg", "bomb"]
)
def test_what_is_not_an_image_is_refused_in_mastodons_shape(
    client: FlaskClient, opened: World, data: bytes
) -> None:
    app = app_for(client, opened, opened.account)
    response = upload(app, data, "x", version="v1")
    assert response.status_code == 422
    assert set(response.get_json()) == {"error"}
    assert "Validation failed: The file is refused" in response.get_json()["error"]


def test_a_replay_with_other_media_ids_is_refused(client: FlaskClient, opened: World) -> None:
    app = app_for(client, opened, opened.account)
    first = upload(app, images.png(), "One").get_json()["id"]
    second = upload(app, images.png(color=(1, 1, 1)), "Two").get_json()["id"]
    key = {"Idempotency-Key": str(uuid.uuid4())}
    created = app.call(
        "POST", "/api/v1/statuses", data={"status": "Hi", "media_ids[]": [first]}, headers=key
    )
    assert created.status_code == 200
    before = snapshot(opened)
    replay = app.call(
        "POST", "/api/v1/statuses", data={"status": "Hi", "media_ids[]": [second]}, headers=key
    )
    assert replay.status_code == 422
    assert snapshot(opened) == before


def test_the_instance_says_how_many_images_the_account_takes(
    client: FlaskClient, opened: World
) -> None:
    app = app_for(client, opened, opened.account)
    configuration = app.get("/api/v1/instance").get_json()["configuration"]
    assert configuration["statuses"]["max_media_attachments"] == 4
    # The strictest of the platforms: X takes 1000 characters of alt text, Bluesky 1 MB.
    assert configuration["media_attachments"]["description_limit"] == 1000
    assert configuration["media_attachments"]["image_size_limit"] == 1_000_000


def published(world: World, status_id: str) -> Post:
    world.run_worker()
    with world.ctx.uow() as uow:
        post = uow.posts.get(int(status_id))
    assert post is not None
    return post


@pytest.mark.parametrize("status", ["", "  \n", None], ids=["empty", "blank", "absent"])
def test_images_alone_go_out_with_the_tag_as_the_text_of_a_delegated_post(
    client: FlaskClient, opened: World, status: str | None
) -> None:
    # Mastodon takes a status of images alone. A delegated post still discloses: the window's
    # tag becomes its whole text (the alt text describes the image, it is no disclosure).
    app = app_for(client, opened, opened.account)
    media_id = upload(app, images.png(), "A red square").get_json()["id"]
    data: dict[str, Any] = {"media_ids[]": [media_id]}
    if status is not None:
        data["status"] = status
    created = app.call("POST", "/api/v1/statuses", data=data)
    assert created.status_code == 200, created.get_data(as_text=True)
    assert len(created.get_json()["media_attachments"]) == 1
    post = published(opened, created.get_json()["id"])
    assert post.state is PostState.PUBLISHED
    assert post.submitted_text == (status or "")
    assert post.final_text == "#team"
    [shown] = [
        s
        for s in opened.container.local_store.timeline(opened.account.handle, limit=50)
        if str(s.id) == post.platform_post_id
    ]
    assert shown.text == "#team"


def test_images_alone_go_out_without_text_when_the_window_tags_nothing(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window(tag_mode=TagMode.OFF))
    app = app_for(client, world, world.account)
    media_id = upload(app, images.png(), "A red square").get_json()["id"]
    created = app.call("POST", "/api/v1/statuses", data={"status": "", "media_ids[]": [media_id]})
    assert created.status_code == 200, created.get_data(as_text=True)
    post = published(world, created.get_json()["id"])
    assert post.state is PostState.PUBLISHED, post.state_reason
    assert post.final_text == ""


def test_attack_an_empty_status_without_images_is_still_refused(
    client: FlaskClient, opened: World
) -> None:
    app = app_for(client, opened, opened.account)
    before = snapshot(opened)
    for data in ({"status": ""}, {"status": "  "}, {"status": "", "media_ids[]": [""]}):
        refused = app.call("POST", "/api/v1/statuses", data=data)
        assert refused.status_code == 422
        assert refused.get_json()["error"] == "Validation failed: Text can't be blank"
    assert snapshot(opened) == before


def media_path(media_id: str) -> str:
    return f"/media/{media_id}"


def fetch(http: FlaskClient, media_id: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.get(media_path(media_id), headers=headers).status_code


def test_an_image_is_public_only_while_its_post_is_published(
    app: Flask, client: FlaskClient, opened: World
) -> None:
    app_ = app_for(client, opened, opened.account)
    other = app_for(client, opened, opened.account, name="Other app")
    media_id = upload(app_, images.png(), "A red square").get_json()["id"]
    stranger = app.test_client()

    # A draft's image: its uploader's token only; not to the public, nor to another app.
    assert fetch(stranger, media_id) == 404
    assert fetch(stranger, media_id, other.token) == 404
    assert fetch(stranger, media_id, "not-a-token") == 404
    assert fetch(stranger, media_id, app_.token) == 200

    status = app_.call(
        "POST", "/api/v1/statuses", data={"status": "Look", "media_ids[]": [media_id]}
    )
    assert status.status_code == 200
    assert fetch(stranger, media_id) == 404  # attached, still queued: not public yet
    assert fetch(stranger, media_id, app_.token) == 200
    opened.run_worker()
    served = stranger.get(media_path(media_id))
    assert served.status_code == 200
    assert served.headers["Cache-Control"] == "private, no-cache"  # no shared cache keeps it

    # The principal deletes the post from the platform: the image goes with it, for everyone.
    principal_token = signed_in_token(app, opened.principal, opened.account)
    deleted = face(client, "DELETE", f"/api/v1/statuses/{status.get_json()['id']}", principal_token)
    assert deleted.status_code == 200, deleted.get_data(as_text=True)
    assert fetch(stranger, media_id) == 404
    assert fetch(stranger, media_id, app_.token) == 404
    assert fetch(stranger, media_id, principal_token) == 404
