"""CAR-T cell dose: the target range in cells for a product and indication, caps applied.

Billing does not depend on it (the Q-code is always 1 unit), but clerks check the chain-of-
identity label against it; where the sources disagree on the range, both are shown with quotes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from assistant.tools._dosing import product_rules
from assistant.tools._inputs import fmt, weight_kg
from assistant.tools.reference import Reference, get_reference
from assistant.tools.result import ToolResult, cite
from assistant.tools.units import code_citation

MILLION = Decimal(1_000_000)


def cells_text(cells: Decimal | int) -> str:
    """'60 × 10^6' style (the unit the labels and guides use)."""
    return f"{fmt((Decimal(cells) / MILLION).quantize(Decimal('0.01')).normalize())} × 10^6"


def cell_dose(product: Any, indication: Any = None, weight: Any = None, weight_unit: str = "kg",
              reference: Reference | None = None) -> ToolResult:
    """Target CAR-positive T-cell dose range (cells) and the Q-code billing (always 1 unit)."""
    ref = get_reference(reference)
    prod, ind, rules = product_rules(product, indication, ref)
    rule = rules.get("cell_dose") or {}
    label = rule.get("label") or {}
    code = prod.get("hcpcs")
    citations = [cite(f"dosing.yaml#{prod['id']}.{ind}.cell_dose.label", "FDA label dose", str(label.get("cite", "")))]
    code_row = ref.code(code) if code else None
    if code_row:
        citations.append(code_citation(code, code_row))
    warnings: list[str] = []
    assumptions: list[str] = []
    values: dict = {"product": prod["id"], "indication": ind, "hcpcs": code, "units": 1, "basis": rule.get("basis")}
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
            assumptions.append(f"{prod['brand']} is a flat dose, not weight-based: the weight given is not used.")
        summary = f"**{prod['brand']}: {cells_text(lo)} to {cells_text(hi)} CAR-positive T cells (flat dose, label)** — {billing}"
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
        summary = f"**{prod['brand']} ({ind.upper()}): {target} CAR-positive T cells" + (f" (capped at {cells_text(cap)})" if capped else "") + f"** — {billing}"
        if w != Decimal(str(weight)):
            assumptions.append(f"Weight converted at 1 lb = 0.45359237 kg: {fmt(w.quantize(Decimal('0.01')))} kg.")
        for src in rule.get("sources") or []:
            citations.append(cite(f"doc:{src['doc']}", src.get("section", ""), src["quote"]))
            if (Decimal(src["min_per_kg"]), Decimal(src["max_per_kg"]), Decimal(src["cap_cells"])) != (per_lo, per_hi, cap):
                warnings.append(f"⚠ {src['doc']} gives a different dose rule: \"{src['quote']}\".")
    assumptions.append("The actual cell count is on the product's chain-of-identity label / certificate of analysis; the claim carries 1 unit regardless.")
    return ToolResult(name="cell_dose",
                      inputs={"product": str(product), "indication": indication,
                              "weight": None if weight is None else str(weight), "weight_unit": weight_unit},
                      values=values, summary=summary, formula=formula,
                      assumptions=assumptions, warnings=warnings, citations=citations)
