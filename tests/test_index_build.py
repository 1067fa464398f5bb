"""Index builds: incremental by content hash, atomic under a kill, honest about bad input."""

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant import config
from conftest import PROJECT, subprocess_env
from index import build as build_mod
from index.store import IndexMissingError, read_manifest


def _env(monkeypatch, data: Path, sources: Path) -> config.Config:
    monkeypatch.setenv("CART_DATA_DIR", str(data))
    monkeypatch.setenv("CART_SOURCES_DIR", str(sources))
    return config.load()


def _mid_embedding(line: str) -> bool:
    """A progress line after a batch that is not the last one ("embedded 128/173")."""
    m = re.search(r"embedded (\d+)/(\d+)", line)
    return bool(m) and int(m[1]) < int(m[2])


def _copy_index(index_env, tmp_path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(index_env["CART_DATA_DIR"], data)
    return data


def test_unchanged_corpus_embeds_nothing(index_env, tmp_path, monkeypatch):
    cfg = _env(monkeypatch, _copy_index(index_env, tmp_path), PROJECT / "sources")
    before = read_manifest(cfg)
    # Chunking or embedding anything would be wasted work: make both impossible.
    monkeypatch.setattr(build_mod, "_embed", lambda *a, **k: pytest.fail("embedder called"))
    monkeypatch.setattr(build_mod.records, "make", lambda *a, **k: pytest.fail("a document was chunked"))
    report = build_mod.build(cfg, quiet=True)
    assert report.status == "up-to-date" and report.embedded == 0
    assert "nothing re-embedded" in report.message
    assert read_manifest(cfg).build_id == before.build_id


def test_changing_one_document_reembeds_only_its_changed_chunks(index_env, tmp_path, monkeypatch, sources_copy):
    cfg = _env(monkeypatch, _copy_index(index_env, tmp_path), sources_copy)
    before = read_manifest(cfg)
    doc = sources_copy / "documents" / "carepartners-ct-abecma-policy.md"
    doc.write_text(doc.read_text(encoding="utf-8") + "\nAddendum\n\nA new paragraph about JZ modifiers.\n",
                   encoding="utf-8")
    report = build_mod.build(cfg, quiet=True)
    assert report.status == "built"
    assert 1 <= report.embedded <= 3 and report.reused == report.chunks - report.embedded
    # sentence vectors likewise: only the new paragraph's sentence is embedded
    assert report.sentences > 1000 and 1 <= report.sentences_embedded <= 3
    after = read_manifest(cfg)
    assert after.build_id != before.build_id and len(after.chunk_ids) == report.chunks
    # the previous build is kept for readers that still hold it; nothing older
    builds = sorted(p.name for p in (Path(cfg.data_dir) / "index" / "builds").iterdir())
    assert builds == sorted([before.build_id, after.build_id])


@pytest.mark.slow
def test_killed_build_leaves_previous_index_serving(index_env, tmp_path, monkeypatch, sources_copy):
    data = _copy_index(index_env, tmp_path)
    cfg = _env(monkeypatch, data, sources_copy)
    live = read_manifest(cfg)
    # A new document with many chunks: the build needs several embedding batches.
    src = (sources_copy / "documents" / "tecartus-billing-guide.md").read_text(encoding="utf-8")
    (sources_copy / "documents" / "tecartus-copy.md").write_text(
        src.replace("id: tecartus-billing-guide", "id: tecartus-copy", 1), encoding="utf-8")
    env = subprocess_env(CART_DATA_DIR=str(data), CART_SOURCES_DIR=str(sources_copy))
    proc = subprocess.Popen([sys.executable, "-m", "index", "build"], cwd=PROJECT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if _mid_embedding(line) or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert any(_mid_embedding(line) for line in seen), "".join(seen)
    assert proc.returncode == -signal.SIGKILL

    # The pointer did not move and the old build answers.
    assert read_manifest(cfg).build_id == live.build_id
    from assistant.retrieval import HybridRetriever

    hits = HybridRetriever(cfg).search("Q2053 payment limit", top_k=3)
    assert hits and hits[0].doc_id == "tecartus-billing-guide"

    # The next build completes, cleans the half-written build away and serves the new document.
    report = build_mod.build(cfg, quiet=True)
    assert report.status == "built" and report.documents == 6
    assert report.reused >= len(live.chunk_ids) - 5
    builds = {p.name for p in (data / "index" / "builds").iterdir()}
    assert builds == {live.build_id, report.build_id}
    assert "tecartus-copy" in read_manifest(cfg).documents


def test_malformed_source_is_reported_and_skipped_by_the_build(index_env, tmp_path, sources_copy):
    (sources_copy / "documents" / "broken.md").write_text("no front matter here\n", encoding="utf-8")
    data = _copy_index(index_env, tmp_path)
    env = subprocess_env(CART_DATA_DIR=str(data), CART_SOURCES_DIR=str(sources_copy))
    out = subprocess.run([sys.executable, "-m", "index", "build"], cwd=PROJECT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Skipped broken.md: missing metadata" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert "5 documents" in out.stdout


def test_no_usable_documents_fails_clearly_and_keeps_the_index(index_env, tmp_path, monkeypatch):
    data = _copy_index(index_env, tmp_path)
    empty = tmp_path / "empty-sources"
    (empty / "documents").mkdir(parents=True)
    shutil.copytree(PROJECT / "sources" / "reference", empty / "reference")
    cfg = _env(monkeypatch, data, empty)
    live = read_manifest(cfg).build_id
    report = build_mod.build(cfg, quiet=True)
    assert report.status == "failed" and "No usable documents" in report.message
    assert read_manifest(cfg).build_id == live


@pytest.mark.slow
def test_damaged_pointer_gives_a_clear_message(index_env, tmp_path, monkeypatch):
    data = _copy_index(index_env, tmp_path)
    cfg = _env(monkeypatch, data, PROJECT / "sources")
    (data / "index" / "CURRENT.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexMissingError, match="python -m index build"):
        read_manifest(cfg)
    env = subprocess_env(CART_DATA_DIR=str(data))
    out = subprocess.run([sys.executable, "-m", "assistant", "search", "Q2055"], cwd=PROJECT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "python -m index build" in out.stderr and "Traceback" not in out.stderr
    # and a build repairs it
    assert build_mod.build(cfg, quiet=True).status == "built"
    assert json.loads((data / "index" / "CURRENT.json").read_text())["build_id"]


# --- work proportional to the change: a base, a delta beside it, a saved BM25 index ------------

def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def test_one_changed_document_is_written_as_a_delta_beside_the_untouched_base(index_env, tmp_path, monkeypatch, sources_copy):
    cfg = _env(monkeypatch, _copy_index(index_env, tmp_path), sources_copy)
    before = read_manifest(cfg)
    made = []
    real_make = build_mod.records.make
    monkeypatch.setattr(build_mod.records, "make", lambda doc, key: made.append(doc.id) or real_make(doc, key))
    _append(sources_copy / "documents" / "carepartners-ct-abecma-policy.md",
            "\nAddendum\n\nThe plan now asks for the JZ modifier on every single-dose vial claim.\n")

    report = build_mod.build(cfg, quiet=True)
    after = read_manifest(cfg)
    assert report.status == "built" and made == ["carepartners-ct-abecma-policy"]  # only it is chunked again
    assert [s["id"] for s in after.segments] == [before.base["id"], after.build_id]
    delta = after.segments[1]
    assert list(delta["documents"]) == ["carepartners-ct-abecma-policy"] and after.masked == ["carepartners-ct-abecma-policy"]
    assert delta["chunks"] == after.documents["carepartners-ct-abecma-policy"]["chunks"] < 40
    # the base was left as it was: nothing added to it, nothing taken out
    from index import store

    base = store.open_collection(store.client_for(cfg, before.base["id"]), before.base["collection"])
    new_ids = set(after.chunk_ids) - set(before.chunk_ids)
    assert base.count() == before.base["chunks"] and new_ids and not base.get(ids=sorted(new_ids))["ids"]

    from assistant.retrieval import HybridRetriever

    # The saved BM25 index opens the build: nothing is read back out of Chroma.
    monkeypatch.setattr("assistant.retrieval.read_all", lambda *_: pytest.fail("the chunks were read back"))
    r = HybridRetriever(cfg)
    ids = [n.node_id for n in r.nodes]
    assert len(ids) == len(set(ids)) == len(after.chunk_ids) and set(ids) == set(after.chunk_ids)
    hits = r.search("CarePartners JZ modifier single-dose vial", top_k=5)
    assert any("asks for the JZ modifier" in h.quote for h in hits)
    # the document's superseded base chunks are never served beside their new copies
    served = [h.node_id for q in ("CarePartners Abecma criteria", "Does CarePartners still require REMS?",
                                  "CarePartners revision history") for h in r.search(q, top_k=10)]
    assert set(served) <= set(after.chunk_ids)


def test_a_delta_beyond_the_share_is_merged_into_a_new_base(index_env, tmp_path, monkeypatch, sources_copy):
    cfg = _env(monkeypatch, _copy_index(index_env, tmp_path), sources_copy)
    before = read_manifest(cfg)
    monkeypatch.setattr(build_mod, "COMPACT_MIN", 0)
    monkeypatch.setattr(build_mod, "COMPACT_SHARE", 0.01)
    _append(sources_copy / "documents" / "centene-abecma-policy.md", "\nAddendum\n\nA note about the JW modifier.\n")
    report = build_mod.build(cfg, quiet=True)
    after = read_manifest(cfg)
    assert report.status == "built" and 1 <= report.embedded <= 3  # merged from the old vectors, not re-embedded
    assert len(after.segments) == 1 and after.base["id"] == after.build_id != before.base["id"]
    assert after.masked == [] and after.base["chunks"] == len(after.chunk_ids)


def test_a_damaged_saved_bm25_index_is_a_clear_error_not_wrong_answers(index_env, tmp_path, monkeypatch):
    cfg = _env(monkeypatch, _copy_index(index_env, tmp_path), PROJECT / "sources")
    lexical = Path(cfg.data_dir) / "index" / "lexical" / read_manifest(cfg).lexical
    (lexical / "doc_of.json").write_text(json.dumps(["x"]), encoding="utf-8")
    from assistant.retrieval import HybridRetriever

    with pytest.raises(IndexMissingError, match="python -m index build"):
        HybridRetriever(cfg)


def test_an_index_embedded_by_another_embedder_is_refused_not_mixed(index_env, tmp_path, monkeypatch):
    _env(monkeypatch, _copy_index(index_env, tmp_path), PROJECT / "sources")
    monkeypatch.setenv("CART_EMBEDDER", "hash")  # questions would be embedded by another embedder
    from assistant.retrieval import HybridRetriever

    with pytest.raises(IndexMissingError, match="python -m index build` with the same settings"):
        HybridRetriever(config.load())
