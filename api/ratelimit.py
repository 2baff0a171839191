"""Per-key rate limiting: a token bucket for each API key, in the server process.

A key holds up to `burst` tokens and gains `rate` per second; a request takes one, and a
request that finds none is answered 429 with the seconds until one is back. The check
runs after the key is known and before any database work, so a key that floods the
registry is turned away for the price of a dictionary look-up and cannot starve the
other keys of the database.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class TokenBuckets:
    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> int:
        """0 when the request may go ahead; otherwise the whole seconds to wait."""
        if not self.enabled:
            return 0
        now = self.clock()
        tokens, then = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0
        self._buckets[key] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.rate))
