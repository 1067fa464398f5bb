"""The settings object: every CART_* variable declared once, checked at start-up, documented once."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import re
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest

from assistant import config
from conftest import subprocess_env

PROJECT = config.PROJECT_ROOT
README = PROJECT / "README.md"


@pytest.fixture()
def clean_env(monkeypatch):
    """No CART_* variable set: every setting at its default."""
    for name in config.NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _project_py_files() -> list[Path]:
    skip = {"tests", "__pycache__", "node_modules"}
    return [p for p in PROJECT.rglob("*.py")
            if not any(part in skip or part.startswith(".") for part in p.relative_to(PROJECT).parts[:-1])]


# --- documentation -------------------------------------------------------------------------

def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def _tables(section: str) -> list[str]:
    """The Markdown tables of a README section, each as its lines joined (with a final newline)."""
    tables, current = [], []
    for line in section.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append("\n".join(current) + "\n")
            current = []
    if current:
        tables.append("\n".join(current) + "\n")
    return tables


def test_readme_configuration_table_is_the_rendered_one():
    text = README.read_text(encoding="utf-8")
    assert _tables(_section(text, "Configuration")) == [config.markdown_table()], \
        "README's Configuration table differs: replace it with `.venv/bin/python -m assistant.config`"
    assert _tables(_section(text, "Optional LLM composer")) == [config.markdown_table("CART_LLM_")]


def test_every_setting_has_one_row_with_its_default_and_meaning():
    rows = config.markdown_table().splitlines()[2:]
    assert [re.match(r"\| `(CART_[A-Z_]+)` \|", r).group(1) for r in rows] == list(config.NAMES)
    assert len(set(config.NAMES)) == len(config.NAMES)
    for s in config.SETTINGS:
        assert s.doc and "\n" not in s.doc and s.default_text(), s.name


# --- one declaration per variable ------------------------------------------------------------

def test_every_cart_variable_in_the_code_is_declared_and_every_declared_one_is_used():
    mentioned: dict[str, set[str]] = {}
    for path in _project_py_files():
        # a name, not a prefix ("the CART_LLM_* settings")
        for name in re.findall(r"\bCART_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")):
            mentioned.setdefault(name, set()).add(str(path.relative_to(PROJECT)))
    undeclared = {n: sorted(files) for n, files in mentioned.items() if n not in config.NAMES}
    assert not undeclared, f"CART_* variables used but not declared in assistant/config.py: {undeclared}"
    assert set(config.NAMES) <= set(mentioned)

    # ...and each declared setting is read somewhere outside config.py (no dead settings;
    # CART_SHARED_DIR is read by the tests only)
    users = [p for p in _project_py_files() if p != PROJECT / "assistant" / "config.py"]
    code = "\n".join(p.read_text(encoding="utf-8") for p in users + sorted((PROJECT / "tests").glob("*.py")))
    unread = [s.name for s in config.SETTINGS if not re.search(rf"\.{s.field}\b", code)]
    assert not unread, f"declared but never read: {unread}"


def test_nothing_outside_config_reads_a_cart_variable_from_the_environment():
    # reads, not writes: the benchmarks set CART_DATA_DIR for the code they measure
    pattern = re.compile(r"(os\.environ\.get|os\.getenv)\(\s*['\"]CART_"
                         r"|os\.environ\[\s*['\"]CART_\w+['\"]\s*\](?!\s*=[^=])")
    readers = [str(p.relative_to(PROJECT)) for p in _project_py_files()
               if p != PROJECT / "assistant" / "config.py" and pattern.search(p.read_text(encoding="utf-8"))]
    assert not readers, f"read CART_* from the environment instead of config.load(): {readers}"


def test_config_is_the_bottom_layer():
    tree = ast.parse((PROJECT / "assistant" / "config.py").read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module != "__future__"}
    project_packages = {p.name for p in PROJECT.iterdir() if (p / "__init__.py").is_file()}
    assert project_packages and not imported & project_packages, imported & project_packages
    assert all(node.level == 0 for node in ast.walk(tree) if isinstance(node, ast.ImportFrom))


# --- parsing ----------------------------------------------------------------------------------

def test_defaults_load(clean_env):
    cfg = config.load()
    hints = typing.get_type_hints(config.Config)
    for f in dataclasses.fields(cfg):
        hint = hints[f.name]
        allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        assert isinstance(getattr(cfg, f.name), tuple(typing.get_origin(t) or t for t in allowed)), f.name
    assert cfg.data_dir == PROJECT / "data" and cfg.sources_dir == PROJECT / "sources"
    assert cfg.reference_dir == PROJECT / "sources" / "reference" == config.reference_dir()
    assert cfg.shared_dir == PROJECT.parent / "shared"
    assert cfg.feedback_db == PROJECT / "data" / "feedback.sqlite3"
    assert (cfg.chroma_host, cfg.chroma_port, cfg.collection_prefix, cfg.top_k) == (None, 8000, "cart", 5)
    assert not cfg.server_mode
    assert (cfg.host, cfg.port, cfg.root_path, cfg.concurrency) == ("127.0.0.1", 7860, "", 8)
    assert (cfg.allowed_origins, cfg.max_conversations, cfg.conversation_ttl, cfg.engine_threads) == \
        ((), 1000, 3600, 4)
    assert (cfg.log_questions, cfg.log_salt, cfg.log_file) == ("hash", None, None)
    assert (cfg.llm_base_url, cfg.llm_model, cfg.llm_api_key, cfg.llm_timeout) == (None, "default", "not-needed", 20)
    assert cfg.embedder == "model"


def test_values_are_typed_and_normalised(clean_env, tmp_path):
    clean_env.setenv("CART_SOURCES_DIR", str(tmp_path / "src"))
    clean_env.setenv("CART_DATA_DIR", str(tmp_path / "d" / ".." / "data"))
    clean_env.setenv("CART_CHROMA_HOST", "chroma.internal")
    clean_env.setenv("CART_PORT", " 8080 ")
    clean_env.setenv("CART_ROOT_PATH", "/cart-assistant/")
    clean_env.setenv("CART_ALLOWED_ORIGINS", "https://intranet.example.org/, http://127.0.0.1:8001,,")
    clean_env.setenv("CART_CONVERSATION_TTL", "90.5")
    clean_env.setenv("CART_LOG_QUESTIONS", " Redact ")
    clean_env.setenv("CART_LLM_BASE_URL", "http://llm-host:8000/v1")
    clean_env.setenv("CART_LLM_TIMEOUT", "2.5")
    clean_env.setenv("CART_LLM_API_KEY", "s3cret-key")
    clean_env.setenv("CART_COLLECTION_PREFIX", "")  # empty is unset: the default
    cfg = config.load()
    assert cfg.sources_dir == tmp_path / "src" and cfg.reference_dir == tmp_path / "src" / "reference"
    assert cfg.data_dir == tmp_path / "data" and cfg.feedback_db == tmp_path / "data" / "feedback.sqlite3"
    assert cfg.server_mode and cfg.chroma_host == "chroma.internal"
    assert cfg.port == 8080 and cfg.root_path == "/cart-assistant"
    assert cfg.allowed_origins == ("https://intranet.example.org", "http://127.0.0.1:8001")
    assert cfg.conversation_ttl == 90.5 and cfg.llm_timeout == 2.5
    assert cfg.log_questions == "redact" and cfg.collection_prefix == "cart"
    assert "s3cret-key" not in repr(cfg)  # secrets stay out of logs and tracebacks
    assert config.reference_dir() == tmp_path / "src" / "reference"


def test_load_rereads_the_environment(clean_env, tmp_path):
    assert config.load().top_k == 5
    clean_env.setenv("CART_TOP_K", "7")
    assert config.load().top_k == 7
    clean_env.delenv("CART_TOP_K")
    assert config.load().top_k == 5
    clean_env.setenv("CART_DATA_DIR", "relative-data")  # relative to the working directory
    for where in (tmp_path / "a", tmp_path / "b"):
        where.mkdir()
        clean_env.chdir(where)
        assert config.load().data_dir == where / "relative-data"


def test_bad_values_give_one_error_with_a_line_per_variable(clean_env):
    bad = {"CART_LLM_TIMEOUT": "abc", "CART_PORT": "70000", "CART_CHROMA_PORT": "0",
           "CART_ENGINE_THREADS": "0", "CART_TOP_K": "five", "CART_CONVERSATION_TTL": "-1",
           "CART_LOG_QUESTIONS": "verbatim", "CART_EMBEDDER": "bogus",
           "CART_ALLOWED_ORIGINS": "https://ok.example.org,intranet.example.org",
           "CART_ROOT_PATH": "cart", "CART_LLM_BASE_URL": "llm-host:8000",
           "CART_COLLECTION_PREFIX": "my prefix", "CART_MAX_CONVERSATIONS": "1e3"}
    for name, value in bad.items():
        clean_env.setenv(name, value)
    clean_env.setenv("CART_CONCURRENCY", "3")  # a good one among them is not reported
    with pytest.raises(config.ConfigError) as caught:
        config.load()
    lines = str(caught.value).splitlines()
    assert len(lines) == len(bad) == len(caught.value.problems)
    assert [re.match(r"Configuration error: (CART_[A-Z_]+)=", line).group(1) for line in lines] == \
        [n for n in config.NAMES if n in bad]  # in declaration order, one each
    assert "Configuration error: CART_LLM_TIMEOUT='abc' is not a number (seconds, > 0)" in lines
    assert "Configuration error: CART_PORT='70000' is out of range (1-65535)" in lines
    assert "Configuration error: CART_CHROMA_PORT='0' is out of range (1-65535)" in lines
    assert "Configuration error: CART_ENGINE_THREADS='0' is out of range (>= 1)" in lines
    assert "Configuration error: CART_TOP_K='five' is not a whole number (>= 1)" in lines
    assert "Configuration error: CART_CONVERSATION_TTL='-1' is out of range (seconds, > 0)" in lines
    assert "Configuration error: CART_LOG_QUESTIONS='verbatim' is not one of hash, redact, full" in lines
    assert "Configuration error: CART_EMBEDDER='bogus' is not one of model, hash" in lines
    assert any("CART_ALLOWED_ORIGINS=" in line and "'intranet.example.org', which is not an origin" in line
               for line in lines)
    # a SystemExit: no `except Exception` swallows it, and uncaught it is a message, not a traceback
    assert isinstance(caught.value, SystemExit) and not isinstance(caught.value, Exception)


@pytest.mark.parametrize("name,value", [("CART_LLM_TIMEOUT", "inf"), ("CART_LLM_TIMEOUT", "0"),
                                        ("CART_CONVERSATION_TTL", "nan"), ("CART_PORT", "80.5"),
                                        ("CART_SOURCES_DIR", "~no-such-user-xyz/sources")])
def test_edge_values_are_refused(clean_env, name, value):
    clean_env.setenv(name, value)
    with pytest.raises(config.ConfigError, match=re.escape(f"{name}={value!r}")):
        config.load()


# --- the settings reach the code that uses them ----------------------------------------------

def test_consumers_read_the_settings_when_used(clean_env):
    from assistant import requestlog
    from assistant.api import engine_threads
    from assistant.llm import LLMSettings
    from assistant.sessions import Conversations
    from index import embedding

    clean_env.setenv("CART_MAX_CONVERSATIONS", "2")
    clean_env.setenv("CART_CONVERSATION_TTL", "30")
    clean_env.setenv("CART_ENGINE_THREADS", "3")
    conversations = Conversations()
    assert (conversations.limit, conversations.ttl, engine_threads()) == (2, 30, 3)

    assert LLMSettings.from_env() is None
    clean_env.setenv("CART_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    clean_env.setenv("CART_LLM_TIMEOUT", "2.5")
    assert LLMSettings.from_env() == LLMSettings(base_url="http://127.0.0.1:9/v1", model="default",
                                                 api_key="not-needed", timeout=2.5)

    clean_env.setenv("CART_LOG_SALT", "fixed-salt")
    assert requestlog.question_hash("Q2055?") == hashlib.sha256(b"fixed-salt\x00Q2055?").hexdigest()[:12]
    clean_env.setenv("CART_LOG_QUESTIONS", "full")
    assert requestlog.mode() == "full"

    clean_env.setenv("CART_EMBEDDER", "HASH")
    assert embedding.embedder_kind() == "hash"


# --- entry points -------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["app.py"], ["-m", "assistant", "ask", "x"], ["-m", "index", "status"],
                                  ["-m", "evals", "run"]])
def test_entry_points_stop_with_the_message_and_status_2(argv):
    env = subprocess_env(CART_LLM_TIMEOUT="abc")
    proc = subprocess.run([sys.executable, *argv], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr == "Configuration error: CART_LLM_TIMEOUT='abc' is not a number (seconds, > 0)\n"
    assert "Traceback" not in proc.stdout + proc.stderr and "Serving on" not in proc.stdout


def test_gradio_queue_does_not_rebuild_its_event_summary_after_every_event():
    """The queue's per-event pandas summary (a monitoring page the app does not serve) is off:
    a real Gradio queue created after `assistant.config` is imported returns its cached summary
    without building a DataFrame, and keeps at most 1,000 events."""
    code = """
import assistant.config
import gradio as gr
from gradio.queueing import Queue
built = []
Queue._get_df = staticmethod(lambda records: built.append(len(records)))
demo = gr.Blocks().queue()
q = demo._queue
records = [{"time": 0.0, "status": "success", "process_time": 0.01, "function": "ask", "session_hash": "s"}] * 50
for _ in range(5):
    q.events_recorded += 1
    q.compute_analytics_summary(records)
print(built, q.ANALYTICS_MAX_EVENTS)
"""
    env = subprocess_env()
    for name in ("GRADIO_ANALYTICS_CACHE_FREQUENCY", "GRADIO_ANALYTICS_MAX_EVENTS"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["[]", "1000"]


@pytest.mark.slow  # a whole app in a child process (~50 s)
def test_no_request_asks_opentelemetry_for_a_tracer(index_env, tmp_path):
    """FastAPI's native telemetry is off in all three FastAPI apps of the server (ours, the JSON
    API's, Gradio's): no configured tracer exists, and asking for one on every request cost ~4% of
    the app process under load. A real app handles the health check, the page and an API question
    without one call to OpenTelemetry's provider look-ups."""
    code = """
import opentelemetry._logs as logs, opentelemetry.metrics as metrics, opentelemetry.trace as trace
calls = []
for mod, name in ((trace, "get_tracer_provider"), (metrics, "get_meter_provider"), (logs, "get_logger_provider")):
    orig = getattr(mod, name)
    setattr(mod, name, lambda orig=orig, name=name: calls.append(name) or orig())
from fastapi.testclient import TestClient
import app
client = TestClient(app.create_app(), base_url="http://127.0.0.1")
codes = [client.get("/api/health").status_code, client.get("/").status_code,
         client.post("/api/ask", json={"question": "Q2055 payment limit q1 2026"}).status_code]
print(codes, calls)
"""
    env = subprocess_env(**index_env, CART_ENGINE_PROCESSES="0",
                         CART_HISTORY_DB=str(tmp_path / "h.sqlite3"), CART_FEEDBACK_DB=str(tmp_path / "f.sqlite3"))
    proc = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[200, 200, 200] []"
