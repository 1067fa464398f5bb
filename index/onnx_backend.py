"""all-MiniLM-L6-v2 on ONNX Runtime, exported here from the verified packaged weights.

`CART_EMBED_BACKEND=onnx` runs the embedding model with ONNX Runtime (a chromadb dependency,
so always installed) instead of torch. Nothing is downloaded: at first use the packaged
model.safetensors (already checked against the upstream sha256 by index.embedding.verify_model)
is traced with torch.onnx's TorchScript exporter, the mean pooling and L2 normalization of the
sentence-transformers pipeline included, optionally int8-quantized with ONNX Runtime's dynamic
quantizer, and cached under `$CART_DATA_DIR/models/`.

The cache file's name holds the weights' sha256, the exporter's versions and this recipe's
version, so a new model or a new exporter never reuses an old export; a sidecar JSON holds the
export's own sha256, so a truncated or corrupted file is exported again, never loaded. Files
are written aside and renamed into place (atomic), under a lock so two processes export once.

Exporting needs torch and the `onnx` package (the exporter serializes through it, the quantizer
edits the graph with it); running the cached export needs neither, so a query process with a
warm cache imports no torch. When the export cannot be made, `load_engine` returns None with a
one-line reason and the caller falls back to torch.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import tempfile
import warnings
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

# Bump when the export below changes in a way that changes the graph or its vectors.
RECIPE_VERSION = "2"
OPSET = 17
# Dynamic int8 quantization of the MatMul weights (activations quantized per batch at run time).
# Measured on this corpus it is ~1.7x the speed of fp32 (which is on par with torch), with vectors
# within cosine ~0.99 of torch: different enough that index.embedding gives them their own id.
QUANTIZE = True


class ExportError(RuntimeError):
    """The ONNX export could not be made (a package missing, the exporter failing)."""


def _version(dist: str) -> str:
    """A distribution's version without importing it (importing torch costs seconds)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "none"


def _quantized(quantize: bool | None) -> bool:
    return QUANTIZE if quantize is None else quantize


def variant(quantize: bool | None = None) -> str:
    """"int8" or "fp32": the build backend's (QUANTIZE) unless asked for one."""
    return "int8" if _quantized(quantize) else "fp32"


def cache_stem(weights_sha256: str, quantize: bool | None = None) -> str:
    """The cache file's name without suffix: changes with the weights, the exporter and the recipe."""
    exporter = f"torch{_version('torch')}-onnx{_version('onnx')}-ort{_version('onnxruntime')}-opset{OPSET}-r{RECIPE_VERSION}"
    return f"minilm-{weights_sha256[:16]}-{exporter}-{variant(quantize)}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _valid(model: Path, sidecar: Path, weights_sha256: str) -> bool:
    """True when the cached export is complete and unaltered (its sha256 is the one recorded at export)."""
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        return (meta.get("weights_sha256") == weights_sha256 and model.is_file()
                and meta.get("onnx_sha256") == _sha256(model))
    except (OSError, ValueError):
        return False


def _pooled_module(model):
    """The transformer plus sentence-transformers' mean pooling and Normalize, as one torch module,
    so the exported graph maps token ids straight to the unit vectors the index stores."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    return Pooled(model).eval()


def _export(weights_dir: Path, out: Path, quantize: bool) -> None:
    """Trace the packaged model to ONNX at `out` (fp32, then int8 if `quantize`)."""
    try:
        import onnx  # noqa: F401  (the exporter and the quantizer need it; fail here with a clear reason)
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise ExportError(f"{exc.name} is not installed") from exc
    # eager attention: the SDPA path traces to a slower graph (measured ~20% on this model)
    model = AutoModel.from_pretrained(str(weights_dir), attn_implementation="eager", local_files_only=True)
    ids = torch.ones((2, 8), dtype=torch.long)  # any shape: both axes are dynamic
    fp32 = out.with_suffix(".fp32.onnx") if quantize else out
    with torch.no_grad(), warnings.catch_warnings():
        # TracerWarnings on shape checks in transformers' mask code: the traced branch is the one
        # every right-padded batch takes (tests compare the export to torch on real texts)
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _pooled_module(model), (ids, torch.ones_like(ids)), str(fp32),
            input_names=["input_ids", "attention_mask"], output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                          "embedding": {0: "batch"}},
            opset_version=OPSET, dynamo=False)
    if quantize:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # shape inference leaves some MatMul outputs untyped in this graph: they are all float
        # per output channel: per-tensor scales moved vectors to cosine 0.85 of torch's, per channel 0.97
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        fp32.unlink()


def cached_export(cache_dir: Path, weights_sha256: str, quantize: bool | None = None) -> Path | None:
    """The cached export's path when it is there, complete and unaltered; None otherwise (never exports:
    a query process must not import torch to make one)."""
    stem = cache_stem(weights_sha256, quantize)
    model = cache_dir / f"{stem}.onnx"
    return model if _valid(model, cache_dir / f"{stem}.json", weights_sha256) else None


def ensure_export(cache_dir: Path, weights_dir: Path, weights_sha256: str, quantize: bool | None = None) -> Path:
    """The cached export's path, exporting it first if it is missing or damaged. Raises ExportError."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    quantize = _quantized(quantize)
    if (cached := cached_export(cache_dir, weights_sha256, quantize)) is not None:
        return cached
    stem = cache_stem(weights_sha256, quantize)
    model, sidecar = cache_dir / f"{stem}.onnx", cache_dir / f"{stem}.json"
    with open(cache_dir / f"{stem}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be exporting the same file
        if _valid(model, sidecar, weights_sha256):
            return model
        with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".export-") as tmp:
            staged = Path(tmp) / "model.onnx"
            try:
                _export(weights_dir, staged, quantize)
            except ExportError:
                raise
            except Exception as exc:  # the exporter's own failures, whatever their class
                raise ExportError(f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
            meta = {"weights_sha256": weights_sha256, "onnx_sha256": _sha256(staged), "variant": variant(quantize),
                    "exporter": stem}
            os.replace(staged, model)
            side_tmp = Path(tmp) / "meta.json"
            side_tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
            os.replace(side_tmp, sidecar)
    return model


class OnnxMiniLM:
    """One ONNX Runtime session over the exported model: token ids in, unit vectors out."""

    def __init__(self, model_file: Path, tokenizer, threads: int = 0):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: one per physical core
        options.inter_op_num_threads = 1
        # no busy-waiting between ops: on a shared CPU the spinning threads only steal time
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizer
        self.model_file = model_file

    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalized float32 embeddings of one batch, padded to its longest text."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        ids = [enc.ids for enc in self.tokenizer.encode_batch(list(texts))]
        width = max(len(i) for i in ids)
        input_ids = np.zeros((len(ids), width), dtype=np.int64)  # 0 is [PAD]
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, seq in enumerate(ids):
            input_ids[row, :len(seq)] = seq
            mask[row, :len(seq)] = 1
        return self.session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]


@lru_cache(maxsize=4)
def load_engine(cache_dir: Path, weights_dir: Path, weights_sha256: str, threads: int = 0) -> OnnxMiniLM | None:
    """The ONNX engine, or None (after one line on stderr saying why) when no export can be made."""
    from index.minilm import load_tokenizer

    try:
        model_file = ensure_export(cache_dir, weights_dir, weights_sha256)
        return OnnxMiniLM(model_file, load_tokenizer(weights_dir), threads)
    except Exception as exc:  # ExportError, or an export ONNX Runtime cannot load: torch takes over
        print(f"ONNX backend unavailable ({exc}); embedding with torch instead.", file=sys.stderr, flush=True)
        return None
