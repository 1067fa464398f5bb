"""An answer as text to hand on (clipboard, Markdown, PDF): the answer, its numbered citations
with exact quotes, the calculations with their formulas, and the as-of line; real answers."""

import datetime as dt

import pdfplumber
import pytest

from assistant.export import answer_text, conversation_markdown, conversation_pdf

TODAY = dt.date(2026, 11, 24)


@pytest.fixture(scope="module")
def turns(engine):
    from assistant.engine import Conversation

    conv = Conversation()
    out = []
    for q in ("cilta-cel dose for a 120 kg patient", "centene abecma prior anti-BCMA therapy ok?",
              "Q2053 medicare allowed"):
        out.append({"question": q, "answer": engine.ask(q, conv, today=TODAY, dos="2/10/2026").to_dict()})
    return out


def test_answer_text_has_citations_with_exact_quotes_formulas_and_the_as_of_line(turns):
    answer = turns[0]["answer"]
    text = answer_text(answer)
    assert text.splitlines()[0] == answer["text"].split("\n")[0].replace("**", "")
    for c in answer["citations"]:
        assert f"[{c['marker']}] {c['title']}" in text and f'"{c["quote"]}"' in text
    formula = answer["tool_calls"][0]["result"]["formula"]
    assert formula in text
    assert text.rstrip().endswith("As of 2026-02-10 (from the date field) · payment quarter 2026Q1 · "
                                  "newest CMS quarter on hand 2026Q1")
    assert "Date of service: 2026-02-10" not in text  # said once, in the as-of line
    assert "**" not in text


def test_markdown_export_holds_every_turn(turns):
    md = conversation_markdown(turns)
    for i, turn in enumerate(turns, 1):
        assert f"## {i}. {turn['question']}" in md
        for c in turn["answer"]["citations"]:
            assert c["quote"] in md


def test_pdf_export_is_a_real_pdf_with_the_answers_and_citations(turns, tmp_path):
    path = tmp_path / "conversation.pdf"
    path.write_bytes(conversation_pdf(turns))
    with pdfplumber.open(path) as pdf:
        text = " ".join((page.extract_text() or "") for page in pdf.pages)
    flat = " ".join(text.split())
    for turn in turns:
        assert turn["question"] in flat
        first = turn["answer"]["citations"][0]["quote"] if turn["answer"]["citations"] else ""
        assert " ".join(first.split())[:60] in flat
    assert "payment quarter 2026Q1" in flat
