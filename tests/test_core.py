"""The bottom layer on the real reference data: the typed reference layer and its cache, the
quarter helper, the number reader, NDC normalization and atomic writes."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assistant import config
from assistant.answer import Answer, AnswerKind
from assistant.core.files import write_atomic
from assistant.core.ndc import NdcError, ndc11_or_none, normalize_ndc
from assistant.core.quantities import parse_number
from assistant.core.quarters import Quarter, QuarterError, find_quarter
from assistant.core.reference import Code, LimitRow, Product, load_reference

REF = config.PROJECT_ROOT / "sources" / "reference"


def test_reference_objects_are_typed():
    ref = load_reference(REF)
    carvykti = ref.product("cilta-cel")
    assert isinstance(carvykti, Product) and carvykti.hcpcs == "Q2056" and "carvyktii" in carvykti.names
    j9185 = ref.code("j9185")
    assert isinstance(j9185, Code) and j9185.unit_value == Decimal("50") and j9185.unit_kind == "mg"
    assert ref.code("J9070").status == "retired" and ref.code("J9070").replacement == "J9075"
    assert ref.code("Q2055").per_dose and ref.cpt["0540T"].replacement == "38228"
    row = ref.limit_sources("2026Q1")[0].rows["Q2055"]
    assert isinstance(row, LimitRow) and row.payment_limit == Decimal("558081.726")
    assert ref.code_for_name()["cytoxan"] == "J9075" and ref.code_for_name()["actemra"] == "J3262"
    assert {"Q2053", "Q2055", "Q2056", "J9185", "J9075"} <= ref.codes_used()
    assert ref.quarters() == sorted(ref.quarters(), key=Quarter.parse)


def test_one_cache_notices_an_edited_file(tmp_path):
    ref_dir = tmp_path / "reference"
    shutil.copytree(REF, ref_dir)
    before = load_reference(ref_dir)
    assert load_reference(ref_dir) is before  # cached: nothing changed
    limits = ref_dir / "payment_limits" / "2026Q1-cms.yaml"
    limits.write_text(limits.read_text(encoding="utf-8").replace('"558081.726"', '"558081.999"'), encoding="utf-8")
    after = load_reference(ref_dir)
    assert after is not before
    assert after.limit_sources("2026Q1")[0].rows["Q2055"].payment_limit == Decimal("558081.999")


@given(st.integers(1990, 2099), st.integers(1, 4))
def test_quarter_round_trips_and_bounds(year, q):
    quarter = Quarter(year, q)
    assert Quarter.parse(str(quarter)) == quarter == Quarter.parse(f"Q{q} {year}") == Quarter.parse(f"{year}-Q{q}")
    assert Quarter.of(quarter.start) == quarter == Quarter.of(quarter.end)
    assert Quarter.of(quarter.end + dt.timedelta(days=1)) == quarter.next() > quarter > quarter.previous()


def test_quarter_text_forms():
    assert find_quarter("limit for Q1 2026?") == "2026Q1"
    assert find_quarter("third quarter of 2025") == "2025Q3"
    assert find_quarter("Jan-Mar 2026 claims") == "2026Q1"
    assert find_quarter("nothing here") is None
    with pytest.raises(QuarterError):
        Quarter.parse("2026Q9")


@pytest.mark.parametrize("text, value", [("1,000", "1000"), ("12,345.5", "12345.5"), ("1,85", "1.85"),
                                         ("55.5", "55.5"), ("0.5", "0.5"), ("600", "600")])
def test_one_reading_of_typed_numbers(text, value):
    assert parse_number(text) == Decimal(value)


def test_numbers_read_the_same_by_question_reader_and_calculators():
    from assistant.tools import run_tool
    from assistant.understand import read_figures

    assert read_figures("cyclophosphamide 1,000 mg").dose_mg == 1000.0
    assert run_tool("dose_units", code="J9075", amount_mg="1,000").values["units_per_day"] == 200


def test_ndc_normalizer_is_shared():
    assert normalize_ndc("71287-219-01") == ("71287-0219-01", "5-3-2")
    assert ndc11_or_none("71287-219-01") == "71287-0219-01" and ndc11_or_none("888867413689") is None
    with pytest.raises(NdcError, match="ambiguous"):
        normalize_ndc("7128721901")


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "x" / "file.yaml"
    write_atomic(target, "one\n")
    write_atomic(target, b"two\n", sync_dir=True)
    assert target.read_text() == "two\n" and [p.name for p in target.parent.iterdir()] == ["file.yaml"]


def test_answer_kind_is_a_closed_set_and_flags_follow_from_it():
    assert Answer(question="q", text="t", kind="not_covered").not_covered
    assert Answer(question="q", text="t", kind=AnswerKind.REFUSAL).refused
    data = Answer(question="q", text="t", kind="tool").to_dict()
    assert data["kind"] == "tool" and data["not_covered"] is False and data["refused"] is False
    with pytest.raises(ValueError):
        Answer(question="q", text="t", kind="maybe")


def test_number_provenance_catches_numbers_glued_to_units():
    from assistant.answer import Citation, untraceable_numbers

    cite = Citation(1, "d", "t", "s", "Cyclophosphamide 300 mg/m2 daily", (0, 1))
    assert untraceable_numbers("Give 900mg daily [1].", [cite], [], "q") == {"900"}
    assert untraceable_numbers("Give 300mg/m2 daily [1].", [cite], [], "q") == set()
    assert untraceable_numbers("XW033C3 and 0540T [1].", [cite], [], "q") == set()  # codes are not amounts
