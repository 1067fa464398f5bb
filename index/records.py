"""What the build keeps of each document revision, so that an unchanged document costs nothing.

A document's *key* hashes everything its chunks depend on: its text and metadata, its page
offsets, the product and payer names the chunker tags with, the embedding model, and the source
of the chunking code itself (a change to the chunker re-chunks everything without anybody
remembering to bump a version). The key's *record* (`index/records/<key>.json`) holds the
document's nodes, their BM25 tokens and their quotable sentences, written once when the document
is first chunked. A later build reads the record instead of chunking again, and builds the
lexical index from the stored tokens instead of reading the vector store back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from llama_index.core.schema import TextNode

from assistant.core.files import write_atomic
from index.corpus import SourceDocument

# The modules whose code decides a document's chunks, tokens and sentences.
_PIPELINE = ("chunking.py", "normalize.py", "codes.py", "entities.py", "sentences.py", "tables.py",
             "corpus.py", "records.py", "build.py")
_REFERENCE = ("products.yaml", "payers.yaml")  # the names chunks are tagged with


@dataclass
class DocRecord:
    """A document revision's chunks as stored: plain rows, so that an unchanged document costs a
    JSON parse (llama-index nodes are made only for the documents a build writes vectors of)."""

    key: str
    doc_id: str
    raw: list[dict]               # per chunk: {"id", "text", "metadata"}
    corpus: list[dict]            # per chunk: its row in the saved BM25 index (llama-index's node dict)
    tokens: list[list[str]]       # per chunk, for BM25
    sentences: dict[str, str]     # sentence id -> text, of every quotable sentence

    @cached_property
    def nodes(self) -> list[TextNode]:
        return [_node(r) for r in self.raw]

    @property
    def chunk_ids(self) -> list[str]:
        return [r["id"] for r in self.raw]

    def __len__(self) -> int:
        return len(self.raw)


@lru_cache(maxsize=1)
def pipeline_signature() -> str:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in _PIPELINE:
        digest.update(name.encode() + b"\x00" + (here / name).read_bytes())
    return digest.hexdigest()


def reference_signature(reference_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in _REFERENCE:
        path = Path(reference_dir) / name
        digest.update(name.encode() + b"\x00" + (path.read_bytes() if path.is_file() else b""))
    return digest.hexdigest()


def doc_key(doc: SourceDocument, reference_sig: str, embedder: str) -> str:
    parts = [doc.content_hash, json.dumps(list(doc.pages)), reference_sig, embedder, pipeline_signature()]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def records_dir(index_root: Path) -> Path:
    return index_root / "records"


def make(doc: SourceDocument, key: str) -> DocRecord:
    """Chunk a document (the only place the build chunks) into its record."""
    from llama_index.core.vector_stores.utils import node_to_metadata_dict

    from index.build import chunk_to_node, node_sentences
    from index.chunking import chunk_document
    from index.codes import tokenize

    nodes = [chunk_to_node(doc, c) for c in chunk_document(doc)]
    rec = DocRecord(key=key, doc_id=doc.id, raw=[{"id": n.node_id, "text": n.text, "metadata": n.metadata} for n in nodes],
                    corpus=[node_to_metadata_dict(n) | {"node_id": n.node_id} for n in nodes],
                    tokens=[tokenize(n.text) for n in nodes], sentences=node_sentences(nodes))
    rec.nodes = nodes  # the cached property, already made
    return rec


def save(root: Path, rec: DocRecord) -> None:
    data = {"key": rec.key, "doc_id": rec.doc_id, "tokens": rec.tokens, "sentences": rec.sentences,
            "nodes": rec.raw, "corpus": rec.corpus}
    write_atomic(records_dir(root) / f"{rec.key}.json", json.dumps(data, separators=(",", ":")))


def load(root: Path, key: str) -> DocRecord | None:
    """The stored record of `key`, or None when there is none or it cannot be trusted."""
    path = records_dir(root) / f"{key}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        raw = data["nodes"]
        if data["key"] != key or not len(data["tokens"]) == len(data["corpus"]) == len(raw):
            return None
        return DocRecord(key=key, doc_id=data["doc_id"], raw=raw, corpus=data["corpus"], tokens=data["tokens"],
                         sentences=dict(data["sentences"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _node(data: dict) -> TextNode:
    from index.build import make_node

    return make_node(data["id"], data["text"], data["metadata"])


def remove_unused(root: Path, keep: set[str]) -> int:
    """Delete the records no build in `keep`'s manifests refers to; returns how many."""
    removed = 0
    folder = records_dir(root)
    if folder.is_dir():
        for path in folder.glob("*.json"):
            if path.stem not in keep:
                path.unlink(missing_ok=True)
                removed += 1
    return removed
