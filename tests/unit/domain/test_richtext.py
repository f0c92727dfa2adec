"""Bluesky facets (ghostpost.domain.richtext) against `@atproto/api` itself.

Three layers: hand-written cases with exact bytes; the regression file
(tests/vectors/bluesky_facets_regressions.json: every disagreement ever found, with what the
library answers) checked without Node and, with the library, re-checked against it; and the
differential test, where hypothesis texts go through both and every facet must agree.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ghostpost.domain.bluesky_tlds import TLDS
from ghostpost.domain.richtext import detect_facets
from tests.support.richtext_oracle import FacetRow, RichTextOracle
from tests.unit.domain.richtext_strategies import facet_texts, random_facet_text

ROOT = Path(__file__).resolve().parents[3]
REGRESSIONS = ROOT / "tests" / "vectors" / "bluesky_facets_regressions.json"
PDS_MODULES = ROOT / "tests" / "support" / "pds" / "node_modules"
#: The version this port follows; a newer library fails the version test, then the port is redone.
ATPROTO_API_VERSION = "0.19.19"

#: Per hypothesis example (one round trip to Node each): a few texts drawn by hypothesis itself
#: (shrinkable) and many more from a Random it seeds (fast); 300 examples make 6,000 texts a run.
DRAWN_PER_EXAMPLE = 2
SEEDED_PER_EXAMPLE = 18
EXAMPLES = 300


def ours(text: str) -> list[FacetRow]:
    return [(f.kind, f.byte_start, f.byte_end, f.value) for f in detect_facets(text)]


def load_regressions() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(REGRESSIONS.read_text(encoding="utf-8"))
    return cases


def as_rows(facets: list[list[Any]]) -> list[FacetRow]:
    return [(kind, start, end, value) for kind, start, end, value in facets]


# --- hand-written, exact ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "https://例え.jp/パス", [("link", 0, 24, "https://例え.jp/パス")], id="non-ASCII path"
        ),
        pytest.param(
            "https://example.com/😀",
            [("link", 0, 24, "https://example.com/😀")],
            id="emoji path",
        ),
        pytest.param(
            "see example.com!!",
            [("link", 4, 16, "https://example.com!")],
            id="one of two ! is cut",
        ),
        pytest.param("see example.zz", [], id="bare domain needs a listed TLD"),
        pytest.param("see example.COM", [], id="the TLD list is case-sensitive"),
        pytest.param(
            "at http://localhost:3000 now",
            [("link", 3, 24, "http://localhost:3000")],
            id="localhost with a scheme",
        ),
        pytest.param('"https://example.com"', [], id="no link right after a quote"),
        pytest.param(
            "(https://x.com/a_(b))",
            [("link", 1, 21, "https://x.com/a_(b))")],
            id="a ) is kept when the link holds a (",
        ),
        pytest.param(
            "(see https://x.com).",
            [("link", 5, 18, "https://x.com")],
            id="only the ) is cut after .",
        ),
        pytest.param("HTTP://example.com", [], id="capital scheme makes no link"),
        pytest.param(
            "httpbin.org", [("link", 0, 11, "httpbin.org")], id="starts with http: kept as typed"
        ),
        pytest.param(
            "hi @Alice.test.",
            [("mention", 3, 14, "Alice.test")],
            id="capitalised handle, dot cut",
        ),
        pytest.param("hi @alice.zz", [], id="handle needs a listed TLD or .test"),
        pytest.param("mail a@b.com", [], id="an address is neither mention nor link"),
        pytest.param(
            "buy $AAPL, $tsla!",
            [("tag", 4, 9, "$AAPL"), ("tag", 11, 16, "$TSLA")],
            id="cashtags upper-cased",
        ),
        pytest.param("$ABCDEF $1A", [], id="cashtag: at most 5, starts with a letter"),
        pytest.param(
            "Go #team!! ＃Team",
            [("tag", 3, 8, "team"), ("tag", 11, 18, "Team")],
            id="hashtags",
        ),
        pytest.param(
            "x https://x.com/(@bob.test)",
            [("link", 2, 27, "https://x.com/(@bob.test)"), ("mention", 17, 26, "bob.test")],
            id="facets may overlap",
        ),
    ],
)
def test_facets_are_exactly_the_librarys(text: str, expected: list[FacetRow]) -> None:
    assert ours(text) == expected


def test_the_tld_table_is_the_installed_packages_ascii_part() -> None:
    index = PDS_MODULES / "tlds" / "index.json"
    if not index.is_file():
        pytest.fail("needs the PDS node modules: run scripts/pds-deps", pytrace=False)
    listed = json.loads(index.read_text(encoding="utf-8"))
    assert {tld for tld in listed if tld.isascii()} == TLDS
    assert not any("." in tld for tld in listed)  # what _valid_domain relies on


# --- the regression file ----------------------------------------------------------------------


@pytest.mark.parametrize("case", load_regressions(), ids=lambda case: case["why"][:60])
def test_every_disagreement_ever_found_stays_fixed(case: dict[str, Any]) -> None:
    assert ours(case["text"]) == as_rows(case["facets"])


@pytest.mark.slow
def test_the_regression_file_is_what_the_installed_library_answers(
    richtext_oracle: RichTextOracle,
) -> None:
    assert richtext_oracle.atproto_api_version == ATPROTO_API_VERSION
    cases = load_regressions()
    answers = richtext_oracle.facets([case["text"] for case in cases])
    for case, answer in zip(cases, answers, strict=True):
        assert answer == as_rows(case["facets"]), case["why"]


# --- the differential test --------------------------------------------------------------------


@pytest.mark.slow
def test_every_facet_agrees_with_atproto_api(richtext_oracle: RichTextOracle) -> None:
    checked: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        drawn=st.lists(facet_texts(), min_size=DRAWN_PER_EXAMPLE, max_size=DRAWN_PER_EXAMPLE),
        rng=st.randoms(use_true_random=True),
    )
    def agree(drawn: list[str], rng: random.Random) -> None:
        texts = drawn + [random_facet_text(rng) for _ in range(SEEDED_PER_EXAMPLE)]
        answers = richtext_oracle.facets(texts)
        for text, answer in zip(texts, answers, strict=True):
            # On a failure: add the text and the library's answer to the regression file.
            assert ours(text) == answer, json.dumps(text)
        checked.append(len(texts))

    started = time.perf_counter()
    agree()
    # Printed, never asserted on: how long one run takes (see -s or the captured output).
    print(f"differential: {sum(checked)} texts in {time.perf_counter() - started:.1f} s")
    assert sum(checked) >= 5000
