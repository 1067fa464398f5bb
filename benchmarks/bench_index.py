"""Index and retrieval benchmark: prints figures, asserts nothing.

    .venv/bin/python -m benchmarks.bench_index [--repeat 3]

Builds the real corpus from scratch into a temporary data directory (full build), rebuilds it
unchanged (incremental no-op), then times hybrid search over a fixed list of questions.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

QUESTIONS = [
    "Q2055", "38206", "0540T", "D89.833", "XW033C3", "G20.A1", "57894-502-XX", "MS-DRG 018",
    "cilta-cel lymphodepletion", "What is the Q2056 payment limit?", "Tecartus ALL cyclophosphamide dose",
    "Does CarePartners still require REMS?", "Centene Abecma approval duration",
    "Abecma vs Carvykti cell dose", "How many J9185 units for fludarabine?", "tocilizumab for CRS J3262",
    "ide-cel NDC", "brexu-cel MCL target dose", "Which ICD-10-PCS code drives MS-DRG 018?",
    "Is prior authorization required for Abecma outpatient?",
]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3, help="passes over the question list")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cart-bench-"))
    os.environ["CART_DATA_DIR"] = str(tmp)
    try:
        from assistant import config
        from index.build import build

        cfg = config.load()
        t0 = time.perf_counter()
        full = build(cfg, quiet=True)
        t_full = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = build(cfg, quiet=True)
        t_noop = time.perf_counter() - t0

        from assistant.retrieval import HybridRetriever

        t0 = time.perf_counter()
        retriever = HybridRetriever(cfg)
        retriever.search("warm up")
        t_load = time.perf_counter() - t0
        lat = []
        for _ in range(args.repeat):
            for q in QUESTIONS:
                t0 = time.perf_counter()
                retriever.search(q)
                lat.append((time.perf_counter() - t0) * 1000)
        lat.sort()
        p95 = lat[max(0, int(round(0.95 * len(lat))) - 1)]
        print(f"corpus: {full.documents} documents, {full.chunks} chunks")
        print(f"full build: {t_full:.1f} s ({full.chunks / t_full:.1f} chunks/s, embedded {full.embedded})")
        print(f"unchanged rebuild: {t_noop:.2f} s (status {again.status}, embedded {again.embedded})")
        print(f"retriever load + first query: {t_load:.1f} s")
        print(f"query latency over {len(lat)} queries: p50 {statistics.median(lat):.1f} ms, "
              f"p95 {p95:.1f} ms, max {lat[-1]:.1f} ms")
        print(f"peak RSS: {_rss_mb():.0f} MB; index on disk: {_disk_mb(tmp):.1f} MB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
