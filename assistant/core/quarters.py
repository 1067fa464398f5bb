"""One definition of a calendar quarter: how it is written, parsed, ordered and bounded.

CMS publishes payment limits per quarter ("2026Q1", effective January 1 through March 31), the
guides quote "Q2 2026", and questions say "first quarter of 2026": all of them read through
`Quarter.parse` (a whole string) or `find_quarter` (inside a question).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import total_ordering

_WHOLE = [
    re.compile(r"^\s*(?P<y>\d{4})\s*-?\s*Q(?P<q>[1-4])\s*$", re.I),        # 2026Q1, 2026-Q1, 2026 Q1
    re.compile(r"^\s*Q(?P<q>[1-4])\s*[- ]?\s*(?P<y>\d{4})\s*$", re.I),      # Q1 2026, Q1-2026
]
_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4}
# Inside a question: "Q1 2026", "2026Q1", "first quarter of 2026", "Jan-Mar 2026".
_IN_TEXT = re.compile(
    r"\b(?:Q(?P<q1>[1-4])\s*(?P<y1>20\d{2})|(?P<y2>20\d{2})\s*Q(?P<q2>[1-4])|"
    r"(?P<ord>first|second|third|fourth|1st|2nd|3rd|4th) (?:quarter|qtr) (?:of )?(?P<y3>20\d{2}))\b", re.I)
_MONTH_RANGE = re.compile(
    r"\b(?P<m>jan|apr|jul|oct)[a-z]*\.?\s*(?:-|–|to|through)\s*(?:mar|jun|sep|dec)[a-z]*\.?\s*(?P<y>20\d{2})\b", re.I)


class QuarterError(ValueError):
    """Text that is not a quarter."""


@total_ordering
@dataclass(frozen=True)
class Quarter:
    year: int
    q: int

    def __post_init__(self) -> None:
        if not 1 <= self.q <= 4:
            raise QuarterError(f"quarter number must be 1-4, not {self.q}")

    # --- construction ------------------------------------------------------------------
    @classmethod
    def parse(cls, text: object) -> Quarter:
        """'2026Q1', '2026-Q1', 'Q1 2026' -> Quarter(2026, 1); anything else -> QuarterError."""
        if isinstance(text, Quarter):
            return text
        for rx in _WHOLE:
            if m := rx.match(str(text)):
                return cls(int(m.group("y")), int(m.group("q")))
        raise QuarterError(f"'{text}' is not a quarter; write it like 2026Q1.")

    @classmethod
    def of(cls, day: dt.date) -> Quarter:
        """The quarter a date falls in."""
        return cls(day.year, (day.month - 1) // 3 + 1)

    # --- properties --------------------------------------------------------------------
    @property
    def start(self) -> dt.date:
        return dt.date(self.year, 3 * self.q - 2, 1)

    @property
    def end(self) -> dt.date:
        """The last day of the quarter."""
        nxt = self.next()
        return dt.date(nxt.year, nxt.start.month, 1) - dt.timedelta(days=1)

    def next(self) -> Quarter:
        return Quarter(self.year + (self.q == 4), 1 if self.q == 4 else self.q + 1)

    def previous(self) -> Quarter:
        return Quarter(self.year - (self.q == 1), 4 if self.q == 1 else self.q - 1)

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.end

    @property
    def label(self) -> str:
        """As people write it: 'Q1 2026'."""
        return f"Q{self.q} {self.year}"

    def __str__(self) -> str:
        return f"{self.year}Q{self.q}"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Quarter):
            return NotImplemented
        return (self.year, self.q) < (other.year, other.q)


def normalize_quarter(text: object) -> str:
    """'Q1 2026' -> '2026Q1' (the form files and results use); QuarterError otherwise."""
    return str(Quarter.parse(text))


def quarter_key(text: str) -> tuple[int, int]:
    """Sort key for a quarter string."""
    quarter = Quarter.parse(text)
    return quarter.year, quarter.q


def current_quarter(today: dt.date | None = None) -> str:
    """The quarter of `today` (default: the system date) as '2026Q4'."""
    return str(Quarter.of(today or dt.date.today()))


def find_quarter(text: str) -> str | None:
    """The first quarter a question names ('Q1 2026', 'first quarter of 2026', 'Jan-Mar 2026')."""
    if m := _IN_TEXT.search(text):
        if m.group("q1"):
            return str(Quarter(int(m.group("y1")), int(m.group("q1"))))
        if m.group("q2"):
            return str(Quarter(int(m.group("y2")), int(m.group("q2"))))
        return str(Quarter(int(m.group("y3")), _ORDINALS[m.group("ord").lower()]))
    if m := _MONTH_RANGE.search(text):
        return str(Quarter(int(m.group("y")), ["jan", "apr", "jul", "oct"].index(m.group("m")[:3].lower()) + 1))
    return None
