"""Hypothesis texts for the Bluesky facet differential test: the places detectors disagree.

Texts are built from tokens (links with IDN hosts and non-ASCII paths, bare domains, mentions,
hashtags, cashtags, emoji and ZWJ sequences, words in many scripts) glued by separators that
matter to the rules (whitespace of every kind, quotes, brackets, trailing punctuation, zero-width
characters). No lone surrogates: such a text cannot be sent as UTF-8 at all.
"""

from __future__ import annotations

import random

from hypothesis import strategies as st

SCRIPTS_WORDS = [
    "team",
    "Team",
    "TEAM",
    "grüße",
    "straße",
    "中文",
    "日本語",
    "パス",
    "한국말",
    "русский",
    "ελληνικά",
    "עברית",
    "العربية",
    "हिन्दी",
    "বাংলা",
    "ไทย",
    "ქართული",
    "français",
    "e\u0301",
    "ǅ",
    "ﬃ",
    "İstanbul",
    "ı",
    "Ω",
    "١٢٣",
    "１２３",
    "123",
    "a1",
    "_",
    "x-y",
]
EMOJI = [
    "😀",
    "👋🏽",
    "👨\u200d👩\u200d👧\u200d👦",
    "❤\ufe0f\u200d🔥",
    "🏳\ufe0f\u200d⚧\ufe0f",
    "🇺🇦",
    "#\ufe0f\u20e3",
    "1\ufe0f\u20e3",
    "🐦\u200d🔥",
    "🧑\u200d🧑\u200d🧒",
    "✌\ufe0e",
]
PUNCTUATION = [*list(".,;:!?()[]{}\"'’‘“”«»「」『』…-–—/\\@#$%&*+=<>|~^`"), "!!", "...", ").", ".)"]
SEPARATORS = [
    " ",
    " ",
    " ",
    "\n",
    "\t",
    "\r\n",
    "\u3000",
    "\u00a0",
    "\u2028",
    "\ufeff",
    "\u200b",
    "\u200d",
    "\u2060",
    "\u00ad",
    "\u0085",
    "\u202f",
    "",
]
TLDS = [
    "com",
    "org",
    "jp",
    "social",
    "test",
    "app",
    "dev",
    "io",
    "COM",
    "Com",
    "zz",
    "local",
    "localhost",
    "xn--p1ai",
    "みんな",
    "рф",
    "co.uk",
    "museum",
    "a",
]
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
ALNUM = LETTERS + "0123456789"
# Built from st.text over an alphabet: st.from_regex is ten times slower per draw.
ASCII_LABEL = st.builds(
    lambda first, rest, hyphen: first + rest + hyphen,
    st.sampled_from(LETTERS),
    st.text(ALNUM, max_size=8),
    st.sampled_from(["", "", "", "-x", "-0a", "--y"]),
)
IDN_LABELS = ["例え", "münchen", "bücher", "пример", "中国", "ドメイン", "xn--r8jz45g"]
IDN_LABEL = st.sampled_from(IDN_LABELS)
PATH_BITS = ["/", "?q=1", "&x=y", "#frag", "(a)", "(", ")", "%20", "~u", "@x"]
SCHEMES = ["https://", "http://", "", "", "HTTP://", "Https://", "ftp://"]
MENTION_SIGNS = ["@", "@", "＠", "@@"]
MENTION_ENDS = ["", "", ".", "-", "_", "!!", "@example.social"]
HASH_SIGNS = ["#", "#", "＃", "#\ufe0f", "##"]
CASH_SIGNS = ["$", "$", "＄", "$$"]
WRAPPERS = [('"', '"'), ("(", ")"), ("「", "」"), ("«", "»"), ("'", "’")]

# Any character but surrogates; the rules look at categories, so every plane is fair game.
ANY_CHAR = st.characters(exclude_categories=("Cs",))


@st.composite
def hosts(draw: st.DrawFn) -> str:
    labels = draw(st.lists(st.one_of(ASCII_LABEL, IDN_LABEL), min_size=1, max_size=3))
    host = ".".join(labels) + "." + draw(st.sampled_from(TLDS))
    if draw(st.booleans()):
        host = draw(st.sampled_from(["localhost", "127.0.0.1", host]))
    if draw(st.integers(0, 4)) == 0:
        host += ":" + str(draw(st.integers(0, 65535)))
    return host


@st.composite
def paths(draw: st.DrawFn) -> str:
    pieces = draw(
        st.lists(
            st.one_of(
                st.sampled_from(SCRIPTS_WORDS + EMOJI),
                st.sampled_from(PATH_BITS),
                st.text(ANY_CHAR, max_size=3),
            ),
            max_size=4,
        )
    )
    return "".join(pieces)


@st.composite
def links(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(SCHEMES))
    slash = draw(st.sampled_from(["", "/", "/"]))
    return scheme + draw(hosts()) + slash + draw(paths())


@st.composite
def mentions(draw: st.DrawFn) -> str:
    handle = ".".join(draw(st.lists(ASCII_LABEL, min_size=1, max_size=3)))
    if draw(st.integers(0, 5)):
        handle += "." + draw(st.sampled_from(TLDS))
    return draw(st.sampled_from(MENTION_SIGNS)) + handle + draw(st.sampled_from(MENTION_ENDS))


@st.composite
def hashtags(draw: st.DrawFn) -> str:
    sign = draw(st.sampled_from(HASH_SIGNS))
    body = draw(
        st.lists(
            st.one_of(
                st.sampled_from(SCRIPTS_WORDS + EMOJI + PUNCTUATION[:12]),
                st.text(ANY_CHAR, max_size=2),
            ),
            max_size=3,
        )
    )
    if draw(st.integers(0, 9)) == 0:
        body.append("a" * draw(st.integers(60, 70)))
    return sign + "".join(body)


CASHTAGS = st.builds(
    lambda sign, ticker: sign + ticker,
    st.sampled_from(CASH_SIGNS),
    st.text(ALNUM, max_size=7),
)

TOKENS = st.one_of(
    links(),
    mentions(),
    hashtags(),
    CASHTAGS,
    st.sampled_from(SCRIPTS_WORDS + EMOJI + PUNCTUATION),
    st.text(ANY_CHAR, max_size=4),
)


@st.composite
def facet_texts(draw: st.DrawFn) -> str:
    """One post-like text: tokens, each maybe wrapped in quotes or brackets, between separators."""
    parts = []
    for token in draw(st.lists(TOKENS, min_size=1, max_size=8)):
        if draw(st.integers(0, 3)) == 0:
            opener, closer = draw(st.sampled_from(WRAPPERS))
            token = opener + token + closer
        if draw(st.integers(0, 3)) == 0:
            token += draw(st.sampled_from(PUNCTUATION))
        parts.append(token)
        parts.append(draw(st.sampled_from(SEPARATORS)))
    return "".join(parts)


# --- the same texts from a plain seeded Random -----------------------------------------------
# Drawing through hypothesis costs about 10 ms a text on this machine; these cost a few µs, so
# the differential test takes most of its thousands of texts from here (seeded by hypothesis,
# hence reproducible), and a few shrinkable ones from `facet_texts`.


def _random_char(rng: random.Random) -> str:
    while True:
        # Mostly the BMP, where the scripts are; sometimes any plane.
        code_point = rng.randrange(0x110000) if rng.random() < 0.2 else rng.randrange(0x10000)
        if not 0xD800 <= code_point <= 0xDFFF:
            return chr(code_point)


def _random_chars(rng: random.Random, most: int) -> str:
    return "".join(_random_char(rng) for _ in range(rng.randint(0, most)))


def _random_label(rng: random.Random) -> str:
    if rng.random() < 0.25:
        return rng.choice(IDN_LABELS)
    rest = "".join(rng.choice(ALNUM) for _ in range(rng.randint(0, 8)))
    return rng.choice(LETTERS) + rest + rng.choice(["", "", "", "-x", "-0a", "--y"])


def _random_host(rng: random.Random) -> str:
    host = ".".join(_random_label(rng) for _ in range(rng.randint(1, 3)))
    host += "." + rng.choice(TLDS)
    if rng.random() < 0.1:
        host = rng.choice(["localhost", "127.0.0.1"])
    if rng.random() < 0.2:
        host += ":" + str(rng.randrange(65536))
    return host


def _random_path(rng: random.Random) -> str:
    pieces = []
    for _ in range(rng.randint(0, 4)):
        kind = rng.randrange(3)
        if kind == 0:
            pieces.append(rng.choice(SCRIPTS_WORDS + EMOJI))
        elif kind == 1:
            pieces.append(rng.choice(PATH_BITS))
        else:
            pieces.append(_random_chars(rng, 3))
    return "".join(pieces)


def _random_token(rng: random.Random) -> str:
    kind = rng.randrange(7)
    if kind == 0:
        scheme = rng.choice(SCHEMES)
        return scheme + _random_host(rng) + rng.choice(["", "/", "/"]) + _random_path(rng)
    if kind == 1:
        handle = ".".join(_random_label(rng) for _ in range(rng.randint(1, 3)))
        if rng.random() < 0.8:
            handle += "." + rng.choice(TLDS)
        return rng.choice(MENTION_SIGNS) + handle + rng.choice(MENTION_ENDS)
    if kind == 2:
        body = "".join(
            rng.choice(SCRIPTS_WORDS + EMOJI + PUNCTUATION[:12])
            if rng.random() < 0.6
            else _random_chars(rng, 2)
            for _ in range(rng.randint(0, 3))
        )
        if rng.random() < 0.1:
            body += "a" * rng.randint(60, 70)
        return rng.choice(HASH_SIGNS) + body
    if kind == 3:
        ticker = "".join(rng.choice(ALNUM) for _ in range(rng.randint(0, 7)))
        return rng.choice(CASH_SIGNS) + ticker
    if kind == 4:
        return rng.choice(SCRIPTS_WORDS + EMOJI + PUNCTUATION)
    return _random_chars(rng, 4)


def random_facet_text(rng: random.Random) -> str:
    """What `facet_texts` draws, from a plain Random."""
    parts = []
    for _ in range(rng.randint(1, 8)):
        token = _random_token(rng)
        if rng.random() < 0.25:
            opener, closer = rng.choice(WRAPPERS)
            token = opener + token + closer
        if rng.random() < 0.25:
            token += rng.choice(PUNCTUATION)
        parts.append(token)
        parts.append(rng.choice(SEPARATORS))
    return "".join(parts)
