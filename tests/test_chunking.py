"""Structure-aware chunks over the real corpus: spans quote the original exactly."""

import pytest

from assistant import config
from index.chunking import chunk_document
from index.corpus import load_corpus


@pytest.fixture(scope="module")
def chunks():
    docs = {d.id: d for d in load_corpus(config.PROJECT_ROOT / "sources").documents}
    return docs, {d: chunk_document(doc) for d, doc in docs.items()}


def test_every_chunk_quotes_its_span_exactly_and_carries_metadata(chunks):
    docs, by_doc = chunks
    for doc_id, cs in by_doc.items():
        assert len(cs) > 10, doc_id
        for c in cs:
            assert docs[doc_id].text[c.start:c.end] == c.text
            assert c.text == c.text.strip() and c.section
            assert c.chunk_type in {"section", "faq", "table_row", "example"}
        assert len({c.id for c in cs}) == len(cs)


def test_faq_keeps_question_and_answer_together(chunks):
    _, by_doc = chunks
    faq = [c for c in by_doc["abecma-billing-guide"] if c.text.startswith("What is the Q2055 ASP")]
    assert len(faq) == 1 and faq[0].chunk_type == "faq"
    assert "$559,781.081" in faq[0].text  # the answer is in the same chunk


def test_table_row_carries_its_header_and_codes(chunks):
    _, by_doc = chunks
    row = next(c for c in by_doc["abecma-billing-guide"] if c.text.startswith("38206Blood-derived"))
    assert row.chunk_type == "table_row" and row.header == "CodeDescriptionWhen to use"
    assert "Code Description When to use" in row.search_text and "38206 Blood-derived" in row.search_text
    assert "38206" in row.codes
    crs = next(c for c in by_doc["carvykti-billing-guide"] if c.text.startswith("CRSD89.831"))
    assert {"D89.831", "D89.833", "D89.835"} <= set(crs.codes)


def test_worked_example_is_one_block(chunks):
    _, by_doc = chunks
    ex = [c for c in by_doc["tecartus-billing-guide"] if c.chunk_type == "example"]
    assert len(ex) == 2  # the MCL case and the ALL case
    mcl = next(c for c in ex if "R/R MCL" in c.text.splitlines()[0])
    for line in ["# Stage 1 (apheresis):", "# Stage 3 (MCL lymphodepletion", "# Stage 4", "# Stage 5"]:
        assert line in mcl.text
    assert "J9185 167 units" in mcl.text and "tecartus" in mcl.products


def test_sections_follow_headings(chunks):
    _, by_doc = chunks
    sections = {c.section for c in by_doc["tecartus-billing-guide"]}
    assert any(s.startswith("Dosing & cellular dose math") and "Lymphodepletion dosing" in s for s in sections)
    centene = {c.section for c in by_doc["centene-abecma-policy"]}
    assert "V. Dosage and Administration" in centene and "Appendix B: Therapeutic Alternatives" in " ".join(centene)
