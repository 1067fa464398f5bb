"""Body surface area: Mosteller by default (the usual chemotherapy convention), DuBois on request.

Keeps the full-precision value in `values` and shows two decimals, because lymphodepletion doses
are usually computed from the BSA rounded to 0.01 m2 and the clerk must see which was used.
"""

from __future__ import annotations

import re
from decimal import Decimal, localcontext
from typing import Annotated, Any

from assistant.tools._inputs import fmt, height_cm, round2, to_text, weight_kg
from assistant.tools.component import Calculator, HeightUnit, Number, Plan, Text, WeightUnit, ask, call, param
from assistant.tools.errors import CalcError
from assistant.tools.planning import Planning
from assistant.tools.result import ToolResult, cite

_REF_CITE = cite("formulas#bsa", "Body surface area: Mosteller RD, N Engl J Med 1987;317:1098; DuBois D, DuBois EF, "
                 "Arch Intern Med 1916;17:863",
                 "Mosteller: sqrt(height_cm x weight_kg / 3600). DuBois: 0.007184 x height_cm^0.725 x weight_kg^0.425.")


def mosteller(h_cm: Decimal, w_kg: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 28
        return (h_cm * w_kg / Decimal(3600)).sqrt()


def dubois(h_cm: Decimal, w_kg: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 28
        return Decimal("0.007184") * (Decimal("0.725") * h_cm.ln()).exp() * (Decimal("0.425") * w_kg.ln()).exp()


def compute_bsa(height: Any, weight: Any, height_unit: str = "cm", weight_unit: str = "kg",
                method: str = "mosteller") -> tuple[Decimal, Decimal, Decimal, str]:
    """(bsa_m2 full precision, height_cm, weight_kg, method) — shared with lymphodepletion."""
    h = height_cm(height, height_unit)
    w = weight_kg(weight, weight_unit)
    m = to_text(method, "method").lower().replace(" ", "")
    if m in ("mosteller", "m"):
        return mosteller(h, w), h, w, "mosteller"
    if m in ("dubois", "du_bois", "dubois&dubois", "d"):
        return dubois(h, w), h, w, "dubois"
    raise CalcError(f"Unknown BSA method '{method}'; use mosteller (default) or dubois.", field="method")


def bsa(height: Annotated[Number, param("Height (cm unless height_unit='in')", label="Height", example=170)],
        weight: Annotated[Number, param("Weight (kg unless weight_unit='lb')", label="Weight", example=70)],
        height_unit: HeightUnit = "cm", weight_unit: WeightUnit = "kg",
        method: Annotated[Text, param("mosteller (default) or dubois", label="Method",
                                      choices=["mosteller", "dubois"])] = "mosteller") -> ToolResult:
    """Body surface area in m2 from height and weight."""
    value, h, w, m = compute_bsa(height, weight, height_unit, weight_unit, method)
    shown = round2(value)
    if m == "mosteller":
        formula = f"Mosteller: sqrt({fmt(h)} cm × {fmt(w)} kg / 3600) = {fmt(value.quantize(Decimal('1e-6')))} m² → {shown} m²"
    else:
        formula = f"DuBois: 0.007184 × {fmt(h)}^0.725 × {fmt(w)}^0.425 = {fmt(value.quantize(Decimal('1e-6')))} m² → {shown} m²"
    assumptions = []
    if str(height_unit).lower() not in ("cm",):
        assumptions.append(f"Height converted at 1 in = 2.54 cm: {fmt(h)} cm.")
    if str(weight_unit).lower() not in ("kg",):
        assumptions.append(f"Weight converted at 1 lb = 0.45359237 kg: {fmt(w)} kg.")
    assumptions.append("Rounded to 2 decimals for display; doses are usually computed from the rounded BSA.")
    return ToolResult(
        name="bsa",
        inputs={"height": str(height), "height_unit": height_unit, "weight": str(weight),
                "weight_unit": weight_unit, "method": m},
        values={"bsa_m2": shown, "bsa_m2_exact": value, "height_cm": h, "weight_kg": w, "method": m},
        summary=f"**BSA ({'Mosteller' if m == 'mosteller' else 'DuBois'}): {shown} m²**",
        formula=formula,
        assumptions=assumptions,
        warnings=[],
        citations=[_REF_CITE],
    )


# --- the component ------------------------------------------------------------------------
EXPLICIT_BSA = re.compile(r"\bBSA\b|body surface", re.I)
DUBOIS = re.compile(r"du ?bois", re.I)


def _plan(p: Planning) -> Plan | None:
    """'BSA 170 cm 70 kg': needs both figures; a BSA the question already gives is not recomputed."""
    f = p.q.figures
    if not EXPLICIT_BSA.search(p.text) or f.bsa_m2:
        return None
    if not (f.height_cm and f.weight_kg):
        return ask(["height", "weight"], "For BSA I need both height (cm or in) and weight (kg or lb).")
    args = p.height_args() | p.weight_args()
    if DUBOIS.search(p.text):
        args["method"] = "dubois"
    return call("bsa", args)


CALCULATOR = Calculator(
    name="bsa", title="Body surface area", priority=60, compute=bsa, plan=_plan,
    description="Body surface area (m²) from height and weight: Mosteller by default, DuBois on request.",
    supports=None,  # a formula needs no passage; the corpus's example patients would mislead
)
