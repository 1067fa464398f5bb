"""What a question wants, read from coder-style wording (abbreviations, typos, pasted context),
and which table rows can give it."""

from __future__ import annotations

import pytest

from assistant.answer_type import KINDS, SYSTEMS, AnswerType, answer_type, code_system_of, row_answers
from index.tables import all_table_rows

# (question, kind, code_system)
CASES = [
    # code questions, by system
    ("cilta-cel OP - which rev code goes w/ Q2056 on the UB", "code", "revenue"),
    ("wich rev code for carvykti outpt", "code", "revenue"),
    ("revenue code for the car-t product line?", "code", "revenue"),
    ("what POS do we put for the stage 4 infusion inpt", "code", "POS"),
    ("place of service for office apheresis", "code", "POS"),
    ("dx for relapsed MM on the abecma claim", "code", "ICD-10-CM"),
    ("icd10 for CRS grade 3 after tecartus", "code", "ICD-10-CM"),
    ("diagnosis code for ICANS", "code", "ICD-10-CM"),
    ("whats the z code for hx of car-t", "code", "ICD-10-CM"),
    ("proc code inpatient abecma infusion peripheral line", "code", "ICD-10-PCS"),
    ("icd 10 pcs central line infusion carvykti", "code", "ICD-10-PCS"),
    ("PCS for leukapheresis if billed IP", "code", "ICD-10-PCS"),
    ("which Q code for ide-cel", "code", "HCPCS"),
    ("Q-code for brexu-cel??", "code", "HCPCS"),
    ("hcpc code tecartus", "code", "HCPCS"),
    ("J-code for elrexfio", "code", "HCPCS"),
    ("cpt for leukapheresis at the FACT center", "code", "CPT"),
    ("admin code for the car-t infusion day", "code", "CPT"),
    ("proc code for outpatient apheresis", "code", "CPT"),
    ("what modifer for wasted toci", "code", "modifier"),
    ("JW/JZ on abecma?", "code", "modifier"),
    ("which DRG for inpt car-t admission", "code", "DRG"),
    ("NDC 11 for 57894-502-01", "code", "NDC"),
    ("NDC on the bag 71287-219-01 -> 11 digit + which Q code", "code", "NDC"),
    ("FL 44 for abecma?", "code", "claim field"),
    ("which box does the PA number go in on the 1500", "code", "claim field"),
    # amounts: a code named is not a code asked
    ("what's medicare paying on a Q2053 line DOS 8/14/25 after coins and seq", "amount", None),
    ("how much is medicare paying for abecma in Q2 2026", "amount", None),
    ("whats the allowable on Q2055 this qtr", "amount", None),
    ("coins on a Q2053 line?", "amount", None),
    ("what does medicare pay for Q2056 after sequestration", "amount", None),
    ("how much does the DRG pay for car-t", "amount", None),
    # units
    ("how many units of fludarabine for 55 mg", "units", None),
    ("units of J9070 for 1500mg cy", "units", None),
    ("tecartus MCL LD plan pt 5'4\" 142 lb - flu/cy mg per day + units each DOS?", "units", None),
    ("we opened 2x 400mg actemra, gave 680mg, what goes on the JZ/JW lines", "units", "modifier"),
    # durations
    ("how long is the carepartners approval good for", "duration", None),
    ("approval duration centene abecma", "duration", None),
    ("PA for ide-cel good thru when?", "duration", None),
    # yes / no
    ("is 0540T ok for a 12/30/24 DOS or do i need 38228", "yes_no", "CPT"),
    ("does centene require PA for abecma", "yes_no", None),
    ("carepartners MA member 81 y/o, ECOG 2 - does he meet their abecma criteria", "yes_no", None),
    ("do i need modifer JZ if no waste", "yes_no", "modifier"),
    ("is Q2055 still valid for 2026 DOS", "yes_no", "HCPCS"),
    ("can we bill 0540T and 38206 same day", "yes_no", "CPT"),
    ("does carepartners cover abecma", "yes_no", None),
    ("PA required for carvykti w/ aetna?", "yes_no", None),
    # criteria lists
    ("abecma criteria carepartners MA", "criteria", None),
    ("what do i need for PA on tecartus w/ UHC", "criteria", None),
    ("requirements for carvykti prior auth aetna", "criteria", None),
    # comparisons
    ("abecma vs carvykti NDC labeler", "comparison", "NDC"),
    ("difference between MS-DRG 016 and 018", "comparison", "DRG"),
    ("compare tecartus and yescarta LD regimens", "comparison", None),
    # where to send / what to attach
    ("PA for abecma w/ carepartners MA: fax # and what do i attach", "contact", None),
    ("where do i send the PA for carepartners", "contact", None),
    ("centene PA fax number", "contact", None),
    # nothing billing-shaped
    ("what's the weather in boston", "general", None),
]


@pytest.mark.parametrize("question, kind, system", CASES)
def test_answer_type(question, kind, system):
    at = answer_type(question)
    assert (at.kind, at.code_system) == (kind, system), at
    assert at.kind in KINDS and (at.code_system is None or at.code_system in SYSTEMS)
    assert at.asks_code == (system is not None)
    assert (at.code_system is None) == (not at.code_systems)


def test_there_are_enough_cases():
    assert len(CASES) >= 40
    assert {k for _, k, _ in CASES} == set(KINDS)


def test_details_narrow_the_system():
    assert answer_type("whats the z code for hx of car-t").detail == "Z"
    assert answer_type("FL 44 for abecma?").detail == "44"
    assert answer_type("NDC 11 for 57894-502-01").detail == "11-digit"
    assert answer_type("JW/JZ on abecma?").detail == "JW/JZ"
    assert answer_type("which Q code for ide-cel").detail == "Q"


def test_several_asks_keep_their_order():
    at = answer_type("NDC on the bag 71287-219-01 -> 11 digit + which Q code")
    assert at.code_systems == ("NDC", "HCPCS")
    at = answer_type("carepartners MA member 81 y/o - does he meet their abecma criteria")
    assert at.kind == "yes_no" and "criteria" in at.also


def test_setting_is_read():
    assert answer_type("POS for the car-t infusion inpatient").setting == "inpatient"
    assert answer_type("rev code q2056 op").setting == "outpatient"
    assert answer_type("rev code q2056").setting is None


def test_answer_type_is_frozen():
    at = answer_type("which Q code for ide-cel")
    assert isinstance(at, AnswerType)
    with pytest.raises(AttributeError):
        at.kind = "amount"


# --- a code string's system ---------------------------------------------------------------------

@pytest.mark.parametrize("code, asked, system", [
    ("Q2055", None, "HCPCS"),
    ("q2056", None, "HCPCS"),
    ("J9185", None, "HCPCS"),
    ("38228", None, "CPT"),
    ("96413", None, "CPT"),
    ("0540T", None, "CPT"),
    ("XW033C3", None, "ICD-10-PCS"),
    ("6A550Z2", None, "ICD-10-PCS"),
    ("C90.00", None, "ICD-10-CM"),
    ("Z51.11", None, "ICD-10-CM"),
    ("D89.83x", None, "ICD-10-CM"),
    ("G20.A1", None, "ICD-10-CM"),
    ("J80", None, "ICD-10-CM"),
    ("0891", None, "revenue"),
    ("21", None, None),
    ("21", "POS", "POS"),
    ("POS 22", None, "POS"),
    ("25", "modifier", "modifier"),
    ("JW", None, "modifier"),
    ("jz", None, "modifier"),
    ("MS-DRG 018", None, "DRG"),
    ("DRG 016", None, "DRG"),
    ("018", "DRG", "DRG"),
    ("57894-502-01", None, "NDC"),
    ("57894-0502-01", None, "NDC"),
    ("71287-129-XX", None, "NDC"),
    ("57894050201", None, "NDC"),
    ("FL 44", None, "claim field"),
    ("24D", "claim field", "claim field"),
    ("Q2055", "ICD-10-CM", "HCPCS"),  # a shape of its own is never read as the asked system
    ("hello", None, None),
])
def test_code_system_of(code, asked, system):
    assert code_system_of(code, asked) == system


# --- which rows answer ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rows():
    return all_table_rows()


def _answering(rows, question, doc_id="abecma-billing-guide"):
    at = answer_type(question)
    return [r for r in rows if r.doc_id == doc_id and row_answers(r, at)]


def test_pos_question_finds_the_pos_table(rows):
    found = _answering(rows, "what POS for stage 4 inpatient")
    assert found and all("POS" in r.columns for r in found)
    assert any(r.cell("POS") == "21" and "inpatient" in r.cells[0] for r in found)


def test_pcs_question_finds_pcs_rows(rows):
    found = _answering(rows, "proc code inpatient abecma")
    labels = {r.cells[0] for r in found}
    assert {"XW033C3", "ICD-10-PCS principal", "ICD-10-PCS (inpatient only)"} <= labels
    assert not any(r.cells[0] == "Drug HCPCS" for r in found)


def test_z_code_question_finds_z_rows(rows):
    found = _answering(rows, "z code for car-t hx", "tecartus-billing-guide")
    assert any(r.cells[0] == "Z-code" for r in found)
    assert all(any(c.startswith("Z") for _, c in r.codes) or r.cells[0].lower().startswith("z-code") for r in found)


def test_claim_field_question_wants_that_field(rows):
    found = _answering(rows, "FL 44 for abecma?")
    assert found and all("44" in " ".join(r.cells) for r in found)
    assert {"Drug HCPCS", "CAR-T admin CPTs"} <= {r.cells[0] for r in found}
    assert not any(r.cells[0] == "ICD-10-PCS principal" for r in found)  # field 74


def test_q_code_question_finds_product_rows(rows):
    found = _answering(rows, "which Q code for ide-cel")
    assert any(r.cell("HCPCS") == "Q2055" for r in found)
    assert not any(r.cells[0] == "Fludarabine" for r in found)  # a J code is not a Q code


def test_questions_without_a_code_match_no_row(rows):
    at = answer_type("what's medicare paying on a Q2053 line after coins and seq")
    assert at.code_system is None and not any(row_answers(r, at) for r in rows)
    rev = answer_type("rev code for Q2056")
    assert not any(row_answers(r, rev) for r in rows)  # the corpus gives no revenue codes
