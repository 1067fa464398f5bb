"""Which calculator a question needs, with which arguments, or what to ask back for.

Each calculator component says how it is planned from an understood question
(`Calculator.plan`); the router asks them in their declared order and the first that claims the
question decides: calls to make, a question back for a missing figure, or "answer from the
sources". Adding a calculator needs no change here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from assistant.core.question import Question
from assistant.tools.component import Plan
from assistant.tools.planning import Planning
from assistant.tools.registry import calculators

__all__ = ["Plan", "plan"]


def plan(q: Question, today: dt.date) -> Plan:
    """The calculator calls a resolved question needs (possibly none)."""
    context = Planning(q, today)
    if context.dosing_unknown:
        return Plan()  # the answer says the sources do not give that product's regimen
    for calc in calculators():
        if calc.plan is not None and (decision := calc.plan(context)) is not None:
            return _joined(context, calc.name, decision)
    return Plan()


def _joined(context: Planning, first: str, decision: Plan) -> Plan:
    """A compound question ("carvykti NDC and payment limit q1 26"): each calculator that joins the
    one that claimed it adds its own calls for its part of the question."""
    if not decision.calls:
        return decision
    for calc in calculators():
        made = {name for name, _args in decision.calls}
        if first not in calc.joins or calc.name in made or calc.plan is None:
            continue
        extra = calc.plan(context)
        if extra is not None and extra.calls and (calc.joins_with is None or calc.joins_with(context, decision, extra)):
            # its own calls only: the first answer already gives what its helper steps would (the units)
            own = [c for c in extra.calls if c[0] == calc.name]
            decision = replace(decision, calls=[*decision.calls, *own])
    return decision
