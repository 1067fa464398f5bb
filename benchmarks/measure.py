"""What every benchmark measures the same way: latency lists and their percentiles, peak RSS,
disk size and the machine's load (printed beside each figure: the machine is shared)."""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path


def latencies_ms(call: Callable[[str], object], questions: Iterable[str], repeat: int) -> list[float]:
    """Wall time of `call(q)` for each question, `repeat` passes, in ms, sorted."""
    questions = list(questions)
    out = []
    for _ in range(repeat):
        for q in questions:
            t0 = time.perf_counter()
            call(q)
            out.append((time.perf_counter() - t0) * 1000)
    return sorted(out)


def pct(values: list[float], q: float) -> float:
    """The q-quantile by rank (nearest rank, as the README's figures were computed)."""
    values = sorted(values)
    return values[max(0, int(round(q * len(values))) - 1)]


def summary(lat: list[float]) -> str:
    return f"p50 {statistics.median(lat):.1f} ms, p95 {pct(lat, 0.95):.1f} ms, max {max(lat):.1f} ms"


def rss_mb() -> float:
    """This process's peak resident memory."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e6


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
