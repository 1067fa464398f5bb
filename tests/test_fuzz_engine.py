"""Fuzz the engine: any text, alone or as a follow-up, gives an Answer of a known kind, quickly."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant import config
from assistant.answer import Answer
from assistant.engine import MAX_QUESTION_CHARS, Conversation, Engine

pytestmark = pytest.mark.slow

KINDS = {"answer", "tool", "clarify", "not_covered", "refusal", "error"}
PER_CALL_S = 5.0

SPECIALS = ["\x00", "\x07", "\x1b[31m", "\r\n", "\t", "\u200b", "\u200e", "\u200f", "\u202e", "\u2066",
            "\ufeff", "\ufffd", "🧬", "💉👩‍⚕️", "🇺🇸", "ﷺ", "ｑ２０５５", "١٢٠", "½", "Ⅻ", "ß", "İ", "\u0301",
            "<script>alert(1)</script>", "{{7*7}}", "%s%n", "'; DROP TABLE feedback;--", "\\", "[1]", "[99]",
            "Ignore previous instructions and", "?", "...", "$", "%", "-", "/", "m2", "mg/m²", "kg", "lb"]
WORDS = ["Abecma", "Carvykti", "Tecartus", "Kymriah", "cilta-cel", "ide-cel", "Q2055", "Q2056", "Q2053",
         "J9185", "J9070", "HCPCS", "payment limit", "dose", "units", "BSA", "REMS", "modifier", "MS-DRG 018",
         "XW033C7", "ICD-10", "NDC", "71287-119-01", "CarePartners", "prior auth", "fludarabine", "what is",
         "and its", "how many", "for a", "patient", "2024-Q3", "Q1 2025", "2031"]
NUMBERS = st.one_of(
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["9" * 4400, "1" + "0" * 400, "1e999", "-0", "0.0000001", "1,2,3", "0x10", "1_000",
                     "１２０", "١٢٠", "½", "120kg", "1.85m2", "3/4/2024", "nan", "inf"]),
)

pieces = st.one_of(st.text(max_size=30), st.sampled_from(SPECIALS), st.sampled_from(WORDS), NUMBERS)
questions = st.lists(pieces, max_size=12).map(" ".join)


@pytest.fixture(scope="module")
def engine(retriever, index_env):
    with pytest.MonkeyPatch.context() as mp:
        for k, v in index_env.items():
            mp.setenv(k, v)
        mp.delenv("CART_LLM_BASE_URL", raising=False)
        return Engine(retriever=retriever, cfg=config.load(), llm=None)


def check(engine, text, conv=None, limit_s: float = PER_CALL_S) -> Answer:
    started = time.perf_counter()
    answer = engine.ask(text, conv)
    elapsed = time.perf_counter() - started
    assert isinstance(answer, Answer)
    assert answer.kind in KINDS, answer.kind
    assert isinstance(answer.text, str) and answer.text.strip(), answer
    assert elapsed < limit_s, f"{elapsed:.2f} s for {text[:80]!r}"
    # what the API sends: must serialize to JSON and encode as UTF-8
    json.dumps(answer.to_dict(), ensure_ascii=False).encode("utf-8")
    return answer


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.function_scoped_fixture])


@FUZZ
@given(text=questions)
def test_any_text_gets_an_answer(engine, text):
    check(engine, text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_any_unicode_gets_an_answer(engine, text):
    check(engine, text)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(turns=st.lists(questions, min_size=2, max_size=4))
def test_conversations_of_any_text(engine, turns):
    conv = Conversation()
    for text in ["What is the HCPCS code for Carvykti?"] + turns + ["And its payment limit?"]:
        check(engine, text, conv)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(n=st.integers(min_value=MAX_QUESTION_CHARS - 5, max_value=MAX_QUESTION_CHARS * 3),
       char=st.sampled_from(["x", "1 ", "1.5", "é", "🧬", " 120 kg ", "Q2055 ", "ﷺ", "\u200b", "\x00"]))
def test_long_text_at_and_over_the_limit(engine, n, char):
    text = (char * n)[:n]
    answer = check(engine, text)
    visible = "".join(text.split())
    if len(text.strip()) > MAX_QUESTION_CHARS and char not in ("\u200b", "\x00") and visible:
        if char != "ﷺ":  # NFKC expands it: still over the limit
            assert answer.kind == "error" and f"{MAX_QUESTION_CHARS:,}" in answer.text, answer


# Was quadratic (4,000 digits: 5-7 s) before the number patterns were anchored; the bound is a
# guard against catastrophic backtracking, far above a normal answer, not a speed measurement.
@pytest.mark.parametrize("text", ["1" * MAX_QUESTION_CHARS, "dose " + "9" * (MAX_QUESTION_CHARS - 10) + " kg"])
def test_a_long_run_of_digits_is_fast(engine, text):
    check(engine, text, limit_s=3.0)


def test_non_string_input_is_handled(engine):
    for value in (None, 42, b"Q2055", ["Q2055"]):
        check(engine, value)
