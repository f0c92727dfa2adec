"""The API create's one read: client, owner, account (and its principal's name), author,
assignment and window together."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    null,
    select,
)
from sqlalchemy.orm import Session, aliased

from ghostpost.db.engine import (
    connection_of,
    execute_prepared,
    read_one_untyped,
    typed_row,
)
from ghostpost.db.models import (
    AccountRow,
    AssignmentRow,
    OAuthClientAccountRow,
    OAuthClientAuthorRow,
    OAuthClientRow,
    OAuthTokenRow,
    PostRow,
    PrincipalGuardsRow,
    PrincipalRow,
    UserRow,
    WindowRow,
)
from ghostpost.db.repositories.accounts import to_account
from ghostpost.db.repositories.clients import to_api_token
from ghostpost.db.repositories.ledger import hold_locked_head, insert_locking_head
from ghostpost.db.repositories.people import to_user
from ghostpost.db.repositories.windows import to_window
from ghostpost.domain.guards import PrincipalGuards
from ghostpost.domain.model import ApiClient, NewPost, Post
from ghostpost.services.ports import ClientSubmission, TokenFacts, WithdrawnGrant


def cast_table(table: object) -> Table:
    assert isinstance(table, Table)
    return table


def _ids(text: str | None) -> frozenset[int]:
    return frozenset(int(part) for part in (text or "").split(",") if part)


def _grant_lists() -> tuple[Any, Any]:
    """The client's accounts and authors as comma-separated ids, correlated to the client row."""
    accounts = (
        select(func.aggregate_strings(cast(OAuthClientAccountRow.account_id, String), ","))
        .where(OAuthClientAccountRow.client_row_id == OAuthClientRow.id)
        .scalar_subquery()
    )
    authors = (
        select(func.aggregate_strings(cast(OAuthClientAuthorRow.user_id, String), ","))
        .where(OAuthClientAuthorRow.client_row_id == OAuthClientRow.id)
        .scalar_subquery()
    )
    return accounts, authors


def _client(row: Any, account_ids: str | None, author_ids: str | None) -> ApiClient:
    return ApiClient(
        id=row.id,
        client_id=row.client_id,
        name=row.name,
        owner_id=row.owner_id,
        scopes=frozenset(row.scopes.split()),
        account_ids=_ids(account_ids),
        default_author_id=row.default_author_id,
        is_active=row.is_active,
        author_ids=_ids(author_ids),
    )


@functools.cache
def _token_statement() -> Select[Any]:
    """Built once (building a statement costs more than running it): bound :token_hash."""
    owner = aliased(UserRow, name="owner")
    client_accounts, client_authors = _grant_lists()
    return (
        select(OAuthTokenRow, OAuthClientRow, owner.is_active, client_accounts, client_authors)
        .join(OAuthClientRow, OAuthClientRow.id == OAuthTokenRow.client_row_id)
        .join(owner, owner.id == OAuthClientRow.owner_id)
        .where(OAuthTokenRow.token_hash == bindparam("token_hash"))
    )


#: The joined read's parts, in column order: (name, columns); a part is one table's row.
_Parts = tuple[tuple[str, int], ...]

#: Columns the joined read leaves out (nothing it builds reads them: time stamps, the client's
#: secret hash, a password hash, the TOTP step), and secrets it reads only as a flag: 1 where
#: one is stored, NULL where none (what the converters ask: `is not None`), never the secret.
_LEFT_OUT = {
    "oauth_clients": frozenset({"secret_hash", "created_at"}),
    "accounts": frozenset({"connected_at", "created_at"}),
    "users": frozenset({"password_hash", "created_at", "totp_last_step"}),
    "windows": frozenset({"created_at"}),
}
_FLAGS = {"accounts": frozenset({"credentials"}), "users": frozenset({"totp_secret"})}


def read_columns(table: Any) -> list[Any]:
    """`table`'s columns as a joined read selects them (see _LEFT_OUT and _FLAGS; the
    create's joined read here, the worker's claim read in repositories/posts.py); `table` is
    a table or an alias of one."""
    name = table.element.name if hasattr(table, "element") else table.name
    left_out, flags = _LEFT_OUT.get(name, frozenset()), _FLAGS.get(name, frozenset())
    return [
        case((column.is_not(None), literal(1)), else_=null()).label(column.key)
        if column.key in flags
        else column
        for column in table.c
        if column.key not in left_out
    ]


@functools.cache
def _submission_statement(*, by_email: bool) -> tuple[Select[Any], _Parts]:
    """Built once per form: bound :client_id, :account_id, :at and (by_email) :author_email;
    without an email the author is the client's default author. Plain table columns, no ORM
    entities: the rows are read as tuples (entity loading cost more than the query).
    Returns the statement and the width of each table's run of columns."""
    client = cast_table(OAuthClientRow.__table__)
    users = cast_table(UserRow.__table__)
    accounts = cast_table(AccountRow.__table__)
    windows = cast_table(WindowRow.__table__)
    assignments = cast_table(AssignmentRow.__table__)
    principals = cast_table(PrincipalRow.__table__)
    guards = cast_table(PrincipalGuardsRow.__table__)
    owner = users.alias("owner")
    author = users.alias("author")
    client_accounts, client_authors = _grant_lists()
    assigned = exists().where(
        assignments.c.user_id == author.c.id, assignments.c.account_id == accounts.c.id
    )
    named = (
        author.c.email == bindparam("author_email", type_=String)
        if by_email
        else author.c.id == client.c.default_author_id
    )
    at = bindparam("at", type_=windows.c.starts_at.type)
    client_columns, account_columns = read_columns(client), read_columns(accounts)
    author_columns, window_columns = read_columns(author), read_columns(windows)
    parts: _Parts = (
        ("client", len(client_columns)),
        ("owner_active", 1),
        ("client_accounts", 1),
        ("client_authors", 1),
        ("account", len(account_columns)),
        ("author", len(author_columns)),
        ("assigned", 1),
        ("window", len(window_columns)),
        ("principal_name", 1),
        ("watched", 1),
        ("first_use_hashtags", 1),
    )
    statement = (
        select(
            *client_columns,
            owner.c.is_active,
            client_accounts,
            client_authors,
            *account_columns,
            *author_columns,
            assigned,
            *window_columns,
            principals.c.name,
            guards.c.watched,
            guards.c.first_use_hashtags,
        )
        .select_from(client)
        .join(owner, owner.c.id == client.c.owner_id)
        .outerjoin(accounts, accounts.c.id == bindparam("account_id", type_=Integer))
        .outerjoin(principals, principals.c.id == accounts.c.principal_id)
        .outerjoin(guards, guards.c.principal_id == accounts.c.principal_id)
        .outerjoin(author, named)
        .outerjoin(
            windows,
            and_(
                windows.c.account_id == accounts.c.id,
                windows.c.starts_at <= at,
                windows.c.ends_at > at,
            ),
        )
        .where(client.c.client_id == bindparam("client_id", type_=String))
        .limit(1)
    )
    return statement, parts


#: Column names of each table's run in the joined read.
_KEYS = {
    part: tuple(c.key for c in read_columns(cast_table(row.__table__)))
    for part, row in (
        ("client", OAuthClientRow),
        ("account", AccountRow),
        ("author", UserRow),
        ("window", WindowRow),
    )
}


def _split(values: tuple[Any, ...], parts: _Parts) -> dict[str, Any]:
    """One joined row as {part: value}; a table's run becomes an object with its columns as
    attributes (what the to_* converters read), or None when its id is NULL (outer join)."""
    found: dict[str, Any] = {}
    at = 0
    for name, width in parts:
        run = values[at : at + width]
        at += width
        keys = _KEYS.get(name)
        if keys is None:
            found[name] = run[0]
        elif run[keys.index("id")] is None:
            found[name] = None
        else:
            found[name] = SimpleNamespace(**dict(zip(keys, run, strict=True)))
    return found


_POSTS = cast_table(PostRow.__table__)
_ASSIGNMENTS = cast_table(AssignmentRow.__table__)
#: The author's assignment to the account, locked first when the decision relied on it
#: (bound lock_assignment_user_id: NULL when it did not): NULL once an unassignment committed.
_ASSIGNMENT_GUARD = (
    select(_ASSIGNMENTS.c.user_id)
    .where(
        _ASSIGNMENTS.c.user_id == bindparam("lock_assignment_user_id", type_=Integer),
        _ASSIGNMENTS.c.account_id == bindparam("lock_account_id", type_=Integer),
    )
    .with_for_update(read=True, key_share=True)
    .scalar_subquery()
    .label("assignment_held")
)
_USERS = cast_table(UserRow.__table__)
_CLIENTS = cast_table(OAuthClientRow.__table__)
#: The client that submits the post, locked (FOR SHARE: a revocation's UPDATE of the row
#: conflicts, so the lock waits for it and reads the row as committed) when the post is a
#: client's (bound lock_client_id: NULL when not): NULL once a revocation committed.
_CLIENT_GUARD = (
    select(_CLIENTS.c.id)
    .where(
        _CLIENTS.c.client_id == bindparam("lock_client_id", type_=String),
        _CLIENTS.c.is_active.is_(True),
    )
    .with_for_update(read=True)
    .scalar_subquery()
    .label("client_held")
)
#: The author, locked the same way (FOR KEY SHARE would not wait for a deactivation's
#: UPDATE, and would return the row as the statement's snapshot saw it): NULL once a
#: deactivation committed.
_AUTHOR_GUARD = (
    select(_USERS.c.id)
    .where(
        _USERS.c.id == bindparam("lock_author_id", type_=Integer),
        _USERS.c.is_active.is_(True),
    )
    .with_for_update(read=True)
    .scalar_subquery()
    .label("author_held")
)
#: The new post's INSERT, built once; each create binds its values.
_INSERT_POST = insert(_POSTS)
#: PostgreSQL: the same INSERT locking and reading the ledger head for the create's append,
#: after the rows the post references (see insert_locking_head): bound lock_* ids.
_INSERT_POST_LOCKING_HEAD = insert_locking_head(
    _INSERT_POST,
    (
        # The author is not among them: _AUTHOR_GUARD locked that row already (FOR SHARE,
        # stronger than the foreign key check's FOR KEY SHARE), before the head.
        ("lock_account_id", cast_table(AccountRow.__table__)),
        ("lock_window_id", cast_table(WindowRow.__table__)),
        ("lock_precedes_post_id", _POSTS),
    ),
    # The order a revocation (client row, accounts, head), a deactivation (user row,
    # accounts, head) and an unassignment (assignment, account, head) lock in.
    guards=(_CLIENT_GUARD, _AUTHOR_GUARD, _ASSIGNMENT_GUARD),
)
_LOCKED_REFERENCES = ("account_id", "window_id", "precedes_post_id")
_POST_COLUMNS = (
    "public_id",
    "account_id",
    "window_id",
    "kind",
    "state",
    "state_reason",
    "author_id",
    "submitter",
    "source",
    "submitted_text",
    "final_text",
    "publish_at",
    "idempotency_key",
    "decisions",
    "attempts",
    "precedes_post_id",
    "created_at",
    "updated_at",
)


#: Session.info keys: (transaction, for_client's arguments) announced for the next claim, and
#: (transaction, arguments, the joined row or None) the claim read with them.
_EXPECTED = "ghostpost.submissions.expected_read"
_READ = "ghostpost.submissions.read"


def expected_client_read(session: Session) -> tuple[tuple[Any, ...], Select[Any]] | None:
    """The read announced for this transaction (taken: announced once, used once): its
    arguments and its statement."""
    expected = session.info.pop(_EXPECTED, None)
    if expected is None or expected[0] is not session.get_transaction():
        return None
    return expected[1], _submission_statement(by_email=expected[1][2] is not None)[0]


def client_read_parameters(arguments: tuple[Any, ...]) -> dict[str, Any]:
    client_id, account_id, author_email, at = arguments
    parameters: dict[str, Any] = {"client_id": client_id, "account_id": account_id, "at": at}
    if author_email is not None:
        parameters["author_email"] = author_email
    return parameters


def hold_client_read(session: Session, arguments: tuple[Any, ...], row: Any) -> None:
    """Keep the row the claim's statement read for `arguments` (None: no such client) for
    this transaction's for_client."""
    session.info[_READ] = (session.get_transaction(), arguments, row)


class SqlSubmissions:
    """Implements ghostpost.services.ports.SubmissionReader: one SELECT per question, and the
    new post as one Core INSERT (the ORM's flush of one row costs several times the INSERT)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _connection(self) -> Connection:
        return connection_of(self.session)

    def add_post(
        self, post: NewPost, *, assigned_author: bool = False, client_id: str | None = None
    ) -> Post | WithdrawnGrant:
        values = {
            "public_id": post.public_id,
            "account_id": post.account_id,
            "window_id": post.window_id,
            "kind": post.kind.value,
            "state": post.state.value,
            "state_reason": post.state_reason,
            "author_id": post.author_id,
            "submitter": post.submitter,
            "source": post.source.value,
            "submitted_text": post.submitted_text,
            "final_text": post.final_text,
            "publish_at": post.publish_at,
            "idempotency_key": post.idempotency_key,
            "decisions": post.decisions,
            "attempts": 0,
            "precedes_post_id": post.precedes_post_id,
            "content_warning": post.options.content_warning,
            "final_content_warning": post.final_content_warning,
            "visibility": post.options.visibility,
            "language": post.options.language,
            "sensitive": post.options.sensitive,
            "group_id": post.group_id,
            "reply_to_post_id": post.reply_to_post_id,
            "reply_to_platform_id": post.reply_to_platform_id,
            "thread_id": post.thread_id,
            "thread_position": post.thread_position,
            "created_at": post.created_at,
            "updated_at": post.created_at,
        }
        connection = connection_of(self.session)
        if connection.dialect.name == "postgresql":
            # The create's append follows: the INSERT locks the ledger head for it (one round
            # trip less), after the rows it references (the lock order of every ledger writer).
            locks = {f"lock_{name}": values[name] for name in _LOCKED_REFERENCES}
            # The decision was taken on a read without locks: the grants it relied on (the
            # submitting client, the author, the author's assignment) are locked first, in
            # the order their withdrawals lock in, and must still be there, or the post is
            # not the submitter's to store (the caller refuses; its rollback takes this row
            # back).
            locks["lock_client_id"] = client_id
            locks["lock_author_id"] = post.author_id
            locks["lock_assignment_user_id"] = post.author_id if assigned_author else None
            post_id, size, head_hash, client, author, assignment = execute_prepared(
                connection, _INSERT_POST_LOCKING_HEAD, {**values, **locks}
            ).one()
            hold_locked_head(connection, size, head_hash)
            if client_id is not None and client is None:
                return WithdrawnGrant.CLIENT
            if author is None:
                return WithdrawnGrant.AUTHOR
            if assigned_author and assignment is None:
                return WithdrawnGrant.ASSIGNMENT
            return post.stored_as(int(post_id))
        post_id = execute_prepared(connection, _INSERT_POST, values).lastrowid
        assert post_id is not None
        return post.stored_as(int(post_id))

    def expect_client_read(
        self, client_id: str, account_id: int, author_email: str | None, at: datetime
    ) -> None:
        # PostgreSQL's claim reads it in its own statement (db.idempotency); SQLite's local
        # calls cost no round trip, and nothing there takes the announcement.
        if connection_of(self.session).dialect.name == "postgresql":  # begins the transaction
            arguments = (client_id, account_id, author_email, at)
            self.session.info[_EXPECTED] = (self.session.get_transaction(), arguments)

    def _held_read(self) -> Any:
        """What this transaction's claim read for for_client (hold_client_read), taken."""
        held = self.session.info.pop(_READ, None)
        return held if held is not None and held[0] is self.session.get_transaction() else None

    def token(self, token_hash: str) -> TokenFacts | None:
        statement = _token_statement()
        found = self.session.execute(statement, {"token_hash": token_hash}).first()
        if found is None:
            return None
        token, client, owner_active, account_ids, author_ids = found
        return TokenFacts(
            token=to_api_token(token),
            client=_client(client, account_ids, author_ids),
            owner_active=bool(owner_active),
        )

    def for_client(
        self,
        client_id: str,
        account_id: int,
        author_email: str | None,
        at: datetime,
        *,
        same_as: ClientSubmission | None = None,
    ) -> ClientSubmission | None:
        statement, parts = _submission_statement(by_email=author_email is not None)
        arguments = (client_id, account_id, author_email, at)
        held = self._held_read()
        untyped = None
        if held is not None and held[1] == arguments:
            row = held[2]  # typed by the claim's read
        else:
            untyped = (self._connection(), client_read_parameters(arguments))
            row = read_one_untyped(untyped[0], statement, untyped[1])
        if row is None or row[0] is None:
            return None
        # Every column the facts are built from, compared as the driver gave them (before
        # they are typed: the comparison needs no typed value): equal means the facts (and
        # whatever was decided on them) are those of this read. The arguments only chose the
        # rows: facts read for another `at` (an earlier create's) are these facts when the
        # rows are the same, e.g. the same window covers both times.
        source = tuple(row)
        if same_as is not None and same_as.source == source:
            return same_as
        if untyped is not None:
            row = typed_row(untyped[0], statement, untyped[1], row)
        found = _split(row, parts)
        account, person, window = found["account"], found["author"], found["window"]
        return ClientSubmission(
            client=_client(found["client"], found["client_accounts"], found["client_authors"]),
            owner_active=bool(found["owner_active"]),
            account=to_account(account) if account is not None else None,
            author=to_user(person) if person is not None else None,
            author_assigned=bool(found["assigned"]) and person is not None and account is not None,
            window=to_window(window) if window is not None else None,
            principal_name=found["principal_name"],
            guards=None
            if found["first_use_hashtags"] is None
            else PrincipalGuards(tuple(found["watched"]), bool(found["first_use_hashtags"])),
            source=source,
        )


class SingleReadSubmissions(SqlSubmissions):
    """SqlSubmissions of a single-read unit of work with no ORM Session (the preview's):
    for_client reads on the unit's own engine connection. The other methods need the
    Session-based unit of work (SingleReadUnitOfWork builds it on first use)."""

    def __init__(self, connect: Callable[[], Connection]) -> None:
        self._connect = connect

    def _held_read(self) -> Any:
        return None  # no claim in a read-only unit

    def _connection(self) -> Connection:
        return self._connect()
