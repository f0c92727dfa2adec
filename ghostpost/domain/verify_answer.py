"""The check of a verify answer (docs/verify-answer.md), shared by `ghostpost audit verify-post`
and the tests; the page's script does the same steps in the browser.

The verifier key is the one the checker trusts (given on the command line), never the answer's
own `proof.verifier_key`. Signatures are checked through a callable (as signed_note.open_note
does), so this module stays pure. Any failed step refuses the whole answer, naming the step.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from ghostpost.domain.checkpoint import CheckpointFormatError, parse_tree_checkpoint
from ghostpost.domain.merkle import ProofError, leaf_hash, verify_inclusion
from ghostpost.domain.public_leaf import LEAF_FORMAT, WRITER_COMMIT_TAG, commitment
from ghostpost.domain.signed_note import (
    NoteError,
    NoteVerificationError,
    SignatureCheck,
    VerifierKey,
    open_note,
)

ANSWER_FORMAT = "ghostpost-verify/v1"
STEPS = {
    1: "key",
    2: "checkpoint",
    3: "size",
    4: "inclusion",
    5: "leaf",
    6: "writer",
}


class AnswerRefused(ValueError):
    """The answer does not check out; `step` is the number of the failed step (1-6)."""

    def __init__(self, step: int, reason: str) -> None:
        super().__init__(f"step {step} ({STEPS[step]}): {reason}")
        self.step = step
        self.reason = reason


def _object(value: Any, step: int, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise AnswerRefused(step, f"{what} is not an object")
    return value


def _int(value: Any, step: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise AnswerRefused(step, f"{what} is not an integer")
    return value


def check_answer(answer: Any, key: VerifierKey, check: SignatureCheck) -> str:
    """Check a verify answer against the trusted `key`; return its verdict or raise
    AnswerRefused naming the failed step."""
    answer = _object(answer, 5, "the answer")
    if answer.get("format") != ANSWER_FORMAT:
        raise AnswerRefused(5, f"the answer is not {ANSWER_FORMAT}")
    proof = answer.get("proof")
    if proof is None:
        raise AnswerRefused(4, "the answer carries no proof (unknown post, or proof pending)")
    proof = _object(proof, 4, "the proof")
    # 1. The key's name is the log's origin; an answer naming another key is not for it.
    origin = key.name
    named = proof.get("verifier_key")
    if named is not None and named != key.text():
        raise AnswerRefused(1, "the answer names another verifier key than the one trusted")
    # 2. The checkpoint: a signed note this key signed, for this origin.
    note_text = proof.get("checkpoint")
    if not isinstance(note_text, str):
        raise AnswerRefused(2, "the checkpoint is not a text")
    try:
        note = open_note(note_text.encode("utf-8"), [key], check)
        checkpoint = parse_tree_checkpoint(note.text)
    except (NoteError, NoteVerificationError, CheckpointFormatError) as exc:
        raise AnswerRefused(2, f"the checkpoint does not verify: {exc}") from None
    if checkpoint.origin != origin:
        raise AnswerRefused(2, f"the checkpoint is for {checkpoint.origin!r}, not {origin!r}")
    # 3. Sizes and index.
    size = _int(proof.get("tree_size"), 3, "tree_size")
    index = _int(proof.get("leaf_index"), 3, "leaf_index")
    if size != checkpoint.size:
        raise AnswerRefused(3, f"tree_size {size} is not the checkpoint's {checkpoint.size}")
    if not 0 <= index < size:
        raise AnswerRefused(3, f"leaf_index {index} is outside a tree of {size} leaves")
    # 4. The inclusion proof from the leaf's hash to the signed root.
    leaf_text = proof.get("leaf")
    inclusion = proof.get("inclusion")
    if not isinstance(leaf_text, str) or not isinstance(inclusion, list):
        raise AnswerRefused(4, "the leaf or the inclusion proof is missing")
    try:
        hashes = [base64.b64decode(str(h), validate=True) for h in inclusion]
    except (binascii.Error, ValueError):
        raise AnswerRefused(4, "an inclusion hash is not base64") from None
    try:
        verify_inclusion(
            leaf_hash(leaf_text.encode("utf-8")), index, size, hashes, checkpoint.root_hash
        )
    except ProofError as exc:
        raise AnswerRefused(4, f"the inclusion proof fails: {exc}") from None
    # 5. The leaf says what the answer says.
    try:
        leaf = _object(json.loads(leaf_text), 5, "the leaf")
    except ValueError:
        raise AnswerRefused(5, "the leaf is not JSON") from None
    post = _object(answer.get("post"), 5, "post")
    url = answer.get("url")
    expected = {
        "v": LEAF_FORMAT,
        "tag": "post:published",
        "seq": index + 1,
        "platform_url": url.strip() if isinstance(url, str) else url,
        "authorship": answer.get("verdict"),
        "disclosure": post.get("disclosure"),
    }
    for field, value in expected.items():
        if leaf.get(field) != value or type(leaf.get(field)) is not type(value):
            raise AnswerRefused(5, f"the leaf's {field} is not the answer's")
    if post.get("platform_url") != leaf.get("platform_url"):
        raise AnswerRefused(5, "the leaf's platform_url is not the answer's post")
    # 6. An auditor's writer opens the leaf's commitment.
    writer = answer.get("writer")
    if writer is not None:
        disclosure = _object(writer, 6, "writer").get("writer_disclosure")
        if not isinstance(disclosure, str) or commitment(WRITER_COMMIT_TAG, disclosure) != leaf.get(
            "writer_commit"
        ):
            raise AnswerRefused(6, "the writer disclosure does not open the leaf's commitment")
    return str(answer.get("verdict"))
