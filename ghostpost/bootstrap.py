"""Composition root: builds engines, services, publishers from Settings for app, worker and CLI."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ghostpost.adapters.base import Publisher
from ghostpost.adapters.local import LocalPublisher
from ghostpost.adapters.mail import SmtpMailer, SmtpServer
from ghostpost.adapters.outbound import OutboundPolicy, Resolver
from ghostpost.audit.keys import FileKeyring, LedgerKeyError
from ghostpost.audit.notary import FileNotaryStore
from ghostpost.audit.witness import Shipment, Witness
from ghostpost.clock import Clock, SystemClock
from ghostpost.db.engine import make_engine, make_session_factory, pool_options
from ghostpost.db.local_platform import LocalStatusStore
from ghostpost.db.platform_store import (
    PlatformAppStore,
    SealedCredentialStore,
    SqlAttemptStore,
    account_binding,
)
from ghostpost.db.unit_of_work import SqlUnitsOfWork
from ghostpost.domain.length import Budget, budget_for
from ghostpost.domain.model import Account
from ghostpost.images import normalise
from ghostpost.logs import configure_logging
from ghostpost.media_store import FileMediaStore
from ghostpost.secretbox import SecretBox, derived_development_key, parse_keys
from ghostpost.services.context import GrantCache, LogIdentity, ServiceContext
from ghostpost.services.ledger_integrity import Notary, newest_checkpoint
from ghostpost.services.web_sessions import Timeouts
from ghostpost.settings import Settings, SettingsError
from ghostpost.textseg import default_segmenter


@dataclass
class Container:
    """Everything built from Settings, shared by one process."""

    settings: Settings
    clock: Clock
    engine: Engine
    sessions: sessionmaker[Session]
    services: ServiceContext
    local_store: LocalStatusStore
    #: The ledger signing key (outside the database) and the public keys ever used.
    keyring: FileKeyring
    #: Where the newest signed ledger head is shipped (file and/or URL).
    witness: Witness
    #: The only signer of ledger heads, and its state outside the database.
    notary: Notary
    notary_store: FileNotaryStore
    #: Seals platform tokens at rest (AES-GCM, keys from settings).
    secretbox: SecretBox
    credentials: SealedCredentialStore
    attempts: SqlAttemptStore
    platform_apps: PlatformAppStore
    publishers: dict[str, Publisher] = field(default_factory=dict)
    password_hasher: PasswordHasher = field(default_factory=PasswordHasher)
    #: Where platform calls and connect flows may go (no internal addresses, no redirects).
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)
    #: Sends notification emails; None when no SMTP server is configured (they wait, recorded).
    mailer: SmtpMailer | None = None

    def publisher_for(self, account: Account) -> Publisher:
        """Return the adapter publishing to the account's platform."""
        try:
            return self.publishers[account.platform]
        except KeyError:
            raise LookupError(
                f"no publisher configured for platform {account.platform!r}"
            ) from None

    def dispose(self) -> None:
        """Close the database connections."""
        self.engine.dispose()


def ship_newest_checkpoint(container: Container) -> Shipment:
    """Ship the newest signed head to the configured witness(es); call it on every export.

    Never raises for a witness that is down (the failure is logged and in the result).
    """
    checkpoint = newest_checkpoint(container.services)
    if checkpoint is None or not container.witness.configured:
        return Shipment(checkpoint)
    return container.witness.ship(checkpoint)


def ship_checkpoint(container: Container) -> None:
    """Have the notary sign the current head (on demand, so the export ends signed), then ship
    the newest signed head to the witness. A notary that stopped (an alarm) or a witness that
    is down is logged, never fatal: the export goes on, and `audit verify` reports the entries
    no checkpoint covers. Shared by every surface that exports (web, API, CLI)."""
    try:
        container.notary.run_pass()
    except Exception:
        logging.getLogger("ghostpost.notary").exception("no notary pass before the export")
    ship_newest_checkpoint(container)


def timeouts(settings: Settings) -> Timeouts:
    """Return the staff web session timeouts configured in settings."""
    return Timeouts(
        idle=timedelta(minutes=settings.session_idle_minutes),
        absolute=timedelta(hours=settings.session_absolute_hours),
    )


def account_budget(account: Account) -> Budget:
    """Return the length budget of an account (its own limit, else the platform default)."""
    return budget_for(
        account.platform,
        default_segmenter(),
        limit=account.max_chars,
        url_length=account.url_length,
    )


def check_password(hasher: PasswordHasher, stored: str, password: str) -> tuple[bool, bool]:
    """Verify an argon2 hash; also tell whether it should be re-hashed with current parameters."""
    try:
        hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    return True, hasher.check_needs_rehash(stored)


def ledger_keyring(settings: Settings) -> FileKeyring:
    """Build the keyring; in production the signing key must exist now (never generated)."""
    production = settings.environment == "production"
    keyring = FileKeyring(
        settings.ledger_signing_key, settings.ledger_public_keys, generate_missing=not production
    )
    if production:
        try:
            keyring.signer()
        except LedgerKeyError as exc:
            raise SettingsError(
                f"ledger_signing_key: {exc}. Production never generates one: run "
                "`ghostpost keys generate --out DIR` and set GHOSTPOST_LEDGER_SIGNING_KEY"
            ) from None
    return keyring


#: The adapter of each platform, as `module:factory(container)`; settings.adapters overrides.
BUILTIN_ADAPTERS: dict[str, str] = {
    "bluesky": "ghostpost.adapters.bluesky:from_container",
    "mastodon": "ghostpost.adapters.mastodon:from_container",
    "x": "ghostpost.adapters.x:from_container",
}


def make_secretbox(settings: Settings) -> SecretBox:
    """Build the SecretBox from token_keys (validated by Settings), or the development key."""
    keys = parse_keys(settings.token_keys)
    if settings.environment != "production":
        # Outside production the key derived from secret_key always opens (never seals once
        # real keys are listed), so `tokens rotate` moves a dev install onto configured keys.
        dev = derived_development_key(settings.secret_key)
        if all(key_id != dev[0] for key_id, _ in keys):
            keys.append(dev)
    return SecretBox(keys)


def _load_factory(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def smtp_server(settings: Settings) -> SmtpServer:
    """The SMTP server notification emails go through (settings.smtp_*)."""
    return SmtpServer(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_from,
        starttls=settings.smtp_starttls,
        username=settings.smtp_username,
        password=settings.smtp_password,
        timeout=settings.smtp_timeout_seconds,
    )


def bootstrap(
    settings: Settings,
    clock: Clock | None = None,
    password_hasher: PasswordHasher | None = None,
    resolver: Resolver | None = None,
) -> Container:
    """Build the container; nothing connects until first use.

    `resolver` (host, port) -> addresses replaces the system's DNS for the outbound policy.
    """
    configure_logging(settings.log_format)
    clock = clock or SystemClock()
    engine = make_engine(
        settings.database_url,
        **pool_options(
            settings.database_pool_size,
            settings.export_max_concurrent,
            settings.database_pool_timeout_seconds,
        ),
    )
    sessions = make_session_factory(engine)
    # argon2-cffi's defaults: argon2id, 64 MiB, t=3, p=4 (RFC 9106 low-memory profile).
    hasher = password_hasher or PasswordHasher()
    keyring = ledger_keyring(settings)
    box = make_secretbox(settings)
    services = ServiceContext(
        uow=SqlUnitsOfWork(sessions, box),
        clock=clock,
        budget_for=account_budget,
        hash_password=hasher.hash,
        check_password=lambda stored, password: check_password(hasher, stored, password),
        seal_credentials=lambda account, secret: box.seal(
            secret, bound_to=account_binding(account)
        ),
        seal_secret=lambda bound_to, secret: box.seal(secret, bound_to=bound_to),
        open_secret=lambda bound_to, sealed: box.open(sealed, bound_to=bound_to),
        notice_lead=timedelta(minutes=settings.notice_lead_minutes),
        token_grants=GrantCache(settings.api_token_cache_seconds),
        media_files=FileMediaStore(settings.media_dir),
        clean_image=normalise,
        log=LogIdentity(settings.log_origin, settings.public_url, lambda: keyring.public_key_bytes),
        public_url=settings.public_url,
        decide_before_write_lock=engine.dialect.name == "sqlite",
    )
    store = LocalStatusStore(sessions, make_session_factory(engine, read_only=True))
    witness = Witness(settings.ledger_witness_file, settings.ledger_witness_url)
    notary_store = FileNotaryStore(settings.notary_state_file)
    notary = Notary(
        services,
        keyring,
        notary_store,
        heartbeat=timedelta(seconds=settings.ledger_heartbeat_seconds),
        origin=settings.log_origin,
    )
    container = Container(
        settings,
        clock,
        engine,
        sessions,
        services,
        store,
        keyring,
        witness,
        notary,
        notary_store,
        box,
        SealedCredentialStore(sessions, box),
        SqlAttemptStore(sessions, clock),
        PlatformAppStore(sessions, box, clock),
        {},
        hasher,
        OutboundPolicy.from_settings(settings, resolver),
    )
    container.publishers["local"] = LocalPublisher(store, settings.public_url)
    container.mailer = SmtpMailer(smtp_server(settings)) if settings.smtp_host else None
    for platform, target in {**BUILTIN_ADAPTERS, **settings.adapters}.items():
        container.publishers[platform] = _load_factory(target)(container)
    return container
