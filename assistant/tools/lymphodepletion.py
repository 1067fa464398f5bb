"""Lymphodepletion plan: per drug mg/m2 x BSA, current HCPCS, units per date of service, dates.

Computes with the FDA label regimen and the current codes (J9185 at 50 mg; J9075 at 5 mg). The
billing guides' own worked examples (J9070, "1 mg = 1 unit") and regimens that differ from the
label (Tecartus ALL) are shown next to the result with their quotes, never silently replaced.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated

from assistant.core.reference import Reference, get_reference
from assistant.tools._dosing import product_rules
from assistant.tools._inputs import ceil_units, fmt, positive, round2, to_date
from assistant.tools.bsa import compute_bsa
from assistant.tools.component import Calculator, IndicationParam, IsoDate, Number, Plan, Text, ask, call, param
from assistant.tools.errors import CalcError
from assistant.tools.planning import Planning, backed_by
from assistant.tools.result import ToolResult, cite
from assistant.tools.units import code_citation, unit_size


def _drug_lines(drugs: list[dict], bsa_m2: Decimal, ref: Reference, infusion, service: date,
                maker: str | None = None) -> list[dict]:
    """Per drug: mg/day, the code in force on its first date of service (J9070 for
    cyclophosphamide before April 2024; a named maker's own code, J9074 for Sandoz), units per
    day and in total."""
    out = []
    for d in drugs:
        days = [int(x) for x in d["days"]]
        first = infusion + timedelta(days=min(days)) if infusion is not None else service
        row = (maker and ref.maker_code(d["drug"], maker, first)) or ref.drug_code_on(d["drug"], first)
        if row is None:
            raise CalcError(f"No HCPCS code for {d['drug']} in force on {first.isoformat()} in the reference data.",
                            field="product")
        size, _ = unit_size(row)
        mg_m2 = Decimal(str(d["mg_per_m2"]))
        daily = mg_m2 * bsa_m2
        per_day = ceil_units(daily, size)
        line = {"drug": d["drug"], "mg_per_m2": mg_m2, "daily_mg": daily, "hcpcs": row.code, "unit_size_mg": size,
                "units_per_day": per_day, "days": days, "n_days": len(days),
                "total_mg": daily * len(days), "units_total": per_day * len(days), "code_date": first.isoformat()}
        if infusion is not None:
            line["dates"] = [(infusion + timedelta(days=x)).isoformat() for x in days]
        out.append(line)
    return out


def lymphodepletion_plan(
        product: Annotated[Text, param("Product name or HCPCS, e.g. Abecma, Carvykti, Tecartus", label="Product",
                                       example="Carvykti", choices="products")],
        indication: IndicationParam = None,
        bsa_m2: Annotated[Number, param("Body surface area in m² (or give height and weight)", label="BSA (m²)",
                                        example=1.85)] = None,
        height: Annotated[Number, param("Height (cm unless height_unit='in')", label="or height (cm)")] = None,
        weight: Annotated[Number, param("Weight (kg unless weight_unit='lb')", label="and weight (kg)")] = None,
        height_unit: Annotated[Text, param("cm or in", form=False)] = "cm",
        weight_unit: Annotated[Text, param("kg or lb", form=False)] = "kg",
        infusion_date: Annotated[IsoDate, param("CAR-T infusion date (day 0), ISO format YYYY-MM-DD",
                                                label="Infusion date (optional, YYYY-MM-DD)")] = None,
        dos: Annotated[IsoDate, param("Date of service for the codes when no infusion date is given (default today)",
                                      form=False)] = None,
        ld_start_date: Annotated[IsoDate, param("The first lymphodepletion day instead of the infusion date ('LD starts "
                                                "10/6/25'): the infusion is that many days later", form=False)] = None,
        claimed_drug: Annotated[Text, param("A drug of the regimen the question states, to check against the label "
                                            "(fludarabine or cyclophosphamide)", form=False)] = None,
        claimed_mg_per_m2: Annotated[Number, param("The mg/m² the question states for claimed_drug", form=False)] = None,
        claimed_days: Annotated[Number, param("The number of days the question states for claimed_drug", form=False)] = None,
        maker: Annotated[Text, param("The drug's maker when the question names one (Sandoz, Baxter, Dr. Reddy's, "
                                     "AuroMedics, Frindovyx): billed under that maker's own code", form=False)] = None,
        reference: Reference | None = None) -> ToolResult:
    """Fludarabine/cyclophosphamide doses, HCPCS units and dates for a CAR-T product's regimen."""
    ref = get_reference(reference)
    prod, ind, rules = product_rules(product, indication, ref)
    infusion = to_date(infusion_date, "infusion_date")
    service = to_date(dos, "dos") or date.today()
    lymph = rules.get("lymphodepletion") or {}
    label = lymph.get("label") or {}
    started = to_date(ld_start_date, "ld_start_date")
    first_day = min((int(x) for d in label.get("drugs") or [] for x in d["days"]), default=0)
    if started is not None and infusion is None:
        infusion = started - timedelta(days=first_day)  # day -5 on 10/6: the infusion (day 0) on 10/11
    if all(x in (None, "") for x in (bsa_m2, height, weight)):
        result = _regimen(prod.brand, prod.id, ind, lymph)
        if claimed_drug:
            result.summary = _claim_verdict(prod.brand, ind, label.get("drugs") or [], str(claimed_drug),
                                            claimed_mg_per_m2, claimed_days) + " " + result.summary
        return result
    bsa, bsa_source, assumptions = _patient_bsa(bsa_m2, height, weight, height_unit, weight_unit)
    lines = _drug_lines(label.get("drugs") or [], bsa, ref, infusion, service, maker)
    citations = [cite(f"dosing.yaml#{prod.id}.{ind}.lymphodepletion.label", "FDA label regimen", str(label.get("cite", "")))]
    for code in dict.fromkeys(line["hcpcs"] for line in lines):
        citations.append(code_citation(code, ref.code(code)))
    values: dict = {"product": prod.id, "indication": ind, "bsa_m2": bsa, "drugs": lines,
                    "infusion_date": infusion.isoformat() if infusion else None}
    alternatives, warnings = _source_regimens(lymph, bsa, ref, infusion, service, citations)
    if alternatives:
        values["source_regimens"] = alternatives
    warnings += _worked_examples(lymph, lines, bsa, ref, citations, infusion or service)
    assumptions.append(bsa_source + ".")
    assumptions += _code_assumptions(ref, lines, infusion is not None)
    if maker and not any((row := ref.code(ln["hcpcs"])) is not None and row.makers for ln in lines):
        assumptions.append(f"No {maker}-specific code is in force on these dates in the reference data: billed under the code above.")
    assumptions.append("Units rounded up per date of service; the daily dose is given on each listed day.")
    if infusion is None:
        assumptions.append("Days are relative to the CAR-T infusion (day 0); give infusion_date for calendar dates.")
    elif started is not None and not infusion_date:
        assumptions.append(f"Lymphodepletion starts {started.isoformat()} (day {first_day}), so the infusion (day 0) is "
                           f"{infusion.isoformat()}.")
    return ToolResult(name="lymphodepletion_plan",
                      inputs={"product": str(product), "indication": indication, "bsa_m2": _shown(bsa_m2),
                              "height": _shown(height), "weight": _shown(weight),
                              "height_unit": height_unit, "weight_unit": weight_unit, "infusion_date": infusion_date,
                              **({"maker": maker} if maker else {})},
                      values=values, summary=_summary(prod.brand, ind, bsa, lines, infusion is not None),
                      formula=_formula(lines, bsa), assumptions=assumptions, warnings=warnings, citations=citations)


def _regimen(brand: str, product_id: str, ind: str, lymph: dict) -> ToolResult:
    """No patient figures: the label's regimen in mg/m² and days, and the sources that differ."""
    label = lymph.get("label") or {}
    drugs = label.get("drugs") or []
    citations = [cite(f"dosing.yaml#{product_id}.{ind}.lymphodepletion.label", "FDA label regimen", str(label.get("cite", "")))]
    warnings = []
    for src in lymph.get("sources") or []:
        citations.append(cite(f"doc:{src['doc']}", src.get("section", ""), src["quote"]))
        src_drugs = [{k: v for k, v in d.items() if k != "hcpcs"} for d in src.get("drugs") or []]
        if _regimen_key(src_drugs) != _regimen_key(drugs):
            warnings.append(f"⚠ {src['doc']} gives a different regimen: \"{src['quote']}\". "
                            f"{lymph.get('conflict_note', '')} The label's regimen is the one above.")
    text = "; ".join(f"{d['drug']} {fmt(Decimal(str(d['mg_per_m2'])))} mg/m² IV on day"
                     f"{'s' if len(d['days']) > 1 else ''} {', '.join(str(x) for x in d['days'])}"
                     f" ({len(d['days'])} dose{'s' if len(d['days']) > 1 else ''})" for d in drugs)
    return ToolResult(
        name="lymphodepletion_plan", inputs={"product": product_id, "indication": ind},
        values={"product": product_id, "indication": ind, "regimen": drugs},
        summary=f"**{brand} ({ind.upper()}) lymphodepletion (FDA label): {text}.** For mg per day and HCPCS units, "
                "give the patient's BSA (or height and weight).",
        formula="the label's regimen; days are relative to the CAR-T infusion (day 0)",
        warnings=warnings, citations=citations)


def _claim_verdict(brand: str, ind: str, drugs: list[dict], drug: str, mg_per_m2, days) -> str:
    """'tecartus ALL cy 900 mg/m2 x3 days right?': yes or no against the label, before the regimen."""
    d = next((x for x in drugs if x["drug"] == drug.lower()), None)
    if d is None:
        return f"**No: the FDA label regimen for {brand} ({ind.upper()}) has no {drug}.**"
    wrong = []
    label_mg, n = Decimal(str(d["mg_per_m2"])), len(d["days"])
    if mg_per_m2 not in (None, "") and Decimal(str(mg_per_m2)) != label_mg:
        wrong.append(f"{fmt(label_mg)} mg/m², not {fmt(Decimal(str(mg_per_m2)))} mg/m²")
    if days not in (None, "") and int(days) != n:
        when = f"once (day {d['days'][0]})" if n == 1 else f"on {n} days ({', '.join(str(x) for x in d['days'])})"
        wrong.append(f"{when}, not on {int(days)} days")
    if wrong:
        return f"**No: for {brand} ({ind.upper()}) the FDA label gives {drug} " + " and ".join(wrong) + ".**"
    return f"**Yes: {drug} at {fmt(label_mg)} mg/m² on {n} day{'s' if n > 1 else ''} is the FDA label regimen for {brand} ({ind.upper()}).**"


def _code_assumptions(ref: Reference, lines: list[dict], dated: bool) -> list[str]:
    """Which code each drug is billed under, and why (the code in force on its dates of service)."""
    out = []
    for line in lines:
        row = ref.code(line["hcpcs"])
        when = f"on {line['code_date']}" + (" (its first date of service)" if dated else " (the date of service)")
        text = f"{line['drug'].capitalize()} billed as {line['hcpcs']} ({fmt(line['unit_size_mg'])} mg per unit), the code in force {when}"
        if row is not None and row.makers:
            text += f" for that maker's product ({row.descriptor})"
        if row is not None and row.valid_to:
            nxt = ref.code(row.replacement) if row.replacement else None
            text += f"; it was replaced from {(row.valid_to + timedelta(days=1)).isoformat()}" + (f" by {nxt.code}" if nxt else "")
        out.append(text + ".")
        if line["drug"] == "cyclophosphamide" and line["hcpcs"] == "J9075":
            out.append("Use the manufacturer-specific cyclophosphamide code (J9071-J9074, J9076) when that product is "
                       "given — same 5 mg unit.")
    return out


def _shown(value) -> str | None:
    return None if value is None else str(value)


def _patient_bsa(bsa_m2, height, weight, height_unit, weight_unit) -> tuple[Decimal, str, list[str]]:
    """(BSA used, where it came from, assumptions): given, or Mosteller rounded to 0.01 m²."""
    if bsa_m2 not in (None, ""):
        bsa = positive(bsa_m2, "bsa_m2", "body surface area (m²)")
        if bsa < Decimal("0.2") or bsa > Decimal("3.5"):
            raise CalcError(f"A BSA of {bsa_m2} m² is outside the plausible range (0.2-3.5 m²); please check it.", field="bsa_m2")
        return bsa, f"BSA {fmt(bsa)} m² (given)", []
    if height in (None, "") or weight in (None, ""):
        raise CalcError("Give the BSA in m², or the height and weight to compute it.", field="bsa_m2")
    exact, h, w, _ = compute_bsa(height, weight, height_unit, weight_unit)
    bsa = round2(exact)
    return bsa, f"BSA {fmt(bsa)} m² (Mosteller from {fmt(h)} cm, {fmt(w.quantize(Decimal('0.01')))} kg)", [
        f"BSA by Mosteller, rounded to 0.01 m²: sqrt({fmt(h)} × {fmt(w)} / 3600) = "
        f"{fmt(exact.quantize(Decimal('1e-4')))} → {fmt(bsa)} m²."]


def _source_regimens(lymph: dict, bsa: Decimal, ref: Reference, infusion, service: date,
                     citations: list[dict]) -> tuple[list[dict], list[str]]:
    """The sources' regimens: the same as the label's (cited) or a different one (both shown)."""
    label_drugs = (lymph.get("label") or {}).get("drugs") or []
    alternatives, warnings = [], []
    for src in lymph.get("sources") or []:
        citations.append(cite(f"doc:{src['doc']}", src.get("section", ""), src["quote"]))
        src_drugs = [{k: v for k, v in d.items() if k != "hcpcs"} for d in src.get("drugs") or []]
        if _regimen_key(src_drugs) == _regimen_key(label_drugs):
            continue
        alt = _drug_lines(src_drugs, bsa, ref, infusion, service)
        alternatives.append({"doc": src["doc"], "drugs": alt})
        text = "; ".join(f"{a['drug']} {fmt(a['mg_per_m2'])} mg/m² on days {', '.join(str(x) for x in a['days'])} "
                         f"({fmt(a['daily_mg'])} mg/day, {a['units_per_day']} units {a['hcpcs']}/day, {a['units_total']} total)"
                         for a in alt)
        warnings.append(f"⚠ {src['doc']} gives a different regimen: \"{src['quote']}\" → at {fmt(bsa)} m²: {text}. "
                        f"{lymph.get('conflict_note', '')} This plan follows the label; confirm the regimen actually ordered.")
    return alternatives, warnings


def _worked_examples(lymph: dict, lines: list[dict], bsa: Decimal, ref: Reference, citations: list[dict],
                     day: date) -> list[str]:
    """The sources' worked examples: retired codes and different arithmetic, next to ours."""
    warnings = []
    for ex in lymph.get("worked_examples") or []:
        for ln in ex.get("lines") or []:
            ours = next((line for line in lines if line["drug"] == ln["drug"]), None)
            row = ref.code(ln["hcpcs"])
            parts = [f"{ex['doc']}'s worked example ({ex.get('bsa_m2')} m²) bills {ln['drug']} as "
                     f"{ln['hcpcs']} {ln['units_total']} units total: \"{ln['quote']}\"."]
            if row is not None and not row.in_force(day):
                parts.append(f"{ln['hcpcs']} is not valid on {day.isoformat()}: {row.note}")
            if ours is not None:
                at = "" if Decimal(str(ex.get("bsa_m2"))) == bsa else f" at this patient's {fmt(bsa)} m²"
                parts.append(f"Under the code in force{at}: {ours['hcpcs']} {ours['units_per_day']} unit(s)/day × "
                             f"{ours['n_days']} = {ours['units_total']} units.")
            warnings.append(" ".join(parts))
            citations.append(cite(f"doc:{ex['doc']}", ex.get("section", "worked example"), ln["quote"]))
    return warnings


def _formula(lines: list[dict], bsa: Decimal) -> str:
    return "; ".join(
        f"{d['drug']}: {fmt(d['mg_per_m2'])} mg/m² × {fmt(bsa)} m² = {fmt(d['daily_mg'])} mg/day → "
        f"{fmt(d['daily_mg'])} ÷ {fmt(d['unit_size_mg'])} = {d['units_per_day']} unit(s) {d['hcpcs']}/day × {d['n_days']} "
        f"= {d['units_total']} units" for d in lines)


def _summary(brand: str, ind: str, bsa: Decimal, lines: list[dict], dated: bool) -> str:
    return f"**{brand} ({ind.upper()}) lymphodepletion at {fmt(bsa)} m²:** " + "; ".join(
        f"{d['drug']} {fmt(d['daily_mg'])} mg/day on day(s) {', '.join(str(x) for x in d['days'])}"
        + (f" ({', '.join(d['dates'])})" if dated else "")
        + f" → {d['hcpcs']} {d['units_per_day']} unit(s)/day, {d['units_total']} total" for d in lines)


def _regimen_key(drugs: list[dict]) -> tuple:
    return tuple(sorted((d["drug"], str(Decimal(str(d["mg_per_m2"]))), tuple(int(x) for x in d["days"])) for d in drugs))


# --- the component ------------------------------------------------------------------------
_TOPIC = re.compile(r"fludarabine|cyclophosphamide|lymphodeplet|J9185|J907\d", re.I)


def _size_args(p: Planning) -> dict | None:
    f = p.q.figures
    if f.bsa_m2:
        return {"bsa_m2": f.bsa_m2}
    if f.height_cm and f.weight_kg:
        return p.height_args() | p.weight_args()
    return None


def _plan(p: Planning) -> Plan | None:
    """A product's flu/cy plan needs the BSA (or height and weight) and, where regimens differ,
    the indication; 'cy/flu doses for carvykti' without a patient is the regimen, quoted."""
    f = p.q.figures
    product = p.dosing_product()
    whole_plan = not (f.dose_mg or f.mg_per_m2 or f.mg_per_kg or p.q.codes)  # not one drug's units at a given rate
    if p.has("lymphodepletion") and not product and p.wants_number and _size_args(p) is not None and whole_plan:
        names = " or ".join(sorted(p.ref.product_by_id(pid).brand for pid in p.ref.dosing_products()))
        return ask(["product"], f"Which product is the lymphodepletion for ({names})? The flu/cy regimens differ "
                                "by product (and, for Tecartus, by indication).")
    if not (p.has("lymphodepletion") and product and p.wants_number) or ((f.dose_mg or f.mg_per_m2 and f.bsa_m2) and p.drug_code()):
        return None
    inds = p.indications(product)
    size = _size_args(p)
    regimen_only = size is None and not p.about_patient and not p.says_units
    if p.q.indication not in inds and len(inds) > 1:
        if regimen_only:  # "tecartus flu/cy doses": both indications' regimens
            return Plan(calls=[("lymphodepletion_plan", {"product": product, "indication": i}) for i in inds])
        return ask(["indication"], f"Which indication is this for ({' or '.join(i.upper() for i in inds)})? "
                                   "The regimens differ.")
    if regimen_only:
        return call("lymphodepletion_plan", {"product": product, **({"indication": p.q.indication} if p.q.indication in inds else {}),
                                             **_claim(p)})
    if size is None:
        return ask(["bsa"], "To work out the lymphodepletion doses and units I need the patient's "
                            "BSA (m²) or height and weight.")
    args: dict = {"product": product, **({"indication": p.q.indication} if p.q.indication in inds else {}), **size,
                  **_date_args(p)}
    maker = p.ref.maker_code(None, p.text, p.dos)
    if maker is not None:  # "we use sandoz cy": that maker's own code, not J9075
        args["maker"] = maker.makers[0]
    return call("lymphodepletion_plan", args)


_LD_START = re.compile(r"\b(?:LD|lymphodepl\w*|flu/?cy|cy/?flu|chemo)\s+(?:starts?|starting|begins?|begin(?:ning)?|start date|day 1)\b|"
                       r"\bstart(?:s|ing)?\s+(?:LD|lymphodepl\w*|flu/?cy|cy/?flu)\b|\bfirst (?:LD|lymphodepletion) day\b", re.I)


def _claim(p: Planning) -> dict:
    """The one drug's mg/m² (and days) a question states about the regimen, to be checked."""
    code = p.drug_code()
    row = p.ref.code(code) if code else None
    drug = (row.drug or "").lower() if row is not None else ""
    if drug not in ("fludarabine", "cyclophosphamide") or not p.q.figures.mg_per_m2:
        return {}
    return {"claimed_drug": drug, "claimed_mg_per_m2": p.q.figures.mg_per_m2,
            **({"claimed_days": days} if (days := p.days()) else {})}


# the LD days typed as such: a range of dates ("LD 3/3/26-3/5/26", "dos 2/9-2/11") or a date labelled LD
_DATE = r"\d{1,2}/\d{1,2}(?:/\d{2,4})?"
_LD_DATES = re.compile(rf"{_DATE}\s*(?:-|–|to|thru|through)\s*{_DATE}|"
                       rf"\b(?:LD|lymphodepl\w*|flu/?cy|cy/?flu|chemo)(?:\s+(?:dates?|days?|on|from|given))?\s*:?\s*{_DATE}", re.I)


def _date_args(p: Planning) -> dict:
    """The plan's date: the first LD day ('LD starts 10/6/25'), the infusion (day 0), or a date of
    service for the codes. A date typed as the DOS ('is J9070 still ok for DOS 6/1/24') is not day
    0; what a date is, is read where it was typed (in a follow-up, the turn that gave it)."""
    typed = _date_typed_in(p)
    infusion = (p.q.figures.date if not _dos_labelled(p, typed) or _LD_DATES.search(typed) else None) or _infusion_day(p)
    if infusion and (_LD_START.search(p.text) or _LD_START.search(typed) or _LD_DATES.search(typed) and _infusion_day(p) is None):
        return {"ld_start_date": infusion.isoformat()}
    return {"infusion_date": infusion.isoformat()} if infusion else {"dos": p.dos.isoformat()}


def _date_typed_in(p: Planning) -> str:
    """The question the date of service was typed in: this turn's, or for a date the thread carries
    ('and units on the cy J code' after 'LD starts 3/9/26') the earlier question that gave it."""
    d = p.q.service_date
    if d is not None and d.text and "date of service" in p.q.inherited:
        return next((t for t in reversed(p.q.history) if d.text in t), p.q.text)
    return p.q.text


def _dos_labelled(p: Planning, typed: str) -> bool:
    d = p.q.service_date
    return bool(d is not None and d.text and d.event == "service"
                and re.search(rf"\b(?:dos|d\.o\.s\.?|date of service)\s*(?:of|on|is|=|:)?\s*{re.escape(d.text)}", typed, re.I))


def _infusion_day(p: Planning):
    """'infusion 4/20/2024' read as the date of service of an infusion: day 0 of the plan."""
    d = p.q.service_date
    return d.day if d is not None and d.event == "infusion" and d.precision == "day" else None


CALCULATOR = Calculator(
    name="lymphodepletion_plan", title="Lymphodepletion plan", priority=30, compute=lymphodepletion_plan, plan=_plan,
    description="Fludarabine/cyclophosphamide lymphodepletion for a CAR-T product and indication: mg per day, "
                "HCPCS units per date of service and total, calendar dates.",
    supports=backed_by(_TOPIC, product=True),
    supersedes=frozenset({"tecartus-all-cy"}),  # the result shows the guide's regimen beside the label's
)
