"""Bounded use: per-client rate limits and a bounded engine queue.

One client must not be able to make everyone else wait: with 200 parallel questions from one
client and no limits, a second client waited 70x longer. Two bounds, both answered at once
instead of queueing:

- `RateLimiter`: a token bucket per client key (the user when identity is on, else the address):
  `rate` requests per minute, in bursts of up to `rate`. Over it, the caller gets the seconds to
  wait (HTTP 429 with Retry-After, or a chat message).
- `Admission`: at most CART_MAX_PENDING questions waiting for or in the engine; beyond it a
  question is refused as "busy" (503) rather than joining a queue that only grows.

And one fair queue in front of the engine: `FairPool` takes waiting questions round-robin by
client, so the questions a client is allowed still do not make another client's single question
wait behind all of them (with a first-come-first-served pool, a 200-question burst put the other
users' p95 at 1.9 s even with the rate limit; `python -m benchmarks.flood`).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future
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


class FairPool:
    """Worker threads that take jobs round-robin across keys (clients), oldest first within a key.

    `submit(key, fn, *args)` returns a concurrent.futures.Future, like an executor's."""

    def __init__(self, workers: int, name: str = "cart-engine"):
        self._queues: OrderedDict[str, deque] = OrderedDict()
        self._cv = threading.Condition()
        for i in range(workers):
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True).start()

    def submit(self, key: str, fn, *args) -> Future:
        future: Future = Future()
        with self._cv:
            self._queues.setdefault(key, deque()).append((future, fn, args))
            self._cv.notify()
        return future

    def waiting(self) -> int:
        with self._cv:
            return sum(len(q) for q in self._queues.values())

    def _next(self):
        """Under the lock: the oldest job of the key whose turn it is; that key goes to the back."""
        key, jobs = next(iter(self._queues.items()))
        job = jobs.popleft()
        del self._queues[key]
        if jobs:
            self._queues[key] = jobs
        return job

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._queues:
                    self._cv.wait()
                future, fn, args = self._next()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to the caller, as an executor does
                future.set_exception(exc)
