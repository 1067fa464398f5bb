"""Faults: builds killed at several points, a damaged or missing store, a store that goes away
under a running engine. Each case must leave a serving index or a clear message — never a
traceback. (A kill during a feedback write is covered in test_feedback.py.)"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app_server import free_port
from assistant import config
from conftest import PROJECT, subprocess_env
from index import build as build_mod
from index.store import read_manifest
from test_index_build import _mid_embedding

pytestmark = pytest.mark.slow

SMALL_DOC = "carepartners-ct-abecma-policy.md"  # 20 chunks: cheap to re-embed from scratch


def _copy_index(index_env, tmp_path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(index_env["CART_DATA_DIR"], data)
    return data


def _small_sources(tmp_path) -> Path:
    """A one-document corpus, for rebuilds that must re-embed everything."""
    src = tmp_path / "small-sources"
    (src / "documents").mkdir(parents=True)
    shutil.copy(PROJECT / "sources" / "documents" / SMALL_DOC, src / "documents" / SMALL_DOC)
    shutil.copytree(PROJECT / "sources" / "reference", src / "reference")
    return src


def _no_traceback(out: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr


# --- builds killed at several points ---------------------------------------------------------

def _kill_build(env: dict[str, str], trigger, deadline_s: float = 120) -> list[str]:
    """Run `python -m index build --force`; SIGKILL it when `trigger(line, elapsed)` says so."""
    proc = subprocess.Popen([sys.executable, "-m", "index", "build", "--force"], cwd=PROJECT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = time.monotonic()
    seen: list[str] = []
    try:
        # A timed trigger must fire even while the build prints nothing: poll, don't block.
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() - started < deadline_s:
            line = ""
            if sel.select(timeout=0.05):
                line = proc.stdout.readline()
                if not line:
                    break  # the build ended before the trigger
                seen.append(line)
            if trigger(line, time.monotonic() - started):
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    return seen


def test_build_killed_at_several_points_keeps_serving_then_completes(index_env, tmp_path, monkeypatch, sources_copy):
    from assistant.engine import Engine
    from assistant.retrieval import HybridRetriever

    data = _copy_index(index_env, tmp_path)
    monkeypatch.setenv("CART_DATA_DIR", str(data))
    monkeypatch.setenv("CART_SOURCES_DIR", str(sources_copy))
    cfg = config.load()
    live = read_manifest(cfg)
    # The corpus changes: two new documents (251 chunks: two embedding batches) and an edited one.
    src = (sources_copy / "documents" / "centene-abecma-policy.md").read_text(encoding="utf-8")
    assert "id: centene-abecma-policy" in src
    (sources_copy / "documents" / "centene-copy.md").write_text(
        src.replace("id: centene-abecma-policy", "id: centene-copy", 1), encoding="utf-8")
    tecartus = (sources_copy / "documents" / "tecartus-billing-guide.md").read_text(encoding="utf-8")
    (sources_copy / "documents" / "tecartus-copy.md").write_text(  # more chunks than one embedding batch
        tecartus.replace("id: tecartus-billing-guide", "id: tecartus-copy", 1), encoding="utf-8")
    policy = sources_copy / "documents" / SMALL_DOC
    policy.write_text(policy.read_text(encoding="utf-8") + "\nAddendum\n\nA note about JZ modifiers.\n",
                      encoding="utf-8")
    env = subprocess_env(CART_DATA_DIR=str(data), CART_SOURCES_DIR=str(sources_copy))

    delay = random.Random(20240601).uniform(1.0, 6.0)  # somewhere in start-up, corpus or model load
    points = {
        f"after {delay:.1f} s": lambda line, t: t >= delay,
        "mid-embedding": lambda line, t: _mid_embedding(line),
        "after the last batch (while writing)": lambda line, t: bool(line) and _last_batch(line),
    }
    for name, trigger in points.items():
        seen = _kill_build(env, trigger)
        assert not any(line.startswith("Built index") for line in seen), (name, seen)
        manifest = read_manifest(cfg)
        if manifest.build_id != live.build_id:  # only a complete build may have moved the pointer
            assert "centene-copy" in manifest.documents, name
        hits = HybridRetriever(cfg).search("Q2053 payment limit", top_k=3)
        assert hits and hits[0].doc_id == "tecartus-billing-guide", (name, [h.doc_id for h in hits])
    answer = Engine(cfg=cfg, llm=None).ask("What is the HCPCS code for Carvykti?")
    assert answer.kind == "answer" and answer.text.startswith("**Q2056**")

    report = build_mod.build(cfg, quiet=True, force=True)
    assert report.status == "built" and report.documents == 7, report.message
    assert report.reused >= len(live.chunk_ids) - 5  # half-written builds are not trusted, the live one is
    assert "centene-copy" in read_manifest(cfg).documents
    builds = {p.name for p in (data / "index" / "builds").iterdir()}
    assert len(builds) <= 2 and report.build_id in builds  # killed leftovers are removed


def _last_batch(line: str) -> bool:
    parts = line.strip().removeprefix("embedded ").split("/")
    return line.strip().startswith("embedded ") and len(parts) == 2 and parts[0] == parts[1]


# --- a damaged or missing store --------------------------------------------------------------

def _damage(data: Path, how: str) -> None:
    current = data / "index" / "CURRENT.json"
    build_dir = data / "index" / "builds" / json.loads(current.read_text())["build_id"]
    if how == "build-deleted":
        shutil.rmtree(build_dir)
    elif how == "sqlite-garbage":
        (build_dir / "chroma.sqlite3").write_bytes(b"\x00garbage, not a database\xff" * 4096)
    elif how == "pointer-garbage":
        current.write_bytes(b"\x8b\x00{ not json")
    else:  # pragma: no cover
        raise ValueError(how)


DAMAGE = ["build-deleted", "sqlite-garbage", "pointer-garbage"]


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_store_gives_clear_messages_and_a_build_repairs_it(how, index_env, tmp_path, monkeypatch):
    data = _copy_index(index_env, tmp_path)
    _damage(data, how)
    env = subprocess_env(CART_DATA_DIR=str(data), CART_PORT=str(free_port()))

    status = subprocess.run([sys.executable, "-m", "index", "status"], cwd=PROJECT, env=env,
                            capture_output=True, text=True, timeout=120)
    _no_traceback(status)
    assert status.returncode == 1 and "python -m index build" in status.stderr, status.stdout + status.stderr

    # The app (owned elsewhere) today refuses to start, saying how to rebuild: exit 1, no traceback.
    app = subprocess.run([sys.executable, "app.py"], cwd=PROJECT, env=env, capture_output=True,
                         text=True, timeout=180)
    _no_traceback(app)
    assert app.returncode == 1 and "python -m index build" in app.stderr, app.stdout + app.stderr
    assert "Serving on" not in app.stdout

    # A build repairs it (a one-document corpus: with the live build unreadable, all is re-embedded).
    monkeypatch.setenv("CART_DATA_DIR", str(data))
    monkeypatch.setenv("CART_SOURCES_DIR", str(_small_sources(tmp_path)))
    cfg = config.load()
    report = build_mod.build(cfg, quiet=True)
    assert report.status == "built" and report.documents == 1, report.message
    assert report.embedded == report.chunks  # nothing trusted from the damaged build
    from assistant.retrieval import HybridRetriever

    hits = HybridRetriever(cfg).search("CarePartners Abecma criteria", top_k=3)
    assert hits and hits[0].doc_id == "carepartners-ct-abecma-policy"


def test_store_damaged_under_a_running_engine_answers_with_an_error_then_recovers(index_env, tmp_path, monkeypatch):
    from assistant.engine import Conversation, Engine

    data = _copy_index(index_env, tmp_path)
    monkeypatch.setenv("CART_DATA_DIR", str(data))
    cfg = config.load()
    engine = Engine(cfg=cfg, llm=None)
    conv = Conversation()
    assert engine.ask("What is the HCPCS code for Carvykti?", conv).text.startswith("**Q2056**")

    # The database overwritten with garbage: a clear error answer, no exception.
    _damage(data, "sqlite-garbage")
    # a fresh engine in another process would refuse to load; this one must keep talking
    for question in ("CarePartners abecma guideline revision history", "and for Carvykti?"):
        answer = engine.ask(question, conv)
        assert answer.kind == "error", (answer.kind, answer.text)
        assert "cannot be read" in answer.text and "python -m index build" in answer.text, answer.text

    # Rebuilt (one-document corpus): the running engine picks up the new build.
    small = dataclasses.replace(cfg, sources_dir=_small_sources(tmp_path))
    assert build_mod.build(small, quiet=True).status == "built"
    back = engine.ask("CarePartners abecma guideline revision history", Conversation())
    assert back.kind == "answer", back.text
    assert back.citations[0].doc_id == "carepartners-ct-abecma-policy"

    # The new build's files deleted under the running reader: no exception (it still holds them
    # open and keeps answering, or says the index cannot be read).
    shutil.rmtree(data / "index" / "builds" / read_manifest(cfg).build_id)
    gone = engine.ask("CarePartners abecma guideline revision history", Conversation())
    assert gone.kind in ("answer", "error"), gone.kind
