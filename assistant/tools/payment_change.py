"""The difference between two payment results: one code in two quarters ("how much did Q2056 go
up from Q4 25 to Q1 26"), or two codes in one quarter ("Q2055 vs Q2056 allowable DOS 2/1/26").

A revenue-cycle analyst asks for the difference, not two figures to subtract by hand; the
difference is computed here from the two `payment` results (never re-derived), shown with its
formula, and cites both payment-limit rows.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from assistant.core.quarters import Quarter
from assistant.core.reference import Reference
from assistant.tools._inputs import fmt, money
from assistant.tools.component import Calculator, IsoDate, Plan, Text, call, param
from assistant.tools.errors import CalcError
from assistant.tools.payment import FIGURE_WORDS, LIMIT_TOO, PAYMENT_NUMBER, payment
from assistant.tools.planning import Planning
from assistant.tools.result import ToolResult

_FIELDS = (("payment_limit", "payment limit"), ("coinsurance", "coinsurance"), ("medicare", "Medicare's share"),
           ("medicare_after_sequestration", "Medicare after sequestration"))


def payment_change(
        code: Annotated[Text, param("HCPCS code of the first line, e.g. Q2056", label="HCPCS code", example="Q2056")],
        quarter: Annotated[Text, param("Quarter of the first line, e.g. 2025Q4", label="Quarter", example="2025Q4")] = None,
        other_quarter: Annotated[Text, param("Quarter to compare with (default: the same quarter)",
                                             label="Other quarter", example="2026Q1")] = None,
        other_code: Annotated[Text, param("HCPCS code to compare with (default: the same code)",
                                          label="Other HCPCS code")] = None,
        figure: Annotated[Text, param("The figure asked about first: payment_limit (default), coinsurance, medicare, "
                                      "medicare_after_sequestration", label="Figure",
                                      choices=[k for k, _ in _FIELDS])] = "payment_limit",
        today: Annotated[IsoDate, param("Today's date (YYYY-MM-DD) for the stale-quarter check", form=False)] = None,
        limit_first: Annotated[bool, param("The limit's change leads and the figure follows it in the same paragraph "
                                           "(both asked: 'how much did the limit change + coins %')", form=False)] = False,
        reference: Reference | None = None) -> ToolResult:
    """Second minus first, for the payment limit, the coinsurance and Medicare's share."""
    code_b = other_code or code
    quarter_b = other_quarter or quarter
    if code_b.upper() == code.upper() and (quarter_b or "") == (quarter or ""):
        raise CalcError("payment_change compares two different quarters or two different codes.", field="other_quarter")
    a = payment(code=code, quarter=quarter, today=today, reference=reference)
    b = payment(code=code_b, quarter=quarter_b, today=today, reference=reference)
    label_a, label_b = _label(a), _label(b)
    diffs = {key: Decimal(b.values[key]) - Decimal(a.values[key]) for key, _ in _FIELDS}
    limit_diff = diffs["payment_limit"]
    pct = (limit_diff / Decimal(a.values["payment_limit"]) * 100).quantize(Decimal("0.01"))
    pct_text = ("+" if pct > 0 else "−" if pct < 0 else "±") + f"{abs(pct)}%"
    way = "up" if limit_diff > 0 else "down" if limit_diff < 0 else "unchanged"
    summary = (f"**{label_b} vs {label_a}: payment limit {way} {money(abs(limit_diff))} ({pct_text})** — "
               f"${fmt(Decimal(b.values['payment_limit']))} vs ${fmt(Decimal(a.values['payment_limit']))}; Medicare's share "
               f"{money(Decimal(b.values['medicare']))} vs {money(Decimal(a.values['medicare']))} "
               f"({_signed(diffs['medicare'])}).")
    figure = figure or "payment_limit"
    if figure not in dict(_FIELDS):
        raise CalcError(f"Unknown figure {figure!r}; known: {', '.join(dict(_FIELDS))}.", field="figure")
    if figure != "payment_limit":
        name = dict(_FIELDS)[figure]
        pcts = (f" ({fmt(Decimal(b.values['coinsurance_pct']))}% vs {fmt(Decimal(a.values['coinsurance_pct']))}%)"
                if figure == "coinsurance" else "")
        line = (f"**{name[0].upper() + name[1:]}: {label_b} {money(Decimal(b.values[figure]))} vs {label_a} "
                f"{money(Decimal(a.values[figure]))}{pcts}: {_signed(diffs[figure])}.**")
        summary = f"{summary} {line}" if limit_first else f"{line}\n\n{summary}"
    formula = "; ".join(
        f"{name}: {_show(key, b.values[key])} − {_show(key, a.values[key])} = {_signed(diffs[key], key)}"
        for key, name in _FIELDS) + f"; change in limit = {_signed(limit_diff, 'payment_limit')} ÷ " \
        f"{fmt(Decimal(a.values['payment_limit']))} × 100 = {pct_text}"
    return ToolResult(
        name="payment_change", inputs={"code": code, "quarter": quarter, "other_code": code_b, "other_quarter": quarter_b},
        values={"first": {"code": a.values["code"], "quarter": a.values["quarter"]},
                "second": {"code": b.values["code"], "quarter": b.values["quarter"]},
                **{f"{k}_change": v for k, v in diffs.items()}, "limit_change_pct": pct},
        summary=summary, formula=formula,
        assumptions=list(dict.fromkeys(a.assumptions + b.assumptions)),
        warnings=list(dict.fromkeys(a.warnings + b.warnings)), citations=a.citations + b.citations)


def _label(r: ToolResult) -> str:
    return f"{r.values['code']} {r.values['quarter']}"


def _show(key: str, value) -> str:
    return f"${fmt(Decimal(value))}" if key == "payment_limit" else money(Decimal(value))


def _signed(value: Decimal, key: str = "") -> str:
    text = f"${fmt(abs(value))}" if key == "payment_limit" else money(abs(value))
    return ("+" if value > 0 else "−" if value < 0 else "±") + text


# --- the component ------------------------------------------------------------------------
CHANGE = re.compile(r"\bdiff(?:erence)?\b|\bchange[ds]?\b|\bvs\.?\b|\bversus\b|\bcompare|\bincreas|\bdecreas|"
                    r"\bwent (?:up|down)\b|\bgo(?:ne)? (?:up|down)\b|\bhigher\b|\blower\b|\bdelta\b|"
                    r"\b(?:more|less)\b.{0,40}\bthan\b|\bcheaper\b|\bpricier\b|\bmore expensive\b|\bgap\b|\bmove[ds]?\b|"
                    r"\bhow much (?:more|less)\b", re.I)
# a turn comparing the quarters of earlier turns: "how much did the limit move between those two", "difference?"
_BACK = re.compile(r"\b(?:those|these|both|them|the two)\b|^\W*(?:diff(?:erence)?|delta|change)\W*$|"
                   r"\b(?:it|that|the limit|the price)\s+(?:go|went|gone|move|moved)\s+(?:up|down)\b|"  # "so what did it go up by"
                   r"^\W*(?:so\s+)?(?:what(?:'?s| is| was)\s+the\s+|how much (?:is|was) the\s+)"
                   r"(?:diff(?:erence)?|delta|change|increase|decrease)\W*$", re.I)


def _thread_quarters(p: Planning) -> list[str]:
    """The quarters the last turns priced, oldest first, when this turn compares them."""
    from assistant.core.dates import find_service_dates

    if not (p.q.history and _BACK.search(p.q.text)):
        return []
    found = [str(d.quarter) for h in p.q.history[-3:] for d in find_service_dates(h, p.today)[:1] if d.quarter is not None]
    return list(dict.fromkeys(found))[-2:]


def _thread_code(p: Planning, code: str) -> str | None:
    """The product code the thread priced just before, when this turn names another one."""
    if not p.q.history:
        return None
    text = p.q.history[-1]
    typed = [c.upper() for c in re.findall(r"\b[QJ]\d{4}\b", text, re.I) if p.ref.code(c.upper()) is not None]
    before = typed or [prod.hcpcs for prod in p.ref.products if prod.hcpcs and prod.is_named(text)]
    return before[0] if len(set(before)) == 1 and before[0] != code else None


def _plan(p: Planning) -> Plan | None:
    """A payment question asking for a difference between two quarters or two codes."""
    # two periods are compared in time order, so the change reads from the earlier to the later
    quarters = sorted({str(d.quarter) for d in p.q.dates if d.quarter is not None}, key=Quarter.parse)
    if len(quarters) < 2 and len(thread := _thread_quarters(p)) == 2:
        quarters = sorted(thread, key=Quarter.parse)
    codes = p.product_codes()
    # "diff between q1 2025 and q1 2026 for Q2056": a product's code in two quarters is its payment limit
    priced = (p.has("payment") and PAYMENT_NUMBER.search(p.text)) or (len(quarters) >= 2 and codes)
    if not (priced and CHANGE.search(p.text)) or p.q.setting == "inpatient":
        return None
    args: dict = {"today": p.today.isoformat()}
    if (figure := next((k for k, rx in FIGURE_WORDS.items() if rx.search(p.text)), None)) is not None:
        args["figure"] = figure
        if LIMIT_TOO.search(p.q.text):
            args["limit_first"] = True  # "how much did the limit change + coins %": the limit, then the coinsurance
    if len(codes) == 1 and len(quarters) < 2 and (other := _thread_code(p, codes[0])):
        codes = [other, codes[0]]  # "same DOS for cilta-cel - how much more is it?" after an Abecma price
    if len(dict.fromkeys(quarters)) >= 2 and codes:
        args |= {"code": codes[0], "quarter": quarters[0], "other_quarter": quarters[1]}
    elif len(codes) >= 2:
        args |= {"code": codes[0], "other_code": codes[1]}
        if quarters:
            args["quarter"] = quarters[0]
        elif (d := p.q.service_date) is not None and d.source != "today":
            args["quarter"] = str(Quarter.of(d.day))  # the thread's date of service ("same DOS for cilta-cel")
    else:
        return None
    return call("payment_change", args)


CALCULATOR = Calculator(
    name="payment_change", title="Payment difference", priority=65, compute=payment_change, plan=_plan,
    description="The difference between two Medicare payment results: one HCPCS code in two quarters, or two codes "
                "in one quarter (payment limit, coinsurance, Medicare's share), with the formula.",
)
