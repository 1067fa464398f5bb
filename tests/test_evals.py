"""The golden set in CI: the engine must keep the fact accuracy and retrieval it has reached.

Thresholds are the measured level (see evals/REPORT.md) minus a small margin for run-to-run
noise in latency-free metrics (there is none: the engine is deterministic), so a regression of a
few cases fails the build. Raise them when the engine improves; never lower them to pass.
"""

import pytest

from assistant.engine import Engine
from evals.run import TODAY, load_cases, run_system, summarize
from index.corpus import load_corpus

pytestmark = pytest.mark.slow

# measured 2026-12-02 (third session) on the hybrid system over every evals/golden*.yaml file (628 cases:
# the 298 of golden.yaml + golden_dos.yaml, plus 330 coder-style cases in golden_coder_codes.yaml,
# golden_coder_pa.yaml, golden_probe_dev.yaml, golden_current_dev.yaml, golden_coder_dev3.yaml,
# golden_coder_dev4.yaml, golden_coder_dev5.yaml and golden_coder_heldout3.yaml, evals/REPORT.md): fact accuracy
# 0.946 (dev 0.968, held-out 0.894), lead accuracy 0.977, harmful rate 0, hit@5 0.588, behaviour 0.989, citation
# precision 0.988, calculators 0.972.
THRESHOLDS = {"fact_accuracy": 0.94, "lead_accuracy": 0.97, "hit@5": 0.58, "behaviour": 0.98, "citation_precision": 0.98,
              "calculator_exactness": 0.96}
MAXIMA = {"harmful_rate": 0.0}  # a wrong code, unit count, dose or amount in a first paragraph: none


def test_golden_set_meets_the_measured_level(retriever):
    cases = load_cases()
    assert len(cases) >= 150 and {c.split for c in cases} == {"dev", "heldout"}
    engine = Engine(retriever, retriever.cfg, llm=None)
    engine.ask("warm up", today=TODAY)
    texts = {d.id: d.text for d in load_corpus(retriever.cfg.sources_dir).documents}
    rows = run_system("hybrid", engine, cases, texts, verbose=False)
    summary = summarize(rows)
    print({k: summary[k] for k in (*THRESHOLDS, *MAXIMA)} | {"heldout_fact_accuracy": summarize(
        [r for r in rows if r["split"] == "heldout"])["fact_accuracy"]})
    failed = {k: (summary[k], v) for k, v in THRESHOLDS.items() if summary[k] is None or summary[k] < v}
    failed |= {k: (summary[k], v) for k, v in MAXIMA.items() if summary[k] is None or summary[k] > v}
    assert not failed, f"below threshold (measured, threshold): {failed}"
