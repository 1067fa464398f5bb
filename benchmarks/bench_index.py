"""Index and retrieval benchmark: prints figures, asserts nothing.

    .venv/bin/python -m benchmarks.bench_index [--backend torch|onnx] [--repeat 3] [--no-peer]

In one run, for the selected embedding backend (CART_EMBED_BACKEND):

  floor   the model alone over the corpus's chunk texts (and chunks + sentences), length-sorted
          in batches of index.embedding.BATCH_SIZE: tokenizer and forward pass, nothing else.
          The model is loaded (and an ONNX export made) before the clock starts.
  build   the project's full build (index.build.build into a temporary CART_DATA_DIR), with the
          same loaded model; its ratio to the floor is the build's own overhead (target <= 1.3).
          The build embeds the sentences too, so the fair ratio is against chunks + sentences.
  peer    a default llama-index pipeline over the same five documents: SentenceSplitter,
          HuggingFaceEmbedding over the same local model folder, ChromaVectorStore (in-memory
          client, no embedding function), embedding timed on its own and end to end.

Tokens are the model's tokens as it sees them (its tokenizer, truncated at 256, [CLS]/[SEP]
included, no padding). Every figure is printed with os.getloadavg(): the machine is shared.
Then, as before: an unchanged rebuild, hybrid search latency, peak RSS and the index's size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.measure import disk_mb, latencies_ms, load, rss_mb, summary

QUESTIONS = [
    "Q2055", "38206", "0540T", "D89.833", "XW033C3", "G20.A1", "57894-502-XX", "MS-DRG 018",
    "cilta-cel lymphodepletion", "What is the Q2056 payment limit?", "Tecartus ALL cyclophosphamide dose",
    "Does CarePartners still require REMS?", "Centene Abecma approval duration",
    "Abecma vs Carvykti cell dose", "How many J9185 units for fludarabine?", "tocilizumab for CRS J3262",
    "ide-cel NDC", "brexu-cel MCL target dose", "Which ICD-10-PCS code drives MS-DRG 018?",
    "Is prior authorization required for Abecma outpatient?",
]


def _load() -> str:
    return f"load {load()}"


def _tokens(texts: list[str]) -> list[int]:
    from index import embedding

    return embedding._token_counts(texts)


def _rate(label: str, seconds: float, items: int, tokens: int, unit: str = "chunks") -> None:
    print(f"{label}: {seconds:6.1f} s  {items / seconds:7.1f} {unit}/s  {tokens / seconds:8.0f} tokens/s"
          f"  ({items} {unit}, {tokens} tokens; {_load()})")


def _floor(texts: list[str]) -> float:
    """Seconds for the active engine alone over `texts`, length-sorted, in the tuned batches."""
    from index import embedding

    name, engine = embedding._active_engine()
    counts = _tokens(texts)
    order = sorted(range(len(texts)), key=counts.__getitem__)
    size = embedding.BATCH_SIZE[name]
    batches = [[texts[i] for i in order[s:s + size]] for s in range(0, len(order), size)]
    t0 = time.perf_counter()
    for batch in batches:
        engine.encode(batch)
    return time.perf_counter() - t0


def _corpus_texts(cfg) -> tuple[list[str], list[str]]:
    from index.build import corpus_nodes, embed_text, node_sentences
    from index.corpus import load_corpus

    nodes = corpus_nodes(load_corpus(cfg.sources_dir).documents)
    return [embed_text(n) for n in nodes], list(node_sentences(nodes).values())


def _peer(cfg) -> None:
    """The same documents through a default llama-index ingestion: split, embed, store."""
    import chromadb
    from llama_index.core import Document
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import MetadataMode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from index.embedding import model_dir

    t0 = time.perf_counter()
    model = HuggingFaceEmbedding(model_name=str(model_dir()), device="cpu")
    model.get_text_embedding("warm up")
    t_load = time.perf_counter() - t0
    files = sorted((cfg.sources_dir / "documents").glob("*.md"))
    t0 = time.perf_counter()
    docs = [Document(text=f.read_text(encoding="utf-8"), metadata={"file_name": f.name}) for f in files]
    nodes = SentenceSplitter()(docs)
    t_split = time.perf_counter() - t0
    texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
    t0 = time.perf_counter()
    nodes = model(nodes)
    t_embed = time.perf_counter() - t0
    client = chromadb.EphemeralClient()
    collection = client.create_collection(f"peer-{os.getpid()}", embedding_function=None)
    t0 = time.perf_counter()
    ChromaVectorStore(chroma_collection=collection).add(nodes)
    t_store = time.perf_counter() - t0
    tokens = sum(_tokens(texts))
    print(f"peer (llama-index SentenceSplitter + HuggingFaceEmbedding batch {model.embed_batch_size} + Chroma), "
          f"{len(files)} documents, model load {t_load:.1f} s:")
    _rate("  peer embedding only  ", t_embed, len(nodes), tokens)
    _rate("  peer split+embed+store", t_split + t_embed + t_store, len(nodes), tokens)


def _queries(cfg, repeat: int) -> None:
    from assistant.retrieval import HybridRetriever

    t0 = time.perf_counter()
    retriever = HybridRetriever(cfg)
    retriever.search("warm up")
    t_load = time.perf_counter() - t0
    lat = latencies_ms(retriever.search, QUESTIONS, repeat)
    print(f"retriever load + first query: {t_load:.1f} s")
    print(f"query latency over {len(lat)} queries: {summary(lat)} ({_load()})")


def _run(args: argparse.Namespace, tmp: Path) -> None:
    from assistant import config
    from index import embedding

    cfg = config.load()
    t0 = time.perf_counter()
    name, engine = embedding._active_engine()
    engine.encode(["warm up"])
    print(f"backend: {name} (asked: {cfg.embed_backend}); batch {embedding.BATCH_SIZE[name]}; "
          f"model load{' + ONNX export' if name == 'onnx' else ''} {time.perf_counter() - t0:.1f} s")
    chunks, sentences = _corpus_texts(cfg)
    chunk_tokens, all_tokens = sum(_tokens(chunks)), sum(_tokens(chunks + sentences))
    floor_chunks = min(_floor(chunks) for _ in range(args.floor_repeat))
    floor_all = min(_floor(chunks + sentences) for _ in range(args.floor_repeat))
    _rate("floor, chunks            ", floor_chunks, len(chunks), chunk_tokens)
    _rate("floor, chunks + sentences", floor_all, len(chunks) + len(sentences), all_tokens, "texts")

    from index.build import build

    t0 = time.perf_counter()
    full = build(cfg, quiet=True)
    t_full = time.perf_counter() - t0
    _rate("project full build       ", t_full, full.chunks, all_tokens)
    print(f"  build / floor(chunks) = {t_full / floor_chunks:.2f}; "
          f"build / floor(chunks + sentences) = {t_full / floor_all:.2f} (target <= 1.3; the build embeds both)")
    if not args.no_peer:
        _peer(cfg)

    t0 = time.perf_counter()
    again = build(cfg, quiet=True)
    t_noop = time.perf_counter() - t0
    print(f"corpus: {full.documents} documents, {full.chunks} chunks, {full.sentences} sentences; {full.message}")
    print(f"unchanged rebuild: {t_noop:.2f} s (status {again.status}, embedded {again.embedded})")
    _queries(cfg, args.repeat)
    print(f"peak RSS: {rss_mb():.0f} MB; index on disk: {disk_mb(tmp / 'index'):.1f} MB; "
          f"model cache: {disk_mb(tmp / 'models') if (tmp / 'models').exists() else 0:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["torch", "onnx"], help="CART_EMBED_BACKEND for this run (default: as configured)")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the question list")
    parser.add_argument("--floor-repeat", type=int, default=2, help="floor passes (the best one counts)")
    parser.add_argument("--no-peer", action="store_true", help="skip the llama-index peer pipeline")
    args = parser.parse_args()
    if args.backend:
        os.environ["CART_EMBED_BACKEND"] = args.backend
    tmp = Path(tempfile.mkdtemp(prefix="cart-bench-"))
    os.environ["CART_DATA_DIR"] = str(tmp)
    try:
        _run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
