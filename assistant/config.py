"""All configuration in one place: every CART_* environment variable, typed and checked.

Each setting is one field of `Config`, declared once with `setting(...)`: its variable, default,
accepted values and one-line meaning; its type is the field's annotation. `load()` parses the
environment from those declarations and raises one `ConfigError` listing every bad value, one
line each. `markdown_table()` renders the README's "Configuration" table from the same
declarations (tests/test_config.py fails when the README's copy differs):

    .venv/bin/python -m assistant.config      # print the table

This is the bottom layer: it imports nothing from the project. Importing it also pins the process
to offline behaviour (no hub downloads, no telemetry), which is why every entry point imports it
first.
"""

from __future__ import annotations

import math
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

# Offline at run time: set before any library that reads them is imported.
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "GRADIO_RUN_HISTORY": "False",  # no questions and answers left in the browser (app.py also says so)
    # Gradio's queue rebuilds a pandas summary of its last 10,000 events after every event, for a
    # monitoring page this app does not serve: 2.5 ms of app-process CPU an event at start, 10 ms
    # once 10,000 events are kept (README "Load"). Never recomputed; 1,000 events kept.
    "GRADIO_ANALYTICS_CACHE_FREQUENCY": "1000000000",
    "GRADIO_ANALYTICS_MAX_EVENTS": "1000",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TQDM_DISABLE": "1",
}.items():
    os.environ.setdefault(_key, _value)

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# FastAPI's native OpenTelemetry, off for every FastAPI app of ours (and Gradio's, app.py): no
# tracer is configured, and finding that out again on every request (an environment lookup per
# provider) cost ~4% of the app process's CPU under chat load (py-spy, README "Load").
NO_TELEMETRY = {"tracing": False, "metrics": False, "logs": False}


class ConfigError(SystemExit):
    """One or more bad CART_* values; the message has one line per bad variable.

    A SystemExit, so that no `except Exception` swallows it and a program that does not catch it
    still stops with the message instead of a traceback. The entry points (app.py,
    `python -m assistant`, `python -m index`, `python -m evals`) print it and exit with status 2.
    """

    def __init__(self, problems: list[str]):
        self.problems = tuple(problems)
        super().__init__("\n".join(f"Configuration error: {p}" for p in self.problems))


# --- the declarations ------------------------------------------------------------------------

def setting(name: str, doc: str, *, default: object = None, shown: str | None = None,
            minimum: float | None = None, maximum: float | None = None, above: float | None = None,
            unit: str = "", choices: tuple[str, ...] = (),
            convert: Callable[[str], object] | None = None, accepts: str = "",
            secret: bool = False):
    """A Config field bound to the environment variable `name`.

    default   the value when the variable is unset or empty; a callable gets the values parsed so
              far (by field name) and derives it (e.g. reference_dir from sources_dir)
    shown     the default as the README shows it (Markdown); derived from `default` if left out
    minimum, maximum, above   inclusive bounds, and an exclusive lower bound, for numbers
    choices   the accepted words (matched case-insensitively) for a text setting
    convert   for text and list items: checks and normalises a value, raising ValueError(reason)
    accepts   what the README's "accepted" column says for a `convert` setting
    secret    kept out of repr() (and so out of logs and tracebacks)
    """
    return field(repr=not secret, metadata={"setting": dict(
        name=name, doc=doc, default=default, shown=shown, minimum=minimum, maximum=maximum,
        above=above, unit=unit, choices=choices, convert=convert, accepts=accepts)})


def _engine_processes() -> int:
    """One engine process per core: on the 2-core machine 2 processes answered 32 concurrent
    conversations 1.7x faster than the app process alone, and 3 were slower than 2
    (benchmarks/load.py). One core gains nothing from them."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, 8) if cores > 1 else 0


def _root_path(value: str) -> str:
    value = value.rstrip("/")
    if value and not (value.startswith("/") or re.match(r"https?://[^/\s]+", value)):
        raise ValueError("must start with / (e.g. /cart-assistant) or be an http(s):// URL")
    return value


def _origin(value: str) -> str:
    value = value.rstrip("/")
    if value != "*" and not re.fullmatch(r"https?://[^/\s?#]+", value):
        raise ValueError(f"has {value!r}, which is not an origin (http(s)://host[:port], no path)")
    return value


def _http_url(value: str) -> str:
    if not re.match(r"https?://[^/\s]+", value):
        raise ValueError("is not an http(s):// URL (e.g. http://llm-host:8000/v1)")
    return value


def _network(value: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"has {value!r}, which is not an IP address or network (10.0.0.5, 10.0.0.0/24)") from None


def _header_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", value):
        raise ValueError("is not an HTTP header name (letters, digits and '-')")
    return value


def _host_name(value: str) -> str:
    value = value.lower().strip("[]")
    if value != "*" and not re.fullmatch(r"(?:\*\.)?[a-z0-9:._-]{1,253}", value):
        raise ValueError(f"has {value!r}, which is not a host name (cart.example.org, 10.0.0.5, *.example.org)")
    return value


def _default_hosts(values: Mapping[str, object]) -> tuple[str, ...]:
    """Loopback names, plus the listening address when it is a specific one."""
    hosts = ["localhost", "127.0.0.1", "::1"]
    host = str(values["host"]).lower().strip("[]")
    if host not in ("0.0.0.0", "::", "") and host not in hosts:
        hosts.append(host)
    return tuple(hosts)


def _postgres_url(value: str) -> str:
    if not re.match(r"postgres(?:ql)?(?:\+\w+)?://\S+$", value):
        raise ValueError("must be a postgresql:// URL")
    return value


def _collection_prefix(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,38}[A-Za-z0-9])?", value) or ".." in value:
        raise ValueError("must be 1-40 letters, digits, '.', '_' or '-', starting and ending with "
                         "a letter or digit (it begins Chroma collection names)")
    return value


@dataclass(frozen=True)
class Config:
    """A snapshot of the environment; `load()` re-reads it (tests change it per case)."""

    # --- corpus, index and store
    data_dir: Path = setting(
        "CART_DATA_DIR", "where the index (Chroma files, build pointer) and the feedback database live",
        default=PROJECT_ROOT / "data", shown="`./data`")
    sources_dir: Path = setting(
        "CART_SOURCES_DIR", "the corpus (`documents/`) and reference data (`reference/`)",
        default=PROJECT_ROOT / "sources", shown="`./sources`")
    reference_dir: Path = setting(
        "CART_REFERENCE_DIR", "reference data for calculators and entity names",
        default=lambda v: v["sources_dir"] / "reference", shown="`$CART_SOURCES_DIR/reference`")
    shared_dir: Path = setting(
        "CART_SHARED_DIR", "the shared folder the tests read CMS files and originals from",
        default=PROJECT_ROOT.parent / "shared", shown="`../shared`")
    chroma_host: str | None = setting(
        "CART_CHROMA_HOST", "a Chroma server's host; when set, the index lives on that server")
    chroma_port: int = setting(
        "CART_CHROMA_PORT", "the Chroma server's port", default=8000, minimum=1, maximum=65535)
    collection_prefix: str = setting(
        "CART_COLLECTION_PREFIX", "prefix of the Chroma collections this project creates",
        default="cart", convert=_collection_prefix, accepts="letters, digits, `.` `_` `-` (1-40)")
    top_k: int = setting(
        "CART_TOP_K", "passages returned by `search` (the engine retrieves at least 10)",
        default=5, minimum=1)

    # --- the web server (app.py)
    host: str = setting("CART_HOST", "the address the app listens on", default="127.0.0.1")
    port: int = setting("CART_PORT", "the port the app listens on", default=7860, minimum=1, maximum=65535)
    root_path: str = setting(
        "CART_ROOT_PATH", "the path prefix behind a reverse proxy", default="", convert=_root_path,
        accepts="`/prefix` or an `http(s)://` URL")
    concurrency: int = setting(
        "CART_CONCURRENCY", "Gradio queue: events processed at once (the chat's Ask is not limited by it)",
        default=8, minimum=1)
    feedback_db: Path = setting(
        "CART_FEEDBACK_DB", "SQLite file for Helpful / Not helpful feedback",
        default=lambda v: v["data_dir"] / "feedback.sqlite3", shown="`$CART_DATA_DIR/feedback.sqlite3`")

    # --- the JSON API and the chat (assistant/api.py)
    allowed_origins: tuple[str, ...] = setting(
        "CART_ALLOWED_ORIGINS", "comma-separated origins allowed to call the app and API from a browser",
        default=(), shown="empty (CORS closed)", convert=_origin,
        accepts="`https://host[:port]`, ... or `*`")
    max_conversations: int = setting(
        "CART_MAX_CONVERSATIONS", "conversations kept in memory (least recently used dropped)",
        default=1000, minimum=1)
    conversation_ttl: float = setting(
        "CART_CONVERSATION_TTL", "seconds of inactivity before a conversation expires",
        default=3600.0, shown="`3600`", above=0, unit="seconds")
    engine_threads: int = setting(
        "CART_ENGINE_THREADS",
        "worker threads that run the engine, shared by the JSON API and the chat, taking waiting "
        "questions round-robin by client (the engine is CPU-bound; 2-4 measured best on 2 cores)", default=4, minimum=1)
    engine_processes: int = setting(
        "CART_ENGINE_PROCESSES",
        "worker processes that compute answers, each with its own engine over the same index (~300 MB each), "
        "so one app answers on every core (0: in the app process itself)", default=lambda _v: _engine_processes(),
        shown="one per core, at most 8 (0 on a 1-core machine)", minimum=0)

    # --- identity, limits and retention on an intranet (assistant/auth.py, assistant/security.py)
    auth: str = setting(
        "CART_AUTH",
        "who may use the app: `none` (anonymous; one person on 127.0.0.1), `proxy` (an SSO proxy in "
        "front sends the user in a header; requests without it are refused), `token` (JSON API only, "
        "with bearer tokens from `python -m assistant.auth`)", default="none", choices=("none", "proxy", "token"))
    auth_user_header: str = setting(
        "CART_AUTH_USER_HEADER", "`proxy` mode: the header that carries the user name",
        default="X-Forwarded-User", convert=_header_name, accepts="header name")
    auth_groups_header: str = setting(
        "CART_AUTH_GROUPS_HEADER", "`proxy` mode: the header that carries the user's groups (comma-separated)",
        default="X-Forwarded-Groups", convert=_header_name, accepts="header name")
    admin_groups: tuple[str, ...] = setting(
        "CART_ADMIN_GROUPS", "`proxy` mode: groups whose members are admins", default=("cart-admin",),
        shown="`cart-admin`")
    trusted_proxies: tuple[str, ...] = setting(
        "CART_TRUSTED_PROXIES",
        "addresses whose identity and `X-Forwarded-*` headers are believed; from anyone else they are dropped",
        default=("127.0.0.1/32", "::1/128"), shown="`127.0.0.1, ::1`", convert=_network,
        accepts="IP addresses or networks, comma-separated")
    trusted_hosts: tuple[str, ...] = setting(
        "CART_TRUSTED_HOSTS",
        "host names the app answers to (other `Host` headers get 400); list the name users type",
        default=_default_hosts, shown="`localhost, 127.0.0.1, ::1` and `CART_HOST`", convert=_host_name,
        accepts="host names, `*.domain` or `*`")
    tokens_file: Path = setting(
        "CART_TOKENS_FILE", "`token` mode: the API tokens, stored as SHA-256 hashes",
        default=lambda v: v["data_dir"] / "api_tokens.json", shown="`$CART_DATA_DIR/api_tokens.json`")
    history_db: Path = setting(
        "CART_HISTORY_DB", "conversations kept across reloads and restarts (questions, answers, citations; 0600)",
        default=lambda v: v["data_dir"] / "conversations.sqlite3", shown="`$CART_DATA_DIR/conversations.sqlite3`")
    history_days: int = setting(
        "CART_HISTORY_DAYS", "days a conversation is kept after its last question; older ones are deleted on start and daily",
        default=30, minimum=1, unit="days")
    retention_days: int = setting(
        "CART_RETENTION_DAYS", "days feedback is kept; older rows are deleted on start and daily",
        default=30, minimum=1, unit="days")
    rate_asks: int = setting(
        "CART_RATE_ASKS", "questions per minute per client (per user with identity on); more get 429",
        default=30, minimum=1, unit="per minute")
    rate_feedback: int = setting(
        "CART_RATE_FEEDBACK", "feedback posts per minute per client", default=10, minimum=1, unit="per minute")
    max_pending: int = setting(
        "CART_MAX_PENDING", "questions waiting for the engine at most; beyond it a question is refused "
        "with \"busy, try again\" (503) instead of queueing", default=64, minimum=1)
    max_conversations_per_user: int = setting(
        "CART_MAX_CONVERSATIONS_PER_USER", "conversations one user keeps, with identity on (their oldest dropped first)",
        default=20, minimum=1)
    admin_pages: str = setting(
        "CART_ADMIN_PAGES", "`on` opens the admins' pages: Documents (`/admin/documents`: upload a PDF, web page or "
        "Word file, correct the proposed metadata, start the rebuild) and Review (`/admin/review`: the feedback queue); "
        "admins are `CART_ADMIN_GROUPS` with proxy sign-in, the local user with `CART_AUTH=none`",
        default="off", choices=("off", "on"))
    database_url: str | None = setting(
        "CART_DATABASE_URL", "PostgreSQL for the conversation history and the feedback, shared by several app "
        "processes (`postgresql://user:pass@host:5432/db`); unset, each lives in its SQLite file",
        shown="unset (SQLite files)", secret=True, convert=_postgres_url, accepts="`postgresql://` URL")
    max_upload_mb: int = setting(
        "CART_MAX_UPLOAD_MB", "largest file `python -m index add` and the Documents page accept",
        default=20, minimum=1, maximum=500, unit="MB")

    # --- the request log (assistant/requestlog.py)
    log_questions: str = setting(
        "CART_LOG_QUESTIONS",
        "how the request log shows a question: `hash` (salted SHA-256 prefix + length), `redact` "
        "(names, e-mails, phones, dates of birth, MRN/member/SSN ids, numbers and dates replaced: "
        "\"Pt <name> DOB <dob> MRN <id>, <n> kg, carvykti dose\"; names by heuristics, not guaranteed), "
        "`full` (verbatim, patient details included)", default="hash", choices=("hash", "redact", "full"))
    log_salt: str | None = setting(
        "CART_LOG_SALT", "salt for question hashes (set it to join log lines across restarts)",
        shown="random per process", secret=True)
    log_file: Path | None = setting(
        "CART_LOG_FILE", "append request log lines to this file (created 0600; reopened when logrotate "
        "moves it, so no `copytruncate` is needed)", shown="stderr")

    # --- the optional LLM composer (assistant/llm.py)
    llm_base_url: str | None = setting(
        "CART_LLM_BASE_URL", "the endpoint's base URL (`.../v1`); unset, the LLM composer is off",
        shown="unset (off)", convert=_http_url, accepts="`http(s)://` URL")
    llm_model: str = setting("CART_LLM_MODEL", "model name sent to the endpoint", default="default")
    llm_api_key: str = setting(
        "CART_LLM_API_KEY", "API key, if the endpoint wants one", default="not-needed", secret=True)
    llm_timeout: float = setting(
        "CART_LLM_TIMEOUT", "seconds per request; no retries", default=20.0, shown="`20`",
        above=0, unit="seconds")

    # --- the embedding model (index/embedding.py)
    embed_backend: str = setting(
        "CART_EMBED_BACKEND", "how the build runs the embedding model on the CPU: `torch` "
        "(sentence-transformers) or `onnx` (ONNX Runtime, exported locally from the packaged weights at "
        "first use and cached under `$CART_DATA_DIR/models`)", default="torch", choices=("torch", "onnx"))

    # --- benchmarks only (index/embedding.py)
    embedder: str = setting(
        "CART_EMBEDDER",
        "**benchmark-only**: `hash` swaps the embedding model for a meaningless hashing embedder "
        "(see [Benchmarks](#benchmarks)); never set it for a real index",
        default="model", choices=("model", "hash"))

    @property
    def server_mode(self) -> bool:
        """True when a Chroma server is configured: the store lives there, not on local disk."""
        return bool(self.chroma_host)


@dataclass(frozen=True)
class Setting:
    """One CART_* variable, as declared on its Config field."""

    name: str
    field: str
    kind: str                   # path | text | int | number | list (from the field's type)
    doc: str
    default: object
    shown: str | None
    minimum: float | None
    maximum: float | None
    above: float | None
    unit: str
    choices: tuple[str, ...]
    convert: Callable[[str], object] | None
    accepts: str

    def range_text(self) -> str:
        """The accepted range: '1-65535', '>= 1', '> 0' (or '')."""
        if self.minimum is not None and self.maximum is not None:
            return f"{self.minimum:g}-{self.maximum:g}"
        if self.minimum is not None:
            return f">= {self.minimum:g}"
        if self.above is not None:
            return f"> {self.above:g}"
        return ""

    def bounds(self) -> str:
        """Unit and range, as the error messages give them: 'seconds, > 0'."""
        return ", ".join(t for t in (self.unit, self.range_text()) if t)

    def default_text(self) -> str:
        if self.shown is not None:
            return self.shown
        if self.default is None:
            return "unset"
        return f"`{self.default}`" if self.default != "" else "empty"

    def accepted_text(self) -> str:
        if self.choices:
            return ", ".join(f"`{c}`" for c in self.choices)
        if self.accepts:
            return self.accepts
        if self.kind in ("int", "number"):
            what = self.unit or ("whole number" if self.kind == "int" else "number")
            return f"{what} {self.range_text()}"
        return {"path": "path", "text": "text", "list": "comma-separated"}[self.kind]

    def parse(self, raw: str) -> object:
        """The typed value of a non-empty `raw`; ValueError(reason) when it is not acceptable."""
        if self.kind == "path":
            try:
                return Path(raw).expanduser().resolve()
            except (RuntimeError, OSError) as exc:  # '~nobody/x', a loop of symbolic links
                raise ValueError(f"is not a usable path ({exc})") from None
        if self.kind in ("int", "number"):
            range_note = f" ({self.bounds()})" if self.bounds() else ""
            what = "whole number" if self.kind == "int" else "number"
            try:
                value = int(raw) if self.kind == "int" else float(raw)
            except ValueError:
                raise ValueError(f"is not a {what}{range_note}") from None
            if not math.isfinite(value):
                raise ValueError(f"is not a number{range_note}")
            if ((self.minimum is not None and value < self.minimum)
                    or (self.maximum is not None and value > self.maximum)
                    or (self.above is not None and value <= self.above)):
                raise ValueError(f"is out of range{range_note}")
            return value
        if self.kind == "list":
            items = [item.strip() for item in raw.split(",") if item.strip()]
            return tuple(self.convert(item) if self.convert else item for item in items)
        if self.choices:
            value = raw.lower()
            if value not in self.choices:
                raise ValueError(f"is not one of {', '.join(self.choices)}")
            return value
        return self.convert(raw) if self.convert else raw


def _kind(name: str, annotation, default: object) -> str:
    """The parser for a field's type: Path, str, int, float, tuple[str, ...], or one of them | None
    (only a `| None` field may default to None)."""
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) and type(None) in args:
        (annotation,) = [a for a in args if a is not type(None)]
    elif default is None:
        raise TypeError(f"Config: {name} defaults to None but its type is {annotation!r}")
    if typing.get_origin(annotation) is tuple:
        return "list"
    kinds = {Path: "path", str: "text", int: "int", float: "number"}
    if annotation not in kinds:
        raise TypeError(f"Config: no parser for {name}'s type {annotation!r}")
    return kinds[annotation]


def _settings() -> tuple[Setting, ...]:
    hints = typing.get_type_hints(Config)
    out = []
    for f in fields(Config):
        decl = f.metadata["setting"]
        out.append(Setting(field=f.name, kind=_kind(decl["name"], hints[f.name], decl["default"]), **decl))
    return tuple(out)


SETTINGS: tuple[Setting, ...] = _settings()
NAMES: tuple[str, ...] = tuple(s.name for s in SETTINGS)


def spec(name: str) -> Setting:
    """The declaration of the variable `name` (e.g. its choices)."""
    for s in SETTINGS:
        if s.name == name:
            return s
    raise KeyError(name)


# --- reading the environment -----------------------------------------------------------------

def parse(environ: Mapping[str, str]) -> Config:
    """A Config from `environ`; one ConfigError naming every bad value."""
    values: dict[str, object] = {}
    problems: list[str] = []
    for s in SETTINGS:
        raw = (environ.get(s.name) or "").strip()
        if not raw:
            try:
                values[s.field] = s.default(values) if callable(s.default) else s.default
            except KeyError:  # derived from a setting that is itself bad: already reported
                pass
            continue
        try:
            values[s.field] = s.parse(raw)
        except ValueError as exc:
            problems.append(f"{s.name}={raw!r} {exc}")
    if problems:
        raise ConfigError(problems)
    return Config(**values)


_last: tuple[tuple, Config] | None = None


def _raw_values() -> tuple:
    """The CART_* values as they stand (the key of the parsed Config kept from the last call)."""
    get = os.environ.get
    return tuple(get(name) for name in NAMES)


def load() -> Config:
    """The configuration from the current environment, re-read on every call (cheap: the parsed
    Config is reused while the CART_* variables and the working directory stay the same)."""
    global _last
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = ""
    key = (cwd, *_raw_values())
    last = _last
    if last is not None and last[0] == key:
        return last[1]
    cfg = parse(os.environ)
    _last = (key, cfg)
    return cfg


def reference_dir_key() -> tuple:
    """What the reference folder depends on, as raw values: a cheap key for callers that cache
    per folder and ask a hundred times a turn (the typed reference layer)."""
    return os.environ.get("CART_REFERENCE_DIR"), os.environ.get("CART_SOURCES_DIR")


def reference_dir() -> Path:
    """Just the reference folder (asked for on every entity look-up)."""
    return load().reference_dir


# --- documentation ---------------------------------------------------------------------------

def markdown_table(prefix: str = "CART_") -> str:
    """The README's table of the settings whose variable starts with `prefix`."""
    rows = ["| variable | default | accepted | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        if s.name.startswith(prefix):
            cells = [f"`{s.name}`", s.default_text(), s.accepted_text(), s.doc]
            rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
