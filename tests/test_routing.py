"""Planning without an index: which calculator a question reaches, with which arguments, or
what it asks back for. Runs on the real reference data only (no Chroma, no embedding model).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

import pytest

from assistant import routing
from assistant.tools import registry
from assistant.tools.component import Calculator, Number, Plan, Text, call, param
from assistant.tools.planning import Planning
from assistant.tools.result import ToolResult
from assistant.understand import read_question, resolve

TODAY = dt.date(2026, 11, 24)


def plan(text: str, previous: str | None = None) -> Plan:
    prev = read_question(previous) if previous else None
    return routing.plan(resolve(read_question(text), prev), TODAY)


def calls(text: str, previous: str | None = None) -> list[tuple[str, dict]]:
    return plan(text, previous).calls


@pytest.mark.parametrize("text, name, args", [
    ("units of J9185 for 55.5 mg", "dose_units", {"code": "J9185", "amount_mg": 55.5, "dos": "2026-11-24"}),
    ("fludarabine 30 mg/m2 at BSA 1.85 m2: how many J9185 units?", "dose_units",
     {"code": "J9185", "amount_mg": 55.5, "dos": "2026-11-24"}),
    ("cyclophosphamide 1,000 mg how many units", "dose_units", {"code": "J9075", "amount_mg": 1000.0, "dos": "2026-11-24"}),
    ("J9185 units for 55.5 mg x 3 days, 2 x 50 mg vials", "dose_units",
     {"code": "J9185", "amount_mg": 55.5, "dos": "2026-11-24", "days": 3, "vial_sizes": [50.0], "vial_counts": [2]}),
    ("cilta-cel dose for a 120 kg patient", "cell_dose", {"product": "carvykti", "weight": 120.0, "weight_unit": "kg"}),
    ("carvykti cell dose 154 lb", "cell_dose", {"product": "carvykti", "weight": 154.0, "weight_unit": "lb"}),
    ("tocilizumab dose for 70 kg", "tocilizumab_dose", {"weight": 70.0, "weight_unit": "kg"}),
    ("BSA 170 cm 70 kg", "bsa", {"height": 170.0, "height_unit": "cm", "weight": 70.0, "weight_unit": "kg"}),
    ("BSA 67 in 154 lb du bois", "bsa", {"height": 67.0, "height_unit": "in", "weight": 154.0, "weight_unit": "lb",
                                        "method": "dubois"}),
    ("carvykti lymphodepletion plan BSA 1.85 m2", "lymphodepletion_plan", {"product": "carvykti", "bsa_m2": 1.85, "dos": "2026-11-24"}),
    ("What is the Q2055 payment limit for 2026Q1?", "payment",
     {"code": "Q2055", "units": 1, "today": "2026-11-24", "quarter": "2026Q1"}),
    ("NDC 71287-219-01 to 11 digits", "ndc", {"ndc": "71287-219-01"}),
    ("cy/flu doses for carvykti", "lymphodepletion_plan", {"product": "carvykti"}),  # no patient: the label's regimen
    ("carvykti ndc", "ndc", {"ndc": "57894", "product": "carvykti"}),
])
def test_each_calculator_is_reached_with_its_arguments(text, name, args):
    assert calls(text) == [(name, args)]


@pytest.mark.parametrize("text, needs", [
    ("carvykti dose for my patient", ["weight"]),
    ("tecartus lymphodepletion plan for the patient, BSA 1.9 m2", ["indication"]),
    ("carvykti lymphodepletion units for my pt", ["bsa"]),
    ("how many J9185 units for my patient", ["amount"]),
    ("tocilizumab units for this patient", ["weight"]),
    ("BSA for 170 cm", ["height", "weight"]),
])
def test_missing_patient_figures_are_asked_back(text, needs):
    p = plan(text)
    assert p.needs == needs and p.ask_back and not p.calls


@pytest.mark.parametrize("text", [
    "carvykti target dose cells per kg",       # the rule, from the sources
    "how many doses of tocilizumab can be given",
    "What is the HCPCS code for Carvykti?",
    "Q2055 inpatient payment under the DRG",   # inpatient: paid within MS-DRG 018
])
def test_rule_questions_run_no_calculator(text):
    p = plan(text)
    assert p.calls == [] and not p.ask_back


def test_follow_up_keeps_product_and_changes_the_weight():
    assert calls("what if she weighs 58 kg?", previous="carvykti cell dose for a 120 kg patient") == [
        ("cell_dose", {"product": "carvykti", "weight": 58.0, "weight_unit": "kg"})]
    assert calls("what if she weighs 120 kg?", previous="tocilizumab dose for 70 kg pt") == [
        ("tocilizumab_dose", {"weight": 120.0, "weight_unit": "kg"})]


def test_derived_input_arithmetic_is_kept_for_the_answer():
    p = plan("fludarabine 30 mg/m2 at BSA 1.85 m2: how many J9185 units?")
    assert p.derived == ["30 mg/m² × 1.85 m² = 55.5 mg"]


def test_router_functions_stay_small():
    """The router is a loop over components; each plan function is short with few exits."""
    import inspect

    for calc in registry.calculators():
        source = inspect.getsource(calc.plan)
        assert len(source.splitlines()) <= 40, calc.name
        assert len(re.findall(r"^\s+return\b", source, re.M)) <= 7, calc.name


# --- a new calculator is one component --------------------------------------------------------

def toy_double(amount: Annotated[Number, param("An amount to double", label="Amount", example=21)],
               note: Annotated[Text, param("A note shown with the result", label="Note")] = "") -> ToolResult:
    """A toy pure function: the component wraps it."""
    return ToolResult(name="toy_double", inputs={"amount": str(amount), "note": note}, values={"double": amount * 2},
                      summary=f"**{amount * 2}** {note}".strip(), formula=f"{amount} × 2 = {amount * 2}")


def _toy_plan(p: Planning) -> Plan | None:
    m = re.search(r"\btoy widget (\d+)\b", p.text)
    return call("toy_double", {"amount": int(m.group(1))}) if m else None


TOY = Calculator(name="toy_double", title="Toy doubler", description="Doubles an amount (a test component).",
                 compute=toy_double, plan=_toy_plan, priority=1,
                 supports=lambda text, products, args, ref: "double" in text)


@pytest.fixture()
def toy():
    with registry.registered(TOY) as calc:
        yield calc


def test_a_toy_component_appears_in_router_tools_and_forms_with_no_other_edit(toy):
    from assistant.webui_calculators import forms

    # the router
    assert calls("double the toy widget 21 please") == [("toy_double", {"amount": 21})]
    # the engine's entry point and its validation
    assert registry.run_tool("toy_double", amount="21").values["double"] == 42
    with pytest.raises(registry.CalcError, match="toy_double needs amount"):
        registry.run_tool("toy_double")
    # the LLM's FunctionTools, with the parameter descriptions
    tools = {t.metadata.name: t for t in registry.function_tools()}
    schema = tools["toy_double"].metadata.get_parameters_dict()
    assert schema["properties"]["amount"]["description"] == "An amount to double"
    assert schema["required"] == ["amount"]
    assert tools["toy_double"].call(amount=4).raw_output.values["double"] == 8
    # the Calculators tab
    form = next(f for f in forms() if f.name == "toy_double")
    assert [(f.name, f.label, f.kind, f.value) for f in form.fields] == [
        ("amount", "Amount", "number", 21), ("note", "Note", "text", None)]


def test_without_the_toy_nothing_claims_its_question():
    assert registry.get("toy_double") is None
    assert calls("double the toy widget 21 please") == []


@pytest.mark.parametrize("text, days", [
    ("fludarabine 55.5 mg daily x3 units J9185", 3),
    ("cy 555 mg days -5 to -3, total J9075 units?", 3),
    ("flu 55.5 mg on days -4, -3, -2 how many J9185 units total", 3),
    ("J9185 units for 55.5 mg for 3 days", 3),
])
def test_the_number_of_days_is_read_the_way_coders_write_it(text, days):
    (name, args), = calls(text)
    assert name == "dose_units" and args["days"] == days


def test_a_payment_question_that_says_per_dose_is_not_a_cell_dose_question():
    (name, args), = calls("abecma medicare payment per dose DOS 2/3/2026")
    assert name == "payment" and args["code"] == "Q2055" and args["dos"] == "2026-02-03"
