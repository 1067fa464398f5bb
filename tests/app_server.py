"""Run the real app (``python app.py``) as a subprocess for tests, plus a tiny static file server.

A subprocess (not uvicorn in a thread) so that stopping and starting it again is a real restart:
nothing survives in memory, only what the app wrote to disk.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from assistant import config

PROJECT = config.PROJECT_ROOT
START_TIMEOUT_S = 120.0


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen | None, timeout: float) -> None:
    """Terminate a server subprocess, killing it if it does not exit within `timeout` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


class AppServer:
    """`python app.py` on a free loopback port; `start()` waits for GET /api/health."""

    def __init__(self, env: dict[str, str], port: int | None = None):
        self.env = dict(env)
        self.port = port or free_port()
        self.env["CART_HOST"] = "127.0.0.1"
        self.env["CART_PORT"] = str(self.port)
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile(mode="w+b")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        self._log.flush()
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace")
        self._log.seek(0, 2)
        return text

    def start(self, timeout: float = START_TIMEOUT_S) -> AppServer:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.proc = subprocess.Popen([sys.executable, str(PROJECT / "app.py")], cwd=PROJECT, env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.proc.returncode} before serving:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url + "/api/health", timeout=5) as r:
                    if r.status == 200 and json.loads(r.read()).get("status") == "ok":
                        return self
            except (urllib.error.URLError, ConnectionError, OSError, ValueError) as exc:
                last = exc
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"app.py did not answer /api/health within {timeout:.0f} s ({last!r}):\n{self.output()}")

    def stop(self) -> None:
        stop_process(self.proc, 15)

    def restart(self) -> AppServer:
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        self._log.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_args):  # keep pytest output clean
        pass


class StaticServer:
    """Serve a directory over HTTP on a free loopback port, in a background thread."""

    def __init__(self, directory: Path):
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def app_env(index_env: dict[str, str], data_dir: Path, **overrides: str) -> dict[str, str]:
    """Environment for app.py: the session index, per-test feedback and conversation databases under data_dir."""
    from tests.conftest import subprocess_env

    data_dir.mkdir(parents=True, exist_ok=True)
    env = subprocess_env(**index_env)
    env.pop("CART_ALLOWED_ORIGINS", None)
    env["CART_FEEDBACK_DB"] = str(data_dir / "feedback.sqlite3")
    env["CART_HISTORY_DB"] = str(data_dir / "conversations.sqlite3")
    env.update(overrides)
    return env


def request(method: str, url: str, body: bytes | dict | None = None, headers: dict | None = None,
            timeout: float = 60) -> tuple[int, dict, bytes]:
    """A plain HTTP request: (status, headers (lower-case names), body bytes); never raises on 4xx/5xx."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    hdrs = {"Content-Type": "application/json"} if data is not None else {}
    hdrs.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()
