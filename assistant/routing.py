"""Which calculator a question needs, with which arguments, or what to ask back for.

Each calculator component says how it is planned from an understood question
(`Calculator.plan`); the router asks them in their declared order and the first that claims the
question decides: calls to make, a question back for a missing figure, or "answer from the
sources". Adding a calculator needs no change here.
"""

from __future__ import annotations

import datetime as dt

from assistant.core.question import Question
from assistant.tools.component import Plan
from assistant.tools.planning import Planning
from assistant.tools.registry import calculators

__all__ = ["Plan", "plan"]


def plan(q: Question, today: dt.date) -> Plan:
    """The calculator calls a resolved question needs (possibly none)."""
    context = Planning(q, today)
    for calc in calculators():
        if calc.plan is not None and (decision := calc.plan(context)) is not None:
            return decision
    return Plan()
