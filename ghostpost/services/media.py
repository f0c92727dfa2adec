"""Use cases for images before they are attached: upload, describe, read, purge.

An upload is decoded and re-encoded without metadata (ServiceContext.clean_image) before any
byte is stored; refused files store nothing. Only the uploader (the same API client, or the
same staff user) may see, describe or attach an upload.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from ghostpost.domain.media_rules import MAX_ANY_ALT_TEXT, ImageRefused, MediaUpload
from ghostpost.domain.model import User
from ghostpost.domain.states import PostState
from ghostpost.services import clients, mastodon_apps
from ghostpost.services.context import Actor, ServiceContext
from ghostpost.services.errors import Conflict, NotFound, ValidationFailed, text_problem

#: Uploads never attached to a post are purged after this long.
UNATTACHED_RETENTION = timedelta(days=1)


def check_alt_text(alt_text: str, field: str = "description") -> str:
    """Refuse alt text no platform takes or no page can show; return it without outer space."""
    if len(alt_text) > MAX_ANY_ALT_TEXT:
        raise ValidationFailed(
            f"The {field} is longer than any platform takes ({MAX_ANY_ALT_TEXT} characters).",
            {field: "too long"},
        )
    problem = text_problem(alt_text)
    if problem is not None:
        raise ValidationFailed(f"The {field} {problem}.", {field: problem})
    return alt_text.strip()


def _uploader(actor: Actor) -> str:
    if not (actor.ref.startswith("client:") or actor.ref.startswith("user:")):
        raise ValidationFailed("Only staff users and API clients upload images.", {})
    return actor.ref


def upload_media(ctx: ServiceContext, actor: Actor, data: bytes, description: str) -> MediaUpload:
    """Clean and store an image; refused files (not an image, an SVG, a bomb) store nothing."""
    uploader = _uploader(actor)
    alt_text = check_alt_text(description)
    assert ctx.clean_image is not None and ctx.media_files is not None
    try:
        image = ctx.clean_image(data)
    except ImageRefused as refused:
        raise ValidationFailed(f"The file is refused: {refused}.", {"file": str(refused)}) from None
    # The bytes first: a row never names a file that is not there (an unused file is harmless,
    # and the same image uploaded again is the same file).
    ctx.media_files.put(image.data)
    with ctx.uow() as uow:
        upload = uow.media.add_upload(
            public_id=secrets.token_urlsafe(18),
            uploaded_by=uploader,
            image=image,
            alt_text=alt_text,
            created_at=ctx.clock.now(),
        )
        uow.commit()
    return upload


def _own_upload(upload: MediaUpload | None, actor: Actor, public_id: str) -> MediaUpload:
    # Another uploader's image answers as a missing one: ids are not confirmed to strangers.
    if upload is None or upload.uploaded_by != actor.ref:
        raise NotFound(f"No image {public_id}.")
    return upload


def get_media(ctx: ServiceContext, actor: Actor, public_id: str) -> MediaUpload:
    """Return one of the actor's uploads."""
    with ctx.uow(read_only=True) as uow:
        return _own_upload(uow.media.get_upload(public_id), actor, public_id)


def media_bytes(
    ctx: ServiceContext, public_id: str, *, signed_in: User | None, bearer: str | None
) -> tuple[bytes, str]:
    """An upload's bytes (verified against their hash) and type, by its unguessable id: what
    the Mastodon face's media URLs and the composer's thumbnails show.

    To anyone, as Mastodon serves media files without a token, once its post is published;
    never again once the principal had that post deleted from the platform. Before (a draft's
    image, a post still queued or awaiting approval): only to its uploader, the staff user
    `signed_in` or the holder of the `bearer` token that uploaded it.
    """
    with ctx.uow(read_only=True) as uow:
        upload = uow.media.get_upload(public_id)
        post = uow.posts.get(upload.post_id) if upload and upload.post_id is not None else None
    if upload is None or ctx.media_files is None:
        raise NotFound(f"No image {public_id}.")
    if post is not None and (post.deletion_requested_at is not None or post.deleted_at):
        raise NotFound(f"No image {public_id}.")
    public = post is not None and post.state is PostState.PUBLISHED
    if not public and upload.uploaded_by not in _viewer_refs(ctx, signed_in, bearer):
        # Answered as a missing image: ids are not confirmed to strangers.
        raise NotFound(f"No image {public_id}.")
    return ctx.media_files.read(upload.content_hash), upload.mime_type


def _viewer_refs(ctx: ServiceContext, signed_in: User | None, bearer: str | None) -> set[str]:
    """Who the request shows it is, as uploads name their uploader (`user:<id>`,
    `client:<client id>`): a signed-in staff user, a scheduler's token, a Mastodon app's."""
    refs = set()
    if signed_in is not None and signed_in.is_active:
        refs.add(f"user:{signed_in.id}")
    if bearer:
        if bearer.startswith(mastodon_apps.TOKEN_PREFIX):
            grant = mastodon_apps.resolve_bearer(
                ctx, bearer.removeprefix(mastodon_apps.TOKEN_PREFIX)
            )
            if grant is not None and grant.user is not None:
                refs.add(f"user:{grant.user.id}")
        else:
            token = clients.resolve_token(ctx, bearer)
            if token is not None:
                refs.add(f"client:{token.client.client_id}")
    return refs


def describe_media(
    ctx: ServiceContext, actor: Actor, public_id: str, description: str
) -> MediaUpload:
    """Set an upload's alt text; once attached, it is what was approved and is not changed."""
    alt_text = check_alt_text(description)
    with ctx.uow() as uow:
        upload = _own_upload(uow.media.get_upload(public_id), actor, public_id)
        if upload.post_id is not None:
            raise Conflict("This image is attached to a post; its description is fixed.")
        changed = uow.media.set_alt_text(public_id, alt_text)
        uow.commit()
    return changed


def purge_unattached(ctx: ServiceContext, older_than: timedelta = UNATTACHED_RETENTION) -> int:
    """Delete uploads never attached that are older than `older_than`; return how many. The
    files stay (another upload or a post may share their hash)."""
    with ctx.uow() as uow:
        removed = uow.media.purge_unattached(ctx.clock.now() - older_than)
        uow.commit()
    return removed
