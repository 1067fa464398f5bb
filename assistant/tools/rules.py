"""The billing rule in force on a date of service: the CAR-T REMS (until the FDA eliminated it on
June 26, 2025) and the labels' stay-near-the-center and driving periods (shortened that day), the JZ
modifier (required from July 1, 2023).

A coder working an older claim needs the rule of that date, not today's: a March 2025 infusion
was under the REMS, a July 2025 one was not. The rules and their dates are reference data
(`sources/reference/rules.yaml`, each cited); this component only compares dates.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from assistant.core.reference import Reference, get_reference, iso_date
from assistant.tools._inputs import to_date
from assistant.tools.component import Calculator, IsoDate, Plan, Text, call, param
from assistant.tools.errors import CalcError
from assistant.tools.planning import Planning, backed_by
from assistant.tools.result import ToolResult, cite


def rule_on_date(
        rule: Annotated[Text, param("The rule: rems, proximity, jw-jz or sequestration", label="Rule", example="rems",
                                choices=["rems", "proximity", "jw-jz", "sequestration"])],
        dos: Annotated[IsoDate, param("Date of service (YYYY-MM-DD)", label="Date of service (YYYY-MM-DD)",
                                      example="2025-03-14")],
        period: Annotated[Text, param("The date as the question gave it when it is a month, quarter or year "
                                      "('today' when the question gives none)",
                                      form=False)] = None,
        waste: Annotated[Text, param("For JW/JZ: 'none' (whole vial used) or 'some' (drug discarded), when the question says",
                                     form=False)] = None,
        reference: Reference | None = None) -> ToolResult:
    """Whether a dated rule applied on `dos`, with the date it changed."""
    ref = get_reference(reference)
    row = next((r for r in ref.rules if r.get("id") == str(rule).strip().lower()), None)
    if row is None:
        raise CalcError(f"There is no dated rule '{rule}'. Known: {', '.join(r['id'] for r in ref.rules)}.", field="rule")
    day = to_date(dos, "dos")
    if row.get("standing"):  # a rule without dates: the same on any date
        return ToolResult(name="rule_on_date", inputs={"rule": row["id"], "dos": day.isoformat(), "period": period},
                          values={"rule": row["id"], "dos": day.isoformat(), "applies": True, "supersedes": False},
                          summary=f"**{row['standing']}.**", formula=f"{row['topic']}: a standing rule (no date bounds)",
                          citations=[cite(f"rules#{row['id']}", row["topic"], row.get("cite", ""))])
    start, end = iso_date(row.get("in_force_from")), iso_date(row.get("in_force_until"))
    applies = (start is None or day >= start) and (end is None or day <= end)
    state = row["while_in_force"] if applies else (row.get("after") if end and day > end else row.get("before_in_force"))
    if period == "today":  # no date of service given
        summary = f"**As of today ({day.isoformat()}), {state}**: {row['change']}."
    else:
        when = f"in {period}" if period else f"of {day.isoformat()}"
        summary = f"**For a date of service {when}, {state}**: {row['change']}."
    if applies and waste in ("none", "some") and row.get("on_" + waste):
        summary = f"**{row['on_' + waste]}** " + summary  # the modifier this line takes leads
    after = row.get("after_short", "does not apply") if end and day > end else "does not apply"
    bounds = f"in force {start.isoformat() if start else '…'} to {end.isoformat() if end else '…'}"
    return ToolResult(
        name="rule_on_date", inputs={"rule": row["id"], "dos": day.isoformat(), "period": period},
        values={"rule": row["id"], "dos": day.isoformat(), "applies": applies,
                "in_force_from": start, "in_force_until": end,
                "changed_on": (end + timedelta(days=1)) if end else start,
                # for a date the user gave, the answer says which side held then; for today, the
                # sources that still call the rule current keep their "outdated" note
                "supersedes": period != "today"},
        summary=summary, formula=f"{row['topic']}: {bounds}; {day.isoformat()} → {'applies' if applies else after}",
        citations=[cite(f"rules#{row['id']}", row["topic"], row.get("cite", ""))])


# --- the component ------------------------------------------------------------------------
_TOPIC = re.compile(r"REMS|JW|JZ|modifier", re.I)
_NO_WASTE = re.compile(r"whole (?:vial|bag)|entire (?:vial|bag)|all of (?:it|the vial)|no waste|nothing (?:was )?(?:wasted|discarded)|"
                       r"none (?:was )?(?:wasted|discarded)|\bzero waste|used (?:it )?all", re.I)
_WASTE = re.compile(r"\bwasted?\b|\bdiscard(?:ed)?\b|left over|leftover|partial vial", re.I)


def _plan(p: Planning) -> Plan | None:
    """A question about a dated rule with a date of service the user gave."""
    d = p.q.service_date
    f = p.q.figures
    if f.dose_mg is not None or (f.mg_per_kg and f.weight_kg) or (f.mg_per_m2 and f.bsa_m2):
        return None  # an amount to bill (or a dose to work out) is the units calculator's question (it states JW/JZ too)
    rows = [r for r in p.ref.rules if re.search(r.get("when", "$^"), p.text, re.I)]
    row = rows[0] if rows else None
    waste = "none" if _NO_WASTE.search(p.text) else "some" if _WASTE.search(p.text) else None
    undated = d is None or d.source == "today"
    # a rule that has ended ("is REMS still required?") is answered for today: the guides still say it applies
    if row is not None and row.get("standing"):  # the same on any date; with a product to price, payment's amounts say it
        return None if p.product_codes() or p.q.follows else call("rule_on_date", {"rule": row["id"], "dos": p.today.isoformat(),
                                                                                   "period": "today"})
    # "REMS requirements and how long does pt stay near the center": each dated rule asked
    rows = [r for r in rows if not r.get("standing") and (not undated or waste is not None or r.get("in_force_until"))]
    if not rows:
        return None
    plan = Plan()
    for row in rows:
        args = {"rule": row["id"], "dos": (p.today if undated else d.day).isoformat()}
        if undated:
            args["period"] = "today"
        elif d.precision != "day":
            args["period"] = d.label()
        if waste and row.get("on_" + waste):
            args["waste"] = waste
        plan.calls.append(("rule_on_date", args))
    return plan


CALCULATOR = Calculator(
    name="rule_on_date", title="Rule in force on a date", priority=15, compute=rule_on_date, plan=_plan,
    description="Whether a billing rule that changed on a date (the CAR-T REMS, the stay-near-the-center and driving "
                "periods, the JZ modifier) applied on a date of service, with the date it changed.",
    supports=backed_by(_TOPIC),
    supersedes=frozenset({"rems"}),  # the dated answer states which side was in force on the date
)
