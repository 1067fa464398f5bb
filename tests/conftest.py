"""Shared test fixtures: no network, no Chroma default embedder, a real index built once.

Every test runs with a guard that fails any attempt to reach a non-loopback address (the
product must work offline), and with Chroma's default embedding function booby-trapped (it
would download a model). The index fixture builds the real corpus into a real Chroma in a
temporary directory once per session.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
from pathlib import Path

import pytest

from assistant import config

PROJECT = config.PROJECT_ROOT


class NetworkBlocked(RuntimeError):
    """A test tried to open a connection to a non-loopback address."""


def _is_loopback(host: object) -> bool:
    if host in ("localhost", "localhost.localdomain", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _check_address(family: int, address: object) -> None:
    if family == getattr(socket, "AF_UNIX", -1):
        return
    host = address[0] if isinstance(address, tuple) else address
    if not _is_loopback(host):
        raise NetworkBlocked(f"test tried to connect to non-loopback address {address!r}")


@pytest.fixture(autouse=True, scope="session")
def block_network():
    """Fail any connection (or name lookup) that would leave the machine."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        _check_address(self.family, address)
        return real_connect(self, address)

    def connect_ex(self, address):
        _check_address(self.family, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_loopback(host if not isinstance(host, bytes) else host.decode()):
            raise NetworkBlocked(f"test tried to resolve non-loopback host {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex = real_connect, real_connect_ex
        socket.getaddrinfo = real_getaddrinfo


@pytest.fixture(autouse=True, scope="session")
def forbid_chroma_default_embedder():
    """Chroma's default embedding function downloads a model: make any use of it fail loudly."""
    from chromadb.utils import embedding_functions as ef

    def refuse(*_a, **_k):
        raise AssertionError("Chroma's default embedding function was invoked")

    targets = [getattr(ef, "DefaultEmbeddingFunction", None), getattr(ef, "ONNXMiniLM_L6_V2", None)]
    saved = []
    for cls in {t for t in targets if t is not None}:
        saved.append((cls, cls.__call__))
        cls.__call__ = refuse
    yield
    for cls, call in saved:
        cls.__call__ = call


def subprocess_env(**overrides: str) -> dict[str, str]:
    """Environment for a child process: offline, this project's config overrides applied."""
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False", "PYTHONUNBUFFERED": "1"})
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def index_env(tmp_path_factory) -> dict[str, str]:
    """The real corpus built into a real Chroma under a temporary data directory (once)."""
    from index.build import build

    data = tmp_path_factory.mktemp("index-data")
    env = {"CART_DATA_DIR": str(data), "CART_SOURCES_DIR": str(PROJECT / "sources")}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        report = build(config.load(), quiet=True)
    assert report.status == "built", report.message
    assert report.documents == 5 and report.chunks > 300
    return env


@pytest.fixture()
def use_index(index_env, monkeypatch) -> config.Config:
    """Point this test's configuration at the session index."""
    for k, v in index_env.items():
        monkeypatch.setenv(k, v)
    return config.load()


@pytest.fixture(scope="session")
def retriever(index_env):
    from assistant.retrieval import HybridRetriever

    with pytest.MonkeyPatch.context() as mp:
        for k, v in index_env.items():
            mp.setenv(k, v)
        r = HybridRetriever(config.load())
    return r


@pytest.fixture()
def sources_copy(tmp_path) -> Path:
    """A private, writable copy of sources/ (documents and reference data)."""
    dest = tmp_path / "sources"
    shutil.copytree(PROJECT / "sources", dest)
    return dest


@pytest.fixture(scope="session")
def engine(retriever):
    """The default-composer engine over the real index (one per test session)."""
    from assistant.engine import Engine

    return Engine(retriever, retriever.cfg, llm=None)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium through Playwright (never a downloaded browser), one per test module."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: the browser tests drive Debian's chromium "
                    "(test.sh installs it with scripts/install_chromium.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()
