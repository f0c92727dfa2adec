"""Outbound requests cannot be turned inward (issue 13): a manager's connect form, or a row the
worker sends to, never reaches loopback, private, link-local, metadata or other internal
addresses, in any spelling; no redirect is followed; the address checked is the one dialled;
a failed answer's body is never shown. Plus the small holes: a port beyond 65535 and a PDS
answering `{}` are form messages, not 500s, and IPv6 addresses keep their brackets.

The suite runs with environment `test`, whose exemption lets the fake platforms on loopback be
reached. These tests switch that exemption off (production's policy), allowlist only what they
name, and resolve names with a stub resolver handed to the policy: loopback listeners stand in
for the internal hosts an attacker would aim at.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import ssl
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from argon2 import PasswordHasher
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from werkzeug.serving import make_server

from ghostpost import create_app
from ghostpost.adapters.base import RetryableError
from ghostpost.adapters.http import BadBaseUrl, PlatformHttp, normalize_base_url
from ghostpost.adapters.outbound import OutboundPolicy, OutboundRefused
from ghostpost.bootstrap import Container, bootstrap
from ghostpost.clock import FixedClock
from ghostpost.db.models import AccountRow, LedgerEntryRow, PlatformAppRow
from ghostpost.services import connections, directory
from ghostpost.services.context import Actor
from ghostpost.settings import Settings, SettingsError
from tests.support.fake_mastodon import make_fake_mastodon
from tests.support.http_server import serving
from tests.support.web import post_form, sign_in
from tests.support.world import World, build_world

SECRET_BODY = "INTERNAL-ONLY: db password hunter2, admin panel v3.1"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"


# -- helpers ---------------------------------------------------------------------------------


class Listener:
    """Records every request (an internal service); answers with a fixed status and body."""

    def __init__(self, status: str = "200 OK", body: bytes = b"{}", headers: Any = ()) -> None:
        self.status, self.body, self.headers = status, body, list(headers)
        self.requests: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with self._lock:
            self.requests.append(
                (environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("HTTP_HOST", ""))
            )
        start_response(self.status, [("Content-Type", "application/json"), *self.headers])
        return [self.body]


@pytest.fixture
def listener() -> Iterator[tuple[int, Listener]]:
    recorder = Listener()
    with serving(recorder) as url:
        yield int(url.rsplit(":", 1)[1]), recorder


class StubResolver:
    """DNS as the test says it is; counts lookups (a resolver the policy is handed)."""

    def __init__(self, answers: dict[str, Sequence[str]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        if host not in self.answers:
            raise OSError(f"no such name {host}")
        return self.answers[host]


PUBLIC_NAMES = {"social.example": ["93.184.216.34"], "pds.example": ["93.184.216.35"]}
INWARD_NAMES = {
    "metadata.google.internal": ["169.254.169.254"],
    "intranet.example": ["10.0.0.8"],
    # Round robin with one internal answer is refused as a whole.
    "mixed.example": ["93.184.216.36", "192.168.1.10"],
    "v6-inward.example": ["::1"],
    "mapped.example": ["::ffff:127.0.0.1"],
}


def policy_on(
    settings: Settings, allow: str = "", resolver: StubResolver | None = None
) -> tuple[Settings, StubResolver]:
    """Production's outbound policy inside the test environment."""
    stub = resolver or StubResolver({**PUBLIC_NAMES, **INWARD_NAMES})
    return settings.replace(outbound_test_exemption=False, outbound_allow_hosts=allow), stub


@contextmanager
def guarded_app(
    settings: Settings, clock: FixedClock, *, allow: str = "", resolver: StubResolver | None = None
) -> Iterator[tuple[FlaskClient, World]]:
    changed, stub = policy_on(settings, allow, resolver)
    container = bootstrap(
        changed, clock=clock, password_hasher=PasswordHasher(1, 8, 1), resolver=stub
    )
    try:
        world = build_world(container)
        client = create_app(container=container).test_client()
        sign_in(client, world.manager.email)
        yield client, world
    finally:
        container.dispose()


def stored_counts(container: Container) -> tuple[int, int, int]:
    with container.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(AccountRow)) or 0,
            session.scalar(select(func.count()).select_from(PlatformAppRow)) or 0,
            session.scalar(select(func.count()).select_from(LedgerEntryRow)) or 0,
        )


def connect_mastodon(client: FlaskClient, world: World, instance: str) -> Any:
    return post_form(
        client,
        "/accounts/connect/mastodon",
        {"principal_id": str(world.account.principal_id), "instance": instance},
        token_from="/accounts",
    )


def connect_bluesky(client: FlaskClient, world: World, pds: str) -> Any:
    return post_form(
        client,
        "/accounts/connect/bluesky",
        {
            "principal_id": str(world.account.principal_id),
            "pds": pds,
            "identifier": "avery.bsky.social",
            "app_password": APP_PASSWORD,
        },
        token_from="/accounts",
    )


# -- every spelling of an internal address, through the real connect forms --------------------

INWARD_SPELLINGS = [
    ("127.1", "loopback"),
    ("2130706433", "loopback"),
    ("0x7f.1", "loopback"),
    ("0177.0.0.1", "loopback"),
    ("127.0.0.1.", "loopback"),
    ("[::1]", "loopback"),
    ("[::ffff:127.0.0.1]", "loopback"),
    ("[::ffff:7f00:1]", "loopback"),
    ("[64:ff9b::7f00:1]", "loopback"),  # NAT64
    ("[2002:7f00:1::]", "loopback"),  # 6to4
    ("0.0.0.0", "unspecified"),
    ("[::]", "unspecified"),
    ("169.254.169.254", "link-local"),
    ("[fe80::1]", "link-local"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.0.1", "private"),
    ("[fd00::1]", "private"),
    ("100.64.0.1", "shared carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("[ff02::1]", "multicast"),
    ("240.0.0.1", "reserved"),
    ("metadata.google.internal", "link-local"),
    ("METADATA.Google.Internal.", "link-local"),
    ("intranet.example", "private"),
    ("mixed.example", "private"),
    ("v6-inward.example", "loopback"),
    ("mapped.example", "loopback"),
]
#: How an address is spelt is read by the outbound policy (adapters/outbound.py) before the
#: connect form stores anything: the spelling matrix runs whole on SQLite, and the spellings
#: the Bluesky test also tries (every third) run on PostgreSQL too, with their "nothing stored"
#: check on that database.
POLICY_ONLY = pytest.mark.backend_independent(
    "the outbound policy or the form's URL check refuses before any statement that writes, "
    "whatever the database; the PostgreSQL pass keeps every third spelling"
)
MASTODON_SPELLINGS = [
    pytest.param(host, kind, marks=() if n % 3 == 0 else POLICY_ONLY)
    for n, (host, kind) in enumerate(INWARD_SPELLINGS)
]
NO_DATABASE = pytest.mark.backend_independent(
    "checks the outbound policy, its settings or URL normalising; no statement is sent"
)


@pytest.mark.parametrize(("host", "kind"), MASTODON_SPELLINGS)
def test_mastodon_connect_refuses_every_spelling_of_an_internal_address(
    settings: Settings, clock: FixedClock, listener: tuple[int, Listener], host: str, kind: str
) -> None:
    port, internal = listener
    with guarded_app(settings, clock) as (client, world):
        before = stored_counts(world.container)
        response = connect_mastodon(client, world, f"https://{host}:{port}")
        page = response.get_data(as_text=True)
        assert response.status_code == 422, page
        assert f"{kind} address" in page and "connects only to public servers" in page
        assert stored_counts(world.container) == before
    assert internal.requests == []


@pytest.mark.parametrize(("host", "kind"), INWARD_SPELLINGS[::3])
def test_bluesky_connect_refuses_internal_addresses_before_sending_the_app_password(
    settings: Settings, clock: FixedClock, listener: tuple[int, Listener], host: str, kind: str
) -> None:
    port, internal = listener
    with guarded_app(settings, clock) as (client, world):
        before = stored_counts(world.container)
        response = connect_bluesky(client, world, f"https://{host}:{port}")
        page = response.get_data(as_text=True)
        assert response.status_code == 422, page
        assert f"{kind} address" in page and APP_PASSWORD not in page
        assert stored_counts(world.container) == before
    assert internal.requests == []


@pytest.mark.parametrize(
    "instance",
    ["http://localhost:8080", "http://social.example", "http://93.184.216.34"],
)
@POLICY_ONLY
def test_plain_http_is_refused_outside_the_test_exemption(
    settings: Settings, clock: FixedClock, instance: str
) -> None:
    with guarded_app(settings, clock) as (client, world):
        response = connect_mastodon(client, world, instance)
        assert response.status_code == 422
        assert "Only https:// servers can be connected." in response.get_data(as_text=True)


@POLICY_ONLY
@pytest.mark.parametrize("port", ["99999", "65536", "0", "-1", "http"])
def test_a_port_outside_1_to_65535_is_a_form_message(
    client: FlaskClient, world: World, port: str
) -> None:
    sign_in(client, world.manager.email)
    for response in (
        connect_mastodon(client, world, f"https://127.0.0.1:{port}"),
        connect_bluesky(client, world, f"https://127.0.0.1:{port}"),
    ):
        page = response.get_data(as_text=True)
        assert response.status_code == 422, page
        assert "port" in page.lower() or "not a server address" in page


def test_an_unresolvable_name_is_a_clear_answer_not_a_500(
    settings: Settings, clock: FixedClock
) -> None:
    with guarded_app(settings, clock) as (client, world):
        response = connect_mastodon(client, world, "https://nowhere.example")
        assert response.status_code == 502
        assert "could not resolve nowhere.example" in response.get_data(as_text=True)


# -- redirects, pinning, the allowlist --------------------------------------------------------


@pytest.fixture
def redirector(listener: tuple[int, Listener]) -> Iterator[tuple[int, Listener]]:
    """An allowed server that answers everything with a 307 to the internal listener."""
    port, _ = listener
    hop = Listener(
        "307 Temporary Redirect", b"", [("Location", f"http://127.1:{port}/api/v1/apps")]
    )
    with serving(hop) as url:
        yield int(url.rsplit(":", 1)[1]), hop


def test_a_307_from_an_allowed_host_to_127_1_is_not_followed(
    settings: Settings,
    clock: FixedClock,
    listener: tuple[int, Listener],
    redirector: tuple[int, Listener],
) -> None:
    _, internal = listener
    hop_port, hop = redirector
    resolver = StubResolver({"mastodon.allowed.test": ["127.0.0.1"]})
    with guarded_app(settings, clock, allow="mastodon.allowed.test", resolver=resolver) as (
        client,
        world,
    ):
        before = stored_counts(world.container)
        instance = f"http://mastodon.allowed.test:{hop_port}"
        response = connect_mastodon(client, world, instance)
        page = response.get_data(as_text=True)
        assert response.status_code == 422, page
        assert "follows no redirects" in page
        bluesky = connect_bluesky(client, world, instance)
        assert bluesky.status_code == 422 and "follows no redirects" in bluesky.get_data(
            as_text=True
        )
        assert stored_counts(world.container) == before
    assert [path for _, path, _ in hop.requests] == [
        "/api/v1/apps",
        "/xrpc/com.atproto.server.createSession",
    ]
    # The Host header kept the name the policy allowed, though the address was dialled.
    assert all(host == f"mastodon.allowed.test:{hop_port}" for _, _, host in hop.requests)
    assert internal.requests == []


def test_no_session_the_policy_installs_follows_a_redirect_and_every_hop_is_checked(
    listener: tuple[int, Listener], redirector: tuple[int, Listener]
) -> None:
    _, internal = listener
    hop_port, _ = redirector
    policy = OutboundPolicy(
        allow_names=frozenset({"allowed.test"}),
        resolver=StubResolver({"allowed.test": ["127.0.0.1"]}),
    )
    with policy.install(requests.Session()) as session:
        # Authlib's token requests go through sessions like this one, redirects allowed.
        answer = session.get(f"http://allowed.test:{hop_port}/", allow_redirects=True, timeout=5)
        assert answer.status_code == 307 and answer.history == []
        # Even a hop sent by hand is checked against the policy.
        with pytest.raises(OutboundRefused, match="loopback"):
            session.get(answer.headers["Location"], timeout=5)
    assert internal.requests == []


@NO_DATABASE
def test_the_address_checked_is_the_address_dialled(listener: tuple[int, Listener]) -> None:
    port, internal = listener
    # A rebinding resolver: a permitted answer for the check, an inward one for any later look.
    answers = iter([["127.0.0.1"], ["10.9.9.9"], ["10.9.9.9"]])
    lookups: list[str] = []

    def rebinding(host: str, _port: int) -> list[str]:
        lookups.append(host)
        return next(answers)

    policy = OutboundPolicy(
        allow_networks=(ipaddress.ip_network("127.0.0.1/32"),), resolver=rebinding
    )
    http = PlatformHttp(5, policy)
    try:
        # The system's DNS has never heard of this name: the answer the policy checked is used.
        response = http.request("GET", f"http://rebind.test:{port}/probe")
        assert response.status_code == 200
    finally:
        http.session.close()
    assert lookups == ["rebind.test"]  # one lookup: checked and dialled are the same answer
    assert internal.requests == [("GET", "/probe", f"rebind.test:{port}")]


@NO_DATABASE
def test_the_allowlist_admits_a_named_host_or_network_and_nothing_else(
    listener: tuple[int, Listener],
) -> None:
    port, internal = listener
    resolver = StubResolver({"pds.corp.test": ["127.0.0.1"], "other.corp.test": ["127.0.0.1"]})
    by_name = OutboundPolicy(allow_names=frozenset({"pds.corp.test"}), resolver=resolver)
    assert by_name.check(f"http://pds.corp.test:{port}").address == "127.0.0.1"
    with pytest.raises(OutboundRefused, match="loopback"):
        by_name.check(f"https://other.corp.test:{port}")
    with pytest.raises(OutboundRefused, match="loopback"):
        by_name.check(f"https://127.0.0.1:{port}")  # the name is trusted, not its address
    by_network = OutboundPolicy(
        allow_networks=(ipaddress.ip_network("127.0.0.0/8"),), resolver=resolver
    )
    assert by_network.check(f"https://other.corp.test:{port}").address == "127.0.0.1"
    with pytest.raises(OutboundRefused, match="private"):
        by_network.check("https://10.0.0.1")
    assert internal.requests == []


@NO_DATABASE
def test_the_allowlist_setting_is_validated_at_boot(settings: Settings) -> None:
    with pytest.raises(SettingsError, match="outbound_allow_hosts"):
        settings.replace(outbound_allow_hosts="pds.corp.test, not a host!")
    good = settings.replace(outbound_allow_hosts="pds.corp.test, 10.20.0.0/16, [fd00::1]")
    policy = OutboundPolicy.from_settings(good)
    assert policy.allow_names == frozenset({"pds.corp.test"})
    assert [str(n) for n in policy.allow_networks] == ["10.20.0.0/16", "fd00::1/128"]


@NO_DATABASE
def test_production_has_no_exemption(settings: Settings) -> None:
    production = settings.replace(
        environment="production", secret_key="p" * 32, token_keys="k1:" + "A" * 43
    )
    assert OutboundPolicy.from_settings(production).allow_internal is False
    assert OutboundPolicy.from_settings(settings).allow_internal is True
    assert (
        OutboundPolicy.from_settings(settings.replace(outbound_test_exemption=False))
    ).allow_internal is False


# -- the worker's calls obey the same policy -------------------------------------------------


def test_the_worker_will_not_publish_to_an_account_row_pointed_inward(
    settings: Settings, clock: FixedClock, listener: tuple[int, Listener]
) -> None:
    port, internal = listener
    changed, stub = policy_on(settings)
    container = bootstrap(
        changed, clock=clock, password_hasher=PasswordHasher(1, 8, 1), resolver=stub
    )
    try:
        world = build_world(container)
        account = connections.save_connection(
            world.ctx,
            Actor.for_user(world.manager),
            principal_id=world.account.principal_id,
            platform="mastodon",
            handle="exec@social.example",
            remote_id="7",
            base_url="https://social.example",
            credentials={"access_token": "tok"},
        )
        # Connected to a name that later resolves inward (or a row edited to an internal IP
        # along with re-sealed tokens): the policy is checked on the worker's every call too.
        stub.answers["social.example"] = ["127.0.0.1"]
        directory.assign_writer(
            world.ctx, Actor.system("test"), user_id=world.writer_a.id, account_id=account.id
        )
        world.approve_notice(world.open_window(account=account))
        world.run_worker()
        with container.sessions() as session:
            reasons = session.scalars(
                text("SELECT state_reason FROM posts WHERE account_id = :a"), {"a": account.id}
            ).all()
        inward = "social.example resolves to 127.0.0.1, a loopback address"
        assert reasons and all(inward in (r or "") for r in reasons), reasons
    finally:
        container.dispose()
    assert internal.requests == [] and port


# -- what the manager's page shows of a failed answer -----------------------------------------


@pytest.mark.parametrize(
    ("status", "content_type"),
    [("500 Internal Server Error", "text/html"), ("400 Bad Request", "text/plain")],
)
def test_a_failed_answers_body_never_reaches_the_page_only_its_hash_reaches_the_log(
    client: FlaskClient,
    world: World,
    caplog: pytest.LogCaptureFixture,
    status: str,
    content_type: str,
) -> None:
    body = f"<html><body>{SECRET_BODY}</body></html>".encode()
    internal = Listener(status, body, [("X-Kind", content_type)])
    sign_in(client, world.manager.email)
    with serving(internal) as url, caplog.at_level(logging.WARNING):
        responses = [connect_mastodon(client, world, url), connect_bluesky(client, world, url)]
    for response in responses:
        page = response.get_data(as_text=True)
        assert response.status_code in (422, 502), page
        assert "HTTP " + status.split()[0] in page
        assert "hunter2" not in page and "INTERNAL-ONLY" not in page
    assert hashlib.sha256(body).hexdigest() in caplog.text
    assert f"{len(body)} bytes" in caplog.text and "hunter2" not in caplog.text


def test_a_pds_answering_an_empty_object_is_a_form_message(
    client: FlaskClient, world: World, listener: tuple[int, Listener]
) -> None:
    port, internal = listener  # answers 200 {} to everything
    sign_in(client, world.manager.email)
    before = stored_counts(world.container)
    response = connect_bluesky(client, world, f"http://127.0.0.1:{port}")
    page = response.get_data(as_text=True)
    assert response.status_code == 422, page
    assert "does not look like a Bluesky PDS" in page
    assert stored_counts(world.container) == before
    assert [path for _, path, _ in internal.requests] == ["/xrpc/com.atproto.server.createSession"]


# -- IPv6 and TLS ----------------------------------------------------------------------------


@contextmanager
def serving_on(host: str, app: Any, ssl_context: Any = None) -> Iterator[int]:
    server = make_server(host, 0, app, threaded=True, ssl_context=ssl_context)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_an_ipv6_instance_keeps_its_brackets_and_connects(
    client: FlaskClient, world: World
) -> None:
    from tests.support.consent import approve

    fake = make_fake_mastodon()
    fake.create_user("avery")
    fake.approve_as("avery")
    with serving_on("::1", fake.app) as port:
        instance = f"http://[::1]:{port}"
        assert normalize_base_url(instance, world.container.outbound) == instance
        assert normalize_base_url(f"HTTP://[0:0::1]:{port}/", world.container.outbound) == instance
        sign_in(client, world.manager.email)
        started = connect_mastodon(client, world, instance)
        assert started.status_code == 302, started.get_data(as_text=True)
        callback = urlsplit(approve(started.headers["Location"]))
        done = client.get(f"{callback.path}?{callback.query}")
        assert done.status_code == 302, done.get_data(as_text=True)
    with world.ctx.uow() as uow:
        account = uow.accounts.by_handle("mastodon", f"avery@[::1]:{port}")
    assert account is not None and account.base_url == instance


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_to_a_pinned_address_still_verifies_the_name(tmp_path: Path) -> None:
    cert_path, key_path = _certificate(tmp_path, "pds.tls.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    seen_sni: list[str | None] = []

    def remember_sni(_socket: Any, name: str | None, _context: Any) -> None:
        seen_sni.append(name)

    context.sni_callback = remember_sni
    server = Listener()
    resolver = StubResolver({"pds.tls.test": ["127.0.0.1"], "evil.tls.test": ["127.0.0.1"]})
    policy = OutboundPolicy(
        allow_networks=(ipaddress.ip_network("127.0.0.1/32"),), resolver=resolver
    )
    with serving_on("127.0.0.1", server, ssl_context=context) as port:
        http = PlatformHttp(5, policy)
        try:
            ok = http.request("GET", f"https://pds.tls.test:{port}/x", verify=str(cert_path))
            assert ok.status_code == 200
            # Same address, another name: the certificate does not cover it, so it is refused.
            with pytest.raises(RetryableError, match="could not reach"):
                http.request("GET", f"https://evil.tls.test:{port}/x", verify=str(cert_path))
        finally:
            http.session.close()
    assert seen_sni[0] == "pds.tls.test"
    assert server.requests[0] == ("GET", "/x", f"pds.tls.test:{port}")


@NO_DATABASE
def test_base_urls_are_normalised_once(settings: Settings) -> None:
    policy = OutboundPolicy.from_settings(settings)
    assert normalize_base_url("Mastodon.Social", policy) == "https://mastodon.social"
    assert normalize_base_url("https://mastodon.social:443/", policy) == "https://mastodon.social"
    assert normalize_base_url("https://127.1:8443", policy) == "https://127.0.0.1:8443"
    for bad in ("https://a b", "https://user:pw@host", "https://[::1", "https://ex_.-com"):
        with pytest.raises(BadBaseUrl):
            normalize_base_url(bad, policy)
