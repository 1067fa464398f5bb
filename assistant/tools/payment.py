"""Medicare Part B payment for a drug line: payment limit × units, coinsurance, Medicare's share
with and without the 2% sequestration.

The limit is kept exactly as published; money is rounded to cents (half-up) only for display.
A claim is priced with the file in force on its date of service: the quarter the date falls in.
Without a date, the newest quarter on hand is used and flagged when it is older than today's.
Inpatient CAR-T is paid through MS-DRG 018, not by this limit, and the result says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated

from assistant.core.dates import bare_year
from assistant.core.quantities import parse_number
from assistant.core.quarters import Quarter, QuarterError
from assistant.core.reference import LimitRow, LimitSource, Reference, get_reference
from assistant.tools._inputs import cents, fmt, money, to_date, to_int, to_text
from assistant.tools.component import Calculator, IsoDate, Number, Plan, Text, Whole, ask, param
from assistant.tools.errors import CalcError, MissingDataError, UnknownCodeError, UnknownQuarterError
from assistant.tools.planning import Planning, backed_by
from assistant.tools.result import ToolResult, cite
from assistant.tools.units import units_for  # units imports this module only when it plans, so no cycle

DEFAULT_COINSURANCE = Decimal("20")
SEQUESTRATION = Decimal("0.02")


def _source_cite(src: LimitSource, code: str) -> dict:
    label = f"{code} payment limit {src.quarter} ({src.kind}: {src.title})"
    return cite(f"payment_limits/{src.path}#{code}", label, src.rows[code].cite)


def payment(code: Annotated[Text, param("HCPCS code, e.g. Q2055", label="HCPCS code", example="Q2055")],
            units: Annotated[Whole, param("Billing units", label="Units", example=1)] = 1,
            quarter: Annotated[Text, param("Quarter like 2026Q1; overrides the date of service",
                                           label="Quarter (optional, e.g. 2026Q1)")] = None,
            dos: Annotated[IsoDate, param("Date of service (YYYY-MM-DD): priced with the file of the quarter it falls in",
                                          label="Date of service (optional, YYYY-MM-DD)")] = None,
            today: Annotated[IsoDate, param("Today's date (YYYY-MM-DD) for the stale-quarter check; default: the "
                                            "system date", form=False)] = None,
            paid: Annotated[Number, param("The amount a remittance paid for the line, to compare with Medicare's share",
                                          label="Remit paid (optional)")] = None,
            plan_type: Annotated[Text, param("traditional (default) or medicare-advantage", form=False)] = None,
            asks: Annotated[Text, param("A rule the question asks about besides the amounts: seq-on-coinsurance",
                                        form=False)] = None,
            setting: Annotated[Text, param("outpatient (default) or both (the inpatient route is said beside the amount)",
                                           form=False)] = None,
            figure: Annotated[Text, param("The one figure asked, to lead with: coinsurance, medicare or "
                                          "medicare_after_sequestration", form=False)] = None,
            reference: Reference | None = None) -> ToolResult:
    """Allowed amount, beneficiary coinsurance and Medicare's share for `units` of `code`, from the
    payment limit of the quarter the date of service falls in (or the quarter asked for)."""
    ref = get_reference(reference)
    if plan_type and plan_type.startswith("plan:"):
        found = ref.payer(plan_type.removeprefix("plan:"))
        payer = found.name if found is not None else plan_type.removeprefix("plan:")
        raise MissingDataError(f"My sources do not give what {payer} allows for {code}: a health plan pays a CAR-T line "
                               "under its contract with the hospital, not at the Part B payment limit. What traditional "
                               "Medicare pays is in the CMS payment limit files; ask for that, or check the plan's contract.",
                               field="plan_type")
    if plan_type == "medicare-advantage":
        raise MissingDataError("My sources do not give Medicare Advantage payment rates: an MA plan pays a CAR-T line "
                                 "under its contract with the hospital, not necessarily at the Part B payment limit. "
                                 "What traditional Medicare pays is in the CMS payment limit files; ask for that, or check "
                                 "the MA plan's contract.", field="plan_type")
    code = to_text(code, "code", "HCPCS code").upper()
    n = to_int(units, "units", "number of units", 1, 100_000)
    today = date.fromisoformat(today) if isinstance(today, str) else (today or date.today())
    service = to_date(dos, "dos")
    pick = _pick_quarter(ref, code, quarter, service)
    q, assumptions, warnings = pick.quarter, list(pick.assumptions), list(pick.warnings)
    sources = [s for s in ref.limit_sources(q) if code in s.rows]
    primary = sources[0]
    limit = primary.rows[code].payment_limit
    pct, from_source, coins_notes, coins_warnings = _coinsurance(ref, code, primary)
    assumptions += coins_notes
    warnings += coins_warnings + _source_warnings(ref, q, primary)
    money_ = _split(limit, n, pct)
    current = Quarter.of(today)
    if service is None:
        warnings += _quarter_warnings(q, today)
    alternatives, differ = _alternatives(sources, code, limit)
    warnings += differ
    if code.startswith("Q") and n != 1:
        warnings.append(f"{code} is billed as 1 unit per therapeutic dose; {n} units given.")
    assumptions += _standing_assumptions(code)
    values = {
        "code": code, "quarter": q, "quarter_reason": pick.reason, "asked_quarter": pick.asked,
        "dos": service.isoformat() if service else None, "units": n, "payment_limit": limit, "coinsurance_pct": pct,
        "coinsurance_from_source": from_source, "medicare_pct": Decimal(100) - pct, **money_,
        "source": {"kind": primary.kind, "title": primary.title, "file": primary.file, "yaml": primary.path,
                   "effective": primary.effective, "through": primary.through},
        "alternatives": alternatives, "current_quarter": str(current),
        "stale": service is None and Quarter.parse(q) < current,
    }
    citations = [_source_cite(s, code) for s in sources]
    citations.append(cite("rules#payment", "Payment rules: 42 CFR 414.904 (payment limit); the payment limit file's "
                          "co-insurance percentage, else 20%; 2% sequestration; MS-DRG 018 for inpatient CAR-T",
                          "The 2% sequestration reduces Medicare's share, not the coinsurance."))
    summary = _summary(code, pick, primary, limit, n, pct, money_, from_source)
    if paid is not None:
        values["remit"] = _remit(Decimal(paid), money_)
        summary = values["remit"]["text"] + "\n\n" + summary
    if setting == "both":
        summary += (f" — outpatient (Part B) line. **Inpatient: Medicare does not pay {code} at this limit; the stay is paid "
                    "under MS-DRG 018, which includes the product.**")
    notice = _not_on_hand(code, pick, service, today, quarter)
    if (figure in FIGURE_WORDS or figure == "medicare_pct") and paid is None and asks is None:
        where = _where(pick, primary) + ("" if from_source else "; at the 20% default coinsurance")
        # a share worked out at an assumed percentage: the line a coder copies says it is not the exact one
        unknown = "" if from_source else (f"**No file on hand gives {code}'s coinsurance percentage for {pick.quarter}, so "
                                          "the exact split is not known.** ")
        summary = notice + unknown + _figure_lead(figure, code, where, pct, money_) + "\n\n" + summary
    else:
        summary = notice + summary
    if asks == "why-coinsurance":
        summary = _why_coinsurance(ref, code, q, pct, from_source, primary) + "\n\n" + summary
    elif asks == "seq-on-coinsurance":
        summary = (f"**No: the 2% sequestration comes off Medicare's share only ({money(money_['medicare'])} − "
                   f"{money(money_['sequestration'])}), not off the patient's coinsurance ({money(money_['coinsurance'])}, "
                   f"figured on the full allowed amount).**\n\n" + summary)
    return ToolResult(name="payment",
                      inputs={"code": code, "units": n, "quarter": quarter, "dos": values["dos"], "today": today.isoformat(),
                              "paid": paid},
                      values=values, summary=summary,
                      formula=_formula(limit, n, pct, money_), assumptions=assumptions, warnings=warnings,
                      citations=citations)


def _why_coinsurance(ref: Reference, code: str, q: str, pct: Decimal, from_source: bool, primary: LimitSource) -> str:
    """'why is coins on Q2056 only 18.291% and not 20': the file's percentage and its note, first."""
    if from_source:
        return (f"**{code} coinsurance in {q} is {pct.normalize():f}%: {_coins_reason(primary.rows[code], pct)}.** "
                "The payment uses each quarter's file percentage.")
    lower = _latest_cms_coinsurance(ref, code)
    if lower is None:
        return f"**No CMS file on hand gives {code} a coinsurance percentage: {q} is figured at the 20% default.**"
    row = _cms_row(ref, lower[0], code)
    return (f"**{code} coinsurance in the newest CMS file on hand ({lower[0]}) is {lower[1]}%: {_coins_reason(row, lower[1])}.** "
            f"No CMS file for {q} is on hand, so a {q} figure uses the 20% default until that quarter's file is imported.")


def _coins_reason(row: LimitRow, pct: Decimal) -> str:
    if row.notes:
        return f"the CMS payment limit file marks it \"{row.notes}\"" + (" (not the usual 20%)" if pct < 20 else "")
    return "the percentage the CMS payment limit file gives"


@dataclass(frozen=True)
class _Pick:
    quarter: str
    reason: str                  # why this quarter, in words (shown with the result)
    asked: str | None = None     # the quarter of the date of service, when it differs from `quarter`
    assumptions: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def unpriced_procedures(codes: list[str]) -> str:
    """Why no Medicare amount is given for procedure (CPT) codes, in one sentence."""
    return (f"My sources do not give a Medicare amount for {', '.join(codes)}: the CMS files here are the Part B drug "
            "payment limits, which do not price procedure codes.")


def _pick_quarter(ref: Reference, code: str, quarter: str | None, service: date | None) -> _Pick:
    """The quarter to price: the one asked for; else the one the date of service falls in (the
    newest on hand, said so, when the date is later than every file); else the newest on hand."""
    available = ref.quarters()
    with_code = [q for q in available if any(code in s.rows for s in ref.limit_sources(q))]
    if not available:
        raise UnknownQuarterError("No payment-limit files are loaded (sources/reference/payment_limits/).", field="quarter")
    if not with_code and (cpt := ref.cpt.get(code)) is not None:  # "what does medicare allow for 38228"
        raise MissingDataError(unpriced_procedures([f"{code} (CPT: {cpt.descriptor})"]), field="code")
    if not with_code:
        raise UnknownCodeError(f"No payment limit for '{code}' in the loaded quarters ({', '.join(available)}).", field="code")
    if quarter not in (None, ""):
        return _asked_quarter(code, quarter, available, with_code)
    if service is None:
        q = with_code[-1]
        return _Pick(q, f"no date of service or quarter given: the newest quarter on hand for {code}",
                     assumptions=(f"Quarter not given: using the newest quarter with a limit for {code} ({q}).",))
    asked = str(Quarter.of(service))
    if asked in with_code:
        return _Pick(asked, f"the date of service {service.isoformat()} falls in {asked}")
    if Quarter.parse(asked) < Quarter.parse(with_code[0]):
        if asked in available:  # the file is on hand and does not list the code: it did not exist yet
            raise UnknownCodeError(f"{code} is not in the {asked} payment limit file (date of service {service.isoformat()}): "
                                   f"it is listed from {with_code[0]} on, so it has no {asked} limit.", field="dos")
        raise UnknownQuarterError(f"No payment limit for {code} is on hand for {asked} (date of service "
                                  f"{service.isoformat()}): the oldest quarter on hand is {with_code[0]}.", field="dos")
    if Quarter.parse(asked) > Quarter.parse(with_code[-1]):
        q = with_code[-1]
        return _Pick(q, f"the date of service {service.isoformat()} falls in {asked}, later than every file on hand; "
                        f"{q} is the newest", asked=asked,
                     warnings=(f"⚠ No payment limit for {asked} (date of service {service.isoformat()}) is on hand: "
                               f"the figure shown is {q}'s, the newest on hand. The {asked} limit may differ.",))
    raise UnknownCodeError(f"{asked} has no payment limit for {code}. Quarters with {code}: {', '.join(with_code)}.", field="code")


def _asked_quarter(code: str, quarter: str, available: list[str], with_code: list[str]) -> _Pick:
    try:
        q = str(Quarter.parse(quarter))
    except QuarterError as exc:
        raise CalcError(str(exc), field="quarter") from None  # malformed: the user fixes it
    if q not in available:
        raise UnknownQuarterError(f"No payment limits loaded for {q}. Available quarters: {', '.join(available)}.", field="quarter")
    if q not in with_code:
        raise UnknownCodeError(f"{q} has no payment limit for {code}. Quarters with {code}: {', '.join(with_code)}.", field="code")
    return _Pick(q, f"{q} was asked for")


def _source_warnings(ref: Reference, q: str, primary: LimitSource) -> list[str]:
    """A figure that is not from a CMS file says so, with the newest CMS file on hand."""
    if primary.kind == "cms-file":
        return []
    newest = ref.cms_quarters()[-1] if ref.cms_quarters() else "none"
    return [f"⚠ No CMS payment limit file for {q} is on hand (the newest CMS file on hand is {newest}): the figure "
            f"shown is the one {primary.title} quotes for {q}."]


def _coinsurance(ref: Reference, code: str, primary: LimitSource) -> tuple[Decimal, bool, list[str], list[str]]:
    """(percentage, whether the file gives it, assumptions, warnings): the file's figure, else
    the 20% default, flagged when a CMS file shows a lower (inflation-adjusted) one."""
    given = primary.rows[code].coinsurance_pct
    if given is not None:
        return given, True, [], []
    assumptions = [f"The {primary.kind} source gives no coinsurance percentage for {code}: the 20% default is used."]
    warnings = []
    lower = _latest_cms_coinsurance(ref, code)
    if lower is not None and lower[1] < Decimal("20"):
        warnings.append(f"⚠ Coinsurance may be lower than 20%: the newest CMS file loaded ({lower[0]}) gives "
                        f"{code} a coinsurance of {lower[1]}% (inflation-adjusted). Import this quarter's CMS "
                        "payment limit file for the exact figure.")
    return DEFAULT_COINSURANCE, False, assumptions, warnings


def _split(limit: Decimal, n: int, pct: Decimal) -> dict[str, Decimal]:
    """Allowed, coinsurance, Medicare's share and sequestration, exact and in cents. The cent
    figures add up on the page: Medicare's share = rounded allowed − rounded coinsurance."""
    allowed = limit * n
    coins = allowed * pct / 100
    medicare = allowed - coins
    seq = medicare * SEQUESTRATION
    allowed_c, coins_c = cents(allowed), cents(coins)
    medicare_c = allowed_c - coins_c
    seq_c = cents(medicare_c * SEQUESTRATION)
    return {"allowed_exact": allowed, "allowed": allowed_c, "coinsurance_exact": coins, "coinsurance": coins_c,
            "medicare_exact": medicare, "medicare": medicare_c, "sequestration_exact": seq, "sequestration": seq_c,
            "medicare_after_sequestration_exact": medicare - seq, "medicare_after_sequestration": medicare_c - seq_c}


def _quarter_warnings(q: str, today: date) -> list[str]:
    current = Quarter.of(today)
    if Quarter.parse(q) < current:
        return [f"⚠ {q} limit shown; today ({today.isoformat()}) is in {current}. Payment limits change every "
                f"quarter — this figure may be out of date."]
    if Quarter.parse(q) > current:
        return [f"{q} is not yet in effect (today is in {current})."]
    return []


def _alternatives(sources: list[LimitSource], code: str, limit: Decimal) -> tuple[list[dict], list[str]]:
    """The other files' limits for the same quarter (a guide's figure beside the CMS file's)."""
    primary, alternatives, warnings = sources[0], [], []
    for other in sources[1:]:
        olimit = other.rows[code].payment_limit
        alternatives.append({"source": other.kind, "title": other.title, "file": other.path, "payment_limit": olimit})
        if olimit != limit:
            warnings.append(f"{other.title} gives a different {primary.quarter} limit for {code}: {money(olimit)} "
                            f"({fmt(olimit)}) vs {money(limit)} from {primary.title}.")
    return alternatives, warnings


_REMIT_FIGURES = (("medicare_after_sequestration", "Medicare's share after 2% sequestration"),
                  ("medicare", "Medicare's share before sequestration"), ("allowed", "the allowed amount"),
                  ("coinsurance", "the patient coinsurance"))


def _remit(paid: Decimal, m: dict[str, Decimal]) -> dict:
    """What a remittance's paid amount corresponds to: the figure it equals (to the cent), or
    how far it is from what Medicare should pay after sequestration."""
    for key, name in _REMIT_FIGURES:
        if abs(m[key] - paid) <= Decimal("0.01"):
            verdict = "not underpaid" if key == "medicare_after_sequestration" else "check the remit"
            return {"matches": key, "difference": Decimal(0),
                    "text": f"**The remit's {money(paid)} equals {name} ({money(m[key])}): {verdict}.**"}
    diff = paid - m["medicare_after_sequestration"]
    way = "below" if diff < 0 else "above"
    return {"matches": None, "difference": diff,
            "text": f"**The remit's {money(paid)} is {money(abs(diff))} {way} Medicare's share after 2% sequestration "
                    f"({money(m['medicare_after_sequestration'])}).** Formula: {money(paid)} − "
                    f"{money(m['medicare_after_sequestration'])} = {'−' if diff < 0 else ''}{money(abs(diff))}."}


def _standing_assumptions(code: str) -> list[str]:
    out = ["Part B deductible not applied (assumed already met).",
           "The 2% sequestration reduces Medicare's share only, not the coinsurance."]
    if code.startswith("Q2"):
        out.append("Outpatient/separately paid line only: inpatient CAR-T admissions are paid through MS-DRG 018, "
                   "not this payment limit.")
    return out


def _formula(limit: Decimal, n: int, pct: Decimal, m: dict[str, Decimal]) -> str:
    return (f"Allowed = {fmt(limit)} × {n} = {fmt(m['allowed_exact'])} ≈ {money(m['allowed_exact'])}; coinsurance = "
            f"{fmt(pct)}% × {fmt(m['allowed_exact'])} = {fmt(m['coinsurance_exact'])} ≈ {money(m['coinsurance_exact'])}; "
            f"Medicare = {money(m['allowed'])} − {money(m['coinsurance'])} = {money(m['medicare'])}; sequestration 2% × "
            f"{money(m['medicare'])} = {money(m['sequestration'])}; after sequestration: {money(m['medicare'])} − "
            f"{money(m['sequestration'])} = {money(m['medicare_after_sequestration'])}")


def _where(pick: _Pick, primary: LimitSource) -> str:
    """The quarter a figure is from, with what it is not: a billing guide's figure rather than a
    CMS file's, the newest on hand rather than the date of service's quarter. Every lead says it."""
    where = pick.quarter
    if primary.kind != "cms-file":
        where += f", the billing guides' figure; no CMS file for {pick.quarter} on hand"
    return where


def _not_on_hand(code: str, pick: _Pick, service: date | None, today: date, quarter: str | None) -> str:
    """A date of service later than every file, or no date and no file for this quarter ("what's
    medicare paying right now"): said before any figure, then the newest on hand."""
    current = Quarter.of(today)
    if pick.asked:
        on = f" (date of service {service.isoformat()})" if service else ""
        return f"**No {code} payment limit for {pick.asked}{on} is on hand.** The newest on hand, {pick.quarter}: "
    if service is None and not quarter and Quarter.parse(pick.quarter) < current:
        return f"**No {code} payment limit for {current} (this quarter) is on hand.** The newest on hand, {pick.quarter}: "
    return ""


def _summary(code: str, pick: _Pick, primary: LimitSource, limit: Decimal, n: int, pct: Decimal,
             m: dict[str, Decimal], from_source: bool) -> str:
    where = _where(pick, primary)
    split = (f"patient coinsurance {money(m['coinsurance'])} ({fmt(pct)}%); Medicare pays {money(m['medicare'])} "
             f"({money(m['medicare_after_sequestration'])} after 2% sequestration)")
    if not from_source:
        # an assumed percentage stays out of the line a coder copies
        return (f"**{code} payment limit ({where}): ${fmt(limit)} per unit.** × {n}: allowed {money(m['allowed'])}.\n\n"
                f"At the 20% default coinsurance (no file on hand gives a percentage for {pick.quarter}): {split}")
    return f"**{code} payment limit ({where}): ${fmt(limit)} per unit.** × {n}: allowed {money(m['allowed'])}; {split}"


def _figure_lead(figure: str, code: str, quarter: str, pct: Decimal, m: dict[str, Decimal]) -> str:
    """The one figure a question asks for ("coins % for Q2053 in Q4 2025"), first."""
    if figure == "coinsurance":
        return (f"**Patient coinsurance on {code} ({quarter}): {fmt(pct)}% of the allowed amount "
                f"({money(m['allowed'])}) = {money(m['coinsurance'])}.**")
    if figure == "medicare_pct":
        share = Decimal(100) - pct
        return (f"**Medicare pays {fmt(share)}% of the allowed amount on {code} ({quarter}): the coinsurance is {fmt(pct)}%"
                f"{'' if pct == DEFAULT_COINSURANCE else ', not 20%'} ({money(m['medicare'])} of {money(m['allowed'])}; "
                f"{money(m['medicare_after_sequestration'])} after 2% sequestration).**")
    if figure == "medicare_after_sequestration":
        return (f"**2% sequestration on {code} ({quarter}): {money(m['sequestration'])} off Medicare's "
                f"{money(m['medicare'])}, so Medicare pays {money(m['medicare_after_sequestration'])}.**")
    return (f"**Medicare pays {money(m['medicare'])} on {code} ({quarter}), "
            f"{money(m['medicare_after_sequestration'])} after 2% sequestration.**")


def _cms_row(ref: Reference, quarter: str, code: str) -> LimitRow | None:
    """`code`'s row in the CMS payment limit file of `quarter`, if that file is loaded and has it."""
    return next((s.rows[code] for s in ref.limit_sources(quarter) if s.kind == "cms-file" and code in s.rows), None)


def _latest_cms_coinsurance(ref: Reference, code: str) -> tuple[str, Decimal] | None:
    """The newest CMS quarter's coinsurance percentage for `code`, if any is loaded."""
    for quarter in reversed(ref.quarters()):
        row = _cms_row(ref, quarter, code)
        if row is not None and row.coinsurance_pct is not None:
            return quarter, row.coinsurance_pct
    return None


# --- the component ------------------------------------------------------------------------
# the one figure of a payment a question asks for (payment and payment_change lead with it)
FIGURE_WORDS = {
    "coinsurance": re.compile(r"\bcoins\w*|co-?insurance|patient (?:pays?|owes|share|responsibility)|\bpt (?:pays?|owes)", re.I),
    "medicare_after_sequestration": re.compile(r"\bseq\w*|after sequestration", re.I),
    "medicare": re.compile(r"medicare(?:.s)? (?:pays?|share|portion|payment|pmt|pymt|paid)|program payment", re.I),
}
PAYMENT_NUMBER = re.compile(r"payment limit|\bpayment\b|\b(?:pmts?|pymts?|paymts?)\b|\bremit\w*|\bEOB\b|\bERA\b|\blimits?\b|"
                            r"\bASP\b|\ballow(?:ed|able|s)?\b|\bpric(?:e|ed|ing)\b|reimburs|"
                            r"coinsurance|co-insurance|\bcoins\b|"
                            r"sequestration|\bseq\b|medicare (?:share|pays?|paying)|how much|\bprice\b|\brate\b|\bcosts?\b|"
                            r"\bcheaper\b|\bpricier\b|\bexpensive\b|"
                            r"patient (?:pays?|owes|responsibility)|\bpay(?:s|ment)?\b.*\bunits?\b|\$\s?\d|"
                            r"\bwhat (?:does|do|will|would|did) (?:\w+ ){0,4}pay\b", re.I)
# the limit itself asked beside another figure ("limit and coins %"): the whole line, not one figure
LIMIT_TOO = re.compile(r"\blimit\b|\ballow(?:ed|able)\b|\bASP\b|\bprice\b|\brate\b", re.I)
# the amount a remittance paid ("remit paid 383,959.20", "ERA shows $380,000")
_REMIT = re.compile(r"\b(?:remit(?:tance)?|EOB|ERA|RA|pd|paid|got|received|check)\b(?:\s+(?:paid|shows?|was|for|of|is))?\s*:?\s*"
                    r"\$?\s?(\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d{4,}(?:\.\d{1,2})?|\d{2,3}(?:\.\d{1,3})?\s?[kK]\b)", re.I)
_AFTER_BOTH = re.compile(r"\bafter\s+(?:the\s+)?(?:coins\w*|co-?insurance|seq\w*)\b", re.I)  # "what does it pay after coins and seq"
# "why is coins on Q2056 only 18.291% and not 20": the file's percentage explained
_WHY_COINS = re.compile(r"\bwhy\b[^?]{0,60}\b(?:coins\w*|co-?insurance)\b|"
                        r"\b(?:coins\w*|co-?insurance)\b[^?]{0,40}\b(?:not|instead of|rather than|less than|below|under|lower than)\s+20\b", re.I)
_PCT = re.compile(r"(?<![\d.])(\d{1,2}\.\d{1,3})\s*%")


# "what % of the allowed does medicare pay, is it 80?": Medicare's share as a percentage
_MEDICARE_PCT = re.compile(r"(?:what|which|wat)\s+(?:%|percent\w*|pct\b)[^?]{0,40}\b(?:medicare|mcr|cms)\b(?:\s+\w+){0,2}\s+pays?\b|"
                           r"\b(?:medicare|mcr|cms)\s+pays?\s+(?:what|which)\s+(?:%|percent\w*|pct\b)", re.I)


def _figure_asked(text: str) -> str | None:
    """The one figure a question asks for, to lead with; None for the whole line ("limit and coins %")."""
    if _MEDICARE_PCT.search(text):
        return "medicare_pct"
    asked = [k for k, rx in FIGURE_WORDS.items() if rx.search(text)]
    return asked[0] if len(asked) == 1 and not LIMIT_TOO.search(text) else None


def _rule_asked(p: Planning, rule: str) -> bool:
    """This turn asks about a rule of rules.yaml (its `when`): "does the 2% seq come off the pt's coins?"."""
    row = next((r for r in p.ref.rules if r.get("id") == rule), None)
    return row is not None and re.search(row.get("when", "$^"), p.q.text, re.I) is not None


def _quarter_of_pct(p: Planning, extra: dict) -> dict:
    """The CMS quarter whose coinsurance for the code is the percentage typed (no date given)."""
    m, codes = _PCT.search(p.q.text), p.product_codes()
    if m is None or not codes or extra.get("quarter") or extra.get("dos"):
        return {}
    typed = Decimal(m.group(1))
    for q in reversed(p.ref.cms_quarters()):
        row = _cms_row(p.ref, q, codes[0])
        if row is not None and row.coinsurance_pct is not None and row.coinsurance_pct == typed:
            return {"quarter": q}
    return {}


_MEDICARE_WORDS = re.compile(r"payment limit|\bASP\b|\bCMS\b|\bmedicare\b(?! advantage)|\bpart b\b|\bFFS\b", re.I)
_MEDICARE_ADVANTAGE = re.compile(r"\bMA\b|medicare advantage|\bMAPD\b|\bpart c\b", re.I)
INPATIENT = re.compile(r"\binpatient\b|\bDRG\b|\bbundl|\bseparately\b", re.I)
_TOPIC = re.compile(r"payment limit|ASP|\$", re.I)


# payment mechanisms other than the Part B payment limit: the sources say how they work
_OTHER_MECHANISM = re.compile(r"\bNTAP\b|new[- ]tech\w*(?: add-?on)?|\badd-?on payment|\boutliers?\b|\bAPC\b|\bOPPS\b|\bDRG\b", re.I)
_LIMIT_WORDS = re.compile(r"payment limit|\bASP\b|\ballow(?:ed|able)\b|\bcoins\w*|co-?insurance", re.I)
_HOW_OFTEN = re.compile(r"\bhow often\b|\bwhen (?:does|do|is|are) (?:the )?(?:\w+ ){0,3}(?:update|publish|change)|"
                        r"\bhow (?:is|are) (?:the )?(?:\w+ ){0,4}(?:set|calculated|determined)\b", re.I)


def _plan(p: Planning) -> Plan | None:
    """A number-asking payment question about a code (or a product's Q-code); inpatient CAR-T
    is paid within MS-DRG 018, so it is answered from the sources (the composer's setting lead)."""
    asked = PAYMENT_NUMBER.search(p.text) or "question" in p.q.inherited  # "and carvykti?" after a price
    if _HOW_OFTEN.search(p.q.text) or _OTHER_MECHANISM.search(p.q.text) and not _LIMIT_WORDS.search(p.q.text):
        return None  # "how often does the ASP update", "does medicare pay NTAP": the rule, from the sources
    # "we got 470,559.34 for carvykti 2/2/26, correct?": a remit amount for a product is a payment question
    remit = _REMIT.search(p.q.text) is not None and bool(p.product_codes())
    if not (p.has("payment") and asked or remit) or INPATIENT.search(p.q.text) and p.q.setting != "both" or p.q.setting == "inpatient":
        return None
    if (first := _procedures(p) or _which_quarter(p)) is not None:
        return first
    extra: dict = {"quarter": p.q.figures.quarter} if p.q.figures.quarter else {}
    if p.given_dos and not extra:
        extra["dos"] = p.given_dos.isoformat()
    if (m := _REMIT.search(p.q.text)) is not None:  # this turn's remit amount and rule question, not the followed turn's
        amount = m.group(1).rstrip("kK ")
        extra["paid"] = str(parse_number(amount) * (1000 if m.group(1)[-1] in "kK" else 1))  # "430k"
    if p.q.setting == "both" and p.q.service_date is not None and p.q.service_date.source != "today":
        extra["setting"] = "both"  # "OP DOS 3/3/26 allowed, and what if IP": the amount, and the inpatient route beside it
    elif p.q.setting == "both":
        return None  # "IP vs OP, how is it paid": the routes, from the sources
    if _WHY_COINS.search(p.q.text) and "paid" not in extra:
        extra |= {"asks": "why-coinsurance", **_quarter_of_pct(p, extra)}
    elif _rule_asked(p, "sequestration") and not _AFTER_BOTH.search(p.q.text) and "paid" not in extra:
        extra["asks"] = "seq-on-coinsurance"  # with a remit amount, the shortfall leads
    elif "paid" not in extra and (figure := _figure_asked(p.q.text)):
        extra["figure"] = figure
    plans = [x for x in p.q.payers if x != "medicare"]
    if _MEDICARE_ADVANTAGE.search(p.text) and not plans or plans and not _MEDICARE_WORDS.search(p.q.text):
        extra["plan_type"] = "medicare-advantage" if not plans else f"plan:{plans[0]}"  # "what will carepartners allow"
    return _priced(p, extra)


def _procedures(p: Planning) -> Plan | None:
    """Procedure (CPT) codes only: no drug payment limit prices them, and the calculator says so."""
    procedures = [c.upper() for c in p.q.codes if c.upper() in p.ref.cpt]
    return Plan(calls=[("payment", {"code": c}) for c in procedures[:3]]) if procedures and not p.product_codes() else None


def _which_quarter(p: Planning) -> Plan | None:
    """A year (typed alone, or as the date) spans four quarters with different limits: ask which."""
    d = p.q.service_date
    year = bare_year(p.q.text) if (d is None or d.source == "today") and not p.q.figures.quarter else None
    span = year.group(1) if year else d.label() if d is not None and d.source != "today" and d.quarter is None \
        and not p.q.figures.quarter else None
    if span:
        return ask(["dos"], f"Medicare prices a claim line by the quarter of its date of service, and {span} "
                            "has four quarters with different payment limits. Which date of service (or quarter)?")
    return None


def _priced(p: Planning, extra: dict) -> Plan:
    """A payment call per code (three at most), each after the units calculator's when an amount
    gives the units."""
    calls: list[tuple[str, dict]] = []
    converted = False
    for typed in p.product_codes()[:3]:
        code, units, step = _units_of_amount(p, typed)
        calls += [step] if step else []
        converted = converted or step is not None
        calls.append(("payment", {"code": code, "units": units, "today": p.today.isoformat(), **extra}))
    return Plan(calls=calls, derived=p.administered_mg()[1] if converted else [])


def _units_of_amount(p: Planning, code: str) -> tuple[str, int, tuple[str, dict] | None]:
    """(the code to price, its units, the units calculator's call or None). Units typed ("2 units")
    are the line's; for a drug billed per mg, the administered amount is converted by the units
    calculator, whose call goes first so the answer shows the conversion ("elrexfio 76 mg J1323
    allowed": 76 units, then 76 × the limit), and a code retired by the date of service is priced
    as the code in force then (cy 1,000 mg on J9070 in 2026: J9075's 200 units); else 1 unit."""
    if p.q.figures.units:
        return code, int(p.q.figures.units), None
    row = p.ref.code(code)
    amount, _steps = p.administered_mg()
    if row is None or row.per_dose or amount is None:
        return code, 1, None
    days = p.days() or 1  # "58 mg/day x3": the course's units, each date's rounded up
    step = ("dose_units", {"code": code, "amount_mg": amount, "dos": p.dos.isoformat(), **({"days": days} if days > 1 else {}),
                           **p.vial_args()})  # "opened 153 mg vial": the JW line too
    if not row.in_force(p.dos) and row.drug and (now := p.ref.drug_code_on(row.drug, p.dos)) is not None:
        row = now
    return row.code, units_for(row.code, row, Decimal(str(amount))) * days, step


def plan_with_units(p: Planning) -> Plan | None:
    """The payment plan when it prices an administered amount (units calculator first) or the units
    typed: what the units calculator hands over to for "150 mg J9380 units + allowed" and "J9075
    342 units DOS 12/1/25 medicare allowed + coins"."""
    decision = _plan(p)
    if decision is None or not any(name == "payment" for name, _ in decision.calls):
        return None
    typed = p.q.figures.units is not None and p.administered_mg()[0] is None
    return decision if typed or any(name == "dose_units" for name, _ in decision.calls) else None


def _same_codes(p: Planning, first: Plan, priced: Plan) -> bool:
    """Price only the codes the other answer is about: "Q2056 descriptor + limit", the NDC's product
    ("carvykti NDC and payment limit"), the tocilizumab dose's J3262; not the product's Q-code after
    an administration CPT code."""
    about = {str(args["code"]).upper() for _name, args in first.calls if args.get("code")}
    if not about:  # an NDC look-up, a tocilizumab dose: about the product or drug the question names
        about = set(p.product_codes())
    return all(str(args.get("code", "")).upper() in about for name, args in priced.calls if name == "payment")


CALCULATOR = Calculator(
    name="payment", title="Medicare Part B payment", priority=70, compute=payment, plan=_plan,
    joins=frozenset({"ndc", "code_on_date", "tocilizumab_dose"}), joins_with=_same_codes,
    description="Medicare Part B payment for a HCPCS line: payment limit × units, coinsurance, Medicare's share "
                "with and without 2% sequestration, for a quarter (default newest).",
    supports=backed_by(_TOPIC, code=True),
)
