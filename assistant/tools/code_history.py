"""The code in force on a date of service: CPT 0537T-0540T vs 38225-38228, J9070 vs J9075,
ICD-10-PCS XW033C3 vs the product-specific group 7 codes, Q2055's descriptor by quarter.

Claims are coded by the date of service (for an inpatient stay, the discharge date), and coders
work months back: "is 0540T ok for a 12/30/24 DOS" is answered with the code valid on that date
and the change around it, from the dated reference rows (CMS files, the CPT and ICD-10 code sets,
the MAC's article), never from today's code alone.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated

from assistant.core.dates import bare_year
from assistant.core.reference import Code, Reference, get_reference
from assistant.tools._inputs import to_date
from assistant.tools.component import Calculator, IsoDate, Plan, Text, call, param
from assistant.tools.errors import CalcError, MissingDataError, UnknownCodeError
from assistant.tools.planning import Planning, backed_by
from assistant.tools.result import ToolResult, cite


def code_on_date(
        dos: Annotated[IsoDate, param("Date of service, or the discharge date for an inpatient stay (YYYY-MM-DD)",
                                      label="Date of service / discharge (YYYY-MM-DD)", example="2024-12-30")],
        code: Annotated[Text, param("The code asked about, e.g. 0540T, J9070, XW033C3 (or give product for ICD-10-PCS)",
                                    label="Code", example="0540T")] = None,
        product: Annotated[Text, param("CAR-T product, for the product-specific ICD-10-PCS infusion codes",
                                       label="Product (for ICD-10-PCS)", choices="products")] = None,
        route: Annotated[Text, param("peripheral or central vein (ICD-10-PCS infusion codes)", label="Vein",
                                     choices=["peripheral", "central"])] = None,
        event: Annotated[Text, param("service, discharge or code_set (a code set's year, as in 'CPT 2025'): "
                                     "what the date is of", form=False)] = "service",
        period: Annotated[Text, param("The date as the question gave it when it is a month, quarter or year "
                                      "(e.g. 'February 2025'); `dos` is its first day", form=False)] = None,
        typed: Annotated[Text, param("A code the question typed that is not this code's (another product's Q-code, "
                                     "a CPT code that is not the CAR-T service's): said not to be it", form=False)] = None,
        reference: Reference | None = None) -> ToolResult:
    """The code valid on `dos` among a code and the codes that replaced it (or that it replaced)."""
    ref = get_reference(reference)
    day = to_date(dos, "dos")
    family = _family(ref, code, product, route)
    valid = [c for c in family if c.in_force(day)]
    asked = ref.any_code(code) if code else None
    prod = ref.product(product) if product else None
    if not valid and prod is not None and not code and not any(c.product == prod.id for c in family):
        raise MissingDataError(f"My reference data has no ICD-10-PCS infusion code for {prod.brand} in force on {day.isoformat()} "
                               f"(it holds the product-specific codes of "
                               f"{', '.join(sorted({p.brand for c in ref.pcs.values() if c.product and (p := ref.product_by_id(c.product))}))}"
                               "). Check the current ICD-10-PCS tables for this product.", field="product")
    if event == "code_set":  # "CPT 2025": a code set's year, not a date of service
        when = f"the {period or day.year} code set"
    else:
        when = ("a discharge" if event == "discharge" else "a date of service") + (
            f" in {period}" if period else f" {'on' if event == 'discharge' else 'of'} {day.isoformat()}")
    lead = (_unverified_lead(ref, asked, day, when) if asked is not None and asked.status == "unverified"
            else _lead(asked, valid, family, day, when) + _descriptor_change(asked, day))
    if typed and typed.upper() not in {c.code for c in family}:
        lead += " " + _not_this(ref, typed.upper())
    if asked is not None and asked.system == "ICD-10-CM" and asked.note:
        lead = f"**{asked.code}: {asked.note}** " + lead  # the guide's description of this code is wrong: the correction leads
    rows = [{"code": c.code, "system": c.system, "descriptor": c.descriptor_on(day),
             "valid_from": c.valid_from, "valid_to": c.valid_to} for c in family]
    return ToolResult(
        name="code_on_date",
        inputs={"dos": day.isoformat(), "code": code, "product": product, "route": route, "event": event},
        values={"dos": day.isoformat(), "asked": asked.code if asked else None, "in_force": [c.code for c in valid],
                "asked_in_force": bool(asked and asked.in_force(day)), "codes": rows},
        summary=lead,
        formula="; ".join(f"{c.code}: {c.validity() or 'no end date on record'}" for c in family)
        + f"; {day.isoformat()} → {', '.join(c.code for c in valid) or 'none of these'}",
        assumptions=[f"{c.code}: {c.descriptor_on(day)}" for c in valid],
        warnings=[c.note for c in valid if c.note and c.system == "ICD-10-CM" and c is not asked],
        citations=[cite(f"codes#{c.code}", f"{c.system} {c.code} ({c.validity() or 'in force'})", c.validity_cite or c.cite)
                   for c in family])


def _family(ref: Reference, code: str | None, product: str | None, route: str | None) -> list[Code]:
    """The asked code with its predecessors and successors (for ICD-10-PCS: the product's and the
    group 3 codes), filtered to the product and vein when given."""
    prod = ref.product(product) if product else None
    if code:
        start = ref.any_code(code)
        if start is None:
            raise UnknownCodeError(f"I have no dated record of the code '{code}'.", field="code")
        found = _chain(ref, start)
    elif product:
        if prod is None:
            raise CalcError(f"I don't know the product '{product}'.", field="product")
        found = [c for c in ref.pcs.values() if c.product in ("", prod.id)]
    else:
        raise CalcError("Give the code (e.g. 0540T) or, for the ICD-10-PCS infusion code, the product.", field="code")
    out = [c for c in found if not (prod and c.product and c.product != prod.id)]
    if route:
        out = [c for c in out if not c.route or c.route == route.lower()]
    return sorted(out, key=lambda c: (c.valid_from or date.min, c.code))


def _chain(ref: Reference, start: Code) -> list[Code]:
    """Every code reachable through replaced_by / replaces, both ways."""
    seen: dict[str, Code] = {start.code: start}
    todo = [start]
    while todo:
        c = todo.pop()
        near = ref.successors(c) + ([ref.any_code(c.replaces)] if c.replaces else [])
        near += [x for t in (ref.hcpcs, ref.cpt, ref.pcs) for x in t.values() if c.code in x.replaced_by]
        for n in near:
            if n is not None and n.code not in seen and (n.drug == start.drug or n.system != "HCPCS"):
                seen[n.code] = n
                todo.append(n)
    return list(seen.values())


def _lead(asked: Code | None, valid: list[Code], family: list[Code], day: date, when: str) -> str:
    """'**0540T** is the CPT code ... for a date of service of 2024-12-30 (valid through ...);
    from 2025-01-01 it is **38228**.' The change around the date is named either way."""
    if not valid:
        later = sorted((c for c in family if c.valid_from and c.valid_from > day), key=lambda c: c.valid_from)
        first_later = f"; the first in force after it: {' / '.join(f'**{c.code}**' for c in later if c.valid_from == later[0].valid_from)} " \
                      f"from {later[0].valid_from.isoformat()}" if later else ""
        return f"None of {', '.join(c.code for c in family)} is on record as in force for {when}{first_later}."
    first = asked if asked is not None and asked in valid else _preferred(valid)
    text = f"**{first.code}** is the {first.system} code ({first.descriptor_on(day)}) for {when}"
    text += f" ({first.validity()})" if first.validity() else ""
    others = [c for c in valid if c is not first]
    if others:
        text += f"; also in force then: {', '.join(c.code for c in others)}"
    if asked is not None and asked not in valid:
        text += f". {asked.code} is not: {asked.validity()}"
    later = [c for c in family if c.valid_from and c.valid_from > day and c not in valid]
    if later:
        start = min(c.valid_from for c in later)
        # a code that replaces the one in force, or one added beside it (a manufacturer-specific J-code)
        replaces = first.valid_to is not None and first.valid_to < start
        text += f"; from {start.isoformat()} {'it is' if replaces else 'also'} " + " / ".join(
            f"**{c.code}**" for c in sorted(later, key=lambda c: (not c.names, c.code)) if c.valid_from == start)
    elif first.valid_to:
        text += f"; after {first.valid_to.isoformat()} it is no longer valid"
    earlier = [c for c in family if c.valid_to and c.valid_to < day and c is not asked]
    if earlier and first.valid_from:
        # "before 2022-02-28 it was XW043C3" only when it ended the day before (it ended 2021-09-30)
        just_before = [c for c in earlier if c.valid_to + timedelta(days=1) == first.valid_from]
        text += (f"; before {first.valid_from.isoformat()} it was {' / '.join(c.code for c in just_before)}" if just_before
                 else "; " + "; ".join(f"{c.code} was valid through {c.valid_to.isoformat()}" for c in earlier))
    return text + "."


def _unverified_lead(ref: Reference, asked: Code, day: date, when: str) -> str:
    """'is 0541T a car-t code i should bill': a code the guides use that the code sets do not
    list among the CAR-T codes is said not to be one, with the CAR-T codes in force instead."""
    cart = sorted(c.code for c in ref.cpt.values() if c.status == "active" and "CAR-T" in c.descriptor and c.in_force(day))
    return (f"**{asked.code} is not on record as a CAR-T code: do not bill it for a CAR-T service without verifying it.** "
            f"{asked.note or asked.descriptor}"
            + (f" The CAR-T service codes in force for {when}: {', '.join(cart)}." if cart else ""))


def _not_this(ref: Reference, typed: str) -> str:
    """'Q2055 is not: it is Abecma's code': the typed code that does not answer, and what it is."""
    if (prod := ref.product(typed)) is not None:
        return f"{typed} is not: it is {prod.brand}'s code ({prod.generic})."
    if (row := ref.any_code(typed)) is not None:
        return f"{typed} is not: it is the {row.system} code for {row.descriptor}."
    return f"{typed} is not on record as a CAR-T code in my reference data: verify it before billing it."


def _descriptor_change(code: Code | None, day: date) -> str:
    """' The descriptor reads "...510 MILLION..." from 2024Q3.' for a code whose CMS descriptor changed."""
    if code is None or len({text for _, text in code.dosages}) < 2:
        return ""
    changes, last = [], None
    for q, text in code.dosages:
        if text != last and last is not None:
            changes.append((q, text))
        last = text
    now = code.descriptor_on(day)
    around = [f"from {q} it reads \"{text}\"" for q, text in changes if text != now] or \
             [f"it reads so from {q}" for q, text in changes if text == now]
    return f" The CMS descriptor changed: {'; '.join(around)} (CMS payment limit files)." if around else ""


def _preferred(valid: list[Code]) -> Code:
    """Among codes in force the same day, the default one (the code people name the drug by)."""
    return sorted(valid, key=lambda c: (not c.names, c.code))[0]


# --- the component ------------------------------------------------------------------------
_PCS = re.compile(r"ICD-?10-?PCS|\bPCS\b|procedure code", re.I)
# the vein the product goes into, as staff name the line: a PICC, port or CVC ends in a central vein,
# and ICD-10-PCS codes the body part by where the catheter ends
_ROUTE = re.compile(r"\b(?P<central>central|CVC|CVAD|PICC|port(?:-?a-?cath)?|mediport|hickman|tunnell?ed (?:line|cath\w*)|"
                    r"triple[- ]lumen)\b|\b(?P<peripheral>peripheral|PIV)\b", re.I)
_TOPIC = re.compile(r"CPT|HCPCS|PCS|code", re.I)
_CODE_SET_YEAR = re.compile(r"\b(?:CPT|HCPCS|ICD-?10(?:-?CM|-?PCS)?|PCS)\s*(?:code set\s*)?(20\d\d)\b", re.I)
# words of a question that asks what a code is ("what does 38226 cover", "38228 meaning?"):
# nothing else in the question (a product, a payer, an amount) asks something of its own
_ABOUT_A_CODE = frozenset(
    "what whats wat wht is does do the a an this that code cpt hcpcs mean means meaning stand stands for cover "
    "covers include includes describe description descriptor desc define definition used use explain it of "
    "about tell me pls please service "
    "we bill billed per day days daily each for apheresis harvest harvesting dos on".split())  # "do we bill 38225 per day of apheresis"
_COMPARED = re.compile(r"\bvs\.?\b|versus|\bdiff(?:erence)?\b|\bchange[ds]?\b|\bcompare", re.I)
_DISCHARGE_WORD = re.compile(r"\bdischarg\w*|\bd/?c\b|\bdc'?d\b", re.I)
_SERVICE_WORD = re.compile(r"\bDOS\b|\bclaims?\b|\bdates? of service\b", re.I)
_STILL = re.compile(r"\bstill\b|\bcurrent(?:ly)?\b|\bnow\b|\btoday\b|\bvalid\b|\bretired\b|\bdeleted\b", re.I)
# "can i bill 0537T", "is 0541T a car-t code i should bill", "0540T ok to bill?": whether to bill the named code
_BILL_IT = re.compile(r"\b(?:can|could|should|do|may|shall)\s+(?:i|we|you)\s+(?:still\s+)?(?:bill|use|report|code)\b|"
                      r"\b(?:ok|okay|fine|right|correct|allowed|good)\s+(?:to\s+)?(?:bill|use|report)\b|\bbillable\b|"
                      r"\bi\s+should\s+bill\b|\ba\s+car-?t\s+code\b", re.I)
_DESCRIPTOR = re.compile(r"descriptor|description|\bdesc\b|\bcells?\b|million|\b460\b|\b510\b", re.I)
# the CAR-T service a CPT question names -> the CPT code of that service (the code set's own order)
_SERVICES = [
    (re.compile(r"harvest|\bcollect(?:ion|ed|ing)?\b|apheresis|leukapheresis|\bpheresed\b", re.I), "0537T"),
    (re.compile(r"transport|shipping|\bship\b", re.I), "0538T"),
    (re.compile(r"receipt|\breceiv\w*|thaw|prep(?:aration)? (?:of|for) (?:the )?(?:car-?t )?(?:cells|admin)|"
                r"\bprep(?:ped|aring|ared)?\b(?! (?:for )?(?:transport|shipping|ship))", re.I), "0539T"),
    (re.compile(r"(?<!for )\badmin(?:istration|istered)?\b|(?<!for )infusion|infused", re.I), "0540T"),
]


def _plan(p: Planning) -> Plan | None:
    """A code question answered by the code in force on its date (today when none is given):
    a code with a history, a CAR-T service's CPT code, a product's ICD-10-PCS infusion code, the
    Q2055 descriptor of a quarter. An amount to convert is the units calculator's question."""
    d = p.q.service_date
    dated = d is not None and d.source != "today"
    if p.administered_mg()[0] is not None and not p.asks_unit_size or (
            p.has("payment") and not (_DESCRIPTOR.search(p.text) or _PCS.search(p.q.text) or _CPT_WORD.search(p.q.text))):
        # ("pcs? and does Q2056 pay", "admin cpt + is q2056 paid separately": the code too)
        return None  # an amount to convert: the units answer names the code and its units
    day = d.day if dated else p.dos
    args: dict = {"dos": day.isoformat(), "event": "discharge" if d is not None and d.event == "discharge" else "service"}
    if dated and d.precision != "day":
        args["period"] = d.label()
    if not dated and (m := _CODE_SET_YEAR.search(p.text) or bare_year(p.text)):  # "apheresis cpt 2026": the codes of that year's code set
        # "2023 discharge", "dc in 2023": a discharge year; "2024 claims", "DOS 2024": a service year
        around = p.text[max(0, m.start() - 14):m.end() + 14]
        event = ("discharge" if _DISCHARGE_WORD.search(around) else "service" if _SERVICE_WORD.search(around)
                 else "code_set")
        dated, args["dos"], args["period"], args["event"] = True, f"{m.group(1)}-01-01", m.group(1), event
    if m := _ROUTE.search(p.q.text) or _ROUTE.search(p.text):  # this turn's route over the followed question's
        args["route"] = "central" if m.group("central") else "peripheral"
    if p.q.product:
        args["product"] = p.q.product
    services = _services_asked(p, dated)
    if len(services) > 1:  # "CPTs for harvest, prep for transport, receipt/prep, admin": every one asked
        return Plan(calls=[("code_on_date", {**args, **_own_date(p, code), "code": code}) for code in services])
    compared = [c for c in p.q.codes if (row := p.ref.any_code(c)) is not None and _has_history(p.ref, row)]
    if dated and len(compared) > 1 and all(c.upper() in {x.code for x in _chain(p.ref, p.ref.any_code(compared[0]))} for c in compared):
        compared = compared[:1]  # "0540T ok for 12/30/24 or do i need 38228": one code history answers both
    if len(compared) > 1 and re.search(r"\bvs\.?\b|versus|difference|or\b|compare", p.text, re.I):
        return Plan(calls=[("code_on_date", {**args, "code": code}) for code in compared[:3]])  # "J9075 vs J9070"
    if len({str(x.quarter or x.label()) for x in p.q.dates}) > 1 and _COMPARED.search(p.text) and not _DESCRIPTOR.search(p.text):
        return None  # "Q2055 jan 2025 vs jan 2026 difference": a price change, payment_change's question
    code = _named_product_code(p) or _asked_code(p, dated) or _drug_code_asked(p)
    if code:
        other = _typed_other(p, code)
        return _and_product_code(p, call("code_on_date", {**args, "code": code, **({"typed": other} if other else {})}))
    return _product_pcs(p, args)


def _and_product_code(p: Planning, plan: Plan) -> Plan:
    """'abecma DOS 12/30/24: admin cpt + Q code + units': the CAR-T product's Q-code line (1 unit)
    joins the CPT answer when the question asks for both."""
    prod = p.ref.product_by_id(p.q.product or "")
    asked_code = plan.calls[0][1].get("code", "") if plan.calls else ""
    if (prod is None or not prod.hcpcs.startswith("Q") or asked_code.upper().startswith("Q")
            or not re.search(r"\bq[- ]?codes?\b|\bhcpcs\b", p.text, re.I)):
        return plan
    return Plan(calls=[*plan.calls, ("dose_units", {"code": prod.hcpcs})])


def _product_pcs(p: Planning, args: dict) -> Plan | None:
    """A product's ICD-10-PCS infusion code: asked as such, or following a question about
    another product's ("XW043A7 valid for discharge 3/1/22?" then "and for abecma?": that
    product's code of the same vein)."""
    if not p.q.product:
        return None
    if _PCS.search(p.text) or ("route" in args and p.has("code")):
        return call("code_on_date", args)
    followed = next((row for c in re.findall(r"\bXW0[34]3[0-9A-Z]{2}\b", p.q.follows, re.I)
                     if (row := p.ref.pcs.get(c.upper())) is not None), None)
    if followed is None:
        return None
    return call("code_on_date", {**args, **({"route": followed.route} if followed.route and "route" not in args else {})})


# services of the lymphodepletion or of supportive drugs have CPT codes of their own (96413 ...)
_NOT_CART_SERVICE = re.compile(r"chemo|\bcy\b|\bflu\b|fludara|cyclophos|lymphodepl|\bLD\b|toci|actemra|"
                               r"hydration|\bIVIG\b|\bpush\b|transfusion", re.I)


# "what do we bill for cell collection day": the service's code is asked, in the biller's words
_BILL_FOR = re.compile(r"\bwhat (?:do|should|can|would) (?:we|i|you) (?:bill|code|use|report)\b|"
                       r"\bhow (?:do|should|would) (?:we|i|you) (?:bill|code|report)\b|\bwhat(?:'?s| is) billed for\b", re.I)


def _own_date(p: Planning, service: str) -> dict:
    """'thawed/prepped 12/31/24, infused 1/2/25': the date typed in the service's own clause, when
    the question gives services different dates (each is coded by its own date of service)."""
    if len({d.start for d in p.q.dates}) < 2:
        return {}
    rx = next(rx for rx, code in _SERVICES if code == service)
    for clause in re.split(r"[,;]|\band\b|\bthen\b", p.q.text):
        dated = [d for d in p.q.dates if d.text and d.text in clause]
        if rx.search(clause) and len(dated) == 1:
            d = dated[0]
            return {"dos": d.day.isoformat(), "period": d.label() if d.precision != "day" else None}
    return {}


def _typed_other(p: Planning, code: str) -> str | None:
    """A code typed of the answer's system that is not the answer ("carvykti q2055?", "leukapheresis
    ... 38206?"): the answer says it is not the one."""
    row = p.ref.any_code(code)
    chain = {c.code for c in _chain(p.ref, row)} if row is not None else {code}
    system = row.system if row is not None else None
    return next((c.upper() for c in p.q.codes if c.upper() not in chain and system in (
        "HCPCS" if p.ref.product(c) else None, "CPT" if re.fullmatch(r"\d{5}", c) else None)), None)


_CPT_WORD = re.compile(r"\bcpts?\b", re.I)


def _named_product_code(p: Planning) -> str | None:
    """'carvykti q2055?', 'carvyktii - q2055 or q2056??': the Q-code of the one product named by
    its name, when the question types a product's Q-code (another product's, or a choice of codes)."""
    typed = [c.upper() for c in p.q.codes if p.ref.product(c) is not None]
    named = [prod for prod in p.ref.products if prod.hcpcs and any(
        re.search(r"(?<![\w-])" + re.escape(n) + r"(?![\w-])", p.q.text, re.I) for n in prod.names if n != prod.hcpcs.lower())]
    if len(named) == 1 and typed and any(c != named[0].hcpcs for c in typed):
        return named[0].hcpcs
    return None


def _asks_cpt(p: Planning, dated: bool) -> bool:
    """A CAR-T service's CPT code: asked as a CPT code, or as a code with a date (or 'still
    valid'), not about ICD-10-PCS or a lymphodepletion / supportive-drug service. Without a date
    the code in force today answers: the guides' 0537T-0540T were deleted in 2025."""
    if _PCS.search(p.text) or _NOT_CART_SERVICE.search(p.text):
        return False
    if re.search(r"\bcpts?\b", p.text, re.I) or _BILL_FOR.search(p.text) or any(re.fullmatch(r"\d{5}", c) and c in p.q.text for c in p.q.codes):
        return True  # ... or a CPT code typed beside the service ("leukapheresis 3/2026 bill 38206?")
    if (dated and not p.q.intents and not p.q.follows and any(rx.search(p.q.text) for rx, _code in _SERVICES)
            and not p.asks_coverage):  # "reauth for a 2nd infusion" asks the payer, not a code
        return True  # "cells received and prepped 12/31/24": a service and its date, typed as a claim line
    return bool((dated or _STILL.search(p.text)) and re.search(r"\bcodes?\b", p.text, re.I))


def _service_after(text: str, code: str) -> str | None:
    """The CPT code of the CAR-T service a thread names last, when it is named after `code`."""
    typed = max((m.end() for m in re.finditer(re.escape(code), text, re.I)), default=-1)
    last = max(((m.start(), service) for rx, service in _SERVICES for m in rx.finditer(text)), default=None)
    return last[1] if last is not None and last[0] > typed and last[1] != code.upper() else None


def _services_asked(p: Planning, dated: bool) -> list[str]:
    """The CPT codes of every CAR-T service a CPT question names, in the code set's order."""
    return [code for rx, code in _SERVICES if rx.search(p.text)] if _asks_cpt(p, dated) else []


def _asked_code(p: Planning, dated: bool) -> str | None:
    """The code to look up: one the question names (with a date, or asking if it is still
    valid; an ICD-10-CM code a guide misdescribes, always), the CPT code of the service it
    names, or a product's Q-code when the descriptor is asked."""
    if p.asks_unit_size and (unit_code := p.drug_code()) and not unit_code.startswith("Q"):
        return unit_code  # "is J9185 per 50mg?": the code's descriptor gives its unit
    misdescribed = [c for c in p.q.codes if (row := p.ref.icd10cm.get(c.upper())) is not None and row.note]
    if misdescribed:
        return misdescribed[0]
    pcs_asked = bool(_PCS.search(p.q.text))  # "pcs code + is q2055 paid on top of the drg": not the Q-code's history
    named = [c for c in p.q.codes if (row := p.ref.any_code(c)) is not None and not (pcs_asked and row.system != "ICD-10-PCS")
             and (_has_history(p.ref, row) or row.status == "unverified" and _BILL_IT.search(p.text))]
    # "0540T for the infusion ... and the thaw/prep of the cells that day?": the service the thread asks last
    later = _service_after(p.text, named[0]) if named and p.q.follows else None
    if named and (later or dated or _STILL.search(p.text) or _COMPARED.search(p.text) or _BILL_IT.search(p.text)):
        return later or named[0]  # "38225 vs 38206 for car-t collection": the code with a history, for today
    descriptor = re.search(r"descriptor|description|\bdesc\b", p.text, re.I)
    # (a Q-code named alone is its product's question; its descriptor asked, the CMS file's words: "Q2053 descriptor")
    # ... or typed alone with a date ("Q2053 dos 10/15/26"): the code on that date
    known = [c for c in p.q.codes if p.ref.any_code(c) is not None
             and (p.ref.product(c) is None or descriptor or dated and _only_about_code(p.text, c))]
    if len(known) == 1 and (_only_about_code(p.text, known[0]) or descriptor):
        return known[0]  # "whats the 38228 descriptor", "what is J9185": the code set's own words
    if _asks_cpt(p, dated):
        return next(iter(_services_asked(p, dated)), None)
    if dated and _DESCRIPTOR.search(p.text) and p.q.product and not _PCS.search(p.q.text):  # "cells went in ... pcs code": the PCS code
        prod = p.ref.product_by_id(p.q.product)
        return prod.hcpcs if prod and p.ref.code(prod.hcpcs) and p.ref.code(prod.hcpcs).dosages else None
    return None


_HCPCS_ASK = re.compile(r"\b[jq][- ]?codes?\b|\bhcpcs\b|\bbilling code\b|\bwhat(?:'?s| is)? the code\b|\bwhich code\b", re.I)


def _drug_code_asked(p: Planning) -> str | None:
    """'J code for elranatamab', 'cyclophosphamide hcpcs': the code a drug named (not coded) in
    the question is billed under on the date, from reference data (the guides' J9070 is retired)."""
    cart = [x for x in p.q.products if (prod := p.ref.product_by_id(x)) is not None and prod.hcpcs.startswith("Q")]
    if p.q.codes or cart or not _HCPCS_ASK.search(p.text):
        return None  # a CAR-T product's Q-code is the composer's (quoted with the guide's sentence)
    return p.drug_code()


def _only_about_code(text: str, code: str) -> bool:
    """The question asks what `code` is and nothing else."""
    rest = re.sub(re.escape(code), " ", text, flags=re.I)
    return all(w in _ABOUT_A_CODE for w in re.findall(r"[a-z']+", rest.lower().replace("'", "")))


def _has_history(ref: Reference, row: Code) -> bool:
    distinct = {text for _, text in row.dosages}
    return bool(row.valid_from or row.valid_to or row.replaced_by or row.replaces or ref.successors(row) or len(distinct) > 1)


# "... and is J9070 still ok for DOS 6/1/24": a typed code's validity asked beside another calculation
_STILL_VALID = re.compile(r"\b(?:still|valid|ok(?:ay)?|good|allowed|retired|deleted|active|current|replaced|use)\b", re.I)


def _code_part_asked(p: Planning, _first: Plan, mine: Plan) -> bool:
    """code_on_date joins another calculator's answer for a code the user typed and asks about
    ("... and is J9070 still ok"), or for the CPT code the question also asks for ("admin CPT +
    do i need JZ on the Q line")."""
    typed = {c.upper() for c in p.q.codes}
    if _STILL_VALID.search(p.text) and all(args.get("code", "").upper() in typed for _n, args in mine.calls):
        return True
    return bool(_CPT_WORD.search(p.text)) and all(re.fullmatch(r"\d{4}[0-9T]", str(args.get("code", ""))) for _n, args in mine.calls)


CALCULATOR = Calculator(
    name="code_on_date", title="Code in force on a date", priority=45, compute=code_on_date, plan=_plan,
    joins=frozenset({"lymphodepletion_plan", "rule_on_date"}), joins_with=_code_part_asked,
    description="Which code is valid on a date of service (or discharge): a code and the codes that replaced it, "
                "or the ICD-10-PCS CAR-T infusion code of a product, with the change around the date.",
    supports=backed_by(_TOPIC),
)

