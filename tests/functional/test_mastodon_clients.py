"""Three real Mastodon clients against a live `ghostpost serve --mastodon-port` (real HTTP on
127.0.0.1), each given only the face's base URL: Mastodon.py, the `toot` command line and
masto.js (node). Each registers itself, signs a writer in through /oauth/authorize (the
browser's part, the staff sign-in and the consent page on ghostpost's own host, is driven by
plain HTTP with the writer's session), then with the writer's token posts, schedules, lists and
cancels a scheduled post, posts with a content warning, reads the account's statuses, and meets
Mastodon's error shape for a bad token and an unknown route.

Whatever the client, every post gets the window's disclosure (the notice goes out first, the
`#team` tag on each post) and the ledger names the signed-in writer, source `mastodon-compat`,
through the app they signed in.

Content warnings: a CW is honoured end to end (the status carries it; on a delegated post the
policy may add the disclosure tag to it, so the CW must start with the one the writer gave) or
refused with a 422 that names it; never dropped silently.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonNotFoundError,
    MastodonUnauthorizedError,
)

from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import User
from ghostpost.domain.states import PostState
from ghostpost.settings import PROJECT_DIR
from tests.support.live import free_port, live_server
from tests.support.web import PASSWORD
from tests.support.world import NOTICE, World

pytestmark = [
    pytest.mark.slow,
    pytest.mark.backend_independent("the live server runs on its own SQLite database"),
]

OOB = "urn:ietf:wg:oauth:2.0:oob"
REDIRECT = "https://masto-app.example/callback"
CONTENT_WARNING = "Film ending"
#: The window's tag, as a hashtag (an inline reminder may follow it, every third post).
TAG = re.compile(r"(?:^|\s)#team\b")
MASTO_DIR = PROJECT_DIR / "tests" / "support" / "masto"
#: How long the live worker may take to publish what is due (it polls every 0.2 s).
PUBLISH_WITHIN = 30.0


@dataclass
class Face:
    """The live server: the Mastodon face's base URL and ghostpost's own (sign-in, consent)."""

    base: str
    main: str
    world: World


@pytest.fixture(scope="module")
def face(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Face]:
    port = free_port()
    tmp = tmp_path_factory.mktemp("clients")
    with live_server(tmp, serve_args=["--mastodon-port", str(port)]) as running:
        world = running.world
        world.approve_notice(world.open_window(every=3))
        yield Face(f"http://127.0.0.1:{port}", running.url, world)


# --- the browser's part of the sign-in -----------------------------------------------------


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def approve_in_browser(face: Face, authorize_url: str, writer: User) -> str:
    """Do what the writer does in their browser: sign in to ghostpost, open the app's authorize
    URL (the face sends the browser on to ghostpost's host), pick the account and allow. Return
    the authorization code: from the redirect, or shown on the page for an out-of-band app."""
    browser = requests.Session()
    login = browser.get(face.main + "/login", timeout=10)
    signed_in = browser.post(
        face.main + "/login",
        data={"email": writer.email, "password": PASSWORD, "csrf_token": _csrf(login.text)},
        allow_redirects=False,
        timeout=10,
    )
    assert signed_in.status_code == 302, signed_in.text
    consent = browser.get(authorize_url, timeout=10)
    assert consent.status_code == 200, consent.text
    assert consent.url.startswith(face.main + "/oauth/authorize"), consent.url
    answer = browser.post(
        consent.url,
        data={
            "csrf_token": _csrf(consent.text),
            "account_id": str(face.world.account.id),
            "decision": "approve",
        },
        allow_redirects=False,
        timeout=10,
    )
    if answer.status_code == 302:
        return parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    assert answer.status_code == 200, answer.text
    shown = re.search(r'<code id="oauth-code">([^<]+)</code>', answer.text)
    assert shown, answer.text
    return shown.group(1)


# --- what every client's posts must show ---------------------------------------------------


def scheduled_at(face: Face) -> datetime:
    return face.world.container.clock.now().astimezone(UTC) + timedelta(hours=1)


def wait_published(face: Face, post_ids: list[int]) -> None:
    deadline = time.monotonic() + PUBLISH_WITHIN
    while True:
        with face.world.ctx.uow(read_only=True) as uow:
            states = [uow.posts.get(i).state for i in post_ids]
        if all(s is PostState.PUBLISHED for s in states):
            return
        assert time.monotonic() < deadline, f"not published: {states}"
        time.sleep(0.2)


def assert_disclosed_and_attributed(face: Face, post_ids: list[int], writer: User) -> None:
    """Each post went out with the window's disclosure after its notice, and the ledger says
    the signed-in writer wrote it through a Mastodon app."""
    wait_published(face, post_ids)
    with face.world.ctx.uow(read_only=True) as uow:
        every = uow.posts.page(
            account_ids=[face.world.account.id],
            window_id=None,
            author_id=None,
            state=None,
            before_id=None,
            limit=1000,
        )
        notice = [p for p in every if p.final_text == NOTICE]
        entries = {e.subject: e for e in uow.ledger.entries() if e.tag == LedgerTag.POST_SUBMITTED}
        for post_id in post_ids:
            post = uow.posts.get(post_id)
            assert TAG.search(post.final_text), post.final_text
            assert notice and notice[0].published_at is not None
            assert post.published_at is not None and notice[0].published_at <= post.published_at
            entry = entries[f"post:{post.public_id}"]
            assert entry.data["writer"]["email"] == writer.email
            assert entry.data["source"] == "mastodon-compat"
            assert entry.data["via"].startswith("mastodon-app:")
            assert post.author_id == writer.id


def assert_cw_honoured_or_refused(status_code: int, body: dict[str, Any]) -> None:
    """A content warning goes out as one or is refused by name; never dropped silently."""
    if status_code == 200:
        assert body["spoiler_text"].startswith(CONTENT_WARNING), f"CW dropped silently: {body}"
    else:
        assert status_code == 422, body
        assert re.search(r"content warning|spoiler_text", body["error"], re.IGNORECASE), body


# --- Mastodon.py ---------------------------------------------------------------------------


def test_mastodon_py_signs_in_and_posts_as_the_writer(face: Face) -> None:
    world, writer = face.world, face.world.writer_a
    scopes = ["read", "write"]
    client_id, client_secret = Mastodon.create_app(
        "Mastodon.py test app", scopes=scopes, redirect_uris=OOB, api_base_url=face.base
    )
    app = Mastodon(client_id, client_secret, api_base_url=face.base, request_timeout=10)
    url = app.auth_request_url(redirect_uris=OOB, scopes=scopes, allow_http=True)
    code = approve_in_browser(face, url, writer)
    token = app.log_in(code=code, redirect_uri=OOB, scopes=scopes, allow_http=True)
    api = Mastodon(access_token=token, api_base_url=face.base, request_timeout=10)

    me = api.account_verify_credentials()
    assert me["username"] == world.account.handle
    now = api.status_post("Hello from Mastodon.py")
    later = api.status_post("Later from Mastodon.py", scheduled_at=scheduled_at(face))
    assert str(later["id"]) in [str(s["id"]) for s in api.scheduled_statuses()]
    api.scheduled_status_delete(later["id"])
    assert str(later["id"]) not in [str(s["id"]) for s in api.scheduled_statuses()]

    assert_disclosed_and_attributed(face, [int(now["id"])], writer)
    mine = api.account_statuses(me["id"])
    assert str(now["id"]) in [str(s["id"]) for s in mine]
    assert all(TAG.search(s["text"]) for s in mine if s["text"] != NOTICE)

    with pytest.raises(MastodonUnauthorizedError) as refused:
        Mastodon(access_token="not-a-token", api_base_url=face.base).account_verify_credentials()
    assert "The access token is invalid" in str(refused.value)
    with pytest.raises(MastodonNotFoundError) as unknown:
        api.trending_tags()
    # Mastodon.py casts the body to the method's return type (a list) and so loses the error
    # text; the body itself is Mastodon's.
    assert unknown.value.args[1] == 404
    raw = api.session.get(
        face.base + "/api/v1/trends/tags", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert raw.status_code == 404 and raw.json() == {"error": "Record not found"}

    try:
        warned = api.status_post("Spoilers from Mastodon.py", spoiler_text=CONTENT_WARNING)
    except MastodonAPIError as refused:
        assert_cw_honoured_or_refused(refused.args[1], {"error": refused.args[3]})
    else:
        assert_cw_honoured_or_refused(200, warned)


# --- toot ------------------------------------------------------------------------------------


def toot_executable() -> str:
    """The `toot` installed with the dev dependencies (beside this Python), else on PATH."""
    search = [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
    found = shutil.which("toot", path=os.pathsep.join(search))
    assert found, "toot is not installed: scripts/bootstrap-venv dev installs it"
    return found


def toot_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GHOSTPOST_", "XDG_"))}
    # toot keeps its apps and tokens in $XDG_CONFIG_HOME/toot/config.json: a private one.
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), BROWSER="true")
    env.update(NO_COLOR="1", COLUMNS="100")
    return env


def toot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`toot ARGS` with `env`, in a process of its own: a fork of this one, where toot's
    command line is already imported, running what the installed `toot` script runs
    (`sys.exit(toot.cli.cli())`). A fresh `toot` spends ~1 s of CPU importing it, eight times
    in the test. What toot sees is the same: its argv, its environment (the config directory
    it reads on each call), stdin/stdout/stderr of its own, Python's default warning filters
    (not pytest's), nothing of the test's but the modules imported. `toot login`, which
    talks with its user, runs the installed script itself (toot_login)."""
    from toot.cli import cli  # once, in this process: the forks share it

    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.close(out_read)
            os.close(err_read)
            sys.settrace(None)  # coverage's tracer came with the fork (as in live.py)
            threading.settrace(None)
            stdin = os.open(os.devnull, os.O_RDONLY)
            os.dup2(stdin, 0)
            os.dup2(out_write, 1)
            os.dup2(err_write, 2)
            sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own, until exit
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            os.environ.clear()
            os.environ.update(env)
            warnings.resetwarnings()
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning):
                warnings.simplefilter("ignore", category)
            warnings.simplefilter("ignore", ResourceWarning)
            sys.argv = [toot_executable(), *args]
            try:
                cli()
                code = 0
            except SystemExit as exit_:  # as the interpreter turns sys.exit(x) into a status
                code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
                if isinstance(exit_.code, str):
                    print(exit_.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()  # as an uncaught exception would: status 1
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    os.close(out_write)
    os.close(err_write)
    with os.fdopen(out_read) as out, os.fdopen(err_read) as err:
        # Both pipes at once: a child blocked on a full stderr would never close stdout.
        errors: list[str] = []
        reader = threading.Thread(target=lambda: errors.append(err.read()))
        reader.start()
        stdout = out.read()
        reader.join(timeout=60)
    _, status = os.waitpid(pid, 0)
    return subprocess.CompletedProcess(
        [toot_executable(), *args], os.waitstatus_to_exitcode(status), stdout, "".join(errors)
    )


def toot_json(env: dict[str, str], *args: str) -> Any:
    done = toot(env, *args, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def toot_login(face: Face, env: dict[str, str], writer: User) -> None:
    """`toot login`: the browser sign-in, out of band. toot prints the authorize URL, asks
    whether to open a browser (no), then reads the code the page shows from stdin."""
    process = subprocess.Popen(
        [toot_executable(), "login", "--instance", face.base],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        seen = []
        while (line := process.stdout.readline()) and line.strip() != "Login URL:":
            seen.append(line)
        url = process.stdout.readline().strip()
        assert url.startswith(face.base + "/oauth/authorize"), "".join(seen) + url
        code = approve_in_browser(face, url, writer)
        out, err = process.communicate(f"n\n{code}\n", timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, out + err
    assert "Successfully logged in" in out, out + err


def test_toot_signs_in_and_posts_as_the_writer(face: Face, tmp_path: Path) -> None:
    world, writer = face.world, face.world.writer_b
    env = toot_env(tmp_path)
    toot_login(face, env, writer)

    me = toot_json(env, "whoami")
    assert me["username"] == world.account.handle
    now = toot_json(env, "post", "Hello from toot")
    later = toot_json(
        env, "post", "Later from toot", "--scheduled-at", scheduled_at(face).isoformat()
    )
    assert later["scheduled_at"]
    # toot has no command for scheduled statuses: its own API module lists them.
    listing = subprocess.run(
        [
            str(Path(toot_executable()).with_name("python")),
            "-c",
            "import json; from toot import api, config;"
            "user, app = config.get_active_user_app();"
            "print(json.dumps(api.scheduled_statuses(app, user)))",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    assert later["id"] in [s["id"] for s in json.loads(listing.stdout)]
    cancelled = toot(env, "delete", later["id"])
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    with world.ctx.uow(read_only=True) as uow:
        assert uow.posts.get(int(later["id"])).state is PostState.CANCELLED

    assert_disclosed_and_attributed(face, [int(now["id"])], writer)
    mine = toot_json(env, "timelines", "account", world.account.handle, "--no-pager")
    assert now["id"] in [s["id"] for s in mine]
    assert all(TAG.search(s["text"]) for s in mine if s["text"] != NOTICE)

    unknown = toot(env, "favourite", now["id"])
    assert unknown.returncode == 1
    assert "Record not found" in unknown.stderr, unknown.stdout + unknown.stderr
    forged_home = tmp_path / "forged"
    forged_env = toot_env(forged_home)
    config_dir = Path(env["XDG_CONFIG_HOME"]) / "toot"
    stored = json.loads((config_dir / "config.json").read_text())
    for user in stored["users"].values():
        user["access_token"] = "not-a-token"
    (forged_home / ".config" / "toot").mkdir(parents=True)
    (forged_home / ".config" / "toot" / "config.json").write_text(json.dumps(stored))
    refused = toot(forged_env, "whoami")
    assert refused.returncode == 1
    assert "The access token is invalid" in refused.stderr, refused.stdout + refused.stderr

    warned = toot(env, "post", "Spoilers from toot", "--spoiler-text", CONTENT_WARNING, "--json")
    if warned.returncode == 0:
        assert_cw_honoured_or_refused(200, json.loads(warned.stdout))
    else:
        error = warned.stderr.strip().removeprefix("Error: ")
        assert_cw_honoured_or_refused(422, {"error": error})


# --- masto.js --------------------------------------------------------------------------------


def masto(mode: str, **args: Any) -> Any:
    node = shutil.which("node")
    assert node, "masto.js needs Node.js >= 20 (scripts/pds-deps installs it)"
    assert (MASTO_DIR / "node_modules" / "masto").exists(), "run scripts/masto-deps"
    done = subprocess.run(
        [node, str(MASTO_DIR / "client.mjs"), mode, json.dumps(args)],
        cwd=MASTO_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_masto_js_registers_signs_in_and_posts_as_the_writer(face: Face) -> None:
    world, writer = face.world, face.world.writer_a
    app = masto("register", base=face.base, redirectUri=REDIRECT)
    code = approve_in_browser(face, app["authorizeUrl"], writer)
    result = masto(
        "run",
        base=face.base,
        clientId=app["clientId"],
        clientSecret=app["clientSecret"],
        redirectUri=REDIRECT,
        code=code,
        codeVerifier=app["codeVerifier"],
        scheduledAt=scheduled_at(face).isoformat(),
    )

    assert result["token"]["tokenType"] == "Bearer"
    assert result["me"]["username"] == world.account.handle
    posted, scheduled = result["posted"], result["scheduled"]
    assert TAG.search(posted["text"])
    assert scheduled["id"] in result["pendingIds"]
    assert scheduled["id"] not in result["pendingIdsAfterCancel"]
    assert posted["id"] in [s["id"] for s in result["statuses"]]
    assert_disclosed_and_attributed(face, [int(posted["id"])], writer)

    assert result["badToken"]["error"]["name"] == "MastoHttpError"
    assert result["badToken"]["error"]["statusCode"] == 401
    assert result["badToken"]["error"]["message"] == "The access token is invalid"
    assert result["unknownRoute"]["error"]["name"] == "MastoHttpError"
    assert result["unknownRoute"]["error"]["statusCode"] == 404
    assert result["unknownRoute"]["error"]["message"] == "Record not found"

    warned = result["warned"]
    if "ok" in warned:
        # masto.js hands entities over in camelCase.
        assert_cw_honoured_or_refused(200, {"spoiler_text": warned["ok"]["spoilerText"]})
    else:
        assert warned["error"]["name"] == "MastoHttpError"
        body = {"error": warned["error"]["message"]}
        assert_cw_honoured_or_refused(warned["error"]["statusCode"], body)
