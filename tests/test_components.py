"""Checks generated from the registry: every calculator component, present or future, is held to
the same contract (described parameters, a schema that matches its function, a form, a working
example, clerk-readable errors, a plan that ignores other questions)."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant.tools import registry
from assistant.tools.component import Calculator
from assistant.tools.errors import CalcError
from assistant.tools.planning import Planning
from assistant.tools.result import ToolResult
from assistant.understand import read_question
from assistant.webui_calculators import form_for

CALCULATORS = registry.calculators()


def test_the_calculators_are_found_in_router_order():
    assert [c.name for c in CALCULATORS] == ["payer_policy", "label_check", "ndc", "rule_on_date", "tocilizumab_dose", "lymphodepletion_plan",
                                             "cell_dose", "code_on_date", "dose_units", "bsa", "payment_change", "payment"]


@pytest.mark.parametrize("calc", CALCULATORS, ids=lambda c: c.name)
def test_parameters_are_described_once_and_the_schema_matches(calc: Calculator):
    assert calc.description and calc.title
    schema = calc.json_schema()
    assert set(schema["properties"]) == {p.name for p in calc.parameters}
    assert set(schema.get("required", [])) == {p.name for p in calc.parameters if p.required}
    for p in calc.parameters:
        assert p.description and p.label, (calc.name, p.name)
        assert schema["properties"][p.name]["description"] == p.description


@pytest.mark.parametrize("calc", CALCULATORS, ids=lambda c: c.name)
def test_the_form_runs_with_its_example_values(calc: Calculator):
    form = form_for(calc)
    args = {f.name: f.value if not isinstance(f.value, tuple) else f.value[1] for f in form.fields if f.value is not None}
    result = registry.run_tool(calc.name, **args)
    assert isinstance(result, ToolResult) and result.name == calc.name and result.summary and result.formula


@pytest.mark.parametrize("calc", CALCULATORS, ids=lambda c: c.name)
def test_bad_arguments_are_clerk_readable_errors(calc: Calculator):
    with pytest.raises(CalcError, match="has no parameter"):
        registry.run_tool(calc.name, not_a_parameter=1)
    required = [p for p in calc.parameters if p.required]
    if required:
        with pytest.raises(CalcError, match=f"{calc.name} needs {required[0].name}"):
            registry.run_tool(calc.name)
    else:  # every input optional (tocilizumab without a weight: the label's rule)
        assert registry.run_tool(calc.name).summary
    first = (required or calc.parameters)[0]
    with pytest.raises(CalcError) as bad_type:
        registry.run_tool(calc.name, **{first.name: {"a": 1}})
    assert bad_type.value.field == first.name


@pytest.mark.parametrize("calc", CALCULATORS, ids=lambda c: c.name)
def test_a_plan_leaves_other_questions_alone(calc: Calculator):
    for text in ("Which boxed warnings does the Abecma label carry?", "hello there"):
        assert calc.plan(Planning(read_question(text), dt.date(2026, 11, 24))) is None, (calc.name, text)
