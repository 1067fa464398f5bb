"""Conversation history store benchmark: prints figures, asserts nothing.

    .venv/bin/python -m benchmarks.bench_history [--turns 300]

A saved turn is on every chat answer's path (`assistant.sessions`), so its cost is paid under
load. Prints the wall and CPU time per saved turn and per conversation-list read on a fresh SQLite
file in a temporary directory (the default backend), with an answer of a typical size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from assistant.history import History

ANSWER = {"text": "x" * 3000, "citations": [{"quote": "y" * 300}] * 5, "tool_calls": [], "notes": ["z" * 200] * 3}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=300)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        history = History(Path(tmp) / "history.db")
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(args.turns):
            history.save_turn(f"c{i % 30}", "user", "question " * 10, ANSWER, None, f"a{i}")
        saved = ((time.perf_counter() - wall) / args.turns * 1000, (time.process_time() - cpu) / args.turns * 1000)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.turns):
            history.list("user")
        listed = ((time.perf_counter() - wall) / args.turns * 1000, (time.process_time() - cpu) / args.turns * 1000)
    print(f"SQLite history, {args.turns} turns over 30 conversations")
    print(f"  save_turn: {saved[0]:.2f} ms wall, {saved[1]:.2f} ms CPU per turn")
    print(f"  list:      {listed[0]:.2f} ms wall, {listed[1]:.2f} ms CPU per read")


if __name__ == "__main__":
    main()
