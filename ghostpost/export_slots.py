"""Counters of the exports streaming right now (ghostpost.services.exports.ExportSlots).

Each running export holds a lease in every counter it counts against (all exports, its
reader). A lease expires unless renewed, so a process that dies mid-export cannot hold a slot
for good; a download renews its lease with every chunk it sends. Two stores:

- `MemorySlots`: counters of this process, shared by its threads (memory:// rate-limit storage).
- `RedisSlots`: counters in Redis, shared by every process and host that uses the same
  `rate_limit_storage_uri`, so the caps hold across gunicorn processes.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from typing import Any

#: A counter and how many leases it may hold at once.
Limit = tuple[str, int]

_KEY_PREFIX = "ghostpost:export-slots:"

# Atomic check-and-take over every counter: expired leases are dropped, then the lease is added
# to all counters only when none is full. KEYS: counters; ARGV: now, expiry, lease, ttl, caps.
_ACQUIRE = """
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  if redis.call('ZCARD', key) >= tonumber(ARGV[4 + i]) then return 0 end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[2], ARGV[3])
  redis.call('EXPIRE', key, ARGV[4])
end
return 1
"""


class Lease:
    """One export's hold on its slots: renew while sending, release when done (idempotent)."""

    def __init__(
        self,
        renew: Callable[[], None],
        release: Callable[[], None],
        now: Callable[[], float],
        ttl: float,
    ) -> None:
        self._renew, self._release, self._now, self._ttl = renew, release, now, ttl
        self._renewed = now()
        self._released = False
        self._lock = threading.Lock()

    def renew(self) -> None:
        """Push the expiry back (at most a few times per lifetime, not on every chunk)."""
        now = self._now()
        if now - self._renewed < self._ttl / 4:
            return
        with self._lock:
            if not self._released:
                self._renew()
                self._renewed = now

    def release(self) -> None:
        """Give the slots back."""
        with self._lock:
            if self._released:
                return
            self._released = True
        self._release()


class MemorySlots:
    """Counters of this process (thread-safe)."""

    def __init__(self, now: Callable[[], float], ttl: float) -> None:
        self._now, self._ttl = now, ttl
        self._lock = threading.Lock()
        #: counter -> lease id -> expiry
        self._held: dict[str, dict[str, float]] = {}

    def acquire(self, limits: Sequence[Limit]) -> Lease | None:
        """Take a slot in every counter, or none when one of them is full."""
        lease_id = secrets.token_hex(8)
        with self._lock:
            now = self._now()
            for key, cap in limits:
                held = self._held.setdefault(key, {})
                for stale in [lease for lease, expiry in held.items() if expiry <= now]:
                    del held[stale]
                if len(held) >= cap:
                    return None
            for key, _ in limits:
                self._held[key][lease_id] = now + self._ttl
        keys = [key for key, _ in limits]

        def renew() -> None:
            with self._lock:
                for key in keys:
                    if lease_id in self._held.get(key, {}):
                        self._held[key][lease_id] = self._now() + self._ttl

        def release() -> None:
            with self._lock:
                for key in keys:
                    self._held.get(key, {}).pop(lease_id, None)

        return Lease(renew, release, self._now, self._ttl)


class RedisSlots:
    """Counters in Redis (sorted sets of lease ids scored by expiry), shared by processes."""

    def __init__(self, url: str, now: Callable[[], float], ttl: float) -> None:
        import redis  # only installations with a Redis rate-limit storage need it

        self._redis: Any = redis.Redis.from_url(url)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._now, self._ttl = now, ttl

    def acquire(self, limits: Sequence[Limit]) -> Lease | None:
        """Take a slot in every counter, or none when one of them is full (one atomic script)."""
        lease_id = secrets.token_hex(8)
        keys = [_KEY_PREFIX + key for key, _ in limits]
        now = self._now()
        taken = self._acquire(
            keys=keys,
            args=[now, now + self._ttl, lease_id, int(self._ttl) + 1, *[cap for _, cap in limits]],
        )
        if not taken:
            return None

        def renew() -> None:
            expiry = self._now() + self._ttl
            with self._redis.pipeline() as pipe:
                for key in keys:
                    pipe.zadd(key, {lease_id: expiry}, xx=True)
                    pipe.expire(key, int(self._ttl) + 1)
                pipe.execute()

        def release() -> None:
            with self._redis.pipeline() as pipe:
                for key in keys:
                    pipe.zrem(key, lease_id)
                pipe.execute()

        return Lease(renew, release, self._now, self._ttl)


def make_slots(storage_uri: str, now: Callable[[], float], ttl: float) -> MemorySlots | RedisSlots:
    """Return the counters for a rate-limit storage URI (memory:// or redis://)."""
    if storage_uri.startswith(("redis://", "rediss://")):
        return RedisSlots(storage_uri, now, ttl)
    return MemorySlots(now, ttl)
