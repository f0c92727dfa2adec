"""Storage of the `local` platform: a tiny social network living in ghostpost's own database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ghostpost.adapters.local import LocalImage, LocalStatus
from ghostpost.db.engine import connection_of, read_one_prepared
from ghostpost.db.models import LocalStatusRow
from ghostpost.db.repositories.rows import table_of
from ghostpost.domain.post_options import PLAIN, PostOptions


def _to_status(row: LocalStatusRow) -> LocalStatus:
    return LocalStatus(
        id=row.id,
        handle=row.handle,
        text=row.text,
        created_at=row.created_at,
        content_warning=row.content_warning,
        visibility=row.visibility,
        language=row.language,
        sensitive=row.sensitive,
        media=tuple(
            LocalImage(m["hash"], m["alt"], m["mime"], m["width"], m["height"])
            for m in row.media or ()
        ),
        in_reply_to_id=row.in_reply_to_id,
    )


_STATUSES = table_of(LocalStatusRow)
_STATUS_KEYS = tuple(column.key for column in _STATUSES.c)
#: The status created under :key (the platform's dedupe, asked before every create).
_BY_KEY = select(*_STATUSES.c).where(
    _STATUSES.c.idempotency_key == bindparam("key", type_=_STATUSES.c.idempotency_key.type)
)
_INSERT_STATUS = insert(_STATUSES).returning(_STATUSES.c.id)


class LocalStatusStore:
    """Creates and reads local statuses, each in its own short transaction.

    Reads go through `read_sessions` (deferred, read-only transactions) when given, so a public
    timeline never waits for the write lock another request holds.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        read_sessions: sessionmaker[Session] | None = None,
    ) -> None:
        self._sessions = session_factory
        self._reads = read_sessions or session_factory

    def create(
        self,
        handle: str,
        text: str,
        idempotency_key: str,
        options: PostOptions = PLAIN,
        media: Sequence[LocalImage] = (),
        in_reply_to_id: int | None = None,
    ) -> LocalStatus:
        """Create a status, or return the one already created under this key (as it was: a
        retry's options do not change a status already out). A reply's target must exist
        (ValueError otherwise), as on Mastodon."""
        with self._sessions() as session:
            existing = self._by_key(session, idempotency_key)
            if existing is not None:
                return existing
            _check_reply_target(session, in_reply_to_id)
            values: dict[str, Any] = {
                "handle": handle,
                "text": text,
                "idempotency_key": idempotency_key,
                "created_at": datetime.now(UTC),
                "content_warning": options.content_warning,
                "visibility": options.visibility,
                "language": options.language,
                "sensitive": options.sensitive,
                "media": [
                    {
                        "hash": m.content_hash,
                        "alt": m.alt_text,
                        "mime": m.mime_type,
                        "width": m.width,
                        "height": m.height,
                    }
                    for m in media
                ],
                "in_reply_to_id": in_reply_to_id,
            }
            try:
                # One prebuilt INSERT (the worker publishes every local post through here):
                # the ORM's flush of one row costs several times the statement.
                inserted = read_one_prepared(connection_of(session), _INSERT_STATUS, values)
                session.commit()
            except IntegrityError:
                # A concurrent create with the same key won: answer with its status.
                session.rollback()
                found = self._by_key(session, idempotency_key)
                assert found is not None
                return found
            assert inserted is not None
            return _to_status(SimpleNamespace(id=inserted[0], **values))  # type: ignore[arg-type]

    def find(self, idempotency_key: str) -> LocalStatus | None:
        """Return the status created under this key, if any."""
        with self._reads() as session:
            return self._by_key(session, idempotency_key)

    def delete(self, handle: str, status_id: int) -> bool:
        """Remove one status of a handle; False when it is not there (already removed)."""
        with self._sessions() as session:
            row = session.get(LocalStatusRow, status_id)
            if row is None or row.handle != handle:
                return False
            session.delete(row)
            session.commit()
            return True

    def get(self, handle: str, status_id: int) -> LocalStatus | None:
        """Return one status of a handle."""
        with self._reads() as session:
            row = session.get(LocalStatusRow, status_id)
            return _to_status(row) if row is not None and row.handle == handle else None

    def timeline(
        self, handle: str, limit: int = 50, before: int | None = None
    ) -> list[LocalStatus]:
        """Return a handle's statuses, newest first."""
        with self._reads() as session:
            query = select(LocalStatusRow).where(LocalStatusRow.handle == handle)
            if before is not None:
                query = query.where(LocalStatusRow.id < before)
            rows = session.scalars(query.order_by(LocalStatusRow.id.desc()).limit(limit))
            return [_to_status(r) for r in rows]

    @staticmethod
    def _by_key(session: Session, key: str) -> LocalStatus | None:
        found = read_one_prepared(connection_of(session), _BY_KEY, {"key": key})
        if found is None:
            return None
        return _to_status(SimpleNamespace(**dict(zip(_STATUS_KEYS, found, strict=True))))  # type: ignore[arg-type]


def _check_reply_target(session: Session, in_reply_to_id: int | None) -> None:
    """Refuse a reply to a status the local platform does not have (Mastodon answers 404)."""
    if in_reply_to_id is not None and session.get(LocalStatusRow, in_reply_to_id) is None:
        raise ValueError(f"the local status {in_reply_to_id} answered does not exist")
