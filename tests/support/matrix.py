"""The cast and the request runner behind tests/functional/test_authorization_matrix.py.

One `Matrix` holds a seeded world with two principals (Avery, the world's principal, and Blake,
"another principal" with an account of his own), one signed-in Flask test client per staff role
and one API token per client configuration. Rows ask it for objects (fresh ones for requests
that change state, so every check starts from the same facts) and run requests as an actor.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ghostpost.adapters.local import LocalImage
from ghostpost.domain.model import Account, Post, Role, Source, User, Window
from ghostpost.domain.policy import TagMode
from ghostpost.services import directory, media, posts, windows
from ghostpost.services.context import Actor
from ghostpost.services.web_sessions import start_web_session
from tests.support import images
from tests.support.api import create_api_client, fetch_token
from tests.support.web import sign_in
from tests.support.world import World

#: Web actors: anonymous, a Bearer token (no session), staff sessions. Own posts are written by
#: "writer_assigned" (Jordan); "writer_coauthor" (Sam) is assigned to the same account but did
#: not write them. "principal" is Avery (role manager); "principal_writer" is Blake, the *other*
#: principal, with the writer role only, so what only a principal may do is not hidden behind
#: the manager role. (It used to be a second user of Avery's principal: one principal, one
#: person since issue 12, so Blake's own objects are the "other" target for that actor.)
WEB_ACTORS = (
    "anonymous",
    "api_token",
    "writer_unassigned",
    "writer_assigned",
    "writer_coauthor",
    "auditor",
    "manager",
    "admin",
    "principal",
    "principal_writer",
)
#: Every scope (tests.support.api.ALL_SCOPES leaves out audit:read).
ALL_SCOPES = ("posts:write", "posts:read", "windows:read", "audit:read", "guards:write")
#: API actors: no token, a signed-in staff session (cookies are no API credentials), a client
#: with every scope, one client missing each scope, a client limited to Blake's account.
API_ACTORS = (
    "anonymous",
    "staff_session",
    *(f"client_without_{scope}" for scope in ALL_SCOPES),
    "client_other_account",
    "client_all_scopes",
)
TARGETS = ("own", "other")


@dataclass(frozen=True)
class Request:
    """One HTTP request; `form` POSTs get a valid CSRF token of the actor's session."""

    method: str
    path: str
    form: Mapping[str, str] | None = None
    json: Any = None
    query: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    csrf: bool = True
    #: Send from this client address (the sign-in limit counts per address).
    remote_addr: str = "127.0.0.1"
    #: Send from a copy of the actor's session (for requests that end the session).
    isolated: bool = False
    #: Multipart files: field -> (file name, bytes).
    files: Mapping[str, tuple[str, bytes]] | None = None


@dataclass
class Principal:
    """A principal's side of the world: the account, its staff, a window with approvals."""

    account: Account
    user: User
    writer: User
    window: Window


@dataclass
class Matrix:
    world: World
    app: Flask
    admin: User
    own: Principal
    other: Principal
    web: dict[str, FlaskClient] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    api_clients: dict[str, str] = field(default_factory=dict)  # actor -> client_id
    statuses: dict[str, int] = field(default_factory=dict)
    _fixed: dict[str, Post] = field(default_factory=dict)
    _csrf: dict[str, str] = field(default_factory=dict)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- objects -------------------------------------------------------------------------

    def side(self, target: str) -> Principal:
        return self.own if target == "own" else self.other

    def post(self, target: str, text: str = "Matrix post") -> Post:
        """A fresh post awaiting the principal's approval on the target's account."""
        side = self.side(target)
        return self.world.submit(side.writer, f"{text} {next(self._numbers)}", account=side.account)

    def api_post(self, target: str) -> Post:
        """A fresh post submitted through the API by the all-scopes client (own) or by the
        client limited to Blake's account (other)."""
        side = self.side(target)
        actor = "client_all_scopes" if target == "own" else "client_other_account"
        return posts.submit_post(
            self.world.ctx,
            Actor.for_client(self.api_clients[actor], frozenset({side.account.id})),
            posts.SubmitPost(
                account_id=side.account.id,
                author_id=side.writer.id,
                text=f"API matrix post {next(self._numbers)}",
                source=Source.API,
            ),
        )

    def window_slot(self) -> datetime:
        """The start of a future hour no other matrix window overlaps."""
        now = self.world.container.clock.now().replace(minute=0, second=0, microsecond=0)
        return now + timedelta(days=30 + next(self._numbers))

    def window(self, target: str) -> Window:
        """A fresh future window whose notice awaits the principal's approval."""
        return self.world.open_window(
            starts_at=self.window_slot(), hours=1, account=self.side(target).account
        )

    def proposal(self, target: str) -> int:
        """A fresh pending proposal: a window whose notice its principal approved, then a
        manager turned its tag off (which waits for the principal)."""
        side = self.side(target)
        window = self.window(target)
        windows.approve_notice(self.world.ctx, Actor.for_user(side.user), window.id)
        p = window.policy
        edit = windows.update_window(
            self.world.ctx,
            Actor.for_user(self.admin),
            window.id,
            windows.WindowSpec(
                reason="The principal is at a conference; the team posts.",
                account_id=side.account.id,
                name=window.name,
                starts_at=p.starts_at,
                ends_at=p.ends_at,
                notice_text=p.notice_text,
                reminder_text=p.reminder_text,
                tag_mode=TagMode.OFF,
            ),
        )
        assert edit.proposal is not None
        return edit.proposal.id

    def published_post(self, target: str) -> Post:
        """A fresh post the target's principal wrote, published on their local timeline."""
        side = self.side(target)
        post = self.world.submit(
            side.user, f"Published matrix post {next(self._numbers)}", account=side.account
        )
        self.world.run_worker()
        published = self.world.post(post.id)
        assert published.platform_post_id is not None, published.state
        return published

    def fixed_published_post(self, target: str) -> Post:
        """One published post per target, made once (for requests that only read it)."""
        key = f"published:{target}"
        if key not in self._fixed:
            self._fixed[key] = self.published_post(target)
        return self._fixed[key]

    def fixed_post(self, target: str) -> Post:
        """One post per target, made once (for requests that only read it)."""
        key = f"post:{target}"
        if key not in self._fixed:
            self._fixed[key] = self.post(target)
        return self._fixed[key]

    def fixed_api_post(self, target: str) -> Post:
        """One API-submitted post per target, made once (for requests that only read it)."""
        key = f"api_post:{target}"
        if key not in self._fixed:
            self._fixed[key] = self.api_post(target)
        return self._fixed[key]

    def address(self) -> str:
        """A client address no request used yet (sign-in and token limits count per address)."""
        n = next(self._numbers)
        return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"

    def upload(self, target: str) -> str:
        """A fresh image uploaded by the all-scopes client (own) or by the client limited to
        Blake's account (other); its id."""
        side = self.side(target)
        actor = "client_all_scopes" if target == "own" else "client_other_account"
        uploaded = media.upload_media(
            self.world.ctx,
            Actor.for_client(self.api_clients[actor], frozenset({side.account.id})),
            images.png(color=(next(self._numbers) % 256, 0, 0)),
            "Matrix image",
        )
        return uploaded.public_id

    def image_status_id(self, target: str) -> int:
        """The id of a status with one image on the target's local timeline."""
        key = f"image-{target}"
        if key not in self.statuses:
            with self.world.ctx.uow(read_only=True) as uow:
                found = uow.media.get_upload(self.upload(target))
            assert found is not None
            image = LocalImage(found.content_hash, found.alt_text, found.mime_type, 3, 3)
            status = self.world.container.local_store.create(
                self.side(target).account.handle,
                "Matrix status with an image",
                f"matrix-image-{target}",
                media=[image],
            )
            self.statuses[key] = status.id
        return self.statuses[key]

    def status_id(self, target: str) -> int:
        """The id of a published status on the target's local timeline."""
        return self.statuses[target]

    def user(self, target: str, *, assign: bool = True) -> User:
        """A fresh writer, assigned to the target's account unless `assign` is false."""
        n = next(self._numbers)
        created = directory.create_user(
            self.world.ctx,
            Actor.system("test"),
            email=f"matrix-{n}@example.test",
            name=f"Matrix Writer {n}",
            role=Role.WRITER,
            password="password-123",
        )
        if assign:
            directory.assign_writer(
                self.world.ctx,
                Actor.system("test"),
                user_id=created.id,
                account_id=self.side(target).account.id,
            )
        return created

    # --- requests ------------------------------------------------------------------------

    def http(self, actor: str) -> FlaskClient:
        if actor in self.web:
            return self.web[actor]
        client = self.app.test_client()
        self.web[actor] = client
        return client

    def csrf(self, actor: str) -> str:
        if actor not in self._csrf:
            page = "/login" if actor == "anonymous" else "/home"
            body = self.http(actor).get(page, follow_redirects=True).get_data(as_text=True)
            found = re.search(r'name="csrf_token" value="([^"]+)"', body)
            assert found, f"no CSRF token on {page} for {actor}"
            self._csrf[actor] = found.group(1)
        return self._csrf[actor]

    def run(self, actor: str, request: Request) -> TestResponse:
        """Send `request` as `actor` (a web actor, or an API actor)."""
        headers = dict(request.headers)
        token = self.tokens.get("client_all_scopes" if actor == "api_token" else actor)
        if token is not None:
            http = self.http("api")
            headers["Authorization"] = f"Bearer {token}"
            web_actor = None
        else:
            web_actor = "manager" if actor == "staff_session" else actor
            http = self.http(web_actor)
        data: dict[str, Any] | None = dict(request.form) if request.form is not None else None
        if request.files is not None:
            data = {**(data or {})}
            for name, (filename, content) in request.files.items():
                data[name] = (io.BytesIO(content), filename)
        if web_actor is not None and request.method == "POST" and request.csrf:
            token = self.csrf(web_actor)
            headers["X-CSRFToken"] = token
            if data is not None:
                data["csrf_token"] = token
        if request.isolated:
            copy = self.app.test_client()
            if http.get_cookie(self.app.config["SESSION_COOKIE_NAME"]) is not None:
                # Sessions are server-side: a copied cookie *is* the actor's session, and
                # signing it out would sign the actor out too. A second session with the same
                # data (CSRF token included) is independent of it.
                with http.session_transaction() as held:
                    values = dict(held)
                raw_user = values.get("user_id")
                token = start_web_session(
                    self.world.ctx,
                    replaces=None,
                    data=values,
                    user_id=raw_user if isinstance(raw_user, int) else None,
                )
                copy.set_cookie(self.app.config["SESSION_COOKIE_NAME"], token)
            anonymous = http.get_cookie(self.app.config["SESSION_COOKIE_NAME"] + "-anon")
            if anonymous is not None:
                # An anonymous visitor's CSRF secret lives in this signed cookie (no server
                # state), so the copy needs it to send the same token.
                copy.set_cookie(anonymous.key, anonymous.value)
            http = copy
        return http.open(
            request.path,
            method=request.method,
            data=data,
            json=request.json,
            query_string=dict(request.query or {}),
            headers=headers,
            environ_base={"REMOTE_ADDR": request.remote_addr},
        )


def build_matrix(world: World, app: Flask) -> Matrix:
    """Seed Blake (a second principal), an admin, windows needing approval, staff sessions and
    API tokens; 8 sign-ins, under the app's limit of 10 per minute per address."""
    ctx, system = world.ctx, Actor.system("test")
    admin = directory.create_user(
        ctx,
        system,
        email="ada@example.test",
        name="Ada Admin",
        role=Role.ADMIN,
        password="password-123",
    )
    blake_principal = directory.create_principal(ctx, system, "Blake Novak")
    blake_account = directory.create_account(
        ctx, system, principal_id=blake_principal.id, platform="local", handle="blake"
    )
    blake = directory.create_user(
        ctx,
        system,
        email="blake@example.test",
        name="Blake Novak",
        role=Role.WRITER,
        password="password-123",
        principal_id=blake_principal.id,
    )
    wren = directory.create_user(
        ctx,
        system,
        email="wren@example.test",
        name="Wren Ito",
        role=Role.WRITER,
        password="password-123",
    )
    directory.assign_writer(ctx, system, user_id=wren.id, account_id=blake_account.id)

    def approved_window(account: Account, approver: User) -> Window:
        window = world.open_window(hours=24 * 7, requires_approval=True, account=account)
        return windows.approve_notice(ctx, Actor.for_user(approver), window.id)

    own = Principal(
        world.account,
        world.principal,
        world.writer_a,
        approved_window(world.account, world.principal),
    )
    other = Principal(blake_account, blake, wren, approved_window(blake_account, blake))
    matrix = Matrix(world=world, app=app, admin=admin, own=own, other=other)
    # A published status on each local timeline (principals post in their own name).
    world.submit(world.principal, "Avery, in person.")
    world.submit(blake, "Blake, in person.", account=blake_account)
    world.run_worker()
    for target, side in (("own", own), ("other", other)):
        timeline = world.container.local_store.timeline(side.account.handle, limit=1, before=None)
        assert timeline, f"nothing published on @{side.account.handle}"
        matrix.statuses[target] = timeline[0].id

    users: dict[str, User] = {
        "writer_unassigned": world.outsider,
        "writer_assigned": world.writer_a,
        "writer_coauthor": world.writer_b,
        "auditor": world.auditor,
        "manager": world.manager,
        "admin": admin,
        "principal": world.principal,
        "principal_writer": blake,
    }
    for actor, user in users.items():
        response = sign_in(matrix.http(actor), user.email)
        assert response.status_code == 302, (actor, response.status_code)

    api = matrix.http("api")
    configs: dict[str, tuple[tuple[str, ...], int]] = {
        "client_all_scopes": (ALL_SCOPES, world.account.id),
        "client_other_account": (ALL_SCOPES, blake_account.id),
    }
    for scope in ALL_SCOPES:
        kept = tuple(s for s in ALL_SCOPES if s != scope)
        configs[f"client_without_{scope}"] = (kept, world.account.id)
    for actor, (scopes, account_id) in configs.items():
        client, secret = create_api_client(
            world, name=actor, scopes=scopes, account_ids=[account_id]
        )
        matrix.api_clients[actor] = client.client_id
        matrix.tokens[actor] = fetch_token(api, client.client_id, secret)
    return matrix
