"""The date-of-service reader: every way billing staff write a date, and everything that only looks like one."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assistant.core.dates import ServiceDate, find_service_date, month_number, parse_service_date, today_date
from assistant.core.quarters import Quarter

D = dt.date
TODAY = D(2026, 12, 1)        # the fixed "today" of most cases
NEW_YEAR = D(2026, 1, 15)     # a today just after a year boundary, for relative forms


def _read(text: str, today: dt.date = TODAY) -> tuple[dt.date, dt.date, str, str] | None:
    got = find_service_date(text, today)
    return None if got is None else (got.start, got.end, got.precision, got.event)


def day(y: int, m: int, d: int, event: str = "service") -> tuple[dt.date, dt.date, str, str]:
    return D(y, m, d), D(y, m, d), "day", event


def month(y: int, m: int, event: str = "service") -> tuple[dt.date, dt.date, str, str]:
    nxt = D(y + (m == 12), m % 12 + 1, 1)
    return D(y, m, 1), nxt - dt.timedelta(days=1), "month", event


def quarter(y: int, q: int, event: str = "service") -> tuple[dt.date, dt.date, str, str]:
    return Quarter(y, q).start, Quarter(y, q).end, "quarter", event


def year(y: int, event: str = "service") -> tuple[dt.date, dt.date, str, str]:
    return D(y, 1, 1), D(y, 12, 31), "year", event


# --- phrasings, as coders, PA specialists and analysts type them (today = 2026-12-01) -------------------

PHRASINGS = [
    # numeric, US order
    ("what's medicare paying on a Q2053 line DOS 8/14/25 after coins and seq", day(2025, 8, 14)),
    ("is 0540T ok for a 12/30/24 DOS or do i need 38228", day(2024, 12, 30)),
    ("abecma payment limit 2/3/2026?", day(2026, 2, 3)),
    ("dos 02/03/26 carvykti Q2056 units", day(2026, 2, 3)),
    ("pt infused 2/3/26 - which rev code", day(2026, 2, 3, "infusion")),
    ("claim line DOS:03/04/2026 Q2055 x1", day(2026, 3, 4)),
    ("DOS 3-4-26 ok for 0537T?", day(2026, 3, 4)),
    ("DOS 1/1/2026-1/5/2026 inpt stay", day(2026, 1, 1)),
    ("infusion 4/20 - flu/cy mg per day + units each DOS?", day(2026, 4, 20, "infusion")),
    # ISO
    ("asp limit for Q2055 on 2026-02-03", day(2026, 2, 3)),
    ("svc date 2026/02/03 carvykti", day(2026, 2, 3)),
    # month names
    ("tecartus billed Feb 3 2026 - what's the limit", day(2026, 2, 3)),
    ("DOS Feb 3, 2026 for Q2053", day(2026, 2, 3)),
    ("infused February 3rd 2026, outpt", day(2026, 2, 3, "infusion")),
    ("infusion date 3 Feb 2026 abecma", day(2026, 2, 3, "infusion")),
    ("3rd of February 2026 DOS, breyanzi", day(2026, 2, 3)),
    ("dos Febuary 3 2026 kymriah", day(2026, 2, 3)),
    ("Sept 30, 2025 carvyktii claim", day(2025, 9, 30)),
    ("admit date 03-Feb-26, DRG 018", day(2026, 2, 3, "admission")),
    ("Mar. 4, 2026 line w/ JW", day(2026, 3, 4)),
    ("pt discharged March 4th, 2026 - DRG?", day(2026, 3, 4, "discharge")),
    ("abecma inpt, dc 9/28/21 - PCS for peripheral IV infusion?", day(2021, 9, 28, "discharge")),
    ("brexu-cel IP d/c 09/30/21 central venous PCS code", day(2021, 9, 30, "discharge")),
    # months
    ("abecma rate March 2024", month(2024, 3)),
    ("Mar 2024 asp for yescarta", month(2024, 3)),
    ("what was Q2041 paying Mar '24", month(2024, 3)),
    ("DOS 3/2024 tecartus", month(2024, 3)),
    ("03/2024 claims for cilta-cel", month(2024, 3)),
    ("DOS 11/2023 - Q2055 limit?", month(2023, 11)),
    ("pt discharged Oct 2021 MS-DRG 018", month(2021, 10, "discharge")),
    ("discharge date 10/2021, what drg", month(2021, 10, "discharge")),
    ("march of 2025 breyanzi payment", month(2025, 3)),
    # quarters
    ("what's the Q2055 limit in Q3 2025", quarter(2025, 3)),
    ("carvykti Q1 26 asp + seq", quarter(2026, 1)),
    ("3Q25 payment for kymriah", quarter(2025, 3)),
    ("2026Q1 file - abecma", quarter(2026, 1)),
    ("first quarter of 2026 rates", quarter(2026, 1)),
    ("Jan-Mar 2026 tecartus limit", quarter(2026, 1)),
    ("4th qtr 2025 carvykti", quarter(2025, 4)),
    ("Q4 '25 claims", quarter(2025, 4)),
    ("pt discharged in Q3 2025, DRG 018 rate", quarter(2025, 3, "discharge")),
    # years
    ("for 2024 claims can we bill Q2055 w/ JZ", year(2024)),
    ("was 0540T separately payable in 2024", year(2024)),
    ("DOS in 2024 - which ICD-10-PCS for carvykti", year(2024)),
    ("2024 DOS for breyanzi, what code", year(2024)),
    ("during 2023 what did OPPS pay", year(2023)),
    ("CY2024 OPPS status for 0537T", year(2024)),
    # relative, against 2026-12-01
    ("what about last quarter", quarter(2026, 3)),
    ("this quarter's abecma limit", quarter(2026, 4)),
    ("last qtr same drug", quarter(2026, 3)),
    ("last month carvykti paid less - why", month(2026, 11)),
    ("we billed it last March", month(2026, 3)),
    ("infused yesterday, rev code?", day(2026, 11, 30, "infusion")),
    ("DOS today for Q2056", day(2026, 12, 1)),
    ("last year tecartus limit", year(2025)),
    ("in march tecartus", month(2026, 3)),
    ("abecma Mar 4 which rev code", day(2026, 3, 4)),
    ("Dec 1 infusion", day(2026, 12, 1, "infusion")),
    ("DOS Feb 29", day(2024, 2, 29)),
    # several dates in one line: a labelled one wins, else the first
    ("admitted 11/20/25, infused 11/22/25 - DRG 018?", day(2025, 11, 20, "admission")),
    ("dx 3/4/2019, DOS 2/3/26 - payable?", day(2026, 2, 3)),
    ("DOB 3/4/56 81 y/o DOS 2/3/26", day(2026, 2, 3)),
    ("lot exp 12/2027, infused 2/3/26", day(2026, 2, 3, "infusion")),
    ("2/3/26 and 3/4/26 - same limit?", day(2026, 2, 3)),
    ("compare Q3 2025 to Q4 2025", quarter(2025, 3)),
    ("in 2024, then DOS 3/4/26", day(2026, 3, 4)),
    ("infused 2/3/26, DOS 2/5/26", day(2026, 2, 5)),
    ("2/30/2026 typo, DOS 3/1/26", day(2026, 3, 1)),
    ("we opened 2x 400mg actemra, gave 680mg on 3/4/26, JZ/JW?", day(2026, 3, 4)),
    ("pt 5'4\" 142 lb BSA 1.85 m2 flu 30 mg/m2 days -5 to -3, infusion 12/10/25", day(2025, 12, 10, "infusion")),
    ("NDC 71287-219-01 DOS 1/5/26", day(2026, 1, 5)),
]


@pytest.mark.parametrize(("text", "expected"), PHRASINGS, ids=[t for t, _ in PHRASINGS])
def test_phrasings(text, expected):
    assert _read(text) == expected


def test_the_table_is_large():
    assert len(PHRASINGS) >= 40


def test_text_is_the_date_words_as_typed():
    assert find_service_date("DOS Feb 3, 2026 for Q2053", TODAY).text == "Feb 3, 2026"
    assert find_service_date("what about last quarter?", TODAY).text == "last quarter"
    assert find_service_date("for 2024 claims", TODAY).text == "2024"
    assert find_service_date("carvykti Q1 26", TODAY).text == "Q1 26"
    assert find_service_date("infused on 2/3/26", TODAY).source == "question"


# --- relative forms across a year boundary (today = 2026-01-15) ------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("last quarter", quarter(2025, 4)),
    ("this quarter", quarter(2026, 1)),
    ("next quarter", quarter(2026, 2)),
    ("last month", month(2025, 12)),
    ("last March", month(2025, 3)),
    ("last Jan", month(2025, 1)),          # the month before this one is not "last January": that is a year ago
    ("this March", month(2026, 3)),
    ("next March", month(2026, 3)),
    ("Mar 4", day(2025, 3, 4)),            # no year: the most recent one not after today
    ("Jan 15", day(2026, 1, 15)),
    ("Jan 16", day(2025, 1, 16)),
    ("yesterday", day(2026, 1, 14)),
    ("last year", year(2025)),
    ("in march", month(2025, 3)),
    ("DOS 12/28", day(2025, 12, 28)),
])
def test_relative_forms_across_a_year_boundary(text, expected):
    assert _read(text, NEW_YEAR) == expected


def test_last_march_in_march_is_a_year_ago():
    assert _read("last March", D(2026, 3, 20)) == month(2025, 3)
    assert _read("last March", D(2026, 4, 1)) == month(2026, 3)


# --- what is not a date --------------------------------------------------------------------------

NOT_DATES = [
    "55.5 mg", "1,000 mg", "2 x 50 mg vials", "30 mg/m2", "1.85 m2", "5'4\"", "142 lb", "5'4\" 142 lb",
    "NDC on the bag 71287-219-01 -> 11 digit + which Q code", "57894-0111-01", "0069-0111-01",
    "Q2055", "J9185", "0540T", "XW033C3", "D89.833", "C90.00", "MS-DRG 018", "DRG 018 vs 016",
    "1/2 vial", "3/4 units", "gave 1/2 vial of toci", "81 y/o", "carepartners MA member 81 y/o, 5 prior lines, ECOG 2",
    "fax 1-800-555-0199", "call (844) 555-1234", "fax # 866.555.1212", "CP.PHAR.481", "policy CP.PHAR.481 criteria",
    "day -5", "LD days -5 to -3", "D-5 flu/cy", "2024", "12", "CPT 2024 codebook", "CPT 2025 claims", "FY2024",
    "FY 2024 claims", "HCPCS 2025 update", "in 2000 mg", "we opened 2x 400mg actemra, gave 680mg, what goes on the JZ/JW lines",
    "cilta-cel outpatient - which rev code goes with Q2056 on the UB", "Q1 26 units", "this may be wrong", "pt may 2 units",
    "Mayo 2024 guideline", "does the NDC match 2024 rules", "dx in 2019", "FDA approved in 2021", "DOB 3/4/1956",
    "in 2024-25", "x3 vials", "rev code 0891", "5 prior lines",
]


@pytest.mark.parametrize("text", NOT_DATES)
def test_not_dates(text):
    assert find_service_date(text, TODAY) is None


IMPOSSIBLE = ["2/30/2026", "13/01/2026", "02/30/26", "2026-02-30", "2026-13-01", "Feb 30 2026", "30 Feb 2026", "2/29/2025",
              "DOS 13/2024", "DOS 2/30", "Jan-Jun 2026", "DOS 2/30/26, infused 2/28/26", "13/01/2026 or 1/13/2026"]


@pytest.mark.parametrize("text", IMPOSSIBLE)
def test_impossible_dates_are_never_guessed(text):
    """Not read, and not re-read as something shorter (13/01/2026 is not January 2026)."""
    assert find_service_date(text, TODAY) is None


@pytest.mark.parametrize("text", ["1" * 4000, "1/" * 2000, "2026-" * 800, "Feb 3 " * 660, "DOS " * 1000, "Q1 '" * 1000,
                                  "12 " * 1333, " " * 3999 + "x", "last " * 800, "a1" * 2000])
def test_long_questions_read_in_linear_time(text):
    """Worst cases for each pattern (hundreds of dates or near-dates in one 4,000-character line):
    a backtracking pattern would take seconds here; the bound leaves room for a slow machine."""
    start = time.perf_counter()
    find_service_date(text, TODAY)
    assert time.perf_counter() - start < 0.15


@pytest.mark.parametrize("digits", ["7" * 4000, "1" * 4000, "2026" * 1000, "20" * 2000])
def test_four_thousand_digits_is_not_a_date_and_is_fast(digits):
    start = time.perf_counter()
    assert find_service_date(digits, TODAY) is None
    assert time.perf_counter() - start < 0.05


# --- fields ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("2026-02-03", day(2026, 2, 3)),
    ("2/3/2026", day(2026, 2, 3)),
    ("02/03/26", day(2026, 2, 3)),
    ("Feb 3 2026", day(2026, 2, 3)),
    ("February 3, 2026", day(2026, 2, 3)),
    ("20260203", day(2026, 2, 3)),
    ("  2026-02-03  ", day(2026, 2, 3)),
    ("DOS: 2/3/2026", day(2026, 2, 3)),
    ("2/3/2026 (DOS)", day(2026, 2, 3)),
    ("discharged 2/3/26", day(2026, 2, 3, "discharge")),
    ("2/3", day(2026, 2, 3)),
    ("2026-02", month(2026, 2)),
    ("3/2024", month(2024, 3)),
    ("March 2024", month(2024, 3)),
    ("Q1 2026", quarter(2026, 1)),
    ("2026Q1", quarter(2026, 1)),
    ("2024", year(2024)),
    ("last quarter", quarter(2026, 3)),
    ("today", day(2026, 12, 1)),
])
def test_parse_service_date_reads_field_values(value, expected):
    got = parse_service_date(value, TODAY)
    assert (got.start, got.end, got.precision, got.event) == expected
    assert got.source == "field"


def test_parse_service_date_keeps_the_given_source():
    assert parse_service_date("2026-02-03", TODAY, source="conversation").source == "conversation"


@pytest.mark.parametrize("value", ["13/45/2026", "2/30/2026", "2026-02-30", "hello", "", "2/3/2026 and 3/4/2026", "55.5 mg",
                                   "Q2055", "DOB 3/4/1956", "2026-02-03 abecma"])
def test_parse_service_date_refuses_what_is_not_one_date(value):
    with pytest.raises(ValueError) as err:
        parse_service_date(value, TODAY)
    assert str(err.value) == f"'{value.strip()}' is not a date; type it like 2026-02-03 or 2/3/2026"


def test_parse_service_date_error_message():
    with pytest.raises(ValueError, match=r"^'13/45/2026' is not a date; type it like 2026-02-03 or 2/3/2026$"):
        parse_service_date("13/45/2026", TODAY)


# --- the ServiceDate ----------------------------------------------------------------------------

def test_label_for_each_precision():
    assert parse_service_date("2/3/2026", TODAY).label() == "2026-02-03"
    assert parse_service_date("Mar 2024", TODAY).label() == "March 2024"
    assert parse_service_date("3Q25", TODAY).label() == "Q3 2025"
    assert parse_service_date("in 2024", TODAY).label() == "2024"
    assert find_service_date("last month", TODAY).label() == "November 2026"


def test_day_and_quarter():
    one_day = parse_service_date("2025-08-14", TODAY)
    assert one_day.day == D(2025, 8, 14) and one_day.quarter == Quarter(2025, 3)
    a_month = parse_service_date("11/2023", TODAY)
    assert a_month.day == D(2023, 11, 1) and a_month.quarter == Quarter(2023, 4)
    a_quarter = parse_service_date("Q1 26", TODAY)
    assert a_quarter.day == D(2026, 1, 1) and a_quarter.quarter == Quarter(2026, 1)
    a_year = parse_service_date("2024", TODAY)
    assert a_year.day == D(2024, 1, 1) and a_year.quarter is None


def test_today_date_and_with_source():
    today = today_date(TODAY)
    assert today == ServiceDate(TODAY, TODAY, "day", "", "today")
    assert today.event == "service" and today.label() == "2026-12-01"
    moved = today.with_source("conversation")
    assert moved.source == "conversation" and moved.start == TODAY and today.source == "today"


@pytest.mark.parametrize("kwargs", [{"precision": "week"}, {"source": "email"}, {"event": "birth"}, {"end": D(2025, 1, 1)}])
def test_service_date_refuses_bad_fields(kwargs):
    values = {"start": D(2026, 1, 1), "end": D(2026, 1, 1), "precision": "day", "text": "", "source": "field"} | kwargs
    with pytest.raises(ValueError):
        ServiceDate(**values)


@pytest.mark.parametrize(("word", "number"), [("Feb", 2), ("feb.", 2), ("February", 2), ("Sept", 9), ("Febuary", 2),
                                              ("Feburary", 2), ("Sepember", 9), ("Janury", 1), ("Mayo", None), ("match", None),
                                              ("junk", None), ("Janssen", None), ("market", None), ("Julian", None)])
def test_month_words(word, number):
    assert month_number(word) == number


# --- the property -------------------------------------------------------------------------------

@given(st.dates(min_value=D(2000, 1, 1), max_value=D(2099, 12, 31)))
def test_any_date_reads_back_exactly(d):
    for text in (f"{d.month}/{d.day}/{d.year}", d.isoformat(), d.strftime("%b %d %Y")):
        got = find_service_date(text, TODAY)
        assert got is not None and (got.start, got.end, got.precision) == (d, d, "day"), text
        assert parse_service_date(text, TODAY).day == d
