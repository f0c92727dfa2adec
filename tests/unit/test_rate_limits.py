"""The in-process moving window of ghostpost.rate_limits (memory://), on a controlled clock."""

from __future__ import annotations

from ghostpost.rate_limits import MemoryRateLimiter, SharedRateLimiter, parse_limit, rate_limiter


class Ticking:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_window_refuses_and_counts_nothing_more() -> None:
    clock = Ticking()
    limiter = MemoryRateLimiter(clock)
    three = parse_limit("3 per minute")
    assert [limiter.hit(three, "client", "a") for _ in range(5)] == [True] * 3 + [False] * 2
    # Refused hits are not counted: the window still holds exactly the three accepted ones.
    assert limiter.window(three, "client", "a").remaining == 0
    assert limiter.hit(three, "client", "b")  # another key has its own window


def test_the_window_moves_no_burst_of_twice_the_limit_at_its_edge() -> None:
    clock = Ticking()
    limiter = MemoryRateLimiter(clock)
    two = parse_limit("2 per minute")
    assert limiter.hit(two, "k")
    clock.now += 50
    assert limiter.hit(two, "k")
    assert not limiter.hit(two, "k")
    # A fixed window restarting at 60 s would let two more through here; the moving one lets
    # one through once the first hit is 60 s old, the second 50 s later.
    window = limiter.window(two, "k")
    assert window.remaining == 0 and window.retry_after == 10
    clock.now += 10
    assert limiter.test(two, "k")
    assert limiter.hit(two, "k")
    assert not limiter.hit(two, "k")
    assert limiter.window(two, "k").retry_after == 50


def test_limits_of_different_sizes_count_apart_for_the_same_key() -> None:
    limiter = MemoryRateLimiter(Ticking())
    one, five = parse_limit("1 per minute"), parse_limit("5 per 15 minutes")
    assert limiter.hit(one, "pair")
    assert not limiter.hit(one, "pair")
    assert limiter.window(five, "pair").remaining == 5


def test_keys_whose_hits_all_expired_are_forgotten() -> None:
    clock = Ticking()
    limiter = MemoryRateLimiter(clock)
    second = parse_limit("1 per second")
    for n in range(10_001):
        clock.now += 2
        assert limiter.hit(second, f"address-{n}")
    # The sweep ran at the 10,000th hit: only keys with a hit still in its window remain.
    assert len(limiter._hits) <= 2


def test_the_storage_uri_picks_the_store() -> None:
    assert isinstance(rate_limiter("memory://"), MemoryRateLimiter)
    assert isinstance(rate_limiter("redis://127.0.0.1:1"), SharedRateLimiter)


def test_reading_a_key_never_hit_stores_nothing() -> None:
    limiter = MemoryRateLimiter(now=lambda: 100.0)
    limit = parse_limit("5 per minute")
    assert limiter.test(limit, "sign-in", "203.0.113.9")
    assert limiter.window(limit, "sign-in", "203.0.113.10").remaining == 5
    assert limiter._hits == {}
    assert limiter.hit(limit, "sign-in", "203.0.113.9")
    assert limiter.window(limit, "sign-in", "203.0.113.9").remaining == 4
