"""The public pages of the local platform and the health check, through the Flask test client."""

from __future__ import annotations

import dataclasses
import re

import pytest
from flask.testing import FlaskClient
from markupsafe import escape

from ghostpost.domain.model import Post
from ghostpost.services import directory
from ghostpost.services.context import Actor
from tests.support.postgres import PostgresServer
from tests.support.world import (
    SEEDED_FROM,
    World,
    WorldTemplate,
    derive_template,
    row_counts,
)

PAGE_SIZE = 50
JSON = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def publish(world: World, *texts: str) -> list[Post]:
    """The principal posts each text (no window needed) and the worker publishes them."""
    submitted = [world.submit(world.principal, text) for text in texts]
    world.run_worker()
    return [world.post(p.id) for p in submitted]


@dataclasses.dataclass(frozen=True)
class PageTemplate:
    """A page of the principal's statuses (`publish` of PAGE_SIZE texts), built once into a
    copy of the world's template (database, signing key, witness and notary state)."""

    seeded: WorldTemplate
    published: tuple[Post, ...]


def a_page_of_texts() -> list[str]:
    return [f"Status number {i}" for i in range(PAGE_SIZE)]


#: A test asking for `a_page_published` starts on a copy of the page's template
#: (tests/conftest.py): the two pagination tests published the same 50 statuses one by one.
pytestmark = pytest.mark.seeded_template("a_page_published", "page_world_template")


@pytest.fixture(scope="session")
def page_template(
    tmp_path_factory: pytest.TempPathFactory,
    world_template: WorldTemplate,
    postgres: PostgresServer | None,
) -> PageTemplate:
    """`publish(world, *a_page_of_texts())` on a copy of the world's template, once."""
    seeded, published, now = derive_template(
        tmp_path_factory,
        world_template,
        postgres,
        "page",
        lambda world: publish(world, *a_page_of_texts()),
    )
    assert now == world_template.start, "publishing moved the clock: copies would not"
    return PageTemplate(seeded, tuple(published))


@pytest.fixture(scope="session")
def page_world_template(page_template: PageTemplate) -> WorldTemplate:
    return page_template.seeded


@pytest.fixture
def a_page_published(request: pytest.FixtureRequest, world: World) -> list[Post]:
    """`publish(world, *a_page_of_texts())`: the template's when the test started on its copy."""
    template: PageTemplate = request.getfixturevalue("page_template")
    if request.node.stash.get(SEEDED_FROM, None) is template.seeded:
        if row_counts(world.container.settings.database_url) != template.seeded.counts:
            raise RuntimeError("the database changed between the world and the page fixtures")
        return list(template.published)
    return publish(world, *a_page_of_texts())


def status_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'id="status-(\d+)"', html)]


def test_the_health_check_answers_ok_as_json(client: FlaskClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json()["status"] == "ok"


def test_the_index_lists_the_local_accounts_only(world: World, client: FlaskClient) -> None:
    system = Actor.system("test")
    directory.create_account(
        world.ctx,
        system,
        principal_id=world.principal.principal_id or 0,
        platform="mastodon",
        handle="avery_elsewhere",
    )
    directory.create_account(
        world.ctx,
        system,
        principal_id=world.principal.principal_id or 0,
        platform="local",
        handle="avery_two",
    )

    response = client.get("/")

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'href="/@avery"' in html
    assert 'href="/@avery_two"' in html
    assert "avery_elsewhere" not in html


def test_the_index_without_accounts_says_so(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert "No local accounts yet" in response.get_data(as_text=True)


def test_a_timeline_shows_published_statuses_newest_first_with_their_exact_text(
    world: World, client: FlaskClient
) -> None:
    first, second, third = publish(
        world,
        "First: opening remarks",
        'Second: Q&A with "the panel" — it\'s on',
        "Third:\nline two",
    )

    response = client.get("/@avery", headers=BROWSER)

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    ids = [int(p.platform_post_id or 0) for p in (third, second, first)]
    assert status_ids(html) == ids, "newest first"
    for post in (first, second, third):
        assert f"<p>{escape(post.final_text)}</p>" in html
    assert "Older posts" not in html


def test_a_timeline_shows_only_published_posts(world: World, client: FlaskClient) -> None:
    world.open_window()  # its notice is never approved: the delegated post stays held
    world.submit(world.writer_a, "Held until the notice goes out")
    world.run_worker()

    html = client.get("/@avery").get_data(as_text=True)

    assert "Held until the notice" not in html
    assert "Nothing published yet." in html


def test_markup_in_a_post_is_shown_escaped_never_run(world: World, client: FlaskClient) -> None:
    [post] = publish(world, "Look: <script>alert(1)</script> & <b>bold</b>")

    html = client.get("/@avery").get_data(as_text=True)
    single = client.get(f"/@avery/{post.platform_post_id}").get_data(as_text=True)

    for page in (html, single):
        assert "<script>alert(1)</script>" not in page
        assert "<b>bold</b>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page


def test_an_unknown_handle_is_a_404_page(world: World, client: FlaskClient) -> None:
    response = client.get("/@nobody", headers=BROWSER)

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "@nobody" in response.get_data(as_text=True)


def test_an_unknown_handle_is_a_problem_document_for_json_clients(
    world: World, client: FlaskClient
) -> None:
    response = client.get("/@nobody", headers=JSON)

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert set(body) >= {"type", "title", "status", "detail"}
    assert body["status"] == 404
    assert body["title"] == "Not found"
    assert "@nobody" in body["detail"]
    assert body["type"].startswith("urn:ghostpost:problem:")


def test_one_status_has_its_own_page(world: World, client: FlaskClient) -> None:
    _, second = publish(world, "Not this one", "This one")

    response = client.get(f"/@avery/{second.platform_post_id}")

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert status_ids(html) == [int(second.platform_post_id or 0)]
    assert "This one" in html
    assert "Not this one" not in html
    assert second.platform_url == f"http://ghostpost.test/@avery/{second.platform_post_id}"


def test_a_status_is_not_found_under_another_handle_or_id(
    world: World, client: FlaskClient
) -> None:
    [post] = publish(world, "Only on @avery")
    directory.create_account(
        world.ctx,
        Actor.system("test"),
        principal_id=world.principal.principal_id or 0,
        platform="local",
        handle="other",
    )

    assert client.get(f"/@other/{post.platform_post_id}").status_code == 404
    assert client.get("/@avery/999999").status_code == 404
    missing = client.get("/@avery/999999", headers=JSON)
    assert missing.mimetype == "application/problem+json"


def test_long_timelines_are_paginated_with_an_older_posts_link(
    world: World, client: FlaskClient, a_page_published: list[Post]
) -> None:
    more = publish(world, *(f"Status number {i}" for i in range(PAGE_SIZE, PAGE_SIZE + 3)))
    published = a_page_published + more
    ids = [int(p.platform_post_id or 0) for p in published]

    page_one = client.get("/@avery").get_data(as_text=True)
    assert status_ids(page_one) == sorted(ids, reverse=True)[:PAGE_SIZE]
    link = re.search(r'<a href="([^"]+)">Older posts</a>', page_one)
    assert link is not None

    page_two = client.get(link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert status_ids(page_two) == sorted(ids, reverse=True)[PAGE_SIZE:]
    assert "Older posts" not in page_two


def test_a_timeline_of_exactly_one_page_has_no_older_posts_link(
    world: World, client: FlaskClient, a_page_published: list[Post]
) -> None:
    page_one = client.get("/@avery").get_data(as_text=True)

    assert len(status_ids(page_one)) == PAGE_SIZE
    assert "Older posts" not in page_one, "the link would lead to an empty page"


def test_urls_in_posts_are_links_and_nothing_else_becomes_markup(
    world: World, client: FlaskClient
) -> None:
    # The attack first: text that tries to break out of the link or the paragraph.
    attack = (
        'See https://x.test/"><script>alert(1)</script> and '
        "javascript:alert(2) and <img src=x onerror=alert(3)> and "
        "https://ok.test/a?b=1&c=2."
    )
    publish(world, attack)
    html = client.get("/@avery", headers=BROWSER).get_data(as_text=True)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert 'href="javascript:' not in html
    assert (
        '<a href="https://x.test/" rel="nofollow noopener noreferrer">https://x.test/</a>' in html
    )
    link = '<a href="https://ok.test/a?b=1&amp;c=2" rel="nofollow noopener noreferrer">'
    assert link + "https://ok.test/a?b=1&amp;c=2</a>." in html  # the full stop stays text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_timeline_shows_the_principals_name_and_avatar(world: World, client: FlaskClient) -> None:
    publish(world, "Hello")
    html = client.get("/@avery", headers=BROWSER).get_data(as_text=True)
    assert "Avery Chen" in html
    assert '<span class="avatar" aria-hidden="true">AC</span>' in html


def test_the_favicon_is_served(client: FlaskClient) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.mimetype in ("image/x-icon", "image/vnd.microsoft.icon")
    assert response.data[:4] == b"\x00\x00\x01\x00"  # an ICO file
