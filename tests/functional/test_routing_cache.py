"""The test session shares werkzeug's rule compilation between apps (tests/support/
routing_cache.py): every rule of an app built after others is compiled exactly as werkzeug
would compile it for that app alone, with converters of its own map."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from werkzeug.routing import Rule

from ghostpost import create_app, mastodon_face
from ghostpost.bootstrap import Container
from tests.support import routing_cache

pytestmark = pytest.mark.backend_independent(
    "compares compiled URL rules of apps built by the test harness; no request is made"
)


def compiled_alone(rule: Rule) -> Rule:
    """The rule compiled by werkzeug itself, on the same map, sharing nothing."""
    fresh = rule.empty()
    fresh.map = rule.map
    fresh.strict_slashes, fresh.merge_slashes = rule.strict_slashes, rule.merge_slashes
    fresh.subdomain = rule.subdomain
    routing_cache._compile(fresh)
    return fresh


def converters(rule: Rule) -> dict[str, tuple[type, dict[str, Any]]]:
    return {
        name: (type(c), {k: v for k, v in vars(c).items() if k != "map"})
        for name, c in rule._converters.items()
    }


def builder_code(rule: Rule, unknown: bool) -> tuple[Any, ...]:
    code = (rule._build_unknown if unknown else rule._build).__func__.__code__  # type: ignore[attr-defined]
    return (code.co_code, code.co_consts, code.co_varnames, code.co_name)


def test_an_app_built_after_others_compiles_its_rules_as_werkzeug_would(
    app: Flask, container: Container
) -> None:
    later = create_app(container=container)  # the cache is warm: every rule shape was seen
    maps = (later.url_map, mastodon_face(later).url_map)  # the Mastodon face is an app too
    rules = [rule for url_map in maps for rule in url_map.iter_rules()]
    assert len(rules) > 100
    assert Rule.compile is routing_cache._shared_compile

    for rule in rules:
        alone = compiled_alone(rule)
        assert rule._parts == alone._parts, rule.rule
        assert rule._trace == alone._trace, rule.rule
        assert rule.arguments == alone.arguments, rule.rule
        assert converters(rule) == converters(alone), rule.rule
        assert all(c.map is rule.map for c in rule._converters.values()), rule.rule
        assert rule.map in maps
        for unknown in (False, True):
            assert builder_code(rule, unknown) == builder_code(alone, unknown), rule.rule
            assert (rule._build_unknown if unknown else rule._build).__self__ is rule

    # The two apps share compiled code, never converters or rules.
    first = {
        (i, r.endpoint): r
        for i, url_map in enumerate((app.url_map, mastodon_face(app).url_map))
        for r in url_map.iter_rules()
    }
    for rule in rules:
        other = first[maps.index(rule.map), rule.endpoint]
        assert other is not rule
        for name, converter in rule._converters.items():
            assert other._converters[name] is not converter
