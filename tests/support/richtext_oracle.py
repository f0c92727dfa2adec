"""`@atproto/api`'s own facet detection in one long-lived Node process (the differential oracle).

`tests/support/pds/richtext-oracle.js` reads one JSON string per line and answers one JSON line
per text: `[[kind, byteStart, byteEnd, value], ...]` from `RichText.detectFacetsWithoutResolution()`
(a mention's value is its handle). It uses the PDS harness's node modules, which `scripts/pds-deps`
installs in the test command; without them the fixture fails (never skips), saying so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from tests.support.bluesky_pds import INSTALL_HINT, PDS_DIR, PdsNotInstalled

SCRIPT = PDS_DIR / "richtext-oracle.js"

#: One facet as both sides report it: (kind, byte start, byte end, value).
FacetRow = tuple[str, int, int, str]


class RichTextOracle:
    """Asks the running Node process for the facets of texts, a batch per round trip."""

    def __init__(self, process: subprocess.Popen[str], versions: dict[str, Any]) -> None:
        self._process = process
        self.atproto_api_version: str = versions["atproto_api"]
        self.node_version: str = versions["node"]
        self.texts_checked = 0

    def facets(self, texts: Sequence[str]) -> list[list[FacetRow]]:
        """Return the library's facets of each text, in order."""
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        # ensure_ascii: every character travels as an escape, so no text can break the lines.
        stdin.write("".join(json.dumps(text) + "\n" for text in texts))
        stdin.flush()
        answers = []
        for _ in texts:
            line = stdout.readline()
            if not line:
                raise RuntimeError(f"the oracle process ended (exit {self._process.poll()})")
            answers.append([tuple(row) for row in json.loads(line)])
        self.texts_checked += len(texts)
        return answers  # type: ignore[return-value]


@contextmanager
def running_oracle() -> Iterator[RichTextOracle]:
    """Start `node richtext-oracle.js`, wait for its greeting, stop it when the block ends."""
    node = shutil.which("node")
    if node is None:
        raise PdsNotInstalled(f"node is not on PATH; {INSTALL_HINT}")
    if not (PDS_DIR / "node_modules" / "@atproto" / "api" / "package.json").is_file():
        raise PdsNotInstalled(f"@atproto/api is not installed under {PDS_DIR}; {INSTALL_HINT}")
    process = subprocess.Popen(
        [node, str(SCRIPT)],
        cwd=PDS_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        assert process.stdout is not None
        greeting = process.stdout.readline()
        if not greeting:
            raise RuntimeError(f"the oracle process did not start (exit {process.wait(10)})")
        yield RichTextOracle(process, json.loads(greeting))
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(scope="session")
def richtext_oracle() -> Iterator[RichTextOracle]:
    """One Node process answering for `@atproto/api` for the whole test session."""
    try:
        with running_oracle() as oracle:
            yield oracle
    except PdsNotInstalled as err:
        pytest.fail(f"@atproto/api oracle unavailable: {err}", pytrace=False)
