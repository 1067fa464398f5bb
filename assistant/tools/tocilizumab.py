"""Tocilizumab (Actemra, J3262) dose for CRS: mg per dose by weight with the 800 mg cap, units,
the dosing limits, and optionally the vials opened and the discarded amount for a JW line.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from assistant.core.reference import Code, Reference, get_reference
from assistant.tools._inputs import ceil_units, fmt, plain, to_decimal_list, weight_kg
from assistant.tools.component import (
    VIAL_COUNTS_DOC,
    VIAL_COUNTS_LABEL,
    VIAL_LABEL,
    Calculator,
    Number,
    Numbers,
    Plan,
    WeightUnit,
    Whole,
    ask,
    call,
    param,
)
from assistant.tools.planning import Planning, backed_by
from assistant.tools.result import ToolResult, cite
from assistant.tools.units import billed_verdict, code_citation, opened_vials, unit_size, waste_lines, waste_text


def tocilizumab_dose(weight: Annotated[Number, param("Weight (kg unless weight_unit='lb'); none for the label's rule",
                                                     label="Weight", example=70)] = None,
                     weight_unit: WeightUnit = "kg",
                     vial_sizes: Annotated[Numbers, param("Vial sizes in mg, e.g. [80, 200, 400]", label=VIAL_LABEL,
                                                          example="80, 200, 400")] = None,
                     ordered_mg_per_kg: Annotated[Number, param("The mg/kg the question or order gives, to compare with the "
                                                                "label dose", label="Ordered mg/kg (optional)")] = None,
                     billed_units: Annotated[Whole, param("J3262 units on a claim line to check", form=False)] = None,
                     vial_counts: Annotated[Numbers, param(VIAL_COUNTS_DOC, label=VIAL_COUNTS_LABEL)] = None,
                     reference: Reference | None = None) -> ToolResult:
    """mg per CRS dose (8 mg/kg ≥30 kg, 12 mg/kg <30 kg, max 800 mg) and J3262 units."""
    ref = get_reference(reference)
    rule = ref.dosing.get("tocilizumab") or {}
    label = rule.get("label") or {}
    code = rule.get("hcpcs", "J3262")
    row = ref.code(code) or Code(code=code, system="HCPCS", unit_value=Decimal(1), unit_kind="mg")
    size, _ = unit_size(row)
    if weight in (None, ""):
        return _label_rule(label, code, row, size)
    w = weight_kg(weight, weight_unit)
    threshold = Decimal(str(label.get("weight_threshold_kg", "30")))
    per_kg = Decimal(str(label["mg_per_kg_30kg_or_more"] if w >= threshold else label["mg_per_kg_under_30kg"]))
    cap = Decimal(str(label.get("max_mg_per_dose", "800")))
    raw = per_kg * w
    dose = min(raw, cap)
    capped = raw > cap
    units = ceil_units(dose, size)
    sizes = to_decimal_list(vial_sizes, "vial_sizes", "vial sizes")
    wshow = fmt(w.quantize(Decimal("0.01")).normalize())
    values: dict = {"weight_kg": w, "mg_per_kg": per_kg, "uncapped_mg": raw, "dose_mg": dose, "capped": capped,
                    "cap_mg": cap, "hcpcs": code, "units_per_dose": units,
                    "min_hours_between_doses": label.get("min_hours_between_doses"),
                    "max_doses_24h": label.get("max_doses_24h"), "max_doses_total": label.get("max_doses_total")}
    assumptions = [f"{fmt(per_kg)} mg/kg because the patient weighs {'30 kg or more' if w >= threshold else 'under 30 kg'}."]
    if sizes:
        lines, notes = waste_lines(code, dose, units, size, "mg", sizes, opened_vials(vial_sizes, vial_counts))
        values["waste_per_dose"] = lines
        assumptions.extend(notes)
    else:
        assumptions.append("No vial sizes given (Actemra IV comes in 80, 200 and 400 mg vials): JW/JZ not worked out.")
    limits = (f"at least {label.get('min_hours_between_doses')} h apart; at most {label.get('max_doses_24h')} doses in 24 h "
              f"and {label.get('max_doses_total')} in total")
    warnings = []
    summary_note = ""
    if ordered_mg_per_kg is not None and Decimal(ordered_mg_per_kg) != per_kg:
        ordered = Decimal(ordered_mg_per_kg)
        summary_note = (f" — the label dose for this weight is {fmt(per_kg)} mg/kg, not the {fmt(ordered)} mg/kg asked; "
                        f"at {fmt(ordered)} mg/kg it would be {fmt(min(ordered * w, cap))} mg (check the order)")
        warnings.append(f"⚠ {fmt(ordered)} mg/kg was given; the FDA label dose for CRS is {fmt(per_kg)} mg/kg for this weight.")
    for src in rule.get("sources") or []:
        if src.get("note"):
            warnings.append(f"{src['doc']} says \"{src['quote']}\" — {src['note']}")
    citations = [cite("dosing.yaml#tocilizumab.label", "FDA Actemra label (CRS)", str(label.get("cite", ""))),
                 code_citation(code, row)]
    citations += [cite(f"doc:{s['doc']}", s.get("section", ""), s["quote"]) for s in rule.get("sources") or []]
    return ToolResult(
        name="tocilizumab_dose",
        inputs={"weight": str(weight), "weight_unit": weight_unit, "vial_sizes": [plain(s) for s in sizes] or None,
                "ordered_mg_per_kg": str(ordered_mg_per_kg) if ordered_mg_per_kg is not None else None,
                "vial_counts": [int(c) for c in vial_counts] if vial_counts else None},
        values=values,
        summary=billed_verdict(code, None if billed_units in (None, "") else int(billed_units), units,
                               f"a {fmt(dose)} mg dose")
                + f"**Tocilizumab {fmt(dose)} mg per dose → {code} {units} units per dose**{summary_note}"
                + (waste_text(code, values["waste_per_dose"]) if sizes else "")
                + (" (capped at 800 mg)" if capped else "") + f"; {limits}",
        formula=f"{fmt(per_kg)} mg/kg × {wshow} kg = {fmt(raw)} mg" + (f" → cap {fmt(cap)} mg" if capped else f" (under the {fmt(cap)} mg cap)")
                + f"; {fmt(dose)} mg ÷ {fmt(size)} mg per unit = {units} units",
        assumptions=assumptions, warnings=warnings, citations=citations)


def _label_rule(label: dict, code: str, row: Code, size: Decimal) -> ToolResult:
    """No weight given: the label's dosing rule itself, with the code's unit."""
    threshold = label.get("weight_threshold_kg", 30)
    summary = (f"**Tocilizumab for CRS (FDA label): {label['mg_per_kg_30kg_or_more']} mg/kg IV for patients "
               f"{threshold} kg or more, {label['mg_per_kg_under_30kg']} mg/kg under {threshold} kg; at most "
               f"{label.get('max_mg_per_dose', 800)} mg per dose; at least {label.get('min_hours_between_doses')} h apart; "
               f"at most {label.get('max_doses_24h')} doses in 24 h and {label.get('max_doses_total')} in total.** "
               f"{code} is {fmt(size)} mg per unit; give the weight for the mg and units of a dose.")
    return ToolResult(name="tocilizumab_dose", inputs={"weight": None}, values={"rule": dict(label), "hcpcs": code},
                      summary=summary, formula="the label's rule (no weight given)",
                      citations=[cite("dosing.yaml#tocilizumab.label", "FDA Actemra label (CRS)", str(label.get("cite", ""))),
                                 code_citation(code, row)])


# --- the component ------------------------------------------------------------------------
_HOW_MANY_DOSES = re.compile(r"how many doses|max(?:imum)? (?:number of )?doses", re.I)
_TOPIC = re.compile(r"tocilizumab|actemra|J3262", re.I)


def _plan(p: Planning) -> Plan | None:
    """A tocilizumab dose needs the weight; 'how many doses' is the rule, from the sources."""
    f = p.q.figures
    if not (p.has("tocilizumab") and p.wants_number and f.dose_mg is None) or _HOW_MANY_DOSES.search(p.text) \
            or p.asks_unit_size:
        return None
    args = p.weight_args()
    if not args:
        if not p.about_patient and not p.says_units:
            return call("tocilizumab_dose", {})  # the label's rule itself
        return ask(["weight"], "To work out the tocilizumab dose and J3262 units I need the patient's weight (kg or lb).")
    args.update(p.vial_args())
    if f.mg_per_kg is not None:
        args["ordered_mg_per_kg"] = f.mg_per_kg
    if f.units:
        args["billed_units"] = int(f.units)  # "J3262 x 700 units, pt 80kg - correct?"
    return call("tocilizumab_dose", args)


CALCULATOR = Calculator(
    name="tocilizumab_dose", title="Tocilizumab for CRS", priority=20, compute=tocilizumab_dose, plan=_plan,
    description="Tocilizumab (J3262) dose for CRS by weight (max 800 mg), units, dosing limits, and discarded "
                "amount when vial sizes are given.",
    supports=backed_by(_TOPIC),
)
