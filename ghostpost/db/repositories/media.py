"""Uploaded images and the images of posts (ports.MediaRepository)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from ghostpost.db.models import MediaUploadRow, PostMediaRow
from ghostpost.domain.media_rules import CleanImage, MediaUpload, PostImage
from ghostpost.services.errors import Conflict


def _upload(row: MediaUploadRow) -> MediaUpload:
    return MediaUpload(
        id=row.id,
        public_id=row.public_id,
        uploaded_by=row.uploaded_by,
        content_hash=row.content_hash,
        mime_type=row.mime_type,
        width=row.width,
        height=row.height,
        size=row.size,
        alt_text=row.alt_text,
        created_at=row.created_at,
        post_id=row.post_id,
    )


def _image(row: PostMediaRow) -> PostImage:
    return PostImage(
        position=row.position,
        content_hash=row.content_hash,
        alt_text=row.alt_text,
        mime_type=row.mime_type,
        width=row.width,
        height=row.height,
        size=row.size,
        media_id=row.media_id,
    )


class SqlMedia:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add_upload(
        self,
        *,
        public_id: str,
        uploaded_by: str,
        image: CleanImage,
        alt_text: str,
        created_at: datetime,
    ) -> MediaUpload:
        row = MediaUploadRow(
            public_id=public_id,
            uploaded_by=uploaded_by,
            content_hash=image.content_hash,
            mime_type=image.mime_type,
            width=image.width,
            height=image.height,
            size=len(image.data),
            alt_text=alt_text,
            created_at=created_at,
        )
        self.session.add(row)
        self.session.flush()
        return _upload(row)

    def get_upload(self, public_id: str) -> MediaUpload | None:
        row = self.session.scalars(
            select(MediaUploadRow).where(MediaUploadRow.public_id == public_id)
        ).one_or_none()
        return _upload(row) if row is not None else None

    def set_alt_text(self, public_id: str, alt_text: str) -> MediaUpload:
        row = self.session.scalars(
            select(MediaUploadRow).where(MediaUploadRow.public_id == public_id)
        ).one()
        row.alt_text = alt_text
        self.session.flush()
        return _upload(row)

    def attach(
        self, post_id: int, uploads: Sequence[MediaUpload], *, claim: bool = True
    ) -> tuple[PostImage, ...]:
        ids = [upload.id for upload in uploads]
        if claim:
            # Only uploads still free are taken: a concurrent create that took one first wins.
            result = self.session.execute(
                update(MediaUploadRow)
                .where(MediaUploadRow.id.in_(ids), MediaUploadRow.post_id.is_(None))
                .values(post_id=post_id)
                .execution_options(synchronize_session=False)
            )
            assert isinstance(result, CursorResult)
            if result.rowcount != len(set(ids)):
                raise Conflict("An image was attached to another post meanwhile.")
        images = tuple(
            PostImage(
                position=position,
                content_hash=upload.content_hash,
                alt_text=upload.alt_text,
                mime_type=upload.mime_type,
                width=upload.width,
                height=upload.height,
                size=upload.size,
                media_id=upload.public_id,
            )
            for position, upload in enumerate(uploads)
        )
        self.session.add_all(
            PostMediaRow(
                post_id=post_id,
                position=image.position,
                media_id=image.media_id,
                content_hash=image.content_hash,
                alt_text=image.alt_text,
                mime_type=image.mime_type,
                width=image.width,
                height=image.height,
                size=image.size,
            )
            for image in images
        )
        self.session.flush()
        return images

    def images_of(self, post_id: int) -> tuple[PostImage, ...]:
        rows = self.session.scalars(
            select(PostMediaRow)
            .where(PostMediaRow.post_id == post_id)
            .order_by(PostMediaRow.position)
        )
        return tuple(_image(row) for row in rows)

    def image_hashes(self) -> dict[int, tuple[str, ...]]:
        found: dict[int, list[str]] = {}
        rows = self.session.execute(
            select(PostMediaRow.post_id, PostMediaRow.content_hash).order_by(
                PostMediaRow.post_id, PostMediaRow.position
            )
        )
        for post_id, content_hash in rows:
            found.setdefault(post_id, []).append(content_hash)
        return {post_id: tuple(hashes) for post_id, hashes in found.items()}

    def purge_unattached(self, created_before: datetime) -> int:
        result = self.session.execute(
            delete(MediaUploadRow).where(
                MediaUploadRow.post_id.is_(None), MediaUploadRow.created_at < created_before
            )
        )
        assert isinstance(result, CursorResult)
        return int(result.rowcount)
