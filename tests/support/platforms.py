"""One harness per real platform for the contract tests: a server on 127.0.0.1 (a fake that
speaks the platform's documented protocol, or a real Bluesky PDS), a fault proxy in front of it,
and a ghostpost account connected to it through the proxy with sealed credentials.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from argon2 import PasswordHasher

from ghostpost.adapters.base import Publisher
from ghostpost.adapters.http import PlatformHttp
from ghostpost.bootstrap import Container, bootstrap
from ghostpost.clock import FixedClock
from ghostpost.domain.model import Account
from ghostpost.services import connections, directory
from ghostpost.services.context import Actor
from ghostpost.settings import Settings
from tests.support.bluesky_pds import BlueskyPds
from tests.support.fault_proxy import FaultProxy, fault_proxy
from tests.support.http_server import serving
from tests.support.world import World, build_world

PLATFORMS = ("mastodon", "bluesky", "x")
#: The adapters give up after this long in a case: generous, because on a busy machine a
#: slower answer turned into a retry (the post still "scheduled" after the worker ran: flaky CI).
TIMEOUT_SECONDS = 5.0
#: The timeout of a test marked `platform_timeout(STALL_TIMEOUT_SECONDS)`: one that makes the
#: proxy stall past the adapter's timeout, kept short so that the stall is.
STALL_TIMEOUT_SECONDS = 0.5
X_CLIENT_ID = "ghostpost-test-client"
X_CLIENT_SECRET = "ghostpost-test-client-secret"
_numbers = itertools.count(1)


@dataclass
class PlatformCase:
    """A connected account on one platform, and how to look at the platform's side."""

    name: str
    container: Container
    world: World
    account: Account
    proxy: FaultProxy
    #: Path fragment of the call that creates a post (where faults are injected).
    create_path: str
    #: The texts the platform holds for the account, oldest first.
    texts: Callable[[], list[str]]
    #: The images of each of those posts, oldest post first: (alt text, width, height).
    images: Callable[[], list[list[tuple[str, int, int]]]] = field(default=lambda: [])
    #: The platform's server (the fake, or the BlueskyPds), for checks behind the adapter.
    server: Any = None
    #: Each post's platform id -> the platform id of the post it answers (None: no reply).
    parents: Callable[[], dict[str, str | None]] = dict

    def publisher(self) -> Publisher:
        """A fresh adapter, as a restarted worker process would build it."""
        return self.container.publisher_for(self.account)


def _connect(world: World, **values: object) -> Account:
    account = connections.save_connection(
        world.ctx,
        Actor.for_user(world.manager),
        principal_id=world.account.principal_id,
        **values,  # type: ignore[arg-type]
    )
    system = Actor.system("test")
    for writer in (world.writer_a, world.writer_b):
        directory.assign_writer(world.ctx, system, user_id=writer.id, account_id=account.id)
    return account


@contextmanager
def platform_case(
    name: str,
    settings: Settings,
    clock: FixedClock,
    pds: Callable[[], BlueskyPds],
    timeout: float = TIMEOUT_SECONDS,
) -> Iterator[PlatformCase]:
    """Start the platform's server and proxy, connect an account, yield the case (the adapters
    giving up after `timeout` seconds)."""
    settings = settings.replace(platform_timeout_seconds=timeout)
    with ExitStack() as stack:
        if name == "mastodon":
            from tests.support.fake_mastodon import make_fake_mastodon

            fake = make_fake_mastodon(max_characters=500, characters_reserved_per_url=23)
            upstream = stack.enter_context(serving(fake.app))
            proxy_url, proxy = stack.enter_context(fault_proxy(upstream))
            container = _container(stack, settings, clock)
            world = build_world(container)
            user_id = fake.create_user("avery")
            account = _connect(
                world,
                platform="mastodon",
                handle=f"avery@{proxy_url.split('://')[1]}",
                remote_id=user_id,
                base_url=proxy_url,
                credentials={"access_token": fake.issue_token("avery", "read write")},
                max_chars=500,
                url_length=23,
            )
            yield PlatformCase(
                name,
                container,
                world,
                account,
                proxy,
                "/api/v1/statuses",
                lambda: [s["text"] for s in sorted(fake.statuses_of("avery"), key=_by_id)],
                lambda: [
                    [(m["description"] or "", m["width"], m["height"]) for m in fake.media_of(s)]
                    for s in sorted(fake.statuses_of("avery"), key=_by_id)
                ],
                fake,
                lambda: {s["id"]: s.get("in_reply_to_id") for s in fake.statuses},
            )
        elif name == "bluesky":
            from ghostpost.adapters.bluesky import POST_COLLECTION, BlueskyConnector

            server = pds()
            proxy_url, proxy = stack.enter_context(fault_proxy(server.url))
            container = _container(stack, settings, clock)
            world = build_world(container)
            handle = f"exec{next(_numbers)}x{id(world) % 100_000}.test"
            created = server.create_account(handle, "account-password-1", f"{handle}@example.test")
            app_password = server.create_app_password(created["accessJwt"], "ghostpost")
            connection = BlueskyConnector(PlatformHttp(5, container.outbound)).connect(
                proxy_url, handle, app_password
            )
            account = _connect(
                world,
                platform="bluesky",
                handle=connection.handle,
                remote_id=connection.remote_id,
                base_url=connection.base_url,
                credentials=connection.credentials,
            )
            did = connection.remote_id
            yield PlatformCase(
                name,
                container,
                world,
                account,
                proxy,
                "com.atproto.repo.createRecord",
                lambda: [
                    r["value"]["text"] for r in reversed(server.list_records(did, POST_COLLECTION))
                ],
                lambda: [
                    [
                        (i["alt"], i["aspectRatio"]["width"], i["aspectRatio"]["height"])
                        for i in r["value"].get("embed", {}).get("images", [])
                    ]
                    for r in reversed(server.list_records(did, POST_COLLECTION))
                ],
                server,
                lambda: {
                    r["uri"]: (r["value"].get("reply") or {}).get("parent", {}).get("uri")
                    for r in server.list_records(did, POST_COLLECTION)
                },
            )
        elif name == "x":
            yield from _x_case(stack, settings, clock)
        else:
            raise ValueError(name)


def _by_id(status: dict[str, object]) -> int:
    return int(str(status["id"]))


def _container(
    stack: ExitStack, settings: Settings, clock: FixedClock, **changes: object
) -> Container:
    container = bootstrap(
        settings.replace(**changes) if changes else settings,
        clock=clock,
        password_hasher=PasswordHasher(1, 8, 1),
    )
    stack.callback(container.dispose)
    return container


def _x_case(stack: ExitStack, settings: Settings, clock: FixedClock) -> Iterator[PlatformCase]:
    from ghostpost.adapters.x import XConnector
    from tests.support.consent import approve
    from tests.support.fake_x import make_fake_x

    fake = make_fake_x(client_id=X_CLIENT_ID, client_secret=X_CLIENT_SECRET, now=clock.now)
    user_id = fake.create_user("avery")
    upstream = stack.enter_context(serving(fake.app))
    proxy_url, proxy = stack.enter_context(fault_proxy(upstream))
    container = _container(
        stack,
        settings,
        clock,
        x_api_url=proxy_url,
        x_authorize_url=f"{upstream}/i/oauth2/authorize",
        x_client_id=X_CLIENT_ID,
        x_client_secret=X_CLIENT_SECRET,
    )
    world = build_world(container)
    connector = XConnector(
        PlatformHttp(5, container.outbound),
        api_url=proxy_url,
        authorize_url=f"{upstream}/i/oauth2/authorize",
        client_id=X_CLIENT_ID,
        client_secret=X_CLIENT_SECRET,
        clock=clock,
    )
    started = connector.start("http://ghostpost.test/accounts/connect/x/callback")
    callback = approve(started["authorize_url"])
    code = parse_qs(urlsplit(callback).query)["code"][0]
    connection = connector.finish(started, code)
    account = _connect(
        world,
        platform="x",
        handle=connection.handle,
        remote_id=connection.remote_id,
        base_url=connection.base_url,
        credentials=connection.credentials,
    )
    yield PlatformCase(
        "x",
        container,
        world,
        account,
        proxy,
        "/2/tweets",
        lambda: [t["text"] for t in fake.tweets if t["author_id"] == user_id],
        lambda: [
            [
                (fake.media[i]["alt_text"] or "", fake.media[i]["w"], fake.media[i]["h"])
                for i in t["media_ids"]
            ]
            for t in fake.tweets
            if t["author_id"] == user_id
        ],
        fake,
        lambda: {t["id"]: t.get("in_reply_to_tweet_id") for t in fake.tweets},
    )


@pytest.fixture(params=PLATFORMS)
def case(
    request: pytest.FixtureRequest, settings: Settings, clock: FixedClock
) -> Iterator[PlatformCase]:
    """Each platform in turn, connected (import this fixture into a test module to use it)."""

    def pds() -> BlueskyPds:
        found: BlueskyPds = request.getfixturevalue("bluesky_pds")
        return found

    marked = request.node.get_closest_marker("platform_timeout")
    timeout = marked.args[0] if marked else TIMEOUT_SECONDS
    with platform_case(request.param, settings, clock, pds, timeout) as built:
        yield built
