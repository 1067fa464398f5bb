"""Questions the way coders and revenue-cycle analysts type them, end to end on the real corpus,
reference data and CMS-derived limits: the first paragraph answers what was asked (the setting's
payment route, a difference between quarters, a remit check, the code of the asked system, the
code in force on the discharge date), and a follow-up keeps the question it follows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from assistant.answer import AnswerKind
from assistant.conflicts import mark_quoted
from assistant.engine import Conversation
from assistant.tools.errors import CalcError
from assistant.tools.payment_change import payment_change
from assistant.understand import read_figures, read_question
from tests.answers import ask
from tests.answers import first_paragraph as lead

# --- setting and payment ----------------------------------------------------------------------

def test_an_inpatient_medicare_stay_is_paid_in_drg_018_not_at_the_part_b_limit(engine):
    a = ask(engine, "medicare IP stay for abecma, what does medicare pay for the Q2055")
    assert a.kind is AnswerKind.ANSWER and not a.tool_calls
    assert "MS-DRG 018" in lead(a) and "does not pay Q2055" in lead(a)
    assert "$" not in lead(a)  # no Part B amount presented as what Medicare pays


def test_a_question_about_both_settings_gets_both_routes(engine):
    first = lead(ask(engine, "IP vs OP for carvykti under medicare - how is it paid each way"))
    assert "**Inpatient:" in first and "MS-DRG 018" in first and "**Outpatient: Q2056 is paid separately" in first
    first = lead(ask(engine, "abecma outpatient DOS 3/3/26 medicare allowed, and what if IP"))
    assert first.startswith("**Q2055 payment limit (2026Q1)") and "MS-DRG 018" in first


def test_the_setting_carries_over_and_changes_with_a_follow_up(engine):
    conv = Conversation()
    assert "MS-DRG 018" in lead(ask(engine, "carvykti IP admission medicare - do we get paid the ASP for Q2056?", conv))
    a = ask(engine, "what about outpatient", conv)
    assert a.tool_calls and a.tool_calls[0].name == "payment" and "Q2056 payment limit" in lead(a)


def test_a_difference_between_two_quarters_has_its_formula(engine):
    a = ask(engine, "difference in Q2056 limit between Q4 25 and Q1 26")
    call = a.tool_calls[0]
    assert call.name == "payment_change" and call.arguments["quarter"] == "2025Q4" and call.arguments["other_quarter"] == "2026Q1"
    assert "payment limit up $21,780.63 (+3.85%)" in lead(a)
    assert "$587,649.574 − $565,868.945 = +$21,780.629" in a.text


def test_a_coinsurance_difference_leads_with_the_coinsurance(engine):
    a = ask(engine, "abecma pt coins DOS 1/15/24 vs 1/15/26 - how much more now?")
    first = lead(a)
    assert first.startswith("**Coinsurance:") and "+$8,299.41" in first and "18.857% vs 20%" in first


def test_payment_change_refuses_to_compare_a_line_with_itself():
    with pytest.raises(CalcError):
        payment_change(code="Q2056", quarter="2026Q1")
    r = payment_change(code="Q2055", quarter="2026Q1", other_code="Q2056")
    assert r.values["payment_limit_change"] == Decimal("587649.574") - Decimal("558081.726")


def test_a_remit_is_checked_against_medicares_share(engine):
    a = ask(engine, "tecartus OP DOS 3/10/26: remit paid 383,959.20, allowed 489,450.20 - are we underpaid?")
    assert lead(a) == ("**The remit's $383,959.20 equals Medicare's share after 2% sequestration ($383,959.20): "
                       "not underpaid.**")
    conv = Conversation()
    ask(engine, "Q2056 DOS 11/3/2025 what do we expect from medicare after seq", conv)
    a = ask(engine, "what if remit shows 449,000", conv)
    assert "is $946.51 below Medicare's share after 2% sequestration ($449,946.51)" in lead(a)


def test_sequestration_is_not_taken_off_the_coinsurance(engine):
    a = ask(engine, "does the 2% seq come off the pt's coins too? cilta-cel OP 8/14/25")
    assert lead(a).startswith("**No: the 2% sequestration comes off Medicare's share only")
    a = ask(engine, "abecma OP, trad medicare, DOS 3/4/26 - allowed / coins / what medicare pays after seq?")
    assert lead(a).startswith("**Q2055 payment limit (2026Q1)")  # amounts asked, not the yes/no rule


def test_medicare_advantage_rates_are_not_in_the_sources(engine):
    conv = Conversation()
    ask(engine, "what does medicare pay for Q2056 DOS 2/2/26", conv)
    a = ask(engine, "and for MA?", conv)
    assert a.kind is AnswerKind.NOT_COVERED and a.text.startswith("My sources do not give Medicare Advantage payment rates")


def test_the_quarter_before_is_relative_to_the_threads_date(engine):
    conv = Conversation()
    ask(engine, "abecma medicare pays how much DOS 2/17/26", conv)
    a = ask(engine, "and for a DOS the quarter before?", conv)
    assert a.tool_calls[0].arguments["dos"] == "2025-10-01" and "(2025Q4)" in lead(a)


# --- codes ------------------------------------------------------------------------------------

def test_a_misdescribed_diagnosis_code_leads_with_the_correction(engine):
    a = ask(engine, "carvykti pt drug induced parkinsonism on the f/u visit - G20.A1 ok?")
    first = lead(a)
    assert first.startswith("**G20.A1: A Parkinson's disease code, not drug-induced parkinsonism") and "G21.19" in first


def test_an_inpatient_pcs_code_goes_by_the_discharge_date(engine):
    a = ask(engine, "ide-cel admit 9/24/21 dc 10/6/21, peripheral infusion - XW033C3 or the K7 code?")
    assert lead(a).startswith("**XW033K7**") and "discharge on 2021-10-06" in lead(a)
    assert a.notes[0] == "Discharge date: 2021-10-06 (from the question)."


def test_every_service_a_cpt_question_names_is_in_the_first_paragraph(engine):
    first = lead(ask(engine, "cilta-cel OP DOS 2/10/26 - CPTs for T-cell harvest, prep for transport, receipt/prep, admin?"))
    assert all(f"**{code}**" in first for code in ("38225", "38226", "38227", "38228"))


def test_a_follow_up_with_a_new_date_keeps_the_codes(engine):
    conv = Conversation()
    assert lead(ask(engine, "0540T or 38228 for a 12/20/24 DOS?", conv)).startswith("**0540T**")
    assert lead(ask(engine, "and if DOS was 1/3/25", conv)).startswith("**38228**")


def test_same_thing_but_another_date_keeps_the_amount(engine):
    conv = Conversation()
    assert "J9070: 10 unit(s)" in lead(ask(engine, "cy 925mg out of a 1g vial, OP DOS 3/28/24 - J code, units, any JW?", conv))
    first = lead(ask(engine, "same thing but DOS 4/11/24", conv))
    assert "J9075: 185 unit(s)" in first and "J9075-JW: 15 unit(s)" in first


@pytest.mark.parametrize("text, value, quote_part", [
    ("POS for abecma infusion outpatient hospital", "POS 22", "22UB-04"),
    ("which FL on the UB for the NDC on a carvykti claim", "Field 43 (UB-04)", "NDC43 (UB-04)"),
])
def test_a_code_table_row_of_the_asked_system_leads(engine, text, value, quote_part):
    a = ask(engine, text)
    assert lead(a).startswith(f"**{value}** — ")
    assert quote_part in a.citations[0].quote  # the exact row text stays the citation


@pytest.mark.parametrize("text, code", [
    ("CRS grade 3 dx", "D89.833"),
    ("abecma dx code relapsed", "C90.02"),
    ("tecartus MCL, site not documented in the H&P. dx code?", "C83.10"),
    ("adult B-ALL not in remission dx code for tecartus", "C91.00"),
])
def test_a_dx_question_gets_the_one_code_its_words_describe(engine, text, code):
    assert lead(ask(engine, text)).startswith(f"**{code}** is the ICD-10-CM code for")


def test_a_dx_question_without_a_qualifier_lists_what_decides(engine):
    first = lead(ask(engine, "carvykti dx code"))
    assert first.startswith("ICD-10-CM by what the record documents:") and "**C90.02** Multiple myeloma in relapse" in first


def test_a_modifier_question_about_a_whole_vial_is_jz(engine):
    a = ask(engine, "wat modifier on actemra when whole vial used")
    assert lead(a).startswith("**JZ: nothing was discarded")


def test_revenue_codes_are_not_in_the_sources(engine):
    a = ask(engine, "cilta-cel outpatient - which rev code goes with Q2056 on the UB")
    assert a.kind is AnswerKind.NOT_COVERED


def test_a_q_code_and_units_question_gets_both(engine):
    first = lead(ask(engine, "brexu cel OP infusion - Q code + how many units on the line?"))
    assert first.startswith("**Q2053**") and "one unit per therapeutic dose" in first


def test_an_ld_plan_without_a_product_asks_which(engine):
    a = ask(engine, "LD plan 170cm 80kg, infusion 12/8/26 - units per DOS?")
    assert a.kind is AnswerKind.CLARIFY and "Which product" in a.text


def test_a_treatment_choice_is_declined(engine):
    a = ask(engine, "64F centene comm, 3 prior lines triple-class exposed - which is better for her, abecma or carvykti?")
    assert a.kind is AnswerKind.REFUSAL


# --- reading figures --------------------------------------------------------------------------

@pytest.mark.parametrize("text, dose, vials", [
    ("cy 0.5g given today, how many J9075", 500.0, ()),
    ("OP cy 555mg drawn from a 1 g vial, rest wasted", 555.0, ((0, 1000.0),)),
    ("OP toci 8mg/kg pt 72 kg, opened 1x400 + 1x200 actemra", None, ((1, 400.0), (1, 200.0))),
])
def test_grams_and_vials_are_read(text, dose, vials):
    f = read_figures(text, None)
    assert f.dose_mg == dose and f.vials == vials


def test_a_dose_before_a_vial_list_is_the_dose():
    f = read_figures("cyclophosphamide 1,250 mg, 500mg vials x3 opened, DOS 10/2/25 - units + JW", None)
    assert f.dose_mg == 1250.0 and f.vials == ((3, 500.0),)


@pytest.mark.parametrize("text, first", [
    ("actemra gave 560mg, opened 400+200, JW units?", "**J3262-JW: 40 unit(s)**"),
    ("cy 600mg OP DOS 5/5/24, vial 1g", "**J9075-JW: 80 unit(s)**"),
])
def test_vials_named_after_the_amount_give_the_jw_line(engine, text, first):
    assert first in lead(ask(engine, text))


def test_two_quarters_compare_from_the_earlier_to_the_later(engine):
    assert "+$679.82" in lead(ask(engine, "Q2053 1q26 vs 4q25 change in coins"))


def test_a_plural_qualifier_picks_the_dx_code(engine):
    assert lead(ask(engine, "tecartus mcl site multiple lymph nodes dx")).startswith("**C83.18**")


def test_a_code_set_year_dates_a_cpt_question(engine):
    assert lead(ask(engine, "apheresis cpt 2026 for abecma")).startswith("**38225**")


def test_a_j_code_question_about_a_q_coded_product_says_so(engine):
    first = lead(ask(engine, "carvykti J code"))
    assert first.startswith("**Q2056**") and "has no J-code" in first


def test_a_spaced_short_name_is_the_product():
    assert read_question("brexu cel OP infusion").products == ("tecartus",)
    assert read_question("cilta cel dose range pt 200 lb").products == ("carvykti",)


# --- current facts lead, without a date of service ----------------------------------------------

def test_an_ended_rule_is_answered_for_today_and_the_guides_are_flagged(engine):
    a = ask(engine, "is REMS still required for carvykti")
    assert lead(a).startswith("**As of today (2026-11-24), no REMS applies**") and "June 26, 2025" in lead(a)
    # the guide's "REMS required" may be quoted below, but never without the note that it is outdated
    assert any(n.startswith("Sources disagree on REMS") and "outdated" in n for n in a.notes)
    dated = ask(engine, "REMS for tecartus DOS 3/1/25")
    assert "was in force" in lead(dated)


def test_a_cpt_question_gets_the_code_in_force_and_a_code_set_year_is_not_a_date_of_service(engine):
    assert lead(ask(engine, "what cpt do i bill for the carvykti infusion")).startswith("**38228** is the CPT code")
    first = lead(ask(engine, "CPT for CAR-T cell infusion 2025"))
    assert first.startswith("**38228**") and "the 2025 code set" in first and "date of service" not in first
    assert lead(ask(engine, "2024 cpt for car-t harvest")).startswith("**0537T**")
    # the lymphodepletion infusions are chemotherapy administration, not the CAR-T service
    a = ask(engine, "admin cpt for cy/flu infusion days")
    assert not any(c.name == "code_on_date" for c in a.tool_calls) and "38228" not in lead(a)


def test_a_bare_quarter_in_a_follow_up_is_the_threads_year(engine):
    conv = Conversation()
    assert "(2025Q3)" in lead(ask(engine, "carvykti q2056 price Q3 2025", conv))
    assert "(2025Q4)" in lead(ask(engine, "and Q4?", conv))
    assert "(2025Q1)" in lead(ask(engine, "what about 1Q", conv))


def test_a_products_ndc_is_its_crosswalk_ndcs_not_its_labelers_other_drugs(engine):
    first = lead(ask(engine, "NDC 11 digit for carvykti"))
    assert first.startswith("**Carvykti NDC (11-digit, 5-4-2): 57894-0111-01, 57894-0111-02**") and "Tecvayli" not in first
    assert "Tecvayli" in lead(ask(engine, "labeler 57894"))  # a labeler alone still lists every product


def test_what_is_a_q_code_names_its_product(engine):
    assert lead(ask(engine, "whats q2053 for")).startswith("**Q2053** is the HCPCS code for Tecartus")
    assert lead(ask(engine, "Q2055 = which product?")).startswith("**Q2055** is the HCPCS code for Abecma")


def test_a_remission_status_the_conditions_codes_lack_is_said_not_borrowed(engine):
    first = lead(ask(engine, "what ICD10 for MCL in remission tecartus"))
    assert first.startswith("My sources give no ICD-10-CM code for mantle cell lymphoma in remission")
    assert "C83.10" in first and "C91.01" not in first  # never the ALL remission code
    assert lead(ask(engine, "ALL in remission dx tecartus")).startswith("**C91.01**")


def test_a_regimen_question_without_a_patient_gets_the_label_regimen(engine):
    first = lead(ask(engine, "tecartus ALL cy dose"))
    assert "cyclophosphamide 900 mg/m² IV on day -2 (1 dose)" in first and "FDA label" in first
    both = lead(ask(engine, "tecartus LD regimen"))
    assert "Tecartus (MCL)" in both and "Tecartus (ALL)" in both


def test_a_tocilizumab_dose_question_without_a_weight_gets_the_label_rule(engine):
    first = lead(ask(engine, "toci dose for CRS"))
    assert first.startswith("**Tocilizumab for CRS (FDA label): 8 mg/kg IV for patients 30 kg or more, 12 mg/kg under 30 kg")
    assert "800 mg per dose" in first and "3 doses in 24 h and 4 in total" in first
    assert lead(ask(engine, "toci 70kg")).startswith("**Tocilizumab 560 mg per dose → J3262 560 units")


def test_a_misspelt_drug_name_is_read_as_the_drug_and_another_drug_is_not_renamed(engine):
    from assistant.understand import repair_drug_names

    assert repair_drug_names("fludarabin 48mg, cyclophosphamid 1g, tocilizamab, actemera") == \
        "fludarabine 48mg, cyclophosphamide 1g, tocilizumab, actemra"
    assert repair_drug_names("prior belantamab and talquetamab") == "prior belantamab and talquetamab"
    first = lead(ask(engine, "fludarabin units for 48mg"))
    assert first.startswith("**J9185: 1 unit(s) per date of service**")  # 50 mg per unit, never "1 mg = 1 unit"


def test_a_waste_modifier_question_gets_the_jw_rule_and_a_product_question_no_drug_row(engine):
    assert lead(ask(engine, "what modifier for wasted fludarabine")).startswith(
        "**JW: the discarded amount goes on its own line with JW")
    assert lead(ask(engine, "JW or JZ if we used the whole vial of toci")).startswith("**JZ: nothing was discarded")
    assert "Fludarabine" not in lead(ask(engine, "whats the JZ rule for abecma"))


def test_two_quarters_of_a_code_compare_its_payment_limit_without_the_word_payment(engine):
    first = lead(ask(engine, "diff between q1 2025 and q1 2026 for Q2056"))
    assert first.startswith("**Q2056 2026Q1 vs Q2056 2025Q1: payment limit up")


def test_a_year_next_to_discharge_is_a_discharge_year_not_a_code_set(engine):
    first = lead(ask(engine, "ICD-10-PCS for abecma central line 2023 discharge"))
    assert first.startswith("**XW043K7**") and "for a discharge in 2023" in first


def test_a_cell_count_is_checked_against_the_label_range(engine):
    assert lead(ask(engine, "abecma 600M cells ok?")).startswith(
        "**600 × 10^6 cells is above the Abecma label range of 300 × 10^6 to 510 × 10^6")
    assert lead(ask(engine, "abecma 300 million cells - within label?")).startswith("**300 × 10^6 cells is within")
    assert "within the Carvykti (MM) label range of 40 × 10^6 to 80 × 10^6" in lead(
        ask(engine, "carvykti 80 kg, bag says 75 x 10^6 cells - in range?"))


def test_a_products_units_are_its_q_code_and_a_payer_prescriber_question_is_not_advice(engine):
    assert lead(ask(engine, "tecartus billing units")).startswith("**Q2053: 1 unit**")
    a = ask(engine, "who should prescribe abecma per centene")
    assert a.kind is not AnswerKind.REFUSAL and "criterion 2" in lead(a)
    assert ask(engine, "should we prescribe abecma or carvykti").kind is AnswerKind.REFUSAL


def test_a_claim_field_question_gets_the_row_of_the_thing_asked(engine):
    assert lead(ask(engine, "what box on the 1500 for NDC")).startswith("**Field 24A shaded** — Information: NDC")
    assert lead(ask(engine, "UB04 FL for HCPCS")).startswith("**24D (1500) or 44 (UB-04)** — Information: HCPCS")


def test_a_faq_lifts_its_answer_by_its_words_not_by_the_products_code(engine):
    assert lead(ask(engine, "is there a JW for Q2056")).startswith("Unlike weight-based drug J-codes, the single-dose Q2056")
    assert lead(ask(engine, "is carvykti cd19")).startswith("Carvykti is an anti-BCMA CAR-T, not a CD19 CAR-T.")
    a = ask(engine, "how often does the Q2056 ASP update")
    assert not a.tool_calls and "quarterly" in lead(a)  # a rule, not a price


def test_a_comparison_leads_with_each_products_own_sentence(engine):
    first = lead(ask(engine, "patient support hub for abecma vs carvykti"))
    assert first.startswith("**Abecma:** BMS administers Abecma patient support through BMS Cell Therapy 360")
    # both are Carvykti's in its guide: the hub for every case, and the product's own patient support program
    assert "**Carvykti:** Janssen CarePath" in first or "**Carvykti:** Carvykti-specific patient support is delivered through the MyCARVYKTI" in first
    first = lead(ask(engine, "carvykti vs abecma manufacturing time"))
    assert "4-6 weeks" in first.split("**Carvykti:**")[0] and "5-7 weeks" in first.split("**Carvykti:**")[1]


def test_the_one_payment_figure_asked_leads_and_a_remit_in_thousands_is_compared(engine):
    assert lead(ask(engine, "whats the coinsurance % for Q2053 in Q4 2025")).startswith(
        "**Patient coinsurance on Q2053 (2025Q4): 19.819% of the allowed amount ($489,304.61) = $96,975.28.**")
    assert lead(ask(engine, "sequestration amount on a Q2056 line jan 2026")).startswith(
        "**2% sequestration on Q2056 (2026Q1): $9,603.25 off Medicare's $480,162.59, so Medicare pays $470,559.34.**")
    # asked with the limit, the whole line answers both
    assert lead(ask(engine, "tecartus DOS 3 Feb 2026 - medicare limit and coins %")).startswith("**Q2053 payment limit (2026Q1)")
    assert lead(ask(engine, "remit paid 430k on Q2055 DOS 2/14/26, expected?")).startswith(
        "**The remit's $430,000.00 is $13,787.37 below Medicare's share after 2% sequestration ($443,787.37).**")


def test_a_compound_question_gets_every_code_system_it_asks_for(engine):
    first = lead(ask(engine, "tecartus MCL dx code and PCS code for peripheral"))
    assert first.startswith("**XW033M7**") and "**C83.10**" in first
    first = lead(ask(engine, "abecma IP: DRG and PCS"))
    assert first.startswith("**XW033K7**") and "**MS-DRG 018**" in first
    a = ask(engine, "abecma Q code, units and rev code")  # the part the sources lack is said, the rest answered
    assert a.kind is AnswerKind.ANSWER and lead(a).startswith("**Q2055**") and "one unit per therapeutic dose" in lead(a)
    assert "My sources give no revenue code" in lead(a)


def test_a_drugs_code_question_gets_the_code_billed_today(engine):
    assert lead(ask(engine, "cyclophosphamide hcpcs")).startswith("**J9075** is the HCPCS code")  # not the guides' J9070
    assert lead(ask(engine, "J code for fludarabine")).startswith("**J9185** is the HCPCS code (Fludarabine phosphate injection, 50 mg per unit)")
    assert lead(ask(engine, "what's the J code for elranatamab")).startswith("**J1323**")
    assert ask(engine, "is abecma better than carvykti for my pt").kind is AnswerKind.REFUSAL


def test_drug_induced_parkinsonism_gets_its_code_and_the_guides_g20_codes_are_corrected(engine):
    first = lead(ask(engine, "what ICD for drug induced parkinsonism after carvykti"))
    assert first.startswith("**G21.19** is the ICD-10-CM code for other drug induced secondary parkinsonism")
    assert "The quoted guide's G20.A1: A Parkinson's disease code, not drug-induced parkinsonism" in first
    assert "C90.0" not in first  # never the product's myeloma codes for a toxicity question


def test_a_sentence_about_other_products_only_does_not_lead_a_product_question(engine):
    # the lead is about Tecartus (its indications, which name Breyanzi only for what Tecartus is not approved in)
    first = lead(ask(engine, "tecartus MCL 2L?"))
    assert first.startswith("**Tecartus, FDA-approved indications") and "Breyanzilisocabtagene" not in first


def test_a_pasted_claim_line_is_checked(engine):
    first = lead(ask(engine, "line: J9185 x 167 units DOS 5/5/25 - correct?"))
    assert first.startswith("**167 units of J9185 bill 8,350 mg (50 mg per unit).**") and "4 unit(s)" in first
    assert lead(ask(engine, "Q2055 1 unit $559,781.08 - right for DOS 3/1/26?")).startswith("**Q2055 payment limit (2026Q1): $558,081.726")


def test_a_named_modifier_picks_its_own_sentence_and_a_setting_question_is_a_payer_fact(engine):
    assert lead(ask(engine, "modifier 25 when")).startswith("Use modifier 25 on the E/M code")
    assert lead(ask(engine, "JW modifier for fludarabine waste")).startswith("**JW: the discarded amount")
    a = ask(engine, "centene: does abecma need to be inpatient")
    assert a.kind is AnswerKind.NOT_COVERED and "Centene" in a.text  # the policy holds no setting rule: said so


def test_a_readmission_drg_is_not_drg_018_and_a_per_kg_rate_is_not_a_cell_count(engine):
    first = lead(ask(engine, "ms-drg for car-t readmission for CRS"))
    assert first.startswith("**DRG by principal manifestation") and "Stage 5 CRS readmit" in first
    assert lead(ask(engine, "DRG for car-t inpatient admit")).startswith("**MS-DRG 018**")
    first = lead(ask(engine, "cilta cel 0.75 x 10^6/kg 80 kg how many cells"))
    # the per-kg rate times the weight is the count asked, checked against the label range
    assert first.startswith("**0.75 × 10^6/kg (60 × 10^6 cells at 80 kg) is within the Carvykti (MM) label range of "
                            "40 × 10^6 to 80 × 10^6") and "75 × 10^6 cells is" not in first


def test_a_claim_form_question_and_rows_that_differ_by_setting(engine):
    assert lead(ask(engine, "what claim form for IP CAR-T")).startswith("**Claim form UB-04 / 837I**")
    first = lead(ask(engine, "carvykti POS and claim form for IP"))
    assert first.startswith("**POS 21**") and "**Claim form UB-04 / 837I**." in first


def test_a_year_alone_on_a_price_asks_the_quarter_and_typos_in_names_and_codes_are_read(engine):
    a = ask(engine, "Q2055 payment 2023")
    assert a.kind is AnswerKind.CLARIFY and "2023 has four quarters" in a.text and "$" not in a.text
    assert lead(ask(engine, "abcema units")).startswith("**Q2055: 1 unit**")
    assert lead(ask(engine, "Q2O55 payment Q1 2026")).startswith("**Q2055 payment limit (2026Q1)")


def test_a_sentence_that_only_announces_a_list_does_not_lead(engine):
    assert not lead(ask(engine, "tecartus approved for DLBCL?")).rstrip(" [1]").endswith(":")
    # a code added beside the one in force is not its replacement
    first = lead(ask(engine, "J9070 x 17 units DOS 6/1/25 ok?"))
    assert first.startswith("**J9075**") and "also **J9076**" in first and "it is **J9076**" not in first


def test_what_an_ma_plan_pays_is_not_in_the_sources(engine):
    a = ask(engine, "what does the MA plan pay for Q2055")
    assert a.kind is AnswerKind.NOT_COVERED and "Medicare Advantage" in a.text and "$" not in a.text


def test_what_a_code_is_and_a_code_against_another_get_the_code_set(engine):
    assert lead(ask(engine, "whats the 38228 descriptor")).startswith("**38228** is the CPT code (CAR-T: administration")
    assert lead(ask(engine, "what is J9185")).startswith("**J9185** is the HCPCS code (Fludarabine phosphate injection, 50 mg")
    assert lead(ask(engine, "38225 vs 38206 for car-t collection")).startswith("**38225** is the CPT code")
    assert "Carvykti" in lead(ask(engine, "what is Q2056"))  # a product's Q-code names its product


def test_a_unit_size_question_gets_the_codes_unit_not_a_conversion(engine):
    assert lead(ask(engine, "is J9185 per 50mg?")).startswith("**J9185** is the HCPCS code (Fludarabine phosphate injection, 50 mg per unit)")
    assert "1 mg per unit" in lead(ask(engine, "how many mg in 1 unit of J3262"))
    assert lead(ask(engine, "J9185 units for 55.5 mg")).startswith("**J9185: 2 unit(s)")


@pytest.mark.parametrize("question", ["abecma q code dos 3/2/24", "q code for abecma", "abecma qcode?"])
def test_a_products_own_code_leads_with_the_sentence_that_states_it(engine, question):
    """'q code' matches the denial table's wrong-Q-code rows word for word; the search also looks
    for the product's code, so the guide's own statement of it is quoted."""
    first = lead(ask(engine, question))
    assert first.startswith("**Q2055** is the HCPCS code for Abecma")
    assert "Abecma is billed under HCPCS Q2055" in first


# --- round 3: compound asks, stated regimens, criteria asked about, threads -------------------------

def test_a_code_and_units_question_with_a_bsa_gets_the_units_answer_naming_the_code(engine):
    a = ask(engine, "cy 300 mg/m2 bsa 2.05, what j code and units per day")
    assert [c.name for c in a.tool_calls] == ["dose_units"]
    assert lead(a).startswith("**J9075: 123 unit(s) per date of service**")


def test_what_a_code_covers_is_its_descriptor(engine):
    first = lead(ask(engine, "what does 38226 cover"))
    assert first.startswith("**38226** is the CPT code") and "transportation" in first


def test_a_weight_based_cell_dose_names_its_maximum(engine):
    first = lead(ask(engine, "brexu-cel MCL pt 82kg - cell dose range + max"))
    assert "164 × 10^6" in first and "maximum 200 × 10^6" in first


def test_a_retired_code_in_a_quoted_row_is_marked_in_the_copied_line(engine):
    first = lead(ask(engine, "what POS for outpatient hospital car-t infusion"))
    assert "POS 22" in first and "0537T-0541T [retired for this date of service: see the note]" in first
    # on a date the codes were still valid, the row is shown as the source has it
    assert "[retired" not in lead(ask(engine, "what POS for outpatient hospital car-t infusion", dos="2024-06-01"))


def test_two_codes_of_one_history_get_one_answer(engine):
    a = ask(engine, "is 0540T ok for a 12/30/24 DOS or do i need 38228")
    assert len(a.tool_calls) == 1 and lead(a).startswith("**0540T** is the CPT code")


def test_a_vial_size_without_its_unit_is_read_as_mg():
    assert read_figures("toci 8mg/kg 95kg how many vials of 400", None).vials == ((0, 400.0),)
    assert read_figures("toci 70kg vials of 12", None).vials == ()  # a count, not a size


def test_the_vials_to_open_are_in_the_first_line(engine):
    first = lead(ask(engine, "toci 8mg/kg 95kg how many vials of 400"))
    assert "vials: 2 × 400 mg" in first and "**J3262-JW: 40 unit(s)**" in first


@pytest.mark.parametrize("text, start", [
    ("tecartus ALL cy 900 mg/m2 x3 days right?", "**No: for Tecartus (ALL) the FDA label gives cyclophosphamide once (day -2), not on 3 days.**"),
    ("carvykti flu 25 mg/m2?", "**No: for Carvykti (MM) the FDA label gives fludarabine 30 mg/m², not 25 mg/m².**"),
    ("abecma LD flu 30 mg/m2 x 3 days correct?", "**Yes: fludarabine at 30 mg/m² on 3 days is the FDA label regimen"),
])
def test_a_stated_regimen_is_checked_against_the_label(engine, text, start):
    assert lead(ask(engine, text)).startswith(start)


def test_a_count_the_question_asks_about_is_not_the_members():
    from assistant.core.reference import load_reference
    from assistant.core.scenario import read_scenario

    ref = load_reference()
    assert read_scenario("carepartners abecma PA - does pt need 4 prior lines?", ref).prior_lines is None
    assert read_scenario("carepartners abecma pt has 4 prior lines, ok?", ref).prior_lines == 4


@pytest.mark.parametrize("text, expected", [
    ("ecog requirement centene abecma", "has no criterion on performance status (ECOG)"),
    ("centene abecma renal function requirement?", "has no criterion on organ function"),
])
def test_a_criterion_the_policy_does_not_have_is_said_plainly(engine, text, expected):
    first = lead(ask(engine, text))
    assert expected in first and "Cannot tell" not in first


def test_a_payer_switch_keeps_the_question_and_a_pronoun_rules_out_the_named_therapy(engine):
    conv = Conversation()
    ask(engine, "how long is carepartners abecma approval good for", conv)
    assert "Initial approval: 3 months" in lead(ask(engine, "and centene?", conv))
    conv = Conversation()
    assert "criterion 7" in lead(ask(engine, "centene abecma pt had tecvayli - ok?", conv))
    first = lead(ask(engine, "what if she never had it", conv))  # the one fact given decides its criterion, first
    assert first.startswith("**Centene's Abecma policy (CP.PHAR.481), criterion 7 (no prior anti-BCMA therapy): met")
    assert "**Cannot tell yet" in first and "tecvayli" not in first.split("Read from the question")[0]
    first = lead(ask(engine, "and carepartners?", conv))
    assert first.startswith("**Cannot tell yet whether this member meets CarePartners")


@pytest.mark.parametrize("text", ["JW abecma needed?", "does abecma need JZ modifier"])
def test_a_modifier_question_about_the_product_leads_with_the_products_sentence(engine, text):
    # not the lymphodepletion drugs' JW rule, nor the guide's "check your MAC" boilerplate
    assert lead(ask(engine, text)).startswith("Unlike weight-based drug J-codes, the single-dose Q2055 code does not generate JW")


@pytest.mark.parametrize("text, start", [
    ("what's the effective date of the carepartners abecma policy",
     "**CarePartners of Connecticut's Abecma Medical Necessity Guidelines (Medicare Advantage): Effective September 1, 2025 [1]"),
    ("when was centene abecma policy last reviewed", "**Centene's Abecma policy (CP.PHAR.481): Effective since March 26, 2021"),
])
def test_a_policys_own_dates_are_answered_from_the_policy(engine, text, start):
    a = ask(engine, text)
    assert lead(a).startswith(start)
    assert any("Last" in c.quote or "Effective" in c.quote or "Reviewed" in c.quote for c in a.citations)


def test_the_billing_unit_of_a_code_is_answered_for_a_drug_the_guides_do_not_cover(engine):
    assert lead(ask(engine, "whats the unit for J9380")).startswith("**J9380** is the HCPCS code (Teclistamab injection (Tecvayli), 0.5 mg per unit)")


def test_a_drug_row_does_not_answer_a_modifier_question_that_names_no_drug(engine):
    assert lead(ask(engine, "modifier for same day E/M car-t")).startswith("Use modifier 25 on the E/M code")


def test_a_follow_up_asking_another_part_keeps_the_threads_calculator(engine):
    conv = Conversation()
    ask(engine, "carvykti pt 78 kg toci dose", conv)
    assert lead(ask(engine, "and how many units", conv)).startswith("**Tocilizumab 624 mg per dose → J3262 624 units per dose**")
    assert "**J3262-JW: 176 unit(s)**" in lead(ask(engine, "what if 400mg vials only", conv))
    conv = Conversation()
    ask(engine, "Q2055 Q4 2025 payment limit", conv)
    assert lead(ask(engine, "how many units", conv)).startswith("**Q2055: 1 unit**")


def test_a_pcs_thread_moves_to_another_products_code_of_the_same_vein(engine):
    conv = Conversation()
    ask(engine, "XW043A7 valid for discharge 3/1/22?", conv)
    assert lead(ask(engine, "and for abecma?", conv)).startswith("**XW043K7**")
    assert lead(ask(engine, "and tecartus", conv)).startswith("**XW043M7**")


def test_billers_words_ask_a_services_code_and_an_age_limit_is_not_a_price(engine):
    assert lead(ask(engine, "what do we bill for cell collection day")).startswith("**38225** is the CPT code")
    a = ask(engine, "is there an age limit for abecma w/ centene")
    assert [c.name for c in a.tool_calls] == ["payer_policy"] and "criterion 3: Age 18 or older" in lead(a)


def test_a_lab_figure_asked_about_is_read_against_its_criterion(engine):
    first = lead(ask(engine, "centene abecma: M-protein 0.3 g/dL, is that measurable disease?"))
    assert "criterion 4" in first and "**From the question: M-protein 0.3 g/dL below the threshold" in first


def test_outpatient_and_labeler_questions_in_a_billers_words(engine):
    assert "Outpatient administration may be covered when the provider attests" in lead(
        ask(engine, "can abecma be given outpatient under carepartners"))
    assert lead(ask(engine, "which labeler is 57894")).startswith("**Labeler 57894: Tecvayli (J9380, cms-crosswalk), Carvykti")


def test_a_retired_code_glued_to_the_next_word_is_marked():
    import datetime as dt

    from assistant.conflicts import mark_retired

    assert mark_retired("0537TChimeric antigen", dt.date(2026, 1, 5)).startswith("0537T [retired for this date of service")
    assert mark_retired("0537TChimeric antigen", dt.date(2024, 6, 1)) == "0537TChimeric antigen"


@pytest.mark.parametrize("text, days", [
    ("flu 30mg/m2 x3, bsa 1.76 - J9185 units each day?", 3),
    ("cy 300 mg/m2 x 3 bsa 2.0 units total", 3),
    ("toci 8mg/kg, 2 x 400 mg vials", None),  # vials on hand, not days
])
def test_a_rate_times_a_count_is_that_many_days(text, days):
    import datetime as dt

    from assistant.tools.planning import Planning

    assert Planning(read_question(text), dt.date(2026, 11, 24)).days() == days


@pytest.mark.parametrize("text, start", [
    ("claim line: J9185 x 6 units DOS 3/4/26 for 58mg flu - right?", "**No: 58 mg is 2 unit(s) of J9185, not 6.**"),
    ("claim line Q2055 x 2 units - ok?", "**No: one therapeutic dose is 1 unit(s) of Q2055, not 2.**"),
    ("J3262 x 700 units, pt 80kg - correct?", "**No: a 640 mg dose is 640 unit(s) of J3262, not 700.**"),
    ("fludarabine 54 mg = 2 units?", "**Yes: 2 unit(s) of J9185 is right for 54 mg.**"),
])
def test_a_claim_lines_units_are_checked(engine, text, start):
    assert lead(ask(engine, text)).startswith(start)


def test_compound_questions_get_every_part_in_the_first_paragraph(engine):
    first = lead(ask(engine, "cy 1,200 mg + flu 60 mg same DOS - units each"))
    assert "**J9075: 240 unit(s) per date of service**" in first and "**J9185: 2 unit(s) per date of service**" in first
    first = lead(ask(engine, "abecma DOS 12/30/24: admin cpt + Q code + units"))
    assert first.startswith("**0540T** is the CPT code") and "**Q2055: 1 unit**" in first
    first = lead(ask(engine, "ICD10 for CRS grade 1 and ICANS grade 1"))
    assert first.startswith("**D89.831**") and "**G92.01**" in first


def test_how_much_more_is_a_difference(engine):
    a = ask(engine, "how much more is carvykti than abecma Q1 2026")
    assert [c.name for c in a.tool_calls] == ["payment_change"] and "$29,567.85" in lead(a)


@pytest.mark.parametrize("text, start", [
    ("centene: does abecma require a hem/onc prescriber", "**Centene's Abecma policy (CP.PHAR.481), criterion 2: Prescribed by"),
    ("carepartners require no prior car-t?", "**CarePartners of Connecticut's Abecma Medical Necessity Guidelines (Medicare Advantage), criterion 3"),
    ("does centene require age 18 for a 17 yo pt", "**Does not meet Centene's Abecma policy (CP.PHAR.481): criterion 3 (age 18 or older) — age 17"),
])
def test_a_requirement_asked_about_is_not_a_members_finding(engine, text, start):
    assert lead(ask(engine, text)).startswith(start)


@pytest.mark.parametrize("text, part", [
    ("what's the indication for tecartus", "(1) Adult R/R mantle cell lymphoma (MCL) after BTK inhibitor failure"),
    ("tecartus for DLBCL?", "NOT approved in LBCL/FL (use Yescarta or Breyanzi)"),
    ("carvykti for 1 prior line", "(2) Adult R/R multiple myeloma after ≥ 1 prior line including a PI and an IMiD"),
])
def test_an_indication_question_gets_the_products_fda_indications(engine, text, part):
    a = ask(engine, text)
    assert lead(a).startswith("**") and "FDA-approved indications" in lead(a) and part in lead(a)
    assert part in a.citations[0].quote


def test_a_remit_in_a_billers_words_and_ntap_is_not_the_limit(engine):
    assert lead(ask(engine, "we got 470,559.34 for carvykti 2/2/26, correct?")).startswith("**The remit's $470,559.34 equals")
    a = ask(engine, "does medicare pay NTAP for abecma")
    assert not a.tool_calls and "NTAP" in lead(a)


def test_a_q_codes_descriptor_is_the_cms_files(engine):
    assert lead(ask(engine, "Q2053 descriptor")).startswith(
        "**Q2053** is the HCPCS code (UP TO 200 MILLION AUTOLOGOUS ANTI-CD19 CAR POSITIVE VIABLE T CELLS)")


def test_the_day_of_a_date_is_not_a_claim_lines_units():
    assert read_figures("cytoxan 600 mg DOS 2023-05-01 units", None).units is None
    assert read_figures("cy 600 mg 5/1/23 units", None).units is None
    assert read_figures("J9185 x 6 units for 58mg", None).units == 6


def test_a_member_who_had_a_therapy_is_a_scenario_even_when_the_question_sounds_like_a_rule(engine):
    assert lead(ask(engine, "is there an issue if she had tecvayli - centene abecma")).startswith(
        "**Does not meet Centene's Abecma policy (CP.PHAR.481): criterion 7")


def test_two_drugs_at_a_rate_per_m2_with_a_bsa_get_one_line_each(engine):
    a = ask(engine, "cy 300 mg/m2 and flu 30 mg/m2 bsa 1.8 units")
    assert "**J9075: 108 unit(s) per date of service**" in lead(a) and "**J9185: 2 unit(s) per date of service**" in lead(a)
    assert "*Input:* J9075: 300 mg/m² × 1.8 m² = 540 mg" in a.text


def test_the_products_code_is_quoted_from_its_guides_own_statement(engine):
    a = ask(engine, "what do we bill for abecma")
    assert lead(a).startswith('**Q2055** is the HCPCS code for Abecma (idecabtagene vicleucel). "Abecma is billed under HCPCS Q2055')
    assert a.citations[0].section == "About Abecma (idecabtagene vicleucel)"


# --- round 4: scenarios and figures as PA staff and coders type them -------------------------------

@pytest.mark.parametrize("text, check", [
    ("centene pt CNS hx negative, 3 lines", lambda s: s.flags.get("cns") is False),
    ("centene pt CNS: neg, 3 lines", lambda s: s.flags.get("cns") is False),
    ("pt w/ leptomeningeal myeloma, 3 lines", lambda s: s.flags.get("cns") is True),
    ("carepartners abecma PA - which codes need auth, do the car-t admin cpts?", lambda s: "cart" not in s.classes),
    ("pt had prior car-t in 2024", lambda s: "cart" in s.classes),
    ("no cell therapy ever, 4 lines", lambda s: "cart" in s.ruled_out),
    ("relapsed after VRd, DPd and KCd", lambda s: s.prior_lines == 3),
    ("D-VRd induction + ASCT + len maint, then KPd", lambda s: {"anti_cd38", "pi", "imid"} <= s.classes and s.prior_lines == 2),
    ("VRd -> DRd -> KPd -> teclistamab (PD 9/26)", lambda s: s.flags.get("diagnosis_rrmm") is True),
    ("3 prior lines (VRd, DPd, KCd), heme/onc", lambda s: s.flags.get("diagnosis_rrmm") is True),
    ("newly diagnosed, 1 prior line", lambda s: s.flags.get("diagnosis_rrmm") is False),
])
def test_scenario_words_as_pa_staff_write_them(text, check):
    import datetime as dt

    from assistant.core.reference import load_reference
    from assistant.core.scenario import read_scenario

    assert check(read_scenario(text, load_reference(), ("abecma",), dt.date(2026, 12, 2)))


def test_a_lab_date_is_not_its_value():
    import datetime as dt

    from assistant.core.reference import load_reference
    from assistant.core.scenario import read_scenario

    s = read_scenario("what if the spep was 10/15/26 instead", load_reference(), ("abecma",), dt.date(2026, 12, 2))
    assert s.flags.get("measurable") is not True and "more than 30 days ago" in s.said.get("measurable", "")


@pytest.mark.parametrize("text, vials", [
    ("actemra 592 mg, opened 1x400 + 1x200, JW?", ((1, 400.0), (1, 200.0))),
    ("actemra 8mg/kg pt 74 kg, opened a 400 + a 200 vial", ((1, 400.0), (1, 200.0))),
    ("we opened a 400mg and a 200mg vial", ((1, 400.0), (1, 200.0))),
    ("Nov 2023 claim billed cyclophosphamide 555 mg as J9070 x 6, was that right?", ()),
])
def test_vials_opened_as_typed(text, vials):
    import datetime as dt

    from assistant.understand import read_question

    assert read_question(text, dt.date(2026, 12, 2)).figures.vials == vials


@pytest.mark.parametrize("line", ["CVC", "port", "PICC line", "port-a-cath", "central line"])
def test_a_central_line_by_any_name_is_the_central_vein_code(engine, line):
    first = lead(ask(engine, f"abecma given thru {line}, discharged 5/5/25 - pcs code?"))
    assert first.startswith("**XW043K7**"), first


# --- round 5: corrections, ranges, crosswalk rows and the date a question gives --------------------

@pytest.mark.parametrize("text, check", [
    ("centene pt 64M RRMM x3 lines triple exposed", lambda s: s.prior_lines == 3),
    ("now RRMM again after 3 more lines", lambda s: s.prior_lines == 3),
    ("progressed on elrexfio in oct, before that VRd, Dara-Kd, Pom/dex", lambda s: s.prior_lines == 4),
    ("was on a BCMA CAR-T trial in 2022", lambda s: {"cart", "anti_bcma"} <= s.classes),
    ("scratch the blenrep", lambda s: "anti_bcma" in s.ruled_out and not s.prior_drugs),
    ("M protein 0.7 g/dL", lambda s: s.flags.get("measurable") is True),
    ("4 lines triple exp", lambda s: {"imid", "pi", "anti_cd38"} <= s.classes),
])
def test_scenario_words_round_5(text, check):
    import datetime as dt

    from assistant.core.reference import load_reference
    from assistant.core.scenario import read_scenario

    assert check(read_scenario(text, load_reference(), ("abecma",), dt.date(2026, 12, 2)))


def test_a_member_meeting_every_member_criterion_meets_centene_on_the_dose_condition(engine):
    first = lead(ask(engine, "centene pt 55F RRMM, 3 lines (VRd, Dara-Kd, Pom-dex), M-spike 1.0 g/dL 11/20/26, heme/onc "
                             "prescribing, no CNS issues, no prior BCMA or CAR-T - meets abecma criteria?"))
    assert first.startswith("**Meets Centene's Abecma policy (CP.PHAR.481) on every criterion about the member"), first
    assert "criterion 10" in first


def test_a_correction_takes_a_therapy_back(engine):
    conv = Conversation()
    before = lead(ask(engine, "centene pt 70F 4 lines triple exposed + blenrep in 2021, M-spike 0.6 g/dL 11/20/26, heme/onc, "
                              "no CNS hx, never had CAR-T - will centene approve abecma?", conv))
    assert before.startswith("**Does not meet") and "blenrep" in before
    after = lead(ask(engine, "scratch the blenrep", conv))
    assert after.startswith("**Meets Centene") and "prior blenrep" not in after, after


def test_an_impossible_date_of_service_is_asked_again(engine):
    a = ask(engine, "q2055 limit dos 13/45/25")
    assert a.kind is AnswerKind.CLARIFY and "'13/45/25' is not a calendar date" in a.text and "$" not in a.text


@pytest.mark.parametrize("turns, code", [
    (["CRS grade 2 after abecma, which D89 code"], "D89.832"),
    (["CRS grade 2 after abecma, which D89 code", "grade 4?"], "D89.834"),
    (["D89.832 or D89.833 for CRS gr 3"], "D89.833"),
])
def test_a_crs_code_is_chosen_by_grade(engine, turns, code):
    conv = Conversation()
    for text in turns:
        a = ask(engine, text, conv)
    assert lead(a).startswith(f"**{code}**"), lead(a)


def test_a_drg_016_grouping_is_answered_no(engine):
    first = lead(ask(engine, "encoder grouped our car-t case to DRG 016 - is that right??"))
    assert first.startswith("**No: a CAR-T admission groups to MS-DRG 018"), first
    readmit = lead(ask(engine, "readmit day +9 after outpt abecma infusion for gr 2 CRS - does it go back to DRG 018?"))
    assert not readmit.startswith("**Yes"), readmit


def test_a_verdict_and_a_fact_in_one_question_then_a_member_fact_rechecks(engine):
    conv = Conversation()
    first = lead(ask(engine, "carepartners HMO member 72yo, prior KRd then Isa-Pd, progressed, never had car-t - meets their "
                             "abecma criteria? and fax #", conv))
    assert first.startswith("**Meets all 5 criteria of CarePartners") and "617-673-0956" in first, first
    after = lead(ask(engine, "what if he got carvykti in a clinical trial in 2023", conv))
    assert after.startswith("**Does not meet CarePartners") and "criterion 3" in after, after


def test_an_flc_weeks_old_is_stale():
    import datetime as dt

    from assistant.core.reference import load_reference
    from assistant.core.scenario import read_scenario

    s = read_scenario("only measurable by FLC - involved kappa 14 mg/dL, ratio abnl, drawn 5 wks ago", load_reference(),
                      ("abecma",), dt.date(2026, 12, 2))
    assert s.flags.get("measurable") is not True and "more than 30 days ago" in s.said["measurable"]


@pytest.mark.parametrize("question, start, has, has_not", [
    ("billing guide gives tecartus NDC 71287-129-01 - valid on the claim?", "**No: NDC 71287-129-01", ["71287-0219-01"], []),
    ("tecvayli 153 mg vial - NDC 11 + how many J9380 units per vial", "**Tecvayli 153 mg vial: NDC 57894-0450-01",
     ["306 units per vial"], ["0449"]),
    ("abecma target dose for the PA letter - guide says 150-450 x10^6, right?",
     "**No: the Abecma label range is 300 × 10^6 to 510 × 10^6", [], []),
    ("pt 5'6\" 154 lb tecartus MCL, LD starts 10/6/25 - flu/cy mg per day + J-code units each day", "**Tecartus (MCL)",
     ["(2025-10-06, 2025-10-07, 2025-10-08)"], ["2025-10-01"]),
    ("MM pt relapsed after auto-SCT, getting abecma - dx code + Z code for the transplant status", "", ["**C90.02**", "Z94.84"], []),
    ("whats the q code for car-t", "Each CAR-T product has its own HCPCS Q-code", ["Which product", "Q2055", "Q2056", "Q2053"], []),
    ("abecma IP vs OP medicare - POS for each + is Q2055 paid separately on the inpt claim or just DRG 018?", "**Inpatient:",
     ["MS-DRG 018", "Inpatient: **POS 21**", "Outpatient: **POS 22**"], []),
    ("FY26 MS-DRG 018 relative weight + base payment?", "My sources do not give that figure.", [], []),
    ("CRS readmit after car-t: D89.83x as principal or secondary?", "", ["Fix: "], ["properlyD89"]),
    ("why is coins on Q2056 only 18.291% and not 20", "**Q2056 coinsurance in 2026Q1 is 18.291%",
     ["Inflation-adjusted coinsurance"], []),
    ("bene coins on 560mg actemra (J3262) DOS 1/9/26", "**J3262: 560 unit(s)", ["$628.21"], []),
    ("NDC 11 for actemra 50242-136-01 + how many billing units is that vial", "NDC 50242-136-01",
     ["Actemra J3262, 200 billing units per package"], ["None"]),
    ("J9070 x 17 DOS 2/6/24 - whats the allowed?", "**J9070 payment limit (2024Q1)", ["× 17: allowed $348.52"], []),
    ("tecvayli 90 mg, opened 153 mg vial DOS 3/3/26 - units + JW + allowed", "**J9380: 180 unit(s)",
     ["**J9380-JW: 126 unit(s)**", "× 180: allowed $6,223.50"], []),
    ("Q2056 x 2 DOS 8/5/25 - product came in 2 bags, is that right", "**No: one therapeutic dose is 1 unit(s) of Q2056, not 2", [], []),
    ("MS-DRG 018 relative weight for FY 2026?", "My sources do not give that figure.", [], []),
    ("whats the CY2026 OPPS APC payment rate for outpatient CAR-T admin?", "My sources do not give that figure.", [], []),
    ("tecartus Q4 25 vs Q1 26 limit - how much did it change + coins %?", "**Q2053 2026Q1 vs Q2053 2025Q4: payment limit up",
     ["**Coinsurance:"], []),
])
def test_round_5_first_paragraphs(engine, question, start, has, has_not):
    first = lead(ask(engine, question))
    assert first.startswith(start) and all(h in first for h in has) and not any(h in first for h in has_not), first


@pytest.mark.parametrize("turns, start, has, has_not", [
    (["tecvayli 105mg SC today, opened the 153 mg vial - J9380 units given + JW units?",
      "scratch the tecvayli, it was elrexfio 76mg, whole vial used"], "**J1323: 76 unit(s)", [], ["J9380"]),
    (["carvykti LD flu 30/m2 x3 days, BSA 2.04, DOS 2/9/26 - how many J9185 units per day?",
      "and the cytoxan 300/m2 same pt, what J code + units/day"], "**J9075: 123 unit(s)", [], []),
    (["medicare limit Q2056 DOS 8/14/2024", "what does medicare actually pay after coins and seq"], "", ["$398,026.61"], ["**No"]),
    (["how much did the Q2056 limit go up Q4 25 -> Q1 26", "same for abecma"], "", ["up $763.79"], []),
    (["carepartners MA member getting abecma outpt - PA needed? fax #?", "do the car-t admin cpts need auth there too"], "",
     ["No prior authorization for the CAR-T administration codes"], []),
    (["brexu-cel MCL, pt 5'7\" 165 lb, LD starts 2/9/26 - flu/cy mg per day + units each DOS?", "what if its adult ALL not MCL"],
     "**Tecartus (ALL) lymphodepletion", ["J9075 339 unit(s)"], ["(MCL)"]),
    (["carvyktii dose range for a 198 lb pt?", "same but 231 lb"], "**Carvykti (MM): 52.39 × 10^6", [], []),
    (["J9070 x 17 DOS 2/6/24 - whats the allowed?", "and 1,700mg cy in may 24?"], "**J9075: 340 unit(s)", ["$312.12"], []),
    (["centene medicaid ide-cel PA: 62M, 3 prior lines (VRd->ASCT, kyprolis-dex, sarclisa-pom-dex), got blenrep on a trial "
      "last yr - approvable?", "how long is the approval good for"], "**Centene's", ["3 months"], ["Not applicable"]),
    (["0540T on 1/8/25 DOS for the cilta-cel infusion - still ok or do i need 38228", "and the thaw/prep of the cells that day?"],
     "**38227**", [], []),
    (["whats medicare paying on a Q2055 line DOS 5/20/24 after coins and seq", "same DOS for cilta-cel - how much more is it?"],
     "**Q2056 2024Q2 vs Q2055 2024Q2", ["up $22,805.25"], []),
    (["carepartners MA member 71 y/o RRMM, had revlimid/velcade/dex then darzalex-pom-dex, now progressing - does she meet "
      "criteria for abecma", "what if she had talvey too", "and if it was tecvayli instead of talvey?"], "**Cannot tell yet", [],
     ["do not mention"]),
])
def test_round_5_follow_ups(engine, turns, start, has, has_not):
    conv = Conversation()
    for text in turns:
        a = ask(engine, text, conv)
    first = lead(a)
    assert first.startswith(start) and all(h in first for h in has) and not any(h in first for h in has_not), first


# --- round 6: a patient against the FDA label, a code not to bill, waste opened vs given -------------

@pytest.mark.parametrize("question, starts", [
    ("carvykti 58M 1 prior line VRd, len refractory - on label?", "**Yes, on label"),
    ("tecartus 16yo B-ALL relapsed - on label?", "**No, not on label for Tecartus"),
    ("carvykti for 62M MM, 2 prior lines DRd then KPd, not len refractory - fda approved?", "**No, not on label for Carvykti"),
    ("tecartus MCL 67M after ibrutinib, relapsed - on label?", "**Yes, on label"),
])
def test_a_patient_is_checked_against_the_products_fda_indications(engine, question, starts):
    a = ask(engine, question)
    assert [c.name for c in a.tool_calls] == ["label_check"] and lead(a).startswith(starts)


def test_a_product_switch_in_a_payer_thread_without_that_payers_policy_checks_the_label(engine):
    conv = Conversation()
    ask(engine, "centene pt 66F RRMM, 1 prior line DRd, len refractory, M-spike 0.8 g/dL last wk, heme/onc - meets abecma criteria?", conv)
    a = ask(engine, "and carvykti for her", conv)
    assert lead(a).startswith("**No, not on label for Carvykti") and "missing: a proteasome inhibitor" in lead(a)


@pytest.mark.parametrize("question, needle", [
    ("is 0541T a car-t code i should bill", "**0541T is not on record as a CAR-T code"),
    ("can i bill 0537T for apheresis", "**38225**"),
    ("should we use 38228 or 0540T for dos 2/1/25", "**38228**"),
])
def test_whether_to_bill_a_named_code_is_answered_by_the_code_in_force(engine, question, needle):
    a = ask(engine, question)
    assert a.kind is not AnswerKind.REFUSAL and lead(a).startswith(needle)


def test_the_amount_given_is_not_read_as_the_amount_opened(engine):
    assert "**J3262-JW: 120 unit(s)**" in lead(ask(engine, "J3262 gave 680mg opened 800mg what are the JW units"))


def test_a_code_not_yet_created_on_the_dos_is_said_first(engine):
    first = lead(ask(engine, "elrexfio 76mg dos 3/1/24 units and medicare allowable"))
    assert first.startswith("**J1323 is not valid for DOS 2024-03-01")


def test_a_typo_in_eligible_still_checks_the_label_and_only_ruled_out_classes_are_called_missing(engine):
    assert lead(ask(engine, "carvykti eligble? 71M myeloma 1 line dara-VRd, progressed on len maint")).startswith("**Yes, on label")
    first = lead(ask(engine, "abecma 4 prior lines but no dara ever, fda approved?"))
    assert first.startswith("**No, not on label for Abecma") and "missing: an anti-CD38 antibody;" in first
    assert "missing: an immunomodulatory" not in first


# --- round 7: questions typed without the trigger words ---------------------------------------
@pytest.mark.parametrize("question, tool, start", [
    ("tecartus medicare rate for dos 10/15/26", "payment", "**No Q2053 payment limit for 2026Q4"),
    ("Q2053 dos 10/15/26", "code_on_date", "**Q2053** is the HCPCS code"),
    ("toci 680mg dos 2/1/26", "dose_units", "**J3262: 680 unit(s)"),
    ("does the 2% seq come off the pt coins", "rule_on_date", "**No: the 2% sequestration comes off Medicare's share only"),
    ("carvyktii - q2055 or q2056??", "code_on_date", "**Q2056** is the HCPCS code"),
    ("carvykti q2055?", "code_on_date", "**Q2056** is the HCPCS code"),
    ("leukapheresis DOS 3/2026 bill 38206?", "code_on_date", "**38225** is the CPT code"),
])
def test_a_question_without_trigger_words_gets_the_calculator_it_asks_for(engine, question, tool, start):
    a = ask(engine, question)
    assert [c.name for c in a.tool_calls] == [tool] and lead(a).startswith(start)


def test_a_typed_code_that_does_not_answer_is_said_not_to(engine):
    assert "Q2055 is not: it is Abecma's code" in lead(ask(engine, "carvykti q2055?"))
    assert "38206 is not on record as a CAR-T code" in lead(ask(engine, "leukapheresis DOS 3/2026 bill 38206?"))


def test_a_crs_rate_is_not_a_payment_question(engine):
    a = ask(engine, "what's the crs rate for tecartus in ALL")
    assert "payment" not in [c.name for c in a.tool_calls]


def test_a_code_that_ended_months_before_is_not_called_the_code_just_before(engine):
    first = lead(ask(engine, "carvykti central line, discharged 2/10/26 - pcs code"))
    assert first.startswith("**XW043A7**") and "XW043C3 was valid through 2021-09-30" in first and "before 2022-02-28 it was" not in first


def test_an_attribute_of_a_named_drg_is_not_answered_with_another_drg(engine):
    first = lead(ask(engine, "ms-drg 018 relative weight fy2026?"))
    assert first.startswith("My sources do not give") and "MS-DRG 016" not in first


def test_outpatient_typed_as_outpt_adds_the_payers_outpatient_rule_to_a_criteria_check(engine):
    first = lead(ask(engine, "carepartners MA 74yo, 3 prior lines (VRd, KPd, dara-pom-dex), no prior car-t, we want to do it outpt "
                             "- does he qualify + where do i fax"))
    assert first.startswith("**Meets all 5 criteria") and "provider attests" in first and "Fax 617-673-0956" in first


def test_an_inpatient_price_question_leads_with_the_drg_even_when_the_search_misses_it(engine):
    first = lead(ask(engine, "abecma IP dos 2/2/26 medicare allowed"))
    assert first.startswith("**Inpatient: Medicare does not pay Q2055") and '"Q2055 line-item is included in the DRG bundle."' in first


def test_ip_instead_of_op_in_a_follow_up_is_the_inpatient_answer(engine):
    conv = Conversation()
    ask(engine, "abecma OP dos 2/2/26 medicare allowed", conv)
    first = lead(ask(engine, "what if IP instead of OP", conv))
    assert first.startswith("**Inpatient: Medicare does not pay Q2055") and "deniedFor" not in first


def test_waste_words_in_a_weight_based_toci_question_still_get_the_units(engine):
    a = ask(engine, "toci 8mg/kg pt 64kg, opened 400mg + 200mg vials, rest wasted - j3262 units on admin line + jw line")
    assert [c.name for c in a.tool_calls] == ["tocilizumab_dose"] and "**J3262-JW: 88 unit(s)**" in lead(a)


def test_the_price_of_that_after_a_units_answer_prices_those_units(engine):
    conv = Conversation()
    ask(engine, "toci 8mg/kg pt 64kg, opened 400mg + 200mg vials, rest wasted - j3262 units on admin line + jw line", conv)
    first = lead(ask(engine, "medicare allowed on that for dos 1/15/26", conv))
    assert "**J3262 payment limit (2026Q1): $5.609 per unit.** × 512: allowed $2,871.81" in first


def test_two_services_on_two_dates_are_each_coded_by_their_own_date(engine):
    a = ask(engine, "cells thawed/prepped 12/31/24, infused 1/2/25 - cpt for each day")
    assert [(c.arguments["code"], c.arguments["dos"]) for c in a.tool_calls] == [("0539T", "2024-12-31"), ("0540T", "2025-01-02")]
    assert lead(a).startswith("**0539T** is the CPT code") and "**38228** is the CPT code" in lead(a)


@pytest.mark.parametrize("question", ["cells received and prepped 12/31/24", "abecma cells received + prepped for infusion 12/31/24"])
def test_receipt_and_prep_typed_as_a_claim_line_is_0539t(engine, question):
    assert lead(ask(engine, question)).startswith("**0539T** is the CPT code")


def test_a_lab_date_given_for_all_labs_makes_each_stale_and_urine_m_protein_is_not_serum(engine):
    first = lead(ask(engine, "centene pt urine m-protein 250 mg/24h + kappa FLC 8 mg/dL abnl ratio, labs from 6 wks ago - "
                             "does measurable dz count?"))
    assert "urine m-protein 250 mg drawn" in first and "more than 30 days ago" in first and ": met" not in first


@pytest.mark.parametrize("question, start", [
    ("what % of the abecma allowed does medicare pay for Q1 26, is it 80?", "**Medicare pays 81.143% of the allowed amount on Q2055 (2026Q1)"),
    ("q2053 dos 11/1/25 medicare pays what percent", "**Medicare pays 80.181% of the allowed amount on Q2053 (2025Q4)"),
])
def test_medicares_share_asked_as_a_percentage_leads_with_the_percentage(engine, question, start):
    assert lead(ask(engine, question)).startswith(start)


def test_a_review_turnaround_the_policy_does_not_give_is_said_missing(engine):
    assert lead(ask(engine, "centene PDAC review turnaround for abecma PA - how many days")).startswith(
        "**My sources do not give that time.**")
    assert not lead(ask(engine, "carepartners abecma auth duration?")).startswith("**My sources do not give")


def test_the_year_of_a_past_treatment_is_not_the_date_of_service(engine):
    a = ask(engine, "centene pt 70M RRMM, 4 prior lines, got cilta-cel in 2023 on a trial - abecma ok?")
    assert a.service_date is None or a.service_date.source == "today"
    assert lead(a).startswith("**Does not meet Centene's Abecma policy")


@pytest.mark.parametrize("question, dates", [
    ("tecartus ALL LD bsa 1.72, LD 3/3/26-3/5/26 - flu + cy units per day", "(2026-03-03, 2026-03-04, 2026-03-05)"),
    ("carvyktii LD bsa 2.05, dos 2/9/26-2/11/26 - units each day flu + cy", "(2026-02-09, 2026-02-10, 2026-02-11)"),
])
def test_ld_dates_typed_as_a_range_are_the_ld_days_not_the_infusion_day(engine, question, dates):
    a = ask(engine, question)
    assert [c.name for c in a.tool_calls] == ["lymphodepletion_plan"] and dates in lead(a)


@pytest.mark.parametrize("question, start", [
    ("abecma bag says 4.9 x10^8 car+ cells - within label?", "**490 × 10^6 cells is within the Abecma label range"),
    ("ide-cel product came back 2.6x10^8 car+ t cells, is that under the label min", "**260 × 10^6 cells is below the Abecma"),
    ("is 3.2e8 cells ok per label for a 70kg tecartus MCL pt?", "**320 × 10^6 cells is above the Tecartus (MCL) maximum of 200 × 10^6"),
])
def test_a_cell_count_in_scientific_notation_is_checked_against_the_label(engine, question, start):
    assert lead(ask(engine, question)).startswith(start)


def test_which_product_is_safer_for_a_patient_is_declined_but_a_billing_safer_is_not(engine):
    assert ask(engine, "pt has baseline tremor, is abecma safer than cilta-cel for him?").kind is AnswerKind.REFUSAL
    assert ask(engine, "is outpatient infusion safer for billing").kind is not AnswerKind.REFUSAL


def test_a_cpt_question_that_also_asks_about_payment_still_gets_the_cpt(engine):
    first = lead(ask(engine, "carvykti outpt infusion dos 2/3/26 - admin cpt + is q2056 paid separately?"))
    assert first.startswith("**38228** is the CPT code") and "Q2056 is not" not in first


# single questions whose first paragraph must start with the answer (and contain a part of it)
@pytest.mark.parametrize("question, start, part", [
    pytest.param("z code for prior auto-sct",
                 "**Z94.84**", None, id="a_prior_stem_cell_transplant_typed_as_sct_finds_the_z_code"),
    pytest.param("dr reddys cyclophosphamide 1g vial, gave 555mg rest tossed - which j code, units on admin line + jw line",
                 "**J9073: 111 unit(s)", "**J9073-JW: 89 unit(s)**", id="a_named_manufacturer_bills_its_own_cyclophosphamide_code"),
    pytest.param("abecma IP admit d/c 11/20/25, cells went in peripheral IV - what pcs code",
                 "**XW033K7**", None, id="cells_in_a_pcs_question_do_not_turn_it_into_the_q_code"),
    pytest.param("brexu-cel readmit 4/5/26 for grade 3 crs - dx code + can crs be principal",
                 "**D89.833**", "Principal vs secondary:", id="a_crs_code_question_that_asks_about_principal_gets_the_sequencing_sentence_too"),
    pytest.param("abecma IP d/c 2/14/26 cells via central line - pcs code + is q2055 paid on top of the drg",
                 "**XW043K7**", "**Inpatient: Medicare does not pay Q2055", id="a_pcs_question_that_also_asks_if_the_q_code_is_paid_gets_both_parts"),
    pytest.param("husky medicaid abecma PA fax #",
                 "My sources do not hold a state Medicaid program's policy", None, id="a_state_medicaid_program_has_no_policy_in_the_sources"),
    pytest.param("j9075 rate q1 26 + units for 600mg",
                 "**J9075: 120 unit(s)", "allowed $70.20", id="a_code_and_its_rate_with_an_amount_get_units_and_the_price"),
    pytest.param("abecma readmit d+9 crs gr 2 - can we bill j3262 separately on the IP claim",
                 "**No: on an inpatient claim J3262 (tocilizumab) is not paid separately", "within the DRG",
                 id="a_drug_on_an_inpatient_readmission_is_not_billed_separately"),
])
def test_round_7_first_paragraphs(engine, question, start, part):
    first = lead(ask(engine, question))
    assert first.startswith(start) and (part is None or part in first)


def test_one_regimen_named_in_passing_is_not_the_whole_history_and_new_lesions_are_progression(engine):
    first = lead(ask(engine, "centene abecma pt m-spike only 0.2 now but PET 5 wks after last KPd dose shows new lytic lesions - "
                             "does that meet the measurable dz criterion"))
    assert first.startswith("**Centene's Abecma policy (CP.PHAR.481), criterion 4") and ": met" in first
    assert "Does not meet" not in first


# --- round 11: a maker named in a follow-up, claim rules the sources lack, per-kg doses, compound parts
def test_a_cyclophosphamide_maker_named_in_a_follow_up_changes_the_ld_code(engine):
    conv = Conversation()
    assert "J9075 114 unit(s)/day" in lead(ask(engine, "LD for abecma pt 1.9 m2 flu 30 cy 300 x3 days, codes and units?", conv))
    first = lead(ask(engine, "we use sandoz cy, same code/units?", conv))
    assert "J9074 114 unit(s)/day, 342 total" in first and "J9075" not in first


@pytest.mark.parametrize("question, missing", [
    ("centene medicaid timely filing for car-t claims?", "timely filing"),
    ("2026 part A deductible?", "part a deductible"),
    ("whats the filing limit for carepartners abecma claims", "filing limit"),
])
def test_claim_rules_no_source_gives_are_said_to_be_missing(engine, question, missing):
    a = ask(engine, question)
    assert a.kind is AnswerKind.NOT_COVERED and a.text.startswith(f"My sources do not mention {missing}")


def test_the_part_b_deductible_assumption_still_prices_a_line(engine):
    a = ask(engine, "is the part b deductible taken out of the q2056 medicare payment dos 1/5/26?")
    assert [c.name for c in a.tool_calls] == ["payment"] and a.kind is AnswerKind.TOOL
    assert any("Part B deductible not applied" in x for x in a.tool_calls[0].result.assumptions)


@pytest.mark.parametrize("question, start", [
    ("carvykti 0.42x10^6/kg for 75 kg pt, under the min?",
     "**0.42 × 10^6/kg (31.5 × 10^6 cells at 75 kg) is below the Carvykti (MM) label range of 37.5 × 10^6 to 75 × 10^6"),
    ("tecartus MCL 2.3 x10^6 cells/kg 80kg, over max?",
     "**2.3 × 10^6/kg (184 × 10^6 cells at 80 kg) is not above the Tecartus (MCL) maximum of 200 × 10^6"),
])
def test_a_per_kg_cell_dose_is_checked_at_the_patients_weight(engine, question, start):
    assert lead(ask(engine, question)).startswith(start)


def test_an_ndc_and_payment_question_gets_both(engine):
    a = ask(engine, "carvykti NDC and payment limit q1 2026")
    first = lead(a)
    assert [c.name for c in a.tool_calls] == ["ndc", "payment"]
    assert "57894-0111-01" in first and "**Q2056 payment limit (2026Q1): $587,649.574 per unit.**" in first


def test_a_procedure_code_has_no_medicare_amount_in_the_sources(engine):
    a = ask(engine, "what does medicare allow for 38228")
    assert a.kind is AnswerKind.NOT_COVERED and a.text.startswith("My sources do not give a Medicare amount for 38228")
    first = lead(ask(engine, "abecma admin cpt + units + medicare allowed dos 1/15/26"))
    assert first.startswith("**38228**") and "My sources do not give a Medicare amount for 38228" in first
    # a CPT code asked beside "is the Q-code paid separately" asks no amount
    assert "Medicare amount" not in lead(ask(engine, "carvykti outpt infusion dos 2/3/26 - admin cpt + is q2056 paid separately?"))


@pytest.mark.parametrize("question, start", [
    ("centene abecma pt 4 prior lines triple refractory, serum FLC 250 mg/L kappa, no m-spike, meets measurable dz?",
     "**Centene's Abecma policy (CP.PHAR.481), criterion 4 (measurable disease (labs within 30 days) or progression): met"),
    ("centene abecma - pt no CNS disease but hx of seizures, is that an exclusion?",
     "**Does not meet Centene's Abecma policy (CP.PHAR.481): criterion 6 (no CNS involvement or CNS pathology) — the question says “seizures”"),
    ("carepartners abecma PA phone #",
     "**CarePartners of Connecticut's Abecma Medical Necessity Guidelines (Medicare Advantage): My sources give no phone number"),
])
def test_policy_checker_edges_flc_in_mg_per_l_a_seizure_after_no_cns_and_a_phone_number(engine, question, start):
    first = lead(ask(engine, question))
    assert first.startswith(start) and first.count("criterion 6") <= 1


def test_a_follow_up_asking_what_it_went_up_by_compares_the_threads_two_quarters(engine):
    conv = Conversation()
    ask(engine, "q2055 limit q4 2025?", conv)
    ask(engine, "and q1 26?", conv)
    a = ask(engine, "so what did it go up by", conv)
    assert [c.name for c in a.tool_calls] == ["payment_change"]
    assert lead(a).startswith("**Q2055 2026Q1 vs Q2055 2025Q4: payment limit up $763.79")


@pytest.mark.parametrize("question, tools, part", [
    ("flu 30mg/m2 x3 days bsa 1.9, what does medicare allow for the whole course dos 1/12/26", ["dose_units", "payment"],
     "**J9185 payment limit (2026Q1): $81.409 per unit.** × 6: allowed $488.45"),
    ("toci 8mg/kg 92kg pt crs, J3262 units and medicare allowed q1 2026", ["tocilizumab_dose", "payment"],
     "× 736: allowed $4,128.22"),
])
def test_a_dose_question_that_also_asks_the_allowed_amount_gets_both(engine, question, tools, part):
    a = ask(engine, question)
    assert [c.name for c in a.tool_calls] == tools and part in lead(a)


def test_a_new_member_of_another_age_in_the_thread_is_not_merged_with_the_last(engine):
    conv = Conversation()
    ask(engine, "centene medicaid pt 66F RRMM 3 prior lines (VRd, DKd, Pd) had blenrep in 2023 - ok for abecma?", conv)
    first = lead(ask(engine, "centene commercial 59yo 2 prior lines RVd then Dara-Kd, M-protein 0.3 g/dL last wk, FLC ratio "
                             "normal - measurable disease met?", conv))
    assert "blenrep" not in first and "criterion 7" not in first


def test_a_medicare_advantage_member_is_told_the_policy_does_not_cover_that_plan(engine):
    first = lead(ask(engine, "wellcare MA member needs abecma - which centene criteria apply"))
    assert first.startswith("**Centene's Abecma policy (CP.PHAR.481) does not apply to Medicare Advantage")
    assert "does not apply" not in lead(ask(engine, "carepartners MA 74M, 4 lines incl revlimid velcade darzalex, never had "
                                                    "car-t - does he meet abecma criteria"))


def test_vials_opened_in_a_follow_up_give_the_waste_line_of_the_dose_before(engine):
    conv = Conversation()
    assert "J3262 624 units" in lead(ask(engine, "actemra 8 mg/kg 78kg pt, how many units", conv))
    assert "**J3262-JW: 176 unit(s)**" in lead(ask(engine, "we opened 2x 400mg vials, whats the JW line", conv))


# --- round 12: a bare amount given, vials counted by size, billing words typed short

def test_a_bare_amount_given_next_to_a_vial_in_mg_is_the_administered_dose(engine):
    a = ask(engine, "baxter cyclophosphamide 500mg vial gave 480 dos 3/3/26, code + units")
    assert [c.name for c in a.tool_calls] == ["dose_units"]
    assert lead(a).startswith("**J9076: 96 unit(s) per date of service**") and "**J9076-JW: 4 unit(s)**" in lead(a)
    assert read_figures("pt got 4 prior lines, 500mg vial").dose_mg is None  # a count of lines is no dose
    assert read_figures("gave 480 on 3/3").dose_mg is None  # no mg anywhere: not read as mg


def test_vials_counted_by_size_are_the_vials_opened_for_the_waste_line(engine):
    conv = Conversation()
    ask(engine, "actemra 8mg/kg 105 kg", conv)
    a = ask(engine, "we opened 2 x 400mg + 1 x 200mg vials, jw?", conv)
    assert "vials: 2 × 400 mg + 1 × 200 mg" in lead(a) and "**J3262-JW: 200 unit(s)**" in lead(a)
    short = ask(engine, "toci 800mg given, opened 1 x 400mg + 1 x 200mg vials")
    assert "less than the 800 mg given" in short.text and "Traceback" not in short.text


def test_a_billing_word_typed_short_is_read_as_the_word(engine):
    conv = Conversation()
    a = ask(engine, "medicare allwd q2053 dos 12/15/25", conv)
    assert [c.name for c in a.tool_calls] == ["payment"]
    assert lead(a).startswith("**Q2053 payment limit (2025Q4): $489,304.608 per unit.**")
    assert lead(ask(engine, "and q2055?", conv)).startswith("**Q2055 payment limit (2025Q4)")


def test_a_rems_question_that_also_asks_how_long_to_stay_near_the_center_gets_both(engine):
    a = ask(engine, "abecma REMS requirements and how long does pt have to stay near the center")
    assert [c.name for c in a.tool_calls] == ["rule_on_date", "rule_on_date"]
    first = lead(a)
    assert "no REMS applies" in first and "stay near the treatment center for 2 weeks after infusion (was 4)" in first
    # the guide's outdated sentence below the current fact says it is outdated, and the note says why
    assert all("[outdated: see the note]" in line for line in a.text.splitlines() if "REMS required" in line)
    assert mark_quoted("ABECMA REMS required — only FACT-accredited centers", "ABECMA REMS required — only FACT-accredited "
                       "centers certified by BMS can dispense and administer; prescriber", dt.date(2026, 1, 5)).endswith(
        "[outdated: see the note]")
    assert "[outdated" not in mark_quoted("x", "the REMS Program requirement is no longer required.", dt.date(2026, 1, 5))
    assert any(n.startswith("Sources disagree on REMS") for n in a.notes)
    before = lead(ask(engine, "can pt drive after tecartus infusion? dos 3/10/25"))
    assert before.startswith("**For a date of service of 2025-03-10, the labels asked patients to stay within proximity") \
        and "not to drive for 8 weeks" in before
    assert "rule_on_date" not in [c.name for c in ask(engine, "readmission stay within 30 days of car-t - same DRG?").tool_calls]


def test_a_code_typed_in_an_ld_question_is_checked_on_its_date_of_service(engine):
    a = ask(engine, "carvykti LD flu 30 cy 300 x3 days bsa 1.9 - codes + units, and is J9070 still ok for DOS 6/1/24")
    assert [c.name for c in a.tool_calls] == ["lymphodepletion_plan", "code_on_date"]
    first = lead(a)
    assert "J9075 114 unit(s)/day" in first and "J9070 is not: valid through 2024-03-31" in first
    assert "2024-05-27" not in first  # the DOS is the codes' date, not the infusion (day 0)
    assert "(J9070 [retired for this date of service: see the note])" in a.text


def test_a_regimen_of_a_product_the_sources_lack_is_said_to_be_missing(engine):
    a = ask(engine, "kymriah flu/cy doses bsa 1.8")
    assert a.kind == AnswerKind.NOT_COVERED and not a.tool_calls
    assert lead(a).startswith("My sources do not give the lymphodepletion regimen for Kymriah")


@pytest.mark.parametrize("question, brand, quoted", [
    ("breyanzi CLL LD regimen + J codes", "Breyanzi", "the same cyclophosphamide dose used for Abecma and Breyanzi"),
    ("yescarta cell dose range for 80kg", "Yescarta", "Yescarta's 2.0 x 10^6"),
])
def test_a_product_without_a_guide_mentioned_in_passing_is_quoted_not_computed(engine, question, brand, quoted):
    a = ask(engine, question)
    assert a.kind == AnswerKind.NOT_COVERED and not a.tool_calls
    assert lead(a).startswith(f"**My sources have no {brand} label or billing guide, so they do not give its")
    assert any(quoted in c.quote for c in a.citations) and quoted in lead(a)


def test_a_follow_up_keeps_what_the_threads_date_was_typed_as(engine):
    conv = Conversation()
    first = lead(ask(engine, "tecartus ALL LD 62 kg 165 cm, LD starts 3/9/26 - cy mg each day?", conv))
    assert "cyclophosphamide 1,521 mg/day on day(s) -2 (2026-03-11)" in first
    again = lead(ask(engine, "and units on the cy J code", conv))
    assert "(2026-03-11) → J9075 305 unit(s)/day" in again and "2026-03-07" not in again  # still the LD start, not day 0


def test_a_date_without_a_year_in_a_follow_up_is_the_one_nearest_the_threads_date(engine):
    conv = Conversation()
    ask(engine, "tecartus MCL 5'2\" 121 lb infusion 5/20/25 - flu/cy dates + units", conv)
    assert "(2025-05-22, 2025-05-23, 2025-05-24)" in lead(ask(engine, "what if infusion is 5/27 instead", conv))
    conv = Conversation()
    ask(engine, "Q2053 DOS 3/15/25 medicare allowed", conv)
    assert lead(ask(engine, "what about 4/2", conv)).startswith("**Q2053 payment limit (2025Q2): $489,399.157 per unit.**")


def test_a_labeler_only_a_guide_gives_is_corrected_in_the_lead(engine):
    first = lead(ask(engine, "breyanzi labeler 73154 on the NDC?"))
    assert first.startswith("**No: Breyanzi's labeler is 73153 (Juno Therapeutics (BMS)), not 73154**")


def test_units_typed_with_an_allowed_question_are_priced(engine):
    a = ask(engine, "J9075 342 units DOS 12/1/25 medicare allowed + coins")
    assert [c.name for c in a.tool_calls] == ["payment"]
    assert lead(a).startswith("**J9075 payment limit (2025Q4): $0.481 per unit.** × 342: allowed $164.50")


def test_a_retired_pcs_code_quoted_beside_the_current_one_is_marked(engine):
    a = ask(engine, "IP abecma admission discharged 3/2/26 peripheral IV - PCS code + DRG")
    first = lead(a)
    assert first.startswith("**XW033K7**") and "XW033C3 [retired for this date of service: see the note]" in first
    assert any(n.startswith("Retired code: ICD-10-PCS XW033C3") for n in a.notes)


def test_a_lab_below_its_threshold_is_said_with_the_criterion_it_leaves_open(engine):
    first = lead(ask(engine, "centene abecma: 2 prior lines (VRd, Dara-Kd), urine M 150 mg/24h 10 days ago, nothing else "
                             "measurable - meets?"))
    assert "4 (measurable disease (labs within 30 days) or progression: not shown — urine M 150 mg below the threshold" in first


def test_a_line_setting_asked_as_a_choice_is_not_the_members_line_count(engine):
    a = ask(engine, "abecma - 2L or 3L+ per label? guide says 2L+")
    assert "label_check" not in [c.name for c in a.tool_calls] and "not on label" not in lead(a)
    assert any(n.startswith("Sources disagree on Abecma line of therapy") for n in a.notes)
    assert "1 prior line" in lead(ask(engine, "abecma for a pt going to 2L, ok per label?"))  # a member's setting still counts


# --- round 13 (probe 13): a remission that ended, a condition's code in a follow-up, vials without mg

def test_a_remission_that_has_ended_is_coded_as_relapse(engine):
    first = lead(ask(engine, "abecma pt chart says MM \"in remission\" from 2024 but now progressing - ok to use C90.01 as "
                             "principal on the car-t claim?"))
    assert first.startswith("**C90.02** is the ICD-10-CM code for multiple myeloma in relapse")
    assert lead(ask(engine, "abecma dx code, pt in remission")).startswith("**C90.01**")  # a remission now is still C90.01


def test_a_follow_up_asking_a_conditions_code_gets_its_diagnosis_code_not_the_products(engine):
    conv = Conversation()
    ask(engine, "readmit 11/3/26 grade 2 CRS 6 days after abecma - D89.832 as principal or secondary?", conv)
    assert lead(ask(engine, "also had ICANS grade 2 same stay, what code", conv)).startswith("**G92.02**")


def test_a_principal_or_secondary_question_gets_the_sources_rule_with_the_code_row(engine):
    first = lead(ask(engine, "readmit 11/3/26 grade 2 CRS 6 days after abecma - D89.832 as principal or secondary?"))
    assert "D89.832 = G2" in first and "Principal vs secondary:" in first


def test_vials_counted_without_mg_in_a_list_are_all_opened(engine):
    conv = Conversation()
    first = lead(ask(engine, "toci 8mg/kg 87 kg, opened 2x400 + 1x80 - J3262 units + JW", conv))
    assert "vials: 2 × 400 mg + 1 × 80 mg" in first and "**J3262-JW: 184 unit(s)**" in first
    assert "**J3262-JW: 80 unit(s)**" in lead(ask(engine, "what if she's 105 kg, same vials opened", conv))


def test_a_share_at_an_assumed_coinsurance_says_the_exact_split_is_not_known(engine):
    first = lead(ask(engine, "Q2053 line DOS 6/30/26 whats medicare paying"))
    assert first.startswith("**No file on hand gives Q2053's coinsurance percentage for 2026Q2, so the exact split is not known.**")


def test_a_what_if_in_a_label_thread_is_checked_against_the_label_again(engine):
    conv = Conversation()
    assert lead(ask(engine, "carvykti 2L: 63yo, 1 prior line DRd, len refractory - on label?", conv)).startswith("**No, not on label")
    again = ask(engine, "what if the 1 prior line was VRd, still len refractory", conv)
    assert [c.name for c in again.tool_calls] == ["label_check"] and lead(again).startswith("**Yes, on label")


def test_a_reauth_follow_up_is_the_payers_answer_not_an_admin_code(engine):
    conv = Conversation()
    ask(engine, "centene approved abecma PA 1/5/26", conv)
    a = ask(engine, "can we get continued therapy / reauth for a 2nd abecma infusion", conv)
    assert "code_on_date" not in [c.name for c in a.tool_calls] and "dosed one time only" in lead(a)


@pytest.mark.parametrize("question, modifier", [("do we need KX on Q2056 for medicare FFS", "KX"),
                                                ("need GA modifier for abecma?", "GA")])
def test_a_modifier_no_source_names_is_said_to_be_missing(engine, question, modifier):
    a = ask(engine, question)
    assert a.kind == AnswerKind.NOT_COVERED and lead(a).startswith(f"My sources do not mention the {modifier} modifier")
    assert ask(engine, "JG modifier for 340B carvykti?").kind != AnswerKind.NOT_COVERED  # JG is in the guides


def test_an_ndc_answer_gives_the_claims_n4_form_in_its_first_line(engine):
    first = lead(ask(engine, "abecma bag NDC 59572-515-02 -> 11 digit w/ N4 for FL43"))
    assert first.startswith("NDC 59572-515-02 → **59572-0515-02** (11-digit 5-4-2; on the claim: N459572051502)")


def test_a_year_and_a_bare_quarter_apart_are_that_quarter(engine):
    first = lead(ask(engine, "whats the 2025 medicare coins % for q2055 in q3"))
    assert first.startswith("**Patient coinsurance on Q2055 (2025Q3): 19.119%")
    assert ask(engine, "q2055 limit 2025").kind == AnswerKind.CLARIFY  # a year alone still asks which quarter
