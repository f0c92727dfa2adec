"""The one rate limiter of both HTTP surfaces: moving-window counters keyed by strings.

Limits are written in the `limits` notation ("10 per minute", "5 per 15 minutes"). A limit of
N per window W lets a key through when fewer than N of its hits fall in the last W seconds
(a moving window: no burst of 2N at a window's edge).

`rate_limiter(storage_uri)` picks the store from `rate_limit_storage_uri`:

- `memory://`: counters of this process, shared by its threads (a deque of hit times per key,
  under one lock; old hits are dropped as they leave the window). Cheap: a hit costs a few
  microseconds, however many hits the window holds.
- `redis://` / `rediss://`: the `limits` library's moving window in Redis, shared by every
  process and host that uses the same URL (same keys as before this module existed).

Who uses it: the sign-in and second-factor limits of the web surface (ghostpost.web.security),
the API clients' budgets and the token endpoint (ghostpost.api.oauth).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from limits import RateLimitItem, parse, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

__all__ = ["Limit", "RateLimiter", "Window", "parse_limit", "parse_limits", "rate_limiter"]

#: A rate limit ("10 per minute"), as parsed by `limits`.
Limit = RateLimitItem


def parse_limit(text: str) -> Limit:
    """Parse one limit ("10 per minute"); ValueError when it does not read like one."""
    return parse(text)


def parse_limits(text: str) -> list[Limit]:
    """Parse one or more limits separated by ';' or ','."""
    return parse_many(text)


@dataclass(frozen=True)
class Window:
    """A key's state under a limit: hits still allowed now, and seconds until the oldest hit
    in the window leaves it (when one more hit becomes possible again, if none remain)."""

    remaining: int
    reset_in: float

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait, at least 1 (an HTTP Retry-After value)."""
        return max(1, math.ceil(self.reset_in))


class RateLimiter(Protocol):
    def hit(self, limit: Limit, *keys: str) -> bool:
        """Count one hit for `keys` under `limit`; False (and nothing counted) when full."""
        ...

    def test(self, limit: Limit, *keys: str) -> bool:
        """Tell whether one more hit would be allowed now (counts nothing)."""
        ...

    def window(self, limit: Limit, *keys: str) -> Window:
        """Return the key's window under `limit`."""
        ...


#: Memory store: drop keys whose hits all expired once this many hits went by.
_SWEEP_EVERY = 10_000


class MemoryRateLimiter:
    """Moving windows in this process's memory (memory://)."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._lock = threading.Lock()
        #: (amount, seconds, *keys) -> hit times, oldest first.
        self._hits: dict[tuple[object, ...], deque[float]] = {}
        self._expiry: dict[tuple[object, ...], float] = {}
        self._since_sweep = 0

    @staticmethod
    def _key(limit: Limit, keys: tuple[str, ...]) -> tuple[object, ...]:
        return (limit.amount, limit.get_expiry(), *keys)

    def _recent(self, key: tuple[object, ...], seconds: float, now: float) -> deque[float]:
        """The key's hits still in the window (caller holds the lock). A key never hit gets a
        fresh empty deque that is not stored: only hits create entries, so reads of unknown
        keys (a test() per sign-in address) never grow the table."""
        hits = self._hits.get(key)
        if hits is None:
            return deque()
        cutoff = now - seconds
        while hits and hits[0] <= cutoff:
            hits.popleft()
        return hits

    def _sweep(self, now: float) -> None:
        expired = [
            key
            for key, hits in self._hits.items()
            if not hits or hits[-1] <= now - self._expiry[key]
        ]
        for key in expired:
            del self._hits[key], self._expiry[key]

    def hit(self, limit: Limit, *keys: str) -> bool:
        seconds = limit.get_expiry()
        with self._lock:
            now = self._now()
            key = self._key(limit, keys)
            hits = self._recent(key, seconds, now)
            if len(hits) >= limit.amount:
                return False
            if key not in self._hits:
                self._hits[key], self._expiry[key] = hits, seconds
            hits.append(now)
            self._since_sweep += 1
            if self._since_sweep >= _SWEEP_EVERY:
                self._since_sweep = 0
                self._sweep(now)
            return True

    def test(self, limit: Limit, *keys: str) -> bool:
        return self.window(limit, *keys).remaining > 0

    def window(self, limit: Limit, *keys: str) -> Window:
        seconds = limit.get_expiry()
        with self._lock:
            now = self._now()
            hits = self._recent(self._key(limit, keys), seconds, now)
            oldest = hits[0] if hits else now
            return Window(max(0, limit.amount - len(hits)), oldest + seconds - now)


class SharedRateLimiter:
    """Moving windows in Redis through `limits` (redis://, rediss://)."""

    def __init__(self, storage_uri: str) -> None:
        self._strategy = MovingWindowRateLimiter(storage_from_string(storage_uri))

    def hit(self, limit: Limit, *keys: str) -> bool:
        return bool(self._strategy.hit(limit, *keys))

    def test(self, limit: Limit, *keys: str) -> bool:
        return bool(self._strategy.test(limit, *keys))

    def window(self, limit: Limit, *keys: str) -> Window:
        stats = self._strategy.get_window_stats(limit, *keys)
        return Window(stats.remaining, stats.reset_time - time.time())


def rate_limiter(storage_uri: str) -> RateLimiter:
    """Return the limiter for `rate_limit_storage_uri` (memory:// or a Redis URL)."""
    if storage_uri.startswith("memory://"):
        return MemoryRateLimiter()
    return SharedRateLimiter(storage_uri)
