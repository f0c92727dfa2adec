"""Test helpers for the signed ledger: fast seeding and a complete raw export."""

from __future__ import annotations

from pathlib import Path

from ghostpost.audit import format as fmt
from ghostpost.bootstrap import Container
from ghostpost.domain.checkpoint import Checkpoint
from ghostpost.domain.ledger import LedgerEntry
from ghostpost.domain.model import Role
from ghostpost.services import directory
from ghostpost.services.context import Actor

EXPORTED_AT = "2026-11-21T12:00:00.000000Z"


def seed_ledger(
    container: Container, entries: int, *, via_services: int = 3, sign_every: int | None = None
) -> None:
    """Append `entries` entries: a few through the services (real tags and data), the rest
    through SqlLedger.append in one transaction (fast). With `sign_every`, commit and run a
    notary pass after every `sign_every` entries (1: a signed head at every size)."""
    ctx = container.services
    system = Actor.system("test")
    for i in range(min(via_services, entries)):
        if i % 2:
            directory.create_principal(ctx, system, f"Principal {i}")
        else:
            directory.create_user(
                ctx,
                system,
                email=f"user{i}@example.test",
                name=f"User {i}",
                role=Role.WRITER,
                password="password-123",
            )
        if sign_every:
            container.notary.run_pass()
    with ctx.uow() as uow:
        size, _ = uow.ledger.head()
    step = sign_every or entries
    for start in range(size, entries, step):
        with ctx.uow() as uow:
            for i in range(start, min(start + step, entries)):
                uow.ledger.append(
                    tag="post:submitted",
                    actor=f"user:{i % 7 + 1}",
                    subject=f"post:{i:08d}",
                    data={
                        "n": i,
                        "text": f"post number {i} ✓",
                        "tags": ["#team"],
                        "ok": i % 2 == 0,
                    },
                    occurred_at=ctx.clock.now(),
                )
            uow.commit()
        if sign_every:
            container.notary.run_pass()


def write_export(container: Container, path: Path) -> tuple[list[LedgerEntry], list[Checkpoint]]:
    """Write a complete export (header, every entry, every checkpoint) and return its parts."""
    with container.services.uow() as uow:
        size, _ = uow.ledger.head()
        entries = list(uow.ledger.entries())
        checkpoints = list(uow.ledger.checkpoints(max_size=size))
    with path.open("w", encoding="utf-8") as fh:
        fmt.write_header(
            fh, exported_at=EXPORTED_AT, complete=True, keys=container.keyring.public_keys()
        )
        for entry in entries:
            fmt.write_entry(fh, entry)
        for checkpoint in checkpoints:
            fmt.write_checkpoint(fh, checkpoint)
    return entries, checkpoints


def public_key_file(container: Container, directory_: Path) -> Path:
    """Write the current public key to a .pub file (as `keys generate` does) and return it."""
    from ghostpost.audit.keys import public_key_text

    key = container.keyring.signer().public
    path = directory_ / f"{key.key_id}.pub"
    path.write_text(public_key_text(key), encoding="utf-8")
    return path
