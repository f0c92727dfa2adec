"""SQL compiled once per session, not once per test.

SQLAlchemy caches each statement's compiled form per engine (and per mapper for the ORM's
flushes), keyed by the engine's dialect object. Every test builds its own engine, so every
test compiled every statement it ran again: about 15% of a database test's CPU. Here the
caches of the tests' engines and of the mappers share one cache in which a dialect object is
replaced by its configuration (its class and every plain value it holds: server version,
parameter style, feature flags...). Two engines whose dialects are configured alike compile a
statement to the same SQL; a dialect configured differently gets its own entries. The cached
object is what SQLAlchemy would have compiled for this engine; production builds one engine
per process, whose own cache already does this.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapper
from sqlalchemy.util import LRUCache

#: Statements of the whole session: about 1,500 distinct ones per backend.
_SHARED: LRUCache[Any, Any] = LRUCache(20_000)
_PLAIN = frozenset({str, int, float, bool, bytes, type(None)})


def _plain(value: Any) -> bool:
    if value.__class__ is tuple:
        return all(_plain(item) for item in value)
    return value.__class__ in _PLAIN


def _configuration(dialect: Dialect) -> tuple[Any, ...]:
    """The dialect's class and plain attributes, read at each look-up: a dialect changes some
    of them when its first connection initialises it (server version, features), and it runs
    statements of its own while it does. Two dialects that set the same values in a different
    order only miss each other's entries."""
    return (dialect.__class__, *[(k, v) for k, v in vars(dialect).items() if _plain(v)])


def _shared_key(key: Any) -> Any:
    if isinstance(key, tuple) and key and isinstance(key[0], Dialect):
        return (_configuration(key[0]), *key[1:])
    return None


class _SessionCompiledCache(LRUCache[Any, Any]):
    """An engine's or mapper's compiled cache whose entries live in the session's cache."""

    __slots__ = ()

    def get(self, key: Any, default: Any = None) -> Any:
        shared = _shared_key(key)
        if shared is None:
            return super().get(key, default)
        return _SHARED.get(shared, default)

    def __setitem__(self, key: Any, value: Any) -> None:
        shared = _shared_key(key)
        if shared is None:
            super().__setitem__(key, value)
        else:
            _SHARED[shared] = value


def share_engine_statements(engine: Engine) -> None:
    """Make the engine's compiled cache (which its option engines hold too) the session's."""
    cache = engine._compiled_cache
    if cache is not None and type(cache) is LRUCache:
        cache.__class__ = _SessionCompiledCache


def share_mapper_statements(mappers: Any) -> None:
    """The same for the ORM's flush statements, cached per mapper."""
    for mapper in mappers:
        base: Mapper[Any] = mapper.base_mapper
        cache = base._compiled_cache
        if type(cache) is LRUCache:
            cache.__class__ = _SessionCompiledCache
