"""The synthetic corpus generator used by benchmarks/bench_scale.py.

These test the generator (deterministic, valid documents, buildable), not retrieval quality:
the small build uses the benchmark-only hash embedder so it runs in seconds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from benchmarks.synth_corpus import write_corpus


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_same_seed_same_files_and_larger_corpus_contains_smaller(tmp_path):
    a = _digest(Path(write_corpus(tmp_path / "a", 12, seed=7) and tmp_path / "a"))
    b = _digest(Path(write_corpus(tmp_path / "b", 12, seed=7) and tmp_path / "b"))
    assert a == b
    c = _digest(Path(write_corpus(tmp_path / "c", 12, seed=8) and tmp_path / "c"))
    assert {k for k in a if k.startswith("documents/synth-")} and a != c
    # document i depends only on (seed, i) and its payer: doc 0 is the same in a 12-doc corpus
    # and in any corpus with as many payers (3 for up to 24 documents)
    d = _digest(Path(write_corpus(tmp_path / "d", 20, seed=7) and tmp_path / "d"))
    shared = [k for k in a if k.startswith("documents/")]
    assert all(d[k] == a[k] for k in shared)


@pytest.mark.slow
def test_documents_pass_corpus_validation(tmp_path, monkeypatch):
    from assistant import config
    from index.chunking import chunk_document
    from index.corpus import load_corpus

    src = tmp_path / "sources"
    info = write_corpus(src, 30, seed=3)
    monkeypatch.setenv("CART_SOURCES_DIR", str(src))
    report = load_corpus(config.load().sources_dir)
    assert report.errors == []
    assert len(report.documents) == 35  # 30 synthetic + the 5 real documents
    synth = [d for d in report.documents if d.id in info["documents"]]
    assert len(synth) == 30
    assert all(d.kind == "payer-policy" and d.payer in info["payers"] for d in synth)
    chunks = [c for d in synth for c in chunk_document(d)]
    assert 40 * 30 < len(chunks) < 100 * 30  # about 66 chunks a document
    kinds = {c.chunk_type for c in chunks}
    assert {"section", "table_row", "faq"} <= kinds
    codes = {code for c in chunks for code in c.codes}
    for code in ("38225", "D89.833", "MS-DRG 018", "J9185"):
        assert code in codes, code
    assert any(code.startswith("Q205") for code in codes) and any("-" in code and code[0].isdigit() for code in codes)


@pytest.mark.slow
def test_small_synthetic_corpus_builds_and_answers_a_code_question(tmp_path, monkeypatch):
    from assistant import config
    from assistant.retrieval import HybridRetriever
    from index.build import build

    src = tmp_path / "sources"
    info = write_corpus(src, 20, seed=1)
    monkeypatch.setenv("CART_SOURCES_DIR", str(src))
    monkeypatch.setenv("CART_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CART_EMBEDDER", "hash")  # benchmark-only embedder: a generator test
    report = build(config.load(), quiet=True)
    assert report.status == "built" and report.documents == 25 and report.chunks > 1000
    retriever = HybridRetriever(config.load())
    hits = retriever.search("D89.833 cytokine release syndrome grade 3", top_k=5)
    assert hits and all("D89.833" in h.codes for h in hits[:3])
    # a synthetic payer named in the question scopes the answer to that payer's policies
    import yaml

    payer = next(p for p in yaml.safe_load((src / "reference" / "payers.yaml").read_text())["payers"]
                 if p["id"] == info["payers"][0])
    hits = retriever.search(f"Does {payer['name']} require prior authorization?", top_k=3)
    assert hits and hits[0].payer == payer["id"]


def test_hash_embedder_is_opt_in(monkeypatch):
    from index import embedding

    monkeypatch.delenv("CART_EMBEDDER", raising=False)
    assert embedding.embedder_kind() == "model" and embedding.embedder_id() == embedding.MODEL_SHA256
    monkeypatch.setenv("CART_EMBEDDER", "hash")
    emb = embedding.get_embedder()
    v = emb.get_text_embedding("Q2055 payment limit")
    assert len(v) == embedding.EMBED_DIM and abs(sum(x * x for x in v) - 1) < 1e-6
    assert v == emb.get_query_embedding("Q2055 payment limit")
    assert embedding.embedder_id() != embedding.MODEL_SHA256
    monkeypatch.setenv("CART_EMBEDDER", "bogus")
    from assistant.config import ConfigError

    with pytest.raises(ConfigError, match="CART_EMBEDDER='bogus' is not one of model, hash"):
        embedding.get_embedder()


def test_retriever_reads_a_large_collection_in_pages():
    """One unbounded collection.get fails past ~30k chunks in Chroma ("too many SQL variables")."""
    from assistant import retrieval

    class Paged:
        def __init__(self, n):
            self.n, self.calls = n, []

        def count(self):
            return self.n

        def get(self, include, limit, offset):
            self.calls.append((limit, offset))
            ids = [f"id{i}" for i in range(offset, min(offset + limit, self.n))]
            return {"ids": ids, "documents": [f"text {i}" for i in ids], "metadatas": [{} for _ in ids]}

    col = Paged(2 * retrieval.READ_BATCH + 7)
    got = retrieval.read_all(col)
    assert len(got["ids"]) == col.n == len(set(got["ids"])) and len(col.calls) == 3
    assert all(limit <= retrieval.READ_BATCH for limit, _ in col.calls)


def test_scoped_bm25_mask_is_built_once_per_document_set():
    from llama_index.core.schema import TextNode

    from assistant.retrieval import CodeAwareBM25

    nodes = [TextNode(id_=f"n{i}", text=f"Q2055 unit {i}", metadata={"source_id": f"d{i % 3}"}) for i in range(9)]
    bm25 = CodeAwareBM25.from_nodes(nodes, top_k=5)
    m1 = bm25.index.mask(frozenset({"d1"}))
    assert list(m1) == [1.0 if i % 3 == 1 else 0.0 for i in range(9)]
    assert bm25.index.mask(frozenset({"d1"})) is m1
    hits = bm25.scoped(frozenset({"d1"})).retrieve("Q2055")
    assert hits and {h.node.metadata["source_id"] for h in hits} == {"d1"}
