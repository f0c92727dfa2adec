"""The baselines of bench/api_load.py: a bare Flask + SQLAlchemy 2 app that stores one row.

`POST /insert` parses a small JSON body (`account`, `author`, `text`), inserts one row in one
transaction and answers 201 with the row's id as JSON. `POST /insert-chained` (the *chained
insert*, issue 14's baseline) does the same into a hash chain, as any tamper-evident log must:
in one transaction it locks and reads the chain's head row (`SELECT ... FOR UPDATE`), inserts
the row with the head's hash and its own (SHA-256 of that hash and the row's canonical JSON),
and moves the head: three statements. It is the least a create that appends to a ledger does.

The engine comes from ghostpost's own `ghostpost.db.engine.make_engine`, so SQLite gets the
same WAL, `synchronous=FULL`, `busy_timeout` and `BEGIN IMMEDIATE` as ghostpost, and
PostgreSQL the same pool (a socket check on checkout, no pre-ping) and read-only-by-default
connections (BEGIN READ WRITE). Nothing else: no auth, no policy, no idempotency, no signing.
It is what a request that stores one row (or one chained row) costs on this machine, with
this server and this database.

`GET` or `POST /ping` is the *trivial route*: Flask routing, one small JSON answer, under the
same gunicorn; the body (if any) is not read, nothing is authenticated, no database is touched.
It is the floor of any request through this stack; the preview is measured against it.

    BARE_DATABASE_URL=sqlite:////tmp/bare.db .venv/bin/python bench/bare_app.py --init
    BARE_DATABASE_URL=sqlite:////tmp/bare.db \
        .venv/bin/gunicorn -w 2 -b 127.0.0.1:8001 'bench.bare_app:create_bare_app()'
    curl -s -X POST -H 'Content-Type: application/json' \
        -d '{"account": 1, "author": "a@b.test", "text": "hello"}' http://127.0.0.1:8001/insert

(run from the repository root, so `bench` imports). `--init` creates the table; the app itself
never does, so several gunicorn workers cannot race to create it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flask import Flask, jsonify, request  # noqa: E402
from sqlalchemy import (  # noqa: E402
    DateTime,
    Integer,
    String,
    Text,
    bindparam,
    select,
    text,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column  # noqa: E402

from ghostpost.db.engine import make_engine, make_session_factory  # noqa: E402

ENV_URL = "BARE_DATABASE_URL"
#: "0": SQLite writers wait with busy_timeout alone, without ghostpost's writer queue
#: (ghostpost.db.writer_queue); anything else or unset: the same engine as ghostpost's.
ENV_WRITER_QUEUE = "BARE_WRITER_QUEUE"


class Base(DeclarativeBase):
    pass


class _Stored:
    """The columns both baselines store: the request's three fields and a time."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(320))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BareRow(_Stored, Base):
    __tablename__ = "bench_bare_rows"


class BareChainRow(_Stored, Base):
    __tablename__ = "bench_bare_chain"

    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)


class BareChainHead(Base):
    """The chain's one head row: what every appender locks, so appends are serialised."""

    __tablename__ = "bench_bare_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))


GENESIS = "0" * 64
_HEAD = BareChainHead.__table__
# Built once, as any app on its hot path would (building a statement costs more than running
# it); Core statements, so the ORM's bulk-update bookkeeping is not in the baseline either.
_LOCK_HEAD = select(_HEAD.c.size, _HEAD.c.head_hash).where(_HEAD.c.id == 1).with_for_update()
_MOVE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(size=bindparam("size"), head_hash=bindparam("head_hash"))
)


def database_url() -> str:
    url = os.environ.get(ENV_URL)
    if not url:
        raise SystemExit(f"set {ENV_URL} to the database URL (sqlite:///... or postgresql+...)")
    return url


def init_schema(url: str) -> None:
    """Create the one table (idempotent)."""
    engine = make_engine(url)
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as session, session.begin():
            if session.get(BareChainHead, 1) is None:
                session.add(BareChainHead(id=1, size=0, head_hash=GENESIS))
    finally:
        engine.dispose()


def create_bare_app() -> Flask:
    """The WSGI app: POST /insert, /insert-chained, /ping (trivial) and GET /healthz, on
    BARE_DATABASE_URL."""
    engine = make_engine(database_url(), writer_queue=os.environ.get(ENV_WRITER_QUEUE) != "0")
    sessions = make_session_factory(engine)
    app = Flask(__name__)
    app.extensions["bench_engine"] = engine

    @app.post("/insert")
    def insert() -> Any:
        data = request.get_json(silent=True)
        if not _valid(data):
            return _bad_body()
        with sessions() as session, session.begin():
            row = BareRow(
                account=data["account"],
                author=data["author"],
                body=data["text"],
                created_at=datetime.now(UTC),
            )
            session.add(row)
            session.flush()
            row_id = row.id
        return jsonify(id=row_id, text=data["text"]), 201

    @app.post("/insert-chained")
    def insert_chained() -> Any:
        data = request.get_json(silent=True)
        if not _valid(data):
            return _bad_body()
        created_at = datetime.now(UTC)
        with sessions() as session, session.begin():
            size, head_hash = session.execute(_LOCK_HEAD).one()
            content = json.dumps(
                {
                    "account": data["account"],
                    "author": data["author"],
                    "text": data["text"],
                    "created_at": created_at.isoformat(),
                    "seq": size + 1,
                },
                sort_keys=True,
                separators=(",", ":"),
            )
            entry_hash = hashlib.sha256(f"{head_hash}\n{content}".encode()).hexdigest()
            row = BareChainRow(
                account=data["account"],
                author=data["author"],
                body=data["text"],
                created_at=created_at,
                prev_hash=head_hash,
                entry_hash=entry_hash,
            )
            session.add(row)
            session.flush()
            row_id = row.id
            session.execute(_MOVE_HEAD, {"size": size + 1, "head_hash": entry_hash})
        return jsonify(id=row_id, text=data["text"]), 201

    @app.route("/ping", methods=["GET", "POST"])
    def ping() -> Any:
        # The trivial route the preview is compared with: Flask routing and a small JSON
        # answer under the same gunicorn, no body parsing, no auth, no database.
        return jsonify(status="ok")

    @app.get("/healthz")
    def healthz() -> Any:
        with Session(engine) as session:
            session.execute(text("SELECT 1"))
        return jsonify(status="ok")

    return app


def _bad_body() -> Any:
    """Both storing routes' answer to a body they cannot store."""
    return jsonify(error="send {account: int, author: str, text: str}"), 400


def _valid(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("account"), int)
        and isinstance(data.get("author"), str)
        and isinstance(data.get("text"), str)
    )


def chain_breaks(url: str) -> int:
    """How many rows of the chain do not extend the row before them (0: the chain holds)."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(BareChainRow.prev_hash, BareChainRow.entry_hash).order_by(BareChainRow.id)
            ).all()
            head = session.execute(select(BareChainHead.head_hash)).scalar_one()
    finally:
        engine.dispose()
    expected, breaks = GENESIS, 0
    for prev_hash, entry_hash in rows:
        breaks += prev_hash != expected
        expected = entry_hash
    return breaks + (head != expected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--init", action="store_true", help=f"create the table at ${ENV_URL}")
    parser.add_argument("--port", type=int, default=8001, help="serve (development server)")
    args = parser.parse_args()
    if args.init:
        init_schema(database_url())
        print(f"created table {BareRow.__tablename__}")
        return
    create_bare_app().run(host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
