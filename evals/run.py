"""Score the engine on the golden set, with retrieval baselines on the same cases.

    python -m evals run [--split dev|heldout|all] [--kind K] [--case ID] [--verbose]
                        [--systems hybrid,bm25,dense-default] [--out evals/results]

Per case: the engine answers (earlier turns first, in one conversation); we score retrieval
(passage-level hit@1, hit@5 and MRR with llama-index's retrieval metrics: a retrieved passage is
relevant when it overlaps an evidence quote of the case), citation precision (cited documents
that are expected), fact accuracy (every `must` pattern present, no `must_not`), calculator
exactness (the expected tool ran and the facts hold), behaviour (answer / not covered / refusal
/ clarify / error as expected) and latency. No LLM is involved in scoring.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from assistant import config
from evals.check_golden import GOLDEN_FILES  # the default set: every evals/golden*.yaml file

RESULTS = Path(__file__).resolve().parent / "results"
REPORT = Path(__file__).resolve().parent / "REPORT.md"
TODAY = dt.date(2026, 11, 24)  # the golden set's "today": answers about staleness depend on it
BEHAVIOUR = {"answer": {"answer", "tool"}, "not_covered": {"not_covered"}, "refusal": {"refusal"},
             "clarify": {"clarify"}, "error": {"error"}}


@dataclass
class Case:
    id: str
    kind: str
    split: str
    question: str
    expect: str
    must: list[str] = field(default_factory=list)
    must_not: list[str] = field(default_factory=list)
    docs: list[str] = field(default_factory=list)
    turns: list[str] = field(default_factory=list)
    tool: str | None = None
    evidence: list[dict] = field(default_factory=list)
    note: str = ""
    lead: list[str] = field(default_factory=list)  # patterns the first paragraph must contain


def load_cases(path: Path | None = None) -> list[Case]:
    """The cases of one golden file, or (by default) of all of GOLDEN_FILES in order."""
    rows = []
    for file in ([path] if path is not None else GOLDEN_FILES):
        rows += yaml.safe_load(file.read_text(encoding="utf-8")) or []
    cases = []
    for row in rows:
        q = row.get("question", "")
        if q == "__LONG_20000__":
            q = ("Q2055 " * 4000)[:20000]
        cases.append(Case(id=row["id"], kind=row["kind"], split=row.get("split", "dev"), question=q,
                          expect=row.get("expect", "answer"), must=row.get("must") or [],
                          must_not=row.get("must_not") or [], docs=row.get("docs") or [],
                          turns=row.get("turns") or [], tool=row.get("tool"),
                          evidence=row.get("evidence") or [], note=row.get("note", ""),
                          lead=row.get("lead") or []))
    return cases


# --- systems ------------------------------------------------------------------------------

class LexicalOnly:
    """The hybrid's BM25 side alone (same chunks, same tokenizer), as a baseline."""

    def __init__(self, hybrid):
        self.hybrid, self.cfg, self.nodes = hybrid, hybrid.cfg, hybrid.nodes

    def search(self, question, top_k=None, entities=None, exclude=frozenset()):  # baselines search every revision
        from assistant.retrieval import _passage

        hits = self.hybrid.lexical.retrieve(question)[: top_k or self.cfg.top_k]
        out = [_passage(h) for h in hits]
        for i, p in enumerate(out, 1):
            p.rank = i
        return out


class DenseDefault:
    """llama-index defaults: SentenceSplitter chunks of the raw documents, a vector retriever.

    Same embedding model (the only one available offline); no normalization, no BM25, no
    entity rules. Passages carry the splitter's character offsets for citation scoring.
    """

    def __init__(self, cfg):
        from llama_index.core import Document, VectorStoreIndex
        from llama_index.core.node_parser import SentenceSplitter

        from index.corpus import load_corpus
        from index.embedding import get_embedder

        self.cfg = cfg
        docs = load_corpus(cfg.sources_dir).documents
        self.meta = {d.id: d for d in docs}
        li_docs = [Document(text=d.text, id_=d.id, metadata={"source_id": d.id}) for d in docs]
        for d in li_docs:
            d.excluded_embed_metadata_keys = ["source_id"]
        self.nodes = SentenceSplitter().get_nodes_from_documents(li_docs)
        self.index = VectorStoreIndex(self.nodes, embed_model=get_embedder())

    def search(self, question, top_k=None, entities=None, exclude=frozenset()):  # baselines search every revision
        from assistant.retrieval import Passage

        out = []
        for i, h in enumerate(self.index.as_retriever(similarity_top_k=top_k or self.cfg.top_k).retrieve(question), 1):
            d = self.meta[h.node.metadata["source_id"]]
            start, end = h.node.start_char_idx or 0, h.node.end_char_idx or 0
            out.append(Passage(
                node_id=h.node.node_id, doc_id=d.id, title=d.title, kind=d.kind, section="",
                chunk_type="chunk", quote=d.text[start:end], span=(start, end), header="",
                products=[], doc_products=list(d.products), codes=[], payer=d.payer or "",
                effective=d.effective or "", reviewed=d.reviewed or "",
                price_quarter=d.price_quarter or "", score=float(h.score or 0), rank=i))
        return out


# --- scoring ------------------------------------------------------------------------------

def evidence_spans(case: Case, texts: dict[str, str]) -> list[tuple[str, int, int]]:
    spans = []
    for ev in case.evidence:
        doc, quote = ev.get("doc"), ev.get("quote") or ""
        if doc in texts and quote:
            pos = texts[doc].find(quote)
            if pos >= 0:
                spans.append((doc, pos, pos + len(quote)))
    return spans


def relevant(p, spans) -> bool:
    return any(p.doc_id == d and p.span[0] < e and s < p.span[1] for d, s, e in spans)


def first_paragraph(text: str) -> str:
    """What a coder copies: the answer up to its first blank line."""
    return (text or "").strip().split("\n\n", 1)[0]


def matches(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.IGNORECASE | re.DOTALL) is not None


def score_case(case: Case, engine, texts: dict[str, str]) -> dict:
    from llama_index.core.evaluation.retrieval.metrics import MRR, HitRate

    from assistant.engine import Conversation

    conv = Conversation()
    for turn in case.turns:
        engine.ask(turn, conv, today=TODAY)
    t0 = time.perf_counter()
    answer = engine.ask(case.question, conv, today=TODAY)
    latency = (time.perf_counter() - t0) * 1000
    shown = "\n".join([answer.text, *answer.notes])
    missing = [m for m in case.must if not matches(m, shown)]
    forbidden = [m for m in case.must_not if matches(m, shown)]
    first = first_paragraph(answer.text)
    row = {
        "id": case.id, "kind": case.kind, "split": case.split, "question": case.question[:300],
        "expect": case.expect, "got": answer.kind, "behaviour_ok": answer.kind in BEHAVIOUR[case.expect],
        "facts_ok": not missing and not forbidden and answer.kind in BEHAVIOUR[case.expect],
        "missing": missing, "forbidden": forbidden, "latency_ms": round(latency, 1),
        "answer": answer.text[:2000], "notes": answer.notes,
        "tools": [t.name for t in answer.tool_calls],
        "cited_docs": [c.doc_id for c in answer.citations],
    }
    if case.lead:
        row["lead_ok"] = answer.kind in BEHAVIOUR[case.expect] and all(matches(m, first) for m in case.lead)
    if case.must_not and case.expect == "answer":
        # a wrong code, unit count, dose or amount where a coder copies from: the first paragraph
        row["harmful"] = any(matches(m, first) for m in case.must_not)
    if case.tool:
        row["tool_ok"] = case.tool in row["tools"] and row["facts_ok"]
    if answer.citations and case.docs:
        row["citation_precision"] = sum(c.doc_id in case.docs for c in answer.citations) / len(answer.citations)
    spans = evidence_spans(case, texts)
    if spans and case.expect == "answer":
        retrieved = conv.passages
        rel_ids = [p.node_id for p in retrieved if relevant(p, spans)]
        ids = [p.node_id for p in retrieved]
        if ids:
            expected = rel_ids or ["<no relevant passage retrieved>"]
            row["hit@1"] = HitRate().compute(expected_ids=expected, retrieved_ids=ids[:1]).score
            row["hit@5"] = HitRate().compute(expected_ids=expected, retrieved_ids=ids[:5]).score
            row["mrr"] = MRR().compute(expected_ids=expected, retrieved_ids=ids[:10]).score
        else:
            row["hit@1"] = row["hit@5"] = row["mrr"] = 0.0
    row["_passages"] = [(p.doc_id, p.section, p.quote[:160]) for p in conv.passages[:5]]
    row["_answer"] = answer
    return row


def _mean(rows, key):
    vals = [r[key] for r in rows if key in r]
    return (round(sum(vals) / len(vals), 3), len(vals)) if vals else (None, 0)


def summarize(rows: list[dict]) -> dict:
    lat = sorted(r["latency_ms"] for r in rows)
    out = {"cases": len(rows)}
    for key, name in [("facts_ok", "fact_accuracy"), ("behaviour_ok", "behaviour"), ("hit@1", "hit@1"),
                      ("hit@5", "hit@5"), ("mrr", "mrr"), ("citation_precision", "citation_precision"),
                      ("tool_ok", "calculator_exactness"), ("lead_ok", "lead_accuracy"), ("harmful", "harmful_rate")]:
        out[name], out[name + "_n"] = _mean(rows, key)
    if lat:
        out["latency_p50_ms"] = round(statistics.median(lat), 1)
        out["latency_p95_ms"] = round(lat[max(0, int(round(0.95 * len(lat))) - 1)], 1)
    return out


def run_system(name: str, engine, cases: list[Case], texts, verbose: bool) -> list[dict]:
    rows = []
    for case in cases:
        row = score_case(case, engine, texts)
        row["system"] = name
        rows.append(row)
        if verbose:
            _print_case(row)
    return rows


def _print_case(row: dict) -> None:
    a = row["_answer"]
    status = "PASS" if row["facts_ok"] else "FAIL"
    print(f"\n=== {row['id']} [{row['kind']}/{row['split']}] {status} ({row['system']}, {row['latency_ms']} ms)")
    print(f"Q: {row['question'][:300]}")
    print(f"expected {row['expect']}, got {row['got']}; missing {row['missing']}; forbidden {row['forbidden']}")
    for i, (d, s, q) in enumerate(row["_passages"], 1):
        print(f"  retrieved {i}: {d} — {s[:60]} — {q[:120]!r}")
    for t in a.tool_calls:
        print(f"  tool {t.name}({t.arguments}) -> {(t.result or {}).get('summary') or t.error}")
    print("A: " + a.text.replace("\n", "\n   "))
    for n in a.notes:
        print(f"   note: {n}")


def markdown_report(results: dict, command: str) -> str:
    lines = ["# Golden set results", "", f"Produced by `{command}` on {results['date']} "
             f"(engine today = {TODAY.isoformat()}).", ""]
    metrics = ["fact_accuracy", "lead_accuracy", "harmful_rate", "behaviour", "hit@1", "hit@5", "mrr",
               "citation_precision", "calculator_exactness", "latency_p50_ms", "latency_p95_ms"]

    def fmt(v):
        return "–" if v is None else (f"{v:.3f}" if isinstance(v, float) and v <= 1 else f"{v}")

    lines += ["## Systems (same cases)", "", "| system | split | cases | " + " | ".join(metrics) + " |",
              "|---|---|---|" + "---|" * len(metrics)]
    for system, by_split in results["systems"].items():
        for split, summ in by_split["summary"].items():
            lines.append(f"| {system} | {split} | {summ['cases']} | " + " | ".join(fmt(summ.get(m)) for m in metrics) + " |")
    hybrid = results["systems"].get("hybrid")
    if hybrid:
        lines += ["", "## Hybrid by kind (all splits)", "", "| kind | cases | fact accuracy | behaviour | hit@5 | MRR | citation precision |",
                  "|---|---|---|---|---|---|---|"]
        for kind, summ in hybrid["by_kind"].items():
            lines.append(f"| {kind} | {summ['cases']} | {fmt(summ['fact_accuracy'])} | {fmt(summ['behaviour'])} | "
                         f"{fmt(summ['hit@5'])} | {fmt(summ['mrr'])} | {fmt(summ['citation_precision'])} |")
        fails = [r for r in hybrid["rows"] if not r["facts_ok"]]
        lines += ["", f"## Failing cases (hybrid): {len(fails)}", ""]
        for r in fails:
            lines.append(f"- `{r['id']}` ({r['kind']}, {r['split']}): expected {r['expect']}, got {r['got']}; "
                         f"missing {r['missing']}, forbidden {r['forbidden']}")
    return "\n".join(lines) + "\n"


def write_summary(results: dict, path: Path) -> None:
    """The committed record beside REPORT.md: summaries and each case's verdict, no passages."""
    compact = {**results, "systems": {name: {"summary": sys_["summary"], "by_kind": sys_["by_kind"],
                                            "cases": {r["id"]: {k: r.get(k) for k in ("facts_ok", "got", "missing",
                                                                                       "forbidden", "hit@5", "latency_ms")}
                                                      for r in sys_["rows"]}}
                                      for name, sys_ in results["systems"].items()}}
    path.write_text(json.dumps(compact, indent=1, default=str), encoding="utf-8")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: which cases, which systems, where results go."""
    parser = argparse.ArgumentParser(prog="python -m evals run")
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--split", default="all", choices=["all", "dev", "heldout"])
    parser.add_argument("--kind")
    parser.add_argument("--case")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--systems", default="hybrid,bm25,dense-default")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--golden", type=Path, default=None, help="one golden file (default: all of GOLDEN_FILES)")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite evals/REPORT.md")
    return parser.parse_args(argv)


def _filter_cases(cases: list[Case], args: argparse.Namespace) -> list[Case]:
    """The cases the --split, --kind and --case filters keep."""
    if args.split != "all":
        cases = [c for c in cases if c.split == args.split]
    if args.kind:
        cases = [c for c in cases if c.kind == args.kind]
    if args.case:
        cases = [c for c in cases if c.id == args.case]
    return cases


def _score_system(name: str, engine, cases: list[Case], texts: dict[str, str], verbose: bool) -> dict:
    """One system's rows and summaries (all, per split present, per kind), with the answer objects dropped for JSON."""
    engine.ask("warm up: Q2055 payment limit", today=TODAY)  # model load is cold start, not answer latency
    rows = run_system(name, engine, cases, texts, verbose)
    by_split = {"all": summarize(rows)}
    for split in ("dev", "heldout"):
        part = [r for r in rows if r["split"] == split]
        if part:
            by_split[split] = summarize(part)
    kinds = {k: summarize([r for r in rows if r["kind"] == k]) for k in sorted({r["kind"] for r in rows})}
    for r in rows:
        r.pop("_answer", None)
    return {"summary": by_split, "by_kind": kinds, "rows": rows}


def _print_summary(name: str, s: dict) -> None:
    """One line of headline metrics for a system, as the run goes."""
    print(f"{name}: {s['cases']} cases  fact accuracy {s['fact_accuracy']}  hit@1 {s['hit@1']}  "
          f"hit@5 {s['hit@5']}  MRR {s['mrr']}  citation precision {s['citation_precision']}  "
          f"behaviour {s['behaviour']}  p50 {s.get('latency_p50_ms')} ms  p95 {s.get('latency_p95_ms')} ms")


def _write_results(results: dict, args: argparse.Namespace, argv: list[str] | None) -> None:
    """latest.json always; REPORT.md and summary.json only for a whole-set run (no --kind/--case) without --no-report."""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    command = "python -m evals " + " ".join(argv if argv is not None else sys.argv[1:])
    if not args.no_report and not (args.kind or args.case):
        REPORT.write_text(markdown_report(results, command), encoding="utf-8")
        write_summary(results, args.out / "summary.json")
        print(f"Wrote {REPORT.relative_to(config.PROJECT_ROOT)}, {args.out / 'summary.json'} and latest.json")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)

    from assistant.engine import Engine
    from assistant.retrieval import HybridRetriever
    from index.corpus import load_corpus
    from index.store import IndexMissingError

    cfg = config.load()
    cases = _filter_cases(load_cases(args.golden), args)
    if not cases:
        print("No case matches the filters.", file=sys.stderr)
        return 2
    try:
        hybrid = HybridRetriever(cfg)
    except IndexMissingError as exc:
        print(exc, file=sys.stderr)
        return 1
    texts = {d.id: d.text for d in load_corpus(cfg.sources_dir).documents}
    builders = {"hybrid": lambda: hybrid, "bm25": lambda: LexicalOnly(hybrid),
                "dense-default": lambda: DenseDefault(cfg)}
    golden = ", ".join(p.name for p in ([args.golden] if args.golden else GOLDEN_FILES))
    results = {"date": dt.datetime.now().isoformat(timespec="seconds"), "golden": golden,
               "filters": {"split": args.split, "kind": args.kind, "case": args.case}, "systems": {}}
    for name in [s.strip() for s in args.systems.split(",") if s.strip()]:
        if name not in builders:
            print(f"Unknown system {name!r}; choose from {', '.join(builders)}", file=sys.stderr)
            return 2
        engine = Engine(builders[name](), cfg)
        results["systems"][name] = _score_system(name, engine, cases, texts, args.verbose)
        _print_summary(name, results["systems"][name]["summary"]["all"])
    _write_results(results, args, argv)
    return 0
