"""Which calculator a question needs, with which arguments, or what to ask back for.

Deterministic on purpose: "units of J9185 for 55.5 mg" must reach the units calculator every
time. The router only reads figures the user typed (with their units) or that the conversation
carried over; it never fills a missing weight or BSA with a guess: it asks.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

from assistant.understand import Question

# What the user wants a number for (vs. "what is the LD regimen for X", which quotes a source).
QUANTITY = re.compile(r"\bhow (?:many|much)\b|\bunits?\b|\bcalc|\bwork out\b|\bfigure out\b|\bcompute\b|"
                      r"\bmg\b|\bdose\b|\bdosing\b|\brange\b|\bplan\b|\bschedule\b|\bdates?\b|\bcells?\b", re.I)
PAYMENT_NUMBER = re.compile(r"payment limit|\blimit\b|\bASP\b|allowed|reimburs|coinsurance|co-insurance|"
                            r"sequestration|medicare (?:share|pays?)|how much|\bprice\b|\brate\b|\bcosts?\b|"
                            r"patient (?:pays?|owes|responsibility)|\bpay(?:s|ment)?\b.*\bunits?\b", re.I)
NDC_TOKEN = re.compile(r"(?<![\d-])(\d{4,5}-\d{3,4}-\d{1,2}|\d{10,11})(?![\d-])")
LABELER = re.compile(r"\blabeler(?: code)?\s*(?:#|no\.?|number)?\s*(\d{5})\b|\b(\d{5})\s+labeler\b", re.I)
DAYS = re.compile(r"\b(?:x|×|for|over)\s*(\d{1,2})\s*(?:days?|dates? of service|DOS)\b|\b(\d{1,2})\s*(?:days?|dates? of service)\b", re.I)
# A question about a particular patient (ask back for a missing figure) vs. about the rule
# (answer from the sources: "carvykti target dose cells per kg").
PATIENT = re.compile(r"\b(?:my|our|this|the) (?:pt|patient|guy|lady|man|woman)\b|\bpt\b|\bfor (?:him|her)\b|"
                     r"\b(?:she|he) (?:weighs|is)\b|\bcalc(?:ulate)?\b|\bwork out\b|\bfigure out\b|\bcompute\b", re.I)
INPATIENT = re.compile(r"\binpatient\b|\bDRG\b|\bbundl|\bseparately\b", re.I)
EXPLICIT_BSA = re.compile(r"\bBSA\b|body surface", re.I)
DUBOIS = re.compile(r"du ?bois", re.I)
DRUG_CODES = {  # generic drug names people type -> the current HCPCS code
    "fludarabine": "J9185", "fludara": "J9185", "flu": "J9185",
    "cyclophosphamide": "J9075", "cytoxan": "J9075", "cy": "J9075",
    "tocilizumab": "J3262", "actemra": "J3262", "toci": "J3262",
    "teclistamab": "J9380", "tecvayli": "J9380", "elranatamab": "J1323", "elrexfio": "J1323",
}
DRUG_WORD = re.compile(r"\b(" + "|".join(sorted(DRUG_CODES, key=len, reverse=True)) + r")\b", re.I)


@dataclass
class Plan:
    """Tool calls to make, or what is missing (then `ask_back` says it in words)."""

    calls: list[tuple[str, dict]] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    ask_back: str = ""
    derived: list[str] = field(default_factory=list)  # arithmetic done to form arguments, shown


def _ref():
    from assistant.tools.reference import load_reference

    return load_reference()


def _weight_args(q: Question) -> dict:
    """The weight as typed (154 lb stays 154 lb: the calculator shows the conversion)."""
    f = q.figures
    if f.weight_kg is None:
        return {}
    m = re.match(r"\s*(\d+(?:[.,]\d+)?)\s*([a-zA-Z]+)", f.weight_text or "")
    if m:
        unit = "lb" if m.group(2).lower().startswith(("lb", "pound")) else "kg"
        return {"weight": float(m.group(1).replace(",", ".")), "weight_unit": unit}
    return {"weight": round(f.weight_kg, 3), "weight_unit": "kg"}


def _height_args(q: Question) -> dict:
    f = q.figures
    if f.height_cm is None:
        return {}
    m = re.match(r"\s*(\d+(?:[.,]\d+)?)\s*(in|inch|\")", f.height_text or "", re.I)
    if m:
        return {"height": float(m.group(1).replace(",", ".")), "height_unit": "in"}
    return {"height": round(f.height_cm, 2), "height_unit": "cm"}


def _drug_code(q: Question) -> str | None:
    ref = _ref()
    for code in q.codes:
        if ref.code(code.upper()) is not None and (not code.upper().startswith("Q") or not DRUG_WORD.search(q.text)):
            return code.upper()
    if m := DRUG_WORD.search(q.text):
        return DRUG_CODES[m.group(1).lower()]
    return None


def _dosing_product(q: Question) -> str | None:
    """The single product the question is about, if the reference has dosing rules for it."""
    if not q.product:
        return None
    return q.product if q.product in (_ref().dosing.get("products") or {}) else None


def _indications(product: str) -> list[str]:
    return list(((_ref().dosing.get("products") or {}).get(product) or {}).get("indications") or {})


def _labelers(product_ids) -> list[str]:
    """Labeler codes of products, from the CMS crosswalk rows of their HCPCS codes."""
    from index.entities import product as product_info

    ref = _ref()
    out: list[str] = []
    for pid in product_ids:
        code = product_info(pid).hcpcs
        for row in ref.crosswalk:
            if row.get("hcpcs") == code and row.get("ndc11"):
                lab = str(row["ndc11"])[:5]
                if lab not in out:
                    out.append(lab)
    return out


def _days(q: Question) -> int | None:
    if m := DAYS.search(q.text):
        return int(m.group(1) or m.group(2))
    return None


def plan(q: Question, today: dt.date) -> Plan:
    """The calculator calls a resolved question needs (possibly none)."""
    text = q.text
    f = q.figures
    wants_number = bool(QUANTITY.search(text)) or bool(f.bsa_m2 or f.weight_kg or f.height_cm or f.dose_mg)
    p = Plan()

    # NDC conversion / look-up
    ndcs = [m.group(1) for m in NDC_TOKEN.finditer(text)][:3]
    labelers = [a or b for a, b in LABELER.findall(text)][:2]
    if ndcs or labelers:
        p.calls += [("ndc", {"ndc": n}) for n in ndcs + labelers]
        return p
    if "ndc" in q.intents and q.products and re.search(r"\bNDC\b|labeler", text, re.I):
        # "carvykti ndc": look the product's labeler up; the result lists the crosswalk NDCs
        # and where a source prints a different pattern
        for lab in _labelers(q.products)[:3]:
            p.calls.append(("ndc", {"ndc": lab}))
        if p.calls:
            return p

    product = _dosing_product(q)
    indication = q.indication

    # Tocilizumab for CRS: a dose needs the weight.
    patient = bool(PATIENT.search(text)) or bool(f.weight_kg or f.bsa_m2 or f.height_cm)
    if "tocilizumab" in q.intents and wants_number and f.dose_mg is None and not re.search(r"how many doses|max(?:imum)? (?:number of )?doses", text, re.I):
        w = _weight_args(q)
        if not w:
            if not patient and not re.search(r"\bunits?\b", text, re.I):
                return p  # the rule itself: answered from the sources
            return _ask(p, ["weight"], "To work out the tocilizumab dose and J3262 units I need the "
                                       "patient's weight (kg or lb).")
        args = dict(w)
        if q.figures.vials:
            args["vial_sizes"] = [size for _, size in q.figures.vials]
        p.calls.append(("tocilizumab_dose", args))
        return p

    # Lymphodepletion plan for a product (needs BSA or height + weight).
    if "lymphodepletion" in q.intents and product and wants_number and not (f.dose_mg and _drug_code(q)):
        inds = _indications(product)
        has_size = bool(f.bsa_m2 or (f.height_cm and f.weight_kg))
        if not has_size and not patient and not re.search(r"\bunits?\b", text, re.I):
            return p  # "cy/flu doses for carvykti": the regimen, quoted from the sources
        if indication not in inds and len(inds) > 1:
            return _ask(p, ["indication"], f"Which indication is this for ({' or '.join(i.upper() for i in inds)})? "
                                           "The regimens differ.")
        args: dict = {"product": product}
        if indication in inds:
            args["indication"] = indication
        if q.figures.bsa_m2:
            args["bsa_m2"] = q.figures.bsa_m2
        elif q.figures.height_cm and q.figures.weight_kg:
            args.update(_height_args(q) | _weight_args(q))
        else:
            return _ask(p, ["bsa"], "To work out the lymphodepletion doses and units I need the patient's "
                                    "BSA (m²) or height and weight.")
        if q.figures.date:
            args["infusion_date"] = q.figures.date.isoformat()
        p.calls.append(("lymphodepletion_plan", args))
        return p

    # CAR-T cell dose: per-kg products need the weight; Tecartus needs the indication.
    if ("cell_dose" in q.intents or (product and re.search(r"\bdos(?:e|ing)\b", text, re.I)
                                      and not {"lymphodepletion", "tocilizumab", "units"} & set(q.intents))) and product:
        inds = _indications(product)
        if indication not in inds and len(inds) > 1:
            if not patient:
                return p
            return _ask(p, ["indication"], f"Which indication ({' or '.join(i.upper() for i in inds)})? "
                                           "The cell dose differs.")
        args = {"product": product}
        if indication in inds:
            args["indication"] = indication
        rule = ((_ref().dosing.get("products") or {}).get(product) or {}).get("indications", {}).get(
            args.get("indication") or (inds[0] if inds else ""), {})
        per_kg = (rule.get("cell_dose") or {}).get("basis") == "per_kg"
        w = _weight_args(q)
        if per_kg and not w and not patient:
            return Plan()  # the per-kg rule itself, quoted from the sources
        if per_kg and not w:
            return _ask(p, ["weight"], "The cell dose is per kg of body weight: what does the patient weigh "
                                       "(kg or lb)?")
        args.update(w)
        p.calls.append(("cell_dose", args))
        return p

    # Units of a drug code for an administered amount.
    code = _drug_code(q)
    if code and code.startswith("Q") and "payment" in q.intents:
        code = None  # "Q2055 payment for 2 units" is a payment question
    if code and ("units" in q.intents or "lymphodepletion" in q.intents) and wants_number:
        amount = q.figures.dose_mg
        if amount is None and q.figures.mg_per_m2 and q.figures.bsa_m2:
            exact = Decimal(str(q.figures.mg_per_m2)) * Decimal(str(q.figures.bsa_m2))
            amount = float(exact)
            p.derived.append(f"{q.figures.mg_per_m2:g} mg/m² × {q.figures.bsa_m2:g} m² = {exact.normalize():f} mg")
        if amount is None and q.figures.mg_per_kg and q.figures.weight_kg:
            exact = Decimal(str(q.figures.mg_per_kg)) * Decimal(str(round(q.figures.weight_kg, 3)))
            amount = float(exact)
            p.derived.append(f"{q.figures.mg_per_kg:g} mg/kg × {round(q.figures.weight_kg, 3):g} kg = {exact.normalize():f} mg")
        if amount is None and code.startswith("Q"):
            p.calls.append(("dose_units", {"code": code}))  # one therapeutic dose: always 1 unit
            return p
        if amount is None:
            if not patient:
                return p
            return _ask(p, ["amount"], f"How many mg were administered? I convert the amount to {code} units.")
        args = {"code": code, "amount_mg": amount}
        if days := _days(q):
            args["days"] = days
        if q.figures.vials:
            args["vial_sizes"] = [size for _, size in q.figures.vials]
        p.calls.append(("dose_units", args))
        return p

    # BSA on its own.
    if EXPLICIT_BSA.search(text) and not q.figures.bsa_m2:
        if q.figures.height_cm and q.figures.weight_kg:
            args = _height_args(q) | _weight_args(q)
            if DUBOIS.search(text):
                args["method"] = "dubois"
            p.calls.append(("bsa", args))
            return p
        return _ask(p, ["height", "weight"], "For BSA I need both height (cm or in) and weight (kg or lb).")

    # Payment: a code (or a product's Q-code) and a number-asking payment question.
    if "payment" in q.intents and PAYMENT_NUMBER.search(text) and not INPATIENT.search(text):
        ref = _ref()
        codes = [c.upper() for c in q.codes if ref.code(c.upper()) is not None]
        if not codes:
            from index.entities import product as product_info

            codes = [product_info(pid).hcpcs for pid in q.products if product_info(pid).hcpcs]
        for c in codes[:3]:
            args = {"code": c, "units": q.figures.units or 1, "today": today.isoformat()}
            if q.figures.quarter:
                args["quarter"] = q.figures.quarter
            p.calls.append(("payment", args))
        return p
    return p


def _ask(p: Plan, needs: list[str], message: str) -> Plan:
    p.needs, p.ask_back = needs, message
    return p
