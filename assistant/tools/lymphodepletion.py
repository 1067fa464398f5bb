"""Lymphodepletion plan: per drug mg/m2 x BSA, current HCPCS, units per date of service, dates.

Computes with the FDA label regimen and the current codes (J9185 at 50 mg; J9075 at 5 mg). The
billing guides' own worked examples (J9070, "1 mg = 1 unit") and regimens that differ from the
label (Tecartus ALL) are shown next to the result with their quotes, never silently replaced.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from assistant.tools._dosing import product_rules
from assistant.tools._inputs import ceil_units, fmt, positive, round2, to_date
from assistant.tools.bsa import compute_bsa
from assistant.tools.errors import CalcError
from assistant.tools.reference import Reference, get_reference
from assistant.tools.result import ToolResult, cite
from assistant.tools.units import code_citation, unit_size


def _drug_lines(drugs: list[dict], bsa_m2: Decimal, ref: Reference, infusion) -> list[dict]:
    codes = ref.dosing.get("drug_codes") or {}
    out = []
    for d in drugs:
        code = codes.get(d["drug"])
        row = ref.code(code) if code else None
        if row is None:
            raise CalcError(f"No current HCPCS code for {d['drug']} in the reference data.", field="product")
        size, _ = unit_size(row)
        mg_m2 = Decimal(str(d["mg_per_m2"]))
        daily = mg_m2 * bsa_m2
        per_day = ceil_units(daily, size)
        days = [int(x) for x in d["days"]]
        line = {"drug": d["drug"], "mg_per_m2": mg_m2, "daily_mg": daily, "hcpcs": code, "unit_size_mg": size,
                "units_per_day": per_day, "days": days, "n_days": len(days),
                "total_mg": daily * len(days), "units_total": per_day * len(days)}
        if infusion is not None:
            line["dates"] = [(infusion + timedelta(days=x)).isoformat() for x in days]
        out.append(line)
    return out


def lymphodepletion_plan(product: Any, indication: Any = None, bsa_m2: Any = None, height: Any = None,
                         weight: Any = None, height_unit: str = "cm", weight_unit: str = "kg",
                         infusion_date: Any = None, reference: Reference | None = None) -> ToolResult:
    """Fludarabine/cyclophosphamide doses, HCPCS units and dates for a CAR-T product's regimen."""
    ref = get_reference(reference)
    prod, ind, rules = product_rules(product, indication, ref)
    infusion = to_date(infusion_date, "infusion_date")
    assumptions: list[str] = []
    if bsa_m2 not in (None, ""):
        bsa = positive(bsa_m2, "bsa_m2", "body surface area (m²)")
        if bsa < Decimal("0.2") or bsa > Decimal("3.5"):
            raise CalcError(f"A BSA of {bsa_m2} m² is outside the plausible range (0.2-3.5 m²); please check it.", field="bsa_m2")
        bsa_source = f"BSA {fmt(bsa)} m² (given)"
    elif height not in (None, "") and weight not in (None, ""):
        exact, h, w, _ = compute_bsa(height, weight, height_unit, weight_unit)
        bsa = round2(exact)
        bsa_source = f"BSA {fmt(bsa)} m² (Mosteller from {fmt(h)} cm, {fmt(w.quantize(Decimal('0.01')))} kg)"
        assumptions.append(f"BSA by Mosteller, rounded to 0.01 m²: sqrt({fmt(h)} × {fmt(w)} / 3600) = {fmt(exact.quantize(Decimal('1e-4')))} → {fmt(bsa)} m².")
    else:
        raise CalcError("Give the BSA in m², or the height and weight to compute it.", field="bsa_m2")

    lymph = rules.get("lymphodepletion") or {}
    label = lymph.get("label") or {}
    lines = _drug_lines(label.get("drugs") or [], bsa, ref, infusion)
    citations = [cite(f"dosing.yaml#{prod['id']}.{ind}.lymphodepletion.label", "FDA label regimen", str(label.get("cite", "")))]
    seen = set()
    for line in lines:
        if line["hcpcs"] not in seen:
            seen.add(line["hcpcs"])
            citations.append(code_citation(line["hcpcs"], ref.code(line["hcpcs"])))
    warnings: list[str] = []
    values: dict = {"product": prod["id"], "indication": ind, "bsa_m2": bsa, "drugs": lines,
                    "infusion_date": infusion.isoformat() if infusion else None}

    # Sources: same regimen (cited) or a different one (both shown).
    alternatives = []
    for src in lymph.get("sources") or []:
        citations.append(cite(f"doc:{src['doc']}", src.get("section", ""), src["quote"]))
        src_drugs = [{k: v for k, v in d.items() if k != "hcpcs"} for d in src.get("drugs") or []]
        differs = _regimen_key(src_drugs) != _regimen_key(label.get("drugs") or [])
        if differs:
            alt = _drug_lines(src_drugs, bsa, ref, infusion)
            alternatives.append({"doc": src["doc"], "drugs": alt})
            text = "; ".join(f"{a['drug']} {fmt(a['mg_per_m2'])} mg/m² on days {', '.join(str(x) for x in a['days'])} "
                             f"({fmt(a['daily_mg'])} mg/day, {a['units_per_day']} units {a['hcpcs']}/day, {a['units_total']} total)"
                             for a in alt)
            warnings.append(f"⚠ {src['doc']} gives a different regimen: \"{src['quote']}\" → at {fmt(bsa)} m²: {text}. "
                            f"{lymph.get('conflict_note', '')} This plan follows the label; confirm the regimen actually ordered.")
    if alternatives:
        values["source_regimens"] = alternatives

    # Worked examples in the sources: retired codes / different arithmetic.
    for ex in lymph.get("worked_examples") or []:
        for ln in ex.get("lines") or []:
            ours = next((l for l in lines if l["drug"] == ln["drug"]), None)
            row = ref.code(ln["hcpcs"]) or {}
            parts = [f"{ex['doc']}'s worked example ({ex.get('bsa_m2')} m²) bills {ln['drug']} as "
                     f"{ln['hcpcs']} {ln['units_total']} units total: \"{ln['quote']}\"."]
            if row.get("status") == "retired":
                parts.append(f"{ln['hcpcs']} is retired: {row.get('note', '')}")
            if ours is not None:
                at = "" if Decimal(str(ex.get("bsa_m2"))) == bsa else f" at this patient's {fmt(bsa)} m²"
                parts.append(f"Under the current code{at}: {ours['hcpcs']} {ours['units_per_day']} unit(s)/day × "
                             f"{ours['n_days']} = {ours['units_total']} units.")
            warnings.append(" ".join(parts))
            citations.append(cite(f"doc:{ex['doc']}", ex.get("section", "worked example"), ln["quote"]))

    formula = "; ".join(
        f"{l['drug']}: {fmt(l['mg_per_m2'])} mg/m² × {fmt(bsa)} m² = {fmt(l['daily_mg'])} mg/day → "
        f"{fmt(l['daily_mg'])} ÷ {fmt(l['unit_size_mg'])} = {l['units_per_day']} unit(s) {l['hcpcs']}/day × {l['n_days']} "
        f"= {l['units_total']} units" for l in lines)
    summary = f"**{prod['brand']} ({ind.upper()}) lymphodepletion at {fmt(bsa)} m²:** " + "; ".join(
        f"{l['drug']} {fmt(l['daily_mg'])} mg/day on day(s) {', '.join(str(x) for x in l['days'])}"
        + (f" ({', '.join(l['dates'])})" if infusion else "")
        + f" → {l['hcpcs']} {l['units_per_day']} unit(s)/day, {l['units_total']} total" for l in lines)
    assumptions.append(bsa_source + ".")
    assumptions.append("Cyclophosphamide billed as J9075 (NOS, 5 mg); use the manufacturer-specific code (J9071-J9074, J9076) when that product is given — same 5 mg unit.")
    assumptions.append("Units rounded up per date of service; the daily dose is given on each listed day.")
    if infusion is None:
        assumptions.append("Days are relative to the CAR-T infusion (day 0); give infusion_date for calendar dates.")
    return ToolResult(name="lymphodepletion_plan",
                      inputs={"product": str(product), "indication": indication, "bsa_m2": None if bsa_m2 is None else str(bsa_m2),
                              "height": None if height is None else str(height), "weight": None if weight is None else str(weight),
                              "height_unit": height_unit, "weight_unit": weight_unit, "infusion_date": infusion_date},
                      values=values, summary=summary, formula=formula, assumptions=assumptions,
                      warnings=warnings, citations=citations)


def _regimen_key(drugs: list[dict]) -> tuple:
    return tuple(sorted((d["drug"], str(Decimal(str(d["mg_per_m2"]))), tuple(int(x) for x in d["days"])) for d in drugs))
