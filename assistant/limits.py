"""Bounded use: per-client rate limits and a bounded engine queue.

One client must not be able to make everyone else wait: with 200 parallel questions from one
client and no limits, a second client waited 70x longer. Two bounds, both answered at once
instead of queueing:

- `RateLimiter`: a token bucket per client key (the user when identity is on, else the address):
  `rate` requests per minute, in bursts of up to `rate`. Over it, the caller gets the seconds to
  wait (HTTP 429 with Retry-After, or a chat message).
- `Admission`: at most CART_MAX_PENDING questions waiting for or in the engine; beyond it a
  question is refused as "busy" (503) rather than joining a queue that only grows.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager

MAX_CLIENTS = 10_000  # buckets kept; the least recently seen are forgotten (a full bucket again)


class RateLimiter:
    """Token buckets by key. `check(key)` takes one token and returns 0, or returns the whole
    seconds until one is available (and takes nothing)."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0  # tokens per second
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, key: str) -> int:
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.refill)
            wait = 0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = max(1, math.ceil((1 - tokens) / self.refill))
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
            return wait


class Busy(Exception):
    """The engine queue is full: try again shortly."""

    message = "The assistant is busy answering other questions; please ask again in a few seconds."
    retry_after = 5


class Admission:
    """A counter of questions admitted to the engine (waiting or running), bounded by `limit`."""

    def __init__(self, limit: int):
        self.limit = limit
        self.pending = 0
        self._lock = threading.Lock()

    @contextmanager
    def slot(self):
        """Hold one place for the length of an answer; raises Busy when none is free."""
        with self._lock:
            if self.pending >= self.limit:
                raise Busy(Busy.message)
            self.pending += 1
        try:
            yield
        finally:
            with self._lock:
                self.pending -= 1


def too_many(wait: int, what: str = "questions") -> str:
    """The message for a client over its rate."""
    return f"Too many {what} from this client in the last minute; please wait {wait} s and try again."


_shared: dict[tuple[str, int], RateLimiter | Admission] = {}
_shared_lock = threading.Lock()


def shared(kind: str, size: int) -> RateLimiter | Admission:
    """The one limiter of a kind ("asks", "feedback": RateLimiter; "engine": Admission) and size,
    shared by the JSON API and the page so that a client cannot double its rate by using both."""
    with _shared_lock:
        key = (kind, size)
        if key not in _shared:
            _shared[key] = Admission(size) if kind == "engine" else RateLimiter(size)
        return _shared[key]
