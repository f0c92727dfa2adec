"""Storage the platform adapters use: sealed credentials, OAuth apps, publish attempts.

Each call is its own short transaction: adapters run outside the worker's transactions, and an
attempt must be committed *before* the platform is called for it to survive a crash.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ghostpost.adapters.base import Attempt, NotConnected, PermanentError, PlatformApp
from ghostpost.clock import Clock
from ghostpost.db.models import AccountRow, PlatformAppRow, PublishAttemptRow
from ghostpost.domain.model import Account
from ghostpost.secretbox import SecretBox, SecretBoxError


def canonical_base_url(base_url: str | None) -> str:
    """One spelling per server: lower-case scheme and host, no default port, no trailing '/'.

    Spellings of the same server (`HTTPS://Social.Example:443/`) bind alike; any other server,
    port or scheme binds differently.
    """
    if not base_url:
        return ""
    parts = urlsplit(base_url.strip())
    scheme = parts.scheme.lower()
    netloc = parts.netloc.lower().rpartition("@")[2]
    default = {"http": ":80", "https": ":443"}.get(scheme)
    if default and netloc.endswith(default):
        netloc = netloc[: -len(default)]
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def account_binding(account: Account) -> str:
    """The associated data sealing an account's credentials: where they may be sent.

    The row id, the platform, the instance or PDS base URL and the platform's own account id:
    changing any of them in the database (`UPDATE accounts SET base_url = ...`) makes the
    credentials fail to open, so they never follow a row to another host or identity.
    """
    return json.dumps(
        [
            "ghostpost/account-credentials/v2",
            account.id,
            account.platform,
            canonical_base_url(account.base_url),
            account.remote_id or "",
        ],
        separators=(",", ":"),
    )


def app_binding(platform: str, base_url: str) -> str:
    """The associated data sealing an OAuth app's secret to its platform and instance."""
    return f"platform_app:{platform}:{base_url}"


class SealedCredentialStore:
    """CredentialStore over the accounts table, sealing with the SecretBox."""

    def __init__(self, sessions: sessionmaker[Session], box: SecretBox) -> None:
        self._sessions = sessions
        self._box = box

    def load(self, account: Account) -> dict[str, Any]:
        """Return the account's decrypted credentials; raise NotConnected if there are none."""
        with self._sessions() as session:
            sealed = session.scalar(
                select(AccountRow.credentials).where(AccountRow.id == account.id)
            )
        if sealed is None:
            raise NotConnected(
                f"{account.platform} account @{account.handle} is not connected; "
                "a manager connects it on the Accounts page"
            )
        # Bound to the account exactly as the caller will use it (the host it sends to): a row
        # whose base_url, platform or remote id was changed behind ghostpost's back opens nothing.
        binding = account_binding(account)
        try:
            return self._box.open(sealed, bound_to=binding)
        except SecretBoxError as exc:
            # Not a platform answer: a key dropped too early, or a row changed outside
            # ghostpost. Fail the post with the reason instead of retrying it forever.
            if self._box.knows_key_of(sealed):
                raise NotConnected(
                    f"the stored credentials of @{account.handle} were sealed for another "
                    f"{account.platform} server, account or row than this one now names "
                    f"({canonical_base_url(account.base_url) or 'no server'}, remote id "
                    f"{account.remote_id or 'none'}); they are not sent anywhere. "
                    "A manager reconnects the account on the Accounts page"
                ) from exc
            raise NotConnected(
                f"the stored credentials of @{account.handle} cannot be opened ({exc}); "
                "list the old key in token_keys again, or reconnect the account"
            ) from exc

    def save(self, account: Account, credentials: dict[str, Any]) -> None:
        """Replace the account's credentials, sealed."""
        with self._sessions() as session, session.begin():
            row = session.get(AccountRow, account.id)
            if row is None:
                raise NotConnected(f"account {account.id} no longer exists")
            row.credentials = self._box.seal(credentials, bound_to=account_binding(account))


class SqlAttemptStore:
    """AttemptStore over the publish_attempts table."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    def find(self, idempotency_key: str) -> Attempt | None:
        """Return the attempt recorded under this key, if any."""
        with self._sessions() as session:
            row = session.get(PublishAttemptRow, idempotency_key)
            return _attempt(row) if row is not None else None

    def record(self, account: Account, idempotency_key: str, ref: str) -> Attempt:
        """Record an attempt (committed on return), or return the one recorded first."""
        with self._sessions() as session:
            existing = session.get(PublishAttemptRow, idempotency_key)
            if existing is not None:
                return _attempt(existing)
            row = PublishAttemptRow(
                idempotency_key=idempotency_key,
                account_id=account.id,
                platform=account.platform,
                ref=ref,
                created_at=self._clock.now(),
            )
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                winner = session.get(PublishAttemptRow, idempotency_key)
                assert winner is not None
                return _attempt(winner)
            return _attempt(row)


def _account(row: AccountRow) -> Account:
    """The binding-relevant view of an account row (id, platform, base URL, remote id)."""
    return Account(
        id=row.id,
        principal_id=row.principal_id,
        platform=row.platform,
        handle=row.handle,
        remote_id=row.remote_id,
        base_url=row.base_url,
    )


def _attempt(row: PublishAttemptRow) -> Attempt:
    return Attempt(row.idempotency_key, row.account_id, row.ref, row.created_at)


class PlatformAppStore:
    """OAuth apps registered per instance, secrets sealed (the adapters' PlatformApps)."""

    def __init__(self, sessions: sessionmaker[Session], box: SecretBox, clock: Clock) -> None:
        self._sessions = sessions
        self._box = box
        self._clock = clock

    def find(self, platform: str, base_url: str) -> PlatformApp | None:
        """Return the app registered on this instance, if any."""
        with self._sessions() as session:
            row = session.scalar(
                select(PlatformAppRow).where(
                    PlatformAppRow.platform == platform, PlatformAppRow.base_url == base_url
                )
            )
            if row is None:
                return None
            try:
                secret = self._box.open(row.client_secret, bound_to=app_binding(platform, base_url))
            except SecretBoxError as exc:
                raise PermanentError(
                    f"ghostpost's stored app secret for {base_url} cannot be opened ({exc}); "
                    "an administrator removes that platform_apps row so the app is registered "
                    "again"
                ) from exc
            return PlatformApp(
                platform,
                base_url,
                row.client_id,
                secret["client_secret"],
                row.redirect_uri,
                row.scopes,
            )

    def add(self, app: PlatformApp) -> PlatformApp:
        """Store a newly registered app; if another request stored one first, return that."""
        with self._sessions() as session:
            session.add(
                PlatformAppRow(
                    platform=app.platform,
                    base_url=app.base_url,
                    client_id=app.client_id,
                    client_secret=self._box.seal(
                        {"client_secret": app.client_secret},
                        bound_to=app_binding(app.platform, app.base_url),
                    ),
                    redirect_uri=app.redirect_uri,
                    scopes=app.scopes,
                    created_at=self._clock.now(),
                )
            )
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                winner = self.find(app.platform, app.base_url)
                assert winner is not None
                return winner
        return app

    def replace(self, app: PlatformApp) -> PlatformApp:
        """Store `app` in place of the instance's app, or add it when there is none."""
        with self._sessions() as session:
            row = session.scalar(
                select(PlatformAppRow)
                .where(
                    PlatformAppRow.platform == app.platform,
                    PlatformAppRow.base_url == app.base_url,
                )
                .with_for_update()
            )
            if row is None:
                return self.add(app)
            row.client_id = app.client_id
            row.client_secret = self._box.seal(
                {"client_secret": app.client_secret},
                bound_to=app_binding(app.platform, app.base_url),
            )
            row.redirect_uri = app.redirect_uri
            row.scopes = app.scopes
            row.created_at = self._clock.now()
            session.commit()
        return app


class SqlSealedSecrets:
    """SealedSecrets inside a unit of work's session (so a rotation is one transaction)."""

    def __init__(self, session: Session, box: SecretBox) -> None:
        self.session = session
        self._box = box

    @property
    def active_key_id(self) -> str:
        """The id of the key new secrets are sealed with."""
        return self._box.active_key_id

    def reseal_all(self) -> dict[str, int]:
        """Re-encrypt every secret not yet under the active key; return counts per table."""
        box = self._box
        counts = {"accounts": 0, "platform_apps": 0}
        accounts = select(AccountRow).where(AccountRow.credentials.is_not(None))
        for row in self.session.scalars(accounts.with_for_update()):
            assert row.credentials is not None
            if box.key_id_of(row.credentials) != box.active_key_id:
                binding = account_binding(_account(row))
                row.credentials = box.seal(
                    box.open(row.credentials, bound_to=binding), bound_to=binding
                )
                counts["accounts"] += 1
        for app in self.session.scalars(select(PlatformAppRow).with_for_update()):
            if box.key_id_of(app.client_secret) != box.active_key_id:
                binding = app_binding(app.platform, app.base_url)
                app.client_secret = box.seal(
                    box.open(app.client_secret, bound_to=binding), bound_to=binding
                )
                counts["platform_apps"] += 1
        self.session.flush()
        return counts
