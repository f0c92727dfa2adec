"""Authorization matrix: every route of the URL map, every role, own and another principal's
objects, and the exact allow/deny outcome.

"Own" objects belong to Avery (the world's principal, whose account the world's writers are
assigned to); "other" objects belong to Blake, a second principal with a local account, a
writer (Wren) and a window of his own. Web rows are tried by anonymous visitors, a bare API
token and eight staff sessions (tests.support.matrix.WEB_ACTORS); API rows by no token, a
staff session cookie, an all-scopes client, one client missing each scope and a client
limited to Blake's account. `test_every_route_has_a_row` walks `app.url_map` and fails on any
(rule, method) without a row.

Outcomes: an exact status (an "allowed" request passed authorization and then succeeded or
failed validation: 200, 201, 302 elsewhere than /login, 400, 409, 422), or LOGIN (302 to
/login, for anonymous visitors of staff pages). Known bugs are xfail(strict=True) rows whose
`expect` holds the right outcome.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from argon2 import PasswordHasher
from flask import Flask

from ghostpost import create_app
from ghostpost.bootstrap import bootstrap
from ghostpost.clock import FixedClock
from ghostpost.settings import Settings
from tests.conftest import START, sqlite_url
from tests.support import images
from tests.support.matrix import (
    ALL_SCOPES,
    API_ACTORS,
    TARGETS,
    WEB_ACTORS,
    Matrix,
    Request,
    build_matrix,
)
from tests.support.postgres import PostgresServer
from tests.support.world import build_world

LOGIN = "login"
Outcome = int | frozenset[int] | str


def allowed(*statuses: int) -> frozenset[int]:
    return frozenset(statuses)


@dataclass(frozen=True)
class Row:
    endpoint: str
    method: str
    build: Callable[[Matrix, str], Request]
    #: actor -> outcome for both targets, or (own outcome, other outcome).
    expect: Mapping[str, Outcome | tuple[Outcome, Outcome]]
    #: Rows whose object has no owner (public pages, the login form) are tried once.
    targets: tuple[str, ...] = TARGETS
    #: (actor, target) -> why today's outcome is wrong; `expect` holds the right one.
    bugs: Mapping[tuple[str, str], str] = field(default_factory=dict)

    @property
    def actors(self) -> tuple[str, ...]:
        return tuple(self.expect)

    def outcome(self, actor: str, target: str) -> Outcome:
        found = self.expect[actor]
        if isinstance(found, tuple):
            return found[TARGETS.index(target)]
        return found


# --- request builders --------------------------------------------------------------------


def get(path: str, **query: str) -> Callable[[Matrix, str], Request]:
    return lambda m, t: Request("GET", path, query=query)


def form(path: str, **fields: str) -> Callable[[Matrix, str], Request]:
    return lambda m, t: Request("POST", path, form=fields)


def soon_local(m: Matrix) -> str:
    return f"{m.world.container.clock.now() + timedelta(minutes=10):%Y-%m-%dT%H:%M}"


def account_id(m: Matrix, t: str) -> str:
    return str(m.side(t).account.id)


def principal_id(m: Matrix, t: str) -> str:
    principal = m.side(t).account.principal_id
    return str(principal)


def api_body(m: Matrix, t: str) -> dict[str, object]:
    side = m.side(t)
    return {"account": side.account.id, "text": "Matrix API post", "author": side.writer.email}


def window_form(account: str, starts_at: datetime, name: str) -> dict[str, str]:
    """A complete, valid window form (one hour from `starts_at`, UTC)."""
    return {
        "name": name,
        "account_id": account,
        "starts_at": starts_at.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (starts_at + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "timezone": "UTC",
        "notice_text": "Some posts here are written by my team.",
        "reminder_text": "My team helps run this account.",
        "reason": "The principal is at a conference; the team posts.",
        "reminder_every": "10",
        "reminder_mode": "inline",
        "tag": "#team",
        "tag_mode": "when_fits",
        "tag_position": "end",
    }


def new_window(m: Matrix, t: str) -> Request:
    start = m.window_slot()
    return Request("POST", "/windows/new", form=window_form(account_id(m, t), start, "New"))


def edit_window(m: Matrix, t: str) -> Request:
    window = m.window(t)
    body = window_form(account_id(m, t), window.policy.starts_at, "Edited")
    return Request("POST", f"/windows/{window.id}/edit", form=body)


BUILDERS: dict[tuple[str, str], Callable[[Matrix, str], Request]] = {
    # public
    ("public.index", "GET"): get("/"),
    ("public.healthz", "GET"): get("/healthz"),
    ("public.favicon", "GET"): get("/favicon.ico"),
    ("metrics", "GET"): get("/metrics"),
    ("public.timeline", "GET"): lambda m, t: Request("GET", f"/@{m.side(t).account.handle}"),
    ("public.status", "GET"): lambda m, t: Request(
        "GET", f"/@{m.side(t).account.handle}/{m.status_id(t)}"
    ),
    ("public.disclosure", "GET"): lambda m, t: Request(
        "GET", f"/@{m.side(t).account.handle}/disclosure"
    ),
    ("public.disclosure_data", "GET"): lambda m, t: Request(
        "GET", f"/@{m.side(t).account.handle}/disclosure.json"
    ),
    ("ledger_keys.well_known", "GET"): get("/.well-known/ghostpost-ledger-keys.json"),
    ("static", "GET"): get("/static/app.css"),
    ("api_v1_docs.openapi_json", "GET"): get("/api/v1/openapi.json"),
    ("api_v1_docs.docs_page", "GET"): get("/api/v1/docs"),
    # /verify: the bare form, and a pasted answer that is not JSON (a form message, 422)
    ("verify.verify", "GET"): get("/verify"),
    ("verify.verify", "POST"): lambda m, t: Request(
        "POST", "/verify", form={"answer": "not json"}, remote_addr=m.address()
    ),
    # The public log (issue 18): anyone, with or without a token.
    ("api_v1.public_verify", "GET"): get("/api/v1/public/verify", url="https://x.test/@a/1"),
    ("api_v1.public_log_key", "GET"): get("/api/v1/public/log-key"),
    ("api_v1.public_checkpoint", "GET"): get("/api/v1/public/checkpoint"),
    ("api_v1.public_consistency", "GET"): get(
        "/api/v1/public/consistency", **{"from": "1", "to": "1"}
    ),
    # sign-in (wrong password, from an address of its own: the sign-in limit is per address)
    ("auth.login", "GET"): get("/login"),
    ("auth.login", "POST"): lambda m, t: Request(
        "POST",
        "/login",
        form={"email": m.side(t).user.email, "password": "wrong-password"},
        remote_addr=m.address(),
    ),
    ("auth.logout", "POST"): lambda m, t: Request("POST", "/logout", form={}, isolated=True),
    # the code step (no password given first: nothing pending) and the second-factor page
    ("auth.second_factor", "GET"): get("/login/two-factor"),
    ("auth.second_factor", "POST"): lambda m, t: Request(
        "POST", "/login/two-factor", form={"code": "000000"}, remote_addr=m.address()
    ),
    ("auth.account_two_factor", "GET"): get("/account/two-factor"),
    ("auth.account_two_factor", "POST"): lambda m, t: Request(
        "POST", "/account/two-factor", form={}
    ),
    # Signing in to a Mastodon app (issue 15): no client named, so nothing to consent to.
    ("authorize.authorize", "GET"): get("/oauth/authorize"),
    ("authorize.authorize", "POST"): form("/oauth/authorize", decision="approve"),
    ("authorize.signed_in_apps", "GET"): get("/account/apps"),
    ("notifications.preferences", "GET"): get("/account/notifications"),
    ("notifications.preferences", "POST"): form("/account/notifications", kind="post_failed"),
    ("times.account_time_zone", "GET"): get("/account/time-zone"),
    ("times.account_time_zone", "POST"): form("/account/time-zone", time_zone="Europe/Lisbon"),
    ("authorize.revoke_app", "POST"): form("/account/apps/999999/revoke"),
    ("mastodon_oauth.authorization_server_metadata", "GET"): get(
        "/.well-known/oauth-authorization-server"
    ),
    ("mastodon_oauth.create_app", "POST"): lambda m, t: Request(
        "POST", "/api/v1/apps", form={"client_name": ""}, csrf=False, remote_addr=m.address()
    ),
    # staff pages
    ("staff.home", "GET"): get("/home"),
    ("ledger_keys.keys", "GET"): get("/ledger/keys"),
    ("accounts.accounts", "GET"): get("/accounts"),
    ("accounts.start", "POST"): lambda m, t: Request(
        "POST",
        "/accounts/connect/mastodon",
        form={"principal_id": principal_id(m, t), "instance": ""},
    ),
    ("accounts.callback", "GET"): get("/accounts/connect/mastodon/callback", state="bogus"),
    ("accounts.connect_bluesky", "POST"): lambda m, t: Request(
        "POST",
        "/accounts/connect/bluesky",
        form={"principal_id": principal_id(m, t), "identifier": "", "app_password": ""},
    ),
    ("accounts.disconnect", "POST"): lambda m, t: Request(
        "POST", f"/accounts/{account_id(m, t)}/disconnect", form={}
    ),
    ("admin.users", "GET"): get("/admin/users"),
    ("admin.create_user", "POST"): lambda m, t: Request(
        "POST",
        "/admin/users",
        form={"email": "", "name": "", "role": "writer", "password": "", "principal_id": ""},
    ),
    ("admin.principal_handover", "GET"): get("/account/principal"),
    ("admin.principal_handover", "POST"): form("/account/principal"),
    ("admin.set_active", "POST"): lambda m, t: Request(
        "POST", f"/admin/users/{m.user(t).id}/active", form={"active": "0", "confirm": "yes"}
    ),
    ("approvals.approvals", "GET"): get("/approvals"),
    ("approvals.notice", "POST"): lambda m, t: Request(
        "POST", f"/approvals/notices/{m.window(t).id}", form={}
    ),
    ("approvals.reject_window_notice", "POST"): lambda m, t: Request(
        "POST", f"/approvals/notices/{m.window(t).id}/reject", form={"comment": "Not yet"}
    ),
    ("approvals.decide_proposal", "POST"): lambda m, t: Request(
        "POST", f"/approvals/proposals/{m.proposal(t)}", form={"decision": "approve"}
    ),
    ("approvals.decide", "POST"): lambda m, t: Request(
        "POST", f"/approvals/posts/{m.post(t).public_id}", form={"decision": "approve"}
    ),
    ("compose.compose", "GET"): lambda m, t: Request(
        "GET", "/compose", query={"account": account_id(m, t)}
    ),
    ("compose.submit", "POST"): lambda m, t: Request(
        "POST",
        "/compose",
        form={"account_id": account_id(m, t), "text": "Matrix compose", "publish_at": ""},
    ),
    ("compose.preview", "POST"): lambda m, t: Request(
        "POST", "/compose/preview", json={"account_id": account_id(m, t), "text": "Preview"}
    ),
    ("coverage.coverage", "GET"): lambda m, t: Request(
        "GET", "/coverage", query={"window": str(m.side(t).window.id)}
    ),
    ("ledger.ledger", "GET"): lambda m, t: Request(
        "GET", "/ledger", query={"account": account_id(m, t)}
    ),
    ("exports.export", "GET"): lambda m, t: Request(
        "GET", "/ledger/export", query={"account": account_id(m, t), "report": "ledger"}
    ),
    ("posts.detail", "GET"): lambda m, t: Request("GET", f"/posts/{m.fixed_post(t).public_id}"),
    ("live.statuses", "GET"): lambda m, t: Request(
        "GET", "/posts/status", query={"id": m.fixed_post(t).public_id}
    ),
    ("posts.cancel", "POST"): lambda m, t: Request(
        "POST", f"/posts/{m.post(t).public_id}/cancel", form={"confirm": "yes"}
    ),
    ("posts.confirm_delete", "GET"): lambda m, t: Request(
        "GET", f"/posts/{m.fixed_published_post(t).public_id}/delete"
    ),
    # Confirmed, as the principal's form sends it: only the principal's own account succeeds.
    ("posts.delete", "POST"): lambda m, t: Request(
        "POST", f"/posts/{m.published_post(t).public_id}/delete", form={"confirm": "delete"}
    ),
    ("posts.retry", "POST"): lambda m, t: Request(
        "POST", f"/posts/{m.post(t).public_id}/retry", form={}
    ),
    # Ten minutes on, in the viewer's zone (UTC): inside the account's window.
    ("posts.reschedule", "POST"): lambda m, t: Request(
        "POST",
        f"/posts/{m.post(t).public_id}/reschedule",
        form={"publish_at": soon_local(m)},
    ),
    ("calendar.calendar", "GET"): lambda m, t: Request(
        "GET", "/calendar", query={"account": account_id(m, t)}
    ),
    ("posts.release", "POST"): lambda m, t: Request(
        "POST", f"/posts/{m.post(t).public_id}/release", form={}
    ),
    ("queue.queue", "GET"): lambda m, t: Request(
        "GET", "/queue", query={"account": account_id(m, t)}
    ),
    ("windows.windows", "GET"): get("/windows"),
    ("windows.new_window", "GET"): lambda m, t: Request(
        "GET", "/windows/new", query={"account": account_id(m, t)}
    ),
    ("windows.new_window", "POST"): new_window,
    ("windows.edit_window", "GET"): lambda m, t: Request(
        "GET", f"/windows/{m.side(t).window.id}/edit"
    ),
    ("windows.edit_window", "POST"): edit_window,
    ("windows.assign", "POST"): lambda m, t: Request(
        "POST",
        "/windows/assignments",
        form={"account_id": account_id(m, t), "user_id": str(m.user(t, assign=False).id)},
    ),
    ("windows.unassign", "POST"): lambda m, t: Request(
        "POST",
        "/windows/assignments/remove",
        form={"account_id": account_id(m, t), "user_id": str(m.user(t).id), "confirm": "yes"},
    ),
    # OAuth endpoints authenticate the client with HTTP Basic: a Bearer token is not that.
    ("oauth.token", "POST"): lambda m, t: Request(
        "POST",
        "/oauth/token",
        form={"grant_type": "client_credentials"},
        csrf=False,
        remote_addr=m.address(),
    ),
    ("oauth.revoke", "POST"): lambda m, t: Request(
        "POST",
        "/oauth/revoke",
        form={"token": "not-a-token"},
        csrf=False,
        remote_addr=m.address(),
    ),
    # API v1
    ("api_v1.list_accounts", "GET"): get("/api/v1/accounts"),
    ("api_v1.list_windows", "GET"): lambda m, t: Request(
        "GET", "/api/v1/windows", query={"account": account_id(m, t)}
    ),
    ("api_v1.get_guards", "GET"): lambda m, t: Request(
        "GET", f"/api/v1/accounts/{account_id(m, t)}/guards"
    ),
    # The guards as they are: allowed, nothing changes (a weakening is tested in test_guards).
    ("api_v1.put_guards", "PUT"): lambda m, t: Request(
        "PUT",
        f"/api/v1/accounts/{account_id(m, t)}/guards",
        json={"watched": [], "first_use_hashtags": True},
    ),
    ("guards.mine", "GET"): get("/account/guards"),
    ("guards.settings", "GET"): lambda m, t: Request(
        "GET", f"/principals/{principal_id(m, t)}/guards"
    ),
    ("guards.settings", "POST"): lambda m, t: Request(
        "POST",
        f"/principals/{principal_id(m, t)}/guards",
        form={"watched": "", "first_use_hashtags": "1"},
    ),
    ("api_v1.list_posts", "GET"): lambda m, t: Request(
        "GET", "/api/v1/posts", query={"account": account_id(m, t)}
    ),
    ("api_v1.get_post", "GET"): lambda m, t: Request(
        "GET", f"/api/v1/posts/{m.fixed_api_post(t).public_id}"
    ),
    ("api_v1.cancel_post", "POST"): lambda m, t: Request(
        "POST", f"/api/v1/posts/{m.api_post(t).public_id}/cancel"
    ),
    ("api_v1.create_post", "POST"): lambda m, t: Request(
        "POST",
        "/api/v1/posts",
        json=api_body(m, t),
        headers={"Idempotency-Key": str(uuid.uuid4())},
    ),
    ("api_v1.preview_post", "POST"): lambda m, t: Request(
        "POST", "/api/v1/preview", json=api_body(m, t)
    ),
    ("api_v1.upload_media", "POST"): lambda m, t: Request(
        "POST", "/api/v1/media", files={"file": ("m.png", images.png())}
    ),
    ("api_v1.get_media", "GET"): lambda m, t: Request("GET", f"/api/v1/media/{m.upload(t)}"),
    ("api_v1.describe_media", "PUT"): lambda m, t: Request(
        "PUT", f"/api/v1/media/{m.upload(t)}", json={"description": "Matrix"}
    ),
    ("mastodon.upload_media_v1", "POST"): lambda m, t: Request(
        "POST",
        f"/compat/mastodon/{account_id(m, t)}/api/v1/media",
        files={"file": ("m.png", images.png())},
    ),
    ("mastodon.upload_media_v2", "POST"): lambda m, t: Request(
        "POST",
        f"/compat/mastodon/{account_id(m, t)}/api/v2/media",
        files={"file": ("m.png", images.png())},
    ),
    ("mastodon.get_media", "GET"): lambda m, t: Request(
        "GET", f"/compat/mastodon/{account_id(m, t)}/api/v1/media/{m.upload(t)}"
    ),
    ("mastodon.update_media", "PUT"): lambda m, t: Request(
        "PUT",
        f"/compat/mastodon/{account_id(m, t)}/api/v1/media/{m.upload(t)}",
        json={"description": "Matrix"},
    ),
    ("public.media_file", "GET"): lambda m, t: Request("GET", f"/media/{m.upload(t)}"),
    ("public.status_image", "GET"): lambda m, t: Request(
        "GET", f"/@{m.side(t).account.handle}/{m.image_status_id(t)}/media/0"
    ),
    ("api_v1.export_audit", "GET"): lambda m, t: Request(
        "GET", "/api/v1/audit/export", query={"report": "ledger", "account": account_id(m, t)}
    ),
    # Mastodon compatibility
    ("mastodon.instance", "GET"): lambda m, t: Request(
        "GET", f"/compat/mastodon/{account_id(m, t)}/api/v1/instance"
    ),
    ("mastodon.verify_credentials", "GET"): lambda m, t: Request(
        "GET", f"/compat/mastodon/{account_id(m, t)}/api/v1/accounts/verify_credentials"
    ),
    ("mastodon.post_status", "POST"): lambda m, t: Request(
        "POST",
        f"/compat/mastodon/{account_id(m, t)}/api/v1/statuses",
        json={"status": "Matrix toot"},
        headers={"X-Ghostpost-Author": m.side(t).writer.email},
    ),
    ("mastodon.get_status", "GET"): lambda m, t: Request(
        "GET",
        f"/compat/mastodon/{account_id(m, t)}/api/v1/statuses/{m.fixed_api_post(t).id}",
    ),
}


# --- the world, once per module ------------------------------------------------------------


@pytest.fixture(scope="module")
def matrix(
    tmp_path_factory: pytest.TempPathFactory,
    migrated_template: str,
    postgres: PostgresServer | None,
) -> Iterator[Matrix]:
    tmp = tmp_path_factory.mktemp("matrix")
    if postgres is None:
        shutil.copy(migrated_template, tmp / "ghostpost.db")
        url = sqlite_url(tmp / "ghostpost.db")
    else:
        url = postgres.create_database("authorization_matrix", template=migrated_template)
    settings = Settings(
        database_url=url,
        secret_key="test-secret-key-0123456789",
        environment="test",
        public_url="http://ghostpost.test",
        worker_lease_seconds=60,
        # Hundreds of requests per client: the per-client budget is not what is tested here.
        api_rate_limit="100000 per minute",
        ledger_signing_key=str(tmp / "keys" / "ledger-ed25519.pem"),
        ledger_public_keys=str(tmp / "keys" / "public"),
        ledger_witness_file=str(tmp / "witness" / "checkpoints.jsonl"),
    )
    container = bootstrap(
        settings, clock=FixedClock(START), password_hasher=PasswordHasher(1, 8, 1)
    )
    try:
        yield build_matrix(build_world(container), create_app(container=container))
    finally:
        container.dispose()


# --- expected outcomes ---------------------------------------------------------------------

#: A POST from a client with no session has no valid CSRF token: refused before anything else.
NO_CSRF = 400
OWN_ONLY = ("own",)


def web(
    *,
    writer_unassigned: Outcome | tuple[Outcome, Outcome],
    writer_assigned: Outcome | tuple[Outcome, Outcome],
    auditor: Outcome | tuple[Outcome, Outcome],
    manager: Outcome | tuple[Outcome, Outcome],
    admin: Outcome | tuple[Outcome, Outcome],
    principal: Outcome | tuple[Outcome, Outcome],
    principal_writer: Outcome | tuple[Outcome, Outcome],
    anonymous: Outcome = LOGIN,
    api_token: Outcome = LOGIN,
    writer_coauthor: Outcome | tuple[Outcome, Outcome] | None = None,
) -> dict[str, Outcome | tuple[Outcome, Outcome]]:
    """Outcomes of a web row for every web actor (anonymous and a bare API token default to
    the login page; the co-author to what the author gets)."""
    return {
        "anonymous": anonymous,
        "api_token": api_token,
        "writer_unassigned": writer_unassigned,
        "writer_assigned": writer_assigned,
        "writer_coauthor": writer_assigned if writer_coauthor is None else writer_coauthor,
        "auditor": auditor,
        "manager": manager,
        "admin": admin,
        "principal": principal,
        "principal_writer": principal_writer,
    }


def everyone(outcome: Outcome, actors: tuple[str, ...] = WEB_ACTORS) -> dict[str, Outcome]:
    return dict.fromkeys(actors, outcome)


def managers(allowed_: Outcome, *, anonymous: Outcome = LOGIN, api_token: Outcome = NO_CSRF):
    """Managers, admins and principals (for their own accounts; Avery is also a manager)."""
    return web(
        anonymous=anonymous,
        api_token=api_token,
        writer_unassigned=403,
        writer_assigned=403,
        auditor=403,
        manager=allowed_,
        admin=allowed_,
        principal=allowed_,
        principal_writer=(403, allowed_),
    )


def account_managers(allowed_: Outcome, *, api_token: Outcome = NO_CSRF):
    """Managers and admins only: connecting accounts is no principal's business (Avery may,
    as a manager)."""
    return web(
        api_token=api_token,
        writer_unassigned=403,
        writer_assigned=403,
        auditor=403,
        manager=allowed_,
        admin=allowed_,
        principal=allowed_,
        principal_writer=403,
    )


def admins(allowed_: Outcome, *, api_token: Outcome = NO_CSRF):
    return web(
        api_token=api_token,
        writer_unassigned=403,
        writer_assigned=403,
        auditor=403,
        manager=403,
        admin=allowed_,
        principal=403,
        principal_writer=403,
    )


def composers(allowed_: Outcome, *, anonymous: Outcome = LOGIN, api_token: Outcome = NO_CSRF):
    """Writers assigned to the account and its principal; nobody for another's account."""
    return web(
        anonymous=anonymous,
        api_token=api_token,
        writer_unassigned=403,
        writer_assigned=(allowed_, 403),
        auditor=403,
        manager=403,
        admin=403,
        principal=(allowed_, 403),
        principal_writer=(403, allowed_),
    )


def overseers(allowed_: Outcome):
    """Admins, managers and auditors see every account; a principal their own (others: 404)."""
    return web(
        writer_unassigned=403,
        writer_assigned=403,
        auditor=allowed_,
        manager=allowed_,
        admin=allowed_,
        principal=allowed_,
        principal_writer=(404, allowed_),
    )


def post_actions(
    allowed_: Outcome,
    *,
    auditor: Outcome = 403,
    writer_coauthor: Outcome = 403,
    api_token: Outcome = NO_CSRF,
):
    """A post: its author and the account's principal, managers and admins act on it; auditors
    and the account's other writers see it but may not act (403); writers who may not see it
    get 404."""
    return web(
        api_token=api_token,
        writer_unassigned=404,
        writer_assigned=(allowed_, 404),
        writer_coauthor=(writer_coauthor, 404),
        auditor=auditor,
        manager=allowed_,
        admin=allowed_,
        principal=allowed_,
        principal_writer=(404, allowed_),
    )


def api(scope: str, allowed_: Outcome) -> dict[str, Outcome | tuple[Outcome, Outcome]]:
    """An API row: 401 without a token (a staff session cookie is none), 403 without the
    scope, 404 for an account the client is not limited to."""
    expect: dict[str, Outcome | tuple[Outcome, Outcome]] = {"anonymous": 401, "staff_session": 401}
    for held in ALL_SCOPES:
        expect[f"client_without_{held}"] = 403 if held == scope else (allowed_, 404)
    expect["client_other_account"] = (404, allowed_)
    expect["client_all_scopes"] = (allowed_, 404)
    return expect


OK = 200
REDIRECT = 302  # allowed, and sent somewhere other than the login page

EXPECT: dict[tuple[str, str], Row] = {}


def row(
    endpoint: str,
    method: str,
    expect: Mapping[str, Outcome | tuple[Outcome, Outcome]],
    *,
    targets: tuple[str, ...] = TARGETS,
    bugs: Mapping[tuple[str, str], str] | None = None,
) -> None:
    key = (endpoint, method)
    assert key not in EXPECT, key
    EXPECT[key] = Row(endpoint, method, BUILDERS[key], expect, targets, bugs or {})


# Public pages and documents: the same for everyone.
row("public.index", "GET", everyone(OK), targets=OWN_ONLY)
row("public.healthz", "GET", everyone(OK), targets=OWN_ONLY)
row("public.favicon", "GET", everyone(OK), targets=OWN_ONLY)
# Only the operator's scraper, with GHOSTPOST_METRICS_TOKEN (tests/functional/test_metrics.py):
# no staff role nor API token opens it, and unset it is no page at all.
row("metrics", "GET", everyone(404), targets=OWN_ONLY)
row("public.timeline", "GET", everyone(OK))
row("public.status", "GET", everyone(OK))
# Public by design: the windows, their reasons and counts, never a writer.
row("public.disclosure", "GET", everyone(OK))
row("public.disclosure_data", "GET", everyone(OK))
row("ledger_keys.well_known", "GET", everyone(OK), targets=OWN_ONLY)
row("static", "GET", everyone(OK), targets=OWN_ONLY)
row("api_v1_docs.openapi_json", "GET", everyone(OK, API_ACTORS), targets=OWN_ONLY)
row("api_v1_docs.docs_page", "GET", everyone(OK, API_ACTORS), targets=OWN_ONLY)
row("mastodon.instance", "GET", everyone(OK, API_ACTORS))
row("verify.verify", "GET", everyone(OK), targets=OWN_ONLY)
row("verify.verify", "POST", {**everyone(422), "api_token": NO_CSRF}, targets=OWN_ONLY)
row("api_v1.public_verify", "GET", everyone(OK, API_ACTORS), targets=OWN_ONLY)
row("api_v1.public_log_key", "GET", everyone(OK, API_ACTORS), targets=OWN_ONLY)
row("api_v1.public_checkpoint", "GET", everyone(OK, API_ACTORS), targets=OWN_ONLY)
row("api_v1.public_consistency", "GET", everyone(OK, API_ACTORS), targets=OWN_ONLY)
# Signing in and out.
row(
    "auth.login",
    "GET",
    {**everyone(REDIRECT), "anonymous": OK, "api_token": OK},
    targets=OWN_ONLY,
)
row(
    "auth.login",
    "POST",
    {**everyone(401), "api_token": NO_CSRF},  # wrong password: 401 for everyone
    targets=OWN_ONLY,
)
row("auth.logout", "POST", {**everyone(LOGIN), "api_token": NO_CSRF}, targets=OWN_ONLY)
# The code step: without a pending password step, to /login; signed in already, on to /home.
row(
    "auth.second_factor",
    "GET",
    web(**dict.fromkeys(WEB_ACTORS[2:], REDIRECT)),
    targets=OWN_ONLY,
)
row(
    "auth.second_factor",
    "POST",
    web(**dict.fromkeys(WEB_ACTORS[2:], REDIRECT), api_token=NO_CSRF),
    targets=OWN_ONLY,
)
# Any signed-in staff user manages their own second factor (an empty form: 422).
row("auth.account_two_factor", "GET", web(**dict.fromkeys(WEB_ACTORS[2:], OK)), targets=OWN_ONLY)
row(
    "auth.account_two_factor",
    "POST",
    web(**dict.fromkeys(WEB_ACTORS[2:], 422), api_token=NO_CSRF),
    targets=OWN_ONLY,
)
# Signing in to a Mastodon app: any signed-in staff user (a request naming no app: 400; their
# own apps page; a token id that is not theirs: 404). Registering an app is public (422: empty).
row("authorize.authorize", "GET", web(**dict.fromkeys(WEB_ACTORS[2:], 400)), targets=OWN_ONLY)
row(
    "authorize.authorize",
    "POST",
    web(**dict.fromkeys(WEB_ACTORS[2:], 400), api_token=NO_CSRF),
    targets=OWN_ONLY,
)
row("authorize.signed_in_apps", "GET", web(**dict.fromkeys(WEB_ACTORS[2:], OK)), targets=OWN_ONLY)
# Each signed-in staff user chooses their own notifications (the form names no user).
row(
    "notifications.preferences",
    "GET",
    web(**dict.fromkeys(WEB_ACTORS[2:], OK)),
    targets=OWN_ONLY,
)
row(
    "notifications.preferences",
    "POST",
    web(**dict.fromkeys(WEB_ACTORS[2:], REDIRECT), api_token=NO_CSRF),
    targets=OWN_ONLY,
)
# Each signed-in staff user chooses their own time zone (the form names no user).
row("times.account_time_zone", "GET", web(**dict.fromkeys(WEB_ACTORS[2:], OK)), targets=OWN_ONLY)
row(
    "times.account_time_zone",
    "POST",
    web(**dict.fromkeys(WEB_ACTORS[2:], REDIRECT), api_token=NO_CSRF),
    targets=OWN_ONLY,
)
row(
    "authorize.revoke_app",
    "POST",
    web(**dict.fromkeys(WEB_ACTORS[2:], 404), api_token=NO_CSRF),
    targets=OWN_ONLY,
)
row("mastodon_oauth.create_app", "POST", everyone(422, API_ACTORS), targets=OWN_ONLY)
row(
    "mastodon_oauth.authorization_server_metadata",
    "GET",
    everyone(OK, API_ACTORS),
    targets=OWN_ONLY,
)
# Pages for any signed-in staff user.
row("staff.home", "GET", web(**dict.fromkeys(WEB_ACTORS[2:], REDIRECT)), targets=OWN_ONLY)
row("ledger_keys.keys", "GET", web(**dict.fromkeys(WEB_ACTORS[2:], OK)), targets=OWN_ONLY)
# Accounts (managers and admins).
row("accounts.accounts", "GET", account_managers(OK, api_token=LOGIN), targets=OWN_ONLY)
row("accounts.start", "POST", account_managers(422))  # no instance given
row("accounts.callback", "GET", account_managers(400, api_token=LOGIN), targets=OWN_ONLY)
row("accounts.connect_bluesky", "POST", account_managers(422))  # no handle given
row("accounts.disconnect", "POST", account_managers(422))  # local accounts hold no tokens
# Users (admins).
row("admin.users", "GET", admins(OK, api_token=LOGIN), targets=OWN_ONLY)
row("admin.create_user", "POST", admins(422), targets=OWN_ONLY)  # empty form
row("admin.set_active", "POST", admins(REDIRECT))
# The principal's own hand-over of the principal link (issue 12): principals only, whatever
# their role; an empty form is 422 (no password), so nothing changes hands here.
row(
    "admin.principal_handover",
    "GET",
    {
        **everyone(403),
        "anonymous": LOGIN,
        "api_token": LOGIN,
        "principal": OK,
        "principal_writer": OK,
    },
    targets=OWN_ONLY,
)
row(
    "admin.principal_handover",
    "POST",
    {
        **everyone(403),
        "anonymous": LOGIN,
        "api_token": NO_CSRF,
        "principal": 422,
        "principal_writer": 422,
    },
    targets=OWN_ONLY,
)
# A principal's guards: the principal, managers and admins (Avery is a manager too).
row(
    "guards.mine",
    "GET",
    {
        **everyone(404),
        "anonymous": LOGIN,
        "api_token": LOGIN,
        "principal": REDIRECT,
        "principal_writer": REDIRECT,
    },
    targets=OWN_ONLY,
)
row("guards.settings", "GET", managers(OK, api_token=LOGIN))
row("guards.settings", "POST", managers(REDIRECT))
# Approvals (principals only; Avery, a manager too, is refused Blake's with 403).
row(
    "approvals.approvals",
    "GET",
    web(
        writer_unassigned=403,
        writer_assigned=403,
        auditor=403,
        manager=403,
        admin=403,
        principal=OK,
        principal_writer=OK,
    ),
    targets=OWN_ONLY,
)
row(
    "approvals.notice",
    "POST",
    web(
        api_token=NO_CSRF,
        writer_unassigned=403,
        writer_assigned=403,
        auditor=403,
        manager=403,
        admin=403,
        principal=(REDIRECT, 403),
        principal_writer=(404, REDIRECT),
    ),
)
# Rejecting a notice and deciding a proposed policy change: the principal of the account only,
# with the same 404 for windows the user may not oversee.
for _endpoint in ("approvals.reject_window_notice", "approvals.decide_proposal"):
    row(
        _endpoint,
        "POST",
        web(
            api_token=NO_CSRF,
            writer_unassigned=403,
            writer_assigned=403,
            auditor=403,
            manager=403,
            admin=403,
            principal=(REDIRECT, 403),
            # Blake, the other account's principal: Avery's window is unknown to him.
            principal_writer=(404, REDIRECT),
        ),
    )
# Fixed: services.windows.approve_notice now answers 404 for a window the user may not
# oversee, as /windows/<id>/edit and /coverage do (it used to answer 403 and so leak it).
row(
    "approvals.decide",
    "POST",
    web(
        api_token=NO_CSRF,
        writer_unassigned=403,
        writer_assigned=403,
        auditor=403,
        manager=403,
        admin=403,
        principal=(REDIRECT, 403),
        principal_writer=(404, REDIRECT),
    ),
)
# Compose (assigned writers and the principal, own accounts only).
row("compose.compose", "GET", composers(OK, api_token=LOGIN))
row("compose.submit", "POST", composers(REDIRECT))
row("compose.preview", "POST", composers(OK, anonymous=401))  # JSON: 401, not a redirect
# Oversight (admins, managers, auditors; principals for their own accounts).
row("coverage.coverage", "GET", overseers(OK))
row("ledger.ledger", "GET", overseers(OK))
row("exports.export", "GET", overseers(OK))
row(
    "windows.windows",
    "GET",
    web(
        writer_unassigned=403,
        writer_assigned=403,
        auditor=OK,
        manager=OK,
        admin=OK,
        principal=OK,
        principal_writer=OK,  # lists only the accounts the principal oversees
    ),
    targets=OWN_ONLY,
)
# Posts.
row("posts.detail", "GET", post_actions(OK, auditor=OK, writer_coauthor=OK, api_token=LOGIN))
# Live status: JSON for every signed-in user; posts they may not see are left out of the
# answer (tests/functional/test_web_live_status.py), never refused, so existence does not leak.
row("live.statuses", "GET", {**everyone(OK), "anonymous": 401, "api_token": 401})
row("posts.cancel", "POST", post_actions(REDIRECT))
row("posts.reschedule", "POST", post_actions(REDIRECT))
row("posts.retry", "POST", post_actions(409))  # not failed: authorized, then 409
# Deleting a published post: the principal of its account only (issue 15). Whoever sees the
# post and may not delete it is sent back from the confirmation page, and refused the form.
row(
    "posts.confirm_delete",
    "GET",
    web(
        api_token=LOGIN,
        writer_unassigned=404,
        writer_assigned=(REDIRECT, 404),
        writer_coauthor=(REDIRECT, 404),
        auditor=REDIRECT,
        manager=REDIRECT,
        admin=REDIRECT,
        principal=(OK, REDIRECT),
        principal_writer=(404, OK),
    ),
)
row(
    "posts.delete",
    "POST",
    web(
        api_token=NO_CSRF,
        writer_unassigned=404,
        writer_assigned=(403, 404),
        writer_coauthor=(403, 404),
        auditor=403,
        manager=403,
        admin=403,
        principal=(REDIRECT, 403),
        principal_writer=(404, REDIRECT),
    ),
)
# Release (a post held for a withdrawn grant): those who manage the account, never its writer;
# the matrix's post is not held, so the authorized get 409.
row(
    "posts.release",
    "POST",
    web(
        api_token=NO_CSRF,
        writer_unassigned=404,
        writer_assigned=(403, 404),
        auditor=403,
        manager=409,
        admin=409,
        principal=409,
        principal_writer=(404, 409),  # Blake: only his own account's posts exist for him
    ),
)
# The calendar reads like the queue: every account for overseers, own accounts otherwise.
row(
    "calendar.calendar",
    "GET",
    web(
        writer_unassigned=403,
        writer_assigned=(OK, 403),
        auditor=OK,
        manager=OK,
        admin=OK,
        principal=OK,
        principal_writer=(403, OK),
    ),
)
row(
    "queue.queue",
    "GET",
    web(
        writer_unassigned=403,
        writer_assigned=(OK, 403),
        auditor=OK,
        manager=OK,
        admin=OK,
        principal=OK,
        principal_writer=(403, OK),
    ),
)
# Windows and assignments (managers, admins, the account's principal).
row(
    "windows.new_window",
    "GET",
    # The form lists only manageable accounts; ?account= merely preselects one.
    {**managers(OK, api_token=LOGIN), "principal_writer": OK},
)
row("windows.new_window", "POST", managers(REDIRECT))
row("windows.edit_window", "GET", {**managers(OK, api_token=LOGIN), "principal_writer": (404, OK)})
row("windows.edit_window", "POST", {**managers(REDIRECT), "principal_writer": (404, REDIRECT)})
row("windows.assign", "POST", managers(REDIRECT))
row("windows.unassign", "POST", managers(REDIRECT))
# OAuth: no client credentials (a Bearer token is none), 401.
row("oauth.token", "POST", everyone(401, API_ACTORS), targets=OWN_ONLY)
row("oauth.revoke", "POST", everyone(401, API_ACTORS), targets=OWN_ONLY)
# API v1.
row(
    "api_v1.list_accounts",
    "GET",
    {**everyone(OK, API_ACTORS), **api("windows:read", OK), "client_other_account": OK},
    targets=OWN_ONLY,
)
row("api_v1.list_windows", "GET", api("windows:read", OK))
row("api_v1.list_posts", "GET", api("posts:read", OK))
# A principal's guards (issue 18): read with windows:read, changed with guards:write.
row("api_v1.get_guards", "GET", api("windows:read", OK))
row("api_v1.put_guards", "PUT", api("guards:write", OK))
row("api_v1.get_post", "GET", api("posts:read", OK))
row(
    "api_v1.cancel_post",
    "POST",
    # Only the client that submitted a post cancels it (403 for another client's, 404 for a
    # post on an account the client is not limited to).
    {
        **api("posts:write", OK),
        **{f"client_without_{scope}": (403, 404) for scope in ALL_SCOPES if scope != "posts:write"},
    },
)
row("api_v1.create_post", "POST", api("posts:write", 201))
row("api_v1.preview_post", "POST", api("posts:write", OK))
row("api_v1.export_audit", "GET", api("audit:read", OK))
# Mastodon compatibility (per account in the URL).
row("mastodon.verify_credentials", "GET", api("posts:read", OK))
row("mastodon.post_status", "POST", api("posts:write", OK))
row("mastodon.get_status", "GET", api("posts:read", OK))
# Images: an upload is its uploader's alone (another client's is 404, whatever its scopes); the
# upload itself belongs to no account (the Mastodon base URL's account is checked).
row(
    "api_v1.upload_media",
    "POST",
    {**api("posts:write", 201), "client_other_account": 201},
    targets=OWN_ONLY,
)
UPLOADER_ONLY = {
    **api("posts:write", OK),
    **{f"client_without_{scope}": 404 for scope in ALL_SCOPES if scope != "posts:write"},
}
row("api_v1.get_media", "GET", UPLOADER_ONLY)
row("api_v1.describe_media", "PUT", UPLOADER_ONLY)
row("mastodon.upload_media_v1", "POST", api("posts:write", OK))
row("mastodon.upload_media_v2", "POST", api("posts:write", OK))
row("mastodon.get_media", "GET", UPLOADER_ONLY)
row("mastodon.update_media", "PUT", UPLOADER_ONLY)
# Updated: a media file was served to anyone by its unguessable id, a draft's image too. An
# upload not on a published post (the matrix's uploads are on none) is its uploader's alone:
# here the all-scopes client's token; once published, to anyone, as Mastodon serves media
# files (tests/functional/test_mastodon_media.py). An image on a status, to anyone who sees it.
row("public.media_file", "GET", {**everyone(404), "api_token": (OK, 404)})
row("public.status_image", "GET", everyone(OK))


# --- the tests -----------------------------------------------------------------------------


#: The actors whose outcome turns on rows the database is asked for, beyond the user or client
#: every request loads: whether the user is assigned to the account (`assignments.exists`, and
#: the queue's and compose form's assignment joins), whether they wrote the post (author
#: filters), whose principal owns the object (Blake), which accounts a client is limited to
#: (the lists' account filters).
POSTGRESQL_ACTORS = (
    "writer_unassigned",
    "writer_assigned",
    "writer_coauthor",
    "principal_writer",
    "client_all_scopes",
    "client_other_account",
)
SQLITE_ONLY = pytest.mark.backend_independent(
    "an authorization row decided by a role or a scope compared in Python with the user or "
    "client already loaded (services/authz.py, api/oauth.require_scope), or by a missing "
    "session or token; the PostgreSQL subset of this (route, target) sends the same statements"
)


def _gets_through(outcome: Outcome) -> bool:
    """The request passed authorization and did its work (not a refusal, not the login page)."""
    statuses = (
        {outcome} if isinstance(outcome, int) else set(outcome) if outcome != LOGIN else set()
    )
    return any(200 <= status < 400 for status in statuses)


def postgresql_subset(spec: Row, target: str) -> set[str]:
    """The actors of a (route, target) run on PostgreSQL too: POSTGRESQL_ACTORS, and the first
    actor that gets through when none of them does, so the route's own work (its reads and
    writes, e.g. a manager editing a window) runs on both backends. The rows left out differ
    from these only by a role or scope check made in Python, or by having no credentials."""
    kept = {actor for actor in spec.actors if actor in POSTGRESQL_ACTORS}
    if not any(_gets_through(spec.outcome(actor, target)) for actor in kept):
        through = [a for a in spec.actors if _gets_through(spec.outcome(a, target))]
        kept.update(through[:1])
    return kept


def _cases() -> Iterator[object]:
    for key, spec in EXPECT.items():
        for actor in spec.actors:
            for target in spec.targets:
                reason = spec.bugs.get((actor, target))
                marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                if actor not in postgresql_subset(spec, target):
                    marks.append(SQLITE_ONLY)
                yield pytest.param(
                    key, actor, target, id=f"{key[0]}-{key[1]}-{actor}-{target}", marks=marks
                )


def matches(outcome: Outcome, status: int, location: str) -> bool:
    to_login = status == 302 and urlsplit(location).path == "/login"
    if outcome == LOGIN:
        return to_login
    expected = {outcome} if isinstance(outcome, int) else set(outcome)
    return status in expected and not to_login


@pytest.mark.parametrize(("key", "actor", "target"), list(_cases()))
def test_authorization(matrix: Matrix, key: tuple[str, str], actor: str, target: str) -> None:
    spec = EXPECT[key]
    request = spec.build(matrix, target)
    response = matrix.run(actor, request)
    response.close()  # static files are streamed from an open file
    expected = spec.outcome(actor, target)
    location = response.headers.get("Location", "")
    assert matches(expected, response.status_code, location), (
        f"{request.method} {request.path} as {actor} ({target} object): "
        f"expected {expected}, got {response.status_code} {location}".rstrip()
    )


def _routes(app: Flask) -> set[tuple[str, str]]:
    return {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }


def test_every_route_has_a_row(matrix: Matrix) -> None:
    """The matrix covers the whole URL map, and no row outlived its route."""
    routes = _routes(matrix.app)
    missing = sorted(routes - set(EXPECT))
    stale = sorted(set(EXPECT) - routes)
    assert not missing, f"routes without an authorization row: {missing}"
    assert not stale, f"rows for routes that no longer exist: {stale}"


def test_every_row_names_every_actor() -> None:
    for key, spec in EXPECT.items():
        api_row = key[0].startswith(("api_v1", "mastodon.", "mastodon_oauth.", "oauth."))
        wanted = set(API_ACTORS if api_row else WEB_ACTORS)
        assert set(spec.actors) == wanted, (key, sorted(wanted ^ set(spec.actors)))
        assert set(spec.bugs) <= {(a, t) for a in spec.actors for t in spec.targets}, key


def test_matrix_size(matrix: Matrix, capsys: pytest.CaptureFixture[str]) -> None:
    routes = len(_routes(matrix.app))
    actors = len(set(WEB_ACTORS) | set(API_ACTORS))
    checks = sum(len(spec.actors) * len(spec.targets) for spec in EXPECT.values())
    bugs = sum(len(spec.bugs) for spec in EXPECT.values())
    with capsys.disabled():
        print(
            f"\nauthorization matrix: {routes} (route, method) pairs x {actors} actors "
            f"(web {len(WEB_ACTORS)}, API {len(API_ACTORS)}) x own/other objects: "
            f"{checks} checks, {bugs} known bug(s)"
        )
    assert routes == len(EXPECT)


def test_unknown_window_notice_is_404(matrix: Matrix) -> None:
    """With the approvals.notice row: an unknown id and another principal's window both get
    404, so the answer does not tell whether the window exists."""
    response = matrix.run("principal_writer", Request("POST", "/approvals/notices/999999", form={}))
    assert response.status_code == 404
