"""The one reader of the date of service a question (or a date field) names.

Billing staff write dates every way: 3/4/26, 03/04/2026, 2026-03-04, Mar 4, "Feb 3rd 2026",
"3 Feb 2026", "March 2024", "Mar '24", "DOS 11/2023", "Q1 26", "3Q25", "last quarter",
"last March", "DOS in 2024". `find_service_date` reads the one a question means;
`parse_service_date` reads a whole field value (API, CLI, date box); `today_date` stands in when
neither says. Every reading is a `ServiceDate`: a period (a day, a month, a quarter or a year),
the words it was read from, where it came from and what it is the date of (service, discharge,
infusion, admission).

Rules (month/day order, as in the US):
- two-digit years are 20xx; a date without a year is the most recent one not after today;
- an impossible date (2/30/2026, 13/01/2026) is never read, and never re-read as something else
  (13/01/2026 is not "January 2026"): when it is the date the question means, the answer is None;
- a year alone needs a cue ("in 2024", "for 2024 claims", "DOS 2024"), and code-set or fiscal
  years ("CPT 2025", "FY2024") are not dates of service;
- doses, sizes, NDCs, codes, fractions ("1/2 vial"), ages, phone numbers and policy numbers are not
  dates: a numeric form must stand alone (no letter, digit, '.', '-', '/' or '#' just before it, no
  letter, digit or '/' just after it), a month/day without a year ("4/20") counts only next to a
  label ("infusion 4/20", "DOS 3/4"), and neither it nor "Mar 4" counts before a unit ("3/4 units");
- lowercase "may" is a month only with a year ("may 2024") or after last/next ("last may");
- with several dates, one labelled DOS / date of service / service date wins, then one labelled
  discharged / dc / infused / infusion / admitted / admit, then the first; dates labelled as a birth,
  diagnosis, expiry or approval date are skipped (but still not re-read as anything else);
- a field value (`parse_service_date`) must hold one date and nothing else but a label; it also takes
  a bare year (2024), a year-month (2026-02), a compact date (20260203) and a month/day (2/3).

Only the standard library and `assistant.core.quarters` are imported (this is the bottom layer).
Every pattern uses bounded repeats, so a 4,000-character question reads in linear time.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from assistant.core.quarters import Quarter

__all__ = ["ServiceDate", "find_service_date", "find_service_dates", "impossible_date", "parse_service_date", "today_date",
           "PRECISIONS", "SOURCES", "EVENTS"]

PRECISIONS = ("day", "month", "quarter", "year")
SOURCES = ("question", "field", "conversation", "today")
EVENTS = ("service", "discharge", "infusion", "admission")

_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
                "november", "december")
_MONTH_WORDS = {name: i + 1 for i, name in enumerate(_MONTH_NAMES)} | {name[:3]: i + 1 for i, name in enumerate(_MONTH_NAMES)}
_MONTH_WORDS |= {"sept": 9}
_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4}
_FIELD_ERROR = "'{}' is not a date; type it like 2026-02-03 or 2/3/2026"


@dataclass(frozen=True)
class ServiceDate:
    """A date of service as read: the period it covers and where it was read from."""

    start: dt.date            # first day of the period (the date itself for a day)
    end: dt.date              # last day of the period
    precision: str            # "day" | "month" | "quarter" | "year"
    text: str                 # the words it was read from, as typed ("" for today)
    source: str               # "question" | "field" | "conversation" | "today"
    event: str = "service"    # "service" | "discharge" | "infusion" | "admission"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {self.source!r}")
        if self.event not in EVENTS:
            raise ValueError(f"event must be one of {', '.join(EVENTS)}, not {self.event!r}")
        if self.end < self.start:
            raise ValueError(f"a period cannot end ({self.end}) before it starts ({self.start})")

    @property
    def day(self) -> dt.date:
        """The date look-ups use: the first day of the period."""
        return self.start

    @property
    def quarter(self) -> Quarter | None:
        """The quarter the period falls in; None when it spans several (a year)."""
        quarter = Quarter.of(self.start)
        return quarter if quarter.contains(self.end) else None

    def label(self) -> str:
        """How an answer states it: '2026-02-03', 'March 2024', 'Q3 2025', '2024'."""
        if self.precision == "day":
            return self.start.isoformat()
        if self.precision == "month":
            return f"{_MONTH_NAMES[self.start.month - 1].capitalize()} {self.start.year}"
        if self.precision == "quarter":
            return Quarter.of(self.start).label
        return str(self.start.year)

    def with_source(self, source: str) -> ServiceDate:
        return replace(self, source=source)

    def quarter_before(self, text: str) -> ServiceDate:
        """The quarter before this date's ("and for a DOS the quarter before?" in a thread)."""
        prior = Quarter.of(self.start).previous()
        return ServiceDate(prior.start, prior.end, "quarter", text, "question", self.event)


def today_date(today: dt.date) -> ServiceDate:
    """Today, for a question that names no date."""
    return ServiceDate(today, today, "day", "", "today")


# --- periods ------------------------------------------------------------------------------------

_Span = tuple[dt.date, dt.date, str]


def _day(year: int, month: int, day: int) -> _Span:
    date = dt.date(year, month, day)  # ValueError for 2/30: an impossible date
    return date, date, "day"


def _month(year: int, month: int) -> _Span:
    start = dt.date(year, month, 1)
    after = dt.date(year + (month == 12), month % 12 + 1, 1)
    return start, after - dt.timedelta(days=1), "month"


def _quarter(year: int, q: int) -> _Span:
    quarter = Quarter(year, q)
    return quarter.start, quarter.end, "quarter"


def _year(year: int) -> _Span:
    return dt.date(year, 1, 1), dt.date(year, 12, 31), "year"


def _year_number(text: str) -> int:
    digits = text.lstrip("'’")
    return 2000 + int(digits) if len(digits) == 2 else int(digits)


def _edits(a: str, b: str) -> int:
    """Levenshtein distance (for month names typed with a slip: 'Febuary', 'Sepember')."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def month_number(word: str) -> int | None:
    """'Feb', 'feb.', 'February', 'Sept', 'Febuary' -> 2, 2, 2, 9, 2; any other word -> None.

    A slip is forgiven only in a word of six letters or more that starts like the month (one slip
    under seven letters, two from seven), so 'Mayo', 'match', 'junk' and 'Janssen' are not months."""
    w = word.lower().rstrip(".")
    if w in _MONTH_WORDS:
        return _MONTH_WORDS[w]
    if len(w) < 6:
        return None
    allowed = 1 if len(w) < 7 else 2
    for number, name in enumerate(_MONTH_NAMES, 1):
        if w[:3] == name[:3] and _edits(w, name) <= allowed:
            return number
    return None


def _month_word(word: str, *, capital_may: bool = False) -> int | None:
    """A month name; lowercase 'may' only when `capital_may` is off (it is an everyday verb)."""
    if capital_may and word.lower() == "may" and not word.startswith("M"):
        return None
    return month_number(word)


def _recent_day(month: int, day: int, today: dt.date) -> _Span:
    """The most recent month/day not after today (Feb 29 looks back to the last leap year)."""
    dt.date(2000, month, day)  # ValueError when no year has such a day
    for year in range(today.year, today.year - 9, -1):
        try:
            date = dt.date(year, month, day)
        except ValueError:
            continue
        if date <= today:
            return date, date, "day"
    raise ValueError(f"no recent {month}/{day}")  # pragma: no cover - a leap year falls within 8 years


# --- the forms ------------------------------------------------------------------------------------

_Y4 = r"(?:19|20)\d{2}"
_YY = r"(?:(?:19|20)\d{2}|['’]\d{2})"                 # 2024 or '24 after a month name
_L = r"(?<![\w.\-/#$])"                              # a numeric form starts on its own...
_R = r"(?![\w/]|[.,:]\d)"                            # ...and ends on its own
_ORD = r"(?:st|nd|rd|th)?"
_MON = r"(?P<mon>[A-Za-z]{3,10})\.?"
_UNIT = (r"(?!\s{0,3}(?:%|(?:mg|mcg|g|kg|lbs?|ml|l|units?|u|vials?|bags?|doses?|cells|m2|cm|ft|mos?|months?|days?|weeks?"
         r"|wks?|hrs?|hours?|yrs?|years?|y/?o|yo|prior|lines?|pts?|patients?|times?)\b|²))")
_YEAR_SEP = r"(?:\s{0,3},\s{0,3}|[\s\-]{1,3})"
_BUILD = Callable[[re.Match[str], dt.date], "_Span | None"]
_Form = tuple[re.Pattern[str], _BUILD, str]          # (pattern, reading, kind: "" | "label" | "field")
_FORMS: list[_Form] = []


def _form(pattern: str, kind: str = "") -> Callable[[_BUILD], _BUILD]:
    def register(build: _BUILD) -> _BUILD:
        _FORMS.append((re.compile(pattern, re.I), build, kind))
        return build
    return register


@_form(rf"{_L}(?P<y>{_Y4})(?P<s>[-/])(?P<m>\d{{1,2}})(?P=s)(?P<d>\d{{1,2}}){_R}")
def _iso(m: re.Match[str], today: dt.date) -> _Span:                  # 2026-02-03, 2026/2/3
    return _day(int(m["y"]), int(m["m"]), int(m["d"]))


@_form(rf"{_L}(?P<m>\d{{1,2}})(?P<s>[-/])(?P<d>\d{{1,2}})(?P=s)(?P<y>{_Y4}|\d{{2}}){_R}")
def _us(m: re.Match[str], today: dt.date) -> _Span:                   # 2/3/2026, 02/03/26, 2-3-26
    return _day(_year_number(m["y"]), int(m["m"]), int(m["d"]))


@_form(rf"{_L}(?P<m>\d{{1,2}})/(?P<y>{_Y4}){_R}")
def _us_month(m: re.Match[str], today: dt.date) -> _Span:             # 3/2024, 03/2024, 10/2021
    return _month(int(m["y"]), int(m["m"]))


@_form(rf"{_L}(?P<m>\d{{1,2}})/(?P<d>\d{{1,2}}){_R}{_UNIT}", kind="label")
def _us_no_year(m: re.Match[str], today: dt.date) -> _Span:           # DOS 3/4, infusion 4/20
    return _recent_day(int(m["m"]), int(m["d"]), today)


@_form(rf"\b{_MON}[\s\-]{{0,3}}(?P<d>\d{{1,2}}){_ORD}{_YEAR_SEP}(?P<y>{_YY}){_R}")
def _month_day_year(m: re.Match[str], today: dt.date) -> _Span | None:    # Feb 3 2026, February 3rd, 2026
    month = month_number(m["mon"])
    return _day(_year_number(m["y"]), month, int(m["d"])) if month else None


@_form(rf"{_L}(?P<d>\d{{1,2}}){_ORD}(?:\s{{1,3}}of\s{{1,3}}|[\s\-]{{0,3}}){_MON}{_YEAR_SEP}(?P<y>{_YY}){_R}")
def _day_month_year(m: re.Match[str], today: dt.date) -> _Span | None:    # 3 Feb 2026, 3rd of February 2026
    month = month_number(m["mon"])
    return _day(_year_number(m["y"]), month, int(m["d"])) if month else None


@_form(rf"{_L}(?P<d>\d{{1,2}})-{_MON}-(?P<y>\d{{2}}){_R}")
def _day_mon_yy(m: re.Match[str], today: dt.date) -> _Span | None:        # 03-Feb-26 (the EHR form)
    month = month_number(m["mon"])
    return _day(_year_number(m["y"]), month, int(m["d"])) if month else None


@_form(rf"\b{_MON}(?:\s{{1,3}}of)?(?:\s{{0,3}},\s{{0,3}}|[\s\-]{{0,3}})(?P<y>{_YY}){_R}")
def _month_year(m: re.Match[str], today: dt.date) -> _Span | None:        # March 2024, Mar '24, Oct 2021
    month = month_number(m["mon"])
    return _month(_year_number(m["y"]), month) if month else None


@_form(rf"\b(?:in|during)\s{{1,3}}(?P<t>{_MON}\s{{1,3}}(?P<y>2\d)){_R}{_UNIT}")
def _in_month_yy(m: re.Match[str], today: dt.date) -> _Span | None:      # in may 24, during Oct 25: a month of that year
    month = month_number(m["mon"])
    return _month(_year_number(m["y"]), month) if month else None


@_form(rf"\b{_MON}\s{{0,3}}(?P<d>\d{{1,2}}){_ORD}{_R}{_UNIT}")
def _month_day(m: re.Match[str], today: dt.date) -> _Span | None:         # Mar 4 (no year)
    month = _month_word(m["mon"], capital_may=True)
    return _recent_day(month, int(m["d"]), today) if month else None


@_form(rf"{_L}(?P<d>\d{{1,2}})(?:st|nd|rd|th)(?:\s{{1,3}}of)?\s{{1,3}}{_MON}(?![A-Za-z])")
def _day_month(m: re.Match[str], today: dt.date) -> _Span | None:         # 4th of March (no year)
    month = _month_word(m["mon"], capital_may=True)
    return _recent_day(month, int(m["d"]), today) if month else None


@_form(rf"{_L}Q(?P<q>[1-4])(?:\s{{1,3}}of)?(?:\s{{0,3}}[-/]?\s{{0,3}}(?P<y>{_Y4})|(?:\s{{1,3}}|\s{{0,3}}[-/'’]\s{{0,3}})(?P<yy>['’]?\d{{2}})){_R}{_UNIT}")
def _q_year(m: re.Match[str], today: dt.date) -> _Span:                   # Q3 2025, Q1 26, Q1 '26, Q1-2026
    return _quarter(_year_number(m["y"] or m["yy"]), int(m["q"]))


@_form(rf"{_L}(?P<q>[1-4])Q\s{{0,3}}(?P<y>{_Y4}|['’]?\d{{2}}){_R}")
def _nq_year(m: re.Match[str], today: dt.date) -> _Span:                  # 3Q25, 3Q 2025
    return _quarter(_year_number(m["y"]), int(m["q"]))


@_form(rf"{_L}(?P<y>{_Y4})\s{{0,3}}-?\s{{0,3}}Q(?P<q>[1-4]){_R}")
def _year_q(m: re.Match[str], today: dt.date) -> _Span:                   # 2026Q1, 2026-Q1
    return _quarter(int(m["y"]), int(m["q"]))


@_form(rf"\b(?P<ord>first|second|third|fourth|1st|2nd|3rd|4th)\s{{1,3}}(?:quarter|qtr)(?:\s{{1,3}}of)?[\s,]{{1,3}}(?P<y>{_YY}){_R}")
def _ordinal_quarter(m: re.Match[str], today: dt.date) -> _Span:          # first quarter of 2026
    return _quarter(_year_number(m["y"]), _ORDINALS[m["ord"].lower()])


@_form(rf"\b(?P<m1>[A-Za-z]{{3,10}})\.?\s{{0,3}}(?:-|–|\bto\b|\bthrough\b|\bthru\b)\s{{0,3}}(?P<m2>[A-Za-z]{{3,10}})\.?[\s,]{{1,3}}(?P<y>{_YY}){_R}")
def _month_range(m: re.Match[str], today: dt.date) -> _Span | None:       # Jan-Mar 2026
    first, last = month_number(m["m1"]), month_number(m["m2"])
    if not (first and last):
        return None
    if first % 3 != 1 or last != first + 2:
        raise ValueError("a range of months that is not one quarter")  # Jan-Jun 2026: not one period, never guessed
    return _quarter(_year_number(m["y"]), (first + 2) // 3)


@_form(rf"\b(?:(?:in|for|during|throughout|DOS(?:\s{{1,3}}(?:in|of|during))?|calendar\s{{1,3}}year|year)[\s:]{{1,3}}|CY\s{{0,3}})"
       rf"(?P<t>(?P<y>{_Y4})){_R}(?!\s{{0,3}}-?\s{{0,3}}Q[1-4]\b)(?!\s{{0,3}}[-–/]\s{{0,3}}\d){_UNIT}", kind="year")
def _cued_year(m: re.Match[str], today: dt.date) -> _Span:                # in 2024, for 2024, DOS 2024, CY2024
    return _year(int(m["y"]))


@_form(rf"{_L}(?P<t>(?P<y>{_Y4}))\s{{1,3}}(?:claims?|DOS|dates?\s{{1,3}}of\s{{1,3}}service|services?)\b", kind="year")
def _year_claims(m: re.Match[str], today: dt.date) -> _Span:              # 2024 claims, 2024 DOS
    return _year(int(m["y"]))


@_form(rf"\b(?:in|during|for|DOS(?:\s{{1,3}}in)?)\s{{1,3}}(?P<t>{_MON})(?![A-Za-z])(?!\.?[\s\-,]{{0,3}}['’\d])")
def _cued_month(m: re.Match[str], today: dt.date) -> _Span | None:        # in March (no year): the most recent
    month = _month_word(m["mon"], capital_may=True)
    if not month:
        return None
    return _month(today.year - (month > today.month), month)


@_form(r"\b(?P<rel>last|this|current|previous|prior|prev|next)\s{1,3}(?P<unit>quarter|qtr|month|year|[A-Za-z]{3,10})\b")
def _relative(m: re.Match[str], today: dt.date) -> _Span | None:          # last quarter, this month, last March
    step = {"this": 0, "current": 0, "next": 1}.get(m["rel"].lower(), -1)
    unit = m["unit"].lower()
    if unit in ("quarter", "qtr"):
        quarter = Quarter.of(today)
        quarter = quarter.previous() if step < 0 else quarter.next() if step > 0 else quarter
        return quarter.start, quarter.end, "quarter"
    if unit == "month":
        index = today.year * 12 + today.month - 1 + step
        return _month(index // 12, index % 12 + 1)
    if unit == "year":
        return _year(today.year + step)
    month = _month_word(m["unit"], capital_may=step == 0)
    if not month:
        return None
    # last March: the most recent March before this month; next March: the first after it
    year = today.year - (month >= today.month) if step < 0 else today.year + (month <= today.month) if step > 0 else today.year
    return _month(year, month)


@_form(r"\b(?P<word>today|yesterday|tomorrow)\b")
def _day_word(m: re.Match[str], today: dt.date) -> _Span:
    date = today + dt.timedelta(days={"today": 0, "yesterday": -1, "tomorrow": 1}[m["word"].lower()])
    return date, date, "day"


# Whole field values only: a bare year, a year-month, a compact date.
@_form(rf"{_L}(?P<y>{_Y4}){_R}", kind="field")
def _bare_year(m: re.Match[str], today: dt.date) -> _Span:
    return _year(int(m["y"]))


@_form(rf"{_L}(?P<y>{_Y4})[-/](?P<m>\d{{1,2}}){_R}", kind="field")
def _iso_month(m: re.Match[str], today: dt.date) -> _Span:
    return _month(int(m["y"]), int(m["m"]))


@_form(rf"{_L}(?P<y>{_Y4})(?P<m>\d\d)(?P<d>\d\d){_R}", kind="field")
def _compact(m: re.Match[str], today: dt.date) -> _Span:
    return _day(int(m["y"]), int(m["m"]), int(m["d"]))


# --- labels ---------------------------------------------------------------------------------------

_SERVICE_WORDS = r"DOS|D\.O\.S\.?|dates?\s{1,3}of\s{1,3}service|service\s{1,3}dates?|svc\s{1,3}dates?"
_EVENT_WORDS = (r"date\s{1,3}of\s{1,3}(?:discharge|infusion|admission)|infused|infusion(?:\s{1,3}date)?|inf\s{1,3}date|discharged"
                r"|discharge(?:\s{1,3}date)?|d/c(?:'?d)?|dc(?:'?d)?|admitted|admission(?:\s{1,3}date)?|admit(?:\s{1,3}date)?")
_OTHER_WORDS = (r"DOB|D\.O\.B\.?|date\s{1,3}of\s{1,3}birth|birth\s{1,3}date|birthdate|born|dx(?:'?d)?|diagnosed|diagnosis|exp|expires?"
                r"|expiration(?:\s{1,3}date)?|expiry|approved|approval|launched|published")
_FILLER = r"[\s:=#\-–,]{0,5}(?:(?:on|in|of|was|is|date|dated|from|for|at|during|the|a)[\s:,]{1,3}){0,3}"
_LABEL_BEFORE = re.compile(rf"\b(?:(?P<service>{_SERVICE_WORDS})|(?P<event>{_EVENT_WORDS})|(?P<other>{_OTHER_WORDS})){_FILLER}$", re.I)
_LABEL_AFTER = re.compile(rf"^[\s,(]{{0,3}}(?:(?P<service>{_SERVICE_WORDS})|(?P<event>{_EVENT_WORDS})|(?P<other>{_OTHER_WORDS}))\b"
                          r"(?![\s:=\-]{0,3}(?:on\s{1,3})?\d)", re.I)
_CODE_SET_YEAR = re.compile(r"\b(?:CPT|HCPCS|ICD(?:-?10)?(?:-?(?:CM|PCS))?|FY|DRG|v|ver|version|edition|codebook)[\s\-]{0,3}$", re.I)
_WINDOW = 40
# "got cilta-cel in 2023", "prior ASCT 2019": the year of a past treatment, not a date of service
_PRIOR_THERAPY_YEAR = re.compile(r"\b(?:got|had|received|s/p|prior|previous(?:ly)?|underwent|treated|tx'?d|failed)\b"
                                 r"(?![^,;.?]{0,30}\b(?:claims?|dos|service|billed|paid|denied|remit)\b)[^,;.?]{0,30}?"
                                 r"(?:\b(?:in|since|back in|during)\s*)?$", re.I)


def _event(words: str) -> str:
    w = words.lower()
    if "dis" in w or w.startswith(("d/c", "dc")):
        return "discharge"
    if w.startswith("inf") or "infusion" in w:
        return "infusion"
    return "admission"


def _label(text: str, start: int, end: int) -> tuple[int, str]:
    """(rank, event) of the date at text[start:end]: 0 DOS-labelled, 1 event-labelled, 2 neither, 3 not a service date."""
    m = _LABEL_BEFORE.search(text[max(0, start - _WINDOW):start]) or _LABEL_AFTER.search(text[end:end + _WINDOW])
    if m is None:
        return 2, "service"
    if m["other"]:
        return 3, "service"
    if m["event"]:
        return 1, _event(m["event"])
    return 0, "service"


# --- reading --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Read:
    start: int                 # the whole match (cue words included), for overlaps
    end: int
    text_start: int            # the date's own words
    text_end: int
    span: _Span | None         # None: an impossible date
    rank: int
    event: str
    order: int


def _kind_allows(kind: str, m: re.Match[str], text: str, rank: int, field: bool) -> bool:
    if kind == "field":
        return field
    if kind == "label":
        return field or rank < 2
    if kind == "year":
        before = text[max(0, m.start() - _WINDOW):m.start()]
        return not (_CODE_SET_YEAR.search(before) or _PRIOR_THERAPY_YEAR.search(before))
    return True


def _scan(order: int, form: _Form, text: str, today: dt.date, field: bool) -> Iterator[_Read]:
    rx, build, kind = form
    pos = 0
    while (m := rx.search(text, pos)) is not None:
        t0, t1 = (m.start("t"), m.end("t")) if "t" in rx.groupindex else m.span()
        try:
            span, impossible = build(m, today), False
        except ValueError:
            span, impossible = None, True  # 2/30/2026: still a date's words, so no other form reads them
        rank, event = _label(text, t0, t1) if impossible or span is not None else (2, "service")
        if not ((impossible or span is not None) and _kind_allows(kind, m, text, rank, field)):
            pos = m.start() + 1  # not this form here; a shorter form may still start inside it
            continue
        yield _Read(m.start(), m.end(), t0, t1, span, rank, event, order)
        pos = m.end()


def _reads(text: str, today: dt.date, field: bool = False) -> list[_Read]:
    """Every date the text names, the longest reading first where readings overlap, in text order."""
    forms = [(order, form) for order, form in enumerate(_FORMS) if field or form[2] != "field"]
    found = [read for order, form in forms for read in _scan(order, form, text, today, field)]
    found.sort(key=lambda r: (r.start, r.start - r.end, r.order))
    kept: list[_Read] = []
    for read in found:
        if not kept or read.start >= kept[-1].end:  # overlapping a kept reading: the earlier, longer one stands
            kept.append(read)
    return kept


def _service_date(read: _Read, text: str, source: str) -> ServiceDate:
    assert read.span is not None
    start, end, precision = read.span
    return ServiceDate(start, end, precision, text[read.text_start:read.text_end], source, read.event)


BARE_YEAR = re.compile(r"(?<![\w.$/-])(20[12]\d)(?![\w.,/-])")


def bare_year(text: str) -> re.Match[str] | None:
    """A year standing alone ("Q2055 payment 2023", "CPT for CAR-T infusion 2025"): not a date of
    service by itself (see the module rules), but a caller that knows the question's topic reads it
    as one (a code set's year, the year a price is asked for)."""
    return next((m for m in BARE_YEAR.finditer(text)
                 if not _PRIOR_THERAPY_YEAR.search(text[max(0, m.start() - _WINDOW):m.start()])), None)


def find_service_date(text: str, today: dt.date) -> ServiceDate | None:
    """The date of service a question names, or None (none named, or the one it means is impossible)."""
    reads = [r for r in _reads(str(text), today) if r.rank < 3]
    if not reads:
        return None
    best = min(reads, key=lambda r: (min(r.rank, 2), r.text_start))
    return None if best.span is None else _service_date(best, str(text), "question")


def impossible_date(text: str, today: dt.date) -> str | None:
    """The words of a date the question gives that no calendar has ("DOS 13/45/25", "2/30/2026"):
    the answer asks for it again instead of answering for another date."""
    return next((str(text)[r.text_start:r.text_end] for r in _reads(str(text), today) if r.rank < 3 and r.span is None), None)


def find_service_dates(text: str, today: dt.date) -> list[ServiceDate]:
    """Every possible date a question names, in text order ("Q4 25 vs Q1 26": both quarters)."""
    return [_service_date(r, str(text), "question") for r in _reads(str(text), today) if r.rank < 3 and r.span is not None]


_FIELD_LEFTOVER = re.compile(r"[\s,.;:]*")


def _only_labels(before: str, after: str) -> bool:
    """Whether a field holds nothing but the date and its label ("DOS: 2/3/2026", "2/3/2026 (DOS)")."""
    lead, tail = _LABEL_BEFORE.search(before), _LABEL_AFTER.match(after)
    before_ok = _FIELD_LEFTOVER.fullmatch(before) or (lead is not None and _FIELD_LEFTOVER.fullmatch(before[:lead.start()]))
    after_ok = _FIELD_LEFTOVER.fullmatch(after) or (tail is not None and _FIELD_LEFTOVER.fullmatch(after[tail.end():].strip(")")))
    return bool(before_ok and after_ok)


def parse_service_date(value: str, today: dt.date, source: str = "field") -> ServiceDate:
    """A whole field value (API, CLI, date box) as a ServiceDate; ValueError with a one-line message otherwise."""
    text = str(value).strip()
    reads = [r for r in _reads(text, today, field=True) if r.rank < 3]
    if len(reads) == 1 and reads[0].span is not None:
        read = reads[0]
        if _only_labels(text[:read.start], text[read.end:]):
            return _service_date(read, text, source)
    raise ValueError(_FIELD_ERROR.format(text))
