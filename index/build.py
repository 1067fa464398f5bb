"""`python -m index build`: incremental (content hashes) and atomic (build aside, then swap).

A chunk's id is a hash of its normalized text, span and normalizer version, so an unchanged
chunk keeps its id and its vector is copied from the live build instead of re-embedded. An
unchanged corpus is detected up front and nothing is written at all.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from llama_index.core.schema import TextNode

from assistant import config as config_mod
from assistant.config import Config
from index import store
from index.chunking import Chunk, chunk_document
from index.corpus import DocumentError, SourceDocument, load_corpus
from index.embedding import embedder_id, get_embedder
from index.sentences import COLLECTION_SUFFIX, quotable_sentences, sentence_id
from index.sentences import VERSION as SENTENCES_VERSION

BATCH = 64


@dataclass
class BuildReport:
    status: str  # "built" | "up-to-date" | "failed"
    documents: int = 0
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    sentences: int = 0            # sentence vectors in the build (index.sentences)
    sentences_embedded: int = 0   # of which embedded now (the rest copied from the live build)
    seconds: float = 0.0
    build_id: str = ""
    skipped: list[DocumentError] = field(default_factory=list)
    message: str = ""


def chunk_to_node(doc: SourceDocument, chunk: Chunk) -> TextNode:
    """A llama-index node carrying everything a citation and the ranking need (Chroma-safe)."""
    meta = doc.metadata() | {
        "section": chunk.section,
        "chunk_type": chunk.chunk_type,
        "span_start": chunk.start,
        "span_end": chunk.end,
        "products": "|" + "|".join(chunk.products) + "|",
        "codes": "|" + "|".join(chunk.codes) + "|",
        "header": chunk.header,
        "quote": chunk.text,
        "page": doc.page_of(chunk.start) or 0,  # of the original PDF; 0 for a document without pages
    }
    node = TextNode(id_=chunk.id, text=chunk.search_text, metadata=meta)
    # Only the search text is embedded/served as content; citations read the metadata.
    node.excluded_embed_metadata_keys = list(meta)
    node.excluded_llm_metadata_keys = list(meta)
    return node


def embed_text(node: TextNode) -> str:
    return f"{node.metadata['title']}\n{node.text}"


def corpus_nodes(documents: list[SourceDocument]) -> list[TextNode]:
    return [chunk_to_node(doc, c) for doc in documents for c in chunk_document(doc)]


def corpus_hash(nodes: list[TextNode]) -> str:
    digest = hashlib.sha256(embedder_id().encode() + SENTENCES_VERSION.encode())
    for node in nodes:
        digest.update(node.id_.encode())
        digest.update(repr(sorted(node.metadata.items())).encode("utf-8"))
    return digest.hexdigest()


Say = Callable[[str], None]  # where a build's progress lines go


def _print(msg: str) -> None:
    print(msg, flush=True)


def _silent(_msg: str) -> None:
    pass


def build(cfg: Config | None = None, *, quiet: bool = False, force: bool = False,
          progress: Say | None = None) -> BuildReport:
    """Build or refresh the index; the live index changes only if this completes. Progress
    lines are printed (none with `quiet`), or handed to `progress` (the Documents page shows them)."""
    cfg = cfg or config_mod.load()
    say = progress or (_silent if quiet else _print)
    started = time.perf_counter()
    root = store.index_root(cfg)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".build.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return BuildReport(status="failed", message="Another index build is running; try again when it ends.")
        return _build_locked(cfg, started, say, force)


def _build_locked(cfg: Config, started: float, say: Say, force: bool) -> BuildReport:
    corpus = load_corpus(cfg.sources_dir)
    for err in corpus.errors:
        print(f"Skipped {err}", file=sys.stderr, flush=True)
    if not corpus.documents:
        return BuildReport(status="failed", skipped=corpus.errors,
                           message=f"No usable documents in {cfg.sources_dir / 'documents'}; the index was not changed.")
    nodes = corpus_nodes(corpus.documents)
    chash = corpus_hash(nodes)
    try:
        live = store.read_manifest(cfg)
    except store.StoreUnreachableError as exc:  # a server that is down: nothing to build into
        return BuildReport(status="failed", skipped=corpus.errors, message=f"{exc} The index was not changed.")
    except store.IndexMissingError as exc:
        say(f"{exc}; building a new index.")
        live = None
    report = BuildReport(status="built", documents=len(corpus.documents), chunks=len(nodes),
                         skipped=corpus.errors)
    if live and live.corpus_hash == chash and not force:
        return _up_to_date(report, live, started)

    reuse = _reusable_vectors(cfg, live, nodes, say)
    build_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f") + "-" + chash[:8]
    name = store.collection_name(cfg, build_id)
    collection, vector_store = _new_collection(cfg, build_id, name)
    todo = [n for n in nodes if n.id_ not in reuse]
    say(f"Building index {build_id}: {len(nodes)} chunks from {len(corpus.documents)} documents; "
         f"{len(reuse)} vectors reused, {len(todo)} to embed.")
    _attach_vectors(nodes, reuse, todo, say)
    _store_nodes(collection, vector_store, nodes, build_id)
    sentences, report.sentences, report.sentences_embedded = _store_sentences(
        cfg, live, build_id, name + COLLECTION_SUFFIX, nodes, say)

    manifest = _manifest(build_id, name, chash, corpus.documents, nodes, sentences)
    store.write_manifest(cfg, manifest)  # the swap: from here on readers see the new build
    store.remove_stale_builds(cfg, keep={build_id} | ({live.build_id} if live else set()))
    report.build_id = build_id
    report.embedded = len(todo)
    report.reused = len(reuse)
    report.seconds = time.perf_counter() - started
    report.message = (f"Built index {build_id}: {report.documents} documents, {report.chunks} chunks; "
                      f"embedded {report.embedded}, reused {report.reused}; {report.sentences} sentence vectors "
                      f"({report.sentences_embedded} embedded) in {report.seconds:.1f} s.")
    return report


def _up_to_date(report: BuildReport, live: store.Manifest, started: float) -> BuildReport:
    """The live build already holds this corpus: report it and write nothing."""
    report.status = "up-to-date"
    report.build_id = live.build_id
    report.message = (f"Index is up to date: {report.documents} documents, {report.chunks} chunks; "
                      "nothing re-embedded.")
    report.seconds = time.perf_counter() - started
    return report


def _reusable_vectors(cfg: Config, live: store.Manifest | None, nodes: list[TextNode], say: Say) -> dict[str, list[float]]:
    """Vectors of unchanged chunks, copied from the live build (same model) so they are not re-embedded."""
    if not live:
        return {}
    live_ids = set(live.chunk_ids)  # once: a set per node made this quadratic
    return _live_vectors(cfg, live, live.collection, [n.id_ for n in nodes if n.id_ in live_ids],
                         "vectors from the live build", say)


def _live_vectors(cfg: Config, live: store.Manifest, collection: str, ids: list[str], what: str,
                  say: Say) -> dict[str, list[float]]:
    """The live build's vectors for `ids` in one of its collections (same model only), read in
    pages; a damaged live build gives none, so everything is embedded."""
    vectors: dict[str, list[float]] = {}
    if not collection or live.model_sha256 != embedder_id():
        return vectors
    try:
        old = store.open_collection(store.client_for(cfg, live.build_id), collection)
        for i in range(0, len(ids), 500):
            got = old.get(ids=ids[i:i + 500], include=["embeddings"])
            # Chroma returns one embedding per returned id, in the same order.
            vectors.update(zip(got["ids"], (list(map(float, e)) for e in got["embeddings"]), strict=True))
    except Exception as exc:  # a damaged live build: embed everything
        say(f"Could not reuse {what} ({exc.__class__.__name__}); re-embedding all.")
        return {}
    return vectors


def _new_collection(cfg: Config, build_id: str, name: str):
    """The new build's empty Chroma collection, set aside from the live one, and its llama-index vector store."""
    from llama_index.vector_stores.chroma import ChromaVectorStore

    collection = store.open_collection(store.client_for(cfg, build_id), name, create=True)
    return collection, ChromaVectorStore(chroma_collection=collection)


def _attach_vectors(nodes: list[TextNode], reuse: dict[str, list[float]], todo: list[TextNode], say: Say) -> None:
    """Give every node its vector: reused where the live build had it, else embedded in batches (todo)."""
    embedder = get_embedder() if todo else None
    for n in nodes:
        if n.id_ in reuse:
            n.embedding = reuse[n.id_]
    for i in range(0, len(todo), BATCH):
        batch = todo[i:i + BATCH]
        vectors = embedder.get_text_embedding_batch([embed_text(n) for n in batch])
        for n, v in zip(batch, vectors, strict=True):  # the embedder returns one vector per text
            n.embedding = v
        say(f"  embedded {min(i + BATCH, len(todo))}/{len(todo)}")


def node_sentences(nodes: list[TextNode]) -> dict[str, str]:
    """sentence_id -> text of every quotable sentence of the nodes (each wording once)."""
    out: dict[str, str] = {}
    for n in nodes:
        m = n.metadata
        for _a, _b, text in quotable_sentences(m["quote"], (int(m["span_start"]), int(m["span_end"])), m["chunk_type"]):
            out.setdefault(sentence_id(text), text)
    return out


def _store_sentences(cfg: Config, live: store.Manifest | None, build_id: str, name: str,
                     nodes: list[TextNode], say: Say) -> tuple[str, int, int]:
    """The new build's sentence collection: vectors of sentences the live build has are copied,
    the others embedded. Returns its name (for the manifest), the sentence count and how many
    were embedded."""
    wanted = node_sentences(nodes)
    vectors = _live_vectors(cfg, live, live.sentences, sorted(wanted), "sentence vectors", say) if live else {}
    todo = [i for i in wanted if i not in vectors]
    if todo:
        embedder = get_embedder()
        for i in range(0, len(todo), BATCH):
            batch = todo[i:i + BATCH]
            vectors.update(zip(batch, embedder.get_text_embedding_batch([wanted[j] for j in batch]), strict=True))
        say(f"  embedded {len(todo)} sentences ({len(wanted) - len(todo)} reused)")
    collection = store.open_collection(store.client_for(cfg, build_id), name, create=True)
    ids = sorted(wanted)
    for i in range(0, len(ids), 1000):
        collection.add(ids=ids[i:i + 1000], embeddings=[vectors[j] for j in ids[i:i + 1000]])
    if collection.count() != len(ids):
        raise RuntimeError(f"build {build_id} holds {collection.count()} sentences, expected {len(ids)}")
    return name, len(ids), len(todo)


def _store_nodes(collection, vector_store, nodes: list[TextNode], build_id: str) -> None:
    """Write the nodes into the new collection and check that all of them arrived before it can go live."""
    for i in range(0, len(nodes), 256):
        vector_store.add(nodes[i:i + 256])
    if collection.count() != len(nodes):
        raise RuntimeError(f"build {build_id} holds {collection.count()} chunks, expected {len(nodes)}")


def _manifest(build_id: str, name: str, chash: str, documents: list[SourceDocument], nodes: list[TextNode],
              sentences: str) -> store.Manifest:
    """The pointer record for the new build: its collection, hashes, per-document metadata and chunk ids."""
    per_doc = Counter(n.metadata["source_id"] for n in nodes)  # one pass, not one per document
    docs_meta = {doc.id: {**doc.metadata(), "hash": doc.content_hash, "chunks": per_doc[doc.id]}
                 for doc in documents}
    return store.Manifest(
        build_id=build_id, collection=name,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        corpus_hash=chash, model_sha256=embedder_id(), documents=docs_meta,
        chunk_ids=[n.id_ for n in nodes], sentences=sentences,
    )
