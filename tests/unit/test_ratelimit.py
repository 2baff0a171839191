from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.ratelimit import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_refused_until_tokens_come_back() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == 1  # half a second to the next token, rounded up
    clock.now += 0.5
    assert buckets.take("a") == 0
    assert buckets.take("a") == 1


def test_keys_have_their_own_buckets() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, clock=Clock())
    assert buckets.take("a") == 0
    assert buckets.take("a") == 1
    assert buckets.take("b") == 0


def test_a_bucket_never_holds_more_than_its_burst() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=10.0, burst=2, clock=clock)
    buckets.take("a")
    clock.now += 3600
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 1]


def test_a_rate_of_zero_switches_the_limit_off() -> None:
    buckets = TokenBuckets(rate=0, burst=1, clock=Clock())
    assert not any(buckets.take("a") for _ in range(100))


@given(
    rate=st.floats(min_value=0.1, max_value=1000),
    burst=st.integers(min_value=1, max_value=50),
    gaps=st.lists(st.floats(min_value=0, max_value=2), max_size=200),
)
def test_no_more_requests_pass_than_burst_plus_rate_times_time(
    rate: float, burst: int, gaps: list[float]
) -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=rate, burst=burst, clock=clock)
    passed = 0
    for gap in gaps:
        clock.now += gap
        wait = buckets.take("k")
        assert wait >= 0
        passed += wait == 0
    assert passed <= burst + rate * sum(gaps) + 1e-6
