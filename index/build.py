"""`python -m index build`: incremental (content hashes) and atomic (build aside, then swap).

A chunk's id is a hash of its normalized text, span and normalizer version, so an unchanged
chunk keeps its id and its vector is copied from the live build instead of re-embedded. An
unchanged corpus is detected up front and nothing is written at all.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from llama_index.core.schema import TextNode

from assistant import config as config_mod
from assistant.config import Config
from index import records, store
from index.chunking import Chunk, chunk_document
from index.corpus import DocumentError, SourceDocument, load_corpus
from index.embedding import embedder_id
from index.sentences import COLLECTION_SUFFIX, quotable_sentences, sentence_id
from index.sentences import VERSION as SENTENCES_VERSION

COMPACT_MIN = 2000     # changed chunks kept in a delta beside the base at least...
COMPACT_SHARE = 0.25   # ...or up to this share of the corpus; beyond, the build merges a new base


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
    return make_node(chunk.id, chunk.search_text, meta)


def make_node(node_id: str, text: str, meta: dict) -> TextNode:
    """A chunk's node, made fresh or from its stored record (index.records)."""
    node = TextNode(id_=node_id, text=text, metadata=meta)
    # Only the search text is embedded/served as content; citations read the metadata.
    node.excluded_embed_metadata_keys = list(meta)
    node.excluded_llm_metadata_keys = list(meta)
    return node


def embed_text(node: TextNode) -> str:
    return f"{node.metadata['title']}\n{node.text}"


def corpus_nodes(documents: list[SourceDocument]) -> list[TextNode]:
    return [chunk_to_node(doc, c) for doc in documents for c in chunk_document(doc)]


def corpus_hash(keys: dict[str, str]) -> str:
    """The whole corpus's key: its documents' keys (index.records.doc_key) with the model's id."""
    digest = hashlib.sha256(embedder_id().encode() + SENTENCES_VERSION.encode())
    for doc_id, key in sorted(keys.items()):
        digest.update(f"{doc_id}={key};".encode())
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
    ref_sig = records.reference_signature(cfg.reference_dir)
    keys = {doc.id: records.doc_key(doc, ref_sig, embedder_id()) for doc in corpus.documents}
    chash = corpus_hash(keys)
    try:
        live = store.read_manifest(cfg)
    except store.StoreUnreachableError as exc:  # a server that is down: nothing to build into
        return BuildReport(status="failed", skipped=corpus.errors, message=f"{exc} The index was not changed.")
    except store.IndexMissingError as exc:
        say(f"{exc}; building a new index.")
        live = None
    report = BuildReport(status="built", documents=len(corpus.documents), skipped=corpus.errors)
    if live and live.corpus_hash == chash and not force:
        report.chunks = len(live.chunk_ids)
        return _up_to_date(report, live, started)

    recs = _records(cfg, corpus.documents, keys, say)
    report.chunks = sum(len(recs[doc.id]) for doc in corpus.documents)
    build_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f") + "-" + chash[:8]
    base = _reusable_base(cfg, live, keys, recs, force, say)
    if base is None:
        delta_docs = list(corpus.documents)
        masked: list[str] = []
    else:
        delta_docs = [d for d in corpus.documents if base["documents"].get(d.id, {}).get("key") != keys[d.id]]
        masked = sorted(d for d, meta in base["documents"].items() if keys.get(d) != meta["key"])
    say(f"Building index {build_id}: {report.chunks} chunks from {len(corpus.documents)} documents; "
        + (f"{len(delta_docs)} changed or new since the base build {base['id']}." if base
           else "writing a new base build."))
    segments = [base] if base else []
    if delta_docs:
        segment, embedded, sent_embedded = _write_segment(cfg, live, build_id, [recs[d.id] for d in delta_docs],
                                                          base, say)
        segments.append(segment)
        report.embedded, report.sentences_embedded = embedded, sent_embedded
    report.reused = report.chunks - report.embedded
    report.sentences = len({s for r in recs.values() for s in r.sentences})
    lexical = _write_lexical(cfg, build_id, [recs[d.id] for d in corpus.documents])

    manifest = _manifest(build_id, chash, corpus.documents, keys, recs, segments, masked, lexical)
    store.write_manifest(cfg, manifest)  # the swap: from here on readers see the new build
    _remove_unused(cfg, manifest, live)
    report.build_id = build_id
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


def _records(cfg: Config, documents: list[SourceDocument], keys: dict[str, str], say: Say) -> dict[str, records.DocRecord]:
    """Each document's record: the stored one when its key is unchanged, else chunked now (and stored)."""
    root = store.index_root(cfg)
    out: dict[str, records.DocRecord] = {}
    made = 0
    for doc in documents:
        rec = records.load(root, keys[doc.id])
        if rec is None:
            rec = records.make(doc, keys[doc.id])
            records.save(root, rec)
            made += 1
        out[doc.id] = rec
    say(f"  chunked {made} document(s); {len(documents) - made} unchanged")
    return out


def _reusable_base(cfg: Config, live: store.Manifest | None, keys: dict[str, str], recs: dict[str, records.DocRecord],
                   force: bool, say: Say) -> dict | None:
    """The live build's base segment, when the new build can keep it and add a delta beside it;
    None when a new base is due: no live build, another model, `force`, a base that cannot be
    read, or a delta (plus the masked base chunks) beyond COMPACT_SHARE of the corpus."""
    if live is None or force or live.model_sha256 != embedder_id() or not live.base.get("documents"):
        return None
    base = live.base
    total = sum(len(r) for r in recs.values())
    stale = sum(len(recs[d]) for d in keys if base["documents"].get(d, {}).get("key") != keys[d])
    stale += sum(m["chunks"] for d, m in base["documents"].items() if keys.get(d) != m["key"])
    if stale > max(COMPACT_MIN, COMPACT_SHARE * total):
        say(f"  the changes since the base build ({stale} chunks) are over a share of the corpus: merging a new base")
        return None
    try:
        count = store.open_collection(store.client_for(cfg, base["id"]), base["collection"]).count()
    except Exception as exc:
        if not store.is_store_error(exc):
            raise
        count = -1
    if count != base["chunks"]:
        say(f"  the base build {base['id']} cannot be read as recorded; writing a new base")
        return None
    return base


def _write_segment(cfg: Config, live: store.Manifest | None, build_id: str, recs: list[records.DocRecord],
                   base: dict | None, say: Say) -> tuple[dict, int, int]:
    """A new segment (chunks and sentence vectors) holding `recs`' documents, in its own
    collections: vectors the live build has are copied, the rest embedded. Returns the segment,
    the chunks embedded and the sentences embedded."""
    from llama_index.vector_stores.chroma import ChromaVectorStore

    nodes = [n for r in recs for n in r.nodes]
    name = store.collection_name(cfg, build_id)
    vectors = _live_vectors(cfg, live, "collection", [n.node_id for n in nodes], say)
    todo = [n for n in nodes if n.node_id not in vectors]
    say(f"  {len(nodes)} chunks in the new segment: {len(nodes) - len(todo)} vectors reused, {len(todo)} to embed")
    if todo:
        vectors.update(zip([n.node_id for n in todo], _embed([embed_text(n) for n in todo], say), strict=True))
    for n in nodes:
        n.embedding = vectors[n.node_id]
    client = store.client_for(cfg, build_id)
    collection = store.open_collection(client, name, create=True)
    vector_store = ChromaVectorStore(chroma_collection=collection)
    for i in range(0, len(nodes), 256):
        vector_store.add(nodes[i:i + 256])
    if collection.count() != len(nodes):
        raise RuntimeError(f"build {build_id} holds {collection.count()} chunks, expected {len(nodes)}")
    for n in nodes:
        n.embedding = None  # the records are reused by the next build: do not keep 1.5 kB per chunk
    sentences, sent_embedded = _write_sentences(cfg, live, build_id, name + COLLECTION_SUFFIX, recs, base, say)
    segment = {"id": build_id, "collection": name, "sentences": sentences, "chunks": len(nodes),
               "documents": {r.doc_id: {"key": r.key, "chunks": len(r)} for r in recs}}
    return segment, len(todo), sent_embedded


def _write_sentences(cfg: Config, live: store.Manifest | None, build_id: str, name: str,
                     recs: list[records.DocRecord], base: dict | None, say: Say) -> tuple[str, int]:
    """The segment's sentence collection: its documents' sentences that the base does not hold
    already; vectors the live build has are copied, the others embedded."""
    wanted: dict[str, str] = {}
    for r in recs:
        for sid, text in r.sentences.items():
            wanted.setdefault(sid, text)
    if base and base.get("sentences"):
        held = set(_segment_ids(cfg, base, "sentences", sorted(wanted)))
        wanted = {s: t for s, t in wanted.items() if s not in held}
    vectors = _live_vectors(cfg, live, "sentences", sorted(wanted), say)
    todo = [s for s in wanted if s not in vectors]
    if todo:
        vectors.update(zip(todo, _embed([wanted[s] for s in todo], say, "sentences"), strict=True))
    say(f"  embedded {len(todo)} sentences ({len(wanted) - len(todo)} reused)")
    collection = store.open_collection(store.client_for(cfg, build_id), name, create=True)
    ids = sorted(wanted)
    for i in range(0, len(ids), 1000):
        collection.add(ids=ids[i:i + 1000], embeddings=[vectors[j] for j in ids[i:i + 1000]])
    if collection.count() != len(ids):
        raise RuntimeError(f"build {build_id} holds {collection.count()} sentences, expected {len(ids)}")
    return name, len(todo)


def _embed(texts: list[str], say: Say, what: str = "") -> list[list[float]]:
    """Vectors for `texts` (in order), with a progress line per batch."""
    from index import embedding

    label = f" {what}" if what else ""
    return embedding.embed_texts(texts, progress=lambda done, total: say(f"  embedded{label} {done}/{total}"))


def _segment_ids(cfg: Config, segment: dict, which: str, ids: list[str]) -> list[str]:
    """Which of `ids` a segment's collection ("collection" or "sentences") holds."""
    col = store.open_collection(store.client_for(cfg, segment["id"]), segment[which])
    found: list[str] = []
    for i in range(0, len(ids), 500):
        found += col.get(ids=ids[i:i + 500], include=[])["ids"]
    return found


def _live_vectors(cfg: Config, live: store.Manifest | None, which: str, ids: list[str], say: Say) -> dict[str, list[float]]:
    """The live build's vectors for `ids`, from its segments' `which` collections ("collection"
    or "sentences"; same model only), read in pages; a damaged live build gives none, so
    everything is embedded."""
    vectors: dict[str, list[float]] = {}
    if not live or live.model_sha256 != embedder_id():
        return vectors
    try:
        for segment in reversed(live.segments):  # the newest first
            want = [i for i in ids if i not in vectors]
            if not want or not segment.get(which):
                continue
            old = store.open_collection(store.client_for(cfg, segment["id"]), segment[which])
            for i in range(0, len(want), 500):
                got = old.get(ids=want[i:i + 500], include=["embeddings"])
                # Chroma returns one embedding per returned id, in the same order.
                vectors.update(zip(got["ids"], (list(map(float, e)) for e in got["embeddings"]), strict=True))
    except Exception as exc:  # a damaged live build: embed everything
        say(f"Could not reuse the live build's {which} vectors ({exc.__class__.__name__}); re-embedding all.")
        return {}
    return vectors


def node_sentences(nodes: list[TextNode]) -> dict[str, str]:
    """sentence_id -> text of every quotable sentence of the nodes (each wording once)."""
    out: dict[str, str] = {}
    for n in nodes:
        m = n.metadata
        for _a, _b, text in quotable_sentences(m["quote"], (int(m["span_start"]), int(m["span_end"])), m["chunk_type"]):
            out.setdefault(sentence_id(text), text)
    return out


def _write_lexical(cfg: Config, build_id: str, recs: list[records.DocRecord]) -> str:
    """The build's BM25 index, from the records' stored tokens, saved under index/lexical."""
    from index.lexical import LexicalIndex

    index = LexicalIndex.from_rows([row for r in recs for row in r.corpus], [t for r in recs for t in r.tokens],
                                   [r.doc_id for r in recs for _ in range(len(r))])
    index.save(store.index_root(cfg) / "lexical" / build_id)
    return build_id


def _remove_unused(cfg: Config, new: store.Manifest, live: store.Manifest | None) -> None:
    """Delete what neither the new build nor the one before it (which a running reader may still
    hold) uses: segments, saved lexical indexes, document records."""
    kept = [new] + ([live] if live else [])
    store.remove_stale_builds(cfg, keep={s["id"] for m in kept for s in m.segments})
    lexical, kept_lexical = store.index_root(cfg) / "lexical", {m.lexical for m in kept}
    for path in lexical.iterdir() if lexical.is_dir() else []:
        if path.name not in kept_lexical:
            shutil.rmtree(path, ignore_errors=True)
    records.remove_unused(store.index_root(cfg), {meta.get("key", "") for m in kept for meta in m.documents.values()})


def _manifest(build_id: str, chash: str, documents: list[SourceDocument], keys: dict[str, str],
              recs: dict[str, records.DocRecord], segments: list[dict], masked: list[str], lexical: str) -> store.Manifest:
    """The pointer record for the new build: its segments, hashes, per-document metadata and chunk ids."""
    where = {d: s["id"] for s in segments for d, meta in s["documents"].items() if keys.get(d) == meta["key"]}
    docs_meta = {doc.id: {**doc.metadata(), "hash": doc.content_hash, "key": keys[doc.id],
                          "chunks": len(recs[doc.id]), "segment": where[doc.id]}
                 for doc in documents}
    return store.Manifest(
        build_id=build_id, created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        corpus_hash=chash, model_sha256=embedder_id(), documents=docs_meta,
        chunk_ids=[i for doc in documents for i in recs[doc.id].chunk_ids],
        segments=segments, masked=masked, lexical=lexical,
    )
