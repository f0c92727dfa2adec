"""Mastodon apps, their authorization codes and their tokens (all secrets stored hashed)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from ghostpost.db.models import MastodonAppRow, MastodonAuthCodeRow, MastodonTokenRow
from ghostpost.domain.model import MastodonApp, MastodonAuthCode, MastodonToken


def _scope_text(scopes: Collection[str]) -> str:
    return " ".join(sorted(set(scopes)))


def _app(row: MastodonAppRow) -> MastodonApp:
    return MastodonApp(
        id=row.id,
        client_id=row.client_id,
        name=row.name,
        website=row.website,
        redirect_uris=tuple(row.redirect_uris.split("\n")),
        scopes=frozenset(row.scopes.split()),
        created_at=row.created_at,
    )


def _code(row: MastodonAuthCodeRow) -> MastodonAuthCode:
    return MastodonAuthCode(
        id=row.id,
        app_id=row.app_id,
        user_id=row.user_id,
        account_id=row.account_id,
        redirect_uri=row.redirect_uri,
        scopes=frozenset(row.scopes.split()),
        code_challenge=row.code_challenge,
        code_challenge_method=row.code_challenge_method,
        expires_at=row.expires_at,
        used_at=row.used_at,
    )


def _token(row: MastodonTokenRow) -> MastodonToken:
    return MastodonToken(
        id=row.id,
        app_id=row.app_id,
        user_id=row.user_id,
        account_id=row.account_id,
        scopes=frozenset(row.scopes.split()),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class SqlMastodonApps:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add_app(
        self,
        *,
        client_id: str,
        secret_hash: str,
        name: str,
        website: str | None,
        redirect_uris: Sequence[str],
        scopes: Collection[str],
        created_at: datetime,
    ) -> MastodonApp:
        row = MastodonAppRow(
            client_id=client_id,
            secret_hash=secret_hash,
            name=name,
            website=website,
            redirect_uris="\n".join(redirect_uris),
            scopes=_scope_text(scopes),
            created_at=created_at,
        )
        self.session.add(row)
        self.session.flush()
        return _app(row)

    def app(self, app_id: int) -> MastodonApp | None:
        row = self.session.get(MastodonAppRow, app_id)
        return _app(row) if row else None

    def app_by_client_id(self, client_id: str) -> tuple[MastodonApp, str] | None:
        row = self.session.scalar(
            select(MastodonAppRow).where(MastodonAppRow.client_id == client_id)
        )
        return (_app(row), row.secret_hash) if row else None

    def add_code(
        self,
        *,
        code_hash: str,
        app_id: int,
        user_id: int,
        account_id: int,
        redirect_uri: str,
        scopes: Collection[str],
        code_challenge: str | None,
        code_challenge_method: str | None,
        created_at: datetime,
        expires_at: datetime,
    ) -> MastodonAuthCode:
        row = MastodonAuthCodeRow(
            code_hash=code_hash,
            app_id=app_id,
            user_id=user_id,
            account_id=account_id,
            redirect_uri=redirect_uri,
            scopes=_scope_text(scopes),
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            created_at=created_at,
            expires_at=expires_at,
        )
        self.session.add(row)
        self.session.flush()
        return _code(row)

    def code_by_hash(self, code_hash: str) -> MastodonAuthCode | None:
        row = self.session.scalar(
            select(MastodonAuthCodeRow).where(MastodonAuthCodeRow.code_hash == code_hash)
        )
        return _code(row) if row else None

    def use_code(self, code_id: int, at: datetime) -> bool:
        """Mark the code used unless it already was: one UPDATE, so two concurrent exchanges
        cannot both succeed."""
        result = self.session.execute(
            update(MastodonAuthCodeRow)
            .where(MastodonAuthCodeRow.id == code_id, MastodonAuthCodeRow.used_at.is_(None))
            .values(used_at=at)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    def purge_codes(self, expired_before: datetime) -> int:
        result = self.session.execute(
            delete(MastodonAuthCodeRow).where(MastodonAuthCodeRow.expires_at < expired_before)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount

    def add_token(
        self,
        *,
        token_hash: str,
        app_id: int,
        user_id: int | None,
        account_id: int | None,
        scopes: Collection[str],
        created_at: datetime,
    ) -> MastodonToken:
        row = MastodonTokenRow(
            token_hash=token_hash,
            app_id=app_id,
            user_id=user_id,
            account_id=account_id,
            scopes=_scope_text(scopes),
            created_at=created_at,
        )
        self.session.add(row)
        self.session.flush()
        return _token(row)

    def token_by_hash(self, token_hash: str) -> MastodonToken | None:
        row = self.session.scalar(
            select(MastodonTokenRow).where(MastodonTokenRow.token_hash == token_hash)
        )
        return _token(row) if row else None

    def token(self, token_id: int) -> MastodonToken | None:
        row = self.session.get(MastodonTokenRow, token_id)
        return _token(row) if row else None

    def revoke_token(self, token_id: int, at: datetime) -> bool:
        result = self.session.execute(
            update(MastodonTokenRow)
            .where(MastodonTokenRow.id == token_id, MastodonTokenRow.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    def tokens_of_user(self, user_id: int) -> list[MastodonToken]:
        rows = self.session.scalars(
            select(MastodonTokenRow)
            .where(MastodonTokenRow.user_id == user_id, MastodonTokenRow.revoked_at.is_(None))
            .order_by(MastodonTokenRow.id)
        )
        return [_token(r) for r in rows]

    def counts(self) -> tuple[int, int]:
        codes = self.session.scalar(select(func.count()).select_from(MastodonAuthCodeRow))
        tokens = self.session.scalar(select(func.count()).select_from(MastodonTokenRow))
        return int(codes or 0), int(tokens or 0)
