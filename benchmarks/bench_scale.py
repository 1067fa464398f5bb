"""Scale benchmark: build and query the index at 1x, 10x, 100x and 1000x the real corpus.

    .venv/bin/python -m benchmarks.bench_scale --scales 1,10 --embedder model
    .venv/bin/python -m benchmarks.bench_scale --scales 10,100,1000 --embedder hash

Prints figures, asserts nothing. Each scale runs in its own child process (so peak RSS is that
scale's) over its own temporary sources and data directories:

- sources: the 5 real documents plus synthetic payer policies from `benchmarks/synth_corpus.py`
  (1x: 0, 10x: 83, 100x: 910, 1000x: 1510 documents -> about 0.6k, 6k, 60k and 100k chunks; the
  "1000x" scale is capped at about 100k chunks, ~165x the real corpus);
- full build (chunks/s), unchanged rebuild, incremental rebuild after appending a paragraph to
  one document, process start to the first answer, retriever open (segments + saved BM25 index) and first query, hybrid query latency
  p50/p95/max over 38 billing questions (`HybridRetriever.search`), peak RSS, disk size.

`--embedder hash` sets the benchmark-only CART_EMBEDDER=hash (index/embedding.py): a hashing
embedder of the same dimension, so the store, BM25, fusion and incremental logic are measured at
sizes the CPU model cannot embed in a session. Model build time at those sizes is then an
extrapolation from the measured model chunks/s, and is labelled so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_index import QUESTIONS as BASE_QUESTIONS  # noqa: E402  (same fixed set, extended)
from benchmarks.measure import disk_mb, latencies_ms, load, pct, rss_mb

DOCS_PER_SCALE = {1: 0, 10: 83, 100: 910, 1000: 1510}
README_MODEL_RATE = 17.4  # chunks/s, README "Benchmarks" (605 chunks, 34.9 s)

QUESTIONS = BASE_QUESTIONS + [
    "CPT 38225 apheresis day billing", "38228 CAR-T administration", "C90.00 multiple myeloma not in remission",
    "C83.10 mantle cell lymphoma ICD-10", "D89.831 grade 1 CRS", "Which revenue code for cell therapy acquisition 0891?",
    "Yescarta Q2041 units", "Breyanzi liso-cel dose", "Kymriah tisagenlecleucel age limit",
    "Tecvayli J9380 step-up dosing", "Elrexfio J1323 billing", "XW033C7 peripheral vein CAR-T",
    "NDC 11-digit format N4 qualifier", "Is the apheresis day billed separately?",
    "lymphodepletion fludarabine J9185 cyclophosphamide J9070 days before infusion",
    "prior authorization business days before apheresis", "Carvykti vs Tecartus manufacturing time",
]
# (question, expected document id or "@payer" for the first synthetic payer's policies): a
# sanity check that retrieval still finds the right document as the corpus grows.
CHECKS = [
    ("Centene Abecma approval duration", "centene-abecma-policy"),
    ("Does CarePartners still require REMS?", "carepartners-ct-abecma-policy"),
    ("Tecartus ALL cyclophosphamide dose", "tecartus-billing-guide"),
    ("cilta-cel lymphodepletion", "carvykti-billing-guide"),
    ("What is the Q2055 payment limit?", "abecma-billing-guide"),
]


def _note(out: dict, key: str, value) -> None:
    """Record a figure and show it at once on stderr (a long run shows its progress)."""
    out[key] = value
    print(f"  [{time.strftime('%H:%M:%S')}] {key} = {value:.2f}" if isinstance(value, float)
          else f"  [{time.strftime('%H:%M:%S')}] {key} = {value}", file=sys.stderr, flush=True)


def _generate(src: Path, scale: int, seed: int, out: dict) -> tuple[str, str] | None:
    """Write the scale's sources; returns a question about the first synthetic payer (and its id) to check retrieval with."""
    from benchmarks.synth_corpus import write_corpus

    t0 = time.perf_counter()
    info = write_corpus(src, DOCS_PER_SCALE[scale], seed)
    _note(out, "generate_s", time.perf_counter() - t0)
    if not (info["payers"] and DOCS_PER_SCALE[scale]):
        return None
    import yaml

    rows = yaml.safe_load((src / "reference" / "payers.yaml").read_text())["payers"]
    first = next(r for r in rows if r["id"] == info["payers"][0])
    return (f"Does {first['name']} require prior authorization?", first["id"])


def _measure_chunking(cfg, out: dict) -> None:
    """Time loading and chunking the corpus on its own (the build does it too)."""
    from index.build import corpus_nodes
    from index.corpus import load_corpus

    t0 = time.perf_counter()
    corpus = load_corpus(cfg.sources_dir)
    nodes = corpus_nodes(corpus.documents)
    _note(out, "chunk_s", time.perf_counter() - t0)
    del nodes


def _measure_builds(cfg, src: Path, out: dict) -> None:
    """Time a full build, an unchanged rebuild and an incremental rebuild after one document gains a paragraph."""
    from index.build import build

    t0 = time.perf_counter()
    full = build(cfg, quiet=True)
    _note(out, "build_s", time.perf_counter() - t0)
    out.update(documents=full.documents, chunks=full.chunks, embedded=full.embedded,
               build_status=full.status, build_rate=full.chunks / out["build_s"])
    t0 = time.perf_counter()
    noop = build(cfg, quiet=True)
    _note(out, "noop_s", time.perf_counter() - t0)
    out["noop_status"] = noop.status

    # Incremental: one document gains a paragraph at its end (its last chunks change).
    target = sorted((src / "documents").glob("synth-*.md")) or sorted((src / "documents").glob("*.md"))
    path = target[len(target) // 2]
    path.write_text(path.read_text(encoding="utf-8")
                    + "\nAddendum: Effective 06.01.26, Q2055 and Q2056 claims require the NDC in "
                      "the 11-digit format.\n", encoding="utf-8")
    t0 = time.perf_counter()
    inc = build(cfg, quiet=True)
    _note(out, "incr_s", time.perf_counter() - t0)
    out.update(incr_embedded=inc.embedded, incr_reused=inc.reused, incr_status=inc.status)


def _measure_load(cfg, out: dict):
    """Time opening the retriever (the manifest, the segments' Chroma collections and the saved
    BM25 index, memory-mapped) and the first query; returns the retriever."""
    from assistant.retrieval import HybridRetriever

    t0 = time.perf_counter()
    retriever = HybridRetriever(cfg)
    _note(out, "load_read_s", time.perf_counter() - t0)
    t1 = time.perf_counter()
    retriever.lexical  # noqa: B018  (BM25 index)
    _note(out, "load_bm25_s", time.perf_counter() - t1)
    t1 = time.perf_counter()
    retriever.search("warm up Q2055")
    _note(out, "first_query_s", time.perf_counter() - t1)
    _note(out, "load_s", time.perf_counter() - t0)
    return retriever


def _measure_first_answer(out: dict) -> None:
    """Process start to the first printed answer: `python -m assistant ask` against this index
    (its own process, as a freshly started app would be)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "assistant", "ask", "What is the HCPCS code for Carvykti?"],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    _note(out, "first_answer_s", time.perf_counter() - t0)
    out["first_answer_ok"] = proc.returncode == 0 and "Q2056" in proc.stdout


def _measure_queries(retriever, questions: list[str], repeat: int, out: dict) -> None:
    """Hybrid search latency over `repeat` passes of the questions: count, p50, p95 and max in ms."""
    lat = latencies_ms(retriever.search, questions, repeat)
    out.update(queries=len(lat), p50_ms=statistics.median(lat), p95_ms=pct(lat, 0.95), max_ms=max(lat))


def _hits(retriever, checks: list[tuple[str, str]]) -> str:
    """How many sanity questions find their document (or, for a synthetic payer id, that payer) in the top 5."""
    hits = 0
    for q, want in checks:
        got = retriever.search(q, top_k=5)
        if want.startswith("synth-"):
            ok = any(p.payer == want for p in got)
        else:
            ok = any(p.doc_id == want for p in got)
        hits += ok
    return f"{hits}/{len(checks)}"


def run_one(scale: int, embedder: str, repeat: int, seed: int, keep: bool) -> dict:
    """One scale, in this process (the parent runs each scale in a child)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"cart-scale{scale}-"))
    src, data = tmp / "sources", tmp / "data"
    os.environ.update({"CART_SOURCES_DIR": str(src), "CART_DATA_DIR": str(data),
                       "CART_EMBEDDER": embedder})
    out: dict = {"scale": scale, "embedder": embedder, "docs_synthetic": DOCS_PER_SCALE[scale]}
    try:
        payer_q = _generate(src, scale, seed, out)

        from assistant import config

        cfg = config.load()
        _measure_chunking(cfg, out)
        _measure_builds(cfg, src, out)
        _measure_first_answer(out)
        retriever = _measure_load(cfg, out)
        questions = QUESTIONS + ([payer_q[0]] if payer_q else ["Does Centene cover Abecma?"])
        _measure_queries(retriever, questions, repeat, out)
        out["hit5"] = _hits(retriever, CHECKS + ([payer_q] if payer_q else []))
        out["rss_mb"] = rss_mb()
        out["disk_mb"] = disk_mb(data)
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _fmt_row(r: dict) -> str:
    return (f"{r['scale']:>5}x {r['embedder']:>5} {r['documents']:>5} {r['chunks']:>7} "
            f"{r['build_s']:>8.1f} {r['build_rate']:>8.1f} {r['chunk_s']:>6.1f} {r['noop_s']:>6.2f} "
            f"{r['incr_s']:>7.1f} {r['incr_embedded']:>4} {r['first_answer_s']:>6.1f} {r['load_read_s']:>6.1f} {r['load_bm25_s']:>6.1f} "
            f"{r['first_query_s']:>6.2f} {r['p50_ms']:>6.0f} {r['p95_ms']:>6.0f} {r['max_ms']:>6.0f} "
            f"{r['rss_mb']:>6.0f} {r['disk_mb']:>7.1f} {r['hit5']:>5}  {r['load_before']} / {r['load_after']}")


HEADER = (" scale embed  docs  chunks  build_s  chunk/s chnk_s noop_s  incr_s  emb 1st_ans open_s bm25_s "
          "1st_q_s    p50    p95    max rss_MB disk_MB hit@5  load avg before / after")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scales", default="1,10,100,1000", help="comma list of 1, 10, 100, 1000")
    parser.add_argument("--embedder", choices=("model", "hash"), default="model",
                        help="model: the real all-MiniLM-L6-v2; hash: benchmark-only hashing embedder")
    parser.add_argument("--repeat", type=int, default=2, help="passes over the question list")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model-rate", type=float, default=None,
                        help="model chunks/s used to extrapolate hash scales (default: measured in "
                             f"this run, else README's {README_MODEL_RATE})")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument("--progress", action="store_true", help="show each figure as it is measured")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one, args.embedder, args.repeat, args.seed, args.keep)), flush=True)
        return

    scales = [int(s) for s in args.scales.split(",") if s.strip()]
    rows = []
    print(f"bench_scale: embedder={args.embedder} scales={scales} docs/scale={DOCS_PER_SCALE} "
          f"cores={os.cpu_count()} load={load()}", flush=True)
    for scale in scales:
        before = load()
        cmd = [sys.executable, "-m", "benchmarks.bench_scale", "--one", str(scale), "--embedder", args.embedder,
               "--repeat", str(args.repeat), "--seed", str(args.seed)] + (["--keep"] if args.keep else [])
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None if args.progress else subprocess.PIPE,
                              text=True, cwd=Path(__file__).resolve().parents[1])
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            print(f"scale {scale}x failed (exit {proc.returncode}):\n{(proc.stderr or '')[-3000:]}", flush=True)
            break
        r = json.loads(line[7:])
        r["load_before"], r["load_after"] = before, load()
        rows.append(r)
        print(HEADER if len(rows) == 1 else "", end="\n" if len(rows) == 1 else "")
        print(_fmt_row(r), flush=True)
    if not rows:
        return
    print("\nper row: build_s = full build; chnk_s = load+chunk the corpus (inside build too); noop_s = "
          "unchanged rebuild; incr_s/emb = rebuild after one document changed / chunks re-embedded; "
          "1st_ans = process start to the first answer (`python -m assistant ask`, own process); "
          "open_s = HybridRetriever() (manifest, Chroma collections, saved BM25 index); bm25_s = "
          "its BM25 part (0 once loaded); 1st_q_s = "
          "first search (dense model/index load); p50/p95/max = HybridRetriever.search ms; hit@5 = "
          "expected document in the top 5 for the sanity questions.")
    model_rows = [r for r in rows if r["embedder"] == "model"]
    rate = args.model_rate or (model_rows[-1]["build_rate"] if model_rows else README_MODEL_RATE)
    src = ("--model-rate" if args.model_rate else "measured in this run" if model_rows else "README figure")
    if args.embedder == "hash":
        print(f"\nEXTRAPOLATION (not measured): model build time = chunks / {rate:.1f} chunks/s ({src}) "
              "+ the non-embedding time measured with the hash embedder:")
        for r in rows:
            est = r["chunks"] / rate + r["build_s"]
            print(f"  {r['scale']:>5}x {r['chunks']:>7} chunks: ~{est / 60:.0f} min full build with the model; "
                  f"incremental re-embeds {r['incr_embedded']} chunk(s) (+{r['incr_embedded'] / rate:.1f} s)")
    if len(rows) > 1:
        print("\ngrowth per 10x (ratio of figures between consecutive scales, normalized to a 10x chunk ratio "
              "as r^(1/log10(chunk ratio)); 10 = linear, 1 = constant):")
        keys = ["build_s", "noop_s", "incr_s", "first_answer_s", "load_read_s", "load_bm25_s", "p50_ms", "p95_ms", "rss_mb", "disk_mb"]
        import math

        for a, b in zip(rows, rows[1:], strict=False):  # consecutive scales: rows[1:] is one shorter
            span = math.log10(b["chunks"] / a["chunks"])
            parts = []
            for k in keys:
                if a[k] > 0 and b[k] > 0 and span > 0:
                    parts.append(f"{k} x{(b[k] / a[k]) ** (1 / span):.1f}")
            print(f"  {a['scale']}x -> {b['scale']}x ({a['chunks']} -> {b['chunks']} chunks): " + ", ".join(parts))


if __name__ == "__main__":
    main()
