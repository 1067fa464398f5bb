"""Hybrid retrieval on the real corpus in a real Chroma."""

import json
import subprocess
import sys

import pytest

from assistant.retrieval import query_entities
from conftest import PROJECT, subprocess_env


@pytest.mark.parametrize("code", ["Q2055", "Q2056", "Q2053", "38206", "0540T", "J9185", "D89.833",
                                  "XW033C3", "G20.A1", "57894-502-XX", "MS-DRG 018", "J3262"])
def test_a_code_finds_passages_that_contain_it(retriever, code):
    """Passages that contain the code (glued or in a range) rank ahead of all others."""
    containing = [n for n in retriever.nodes if f"|{code}|" in n.metadata["codes"]]
    assert containing, f"{code} should occur in the corpus"
    hits = retriever.search(code, top_k=5)
    expected = min(5, len(containing))
    assert [code in p.codes for p in hits[:expected]] == [True] * expected, [p.quote[:80] for p in hits]


def test_glued_table_cells_are_found(retriever):
    hits = retriever.search("38206", top_k=10)
    assert any(p.quote.startswith("38206Blood-derived") for p in hits)
    hits = retriever.search("D89.833 cytokine release syndrome grade 3", top_k=5)
    assert any("CRSD89.831 - D89.835Cytokine" in p.quote for p in hits[:3])


def test_short_name_question_ranks_its_product_first(retriever):
    hits = retriever.search("cilta-cel lymphodepletion", top_k=5)
    assert hits[0].doc_id == "carvykti-billing-guide"
    assert "lymphodepletion" in hits[0].quote.lower()


@pytest.mark.parametrize("question, product", [
    ("ide-cel dose", "abecma"), ("brexu-cel MCL regimen", "tecartus"), ("carvyktii NDC", "carvykti"),
    ("what does Q2056 cover", "carvykti"), ("tecartis ALL dosing", "tecartus"),
])
def test_single_product_questions_come_from_that_products_documents(retriever, question, product):
    assert query_entities(question).products == (product,)
    hits = retriever.search(question, top_k=5)
    assert all(product in p.doc_products for p in hits), [(p.doc_id, p.section) for p in hits]


def test_payer_question_is_answered_from_the_payer_policy(retriever):
    hits = retriever.search("Does CarePartners still require REMS?", top_k=3)
    assert all(p.doc_id == "carepartners-ct-abecma-policy" for p in hits)
    assert any("REMS Program requirement is no longer required" in p.quote for p in hits)


def test_comparison_hears_both_products(retriever):
    hits = retriever.search("Abecma vs Carvykti lymphodepletion regimen", top_k=4)
    docs = {p.doc_id for p in hits}
    assert any("abecma" in d for d in docs) and "carvykti-billing-guide" in docs


def test_passages_carry_citation_fields(retriever):
    p = retriever.search("Q2055 payment limit", top_k=1)[0]
    assert p.doc_id and p.title and p.section and p.quote and p.span[1] > p.span[0]
    doc = (PROJECT / "sources" / "documents" / f"{p.doc_id}.md").read_text(encoding="utf-8")
    body = doc.split("\n---\n", 1)[1]
    assert body[p.span[0]:p.span[1]] == p.quote


def test_empty_question_returns_nothing(retriever):
    assert retriever.search("   ") == []


@pytest.mark.slow
def test_search_cli_json(index_env):
    env = subprocess_env(**index_env)
    out = subprocess.run([sys.executable, "-m", "assistant", "search", "Q2055 payment limit", "--json", "-k", "3"],
                         cwd=PROJECT, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert len(data["passages"]) == 3
    first = data["passages"][0]
    assert {"doc_id", "title", "section", "quote", "score", "span"} <= set(first)
    assert "Q2055" in first["quote"]
    text = subprocess.run([sys.executable, "-m", "assistant", "search", "0540T"], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert text.returncode == 0 and "[1]" in text.stdout and "0540T" in text.stdout


def test_search_cli_without_an_index_says_how_to_build(tmp_path):
    env = subprocess_env(CART_DATA_DIR=str(tmp_path / "nothing"))
    out = subprocess.run([sys.executable, "-m", "assistant", "search", "Q2055"], cwd=PROJECT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "python -m index build" in out.stderr and "Traceback" not in out.stderr
