"""Settings: config/default.toml, then an optional GHOSTPOST_CONFIG_FILE, then GHOSTPOST_* env.

Validated at boot: a bad value stops the process with a message naming the key, never later
with a stack trace on the first request.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ghostpost.domain.signed_note import is_valid_key_name
from ghostpost.logs import LOG_FORMATS

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_DIR / "config" / "default.toml"
DEMO_SECRET_KEY = "demo-only-not-a-secret-change-me"
ENVIRONMENTS = ("development", "test", "production")
ENV_PREFIX = "GHOSTPOST_"
#: GHOSTPOST_* variables that are inputs of one command, not settings: Settings.load leaves them
#: to the command (and keeps them out of the settings, so a password is never in them).
COMMAND_VARIABLES = frozenset({ENV_PREFIX + "CONFIG_FILE", ENV_PREFIX + "NEW_USER_PASSWORD"})


class SettingsError(ValueError):
    """The configuration is invalid; the message says which key and why."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable, validated."""

    database_url: str
    secret_key: str
    environment: str = "development"
    public_url: str = "http://127.0.0.1:8000"
    worker_poll_seconds: float = 1.0
    worker_lease_seconds: int = 60
    serve_runs_worker: bool = True
    #: The host (`host` or `host:port`) whose requests get the Mastodon client API at the root
    #: (`/api/v1/...`, `/api/v2/...`, `/oauth/...`), told apart by the Host header; "": none.
    mastodon_host: str = ""
    #: Lifetime of an API access token (OAuth client credentials); short, as there is no refresh.
    api_token_seconds: int = 900
    #: How long each process keeps what a bearer token grants before reading it again: a token
    #: or client revoked in another process stops working here within this many seconds.
    api_token_cache_seconds: float = 5.0
    #: Requests each API client may make, in the `limits` notation ("120 per minute").
    api_rate_limit: str = "120 per minute"
    #: Where rate-limit counters live: "memory://" (per process) or "redis://host:6379/0",
    #: shared by every gunicorn process and host, so the limits hold across all of them.
    rate_limit_storage_uri: str = "memory://"
    #: platform -> "module:factory" overriding the built-in adapter (factory(settings, sessions)).
    adapters: Mapping[str, str] = field(default_factory=dict)
    #: The Ed25519 private key (PEM) that signs ledger heads; never in the database. Generated
    #: on first use outside production; production refuses to start without it.
    ledger_signing_key: str = "instance/keys/ledger-ed25519.pem"
    #: Directory of the public keys ever used (retired and current), `<key_id>.pub` each.
    ledger_public_keys: str = "instance/keys/public"
    #: Where uploaded images are kept, by content hash (ghostpost.media_store).
    media_dir: str = "instance/media"
    #: An idle worker re-signs the unchanged head this often.
    ledger_heartbeat_seconds: int = 60
    #: Append-only JSON Lines file the newest signed head is shipped to ("" = none); put it on
    #: a volume the database administrator cannot write.
    ledger_witness_file: str = "instance/witness/checkpoints.jsonl"
    #: Optional URL the newest signed head is POSTed to as JSON ("" = none).
    ledger_witness_url: str = ""
    #: How often the worker ships the newest signed head to the witness(es).
    ledger_witness_seconds: int = 300
    #: How often the notary (in the worker) verifies the new entries and signs the head: the
    #: longest an entry stays unsigned while a worker runs.
    ledger_checkpoint_seconds: float = 1.0
    #: The notary's own record of what it signed last, outside the database ("" = the file
    #: `notary-state.json` beside `ledger_witness_file`, or under instance/witness/ when there
    #: is no witness file). Its alert file (`notary-alert.json`) lives beside it.
    ledger_notary_state_file: str = ""
    #: The transparency log's identity (C2SP checkpoint origin and key name); "" = derived
    #: from public_url: "<host>/ghostpost-log". Changing it starts a new log identity.
    ledger_origin: str = ""
    #: AES-256-GCM keys sealing platform tokens at rest: `id:base64url,id:base64url`, the first
    #: seals, all open (rotation). Empty outside production: a key derived from secret_key.
    token_keys: str = ""
    #: A staff web session ends after this many minutes without a request...
    session_idle_minutes: int = 30
    #: ...and this many hours after sign-in, however active (OWASP ASVS 7.3.1/7.3.2).
    session_absolute_hours: int = 12
    #: GET /metrics (Prometheus) answers only requests with `Authorization: Bearer <this>`;
    #: "" (the default) turns the page off (404).
    metrics_token: str = ""
    #: A window's notice goes out this many minutes before the window starts unless its
    #: form names another time (at once when that moment has passed).
    notice_lead_minutes: int = 60
    #: Admins and principals must enroll a TOTP second factor before using any staff page.
    totp_required_for_admins_and_principals: bool = False
    #: Database connections kept for requests other than exports (per process); the pool holds
    #: this many plus export_max_concurrent, so exports never take the last ones.
    database_pool_size: int = 10
    #: A request waiting longer than this for a free connection is answered 503.
    database_pool_timeout_seconds: float = 10.0
    #: Exports (web and API downloads) streaming at once: in total...
    export_max_concurrent: int = 8
    #: ...and per reader (a staff user, or an API client). Beyond either: 429 with Retry-After.
    #: Counted per process with memory://, across processes with a redis:// rate-limit storage.
    export_max_per_reader: int = 2
    #: "text" (lines for people) or "json" (one object per line for a log collector).
    log_format: str = "text"
    #: A download whose reader accepts no chunk of it for this long is cut off.
    export_send_timeout_seconds: float = 30.0
    #: Every call to a social platform gives up after this long (then retries later).
    platform_timeout_seconds: float = 10.0
    #: Outbound requests (platform calls, connect flows) never reach loopback, private,
    #: link-local, multicast or reserved addresses, nor plain http, except for the host names,
    #: IP addresses and networks listed here: "pds.internal.example, 10.1.2.0/24".
    outbound_allow_hosts: str = ""
    #: In environment `test` only: the policy lets everything through (the test suite's fake
    #: platforms listen on loopback). Tests of the policy itself turn this off.
    outbound_test_exemption: bool = True
    #: ghostpost's X app (OAuth 2.0 client) and X's endpoints; the URLs change only in tests.
    x_client_id: str = ""
    x_client_secret: str = ""
    x_api_url: str = "https://api.x.com"
    x_authorize_url: str = "https://x.com/i/oauth2/authorize"
    #: Email notifications go out through this SMTP server; "" (the default): notifications
    #: are recorded (the outbox) but not sent, and the preferences page says so.
    smtp_host: str = ""
    smtp_port: int = 25
    #: The From address of every notification.
    smtp_from: str = "ghostpost@localhost"
    #: Upgrade the connection with STARTTLS before anything else is said.
    smtp_starttls: bool = False
    #: Sign in to the SMTP server when set (the password from GHOSTPOST_SMTP_PASSWORD).
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout_seconds: float = 10.0
    #: Staff pages ask for the state of the posts they show this often while the tab is
    #: visible (static/live.js), until every post shown is final.
    live_status_poll_seconds: float = 5.0

    def __post_init__(self) -> None:
        problems = _type_problems(self) or _problems(self)
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))
        object.__setattr__(self, "database_url", _resolve_sqlite(self.database_url))
        for name in (
            "ledger_signing_key",
            "ledger_public_keys",
            "ledger_witness_file",
            "media_dir",
        ):
            object.__setattr__(self, name, _resolve_path(getattr(self, name)))
        object.__setattr__(
            self, "ledger_notary_state_file", _resolve_path(self.ledger_notary_state_file)
        )

    @property
    def notary_state_file(self) -> str:
        """The notary's state file: `ledger_notary_state_file`, else `notary-state.json` beside
        the witness file (derived here, so replacing the witness file moves it too)."""
        if self.ledger_notary_state_file:
            return self.ledger_notary_state_file
        witness = self.ledger_witness_file or _resolve_path("instance/witness/checkpoints.jsonl")
        return str(Path(witness).with_name("notary-state.json"))

    @property
    def log_origin(self) -> str:
        """The transparency log's origin: `ledger_origin`, else "<host>/ghostpost-log"."""
        if self.ledger_origin:
            return self.ledger_origin
        host = urlsplit(self.public_url).netloc or "localhost"
        return f"{host}/ghostpost-log"

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with some values changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, config_path: Path | None = None
    ) -> Settings:
        """Load the files and the environment into validated settings."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = dict(_read_toml(config_path or DEFAULT_CONFIG))
        extra = environ.get(ENV_PREFIX + "CONFIG_FILE")
        if extra:
            values.update(_read_toml(Path(extra)))
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key, raw in environ.items():
            if not key.startswith(ENV_PREFIX) or key in COMMAND_VARIABLES:
                continue
            name = key[len(ENV_PREFIX) :].lower()
            if name not in fields:
                raise SettingsError(f"unknown setting {key}; known: {', '.join(sorted(fields))}")
            values[name] = _coerce(name, fields[name].type, raw)
        unknown = set(values) - set(fields)
        if unknown:
            raise SettingsError(f"unknown setting(s) in config: {', '.join(sorted(unknown))}")
        missing = [n for n in ("database_url", "secret_key") if n not in values]
        if missing:
            raise SettingsError(f"missing setting(s): {', '.join(missing)}")
        return cls(**values)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise SettingsError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from exc
    section = data.get("ghostpost", {})
    if not isinstance(section, dict):
        raise SettingsError(f"{path}: [ghostpost] must be a table")
    return section


def _coerce(name: str, annotation: Any, raw: str) -> Any:
    kind = str(annotation)
    try:
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(raw)
            return lowered in ("1", "true", "yes")
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind.startswith("Mapping"):
            value = json.loads(raw)
            if not isinstance(value, dict):
                raise ValueError("not a JSON object")
            return value
    except ValueError as exc:
        raise SettingsError(f"{ENV_PREFIX}{name.upper()}: cannot read {raw!r} as {kind}") from exc
    return raw


_EXPECTED_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "Mapping[str, str]": (dict,),
}


def _type_problems(s: Settings) -> list[str]:
    problems = []
    for f in dataclasses.fields(s):
        value = getattr(s, f.name)
        expected = _EXPECTED_TYPES[str(f.type)]
        # bool is an int subclass; `lease = true` is a typo, not a number.
        wrong_bool = isinstance(value, bool) and bool not in expected
        if wrong_bool or not isinstance(value, expected):
            problems.append(f"{f.name} must be {f.type}, got {type(value).__name__} {value!r}")
    return problems


#: A host name or IPv4 address, optionally with a port (what a Host header carries).
_HOST_AND_PORT = re.compile(
    r"(?=.{1,253}(:|$))[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?(?::[0-9]{1,5})?"
)


def _problems(s: Settings) -> list[str]:
    problems = []
    if not s.database_url.startswith(("sqlite", "postgresql")):
        problems.append("database_url must be a sqlite:/// or postgresql+psycopg:// URL")
    if len(s.secret_key) < 16:
        problems.append("secret_key must be at least 16 characters")
    if s.environment not in ENVIRONMENTS:
        problems.append(f"environment must be one of {', '.join(ENVIRONMENTS)}")
    if s.log_format not in LOG_FORMATS:
        problems.append(f"log_format must be one of {', '.join(LOG_FORMATS)}")
    if s.environment == "production" and s.secret_key == DEMO_SECRET_KEY:
        problems.append("secret_key is the demo default; set GHOSTPOST_SECRET_KEY in production")
    if not s.public_url.startswith(("http://", "https://")):
        problems.append("public_url must start with http:// or https://")
    if s.mastodon_host and not _HOST_AND_PORT.fullmatch(s.mastodon_host):
        problems.append(
            "mastodon_host must be a host name, optionally with :port (no scheme, no path), "
            "e.g. social.example.com"
        )
    if s.metrics_token and len(s.metrics_token) < 32:
        problems.append("metrics_token must be at least 32 characters (or empty: no /metrics)")
    if not 0 < s.smtp_port < 65536:
        problems.append("smtp_port must be in [1, 65535]")
    if s.smtp_host and "@" not in s.smtp_from:
        problems.append("smtp_from must be an email address")
    if s.smtp_username and not s.smtp_starttls and s.environment == "production":
        problems.append("smtp_username needs smtp_starttls: a password is never sent in clear")
    if not 0.1 <= s.live_status_poll_seconds <= 600:
        problems.append("live_status_poll_seconds must be in [0.1, 600]")
    if not 0 < s.worker_poll_seconds <= 3600:
        problems.append("worker_poll_seconds must be in (0, 3600]")
    if not 1 <= s.worker_lease_seconds <= 86400:
        problems.append("worker_lease_seconds must be in [1, 86400]")
    if not 1 <= s.session_idle_minutes <= 1440:
        problems.append("session_idle_minutes must be in [1, 1440]")
    if not 1 <= s.session_absolute_hours <= 720:
        problems.append("session_absolute_hours must be in [1, 720]")
    elif s.session_absolute_hours * 60 < s.session_idle_minutes:
        problems.append("session_absolute_hours must not be shorter than session_idle_minutes")
    if not 0 <= s.notice_lead_minutes <= 60 * 24 * 90:
        problems.append("notice_lead_minutes must be in [0, 129600] (90 days)")
    if not 10 <= s.api_token_seconds <= 3600:
        problems.append("api_token_seconds must be in [10, 3600]")
    if not 0 <= s.api_token_cache_seconds <= 60:
        problems.append("api_token_cache_seconds must be in [0, 60]")
    if not s.rate_limit_storage_uri.startswith(("memory://", "redis://", "rediss://")):
        problems.append("rate_limit_storage_uri must be memory:// or a redis:// URL")
    if not _is_rate_limit(s.api_rate_limit):
        problems.append("api_rate_limit must read like '120 per minute'")
    if not s.ledger_signing_key.strip():
        problems.append("ledger_signing_key must name the private key file")
    if not s.ledger_public_keys.strip():
        problems.append("ledger_public_keys must name a directory")
    if not 1 <= s.ledger_heartbeat_seconds <= 86400:
        problems.append("ledger_heartbeat_seconds must be in [1, 86400]")
    if not 1 <= s.ledger_witness_seconds <= 86400:
        problems.append("ledger_witness_seconds must be in [1, 86400]")
    if s.ledger_origin and not is_valid_key_name(s.ledger_origin):
        problems.append("ledger_origin must be one word: no spaces, '+' or control characters")
    if not 0.05 <= s.ledger_checkpoint_seconds <= 3600:
        problems.append("ledger_checkpoint_seconds must be in [0.05, 3600]")
    if s.ledger_witness_url and not s.ledger_witness_url.startswith(("http://", "https://")):
        problems.append("ledger_witness_url must be empty or start with http:// or https://")
    if s.environment == "production" and not s.token_keys.strip():
        problems.append(
            "token_keys is required in production (generate one: ghostpost tokens generate-key)"
        )
    if s.token_keys.strip():
        from ghostpost.secretbox import SecretBoxError, parse_keys

        try:
            parse_keys(s.token_keys)
        except SecretBoxError as exc:
            problems.append(f"token_keys: {exc}")
    if not 1 <= s.database_pool_size <= 1000:
        problems.append("database_pool_size must be in [1, 1000]")
    if not 0 < s.database_pool_timeout_seconds <= 300:
        problems.append("database_pool_timeout_seconds must be in (0, 300]")
    if not 1 <= s.export_max_concurrent <= 1000:
        problems.append("export_max_concurrent must be in [1, 1000]")
    if not 1 <= s.export_max_per_reader <= s.export_max_concurrent:
        problems.append("export_max_per_reader must be in [1, export_max_concurrent]")
    if not 0 < s.export_send_timeout_seconds <= 3600:
        problems.append("export_send_timeout_seconds must be in (0, 3600]")
    if not 0 < s.platform_timeout_seconds <= 300:
        problems.append("platform_timeout_seconds must be in (0, 300]")
    from ghostpost.adapters.outbound import parse_allowlist

    try:
        parse_allowlist(s.outbound_allow_hosts)
    except ValueError as exc:
        problems.append(f"outbound_allow_hosts: {exc}")
    for name in ("x_api_url", "x_authorize_url"):
        if not getattr(s, name).startswith(("http://", "https://")):
            problems.append(f"{name} must start with http:// or https://")
    for platform, target in s.adapters.items():
        if ":" not in str(target):
            problems.append(f"adapters.{platform} must be 'module:factory'")
    return problems


def _is_rate_limit(text: str) -> bool:
    from limits import parse_many  # the `limits` notation, checked by its own parser

    try:
        parsed = parse_many(text)
    except ValueError:
        return False
    return bool(parsed) and all(item.amount >= 1 for item in parsed)


def _resolve_path(path: str) -> str:
    """Resolve a relative file setting against the project directory ("" stays empty)."""
    if not path or Path(path).is_absolute():
        return path
    return str(PROJECT_DIR / path)


def _resolve_sqlite(url: str) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(PROJECT_DIR / url[len(prefix) :])
    return url
