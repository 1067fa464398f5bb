"""Where the index lives: Chroma (embedded on disk, or a server) plus a pointer to the live build.

Every build writes a new collection aside; only when it is complete does the pointer move to
it (an atomic file rename on disk, a single metadata update on a server). Readers follow the
pointer, so a build that fails or is killed leaves the previous index serving.

Embedded mode gives each build its own directory, so a killed build cannot damage the files of
the index in service. Chroma's default embedding function (which downloads a model) is never
attached: collections are created with `embedding_function=None` and always given vectors.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from assistant import config as config_mod
from assistant.config import Config
from assistant.core.files import write_atomic
from index.sentences import COLLECTION_SUFFIX


class IndexMissingError(RuntimeError):
    """No usable index: the message says how to build one."""


class StoreUnreachableError(IndexMissingError):
    """The Chroma server holding the index cannot be reached: the message says where."""


def is_store_error(exc: BaseException) -> bool:
    """Whether `exc` comes from the index store (an unreachable server, a damaged or deleted
    database) rather than from a bug: such errors become a clear message, not a traceback."""
    import sqlite3

    if isinstance(exc, (IndexMissingError, sqlite3.Error, OSError, ConnectionError)):
        return True
    if isinstance(exc, ValueError) and "Could not connect" in str(exc):  # chromadb.HttpClient()
        return True
    try:
        import httpx

        if isinstance(exc, httpx.HTTPError):
            return True
    except ImportError:  # pragma: no cover
        pass
    from chromadb.errors import ChromaError

    return isinstance(exc, ChromaError)


def unreachable_message(cfg: Config, exc: BaseException) -> str:
    if cfg.server_mode:
        return (f"The Chroma server at {cfg.chroma_host}:{cfg.chroma_port} that holds the index cannot be "
                f"reached ({exc.__class__.__name__}: {exc}). Start it (`chroma run ...`) or check "
                "CART_CHROMA_HOST / CART_CHROMA_PORT.")
    return (f"The index under {index_root(cfg)} cannot be read ({exc.__class__.__name__}: {exc}); "
            "run `python -m index build` to rebuild it.")


@dataclass(frozen=True)
class Manifest:
    """What the live build holds: enough to rebuild incrementally and to describe the index.

    The vectors live in one or two *segments* (each a Chroma collection of chunks plus one of
    sentence vectors, in its own directory in embedded mode): the *base*, and a *delta* holding
    the documents changed since the base was written. `masked` lists the documents whose base
    chunks are out of date (changed or removed since); searches leave them out of the base. A
    rebuild after one document changed therefore writes only a new delta, and the base is merged
    anew when the delta outgrows a share of the corpus (index.build.COMPACT_SHARE)."""

    build_id: str
    created: str
    corpus_hash: str
    model_sha256: str
    documents: dict  # doc id -> {title, kind, hash, key, chunks, segment, ...}
    chunk_ids: list[str]
    segments: list[dict] = field(default_factory=list)  # [{id, collection, sentences, chunks, documents: {doc id: {key, chunks}}}]
    masked: list[str] = field(default_factory=list)
    lexical: str = ""  # the saved BM25 index's directory under index/lexical ("" for none: built on load)

    @property
    def base(self) -> dict:
        return self.segments[0]

    @property
    def collection(self) -> str:
        """The base segment's chunk collection."""
        return self.base["collection"]

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        if "segments" not in data:  # a build made before segments: one segment, no saved BM25
            data["segments"] = [{"id": data["build_id"], "collection": data.pop("collection"),
                                 "sentences": data.pop("sentences", ""), "chunks": len(data["chunk_ids"]),
                                 "documents": {}}]
        return cls(**data)


def index_root(cfg: Config) -> Path:
    return cfg.data_dir / "index"


def _chromadb():
    import chromadb
    from chromadb.config import Settings

    return chromadb, Settings(anonymized_telemetry=False, allow_reset=False)


def client_for(cfg: Config, build_id: str):
    """The Chroma client that holds `build_id`'s collection."""
    chromadb, settings = _chromadb()
    if cfg.server_mode:
        return chromadb.HttpClient(host=cfg.chroma_host, port=cfg.chroma_port, settings=settings)
    path = index_root(cfg) / "builds" / build_id
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=settings)


def collection_name(cfg: Config, build_id: str) -> str:
    return f"{cfg.collection_prefix}_{build_id}"


def open_collection(client, name: str, create: bool = False):
    if create:
        return client.create_collection(name=name, embedding_function=None,
                                        metadata={"hnsw:space": "cosine"})
    return client.get_collection(name=name, embedding_function=None)


# --- the pointer -----------------------------------------------------------------------------

def _pointer_file(cfg: Config) -> Path:
    return index_root(cfg) / "CURRENT.json"


def _pointer_collection(cfg: Config):
    chromadb, settings = _chromadb()
    client = chromadb.HttpClient(host=cfg.chroma_host, port=cfg.chroma_port, settings=settings)
    return client.get_or_create_collection(f"{cfg.collection_prefix}__pointer", embedding_function=None)


def pointer_stamp(cfg: Config) -> int | None:
    """When the local pointer last changed (None on a Chroma server, or before any build): a
    running app compares it to notice a rebuild made by another process."""
    if cfg.server_mode:
        return None
    try:
        return _pointer_file(cfg).stat().st_mtime_ns
    except OSError:
        return None


def read_manifest(cfg: Config | None = None) -> Manifest | None:
    """The live build's manifest, or None when no build has completed yet."""
    cfg = cfg or config_mod.load()
    if cfg.server_mode:
        try:
            meta = _pointer_collection(cfg).metadata or {}
        except Exception as exc:
            if is_store_error(exc):
                raise StoreUnreachableError(unreachable_message(cfg, exc)) from None
            raise
        return Manifest.from_json(meta["manifest"]) if meta.get("manifest") else None
    path = _pointer_file(cfg)
    if not path.exists():
        return None
    try:
        return Manifest.from_json(path.read_text(encoding="utf-8"))
    except (ValueError, TypeError, KeyError) as exc:
        raise IndexMissingError(
            f"The index pointer {path} is damaged ({exc.__class__.__name__}); run `python -m index build`."
        ) from None


def write_manifest(cfg: Config, manifest: Manifest) -> None:
    """Make `manifest` the live build, atomically."""
    if cfg.server_mode:
        _pointer_collection(cfg).modify(metadata={"manifest": manifest.to_json()})
        return
    write_atomic(_pointer_file(cfg), manifest.to_json(), sync_dir=True)


def remove_stale_builds(cfg: Config, keep: set[str]) -> list[str]:
    """Delete builds other than `keep` (the live one and the one before it, which a running
    reader may still hold). Returns what was removed."""
    removed = []
    if cfg.server_mode:
        chromadb, settings = _chromadb()
        client = chromadb.HttpClient(host=cfg.chroma_host, port=cfg.chroma_port, settings=settings)
        prefix = f"{cfg.collection_prefix}_"
        for col in client.list_collections():
            name = col if isinstance(col, str) else col.name
            build = name[len(prefix):].removesuffix(COLLECTION_SUFFIX)  # a build's sentence collection goes with it
            if name.startswith(prefix) and not name.startswith(prefix + "_") and build not in keep:
                client.delete_collection(name)
                removed.append(build)
        return removed
    builds = index_root(cfg) / "builds"
    if builds.is_dir():
        for path in builds.iterdir():
            if path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
    for tmp in index_root(cfg).glob(".CURRENT.*.tmp"):
        tmp.unlink(missing_ok=True)
    return removed
