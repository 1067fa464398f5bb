"""Sentence vectors stored at build time and the similarity they give the answer's ranking, on
the real corpus in the session's real Chroma; and the query path without torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from assistant.retrieval import Passage
from index.build import node_sentences
from index.embedding import get_embedder
from index.normalize import normalize
from index.sentences import quotable_sentences, sentence_id
from tests.conftest import PROJECT, subprocess_env


def test_every_quotable_sentence_of_the_index_has_its_vector(retriever):
    wanted = node_sentences(retriever.nodes)
    assert len(wanted) > 1000
    sentences = [s for _chunks, s in retriever.segments if s is not None]
    assert len(sentences) == 1  # a build from scratch: one segment, every sentence in it once
    assert sentences[0].count() == len(wanted)
    some = sorted(wanted)[:50]
    got = sentences[0].get(ids=some, include=["embeddings"])
    assert sorted(got["ids"]) == some and all(len(e) == 384 for e in got["embeddings"])


def test_search_scores_each_passages_sentences_by_their_similarity_to_the_question(retriever):
    question = "toci dose for CRS"
    passages: list[Passage] = retriever.search(question, top_k=8)
    emb = get_embedder()
    q = np.asarray(emb.get_query_embedding(normalize(question)))
    for p in passages:
        sentences = quotable_sentences(p.quote, p.span, p.chunk_type)
        assert set(p.sentence_sims) == {sentence_id(t) for _a, _b, t in sentences}
        for _a, _b, text in sentences[:2]:
            expected = float(np.asarray(emb.get_text_embedding(text)) @ q)
            assert abs(p.sentence_sims[sentence_id(text)] - expected) < 1e-4
    best = max((s, t) for p in passages for _a, _b, t in quotable_sentences(p.quote, p.span, p.chunk_type)
               for s in [p.sentence_sims[sentence_id(t)]])
    assert "8 mg/kg" in best[1]  # the dose sentence, though it shares only "dose" and "CRS" with the question


def test_the_query_encoder_gives_the_build_encoders_vectors():
    emb = get_embedder()
    for text in ["Q2055 payment limit", "whats the hcpcs for cilta-cel", "≥ 150 mg/m² fludarabine x3 days"]:
        a, b = np.asarray(emb.get_query_embedding(text)), np.asarray(emb.get_text_embedding(text))
        assert np.abs(a - b).max() < 1e-5


def test_answering_a_question_imports_no_torch(index_env):
    code = ("import sys; from assistant.engine import Engine; a = Engine().ask('Q2055 payment limit'); "
            "assert a.text and a.citations; "
            "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, env=subprocess_env(**index_env),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
