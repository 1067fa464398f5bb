"""Flood: what one client's burst of parallel questions costs everyone else.

    .venv/bin/python -m benchmarks.flood                 # limits as configured, then limits off
    .venv/bin/python -m benchmarks.flood --burst 200 --others 20

Starts app.py behind a pretend SSO proxy (CART_AUTH=proxy from 127.0.0.1, so each simulated
user is told apart by its X-Forwarded-User header) twice: with the default limits
(CART_RATE_ASKS, CART_MAX_PENDING) and with them lifted, which is how the app behaved before
they existed. In each run one user fires --burst questions at once while two other users ask
--others questions one after another. Printed: the other users' p50 / p95 / max latency, and how
the flooder's requests ended (200, 429 rate-limited, 503 busy). Asserts nothing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from benchmarks.load import start_app, stop_app

QUESTION = "What is the Q2055 payment limit?"


def _ask(url: str, user: str, question: str) -> tuple[int, float]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    started = time.perf_counter()
    try:
        conn.request("POST", "/api/ask", json.dumps({"question": question}),
                     {"Content-Type": "application/json", "X-Forwarded-User": user})
        resp = conn.getresponse()
        resp.read()
        return resp.status, time.perf_counter() - started
    finally:
        conn.close()


def run(env: dict[str, str], burst: int, others: int) -> dict:
    proc, url, log = start_app({"CART_AUTH": "proxy", "CART_LOG_FILE": "/dev/null", **env})
    try:
        for user in ("flooder", "other-0", "other-1"):
            _ask(url, user, QUESTION)  # warm up
        latencies: list[float] = []
        with ThreadPoolExecutor(max_workers=min(burst, 128)) as pool:
            flood = [pool.submit(_ask, url, "flooder", QUESTION) for _ in range(burst)]
            for i in range(others):
                status, seconds = _ask(url, f"other-{i % 2}", f"Q205{3 + i % 4} payment limit")
                latencies.append(seconds)
            codes = [f.result()[0] for f in flood]
    finally:
        stop_app(proc)
        log.close()
    return {"p50": statistics.median(latencies), "p95": statistics.quantiles(latencies, n=20)[-1],
            "max": max(latencies), "codes": {c: codes.count(c) for c in sorted(set(codes))}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.flood", description=__doc__.splitlines()[0])
    ap.add_argument("--burst", type=int, default=200, help="parallel questions from the flooding user (default 200)")
    ap.add_argument("--others", type=int, default=20, help="questions the other users ask meanwhile (default 20)")
    args = ap.parse_args(argv)
    runs = {"limits on (defaults)": {},
            "limits off": {"CART_RATE_ASKS": "1000000", "CART_MAX_PENDING": "1000000"}}
    print(f"{'':22} {'others p50':>10} {'p95':>7} {'max':>7}   flooder's replies")
    for name, env in runs.items():
        try:
            r = run(env, args.burst, args.others)
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
        codes = ", ".join(f"{n} x {c}" for c, n in r["codes"].items())
        print(f"{name:22} {r['p50']:>9.2f}s {r['p95']:>6.2f}s {r['max']:>6.2f}s   {codes}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
