"""The packaged embedding model is the upstream file; the offline guards really guard."""

import shutil
import socket

import pytest

from index.embedding import MODEL_SHA256, ModelIntegrityError, model_dir, verify_model


def test_packaged_weights_are_upstream_all_minilm_l6_v2():
    assert verify_model(model_dir()) == MODEL_SHA256 == (
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db")


def test_tampered_weights_are_refused(tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(model_dir(), copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="expected the upstream"):
        verify_model(copy)


def test_embedder_runs_offline():
    from index.embedding import get_embedder

    vec = get_embedder().get_text_embedding("Q2055 payment limit")
    assert len(vec) == 384 and abs(sum(v * v for v in vec) - 1.0) < 1e-3


def test_non_loopback_connections_fail_before_any_traffic():
    from conftest import NetworkBlocked

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        with pytest.raises(NetworkBlocked):
            s.connect(("192.0.2.1", 80))  # TEST-NET-1: never reached, the guard raises first
    with pytest.raises(NetworkBlocked):
        socket.getaddrinfo("example.org", 443)


def test_loopback_connections_are_allowed():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    with socket.create_connection(server.getsockname(), timeout=2):
        pass
    server.close()


def test_chroma_default_embedding_function_is_trapped():
    from chromadb.utils import embedding_functions as ef

    with pytest.raises(AssertionError, match="default embedding function"):
        ef.DefaultEmbeddingFunction()(["text"])
