"""Index builds: incremental by content hash, atomic under a kill, honest about bad input."""

import json
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


def _copy_index(index_env, tmp_path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(index_env["CART_DATA_DIR"], data)
    return data


def test_unchanged_corpus_embeds_nothing(index_env, tmp_path, monkeypatch):
    cfg = _env(monkeypatch, _copy_index(index_env, tmp_path), PROJECT / "sources")
    before = read_manifest(cfg)
    # Loading the model at all would be wasted work: make it impossible.
    monkeypatch.setattr(build_mod, "get_embedder", lambda: pytest.fail("embedder loaded"))
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
        if "embedded 64/" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert any("embedded 64/" in line for line in seen), "".join(seen)
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
