"""The composer with images, without JavaScript: a file and its alt text per slot, a preview
that shows them, a submit that attaches them; refusals are form messages that store nothing."""

from __future__ import annotations

import io
import os
import re

from flask.testing import FlaskClient
from PIL import Image

from ghostpost.domain.ledger import LedgerTag
from tests.support import images
from tests.support.web import csrf_from, sign_in
from tests.support.world import World


def compose(client: FlaskClient, world: World, action: str, **fields: object) -> tuple[int, str]:
    data: dict[str, object] = {
        "csrf_token": csrf_from(client, "/compose"),
        "account_id": str(world.account.id),
        "text": "Backstage",
        "publish_at": "",
        "timezone": "UTC",
        "action": action,
        **fields,
    }
    response = client.post("/compose", data=data, content_type="multipart/form-data")
    return response.status_code, response.get_data(as_text=True)


def test_a_writer_previews_and_submits_a_post_with_an_image_and_its_alt_text(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window())
    sign_in(client, world.writer_a.email)
    status, page = compose(
        client,
        world,
        "preview",
        image_1=(io.BytesIO(images.jpeg_with_gps()), "photo.jpg"),
        image_1_alt="The crew at the mixing desk",
    )
    assert status == 200, page
    assert 'alt="The crew at the mixing desk"' in page
    [media_id] = re.findall(r'name="media_ids" value="([^"]+)"', page)
    status, _ = compose(
        client,
        world,
        "submit",
        media_ids=media_id,
        **{f"alt_{media_id}": "The crew at the mixing desk, smiling"},
    )
    assert status == 302
    with world.ctx.uow(read_only=True) as uow:
        [entry] = [e for e in uow.ledger.entries() if e.tag == LedgerTag.POST_SUBMITTED]
    [image] = entry.data["images"]
    assert image["alt_text"] == "The crew at the mixing desk, smiling"


def test_an_image_without_alt_text_is_a_form_message_and_nothing_is_stored(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window())
    sign_in(client, world.writer_a.email)
    with world.ctx.uow(read_only=True) as uow:
        entries = len(list(uow.ledger.entries()))
    status, page = compose(client, world, "submit", image_1=(io.BytesIO(images.png()), "chart.png"))
    assert status == 422
    assert "alt text (description) is required" in page
    with world.ctx.uow(read_only=True) as uow:
        assert len(list(uow.ledger.entries())) == entries


def test_an_svg_named_png_is_refused_by_name_in_the_form(client: FlaskClient, world: World) -> None:
    world.approve_notice(world.open_window())
    sign_in(client, world.writer_a.email)
    status, page = compose(
        client,
        world,
        "preview",
        image_1=(io.BytesIO(images.SVG_AS_PNG), "logo.png"),
        image_1_alt="Logo",
    )
    assert status == 422
    assert "Image 1 (logo.png)" in page and "not a JPEG, PNG, WebP or GIF" in page


def noise_png(side: int) -> bytes:
    """A PNG of random pixels: barely compressible, so about 3 bytes a pixel (a phone photo's
    size, not a test pattern's)."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG")
    return out.getvalue()


def test_a_5_mb_photo_goes_through_the_form_and_other_routes_keep_their_limit(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window())
    sign_in(client, world.writer_a.email)
    photo = noise_png(1300)
    assert len(photo) > 5_000_000
    data = {
        "csrf_token": csrf_from(client, "/compose"),
        "account_id": str(world.account.id),
        "text": "Backstage",
        "publish_at": "",
        "timezone": "UTC",
        "action": "submit",
        "image_1": (io.BytesIO(photo), "photo.png"),
        "image_1_alt": "The crew at the mixing desk",
    }

    response = client.post("/compose", data=data, content_type="multipart/form-data")
    # werkzeug's test client spools a body over 500 kB to a temporary file it never closes.
    response.request.environ["wsgi.input"].close()

    assert response.status_code == 302, response.get_data(as_text=True)
    with world.ctx.uow(read_only=True) as uow:
        [entry] = [e for e in uow.ledger.entries() if e.tag == LedgerTag.POST_SUBMITTED]
    assert entry.data["images"][0]["alt_text"] == "The crew at the mixing desk"

    # The same body without its CSRF token is still refused.
    forged = client.post(
        "/compose",
        data={**data, "csrf_token": "forged", "image_1": (io.BytesIO(photo), "photo.png")},
        content_type="multipart/form-data",
    )
    forged.request.environ["wsgi.input"].close()
    assert forged.status_code == 400
    # Every other form keeps the app's 1 MiB limit.
    elsewhere = client.post(
        "/compose/preview",
        data={"csrf_token": csrf_from(client, "/compose"), "file": (io.BytesIO(photo), "p.png")},
        content_type="multipart/form-data",
    )
    elsewhere.request.environ["wsgi.input"].close()
    assert elsewhere.status_code == 413


def test_attack_a_draft_image_is_shown_to_its_uploader_only(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window())
    sign_in(client, world.writer_a.email)
    status, page = compose(
        client,
        world,
        "preview",
        image_1=(io.BytesIO(images.png()), "photo.png"),
        image_1_alt="Not announced yet",
    )
    assert status == 200, page
    thumbnail, *_ = re.findall(r"<img src=\"(/media/[^\"]+)\"", page)
    assert client.get(thumbnail).status_code == 200  # the writer's own preview shows it
    app = client.application
    for someone in (world.writer_b, world.manager, world.principal):
        browser = app.test_client()
        sign_in(browser, someone.email)
        assert browser.get(thumbnail).status_code == 404, someone.email
    assert app.test_client().get(thumbnail).status_code == 404  # nor to the public
