"""One reading of numbers as people type them, for the question reader and the calculators alike.

"1,000 mg" is one thousand (a comma before exactly three digits groups thousands), "1,85 m²" is
1.85 (a decimal comma before one, two or four+ digits), "55.5" is 55.5. Values are exact
Decimals: floats would turn 1.85 into 1.8500000000000000888.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# A number inside text: thousands-grouped first, then plain with an optional decimal point/comma.
# The look-behind starts a match at a number's first digit, which keeps long digit runs linear.
NUMBER = r"(?<![\d.,])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?)"
_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DECIMAL_COMMA = re.compile(r"\d+,\d+")
_PLAIN = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def parse_number(text: str) -> Decimal:
    """The exact value of one typed number; ValueError when `text` is not one."""
    s = str(text).strip()
    if _GROUPED.fullmatch(s):
        s = s.replace(",", "")
    elif _DECIMAL_COMMA.fullmatch(s):
        s = s.replace(",", ".")
    if not _PLAIN.fullmatch(s):
        raise ValueError(f"not a number: {text!r}")
    try:
        return Decimal(s)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only valid literals
        raise ValueError(f"not a number: {text!r}") from exc


def number_float(text: str) -> float:
    """`parse_number` as a float, for figures read from a question."""
    return float(parse_number(text))
