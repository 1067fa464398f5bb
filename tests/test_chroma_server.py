"""Server mode end to end: a real `chroma run` subprocess holds the index.

The index is built into the server with `python -m index build` (CART_CHROMA_HOST/PORT), the
assistant answers from it, and the server going away mid-session gives a clear answer (not a
traceback) and recovers when the server is back. To keep the test lean, the corpus is two of the
five documents (Carvykti's billing guide and the short CarePartners policy): ~190 chunks to embed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from app_server import free_port, stop_process
from assistant import config
from conftest import PROJECT, subprocess_env

CHROMA = Path(sys.executable).parent / "chroma"
DOCS = ("carvykti-billing-guide.md", "carepartners-ct-abecma-policy.md")

pytestmark = [pytest.mark.skipif(not CHROMA.exists(), reason="chromadb's `chroma` CLI is not installed"), pytest.mark.slow]


class ChromaServer:
    """`chroma run` on a loopback port; start/stop keep the same path and port."""

    def __init__(self, path: Path, port: int, log: Path):
        self.path, self.port, self.log = path, port, log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def heartbeat(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=2) as resp:
                return resp.status == 200 and b"heartbeat" in resp.read()
        except OSError:
            return False

    def start(self, timeout: float = 60) -> None:
        env = dict(os.environ, ANONYMIZED_TELEMETRY="False", CHROMA_TELEMETRY="False")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(CHROMA), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"chroma run exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            if self.heartbeat():
                return
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"chroma run did not answer its heartbeat in {timeout} s")

    def stop(self) -> None:
        stop_process(self.proc, 10)


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("chroma-server")
    server = ChromaServer(root / "db", free_port(), root / "chroma.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server_env(chroma_server, tmp_path_factory) -> dict[str, str]:
    """Config for this module: the server, a collection prefix of its own, a two-document corpus."""
    sources = tmp_path_factory.mktemp("server-sources")
    (sources / "documents").mkdir()
    for name in DOCS:
        shutil.copy(PROJECT / "sources" / "documents" / name, sources / "documents" / name)
    shutil.copytree(PROJECT / "sources" / "reference", sources / "reference")
    return {"CART_CHROMA_HOST": "127.0.0.1", "CART_CHROMA_PORT": str(chroma_server.port),
            "CART_COLLECTION_PREFIX": f"t{uuid.uuid4().hex[:8]}",
            "CART_SOURCES_DIR": str(sources),
            # server mode keeps nothing on disk but the build lock; keep even that out of data/
            "CART_DATA_DIR": str(tmp_path_factory.mktemp("server-data"))}


def _run(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=PROJECT, env=subprocess_env(**env),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def built(server_env) -> dict[str, str]:
    out = _run(["-m", "index", "build"], server_env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Built index" in out.stdout and "2 documents" in out.stdout, out.stdout
    assert "Traceback" not in out.stderr
    return server_env


@pytest.fixture()
def server_cfg(built, monkeypatch) -> config.Config:
    """In-process config pointing at the server (the full sources/ stays the engine's vocabulary)."""
    for key in ("CART_CHROMA_HOST", "CART_CHROMA_PORT", "CART_COLLECTION_PREFIX", "CART_DATA_DIR"):
        monkeypatch.setenv(key, built[key])
    return config.load()


def test_build_lives_on_the_server_and_a_second_build_is_a_no_op(built, chroma_server):
    # Chroma's REST API directly (the Python client's list_collections would attach the default
    # embedding function, which the test suite forbids).
    url = f"{chroma_server.url}/api/v2/tenants/default_tenant/databases/default_database/collections"
    with urllib.request.urlopen(url, timeout=10) as resp:
        collections = json.loads(resp.read())
    prefix = built["CART_COLLECTION_PREFIX"]
    ours = sorted(c["name"] for c in collections if c["name"].startswith(prefix))
    # the build's chunk collection, its sentence-vector collection, and the pointer
    assert f"{prefix}__pointer" in ours and len(ours) == 3 and sum(n.endswith("__sentences") for n in ours) == 1, ours
    build = next(n for n in ours if n != f"{prefix}__pointer")
    ids = {c["name"]: c["id"] for c in collections}
    with urllib.request.urlopen(f"{url}/{ids[build]}/count", timeout=10) as resp:
        assert int(resp.read()) > 150

    again = _run(["-m", "index", "build"], built)
    assert again.returncode == 0 and "nothing re-embedded" in again.stdout, again.stdout + again.stderr
    status = _run(["-m", "index", "status"], built)
    assert status.returncode == 0 and build.removeprefix(prefix + "_") in status.stdout, status.stdout + status.stderr
    assert "carvykti-billing-guide" in status.stdout


def test_answers_come_from_the_server(server_cfg):
    from assistant.engine import Engine

    engine = Engine(cfg=server_cfg, llm=None)
    answer = engine.ask("What is the HCPCS code for Carvykti?")
    assert answer.kind == "answer", answer.text
    assert answer.text.startswith("**Q2056**")
    assert answer.citations and answer.citations[0].doc_id == "carvykti-billing-guide"


def test_server_outage_mid_session_is_a_clear_answer_and_recovers(server_cfg, chroma_server, built):
    from assistant.engine import Conversation, Engine

    engine = Engine(cfg=server_cfg, llm=None)
    conv = Conversation()
    assert engine.ask("What is the HCPCS code for Carvykti?", conv).text.startswith("**Q2056**")

    chroma_server.stop()
    try:
        down = engine.ask("abecma vein-to-vein time?", conv)  # answered from passages only
        assert down.kind == "error", down.text
        assert "Chroma server" in down.text and "cannot be reached" in down.text
        assert f"127.0.0.1:{chroma_server.port}" in down.text and "Traceback" not in down.text
        # a calculator question still answers, with a note that the sources were not searched
        calc = engine.ask("How many billing units of J9185 for 55.5 mg?", conv)
        assert calc.kind == "tool" and "could not be searched" in " ".join(calc.notes), (calc.kind, calc.text)

        # Command lines against the stopped server: a clear message and exit code, no traceback.
        status = _run(["-m", "index", "status"], built)
        assert status.returncode == 1 and "cannot be reached" in status.stderr, status.stdout + status.stderr
        build = _run(["-m", "index", "build"], built)
        assert build.returncode == 1 and "cannot be reached" in build.stderr and "not changed" in build.stderr, build.stdout + build.stderr
        assert "building a new index" not in build.stdout + build.stderr
        for out in (status, build):
            assert "Traceback" not in out.stdout + out.stderr
    finally:
        chroma_server.start()

    back = engine.ask("What is the HCPCS code for Carvykti?", conv)
    assert back.kind == "answer" and back.text.startswith("**Q2056**"), back.text
    assert back.citations[0].doc_id == "carvykti-billing-guide"
