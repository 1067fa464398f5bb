"""all-MiniLM-L6-v2 in plain numpy: the query-time encoder, without torch.

Importing sentence-transformers (and with it torch and transformers) takes about half of the
app's cold start, only to embed one short query per question. This module runs the same BERT
forward pass with numpy (weights from model.safetensors, tokenization from tokenizer.json),
so answering a query needs none of them. sentence-transformers remains the reference (the
tests hold this module to its embeddings within 1e-5) and the encoder the index is built with.

The pipeline is what sentence-transformers does for this model (modules.json): Transformer
(truncated to max_seq_length), mean pooling over the attention mask, L2 normalization.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

# A batch holds at most BATCH_SIZE texts (as sentence-transformers' encode()) and BATCH_TOKENS padded
# tokens, so that one 256-token passage does not pad a batch of short queries to 256.
BATCH_SIZE = 32
BATCH_TOKENS = 4096

# erf(x) ~ x * P(x^2) / Q(x^2) on [-4, 4] (Eigen's rational approximation; erf is within 1.5e-8
# of +-1 beyond). Evaluated in float64, it is within 7e-8 of the exact erf: numpy has no erf,
# and scipy's would cost more import time than this module saves.
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02)


def _erf(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, -4.0, 4.0)
    x2 = x * x
    return x * np.polyval(_ERF_P, x2) / np.polyval(_ERF_Q, x2)


def _gelu(x: np.ndarray) -> np.ndarray:
    """HF "gelu", the exact erf form (not the tanh approximation), computed in float64."""
    x64 = x.astype(np.float64)
    return (0.5 * x64 * (1.0 + _erf(x64 * 0.7071067811865476))).astype(np.float32)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(-1, keepdims=True)
    return centered / np.sqrt(var + np.float32(eps)) * weight + bias


def _batches(lengths: list[int]) -> list[list[int]]:
    """Text indices grouped for encoding: by increasing length, so each batch pads little."""
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if batches and len(batches[-1]) < BATCH_SIZE and (len(batches[-1]) + 1) * lengths[i] <= BATCH_TOKENS:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def load_tokenizer(path: Path) -> Tokenizer:
    """The model's tokenizer set up as sentence-transformers uses it (shared by every engine here:
    the same ids in, so the engines differ only in how they compute)."""
    path = Path(path)
    max_seq_length = int(json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"])
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    # tokenizer.json pads every text to a fixed 128 and truncates at 128; sentence-transformers
    # truncates at max_seq_length and pads each batch to its longest text, as encode() does below.
    tokenizer.enable_truncation(max_length=max_seq_length)
    tokenizer.no_padding()
    return tokenizer


class MiniLM:
    """The sentence-transformers all-MiniLM-L6-v2 encoder, forward pass only, float32."""

    def __init__(self, weights: dict[str, np.ndarray], config: dict, tokenizer: Tokenizer, max_seq_length: int):
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        self.dim = int(config["hidden_size"])

        def w(name: str) -> np.ndarray:
            return weights[name].astype(np.float32)

        def linear(prefix: str) -> tuple[np.ndarray, np.ndarray]:
            # stored (out, in) as torch's Linear; transposed once so each call is x @ W + b
            return np.ascontiguousarray(w(prefix + ".weight").T), w(prefix + ".bias")

        e = "embeddings."
        self.word, self.position, self.token_type = (w(e + n + "_embeddings.weight") for n in ("word", "position", "token_type"))
        self.emb_norm = (w(e + "LayerNorm.weight"), w(e + "LayerNorm.bias"))
        self.layers = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            q, k, v = (linear(p + "attention.self." + n) for n in ("query", "key", "value"))
            self.layers.append({
                "qkv": (np.concatenate([q[0], k[0], v[0]], axis=1), np.concatenate([q[1], k[1], v[1]])),
                "attn_out": linear(p + "attention.output.dense"),
                "attn_norm": (w(p + "attention.output.LayerNorm.weight"), w(p + "attention.output.LayerNorm.bias")),
                "inter": linear(p + "intermediate.dense"),
                "out": linear(p + "output.dense"),
                "out_norm": (w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias")),
            })

    @classmethod
    def load(cls, path: Path) -> MiniLM:
        """Read a sentence-transformers model folder; refuse one this pipeline would not reproduce."""
        path = Path(path)
        config = json.loads((path / "config.json").read_text())
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens") or any(
            pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")
        ):
            raise ValueError(f"{path}: only mean-token pooling is implemented, the model says {pooling}")
        if config.get("hidden_act") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path}: expected a BERT with gelu and absolute positions")
        tokenizer = load_tokenizer(path)
        max_seq_length = tokenizer.truncation["max_length"]
        return cls(load_file(str(path / "model.safetensors")), config, tokenizer, max_seq_length)

    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalized embeddings, float32, shape (len(texts), hidden size)."""
        ids = [enc.ids for enc in self.tokenizer.encode_batch(list(texts))]
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        for batch in _batches([len(i) for i in ids]):
            length = max(len(ids[i]) for i in batch)
            input_ids = np.zeros((len(batch), length), dtype=np.int64)  # 0 is [PAD]
            mask = np.zeros((len(batch), length), dtype=np.float32)
            for row, i in enumerate(batch):
                input_ids[row, :len(ids[i])] = ids[i]
                mask[row, :len(ids[i])] = 1.0
            out[batch] = self._embed(input_ids, mask)
        return out

    def _embed(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Forward pass, mean pooling over real tokens, L2 normalization, for one padded batch."""
        # one text per row, never a pair: every token is token type 0
        x = self.word[input_ids] + self.position[: input_ids.shape[1]] + self.token_type[0]
        x = _layer_norm(x, *self.emb_norm, self.eps)
        # padded keys get the most negative float32 added to their scores, as transformers does
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        for layer in self.layers:
            x = self._layer(x, bias, layer)
        summed = (x * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), np.float32(1e-9))
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), np.float32(1e-12))

    def _layer(self, x: np.ndarray, bias: np.ndarray, layer: dict) -> np.ndarray:
        """One post-norm BERT block: self-attention, then the GELU feed-forward."""
        batch, length, dim = x.shape
        head_dim = dim // self.heads
        qkv = x @ layer["qkv"][0] + layer["qkv"][1]
        # (batch, length, 3, heads, head_dim) -> three (batch, heads, length, head_dim)
        q, k, v = qkv.reshape(batch, length, 3, self.heads, head_dim).transpose(2, 0, 3, 1, 4)
        scores = q @ k.transpose(0, 1, 3, 2) * np.float32(1.0 / np.sqrt(head_dim)) + bias
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = scores / scores.sum(axis=-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, dim)
        x = _layer_norm(x + context @ layer["attn_out"][0] + layer["attn_out"][1], *layer["attn_norm"], self.eps)
        hidden = _gelu(x @ layer["inter"][0] + layer["inter"][1])
        return _layer_norm(x + hidden @ layer["out"][0] + layer["out"][1], *layer["out_norm"], self.eps)
