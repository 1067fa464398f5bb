"""Medicare Part B payment for a drug line: payment limit × units, coinsurance, Medicare's share
with and without the 2% sequestration.

The limit is kept exactly as published; money is rounded to cents (half-up) only for display.
A quarter older than today's is flagged: limits change every quarter. Inpatient CAR-T is paid
through MS-DRG 018, not by this limit, and the result says so.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from assistant.tools._inputs import cents, fmt, money, to_int, to_text
from assistant.tools.errors import UnknownCodeError, UnknownQuarterError
from assistant.tools.reference import (LimitSource, Reference, get_reference, normalize_quarter,
                                       quarter_key, quarter_of)
from assistant.tools.result import ToolResult, cite

DEFAULT_COINSURANCE = Decimal("20")
SEQUESTRATION = Decimal("0.02")


def _source_cite(src: LimitSource, code: str) -> dict:
    row = src.rows[code]
    label = f"{code} payment limit {src.quarter} ({src.kind}: {src.title})"
    return cite(f"payment_limits/{src.path}#{code}", label, str(row.get("cite", "")))


def payment(code: Any, units: Any = 1, quarter: Any = None, today: Any = None,
            reference: Reference | None = None) -> ToolResult:
    """Allowed amount, beneficiary coinsurance and Medicare's share for `units` of `code`."""
    ref = get_reference(reference)
    code = to_text(code, "code", "HCPCS code").upper()
    n = to_int(units, "units", "number of units", 1, 100_000)
    if today is None:
        today = date.today()
    elif isinstance(today, str):
        today = date.fromisoformat(today)
    available = ref.quarters()
    with_code = [q for q in available if any(code in s.rows for s in ref.limit_sources(q))]
    if not available:
        raise UnknownQuarterError("No payment-limit files are loaded (sources/reference/payment_limits/).", field="quarter")
    if not with_code:
        raise UnknownCodeError(f"No payment limit for '{code}' in the loaded quarters ({', '.join(available)}).", field="code")
    warnings: list[str] = []
    assumptions: list[str] = []
    if quarter in (None, ""):
        q = with_code[-1]
        assumptions.append(f"Quarter not given: using the newest quarter with a limit for {code} ({q}).")
    else:
        q = normalize_quarter(str(quarter))
        if q not in available:
            raise UnknownQuarterError(f"No payment limits loaded for {q}. Available quarters: {', '.join(available)}.", field="quarter")
        if q not in with_code:
            raise UnknownCodeError(f"{q} has no payment limit for {code}. Quarters with {code}: {', '.join(with_code)}.", field="code")
    sources = [s for s in ref.limit_sources(q) if code in s.rows]
    primary, others = sources[0], sources[1:]
    row = primary.rows[code]
    limit = Decimal(str(row["payment_limit"]))
    pct_raw = row.get("coinsurance_pct")
    pct = Decimal(str(pct_raw)) if pct_raw not in (None, "") else DEFAULT_COINSURANCE
    if pct_raw in (None, ""):
        assumptions.append(f"The {primary.kind} source gives no coinsurance percentage for {code}: using the standard 20%.")
        lower = _latest_cms_coinsurance(ref, code)
        if lower is not None and lower[1] < Decimal("20"):
            warnings.append(f"⚠ Coinsurance may be lower than 20%: the newest CMS file loaded ({lower[0]}) gives "
                            f"{code} a coinsurance of {lower[1]}% (inflation-adjusted). Import this quarter's CMS "
                            "payment limit file for the exact figure.")
    allowed = limit * n
    coins = allowed * pct / 100
    medicare = allowed - coins
    seq = medicare * SEQUESTRATION
    medicare_seq = medicare - seq
    # Display figures add up on the page: Medicare's share = rounded allowed − rounded coinsurance.
    allowed_c, coins_c = cents(allowed), cents(coins)
    medicare_c = allowed_c - coins_c
    seq_c = cents(medicare_c * SEQUESTRATION)
    medicare_seq_c = medicare_c - seq_c

    current = quarter_of(today)
    if quarter_key(q) < quarter_key(current):
        warnings.append(f"⚠ {q} limit shown; today ({today.isoformat()}) is in {current}. Payment limits change every "
                        f"quarter — this figure may be out of date.")
    elif quarter_key(q) > quarter_key(current):
        warnings.append(f"{q} is not yet in effect (today is in {current}).")
    alternatives = []
    for other in others:
        orow = other.rows[code]
        olimit = Decimal(str(orow["payment_limit"]))
        alternatives.append({"source": other.kind, "title": other.title, "file": other.path, "payment_limit": olimit})
        if olimit != limit:
            warnings.append(f"{other.title} gives a different {q} limit for {code}: {money(olimit)} ({fmt(olimit)}) vs "
                            f"{money(limit)} from {primary.title}.")
    if code.startswith("Q") and n != 1:
        warnings.append(f"{code} is billed as 1 unit per therapeutic dose; {n} units given.")
    assumptions.append("Part B deductible not applied (assumed already met).")
    assumptions.append("The 2% sequestration reduces Medicare's share only, not the coinsurance.")
    if code.startswith("Q2"):
        assumptions.append("Outpatient/separately paid line only: inpatient CAR-T admissions are paid through MS-DRG 018, not this payment limit.")
    values = {
        "code": code, "quarter": q, "units": n, "payment_limit": limit, "coinsurance_pct": pct,
        "coinsurance_from_source": pct_raw not in (None, ""),
        "allowed_exact": allowed, "allowed": cents(allowed),
        "coinsurance_exact": coins, "coinsurance": cents(coins),
        "medicare_exact": medicare, "medicare": medicare_c,
        "sequestration_exact": seq, "sequestration": seq_c,
        "medicare_after_sequestration_exact": medicare_seq, "medicare_after_sequestration": medicare_seq_c,
        "source": {"kind": primary.kind, "title": primary.title, "file": primary.file, "yaml": primary.path,
                   "effective": primary.effective, "through": primary.through},
        "alternatives": alternatives, "current_quarter": current,
        "stale": quarter_key(q) < quarter_key(current),
    }
    formula = (f"Allowed = {fmt(limit)} × {n} = {fmt(allowed)} ≈ {money(allowed)}; coinsurance = {fmt(pct)}% × "
               f"{fmt(allowed)} = {fmt(coins)} ≈ {money(coins)}; Medicare = {money(allowed_c)} − {money(coins_c)} = "
               f"{money(medicare_c)}; sequestration 2% × {money(medicare_c)} = {money(seq_c)}; after sequestration: "
               f"{money(medicare_c)} − {money(seq_c)} = {money(medicare_seq_c)}")
    summary = (f"**{code} payment limit ({q}): ${fmt(limit)} per unit.** × {n}: allowed {money(allowed_c)}; "
               f"patient coinsurance {money(coins_c)} ({fmt(pct)}%); Medicare pays {money(medicare_c)} "
               f"({money(medicare_seq_c)} after 2% sequestration)")
    citations = [_source_cite(s, code) for s in sources]
    citations.append(cite("REFERENCE.md#payment-rules", "Payment rules (42 CFR 414.904; coinsurance; sequestration; MS-DRG 018)",
                          "The 2% sequestration reduces Medicare's share, not the coinsurance."))
    return ToolResult(name="payment",
                      inputs={"code": code, "units": n, "quarter": quarter, "today": today.isoformat()},
                      values=values, summary=summary, formula=formula,
                      assumptions=assumptions, warnings=warnings, citations=citations)


def _latest_cms_coinsurance(ref, code: str) -> tuple[str, Decimal] | None:
    """The newest CMS quarter's coinsurance percentage for `code`, if any is loaded."""
    for quarter in reversed(ref.quarters()):
        for src in ref.limit_sources(quarter):
            row = src.rows.get(code) or {}
            if src.kind == "cms-file" and row.get("coinsurance_pct"):
                return quarter, Decimal(str(row["coinsurance_pct"]))
    return None
