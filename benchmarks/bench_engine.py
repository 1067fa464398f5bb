"""Answer latency benchmark: prints figures, asserts nothing.

    .venv/bin/python -m benchmarks.bench_engine [--repeat 3]

Warm: p50/p95 of Engine.ask over a fixed question list (default composer, live index).
Cold: wall time from process start to the first printed answer (`python -m assistant ask`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from assistant import config
from benchmarks.measure import latencies_ms, summary
from benchmarks.measure import load as machine_load

QUESTIONS = [
    "What is the HCPCS code for Carvykti?", "whats the hcpcs for cilta-cel", "Q2055 payment limit",
    "Does CarePartners still require REMS for Abecma?", "Centene approval duration for Abecma",
    "Which ICD-10-PCS code drives MS-DRG 018?", "ICD-10 code for grade 3 CRS", "Tecartus ALL lymphodepletion",
    "Abecma target cell dose", "what CPT for CAR-T apheresis", "Tecartus NDC", "Yescarta dose",
    "is 0540T still valid?", "JW modifier for fludarabine waste", "Carvykti vs Abecma manufacturing time",
    "tocilizumab dose for CRS", "What POS for inpatient CAR-T?", "prior auth for outpatient Abecma",
    "What is MS-DRG 018?", "how many J9185 units for 55.5 mg",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "assistant", "ask", "What is the HCPCS code for Abecma?"],
                         cwd=config.PROJECT_ROOT, capture_output=True, text=True)
    cold = time.perf_counter() - t0
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        raise SystemExit("cold-start run failed (is the index built? python -m index build)")

    from assistant.engine import Engine

    t0 = time.perf_counter()
    engine = Engine()
    engine.ask("warm up: Q2055")
    load = time.perf_counter() - t0
    lat = latencies_ms(engine.ask, QUESTIONS, args.repeat)
    print(f"cold start (process start to first answer, python -m assistant ask): {cold:.1f} s")
    print(f"in-process engine load + first answer: {load:.1f} s")
    print(f"warm answer latency over {len(lat)} answers: {summary(lat)} (load {machine_load()})")


if __name__ == "__main__":
    main()
