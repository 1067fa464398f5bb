"""All configuration in one place: environment variables with defaults.

Importing this module also pins the process to offline behaviour (no hub downloads, no
telemetry), which is why every entry point imports it first. The README's "Configuration"
table lists the same variables; keep the two in step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Offline at run time: set before any library that reads them is imported.
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TQDM_DISABLE": "1",
}.items():
    os.environ.setdefault(_key, _value)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:  # a clear message, not a traceback deep in a library
        raise SystemExit(f"Configuration error: {name}={value!r} is not a whole number") from exc


@dataclass(frozen=True)
class Config:
    """A snapshot of the environment; `load()` re-reads it (tests change it per case)."""

    sources_dir: Path
    reference_dir: Path
    data_dir: Path
    shared_dir: Path
    chroma_host: str | None
    chroma_port: int
    collection_prefix: str
    top_k: int

    @property
    def server_mode(self) -> bool:
        """True when a Chroma server is configured: the store lives there, not on local disk."""
        return bool(self.chroma_host)


def reference_dir() -> Path:
    """Just the reference folder: asked for on every entity look-up, so cheaper than load()."""
    sources = _path("CART_SOURCES_DIR", PROJECT_ROOT / "sources")
    return _path("CART_REFERENCE_DIR", sources / "reference")


def load() -> Config:
    sources = _path("CART_SOURCES_DIR", PROJECT_ROOT / "sources")
    return Config(
        sources_dir=sources,
        reference_dir=_path("CART_REFERENCE_DIR", sources / "reference"),
        data_dir=_path("CART_DATA_DIR", PROJECT_ROOT / "data"),
        shared_dir=_path("CART_SHARED_DIR", PROJECT_ROOT.parent / "shared"),
        chroma_host=os.environ.get("CART_CHROMA_HOST") or None,
        chroma_port=_int("CART_CHROMA_PORT", 8000),
        collection_prefix=os.environ.get("CART_COLLECTION_PREFIX", "cart"),
        top_k=_int("CART_TOP_K", 5),
    )
