"""Marshmallow schemas of /api/v1: what requests may hold (unknown fields are refused) and what
responses hold (documented in the OpenAPI document from these same classes)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import marshmallow as ma
from marshmallow import fields, validate

from ghostpost.domain.policy import (
    Deferred,
    Outcome,
    PostKind,
    ReminderMode,
    ReminderOutcome,
    ReplyPolicy,
    Stage,
    TagMode,
    TagOutcome,
    TagPosition,
)
from ghostpost.domain.states import PostState
from ghostpost.domain.threads import MAX_THREAD_PARTS
from ghostpost.services.api_queries import MAX_PAGE_SIZE
from ghostpost.services.errors import text_problem
from ghostpost.services.groups import MAX_GROUP_ACCOUNTS
from ghostpost.services.posts import MAX_TEXT_CODE_POINTS

#: Ids beyond this do not fit the databases' integers: no such object.
MAX_ID = 2**63 - 1
#: RFC 3339 date-time, with or without its offset (which then comes from `timezone`).
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?$"
)
_PUBLIC_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_public_id(value: str) -> bool:
    """Tell whether `value` has the shape of a post id (a lowercase UUID)."""
    return _PUBLIC_ID.match(value) is not None


@cache
def time_zones() -> frozenset[str]:
    """Return the IANA time zone names ghostpost knows."""
    return frozenset(available_timezones())


def _enum(values: Any) -> validate.OneOf:
    return validate.OneOf([v.value for v in values])


class Text(fields.String):
    """A string that databases store and platforms show as given: no control character but
    tab and line breaks, no lone surrogate, no bidi control left open (`text_problem`)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        problem = text_problem(text)
        if problem is not None:
            raise ma.ValidationError(problem[:1].upper() + problem[1:] + ".")
        return text


class Strict(ma.Schema):
    """Requests: unknown fields are errors, not silently dropped."""

    class Meta:
        unknown = ma.RAISE


# ---------------------------------------------------------------------------------------------
# Requests


class PostRequestSchema(Strict):
    """A post to submit (or preview) on one of the client's accounts."""

    account = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={
            "description": "Id of the account (see GET /api/v1/accounts). Give either "
            "`account` or `accounts`.",
            "example": 1,
        },
    )
    accounts = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID)),
        validate=validate.Length(min=1, max=MAX_GROUP_ACCOUNTS),
        metadata={
            "description": "Ids of several accounts of one principal, instead of `account`: "
            "one post per account, each decided by its own account's policy, made all or "
            "nothing and linked by a group id. An account given twice, accounts of two "
            "principals, or any account that refuses (named in the problem) store nothing.",
            "example": [1, 2],
        },
    )
    text = Text(
        required=True,
        validate=validate.Length(max=MAX_TEXT_CODE_POINTS),
        metadata={
            "description": "The text as the writer wrote it; ghostpost adds the disclosure.",
            "example": "Day two: the keynote starts at 10.",
        },
    )
    author = Text(
        required=True,
        validate=validate.Length(min=3, max=320),
        metadata={
            "description": "Email of the human who wrote the text: one of the authors this "
            "client was granted, assigned to the account (the principal only through a client "
            "the principal's own user owns). Never the client itself. Any other email is 422 "
            "with the same answer, whether or not such a user exists.",
            "example": "jordan@demo.ghostpost.test",
        },
    )
    publish_at = Text(
        allow_none=True,
        validate=validate.Length(max=40),
        metadata={
            "description": "When to publish; absent or null means now. RFC 3339 with an offset "
            "(`2026-11-21T16:00:00+01:00`, `...Z`), or a local time without offset plus "
            "`timezone`. A local time that a clock change skips or repeats is refused.",
            "example": "2026-11-21T16:00:00+01:00",
        },
    )
    timezone = Text(
        allow_none=True,
        validate=validate.Length(max=64),
        metadata={
            "description": "IANA time zone of a `publish_at` given without offset; not allowed "
            "together with an offset.",
            "example": "Europe/Paris",
        },
    )
    in_reply_to = Text(
        allow_none=True,
        validate=validate.Length(min=1, max=200),
        metadata={
            "description": "The post this one answers, published as a real reply: the id of a "
            "ghostpost post published on the same account, or a post id on the account's own "
            "platform (answering someone else's post). A post ghostpost published on another "
            "account is refused. A reply goes through the same disclosure policy as any post.",
        },
    )

    thread = fields.List(
        Text(validate=validate.Length(min=1, max=MAX_TEXT_CODE_POINTS)),
        validate=validate.Length(min=1, max=MAX_THREAD_PARTS - 1),
        metadata={
            "description": "Makes the post a thread: the parts that follow `text` (its first "
            "part), in order. Each part is its own post with its own ledger entries, published "
            "as a reply to the part before, in order, with no other post of the account in "
            "between. The budget is per part; the tag goes on the first part (on every part "
            "when the window says `tag_every_part`); every part counts toward the reminder "
            "cadence, and a reminder due inside the thread goes out before it, so a thread has "
            "at most N - 1 parts in a window with a reminder every N posts.",
            "example": ["Second part.", "Third part."],
        },
    )
    media_ids = fields.List(
        Text(validate=validate.Length(min=1, max=64)),
        validate=validate.Length(max=10),
        metadata={
            "description": "Images to attach, in order: ids from `POST /api/v1/media` that this "
            "client uploaded and no post has taken yet. Each needs a description (alt text) "
            "unless the window relaxes it for delegated posts; the count, size, format and "
            "dimensions must suit the account's platform.",
        },
    )

    @ma.validates_schema
    def _one_way_to_name_accounts(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "account" in data and "accounts" in data:
            message = "Give either account or accounts, not both."
            raise ma.ValidationError({"account": [message], "accounts": [message]})
        if "account" not in data and "accounts" not in data:
            raise ma.ValidationError(
                {"account": ["Missing data for required field (or give accounts)."]}
            )

    @ma.post_load
    def _resolve_time(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["publish_at"] = resolve_publish_at(data.get("publish_at"), data.get("timezone"))
        data.pop("timezone", None)
        return data


def resolve_publish_at(raw: str | None, zone_name: str | None) -> datetime | None:
    """Turn `publish_at` (+ `timezone`) into an aware UTC datetime, or raise ValidationError."""
    if raw is None:
        if zone_name is not None:
            raise ma.ValidationError("Only used with a publish_at without offset.", "timezone")
        return None
    found = _DATE_TIME.match(raw)
    if not found:
        raise ma.ValidationError(
            "Not an RFC 3339 date-time (YYYY-MM-DDTHH:MM:SS, then Z, an offset, or nothing "
            "plus timezone).",
            "publish_at",
        )
    try:
        parsed = datetime.fromisoformat(raw.upper())
    except ValueError:
        raise ma.ValidationError("Not a valid date or time.", "publish_at") from None
    if found.group("offset"):
        if zone_name is not None:
            raise ma.ValidationError(
                "Give either an offset in publish_at or a timezone, not both.", "timezone"
            )
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise ma.ValidationError("Out of range.", "publish_at") from None
    if zone_name is None:
        raise ma.ValidationError(
            "A publish_at without offset needs a timezone (IANA name, e.g. Europe/Paris).",
            "timezone",
        )
    if zone_name not in time_zones():
        raise ma.ValidationError("Unknown time zone; use an IANA name.", "timezone")
    zone = ZoneInfo(zone_name)
    try:
        early = parsed.replace(tzinfo=zone, fold=0).astimezone(UTC)
        late = parsed.replace(tzinfo=zone, fold=1).astimezone(UTC)
    except OverflowError:
        raise ma.ValidationError("Out of range.", "publish_at") from None
    if early != late:
        # Skipped (spring forward) or repeated (fall back): no single instant is meant.
        skipped = early.astimezone(zone).replace(tzinfo=None) != parsed
        what = "does not exist" if skipped else "happens twice"
        raise ma.ValidationError(
            f"{raw} {what} in {zone_name} (clock change); give an offset.", "publish_at"
        )
    return early


class PostListQuerySchema(Strict):
    """Filters and paging of GET /api/v1/posts."""

    account = fields.Integer(
        validate=validate.Range(min=1, max=MAX_ID), metadata={"description": "Account id."}
    )
    state = fields.String(validate=_enum(PostState), metadata={"description": "Post state."})
    window = fields.Integer(
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"description": "Delegation window id."},
    )
    author = Text(
        validate=validate.Length(min=1, max=320),
        metadata={"description": "Email of the writer."},
    )
    cursor = Text(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "The `next` value of the previous page."},
    )
    limit = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
        metadata={"description": f"Posts per page (1-{MAX_PAGE_SIZE})."},
    )


class WindowListQuerySchema(Strict):
    """Filter of GET /api/v1/windows."""

    account = fields.Integer(
        validate=validate.Range(min=1, max=MAX_ID), metadata={"description": "Account id."}
    )


# ---------------------------------------------------------------------------------------------
# Responses


class AccountSchema(ma.Schema):
    """One social account of a principal."""

    id = fields.Integer(required=True)
    platform = fields.String(required=True, metadata={"example": "local"})
    handle = fields.String(required=True, metadata={"example": "avery"})


class AuthorSchema(ma.Schema):
    """The human who wrote a post."""

    email = fields.String(required=True)
    name = fields.String(required=True)


class TagDecisionSchema(ma.Schema):
    """What happened to the tag; `needs`/`has` are set when it was skipped for lack of room."""

    outcome = fields.String(required=True, validate=_enum(TagOutcome))
    tag = fields.String(required=True)
    needs = fields.Integer(required=True, allow_none=True)
    has = fields.Integer(required=True, allow_none=True)
    unit = fields.String(required=True, allow_none=True)
    summary = fields.String(required=True, metadata={"example": "#team added"})


class ReminderDecisionSchema(ma.Schema):
    """Whether the post carries (inline) or follows (standalone) a reminder."""

    outcome = fields.String(required=True, validate=_enum(ReminderOutcome))
    reason = fields.String(required=True)


class LengthSchema(ma.Schema):
    """The binding length measurement of the final text."""

    used = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    unit = fields.String(required=True)


class RefusalSchema(ma.Schema):
    """Why the policy refuses a post; the message says how much to cut when that helps."""

    code = fields.String(required=True)
    message = fields.String(required=True)


class DecisionsSchema(ma.Schema):
    """The disclosure decisions, as stored with the post and in the ledger: the latest ones
    (at publication once the post went out, else at submission; none for notices and
    reminders, which are disclosures themselves)."""

    stage = fields.String(required=True, allow_none=True, validate=_enum(Stage))
    outcome = fields.String(required=True, allow_none=True, validate=_enum(Outcome))
    delegated = fields.Boolean(required=True)
    tag = fields.Nested(TagDecisionSchema, required=True)
    reminder = fields.Nested(ReminderDecisionSchema, required=True)
    held_reason = fields.String(required=True, allow_none=True)
    length = fields.Nested(LengthSchema, required=True, allow_none=True)
    refusal = fields.Nested(RefusalSchema, required=True, allow_none=True)
    notes = fields.List(fields.String(), required=True)


# No text is called final before it is sent: the worker decides the tag, the reminder and the
# notice hold again when the post goes out (DESIGN.md §3).
def _text_if_published_now_field() -> fields.String:
    return fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "The text as it would go out if the post were published now, as the "
            "next post on the account (tag and, if one would be due now, the inline reminder "
            "included). Not final: see `decided_at_publication`. Null when it would not go "
            "out (refused, cancelled) or is already published (see `published_text`)."
        },
    )


def _decided_at_publication_field() -> fields.List:
    return fields.List(
        fields.String(validate=_enum(Deferred)),
        required=True,
        metadata={
            "description": "The decisions the worker takes again when the post goes out "
            "(`tag`, `reminder`, `notice_hold`); empty once nothing can change."
        },
    )


def _decided_at_publication_note_field() -> fields.String:
    return fields.String(
        required=True,
        metadata={"description": "`decided_at_publication` in one sentence, for people."},
    )


class PostLinksSchema(ma.Schema):
    """Where to read and cancel the post."""

    self = fields.String(required=True)
    cancel = fields.String(required=True)


class ThreadPlaceSchema(ma.Schema):
    """A thread part's place: the thread's id (its first part's id), position and length."""

    id = fields.String(required=True)
    position = fields.Integer(required=True)
    parts = fields.Integer(required=True)


class PartPreviewSchema(ma.Schema):
    """One part of a thread as a dry run sees it."""

    position = fields.Integer(required=True)
    accepted = fields.Boolean(required=True)
    text_if_published_now = _text_if_published_now_field()
    decisions = fields.Nested(DecisionsSchema, required=True)


class PostImageSchema(ma.Schema):
    """One image of a post, as approved and sent."""

    media_id = fields.String(required=True)
    content_hash = fields.String(required=True)
    description = fields.String(required=True)
    mime_type = fields.String(required=True)
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)


class PostSchema(ma.Schema):
    """A post as ghostpost keeps it."""

    id = fields.String(required=True, metadata={"description": "The post's public id (UUID)."})
    kind = fields.String(required=True, validate=_enum(PostKind))
    state = fields.String(required=True, validate=_enum(PostState))
    state_reason = fields.String(required=True, allow_none=True)
    approval_reasons = fields.List(
        fields.String(),
        required=True,
        metadata={
            "description": "Why the post waits for the principal's approval beyond its "
            "window's rule (watched hashtag or term, first use of a hashtag, a reply)."
        },
    )
    account = fields.Nested(AccountSchema, required=True)
    author = fields.Nested(AuthorSchema, required=True)
    submitter = fields.String(required=True, metadata={"example": "client:Ab3dEf..."})
    source = fields.String(required=True, metadata={"example": "api"})
    submitted_text = fields.String(required=True)
    text_if_published_now = _text_if_published_now_field()
    decided_at_publication = _decided_at_publication_field()
    decided_at_publication_note = _decided_at_publication_note_field()
    published_text = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "Exactly the text the platform received; null until the post is "
            "published."
        },
    )
    publish_at = fields.DateTime(required=True, allow_none=True)
    published_at = fields.DateTime(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    window = fields.Integer(required=True, allow_none=True)
    platform_url = fields.String(required=True, allow_none=True)
    in_reply_to = fields.String(required=True, allow_none=True)
    group = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "The id of the group this post was made in with others (one "
            "request for several `accounts`); null for a post made alone."
        },
    )
    images = fields.List(
        fields.Nested(PostImageSchema),
        metadata={
            "description": "The post's images in order (on a create with images and on a read "
            "of one post; the post list leaves them out)."
        },
    )
    thread = fields.Nested(
        ThreadPlaceSchema,
        required=True,
        allow_none=True,
        metadata={"description": "Where the post is in its thread; null for a lone post."},
    )
    decisions = fields.Nested(DecisionsSchema, required=True)
    links = fields.Nested(PostLinksSchema, required=True)


class PostPageSchema(ma.Schema):
    """One page of posts, newest first."""

    items = fields.List(fields.Nested(PostSchema), required=True)
    next = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Pass as `cursor` for the next page; null on the last page."},
    )


class PreviewSchema(ma.Schema):
    """A dry run: what would be published, and the decisions, without storing anything."""

    accepted = fields.Boolean(
        required=True, metadata={"description": "False when the policy would refuse the post."}
    )
    account = fields.Nested(AccountSchema, required=True)
    author = fields.Nested(AuthorSchema, required=True)
    window = fields.Integer(required=True, allow_none=True)
    publish_at = fields.DateTime(required=True, allow_none=True)
    text_if_published_now = _text_if_published_now_field()
    decided_at_publication = _decided_at_publication_field()
    decided_at_publication_note = _decided_at_publication_note_field()
    decisions = fields.Nested(DecisionsSchema, required=True)
    parts = fields.List(
        fields.Nested(PartPreviewSchema),
        allow_none=True,
        metadata={
            "description": "A thread's parts, each with its own text and decisions "
            "(the top-level fields are its first part's); absent for a lone post."
        },
    )


class PostGroupSchema(ma.Schema):
    """The posts one request made for several accounts (`accounts`), one per account in the
    order given, linked by the group's id."""

    id = fields.String(required=True, metadata={"description": "The group's id (unguessable)."})
    posts = fields.List(fields.Nested(PostSchema), required=True)


class PreviewGroupSchema(ma.Schema):
    """A dry run for several accounts: one preview per account, in the order given."""

    items = fields.List(fields.Nested(PreviewSchema), required=True)


class AccountListSchema(ma.Schema):
    """The client's accounts."""

    items = fields.List(fields.Nested(AccountSchema), required=True)


class PendingChangeSchema(ma.Schema):
    """A proposed policy change: field -> {"old": ..., "new": ...}."""

    proposed_at = fields.DateTime(required=True)
    changes = fields.Dict(keys=fields.String(), values=fields.Dict(), required=True)


class WindowSchema(ma.Schema):
    """A delegation window and its disclosure policy."""

    id = fields.Integer(required=True)
    account = fields.Integer(required=True)
    name = fields.String(required=True)
    starts_at = fields.DateTime(required=True)
    ends_at = fields.DateTime(required=True)
    notice_text = fields.String(required=True)
    notice_published_at = fields.DateTime(required=True, allow_none=True)
    notice_publish_at = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={"description": "When the notice goes out once approved (never earlier)."},
    )
    notice_approved_at = fields.DateTime(required=True, allow_none=True)
    pending_change = fields.Nested(
        PendingChangeSchema,
        required=True,
        allow_none=True,
        metadata={
            "description": "A change that weakens the policy and waits for the principal; the "
            "fields above stay in force until the principal approves it."
        },
    )
    reminder_every = fields.Integer(required=True)
    reminder_text = fields.String(required=True)
    reminder_mode = fields.String(required=True, validate=_enum(ReminderMode))
    tag = fields.String(required=True)
    tag_mode = fields.String(required=True, validate=_enum(TagMode))
    tag_position = fields.String(required=True, validate=_enum(TagPosition))
    requires_approval = fields.Boolean(required=True)
    tag_every_part = fields.Boolean(
        required=True,
        metadata={"description": "A thread's later parts carry the tag too (else only its first)."},
    )
    reason = fields.String(
        required=True, metadata={"description": "Why the account is handed over (public)."}
    )
    kind = fields.String(
        required=True,
        validate=validate.OneOf(["delegation", "away"]),
        metadata={
            "description": "`away`: an away notice (a notice and no delegated posting; "
            "delegated posts for its period are refused with `away_window`)."
        },
    )
    reply_policy = fields.String(
        required=True,
        validate=_enum(ReplyPolicy),
        metadata={
            "description": "Delegated replies submitted through the API or the Mastodon face: "
            "`approve` (the principal approves each), `allow` or `refuse` (422 "
            "`replies_refused`, nothing stored)."
        },
    )


class GuardsSchema(ma.Schema):
    """A principal's guards: delegated posts that trip one wait for the principal's approval."""

    principal = fields.Integer(dump_only=True)
    watched = fields.List(
        fields.String(),
        required=True,
        metadata={
            "description": "Watched hashtags (`#layoffs`, as the platform extracts hashtags) "
            "and terms (whole words, case-insensitive). Removing one is the principal's alone."
        },
    )
    first_use_hashtags = fields.Boolean(
        required=True,
        metadata={
            "description": "A hashtag the account never used in a published post waits for "
            "approval. Turning it off is the principal's alone."
        },
    )


class WindowListSchema(ma.Schema):
    """Delegation windows, latest start first."""

    items = fields.List(fields.Nested(WindowSchema), required=True)


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem (`application/problem+json`)."""

    class Meta:
        unknown = ma.INCLUDE

    type = fields.String(
        required=True, metadata={"example": "urn:ghostpost:problem:validation_failed"}
    )
    code = fields.String(metadata={"example": "validation_failed"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Field name -> messages (validation problems)."},
    )
    refusal = fields.Nested(RefusalSchema, metadata={"description": "Policy refusals."})


class MediaSchema(ma.Schema):
    """An uploaded image."""

    id = fields.String(required=True, metadata={"description": "Unguessable id for media_ids."})
    content_hash = fields.String(
        required=True, metadata={"description": "SHA-256 of the stored (cleaned) bytes."}
    )
    mime_type = fields.String(required=True)
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    size = fields.Integer(required=True)
    description = fields.String(required=True, metadata={"description": "The alt text."})
    attached = fields.Boolean(required=True)


class MediaDescriptionSchema(Strict):
    """A new description (alt text) for an upload not yet attached."""

    description = Text(required=True, validate=validate.Length(max=2000))


# ---------------------------------------------------------------------------------------------
# The hot path: the same results as the schemas, without marshmallow's per-call machinery


_Dump = Callable[[Any], Any]


def _field_dumper(field: fields.Field) -> _Dump:
    """Serialize one value as `field` does; the common types pass through untouched."""
    if isinstance(field, fields.Nested):
        nested = field.nested
        if isinstance(nested, str | Callable) and not isinstance(nested, type):  # pragma: no cover
            raise TypeError(f"plain_dumper: unsupported nested schema {nested!r}")
        if field.many:  # pragma: no cover - not used by the schemas compiled here
            raise TypeError("plain_dumper: Nested(many=True) is not supported")
        inner = plain_dumper(nested if isinstance(nested, type) else type(nested))
        return lambda value: None if value is None else inner(value)
    if isinstance(field, fields.List):
        each = _field_dumper(field.inner)
        return lambda value: None if value is None else [each(v) for v in value]
    slow = field._serialize
    plain: type | None = None
    if type(field) is fields.String:
        plain = str
    elif type(field) is fields.Integer and not field.as_string:
        plain = int
    elif type(field) is fields.Boolean:
        plain = bool
    elif type(field) is not fields.DateTime:
        raise TypeError(f"plain_dumper: unsupported field {type(field).__name__}")

    def dump(value: Any) -> Any:
        if value is None or type(value) is plain:
            return value
        return slow(value, None, None)

    return dump


@cache
def plain_dumper(schema_class: type[ma.Schema]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """Return a function equal to `schema_class().dump` on mappings, built once: declared
    fields in order, absent keys left out, undeclared keys dropped, times as ISO strings.

    Only the field types the response schemas use are accepted (else TypeError when built), and
    no hooks or renamed keys: a schema that grows one fails here, not silently in a response.
    """
    schema = schema_class()
    if any(schema._hooks[hook] for hook in ("pre_dump", "post_dump")):
        raise TypeError(f"plain_dumper: {schema_class.__name__} has dump hooks")
    plan: list[tuple[str, _Dump]] = []
    for name, field in schema.dump_fields.items():
        if field.data_key not in (None, name) or field.attribute not in (None, name):
            raise TypeError(f"plain_dumper: {schema_class.__name__}.{name} is renamed")
        if field.dump_default is not ma.missing:
            raise TypeError(f"plain_dumper: {schema_class.__name__}.{name} has a dump default")
        plan.append((name, _field_dumper(field)))
    absent = ma.missing

    def dump(data: Mapping[str, Any]) -> dict[str, Any]:
        out = {}
        for name, field_dump in plan:
            value = data.get(name, absent)
            if value is not absent:
                out[name] = field_dump(value)
        return out

    return dump


_POST_REQUEST_FIELDS = frozenset(
    ("account", "text", "author", "publish_at", "timezone", "in_reply_to")
)


def _plain_text(value: Any, shortest: int, longest: int) -> bool:
    return (
        type(value) is str
        and shortest <= len(value) <= longest
        and ((value.isascii() and value.isprintable()) or text_problem(value) is None)
    )


def load_post_request(data: Any) -> dict[str, Any] | None:
    """Return what `PostRequestSchema().load(data)` returns when it accepts `data` without
    conversions, else None: the schema then parses it and words the refusal (one place)."""
    if type(data) is not dict or not data.keys() <= _POST_REQUEST_FIELDS:
        return None
    account, text, author = data.get("account"), data.get("text"), data.get("author")
    if not (
        type(account) is int
        and 1 <= account <= MAX_ID
        and _plain_text(text, 0, MAX_TEXT_CODE_POINTS)
        and _plain_text(author, 3, 320)
    ):
        return None
    loaded: dict[str, Any] = {"account": account, "text": text, "author": author}
    if "in_reply_to" in data:
        in_reply_to = data["in_reply_to"]
        if in_reply_to is not None and not _plain_text(in_reply_to, 1, 200):
            return None
        loaded["in_reply_to"] = in_reply_to
    raw, zone_name = data.get("publish_at"), data.get("timezone")
    if raw is not None and not _plain_text(raw, 0, 40):
        return None
    if zone_name is not None and not _plain_text(zone_name, 0, 64):
        return None
    try:
        loaded["publish_at"] = resolve_publish_at(raw, zone_name)
    except ma.ValidationError:
        return None
    return loaded
