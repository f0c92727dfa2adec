"""The native scheduler API under /api/v1: parse -> service -> render, errors in api/errors.py.

Every operation declares its OAuth scope (`require_scope`), runs under the client's rate limit
and is documented from the marshmallow schemas in the OpenAPI document (/api/v1/openapi.json,
readable at /api/v1/docs). A client sees only its own accounts: anything else is 404.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, ClassVar, TypeVar

import flask_smorest
from apispec import APISpec
from flask import Flask, Response, g, request, url_for
from flask_smorest.spec import openapi_cli
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from ghostpost.api import docs
from ghostpost.api.errors import PROBLEM_MIMETYPE, ApiProblem
from ghostpost.api.errors import register as register_errors
from ghostpost.api.idempotency import (
    HEADER_PARAMETER,
    REPLAYED_HEADER,
    json_response,
    requires_idempotency_key,
)
from ghostpost.api.oauth import client_rate_limit, current_api_actor, require_scope
from ghostpost.api.schemas import (
    MAX_ID,
    AccountListSchema,
    GuardsSchema,
    MediaDescriptionSchema,
    MediaSchema,
    PostGroupSchema,
    PostListQuerySchema,
    PostPageSchema,
    PostRequestSchema,
    PostSchema,
    PreviewGroupSchema,
    PreviewSchema,
    ProblemSchema,
    WindowListQuerySchema,
    WindowListSchema,
    is_public_id,
    load_post_request,
    plain_dumper,
)
from ghostpost.domain.media_rules import MAX_UPLOAD_BYTES, MediaUpload
from ghostpost.domain.model import Account, Source, User
from ghostpost.domain.policy import (
    PostKind,
    decided_at_publication,
    describe_decided_at_publication,
)
from ghostpost.domain.states import PostState
from ghostpost.http_surface import services
from ghostpost.services import api_queries, groups, guards, idempotency, media, posts
from ghostpost.services.api_queries import PostDetails, PostQuery
from ghostpost.services.clients import SCOPES
from ghostpost.services.idempotency import KEY_RETENTION

F = TypeVar("F", bound=Callable[..., Any])

OAUTH_SCHEME = "oauth2"
API_VERSION = "1.0.0"


class ApiParser(FlaskParser):
    """webargs parser whose JSON errors are problems: 415 for other media types, 400 for
    anything json.loads refuses (syntax, bad UTF-8, deep nesting, huge integers). Unknown
    query parameters are refused like unknown body fields."""

    DEFAULT_UNKNOWN_BY_LOCATION: ClassVar[dict[str, str | None]] = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": None,
        "querystring": None,
    }

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            raise ApiProblem(
                415,
                "unsupported_media_type",
                "Send the body as JSON with Content-Type: application/json.",
            )
        try:
            return core.parse_json(req.get_data(cache=True))
        except RecursionError:
            raise ApiProblem(400, "invalid_json", "The JSON nests too deeply.") from None
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limit
            raise ApiProblem(400, "invalid_json", f"The body is not valid JSON: {exc}.") from None

    def parse(self, argmap: Any, req: Any = None, *, location: str | None = None, **kw: Any) -> Any:
        """The create and the preview take a fast path when their body needs no conversion:
        the same data the schema would load; anything else (every refusal included) goes
        through the schema as before."""
        if argmap is PostRequestSchema and location == "json":
            request = req if req is not None else self.get_default_request()
            loaded = load_post_request(self._raw_load_json(request))  # 415 and 400 as before
            if loaded is not None:
                return loaded
        return super().parse(argmap, req, location=location, **kw)


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest blueprint with our parser."""

    ARGUMENTS_PARSER = ApiParser()


class Api(flask_smorest.Api):
    """flask-smorest's Api, documenting errors as problems and leaving handlers to errors.py.

    The OpenAPI document is built on first use of `spec` (the document's routes, the `flask
    openapi` commands), not with the app: building it is most of `create_app`'s time (schemas
    converted, every operation's documentation deep-copied), and a process that never serves
    the document never needs it. The steps run in the order they were asked for, so the
    document is the one the app would have built at start-up (`deferred=False` builds it then).
    """

    ERROR_SCHEMA = ProblemSchema
    DEFAULT_ERROR_RESPONSE_NAME = None

    def __init__(self, app: Flask, *, spec_kwargs: dict[str, Any], deferred: bool = True) -> None:
        self._built_spec: APISpec | None = None
        self._deferred = deferred
        self._steps: list[Callable[[], None]] = []
        self._steps_run = 0
        self._documenting = False
        # Re-entrant: the steps read `spec` themselves while the document is being built.
        self._document_lock = threading.RLock()
        super().__init__(app, spec_kwargs=spec_kwargs)

    @property  # type: ignore[override]
    def spec(self) -> APISpec | None:
        """The OpenAPI document, built now if it was not yet."""
        if self._steps_run < len(self._steps):
            with self._document_lock:
                if not self._documenting:
                    self._documenting = True
                    try:
                        while self._steps_run < len(self._steps):
                            self._steps[self._steps_run]()
                            self._steps_run += 1
                    finally:
                        self._documenting = False
        return self._built_spec

    @spec.setter
    def spec(self, value: APISpec | None) -> None:
        self._built_spec = value

    def document(self, step: Callable[[], None]) -> None:
        """Add a step to the document: run with the others on first use of `spec`."""
        self._steps.append(step)
        if not self._deferred:
            _ = self.spec

    def _init_spec(self, **options: Any) -> None:
        self._app.cli.add_command(openapi_cli)  # `flask openapi ...`, there from the start
        self.document(lambda: super(Api, self)._init_spec(**options))

    def register_blueprint(
        self, blp: Any, *, parameters: list[Any] | None = None, **options: Any
    ) -> None:
        """flask-smorest's, with the blueprint's documentation left to the document's build."""
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)

        def document_blueprint() -> None:
            spec = self.spec
            assert spec is not None
            blp.register_views_in_doc(self, self._app, spec, name=name, parameters=parameters)
            spec.tag({"name": name, "description": blp.description})

        self.document(document_blueprint)

    def _register_error_handlers(self) -> None:
        # The web app keeps its own handlers; /api/v1 registers blueprint-level ones.
        pass

    def _register_responses(self) -> None:
        for status in HTTPStatus:
            if status >= 400:
                self.spec.components.response(
                    status.name,
                    {
                        "description": status.phrase,
                        "content": {PROBLEM_MIMETYPE: {"schema": "ProblemSchema"}},
                    },
                    lazy=True,
                )


bp = Blueprint(
    "api_v1",
    __name__,
    url_prefix="/api/v1",
    description="Submit, preview, read and cancel posts; read accounts and windows.",
)
register_errors(bp)

#: Error statuses every operation may answer.
_COMMON_ERRORS = (401, 403, 429)


def operation(scope: str, *errors: int) -> Callable[[F], F]:
    """Declare a view's scope (checked first), apply the client's rate limit and document
    the scope and the error statuses."""

    def decorate(view: F) -> F:
        documented: Any = view
        for status in sorted({*errors, *_COMMON_ERRORS}, reverse=True):
            documented = bp.alt_response(status, response=HTTPStatus(status).name)(documented)
        documented = bp.doc(security=[{OAUTH_SCHEME: [scope]}])(documented)
        # Those decorators only document, each with a pass-through wrapper run on every
        # request (nine on the create): keep their documentation, call the view itself.
        view._apidoc = documented._apidoc  # type: ignore[attr-defined]
        guarded: F = require_scope(scope)(client_rate_limit(view))
        return guarded

    return decorate


# ---------------------------------------------------------------------------------------------
# Rendering


def _account(account: Account) -> dict[str, Any]:
    return {"id": account.id, "platform": account.platform, "handle": account.handle}


def _author(user: User) -> dict[str, Any]:
    return {"email": user.email, "name": user.name}


def _tag_summary(tag: dict[str, Any]) -> str:
    outcome, name = tag.get("outcome"), tag.get("tag") or "the tag"
    if outcome == "applied":
        return f"{name} added"
    if outcome == "skipped":
        return f"{name} skipped: needs {tag.get('needs')}, has {tag.get('has')} {tag.get('unit')}"
    return str(outcome or "not_applicable").replace("_", " ")


def _decisions(record: dict[str, Any] | None, delegated: bool) -> dict[str, Any]:
    """The API shape of a stored decision record (Decision.to_record())."""
    record = record or {}
    tag = {
        "outcome": "not_applicable",
        "tag": "",
        "needs": None,
        "has": None,
        "unit": None,
        **(record.get("tag") or {}),
    }
    tag["summary"] = _tag_summary(tag)
    reminder = {"outcome": "not_applicable", "reason": "", **(record.get("reminder") or {})}
    return {
        "stage": record.get("stage"),
        "outcome": record.get("outcome"),
        "delegated": delegated,
        "tag": tag,
        "reminder": reminder,
        "held_reason": record.get("held_reason"),
        "length": record.get("length"),
        "refusal": record.get("refusal"),
        "notes": list(record.get("notes") or []),
    }


def posts_url() -> str:
    """Return the URL of the post collection; a post's own URL is this plus `/<id>`."""
    return url_for("api_v1.list_posts")


def post_data(details: PostDetails, collection_url: str | None = None) -> dict[str, Any]:
    """Return a post as PostSchema dumps it (the schema turns times into strings). With
    `collection_url` (posts_url()) it is plain data: no request or app context needed."""
    post = details.post
    outlook = details.current_outlook
    latest = post.decisions.get("publication") or post.decisions.get("submission")
    extra = post.decisions.get("extra") or {}
    self_url = f"{collection_url if collection_url is not None else posts_url()}/{post.public_id}"
    return {
        "id": post.public_id,
        "kind": post.kind.value,
        "state": post.state.value,
        "state_reason": post.state_reason,
        "approval_reasons": list(post.decisions.get("approval_reasons") or []),
        "account": _account(details.account),
        "author": _author(details.author),
        "submitter": post.submitter,
        "source": post.source.value,
        "submitted_text": post.submitted_text,
        "text_if_published_now": outlook.text_if_published_now,
        "decided_at_publication": [d.value for d in outlook.decided_at_publication],
        "decided_at_publication_note": outlook.note,
        "published_text": outlook.published_text,
        "publish_at": post.publish_at,
        "published_at": post.published_at,
        "created_at": post.created_at,
        "window": post.window_id,
        "platform_url": post.platform_url,
        "in_reply_to": extra.get("in_reply_to"),
        "group": post.group_id,
        "thread": post.decisions.get("thread"),
        "decisions": _decisions(latest, post.is_delegated),
        "links": {"self": self_url, "cancel": self_url + "/cancel"},
        **(
            {
                "images": [
                    {
                        "media_id": image.media_id,
                        "content_hash": image.content_hash,
                        "description": image.alt_text,
                        "mime_type": image.mime_type,
                        "width": image.width,
                        "height": image.height,
                    }
                    for image in details.images
                ]
            }
            if details.images
            else {}
        ),
    }


#: Dumps a post's body as PostSchema does (tests hold them equal), built once.
_dump_post = plain_dumper(PostSchema)
_dump_preview = plain_dumper(PreviewSchema)


def render_post(details: PostDetails, collection_url: str | None = None) -> dict[str, Any]:
    """Return the JSON body of a post (what create stores for replays)."""
    return _dump_post(post_data(details, collection_url))


def render_window(found: api_queries.ClientWindow) -> dict[str, Any]:
    """Return the API body of a delegation window: the policy in force, its notice's times, and
    the fields of a change that waits for the principal (not in force until approved)."""
    window, pending = found.window, found.pending_change
    policy = window.policy
    return {
        "notice_publish_at": window.notice_publish_at,
        "notice_approved_at": window.notice_approved_at,
        "pending_change": None
        if pending is None
        else {"proposed_at": pending.proposed_at, "changes": pending.changes},
        "id": window.id,
        "account": window.account_id,
        "name": window.name,
        "starts_at": policy.starts_at,
        "ends_at": policy.ends_at,
        "notice_text": policy.notice_text,
        "notice_published_at": window.notice_published_at,
        "reminder_every": policy.reminder_every,
        "reminder_text": policy.reminder_text,
        "reminder_mode": policy.reminder_mode.value,
        "tag": policy.tag,
        "tag_mode": policy.tag_mode.value,
        "tag_position": policy.tag_position.value,
        "requires_approval": policy.requires_approval,
        "tag_every_part": policy.tag_every_part,
        "reason": policy.reason,
        "kind": policy.kind.value,
        "reply_policy": policy.reply_policy.value,
    }


def encode_cursor(before_id: int) -> str:
    """Return the opaque cursor of the page after the post with this id."""
    return base64.urlsafe_b64encode(f"p1:{before_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Return the post id a cursor continues after, or answer 422."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        text = ""
    prefix, _, number = text.partition(":")
    if prefix != "p1" or not (number.isascii() and number.isdigit()) or len(number) > 19:
        raise ApiProblem(
            422,
            "validation_failed",
            "The cursor is not one this API handed out; start again without it.",
            errors={"cursor": ["invalid cursor"]},
        )
    return min(int(number), MAX_ID)


# ---------------------------------------------------------------------------------------------
# Posts

_EXAMPLE_POST = {
    "account": 1,
    "text": "Day two: the keynote starts at 10.",
    "author": "jordan@demo.ghostpost.test",
}


def _request(data: dict[str, Any]) -> posts.ClientPost:
    in_reply_to = data.get("in_reply_to")
    return posts.ClientPost(
        # A group's request is planned once per account (services.groups).
        account_id=data.get("account") or data["accounts"][0],
        author_email=data.get("author"),
        text=data["text"],
        source=Source.API,
        publish_at=data.get("publish_at"),
        extra={"in_reply_to": in_reply_to} if in_reply_to is not None else {},
        media_ids=tuple(data.get("media_ids") or ()),
        in_reply_to=in_reply_to,
        thread=tuple(data.get("thread") or ()),
    )


def create_fingerprint(data: dict[str, Any]) -> str:
    """The request as the service understands it: equal requests, equal fingerprints."""
    publish_at = data.get("publish_at")
    # `account` or `accounts`, never both: a key first used for one account (or other
    # accounts, or the same ones in another order) is another request.
    named = {"account": data["account"]} if "account" in data else {"accounts": data["accounts"]}
    return idempotency.request_fingerprint(
        {
            **named,
            "text": data["text"],
            "author": data["author"].strip().lower(),
            "publish_at": publish_at.isoformat() if publish_at is not None else None,
            "in_reply_to": data.get("in_reply_to"),
            # Only when images are named: fingerprints of text-only creates stay as they were.
            **({"media_ids": list(data["media_ids"])} if data.get("media_ids") else {}),
            # Only threads say so: a lone post's fingerprint is as it always was.
            **({"thread": list(data["thread"])} if data.get("thread") else {}),
        }
    )


def _created(status: int, body: dict[str, Any], replayed: bool) -> Response:
    links = body.get("links") or {}
    headers = {"Location": links["self"]} if status == 201 and "self" in links else {}
    return json_response(status, body, replayed=replayed, headers=headers)


def _one_of(*schemas: str) -> dict[str, Any]:
    """An OpenAPI body that is one of the named schema components."""
    return {"schema": {"oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in schemas]}}


#: OpenAPI links from a created post to the operations on it (clients and fuzzers follow them).
_CREATED_POST_LINKS = {
    name: {
        "operationRef": f"#/paths/~1api~1v1~1posts~1{{post_id}}{suffix}/{method}",
        "parameters": {"post_id": "$response.body#/id"},
        "description": description,
    }
    for name, suffix, method, description in (
        ("GetPost", "", "get", "Read the post just created."),
        ("CancelPost", "~1cancel", "post", "Cancel the post just created."),
    )
}


@bp.route("/posts", methods=["POST"])
@operation("posts:write", 400, 404, 409, 413, 415)
@requires_idempotency_key
@bp.doc(
    parameters=[HEADER_PARAMETER],
    summary="Submit a post",
    description=(
        "Queue a post on one of the client's accounts, written by `author`, under the "
        "account's disclosure policy: the response carries `text_if_published_now` (tag and "
        "inline reminder as they would be now), the decisions taken when it goes out "
        "(`decided_at_publication`) and, once it is out, `published_text`. A post the policy "
        "refuses is 422 `policy_refused` with the reason (e.g. how many characters to cut); "
        "nothing is stored. "
        "With `accounts` instead of `account`, one post per account (each decided by its "
        "own account's policy) is made all or nothing and the answer is the group: its id "
        "and its posts (`media_ids` and `thread` go to every account: the same thread on "
        "each, the images on its first part); one Idempotency-Key covers the group. "
        "Requires an `Idempotency-Key`; keys are kept at least "
        f"{int(KEY_RETENTION.total_seconds() // 3600)} hours."
    ),
    responses={
        "201": {
            "links": _CREATED_POST_LINKS,
            "content": {"application/json": _one_of("Post", "PostGroup")},
        }
    },
)
@bp.arguments(PostRequestSchema, example=_EXAMPLE_POST)
@bp.response(
    201,
    PostSchema,
    headers={
        "Location": {"description": "The post's URL.", "schema": {"type": "string"}},
        REPLAYED_HEADER: {
            "description": "`true` when this is the stored response of an earlier request "
            "with the same Idempotency-Key.",
            "schema": {"type": "string", "enum": ["true"]},
        },
    },
)
def create_post(data: dict[str, Any]) -> Response:
    collection_url = posts_url()
    if "accounts" in data:
        return _create_group(data, collection_url)

    def render(details: PostDetails) -> tuple[int, dict[str, Any]]:
        # Plain data in, plain data out: it runs inside the create's write transaction.
        return 201, render_post(details, collection_url)

    status, body, replayed = idempotency.submit_client_post_once(
        services(),
        current_api_actor(),
        _request(data),
        key=g.idempotency_key,
        fingerprint=create_fingerprint(data),
        render=render,
        render_ahead=True,  # the body names the post by its public id, never its row id
    )
    return _created(status, body, replayed)


def _create_group(data: dict[str, Any], collection_url: str) -> Response:
    def render(group_id: str, details: list[PostDetails]) -> tuple[int, dict[str, Any]]:
        # Plain data in, plain data out: it runs inside the create's write transaction.
        body = {"id": group_id, "posts": [post_data(d, collection_url) for d in details]}
        return 201, _GROUP_SCHEMA.dump(body)

    status, body, replayed = groups.submit_client_group_once(
        services(),
        current_api_actor(),
        _request(data),
        data["accounts"],
        key=g.idempotency_key,
        fingerprint=create_fingerprint(data),
        render=render,
    )
    return json_response(status, body, replayed=replayed)


_GROUP_SCHEMA = PostGroupSchema()
_PREVIEW_GROUP_SCHEMA = PreviewGroupSchema()
_PREVIEW_SCHEMA = PreviewSchema()


def _preview(plan: posts.Plan, publish_at: Any) -> dict[str, Any]:
    later = decided_at_publication(PostKind.REGULAR, plan.delegated)
    return {
        "accepted": not plan.decision.refused,
        "account": _account(plan.account),
        "author": _author(plan.author),
        "window": plan.window.id if plan.window else None,
        "publish_at": publish_at,
        "text_if_published_now": None if plan.decision.refused else plan.decision.final_text,
        "decided_at_publication": [d.value for d in later],
        "decided_at_publication_note": describe_decided_at_publication(later),
        "decisions": _decisions(plan.decision.to_record(), plan.delegated),
    }


@bp.route("/preview", methods=["POST"])
@operation("posts:write", 400, 404, 413, 415)
@bp.doc(
    summary="Preview a post (dry run)",
    description="The text as it would go out now and the disclosure decisions the same "
    "request to `POST /api/v1/posts` would get now, with the decisions only taken when the post "
    "goes out (`decided_at_publication`); stores nothing, needs no Idempotency-Key. A post "
    "the policy would refuse answers 200 with `accepted: false` and the refusal.",
)
@bp.arguments(PostRequestSchema, example=_EXAMPLE_POST)
@bp.response(200, PreviewSchema)
@bp.doc(responses={"200": {"content": {"application/json": _one_of("Preview", "PreviewGroup")}}})
def preview_post(data: dict[str, Any]) -> Response:
    if "accounts" in data:
        plans = groups.plan_client_group(
            services(), current_api_actor(), _request(data), data["accounts"]
        )
        items = [_thread_preview(parts, data.get("publish_at")) for parts in plans]
        return json_response(200, _PREVIEW_GROUP_SCHEMA.dump({"items": items}), replayed=False)
    parts = posts.plan_client_thread(services(), current_api_actor(), _request(data))
    body = _thread_preview(parts, data.get("publish_at"))
    # Dumped here as PreviewSchema would (a Response passes flask-smorest's wrapper as is).
    return json_response(200, _dump_preview(body))


def _thread_preview(parts: list[posts.Plan], publish_at: Any) -> dict[str, Any]:
    """A post's preview; a thread's says so for each part too."""
    body = _preview(parts[0], publish_at)
    if len(parts) > 1:
        body["accepted"] = all(not part.decision.refused for part in parts)
        body["parts"] = [_part_preview(i, part) for i, part in enumerate(parts, 1)]
    return body


def _part_preview(position: int, plan: posts.Plan) -> dict[str, Any]:
    decision = plan.decision
    return {
        "position": position,
        "accepted": not decision.refused,
        "text_if_published_now": None if decision.refused else decision.final_text,
        "decisions": _decisions(decision.to_record(), plan.delegated),
    }


@bp.route("/posts", methods=["GET"])
@operation("posts:read", 404)
@bp.doc(
    summary="List posts",
    description="The client's posts, newest first, optionally filtered. Follow `next` "
    "(pass it as `cursor`) until it is null.",
)
@bp.arguments(PostListQuerySchema, location="query")
@bp.response(200, PostPageSchema)
def list_posts(args: dict[str, Any]) -> dict[str, Any]:
    cursor = args.get("cursor")
    page = api_queries.list_posts(
        services(),
        current_api_actor(),
        PostQuery(
            account_id=args.get("account"),
            window_id=args.get("window"),
            author_email=args.get("author"),
            state=PostState(args["state"]) if "state" in args else None,
            before_id=decode_cursor(cursor) if cursor is not None else None,
            limit=args["limit"],
        ),
    )
    return {
        "items": [post_data(item) for item in page.items],
        "next": encode_cursor(page.next_before_id) if page.next_before_id else None,
    }


def _visible_post(post_id: str) -> PostDetails:
    if not is_public_id(post_id):
        raise ApiProblem(404, "not_found", "No such post.")
    return api_queries.get_post(services(), current_api_actor(), post_id)


@bp.route("/posts/<post_id>", methods=["GET"])
@operation("posts:read", 404)
@bp.doc(
    summary="Get a post",
    responses={"200": {"links": {"CancelPost": _CREATED_POST_LINKS["CancelPost"]}}},
)
@bp.response(200, PostSchema)
def get_post(post_id: str) -> dict[str, Any]:
    return post_data(_visible_post(post_id))


@bp.route("/posts/<post_id>/cancel", methods=["POST"])
@operation("posts:write", 404, 409)
@bp.doc(
    summary="Cancel a post",
    description="Cancel a post this client submitted that has not gone out yet "
    "(403 for posts others submitted, 409 once it is publishing or done).",
)
@bp.response(200, PostSchema)
def cancel_post(post_id: str) -> dict[str, Any]:
    details = _visible_post(post_id)
    post = posts.cancel_post(services(), current_api_actor(), details.post.id)
    return post_data(PostDetails(post, details.account, details.author))


# ---------------------------------------------------------------------------------------------
# Accounts and windows


# ---------------------------------------------------------------------------------------------
# Media


def render_media(upload: MediaUpload) -> dict[str, Any]:
    return {
        "id": upload.public_id,
        "content_hash": upload.content_hash,
        "mime_type": upload.mime_type,
        "width": upload.width,
        "height": upload.height,
        "size": upload.size,
        "description": upload.alt_text,
        "attached": upload.post_id is not None,
    }


def uploaded_file() -> tuple[bytes, str]:
    """The multipart `file` and `description` of an upload (the body may be larger than other
    requests': up to the largest image a platform takes)."""
    request.max_content_length = MAX_UPLOAD_BYTES + 64 * 1024
    if not request.mimetype.startswith("multipart/form-data"):
        raise ApiProblem(
            415, "unsupported_media_type", "Send the image as multipart/form-data `file`."
        )
    file = request.files.get("file")
    if file is None:
        raise ApiProblem(
            422, "validation_failed", "The image is missing.", errors={"file": ["required"]}
        )
    return file.read(MAX_UPLOAD_BYTES + 1), request.form.get("description", "")


@bp.route("/media", methods=["POST"])
@operation("posts:write", 400, 413, 415, 422)
@bp.doc(
    requestBody={
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        # Untyped: a multipart field is text whatever it looks like ("0.0").
                        "description": {
                            "maxLength": 2000,
                            "description": "Alt text (describe the image).",
                        },
                    },
                }
            }
        },
    },
    summary="Upload an image",
    description="multipart/form-data with `file` (JPEG, PNG, WebP or a static GIF) and an "
    "optional `description` (alt text). The image is decoded, turned upright and re-encoded "
    "without metadata (EXIF location included); the answer names the stored bytes' SHA-256. "
    "Attach it with `media_ids` on `POST /api/v1/posts`; unattached images are deleted after a "
    "day. Anything else (SVG, HTML, animated images, decompression bombs) is 422.",
)
@bp.response(201, MediaSchema)
def upload_media() -> tuple[dict[str, Any], int]:
    data, description = uploaded_file()
    upload = media.upload_media(services(), current_api_actor(), data, description)
    return render_media(upload), 201


@bp.route("/media/<media_id>", methods=["GET"])
@operation("posts:write", 404)
@bp.doc(summary="Read an uploaded image's record")
@bp.response(200, MediaSchema)
def get_media(media_id: str) -> dict[str, Any]:
    return render_media(media.get_media(services(), current_api_actor(), media_id))


@bp.route("/media/<media_id>", methods=["PUT"])
@operation("posts:write", 400, 404, 409, 413, 415)
@bp.doc(summary="Set an image's description (alt text) before it is attached")
@bp.arguments(MediaDescriptionSchema)
@bp.response(200, MediaSchema)
def describe_media(data: dict[str, Any], media_id: str) -> dict[str, Any]:
    upload = media.describe_media(services(), current_api_actor(), media_id, data["description"])
    return render_media(upload)


@bp.route("/accounts", methods=["GET"])
@operation("windows:read")
@bp.doc(summary="List the client's accounts")
@bp.response(200, AccountListSchema)
def list_accounts() -> dict[str, Any]:
    accounts = api_queries.client_accounts(services(), current_api_actor())
    return {"items": [_account(a) for a in accounts]}


@bp.route("/windows", methods=["GET"])
@operation("windows:read", 404)
@bp.doc(summary="List delegation windows of the client's accounts")
@bp.arguments(WindowListQuerySchema, location="query")
@bp.response(200, WindowListSchema)
def list_windows(args: dict[str, Any]) -> dict[str, Any]:
    windows = api_queries.client_windows(services(), current_api_actor(), args.get("account"))
    return {"items": [render_window(w) for w in windows]}


@bp.route("/accounts/<account_id>/guards", methods=["GET"])
@operation("windows:read", 404)
@bp.doc(summary="Read the guards of an account's principal")
@bp.response(200, GuardsSchema)
def get_guards(account_id: str) -> dict[str, Any]:
    actor = current_api_actor()
    principal_id = guards.principal_of_account(services(), actor, _account_number(account_id))
    return _guards(guards.guard_settings(services(), actor, principal_id))


@bp.route("/accounts/<account_id>/guards", methods=["PUT"])
@operation("guards:write", 400, 404, 413, 415, 422)
@bp.doc(
    summary="Replace the guards of an account's principal",
    description="As the client's owner: the principal, a manager or an admin. Adding applies "
    "at once; removing a watched entry or turning first-use hashtags off is 403 unless the "
    "owner is the principal (their consent).",
)
@bp.arguments(GuardsSchema)
@bp.response(200, GuardsSchema)
def put_guards(data: dict[str, Any], account_id: str) -> dict[str, Any]:
    actor = current_api_actor()
    principal_id = guards.principal_of_account(services(), actor, _account_number(account_id))
    changed = guards.change_guards(
        services(),
        actor,
        principal_id,
        watched=list(data["watched"]),
        first_use_hashtags=data["first_use_hashtags"],
    )
    return _guards(changed)


def _account_number(raw: str) -> int:
    """An account id from the path, or 404 (as for an account the client does not have)."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise ApiProblem(404, "not_found", f"No account {raw[:40]}.")
    return int(raw)


def _guards(settings: guards.GuardSettings) -> dict[str, Any]:
    return {
        "principal": settings.principal.id,
        "watched": list(settings.guards.watched),
        "first_use_hashtags": settings.guards.first_use_hashtags,
    }


# ---------------------------------------------------------------------------------------------
# The document

API_DESCRIPTION = """\
ghostpost's API for schedulers. Posts go through the same disclosure policy as the web app
(notice gate, reminder every Nth post, `#team` tag) and every post is recorded in the ledger
with its human author, the submitting client and the source `api`.

**Authentication.** OAuth 2.0 client credentials: `POST /oauth/token` with HTTP Basic
client id and secret and `grant_type=client_credentials`; send the access token as
`Authorization: Bearer <token>`. A client only sees the accounts it is limited to.

**Authors.** `author` names the human who wrote the text: one of the authors the client was
granted (`ghostpost clients create --authors`), assigned to the account. The principal is an
author only for a client the principal's own user owns; anything else is 422
`validation_failed` with `errors.author`, the same answer whether or not the email exists.

**Idempotency.** `POST /api/v1/posts` requires an `Idempotency-Key` header. Keys are per
client and kept at least 24 hours: a repeat with the same body replays the first response
(`Idempotent-Replayed: true`), a repeat with another body is 422, a repeat while the first is
still running is 409 with `Retry-After`. Failed requests store nothing.

**Errors** are `application/problem+json` (RFC 9457): `type` (`urn:ghostpost:problem:<code>`),
`code`, `title`, `status`, `detail`, and `errors` (field -> messages) for invalid input.

**Times** are RFC 3339. `publish_at` takes an offset, or a local time plus an IANA `timezone`.

**Rate limits** apply per client: 429 with `Retry-After`.
"""


def init_app(app: Flask, *, deferred_document: bool = True) -> Api:
    """Register /api/v1 on the app, with its OpenAPI document (built on first use unless
    `deferred_document` is false: see Api)."""
    api = Api(
        app,
        spec_kwargs={
            "title": "ghostpost scheduler API",
            "version": API_VERSION,
            "openapi_version": "3.0.3",
            "info": {"description": API_DESCRIPTION},
        },
        deferred=deferred_document,
    )

    def document_components() -> None:
        spec = api.spec
        assert spec is not None
        spec.components.security_scheme(
            OAUTH_SCHEME,
            {
                "type": "oauth2",
                "description": "Client credentials; one token per client, limited to its accounts.",
                "flows": {
                    "clientCredentials": {"tokenUrl": "/oauth/token", "scopes": dict(SCOPES)}
                },
            },
        )
        # The bodies of a request for several accounts (create and preview answer one of two).
        spec.components.schema("PostGroup", schema=PostGroupSchema)
        spec.components.schema("PreviewGroup", schema=PreviewGroupSchema)

    api.document(document_components)
    from ghostpost.api import (
        audit,  # noqa: F401  GET /api/v1/audit/export, on this blueprint
        public_log,  # noqa: F401  GET /api/v1/public/..., on this blueprint
    )

    api.register_blueprint(bp)
    app.register_blueprint(docs.bp)
    return api
