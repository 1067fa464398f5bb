"""Engine.ask in worker processes, so one app answers on every core.

One Python process computes one answer at a time whatever its thread count (the interpreter
lock); on the 2-core machine the app answered 10-15 questions a second with the second core mostly
idle. `EngineWorkers` keeps the app's own Engine for everything else (health, the index's
manifest, the Documents page's reload) and sends each `ask` to one of CART_ENGINE_PROCESSES
processes that each hold an Engine of their own over the same index.

What crosses to a worker is the question, the date of service and the conversation's resolved
turns (what follow-ups inherit); what comes back is the Answer and the turns with the new one.
The conversation itself (its id, its lock, its store) stays in the app, so nothing of a patient is
kept in a worker between questions. Workers are started with `spawn` (forking a process that
holds threads, Chroma and torch is unsafe), start loading their Engine when the app starts, and
follow rebuilds on their own (each Engine watches the live-index pointer). A worker that dies is
replaced: the question it held is answered by the app's own Engine instead, so it is not lost.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from assistant.answer import Answer
from assistant.engine import Conversation, Engine

_engine: Engine | None = None  # the worker process's own


def _start_worker(parent: int) -> None:
    """In each worker: ignore Ctrl-C (the app stops the workers), exit when the app is gone,
    and load the Engine before the first question."""
    global _engine
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def orphaned() -> None:  # a killed app must not leave engines behind holding memory
        while os.getppid() == parent:
            time.sleep(2)
        os._exit(0)

    threading.Thread(target=orphaned, daemon=True, name="cart-orphan-check").start()
    _engine = Engine()


def _ready() -> int:
    return os.getpid()


def _ask(text: str, conv_id: str, turns: list, today: dt.date | None, dos: str | None) -> tuple[Answer, list]:
    conv = Conversation(id=conv_id, turns=turns)
    answer = _engine.ask(text, conv, today=today, dos=dos)
    return answer, conv.turns


class EngineWorkers:
    """An Engine whose `ask` runs in `processes` worker processes; every other attribute is the
    local engine's."""

    def __init__(self, engine: Engine, processes: int):
        self.local = engine
        self.processes = processes
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker, initargs=(os.getpid(),))
        self.warming: list[Future] = [pool.submit(_ready) for _ in range(self.processes)]
        return pool

    def __getattr__(self, name: str):
        return getattr(self.local, name)

    def ask(self, text: str, conversation: Conversation | None = None,
            today: dt.date | None = None, dos: str | None = None) -> Answer:
        """Engine.ask's contract: the answer, and the conversation advanced by one turn."""
        conv = conversation or Conversation()
        with conv.lock:  # two asks of one conversation still run one after the other
            pool = self._pool
            try:
                answer, turns = pool.submit(_ask, text, conv.id, list(conv.turns), today, dos).result()
            except BrokenProcessPool:  # a worker died (killed, out of memory): replace the pool, answer here
                self._replace(pool)
            else:
                conv.turns[:] = turns
                return answer
        return self.local.ask(text, conv, today=today, dos=dos)

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:
                broken.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()

    def pids(self, timeout: float = 120.0) -> list[int]:
        """The workers' process ids once each has loaded its Engine (tests and benchmarks wait on it)."""
        return [f.result(timeout=timeout) for f in self.warming]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def with_workers(engine: Engine, processes: int) -> Engine | EngineWorkers:
    """The engine the app serves with: `engine` itself for 0 processes, else workers in front of it."""
    return EngineWorkers(engine, processes) if processes > 0 else engine
