"""CAR-T cell dose: the target range in cells for a product and indication, caps applied.

Billing does not depend on it (the Q-code is always 1 unit), but clerks check the chain-of-
identity label against it; where the sources disagree on the range, both are shown with quotes.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from assistant.core.reference import Reference, get_reference
from assistant.core.scenario import dose_cells_in, dose_per_kg_in, dose_range_in
from assistant.tools._dosing import product_rules
from assistant.tools._inputs import fmt, weight_kg
from assistant.tools.component import Calculator, IndicationParam, Number, Numbers, Plan, Text, WeightUnit, ask, call, param
from assistant.tools.planning import Planning, backed_by
from assistant.tools.result import ToolResult, cite
from assistant.tools.units import code_citation

MILLION = Decimal(1_000_000)


def cells_text(cells: Decimal | int) -> str:
    """'60 × 10^6' style (the unit the labels and guides use)."""
    return f"{fmt((Decimal(cells) / MILLION).quantize(Decimal('0.01')).normalize())} × 10^6"


def cell_dose(product: Annotated[Text, param("Product name or HCPCS", label="Product", example="Carvykti",
                                             choices="products")],
              indication: IndicationParam = None,
              weight: Annotated[Number, param("Weight (kg unless weight_unit='lb'); not needed for Abecma",
                                              label="Weight", example=120)] = None,
              weight_unit: WeightUnit = "kg",
              dose_cells: Annotated[Number, param("A cell count to check against the range (e.g. from the product's "
                                                  "label)", label="Cells to check (optional)", example=450000000)] = None,
              range_cells: Annotated[Numbers, param("A stated range to check against the label's, as [min, max] cells "
                                                    "('guide says 150-450 x10^6')", form=False)] = None,
              dose_per_kg: Annotated[Number, param("A per-kg dose to check, in cells per kg ('0.42 x10^6/kg' is "
                                                   "420000); needs the weight", form=False)] = None,
              reference: Reference | None = None) -> ToolResult:
    """Target CAR-positive T-cell dose range (cells) and the Q-code billing (always 1 unit); with
    `dose_cells`, whether that count is inside the range."""
    ref = get_reference(reference)
    prod, ind, rules = product_rules(product, indication, ref)
    rule = rules.get("cell_dose") or {}
    label = rule.get("label") or {}
    code = prod.hcpcs
    citations = [cite(f"dosing.yaml#{prod.id}.{ind}.cell_dose.label", "FDA label dose", str(label.get("cite", "")))]
    code_row = ref.code(code) if code else None
    if code_row:
        citations.append(code_citation(code, code_row))
    warnings: list[str] = []
    assumptions: list[str] = []
    values: dict = {"product": prod.id, "indication": ind, "hcpcs": code, "units": 1, "basis": rule.get("basis")}
    billing = f"Bill {code} × 1 unit (one therapeutic dose, whatever the cell count)."

    if rule.get("basis") == "flat":
        lo, hi = Decimal(label["min_cells"]), Decimal(label["max_cells"])
        values.update({"min_cells": lo, "max_cells": hi})
        ranges = [{"source": "label", "min_cells": lo, "max_cells": hi}]
        for src in rule.get("sources") or []:
            ranges.append({"source": f"doc:{src['doc']}", "min_cells": Decimal(src["min_cells"]), "max_cells": Decimal(src["max_cells"])})
            citations.append(cite(f"doc:{src['doc']}", src.get("section", ""), src["quote"]))
            if (Decimal(src["min_cells"]), Decimal(src["max_cells"])) != (lo, hi):
                warnings.append(f"⚠ Sources disagree: {src['doc']} says {cells_text(src['min_cells'])} to "
                                f"{cells_text(src['max_cells'])} (\"{src['quote']}\"); the label says {cells_text(lo)} to "
                                f"{cells_text(hi)}. {src.get('note', '')}".strip())
        values["ranges"] = ranges
        if weight not in (None, ""):
            assumptions.append(f"{prod.brand} is a flat dose, not weight-based: the weight given is not used.")
        summary = f"**{prod.brand}: {cells_text(lo)} to {cells_text(hi)} CAR-positive T cells (flat dose, label)** — {billing}"
        formula = f"Flat range per label: {fmt(lo)} to {fmt(hi)} cells (not per kg)"
    else:
        w = weight_kg(weight, weight_unit)
        per_lo, per_hi = Decimal(label["min_per_kg"]), Decimal(label["max_per_kg"])
        cap = Decimal(label["cap_cells"])
        raw_lo, raw_hi = per_lo * w, per_hi * w
        lo, hi = min(raw_lo, cap), min(raw_hi, cap)
        capped = raw_hi > cap
        values.update({"weight_kg": w, "per_kg_min": per_lo, "per_kg_max": per_hi, "cap_cells": cap,
                       "uncapped_min_cells": raw_lo, "uncapped_max_cells": raw_hi,
                       "min_cells": lo, "max_cells": hi, "capped": capped})
        per = cells_text(per_lo) if per_lo == per_hi else f"{fmt((per_lo / MILLION).normalize())}-{cells_text(per_hi)}"
        formula = (f"{per}/kg × {fmt(w.quantize(Decimal('0.01')).normalize())} kg = "
                   + (cells_text(raw_hi) if per_lo == per_hi else f"{cells_text(raw_lo)} to {cells_text(raw_hi)}")
                   + f"; cap {cells_text(cap)}" + (" → capped" if capped else " (under the cap)"))
        target = cells_text(hi) if lo == hi else f"{cells_text(lo)} to {cells_text(hi)}"
        # the maximum is part of the dose rule a coder checks the bag against: said either way
        capped_text = f" (capped at {cells_text(cap)}, the maximum)" if capped else f" (maximum {cells_text(cap)})"
        summary = f"**{prod.brand} ({ind.upper()}): {target} CAR-positive T cells{capped_text}** — {billing}"
        if w != Decimal(str(weight)):
            assumptions.append(f"Weight converted at 1 lb = 0.45359237 kg: {fmt(w.quantize(Decimal('0.01')))} kg.")
        for src in rule.get("sources") or []:
            citations.append(cite(f"doc:{src['doc']}", src.get("section", ""), src["quote"]))
            if (Decimal(src["min_per_kg"]), Decimal(src["max_per_kg"]), Decimal(src["cap_cells"])) != (per_lo, per_hi, cap):
                warnings.append(f"⚠ {src['doc']} gives a different dose rule: \"{src['quote']}\".")
    name = prod.brand + (f" ({ind.upper()})" if rule.get("basis") != "flat" else "")
    if dose_per_kg not in (None, "") and weight not in (None, ""):  # "0.42x10^6/kg for 75 kg": the count it gives
        summary, formula = _per_kg_checked(Decimal(str(dose_per_kg)), weight_kg(weight, weight_unit), values, name,
                                           summary, formula)
    else:
        summary, formula = _checked(range_cells, dose_cells, values, name, summary, formula)
    return ToolResult(name="cell_dose",
                      inputs={"product": str(product), "indication": indication,
                              "weight": None if weight is None else str(weight), "weight_unit": weight_unit,
                              "dose_cells": None if dose_cells is None else str(dose_cells),
                              **({"dose_per_kg": str(dose_per_kg)} if dose_per_kg not in (None, "") else {})},
                      values=values, summary=summary, formula=formula,
                      assumptions=[*assumptions, "The actual cell count is on the product's chain-of-identity label / "
                                   "certificate of analysis; the claim carries 1 unit regardless."],
                      warnings=warnings, citations=citations)


def _check(cells: Decimal, values: dict, name: str, summary: str, formula: str) -> tuple[str, str]:
    """A given cell count against the range: the verdict leads the range (values gain it)."""
    lo, hi = values["min_cells"], values["max_cells"]
    if lo == hi and values.get("cap_cells"):  # a per-kg target dose with a maximum (Tecartus): no range to be within
        cap = values["cap_cells"]
        over = cells > cap
        values.update({"dose_cells": cells, "in_range": None, "above_maximum": over})
        verdict = (f"is above the {name} maximum of {cells_text(cap)}" if over
                   else f"is not above the {name} maximum of {cells_text(cap)}; the label dose for this weight is {cells_text(hi)}")
        return (f"**{cells_text(cells)} cells {verdict} CAR-positive T cells.** " + summary.replace("**", ""),
                formula + f"; {fmt(cells)} cells vs the maximum {fmt(cap)} → {'above' if over else 'not above'}")
    where = "below" if cells < lo else "above" if cells > hi else "within"
    values.update({"dose_cells": cells, "in_range": where == "within"})
    return (f"**{cells_text(cells)} cells is {where} the {name} label range of {cells_text(lo)} to {cells_text(hi)} "
            "CAR-positive T cells.** " + summary.replace("**", ""),
            formula + f"; {fmt(cells)} cells vs {fmt(lo)}–{fmt(hi)} → {where}")


def _per_kg_checked(per_kg: Decimal, w: Decimal, values: dict, name: str, summary: str, formula: str) -> tuple[str, str]:
    """A per-kg dose the question gives: the cells it makes at this weight, checked like a count;
    the lead names the per-kg dose as typed."""
    cells = per_kg * w
    kg = fmt(w.quantize(Decimal("0.01")).normalize())
    values["dose_per_kg"] = per_kg
    summary, formula = _check(cells, values, name, summary,
                              formula + f"; stated {cells_text(per_kg)}/kg × {kg} kg = {cells_text(cells)} cells")
    return summary.replace(f"**{cells_text(cells)} cells", f"**{cells_text(per_kg)}/kg ({cells_text(cells)} cells at {kg} kg)", 1), formula


def _checked(range_cells, dose_cells, values: dict, name: str, summary: str, formula: str) -> tuple[str, str]:
    """A stated range or a cell count checked against the label's range, the verdict first."""
    if range_cells and len(range_cells) == 2:
        return _check_range([Decimal(str(x)) for x in range_cells], values, name) + " " + summary, formula
    if dose_cells not in (None, ""):
        return _check(Decimal(str(dose_cells)), values, name, summary, formula)
    return summary, formula


def _check_range(stated: list[Decimal], values: dict, name: str) -> str:
    """A stated range against the label's: yes, or no with the label's range."""
    lo, hi = values["min_cells"], values["max_cells"]
    values["stated_range"] = stated
    if (stated[0], stated[1]) == (lo, hi):
        return f"**Yes: {cells_text(lo)} to {cells_text(hi)} CAR-positive T cells is the {name} label range.**"
    return (f"**No: the {name} label range is {cells_text(lo)} to {cells_text(hi)} CAR-positive T cells, not "
            f"{cells_text(stated[0])} to {cells_text(stated[1])}.**")


# --- the component ------------------------------------------------------------------------
_DOSE_WORD = re.compile(r"\bdos(?:e|ing)\b", re.I)
_TOPIC = re.compile(r"x ?10|cells|dose", re.I)


def _plan(p: Planning) -> Plan | None:
    """Per-kg products need the weight, Tecartus the indication; without a patient the rule is
    quoted from the sources."""
    product = p.dosing_product()
    # "payment per dose", "units": the word dose alone does not make a cell-dose question
    other_topic = {"lymphodepletion", "tocilizumab", "units", "payment"} & set(p.q.intents)
    # "abecma 600M cells ok?": a count to check ("Q2055 desc - 460M or 510M" asks the code's descriptor)
    stated = None if re.search(r"\bdesc", p.text, re.I) else dose_range_in(p.text)
    per_kg = dose_per_kg_in(p.text)
    counted = None if re.search(r"\bdesc", p.text, re.I) or stated or per_kg else dose_cells_in(p.text)
    if not product or not (p.has("cell_dose") or counted or stated or per_kg or (_DOSE_WORD.search(p.text) and not other_topic)) \
            or (p.asks_coverage and not (counted or stated or per_kg)):  # "how do we get reauth for another dose"
        return None
    inds = p.indications(product)
    indication = p.q.indication if p.q.indication in inds else None
    if indication is None and len(inds) > 1:
        if not p.about_patient:
            return Plan()
        return ask(["indication"], f"Which indication ({' or '.join(i.upper() for i in inds)})? The cell dose differs.")
    rule = p.ref.indications(product).get(indication or (inds[0] if inds else ""), {})
    weight = p.weight_args()
    if (rule.get("cell_dose") or {}).get("basis") == "per_kg" and not weight:
        if not p.about_patient:
            return Plan()  # the per-kg rule itself, quoted from the sources
        return ask(["weight"], "The cell dose is per kg of body weight: what does the patient weigh (kg or lb)?")
    return call("cell_dose", {"product": product, **({"indication": indication} if indication else {}), **weight,
                              **({"dose_cells": counted} if counted else {}), **({"range_cells": list(stated)} if stated else {}),
                              **({"dose_per_kg": float(per_kg)} if per_kg and weight else {})})


CALCULATOR = Calculator(
    name="cell_dose", title="CAR-T cell dose", priority=40, compute=cell_dose, plan=_plan,
    description="Target CAR-T cell dose range (cells) for a product, indication and weight, caps applied; the "
                "claim carries 1 unit of the Q-code.",
    supports=backed_by(_TOPIC, product=True),
    supersedes=frozenset({"abecma-dose"}),  # the result shows the guide's range beside the label's
)
