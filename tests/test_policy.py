"""Payer policies checked against a patient scenario, end to end on the real corpus and the real
criteria records: every verdict names the deciding criterion, every criterion cites the policy's
exact words, a policy the corpus does not hold is said to be missing, and a thread keeps its
scenario while one fact changes."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant.answer import AnswerKind
from assistant.core.reference import load_reference
from assistant.core.scenario import read_scenario
from assistant.engine import Conversation
from assistant.tools.errors import MissingDataError
from assistant.tools.payer_policy import payer_policy
from index.corpus import load_corpus
from tests.answers import ask
from tests.answers import first_paragraph as lead


def test_every_criterion_quote_is_verbatim_in_its_policy(use_index):
    ref = load_reference()
    docs = {d.id: d.text for d in load_corpus(use_index.sources_dir).documents}
    assert ref.policies, "policies.yaml was not loaded"
    for pol in ref.policies:
        for row in [*pol["criteria"], *pol.get("facts", [])]:
            assert row["quote"] in docs[pol["doc"]], (pol["id"], row["quote"])


@pytest.mark.parametrize("text, field, value", [
    ("81 y/o MA member", "age", 81),
    ("pt is a 67F", "age", 67),
    ("age: 17, RRMM", "age", 17),
    ("5 prior lines incl len/bort/dara", "prior_lines", 5),
    ("three prior regimens", "prior_lines", 3),
    ("going to 3L", "prior_lines", 2),
    ("lines of therapy: 4", "prior_lines", 4),
    ("central line placed, 70 kg", "prior_lines", None),
])
def test_scenario_numbers(text, field, value):
    assert getattr(read_scenario(text, load_reference(), ("abecma",)), field) == value


def test_scenario_classes_negations_and_the_requested_product():
    ref = load_reference()
    s = read_scenario("had tecvayli, triple class exposed, no prior CAR-T, no CNS involvement; does she qualify for abecma",
                      ref, ("abecma",))
    assert {"anti_bcma", "imid", "pi", "anti_cd38"} <= s.classes
    assert "cart" in s.ruled_out and "cart" not in s.classes  # "abecma" is the request, not a prior CAR-T
    assert s.flags["cns"] is False
    s = read_scenario("s/p abecma 2022, relapsed; can she get it again", ref, ("abecma",))
    assert "cart" in s.classes and s.flags["diagnosis_rrmm"] is True


@pytest.mark.parametrize("text, lines", [
    ("dara-VRd induction -> auto SCT -> len maint, progressed on maint", 1),   # one line (Centene's own rule)
    ("VRd -> tandem auto SCT -> len maint, then DKd, progressed", 2),
    ("3 prior lines: VRd, KRd, elo-pom-dex", 3),
    ("prior Revlimid, Velcade, Darzalex", None),                                # a list of drugs is not a count
    ("pt going into 3rd line", 2),
])
def test_lines_of_therapy(text, lines):
    assert read_scenario(text, load_reference(), ("abecma",)).prior_lines == lines


def test_regimen_letters_negation_lists_and_labs():
    ref, today = load_reference(), dt.date(2026, 11, 24)
    s = read_scenario("3 lines: Rd, DRd, Pd - never had velcade, kyprolis or ninlaro", ref, ("abecma",), today)
    assert {"imid", "anti_cd38"} <= s.classes and "pi" in s.ruled_out and "pi" not in s.classes
    s = read_scenario("no BCMA tx, no car-t, heme onc is ordering", ref, ("abecma",), today)
    assert s.flags["prescriber"] is True and {"anti_bcma", "cart"} <= s.ruled_out
    stale = read_scenario("SPEP 0.8 g/dL drawn 8/28/26, nothing since", ref, (), today)
    assert "measurable" not in stale.flags and "more than 30 days ago" in stale.said["measurable"]  # 4b still open
    assert read_scenario("SPEP 0.8 g/dL drawn 8/28/26, no PD workup", ref, (), today).flags["measurable"] is False
    assert read_scenario("involved kappa FLC 62 mg/dL, ratio 25 (drawn 11/18/26)", ref, (), today).flags["measurable"] is True
    assert read_scenario("M-spike 0.3, kappa FLC 4 mg/dL w/ nl ratio; no progression", ref, (), today).flags["measurable"] is False
    assert read_scenario("DOB 2/11/2009, RRMM", ref, (), today).age == 17
    s = read_scenario("54M RRMM, 450M - approvable", ref, (), today)
    assert s.age == 54 and s.dose_cells == 450_000_000  # "450M" is a cell dose, "54M" an age and sex


def test_prior_anti_bcma_fails_centene_criterion_7(engine):
    a = ask(engine, "pt has had tecvayli already, 4 prior lines incl IMiD PI anti-CD38 - does she qualify for abecma under centene?")
    assert a.kind is AnswerKind.TOOL and a.tool_calls[0].name == "payer_policy"
    first = lead(a)
    assert first.startswith("**Does not meet") and "criterion 7" in first and "anti-BCMA" in first and "tecvayli" in first
    assert all(c.doc_id == "centene-abecma-policy" for c in a.citations) and len(a.citations) == 11
    assert "✓ 5. 2 or more prior lines of therapy — 4 prior lines" in a.text


def test_unknown_criteria_are_not_stated_never_met(engine):
    a = ask(engine, "carepartners MA member 81 y/o, 5 prior lines, ECOG 2, on dialysis - does he meet their abecma criteria")
    assert lead(a).startswith("**Cannot tell yet")
    assert "? 3. No prior CAR-T therapy" in a.text
    assert any("Not a criterion of this policy: ECOG 2" in n for n in a.notes)
    assert any("NCD 110.24" in n for n in a.notes)


def test_a_thread_keeps_the_scenario_and_changes_one_fact(engine):
    conv = Conversation()
    ask(engine, "carepartners MA member 81 y/o, 5 prior lines, ECOG 2 - does he meet their abecma criteria", conv)
    a = ask(engine, "what if he had carvykti before", conv)
    assert a.tool_calls and a.tool_calls[0].arguments["product"] == "abecma"  # carvykti is the prior therapy
    assert lead(a).startswith("**Does not meet") and "criterion 3" in lead(a)
    assert "✓ 1. Age 18 or older — age 81" in a.text


def test_a_new_lab_value_in_a_thread_replaces_the_old_one(engine):
    conv = Conversation()
    ask(engine, "centene PA for ide-cel: 70F, relapsed after 3 lines (VRd, KRd, DPd), heme onc, no cns, no bcma, "
                "no cart, spep 1.1 last week", conv)
    a = ask(engine, "what if her spep was 0.3", conv)
    assert "4 (measurable disease" in lead(a) and "spep was 0.3 below the threshold" in lead(a)


def test_a_lab_date_alone_in_a_follow_up_makes_the_lab_stale(engine):
    conv = Conversation()
    first = lead(ask(engine, "centene 71M RRMM, KRd->ASCT->len maint, then DPd, M-spike 0.8 g/dL on 11/9/26, heme/onc, "
                             "no CNS/BCMA/CAR-T, 450M. meets?", conv))
    assert first.startswith("**Meets all 11 criteria")
    first = lead(ask(engine, "what if the SPEP is from august", conv))
    assert first.startswith("**Cannot tell yet") and "more than 30 days ago" in first


def test_a_question_about_one_criterion_is_led_by_it(engine):
    assert lead(ask(engine, "is there an age max for abecma with centene")).startswith(
        "**Centene's Abecma policy (CP.PHAR.481), criterion 3: Age 18 or older.**")


def test_criteria_without_a_scenario_are_a_readable_list(engine):
    a = ask(engine, "centene abecma PA criteria?")
    assert "must meet all of these criteria" in lead(a)
    assert "- 7. No prior anti-BCMA targeted therapy" in a.text and "not stated" not in a.text


def test_a_yes_no_pa_question_is_the_policy_fact_not_a_checklist(engine):
    a = ask(engine, "Does CarePartners require prior authorization for Abecma?")
    assert a.tool_calls[0].arguments["topic"] == "pa_required"
    assert "Prior authorization is required, inpatient or outpatient" in lead(a)


@pytest.mark.parametrize("text, fact", [
    ("how long is the centene approval good for abecma", "3 months"),
    ("PA for abecma w/ carepartners MA: fax # and what do i attach", "617-673-0956"),
])
def test_policy_facts(engine, text, fact):
    a = ask(engine, text)
    assert fact in lead(a) and a.citations


@pytest.mark.parametrize("text, payer", [
    ("does carepartners cover carvykti", "CarePartners of Connecticut"),
    ("aetna abecma criteria", "Aetna"),
    ("uhc PA criteria for carvykti?", "UnitedHealthcare"),
])
def test_a_policy_the_corpus_does_not_hold_is_missing(engine, text, payer):
    a = ask(engine, text)
    assert a.kind is AnswerKind.NOT_COVERED
    assert a.text.startswith(f"My sources do not hold {payer}'s policy")


def test_calculator_refuses_a_missing_policy_with_its_own_error():
    with pytest.raises(MissingDataError):
        payer_policy(payer="centene", product="tecartus")


def test_a_criterion_the_policy_lacks_is_said_to_be_absent(engine):
    first = lead(ask(engine, "does carepartners require a specific prescriber"))
    assert "has no criterion on the prescriber" in first
    first = lead(ask(engine, "does centene require a specific prescriber for abecma"))
    assert "criterion 2: Prescribed by or in consultation with an oncologist or hematologist" in first


def test_auth_length_and_renewal_are_policy_facts_and_pt_45_is_an_age(engine):
    first = lead(ask(engine, "centene abecma initial auth length and renewal"))
    assert "Initial approval: 3 months" in first and "subsequent doses are not" in first
    assert read_scenario("pt 45, IgG kappa MM, 2 prior lines", load_reference(), ("abecma",), dt.date(2026, 11, 24)).age == 45


def test_a_policy_fact_about_the_codes_asked_answers_before_the_general_one(engine):
    first = lead(ask(engine, "does carepartners still need PA for 0537T"))
    assert "No prior authorization for the CAR-T administration codes 0537T" in first and "January 1, 2025" in first
    assert "Prior authorization is required" in lead(ask(engine, "carepartners abecma PA required?"))
