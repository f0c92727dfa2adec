"""The /verify page's proof check (static/verify.js) in Chromium: WebCrypto Ed25519 and SHA-256,
C2SP signed notes, RFC 9162 inclusion, the leaf checks (docs/verify-answer.md steps 1–6).

The answer is built here from the real pieces (ledger entries, public leaves, the Merkle tree, a
TreeCheckpoint signed by an Ed25519 key from ghostpost.audit.keys) for a 5-leaf tree. One server
and one page serve the whole module; the check's pure functions are called through
`window.GhostpostVerify`, the forms through the page.
"""

from __future__ import annotations

import base64
import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.sync_api import Page, expect

from ghostpost.audit.keys import Ed25519Signer
from ghostpost.audit.notes import sign_checkpoint, sign_note, verifier_key_of
from ghostpost.domain.checkpoint import TreeCheckpoint
from ghostpost.domain.ledger import GENESIS_HASH, LedgerTag, chain_entry
from ghostpost.domain.merkle import inclusion_proof, sequence_reader, tree_head
from ghostpost.domain.public_leaf import public_leaf, writer_disclosure
from ghostpost.domain.signed_note import ed25519_verifier_key, parse_verifier_key
from ghostpost.services.verification import log_verifier_key
from tests.support.live import LiveServer
from tests.support.live import live_server as running_server

ORIGIN = "verify.ghostpost.test/log"
POST_URL = "https://example.social/@avery/110000000000000042"
TD_INCLUSION = (
    Path(__file__).resolve().parents[1]
    / "vectors"
    / "transparency-dev-merkle"
    / "testdata"
    / "inclusion"
)


def build_answer(
    signer: Ed25519Signer, origin: str, *, writer: str | None = None
) -> dict[str, Any]:
    """A verify answer for the team's post at seq 3 of a 5-entry ledger, as the service makes it."""
    published = {
        "account_id": 1,
        "kind": "post",
        "platform_post_id": "110000000000000042",
        "platform_url": POST_URL,
        "window_id": 3,
        "disclosure": "tagged",
        "final_text": "Great panel at the summit today #team",
        "writer": 7,
        "delegated": True,
    }
    rows = [
        (LedgerTag.PRINCIPAL_CREATED, {"name": "Avery"}),
        (LedgerTag.USER_CREATED, {"email": "jordan@example.test"}),
        (LedgerTag.POST_PUBLISHED, published),
        (LedgerTag.WINDOW_CREATED, {"reason": "Web Summit"}),
        (LedgerTag.USER_CREATED, {"email": "casey@example.test"}),
    ]
    entries, salts, previous = [], [], GENESIS_HASH
    for seq, (tag, data) in enumerate(rows, start=1):
        entry = chain_entry(
            seq=seq,
            occurred_at=f"2027-05-12T09:0{seq}:00Z",
            tag=tag.value,
            actor="user:7",
            subject=f"post:{seq}",
            data=data,
            prev_hash=previous,
        )
        entries.append(entry)
        salts.append(os.urandom(32))
        previous = entry.entry_hash
    leaves = [public_leaf(e, s) for e, s in zip(entries, salts, strict=True)]
    read = sequence_reader([leaf.leaf_hash for leaf in leaves])
    size, index = len(leaves), 2
    checkpoint = TreeCheckpoint(origin, size, tree_head(read, size))
    return {
        "format": "ghostpost-verify/v1",
        "url": POST_URL,
        "verdict": "team",
        "summary": 'Written by the team during the window "Web Summit"; it carried #team.',
        "principal": None,
        "account": {"platform": "mastodon", "handle": "avery"},
        "post": {
            "platform_url": POST_URL,
            "published_at": "2027-05-12T09:03:00Z",
            "disclosure": "tagged",
        },
        "window": None,
        "writer": (
            None
            if writer is None
            else {"name": writer, "writer_disclosure": writer_disclosure(salts[index], 7)}
        ),
        "proof": {
            "leaf": leaves[index].data.decode("utf-8"),
            "leaf_index": index,
            "tree_size": size,
            "inclusion": [base64.b64encode(h).decode() for h in inclusion_proof(read, index, size)],
            "checkpoint": sign_checkpoint(checkpoint, signer).decode("utf-8"),
            "verifier_key": verifier_key_of(signer, origin).text(),
        },
    }


def altered(answer: dict[str, Any], change: Any) -> dict[str, Any]:
    copied = copy.deepcopy(answer)
    change(copied)
    return copied


def in_proof(**changes: Any) -> Any:
    """A change to the answer's proof object."""
    return lambda answer: answer["proof"].update(changes)


def flip_base64(text: str, at: int = 0) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def flip_signature(checkpoint: str) -> str:
    text, _, line = checkpoint.rstrip("\n").rpartition("\n")
    prefix, _, blob = line.rpartition(" ")
    return f"{text}\n{prefix} {flip_base64(blob, at=10)}\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("verify-page")) as running:
        yield running


@pytest.fixture(scope="module")
def verify_page(browser, server: LiveServer) -> Iterator[Page]:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    context.close()


def with_script(page: Page, server: LiveServer) -> Page:
    """The bare /verify page with verify.js loaded (allowed by the page's CSP: same origin)."""
    page.goto(server.url + "/verify")
    page.add_script_tag(url="/static/verify.js")
    page.wait_for_function("() => window.GhostpostVerify !== undefined")
    return page


def check(page: Page, answer: dict[str, Any], key: str) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        "([answer, key]) => window.GhostpostVerify.checkAnswer(answer, key)", [answer, key]
    )
    return result


def test_the_inclusion_check_agrees_with_transparency_dev_vectors(
    verify_page: Page, server: LiveServer
) -> None:
    probes = []
    for path in sorted(TD_INCLUSION.rglob("*.json")):
        probe = json.loads(path.read_text())
        probes.append(
            {
                "name": f"{path.parent.name}/{path.name}",
                "leaf": probe["leafHash"],
                "index": str(probe["leafIdx"]),
                "size": str(probe["treeSize"]),
                "proof": probe["proof"] or [],
                "root": probe["root"],
                "wantErr": probe["wantErr"],
            }
        )
    page = with_script(verify_page, server)

    outcomes = page.evaluate(
        """async (probes) => {
          const V = window.GhostpostVerify;
          const bytes = (t) => V.fromBase64(t) || new Uint8Array();
          const out = {};
          for (const p of probes) {
            out[p.name] = await V.verifyInclusion(bytes(p.leaf), BigInt(p.index), BigInt(p.size),
              p.proof.map(bytes), bytes(p.root));
          }
          return out;
        }""",
        probes,
    )

    assert len(probes) == 98
    assert sum(not p["wantErr"] for p in probes) >= 5  # happy paths among them
    wrong = [p["name"] for p in probes if outcomes[p["name"]] is p["wantErr"]]
    assert not wrong, f"verify.js disagrees with transparency-dev on {wrong}"


def test_a_real_answer_passes_and_each_alteration_fails_at_its_step(
    verify_page: Page, server: LiveServer
) -> None:
    signer = Ed25519Signer(Ed25519PrivateKey.generate())
    key = verifier_key_of(signer, ORIGIN).text()
    answer = build_answer(signer, ORIGIN, writer="Jordan Park")
    proof = answer["proof"]
    # The same key signing another log's head (a staging instance) under the log's key name.
    staging = TreeCheckpoint("staging.ghostpost.test/log", proof["tree_size"], b"\x00" * 32)
    other_origin = sign_note(staging.text(), signer, ORIGIN).encode().decode()
    lines = proof["checkpoint"].split("\n")
    leaf, at = proof["leaf"], proof["leaf"].index('"tagged"') + 1
    path = [*proof["inclusion"][:1], flip_base64(proof["inclusion"][1]), *proof["inclusion"][2:]]
    wrong_writer = {"name": "Casey", "writer_disclosure": writer_disclosure(b"\x01" * 32, 7)}
    mutants = {
        "the leaf, one byte": (in_proof(leaf=leaf[:at] + "T" + leaf[at + 1 :]), 4),
        "an inclusion hash": (in_proof(inclusion=path), 4),
        "the signature": (in_proof(checkpoint=flip_signature(proof["checkpoint"])), 2),
        "the tree size": (in_proof(tree_size=6), 3),
        "the checkpoint's size": (in_proof(checkpoint="\n".join([lines[0], "6", *lines[2:]])), 2),
        "the leaf index": (in_proof(leaf_index=3), 4),
        "the origin": (in_proof(checkpoint=other_origin), 2),
        "the verdict": (lambda a: a.update(verdict="principal"), 5),
        "the URL": (lambda a: a.update(url=POST_URL + "1"), 5),
        "the writer": (lambda a: a.update(writer=wrong_writer), 6),
    }
    page = with_script(verify_page, server)

    assert check(page, answer, key) == {"ok": True}
    for name, (change, step) in mutants.items():
        result = check(page, altered(answer, change), key)
        assert (result["ok"], result.get("step")) == (False, step), (name, result)
    # The answer's own key is not the one trusted: another key in the page fails at step 2.
    stranger = verifier_key_of(Ed25519Signer(Ed25519PrivateKey.generate()), ORIGIN).text()
    assert check(page, answer, stranger)["step"] == 2
    refused = check(page, altered(answer, in_proof(checkpoint=other_origin)), key)
    assert "staging.ghostpost.test/log" in refused["message"]
    # Half of all keys hold a "+" in their base64; only the first two "+" separate the parts.
    plus_key = ed25519_verifier_key(ORIGIN, b">" * 32)
    assert (
        page.evaluate(
            "(k) => window.GhostpostVerify.parseVerifierKey(k).then((p) => p.keyId)",
            plus_key.text(),
        )
        == f"{plus_key.key_id:08x}"
    )


def paste(page: Page, server: LiveServer, answer: dict[str, Any]) -> None:
    page.goto(server.url + "/verify")
    page.get_by_label("Answer (JSON)").fill(json.dumps(answer, indent=2))
    page.get_by_role("button", name="Check proof").click()


def test_a_pasted_answer_is_checked_against_the_logs_published_key(
    verify_page: Page, server: LiveServer, screenshots: Path
) -> None:
    key_text = log_verifier_key(server.container.services)
    signer = server.container.keyring.signer()
    origin = parse_verifier_key(key_text).name
    assert verifier_key_of(signer, origin).text() == key_text, "the log's key is the ledger key"
    answer = build_answer(signer, origin, writer="Jordan Park")
    answer["summary"] = "Written by the team </script><script>document.title='owned'</script>"

    paste(verify_page, server, answer)

    expect(verify_page.locator("#proof-status")).to_have_text("Proof checked in your browser")
    expect(verify_page.get_by_role("heading", name="Written by the team")).to_be_visible()
    expect(verify_page.locator("#log-key")).to_have_text(key_text)
    # A visitor is no auditor: the answer shown (and embedded) names nobody; only the textarea
    # gives the visitor's own paste back.
    assert "Jordan Park" not in verify_page.locator("section.verify-answer").inner_html()
    assert verify_page.title() == "Verify a post · ghostpost"
    verify_page.screenshot(path=screenshots / "verify-proof-checked.png")

    leaf = answer["proof"]["leaf"]
    at = leaf.index('"tagged"') + 1
    answer["proof"]["leaf"] = leaf[:at] + "T" + leaf[at + 1 :]
    stranger = Ed25519Signer(Ed25519PrivateKey.generate())
    answer["proof"]["verifier_key"] = verifier_key_of(stranger, origin).text()
    paste(verify_page, server, answer)

    expect(verify_page.locator("#proof-status")).to_have_text(
        "Proof check failed at step 4: the inclusion proof does not lead from the leaf to the "
        "checkpoint's root"
    )
    expect(verify_page.locator("#other-key")).to_contain_text("It is not trusted")
