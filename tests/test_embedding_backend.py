"""The build's embedding entry point and the ONNX Runtime backend.

embed_texts reorders texts by length for speed, so the thing to hold it to is that every vector
still lands at its own text. The ONNX backend is only worth having if its vectors are the
model's (an int8 export drifts, so it is held to a stated tolerance and gets its own embedder
id), if its export is made once and then reused, and if a damaged export is never loaded.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import PROJECT, subprocess_env
from index import embedding, onnx_backend

# Agreement with the torch (sentence-transformers) vectors on real corpus texts. fp32: float
# noise only (measured max 3e-7). int8 per-channel dynamic quantization: measured min cosine
# 0.969 and mean 0.992 over all 1,925 chunk and sentence texts.
FP32_MAX_ABS = 1e-5
INT8_MIN_COS = 0.95
INT8_MEAN_COS = 0.985
INT8_BATCH_COS = 0.98


class _Recorder:
    """A stand-in engine: the hash vector of each text, and the batches it was handed."""

    def __init__(self):
        self.batches: list[list[str]] = []

    def encode(self, texts):
        self.batches.append(list(texts))
        return np.array([embedding._hash_vector(t) for t in texts], dtype=np.float32).reshape(len(texts), -1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=300), max_size=150), st.sampled_from([1, 3, 16, 32]))
def test_embed_texts_keeps_each_vector_at_its_text(lengths, size):
    texts = [" ".join(f"w{i}" for _ in range(n)) + f" t{i}" for i, n in enumerate(lengths)]
    engine, seen = _Recorder(), []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CART_EMBEDDER", "model")
        mp.setattr(embedding, "_active_engine", lambda: ("torch", engine))
        mp.setattr(embedding, "_token_counts", lambda ts: [len(t.split()) for t in ts])
        mp.setitem(embedding.BATCH_SIZE, "torch", size)
        out = embedding.embed_texts(texts, progress=lambda done, total: seen.append((done, total)))
    assert len(out) == len(texts)
    for text, vec in zip(texts, out, strict=True):
        assert np.allclose(vec, embedding._hash_vector(text), atol=1e-6)
    # batches of at most `size`, in increasing length: each pads only to its own longest text
    sizes = [[len(t.split()) for t in b] for b in engine.batches]
    assert all(0 < len(b) <= size for b in sizes)
    flat = [n for b in sizes for n in b]
    assert flat == sorted(flat)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and (not texts or seen[-1] == (len(texts), len(texts)))


def test_hash_embedder_goes_through_embed_texts(monkeypatch):
    monkeypatch.setenv("CART_EMBEDDER", "hash")
    seen = []
    out = embedding.embed_texts(["Q2055 payment limit", "b"], progress=lambda d, t: seen.append((d, t)))
    assert out[0] == embedding._hash_vector("Q2055 payment limit") and seen == [(2, 2)]


# --- the export cache, with a stand-in exporter (the real one takes ~10 s) -----------------------

def _fake_export(calls: list[Path]):
    def export(weights_dir: Path, out: Path, quantize: bool) -> None:
        calls.append(out)
        out.write_bytes(b"exported model " + weights_dir.name.encode())
    return export


def test_export_is_cached_and_a_damaged_one_is_redone(tmp_path, monkeypatch):
    calls: list[Path] = []
    monkeypatch.setattr(onnx_backend, "_export", _fake_export(calls))
    sha = "ab" * 32
    first = onnx_backend.ensure_export(tmp_path, Path("weights"), sha)
    assert len(calls) == 1 and first.read_bytes() == b"exported model weights"
    assert onnx_backend.ensure_export(tmp_path, Path("weights"), sha) == first and len(calls) == 1  # reused
    first.write_bytes(b"exported model weightz")  # same size, one byte off: only the recorded sha256 tells
    assert onnx_backend.ensure_export(tmp_path, Path("weights"), sha) == first and len(calls) == 2
    assert first.read_bytes() == b"exported model weights"
    first.unlink()  # a missing file (sidecar left behind) is exported again too
    onnx_backend.ensure_export(tmp_path, Path("weights"), sha)
    assert len(calls) == 3
    # other weights get their own file; no staging leftovers stay in the cache
    other = onnx_backend.ensure_export(tmp_path, Path("weights"), "cd" * 32)
    assert other != first and len(calls) == 4
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".json", ".lock", ".lock", ".onnx", ".onnx"]


def test_a_failed_export_falls_back_to_torch(tmp_path, monkeypatch, capsys):
    def fail(_weights, _out, _quantize):
        raise onnx_backend.ExportError("onnx is not installed")

    monkeypatch.setattr(onnx_backend, "_export", fail)
    monkeypatch.setenv("CART_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CART_EMBED_BACKEND", "onnx")
    monkeypatch.delenv("CART_EMBEDDER", raising=False)
    onnx_backend.load_engine.cache_clear()
    try:
        name, _engine = embedding._active_engine()
        assert name == "torch" and embedding.embedder_id() == embedding.MODEL_SHA256
        err = capsys.readouterr().err.strip().splitlines()
        assert err and err[0] == "ONNX backend unavailable (onnx is not installed); embedding with torch instead."
    finally:
        onnx_backend.load_engine.cache_clear()


# --- the real export ------------------------------------------------------------------------------

def _corpus_sample() -> list[str]:
    """Real chunk and sentence texts, short to truncated-at-256: what the build embeds."""
    from assistant import config
    from index.build import corpus_nodes, embed_text, node_sentences
    from index.corpus import load_corpus

    nodes = corpus_nodes(load_corpus(config.load().sources_dir).documents)
    chunks = sorted((embed_text(n) for n in nodes), key=len)
    sentences = sorted(node_sentences(nodes).values(), key=len)
    return chunks[::15] + chunks[-3:] + sentences[::40] + ["Q2055 payment limit", "a", ""]


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def sample_and_reference():
    texts = _corpus_sample()
    return texts, np.asarray(embedding._torch_engine(embedding._verified_dir()).encode(texts))


@pytest.mark.slow
@pytest.mark.parametrize("quantize", [False, True], ids=["fp32", "int8"])
def test_onnx_vectors_agree_with_torch(quantize, real_cache, sample_and_reference, monkeypatch):
    monkeypatch.setattr(onnx_backend, "QUANTIZE", quantize)
    texts, ref = sample_and_reference
    path = embedding._verified_dir()
    model_file = onnx_backend.ensure_export(real_cache, path, embedding.MODEL_SHA256)
    assert onnx_backend.variant() in model_file.name
    from index.minilm import load_tokenizer

    engine = onnx_backend.OnnxMiniLM(model_file, load_tokenizer(path))
    ours = np.concatenate([engine.encode(texts[i:i + 16]) for i in range(0, len(texts), 16)])
    single = engine.encode([texts[0]])[0]
    cos = (ours * ref).sum(axis=1)
    if quantize:
        assert cos.min() > INT8_MIN_COS and cos.mean() > INT8_MEAN_COS, (cos.min(), cos.mean())
    else:
        assert np.abs(ours - ref).max() < FP32_MAX_ABS
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    if quantize:
        # dynamic quantization scales activations per batch: a text's int8 vector depends a little
        # on its batch companions (measured cosine ~0.99 between alone and in a batch of 16)
        assert float(single @ ours[0]) > INT8_BATCH_COS
    else:
        assert np.abs(single - ours[0]).max() < FP32_MAX_ABS  # a batch of one and a padded batch agree
    # the second load reuses the export
    monkeypatch.setattr(onnx_backend, "_export", lambda *_: pytest.fail("exported twice"))
    assert onnx_backend.ensure_export(real_cache, path, embedding.MODEL_SHA256) == model_file


@pytest.mark.slow
def test_onnx_query_with_a_warm_cache_imports_no_torch(real_cache, tmp_path):
    """A query process of an onnx-built index runs ONNX Runtime only: no torch at start or per query."""
    import shutil

    model_file = onnx_backend.ensure_export(real_cache, embedding._verified_dir(), embedding.MODEL_SHA256)
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    for f in (model_file, model_file.with_suffix(".json")):
        shutil.copy(f, data / "models" / f.name)
    expected = embedding.MODEL_SHA256 + ("+onnx-int8" if onnx_backend.QUANTIZE else "")
    code = (
        "import sys\n"
        "from index.embedding import get_embedder, embedder_id\n"
        "v = get_embedder().get_query_embedding('Q2055 payment limit')\n"
        f"assert len(v) == 384 and embedder_id() == {expected!r}, embedder_id()\n"
        "loaded = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, timeout=180,
                          env=subprocess_env(CART_DATA_DIR=str(data), CART_EMBED_BACKEND="onnx"))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_the_build_command_makes_the_query_export_and_queries_run_on_it(index_env, tmp_path):
    """`python -m index build` leaves the fp32 query export beside the index; a query process then
    embeds questions with ONNX Runtime, to the numpy encoder's vectors, without importing torch;
    a damaged export is never loaded (the numpy encoder answers instead)."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(index_env["CART_DATA_DIR"], data)
    env = subprocess_env(CART_DATA_DIR=str(data), CART_SOURCES_DIR=index_env["CART_SOURCES_DIR"])
    env.pop("CART_EMBED_BACKEND", None)
    built = subprocess.run([sys.executable, "-m", "index", "build", "--quiet"], cwd=PROJECT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    exports = list((data / "models").glob("*-fp32.onnx"))
    assert len(exports) == 1
    code = (
        "import sys\n"
        "from index.embedding import get_embedder, _query_encoder, _verified_dir\n"
        "from index.minilm import MiniLM\n"
        "import numpy as np\n"
        "q = 'tecartus MCL LD plan pt 142 lb flu/cy mg per day'\n"
        "v = np.asarray(get_embedder().get_query_embedding(q))\n"
        "enc = _query_encoder(_verified_dir())\n"
        "loaded = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]\n"
        "ref = MiniLM.load(_verified_dir()).encode([q])[0]\n"
        "print(type(enc).__name__, float(np.abs(v - ref).max()), loaded)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=180)
    name, diff, loaded = run.stdout.split(maxsplit=2)
    assert run.returncode == 0 and name == "OnnxMiniLM" and float(diff) < FP32_MAX_ABS and loaded.strip() == "[]", run.stderr
    with exports[0].open("r+b") as fh:  # one byte changed: the recorded sha256 no longer matches
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 1]))
    run = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0 and run.stdout.split()[0] == "MiniLM" and float(run.stdout.split()[1]) < FP32_MAX_ABS, run.stderr
