"""Administered amount -> HCPCS billing units, per date of service, with JW/JZ waste lines.

Units are rounded up per date of service (Medicare Claims Processing Manual ch. 17 §10) with
Decimal arithmetic, so 55.5 mg of a 50 mg code is exactly 2 units. A retired code (J9070) still
computes with its old unit size, loudly, next to the replacement code's units.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Any

from assistant.core.reference import Code, Reference, get_reference
from assistant.tools._inputs import ceil_units, fmt, plain, positive, to_date, to_decimal_list, to_int, to_text
from assistant.tools.component import (
    VIAL_COUNTS_DOC,
    VIAL_COUNTS_LABEL,
    VIAL_LABEL,
    Calculator,
    IsoDate,
    Number,
    Numbers,
    Plan,
    Text,
    Whole,
    ask,
    call,
    param,
)
from assistant.tools.errors import CalcError, UnknownCodeError
from assistant.tools.planning import UNITS_WORD, Planning, backed_by
from assistant.tools.result import ToolResult, cite

MAX_VIAL_COMBOS = 200_000


def code_row(code: Any, ref: Reference) -> tuple[str, Code]:
    text = to_text(code, "code", "HCPCS code").upper()
    row = ref.code(text)
    if row is None:
        if text in ref.cpt:
            raise UnknownCodeError(f"{text} is a CPT service code, not a drug code; it has no billing-unit conversion.", field="code")
        known = ", ".join(sorted(ref.hcpcs))
        raise UnknownCodeError(f"I don't have billing units for '{text}'. Known codes: {known}.", field="code")
    return text, row


def unit_size(row: Code) -> tuple[Decimal, str]:
    return row.unit_value, row.unit_kind


def code_citation(code: str, row: Code) -> dict:
    size, kind = unit_size(row)
    label = f"{code} ({row.descriptor}): 1 unit = {fmt(size)} {kind}" if kind != "dose" else \
        f"{code} ({row.descriptor}): 1 unit = one therapeutic dose"
    return cite(f"hcpcs.yaml#{code}", label, row.cite)


def best_vials(amount: Decimal, sizes: list[Decimal]) -> tuple[dict[Decimal, int], Decimal]:
    """Vials opened for `amount`: the combination with the least total content >= amount
    (ties: fewer vials). Returns ({size: count}, total content)."""
    sizes = sorted(sizes, reverse=True)
    smallest = sizes[-1]
    if amount / smallest > 2000:
        raise CalcError("The dose is too large for a vial calculation with these vial sizes.", field="vial_sizes")
    best: tuple[Decimal, int, dict] | None = None
    budget = [MAX_VIAL_COMBOS]

    def search(i: int, remaining: Decimal, counts: dict, total: Decimal, n: int) -> None:
        nonlocal best
        budget[0] -= 1
        if budget[0] < 0:
            return
        if remaining <= 0:
            if best is None or (total, n) < (best[0], best[1]):
                best = (total, n, dict(counts))
            return
        if i == len(sizes):
            return
        size = sizes[i]
        most = int(ceil_units(remaining, size))
        for k in range(most, -1, -1):
            if i == len(sizes) - 1 and k < most:
                break  # the last size must cover the rest
            counts[size] = k
            search(i + 1, remaining - size * k, counts, total + size * k, n + k)
        counts.pop(size, None)

    search(0, amount, {}, Decimal(0), 0)
    if best is None:
        raise CalcError("Could not work out the vials for this dose; give fewer vial sizes.", field="vial_sizes")
    return {s: c for s, c in best[2].items() if c}, best[0]


def opened_vials(vial_sizes: Any, vial_counts: Any) -> dict[Decimal, int] | None:
    """The vials actually opened, {size: count}, when the counts are given next to the sizes
    ("2 x 400 mg + 1 x 200 mg"); None when only the sizes on hand are known."""
    if vial_counts in (None, "", []):
        return None
    if not isinstance(vial_counts, (list, tuple)) or not isinstance(vial_sizes, (list, tuple)) \
            or len(vial_counts) != len(vial_sizes):
        raise CalcError("Give one vial count for each vial size (e.g. sizes 400, 200 and counts 2, 1).",
                        field="vial_counts")
    opened: dict[Decimal, int] = {}
    for size, count in zip(vial_sizes, vial_counts, strict=True):
        n = to_int(count, "vial_counts", "vial count", 0, 50)
        if n:
            key = positive(size, "vial_sizes", "vial size")
            opened[key] = opened.get(key, 0) + n
    return opened or None


def waste_lines(code: str, administered: Decimal, admin_units: int, size: Decimal, kind: str,
                vial_sizes: list[Decimal], opened: dict[Decimal, int] | None = None) -> tuple[dict, list[str]]:
    """JW/JZ for one date of service from the vials opened: the ones the question says were
    opened, else the fewest that cover the amount."""
    if opened:
        vials, content = opened, sum((s * c for s, c in opened.items()), Decimal(0))
        if content < administered:
            raise CalcError(f"The vials opened hold {fmt(content)} {kind}, less than the {fmt(administered)} {kind} "
                            "given: check the vial counts or the amount.", field="vial_counts")
    else:
        vials, content = best_vials(administered, vial_sizes)
    discarded = content - administered
    content_units = ceil_units(content, size) if content else 0
    jw_units = max(content_units - admin_units, 0)
    notes = []
    vial_text = " + ".join(f"{c} × {fmt(s)} {kind}" for s, c in sorted(vials.items(), reverse=True))
    if discarded == 0:
        modifier = "JZ"
        notes.append(f"{vial_text} used completely: no waste, report JZ on the {code} line.")
    elif jw_units > 0:
        modifier = "JW"
        notes.append(f"{vial_text} opened ({fmt(content)} {kind}); {fmt(discarded)} {kind} discarded → "
                     f"report a separate {code}-JW line with {jw_units} unit(s) (no JZ on the administered line when JW is reported).")
    else:
        modifier = "none"
        notes.append(f"{vial_text} opened ({fmt(content)} {kind}); {fmt(discarded)} {kind} discarded, but it is "
                     f"inside the rounded-up administered units ({admin_units} × {fmt(size)} {kind} = "
                     f"{fmt(size * admin_units)} {kind}), so a JW line would carry 0 units. Check your MAC's "
                     f"instructions on whether to report JZ.")
    return {"vials": {plain(s): c for s, c in vials.items()}, "vial_text": vial_text, "vial_content": content,
            "discarded": discarded, "jw_units": jw_units, "modifier": modifier}, notes


def waste_text(code: str, lines: dict) -> str:
    """The vials to open and the waste line a coder adds, for the summary: JW with its units, or JZ."""
    vials = f"; vials: {lines['vial_text']}" if lines.get("vial_text") else ""
    if lines["modifier"] == "JW":
        return f"{vials}; **{code}-JW: {lines['jw_units']} unit(s)** on its own line ({fmt(lines['discarded'])} mg discarded)"
    if lines["modifier"] == "JZ":
        return f"{vials}; JZ on the {code} line (no waste)"
    return f"{vials}; {fmt(lines['discarded'])} mg discarded fits inside the rounded-up units: a JW line would carry 0 units"


def billed_verdict(code: str, billed: int | None, right: int, basis: str) -> str:
    """'J9185 x 6 units for 58 mg - right?': yes or no for the units a claim line carries, before the
    units worked out (an empty string when no billed units were given)."""
    if billed is None:
        return ""
    if billed == right:
        return f"**Yes: {billed} unit(s) of {code} is right for {basis}.** "
    return f"**No: {basis} is {right} unit(s) of {code}, not {billed}.** "


def units_for(code: str, row: Code, amount: Decimal) -> int:
    size, kind = unit_size(row)
    return 1 if kind == "dose" else ceil_units(amount, size)


def dose_units(code: Annotated[Text, param("HCPCS code, e.g. J9185", label="HCPCS code", example="J9185")],
               amount_mg: Annotated[Number, param("Amount given per date of service, in mg (not needed for Q-codes)",
                                                  label="Administered per day (mg)", example=55.5)] = None,
               days: Annotated[Whole, param("Number of dates of service with that amount", label="Dates of service",
                                            example=1)] = 1,
               vial_sizes: Annotated[Numbers, param("Single-dose vial sizes in mg, e.g. [50]", label=VIAL_LABEL,
                                                    example="50 or 80, 200, 400")] = None,
               dos: Annotated[IsoDate, param("Date of service (YYYY-MM-DD): decides which code is valid (default today)",
                                             label="Date of service (optional, YYYY-MM-DD)")] = None,
               billed_units: Annotated[Whole, param("Units on a claim line to check, when no mg is given ('J9185 x 167')",
                                                    label="Units billed (optional)")] = None,
               vial_counts: Annotated[Numbers, param(VIAL_COUNTS_DOC, label=VIAL_COUNTS_LABEL)] = None,
               reference: Reference | None = None) -> ToolResult:
    """Billing units for `amount_mg` given on each of `days` dates of service, with the code in
    force on the date of service (J9070 before April 2024, J9075 after)."""
    ref = get_reference(reference)
    code, row = code_row(code, ref)
    n_days = to_int(days, "days", "number of dates of service", 1, 31)
    sizes = to_decimal_list(vial_sizes, "vial_sizes", "vial sizes")
    day = to_date(dos, "dos") or date.today()
    billed = None if billed_units in (None, "") else to_int(billed_units, "billed_units", "units billed", 1, 100_000)
    if row.per_dose:
        result = _per_dose(code, row, amount_mg, n_days)
        result.summary = billed_verdict(code, billed, 1, "one therapeutic dose") + result.summary
        return result
    if amount_mg in (None, "") and billed is not None:
        return _billed_line(code, row, billed, day, ref)
    amount = positive(amount_mg, "amount_mg", "administered amount (mg)")
    line = _Line.of(code, row, amount, n_days)
    values: dict = {"code": code, "unit_size_mg": line.size, "amount_mg_per_day": amount, "days": n_days,
                    "units_per_day": line.per_day, "units_total": line.total, "billed_mg_per_day": line.size * line.per_day,
                    "dos": day.isoformat(), "in_force": row.in_force(day)}
    citations = [code_citation(code, row)]
    summary, warnings, assumptions = _code_on_date(ref, line, day, sizes, values, citations)
    if billed is not None and row.in_force(day):
        right = line.total if n_days > 1 and billed == line.total else line.per_day
        summary = billed_verdict(code, billed, right, f"{fmt(amount)} mg" + (f" on each of {n_days} dates" if right == line.total
                                                                               and n_days > 1 else "")) + summary
    for q in row.corpus_quotes:
        if q.get("differs"):
            citations.append(cite(f"doc:{q['doc']}", f"{q.get('section', '')} — differs: {q['differs']}", q["quote"]))
    if sizes:
        opened = opened_vials(vial_sizes, vial_counts)
        lines, notes = waste_lines(code, amount, line.per_day, line.size, "mg", sizes, opened)
        values["waste_per_day"] = lines
        summary += waste_text(code, lines)
        assumptions.extend(notes)
        assumptions.append("Vials: the ones the question says were opened." if opened else
                           "Vials: the combination with the least total content that covers the dose (then fewest vials).")
    else:
        assumptions.append("No vial sizes given: JW/JZ not worked out (give vial_sizes to get the discarded amount).")
    assumptions.append("Units are rounded up per date of service (Medicare Claims Processing Manual ch. 17 §10).")
    return ToolResult(
        name="dose_units",
        inputs={"code": code, "amount_mg": str(amount_mg), "days": n_days,
                "vial_sizes": [plain(s) for s in sizes] or None, "dos": day.isoformat(), "billed_units": billed,
                "vial_counts": [int(c) for c in vial_counts] if vial_counts else None},
        values=values, summary=summary, formula=line.formula(),
        assumptions=assumptions, warnings=warnings, citations=citations,
    )


def _billed_line(code: str, row, units: int, day: date, ref: Reference) -> ToolResult:
    """'J9185 x 167 units - correct?': the mg those units bill, and the units if the number was the
    mg (the guides' '1 mg = 1 unit' slip); a code not valid on the date is said first."""
    size, _ = unit_size(row)
    billed = size * units
    summary = f"**{units} units of {code} bill {fmt(billed)} mg ({fmt(size)} mg per unit).**"
    if size != 1:
        summary += (f" If {units} mg was given, that is {ceil_units(Decimal(units), size)} unit(s) on one date of service "
                    "(per date of service when split over several).")
    warnings = []
    if not row.in_force(day):
        now = ref.drug_code_on(row.drug, day) if row.drug else None
        warnings.append(f"{code} is not valid on {day.isoformat()}" + (f"; bill {now.code}." if now else "."))
        summary = f"**{code} is not valid on {day.isoformat()}**" + (f" (bill {now.code})" if now else "") + ". " + summary
    return ToolResult(name="dose_units", inputs={"code": code, "billed_units": units, "dos": day.isoformat()},
                      values={"code": code, "unit_size_mg": size, "billed_units": units, "billed_mg": billed,
                              "dos": day.isoformat(), "in_force": row.in_force(day)},
                      summary=summary, formula=f"{units} units × {fmt(size)} mg per unit = {fmt(billed)} mg",
                      warnings=warnings, citations=[code_citation(code, row)])


@dataclass(frozen=True)
class _Line:
    """One code's units for the administered amount."""

    code: str
    size: Decimal
    amount: Decimal
    per_day: int
    days: int

    @classmethod
    def of(cls, code: str, row: Code, amount: Decimal, days: int) -> _Line:
        return cls(code, row.unit_value, amount, ceil_units(amount, row.unit_value), days)

    @property
    def total(self) -> int:
        return self.per_day * self.days

    def formula(self) -> str:
        return (f"{fmt(self.amount)} mg ÷ {fmt(self.size)} mg per unit = {fmt((self.amount / self.size).normalize())} → "
                f"rounded up {self.per_day} unit(s) per date of service"
                + (f" × {self.days} dates = {self.total} units" if self.days > 1 else ""))

    def summary(self) -> str:
        return f"**{self.code}: {self.per_day} unit(s) per date of service**" + (
            f", {self.total} units over {self.days} dates" if self.days > 1 else "")

    def units_text(self) -> str:
        return f"{self.per_day} unit(s) per date of service" + (f" ({self.total} total)" if self.days > 1 else "")


def _code_on_date(ref: Reference, line: _Line, day: date, sizes: list[Decimal], values: dict,
                  citations: list[dict]) -> tuple[str, list[str], list[str]]:
    """(summary, warnings, assumptions) for the code as of the date of service: in force (with the
    change around it named), retired by then (bill the replacement), or not yet created (bill the
    code in force then)."""
    row = ref.code(line.code)
    if row.in_force(day):
        return line.summary(), [], _change_around(ref, row, day)
    if row.valid_to and day > row.valid_to:
        other = ref.code(row.replacement) if row.replacement else None
        why = (f"⚠ {line.code} is not valid for a date of service of {day.isoformat()}: it was in force through "
               f"{row.valid_to.isoformat()} ({row.note or row.validity_cite}).")
        verb = f"{line.code} was retired after {row.valid_to.isoformat()} — bill"
    else:
        other = ref.drug_code_on(row.drug, day) if row.drug else None
        why = (f"⚠ {line.code} did not exist on {day.isoformat()}: it is in force from "
               f"{row.valid_from.isoformat() if row.valid_from else 'later'} ({row.validity_cite}).")
        verb = f"{line.code} is not valid before {row.valid_from.isoformat() if row.valid_from else 'then'} — bill"
    if other is None:  # no code of the drug in force then: the units of this code are not what to bill
        summary = (f"**{line.code} is not valid for DOS {day.isoformat()}" + (
            f": it is in force from {row.valid_from.isoformat()}" if row.valid_from and day < row.valid_from else "")
            + f"; my reference data has no {row.drug or 'other'} code in force on that date.** "
            f"{line.code} basis ({fmt(line.size)} mg), for comparison only: {line.per_day}")
        return summary, [why], [f"The {line.code} units use its {fmt(line.size)} mg unit, for comparison only."]
    alt = _Line.of(other.code, other, line.amount, line.days)
    values["replacement"] = {"code": other.code, "unit_size_mg": alt.size, "units_per_day": alt.per_day, "units_total": alt.total}
    if sizes:
        values["replacement"]["waste_per_day"], _ = waste_lines(other.code, line.amount, alt.per_day, alt.size, "mg", sizes)
    citations.append(code_citation(other.code, other))
    others = [c for c in row.replaced_by if c != other.code and ref.code(c) and ref.code(c).in_force(day)]
    use = (f"Use {other.code} for that date: {fmt(line.amount)} mg ÷ {fmt(alt.size)} mg = {alt.units_text()}"
           + (f" (or the manufacturer-specific code: {', '.join(others)})." if others else "."))
    summary = (f"**{verb} {other.code} for DOS {day.isoformat()}: {alt.units_text()}**; "
               f"{line.code} basis ({fmt(line.size)} mg): {line.per_day}")
    return summary, [why, use], [f"The {line.code} units use its {fmt(line.size)} mg unit, for comparison only."]


def _change_around(ref: Reference, row: Code, day: date) -> list[str]:
    """The code is right for the date; say when it changes (or changed) around it."""
    out = []
    if row.valid_to:
        nxt = ref.code(row.replacement) if row.replacement else None
        out.append(f"{row.code} is the code in force on {day.isoformat()} (through {row.valid_to.isoformat()})"
                   + (f"; from {(row.valid_to + timedelta(days=1)).isoformat()} it is {nxt.code} "
                      f"({fmt(nxt.unit_value)} mg per unit)." if nxt else "."))
    if row.valid_from:
        out.append(f"{row.code} is in force from {row.valid_from.isoformat()} ({row.validity_cite}).")
    return out


def _per_dose(code: str, row: Code, amount_mg, n_days: int) -> ToolResult:
    """Q-codes bill one therapeutic dose: always 1 unit."""
    warnings = []
    if amount_mg not in (None, "", 0):
        warnings.append("Q-codes bill one therapeutic dose: the amount does not change the units.")
    if n_days > 1:
        warnings.append(f"{n_days} dates of service given; a CAR-T product is one dose, normally billed once.")
    return ToolResult(
        name="dose_units",
        inputs={"code": code, "amount_mg": None if amount_mg is None else str(amount_mg), "days": n_days},
        values={"code": code, "unit_size": "1 dose", "units_per_day": 1, "days": n_days, "units_total": n_days},
        summary=f"**{code}: 1 unit** (one therapeutic dose per claim line)",
        formula=f"{code} is billed per therapeutic dose: 1 unit",
        assumptions=[], warnings=warnings, citations=[code_citation(code, row)],
    )


# --- the component ------------------------------------------------------------------------
_TOPIC = re.compile(r"units?", re.I)


_PRICE_ASKED = re.compile(r"\$|pay|limit|allow|coins|pric(?:e|ed|ing)|\bcosts?\b", re.I)
_CODE_ASKED = re.compile(r"\b[qj][- ]?codes?\b|\bhcpcs\b|\bcodes?\b", re.I)


def _plan(p: Planning) -> Plan | None:
    """Units of a drug code for an administered amount ('Q2055 payment for 2 units' is payment's)."""
    pairs, steps = p.drug_amounts() if p.has("units") or p.has("lymphodepletion") else ([], [])
    if pairs:  # "cy 1,200 mg + flu 60 mg same DOS - units each": every drug its own line
        return Plan(calls=[("dose_units", {"code": code, "amount_mg": mg, "dos": p.dos.isoformat()}) for code, mg in pairs],
                    derived=steps)
    return _one_drug_plan(p)


def _priced(p: Planning) -> Plan | None:
    """"150 mg J9380 units + allowed": the units and the price of those units, planned by payment."""
    if not p.has("payment"):
        return None
    from assistant.tools.payment import plan_with_units  # payment builds on this module

    return plan_with_units(p)


def _one_drug_plan(p: Planning) -> Plan | None:
    code = p.drug_code()
    if (code is None and p.q.product and len(p.q.products) == 1 and not (p.has("lymphodepletion") or p.has("tocilizumab"))
            and not _CODE_ASKED.search(p.text)):  # "Q code + how many units": the code answer says both
        prod = p.ref.product_by_id(p.q.product)  # "tecartus billing units": the product's own Q-code
        code = prod.hcpcs if prod is not None and prod.hcpcs else None
    if not code or (code.startswith("Q") and p.has("payment") and not _units_turn(p)):
        return None
    claim_line = p.q.figures.units is not None and not p.has("payment")  # "Q2056 x 2 DOS 8/5/25 - is that right"
    if not ((p.has("units") or p.has("lymphodepletion")) and p.wants_number or claim_line or _drug_line(p)):
        return None
    if (priced := _priced(p)) is not None:
        return priced
    amount, derived = p.administered_mg()
    claimed = {"billed_units": int(p.q.figures.units)} if p.q.figures.units else {}  # a claim line's units to check
    if amount is None:
        return _without_amount(p, code, claimed)
    args: dict = {"code": code, "amount_mg": amount, "dos": p.dos.isoformat(), **claimed}
    if days := p.days():
        args["days"] = days
    args.update(p.vial_args())
    return call("dose_units", args, derived)


def _drug_line(p: Planning) -> bool:
    """'toci 680mg dos 2/1/26': a drug and the amount given, typed as a claim line with nothing else
    asked, wants that amount's units (a dose by weight or BSA is the dose calculators' question)."""
    f = p.q.figures
    return (f.dose_mg is not None and not (f.weight_kg or f.bsa_m2 or f.mg_per_m2 or f.mg_per_kg)
            and set(p.q.intents) <= {"tocilizumab", "lymphodepletion"} and not p.q.follows)


def _units_turn(p: Planning) -> bool:
    """"how many units" following a payment: this turn asks the units, not the payment again."""
    return bool(p.q.follows) and bool(UNITS_WORD.search(p.q.text)) and not _PRICE_ASKED.search(p.q.text)


def _without_amount(p: Planning, code: str, claimed: dict) -> Plan | None:
    """No administered amount: a Q-code is one dose (1 unit), a claim line's units are checked
    ("J9185 x 167 units"), a patient's amount is asked for; a price per unit is the payment
    calculator's ("J9185 limit per unit Q2 2025"); else the sources answer."""
    if not claimed and p.has("payment") and not _units_turn(p):
        return None
    if code.startswith("Q"):
        return call("dose_units", {"code": code, **claimed})
    if p.q.figures.units and p.q.figures.units > 1:
        return call("dose_units", {"code": code, "billed_units": int(p.q.figures.units), "dos": p.dos.isoformat()})
    if not p.about_patient:
        return Plan()
    return ask(["amount"], f"How many mg were administered? I convert the amount to {code} units.")


CALCULATOR = Calculator(
    name="dose_units", title="Dose → billing units", priority=50, compute=dose_units, plan=_plan,
    description="HCPCS billing units for an administered drug amount (rounded up per date of service), with "
                "JW/JZ waste when vial sizes are given. Q-codes are always 1 unit.",
    supports=backed_by(_TOPIC, code=True),
)
