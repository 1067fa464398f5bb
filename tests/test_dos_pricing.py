"""Pricing by date of service, checked against the real CMS files in ../shared/cms.

A claim is priced with the payment limit file in force on the date of service, not the date the
claim is written. Every expected figure here is read straight from the CMS CSV (a small reader
below, independent of the importer: cp1252, header row found by its 'HCPCS Code' column, columns
mapped by name), so the tests fail if the imported reference data or the calculator drift from
what CMS published. The code history (J9070 retired, J9075/J1323 added, Q2055's 460 -> 510
million descriptor) is checked both against the reference layer and against the files themselves.

The files are read once per session (functools.cache); the CMS files are never copied into the repo.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path

import pytest
import yaml

from assistant import config
from assistant.core.reference import load_reference
from assistant.tools import run_tool
from assistant.tools.errors import CalcError

CMS = config.load().shared_dir / "cms"
TODAY = "2026-12-01"            # after every quarter on hand: "today" is not what picks the quarter
CART_CODES = ("Q2053", "Q2055", "Q2056")
DEFAULT_COINSURANCE = Decimal("20")
COINSURANCE = "Co-insurance Percentage"
# REFERENCE.md: the billing guides quote these Q2 2026 limits; no CMS file for 2026Q2 is on hand.
GUIDE_2026Q2 = {"Q2053": Decimal("489290.601"), "Q2055": Decimal("559781.081"), "Q2056": Decimal("588494.808")}


# --------------------------------------------------------------------------- quarters (independent of the code under test)

def _quarters(first: tuple[int, int], last: tuple[int, int]) -> list[str]:
    (year, q), out = first, []
    while (year, q) <= last:
        out.append(f"{year}Q{q}")
        year, q = (year + 1, 1) if q == 4 else (year, q + 1)
    return out


QUARTERS = _quarters((2024, 1), (2026, 1))   # the payment limit files in ../shared/cms
OLDEST, NEWEST = QUARTERS[0], QUARTERS[-1]


def _start(quarter: str) -> date:
    return date(int(quarter[:4]), 3 * int(quarter[-1]) - 2, 1)


def _end(quarter: str) -> date:
    year, q = int(quarter[:4]), int(quarter[-1])
    nxt = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
    return nxt - timedelta(days=1)


def _middle(quarter: str) -> date:
    """The 15th of the quarter's middle month."""
    return date(int(quarter[:4]), 3 * int(quarter[-1]) - 1, 15)


# --------------------------------------------------------------------------- a small CMS reader

@dataclass(frozen=True)
class CmsFile:
    path: Path
    effective: date
    through: date
    columns: tuple[str, ...]
    rows: dict[str, dict[str, str]]       # HCPCS code -> column name -> cell (trimmed)

    @property
    def has_coinsurance(self) -> bool:
        return COINSURANCE in self.columns


def _clean(cell: str) -> str:
    return cell.replace("\xa0", " ").strip()


def _effective(preamble: list[list[str]]) -> tuple[date, date]:
    for row in preamble:
        for cell in row:
            if m := re.search(r"Effective\s+(.+?)\s+through\s+(.+)", cell, re.I):
                return tuple(datetime.strptime(s.strip(), "%B %d, %Y").date() for s in m.groups())
    raise AssertionError("no 'Effective ... through ...' line above the header")


def _parse(path: Path) -> CmsFile | None:
    """A payment limit / ASP pricing file, or None if the file has no 'HCPCS Code' header row."""
    table = list(csv.reader(io.StringIO(path.read_bytes().decode("cp1252"), newline="")))
    header_at = next((i for i, row in enumerate(table)
                      if any(_clean(c).lower() == "hcpcs code" for c in row)), None)
    if header_at is None:
        return None
    names = [_clean(c) for c in table[header_at]]
    index = {name: j for j, name in reversed(list(enumerate(names))) if name}   # first column of a name wins
    code_at = index["HCPCS Code"]
    rows: dict[str, dict[str, str]] = {}
    for row in table[header_at + 1:]:
        code = _clean(row[code_at]).upper() if code_at < len(row) else ""
        if not code:
            continue
        assert code not in rows, f"{path.name}: {code} appears twice"
        rows[code] = {name: (_clean(row[j]) if j < len(row) else "") for name, j in index.items()}
    effective, through = _effective(table[:header_at])
    return CmsFile(path=path, effective=effective, through=through, columns=tuple(index), rows=rows)


@cache
def cms_file(quarter: str) -> CmsFile:
    """The quarter's payment limit file from ../shared/cms, parsed once per session."""
    for path in sorted(CMS.glob(f"{quarter}-*.csv")):
        if "crosswalk" in path.name.lower():
            continue   # the NDC-HCPCS crosswalk (2.4 MB) is not a payment limit file
        if (parsed := _parse(path)) is not None:
            return parsed
    raise AssertionError(f"no CMS payment limit file for {quarter} in {CMS} (set CART_SHARED_DIR)")


def cms_row(quarter: str, code: str) -> dict[str, str]:
    row = cms_file(quarter).rows.get(code)
    assert row is not None, f"{code} is not in {cms_file(quarter).path.name}"
    return row


def expected_coinsurance(quarter: str, code: str) -> tuple[Decimal, bool]:
    """(percentage, whether the file gives it): the file's column, else the 20% default."""
    if not cms_file(quarter).has_coinsurance:
        return DEFAULT_COINSURANCE, False
    return Decimal(cms_row(quarter, code)[COINSURANCE]), True


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def dec(value: object) -> Decimal:
    """A calculator figure as an exact Decimal (Decimal or its string; never a float)."""
    assert not isinstance(value, float), f"{value!r} is a float"
    return Decimal(str(value))


def present_in(code: str) -> list[str]:
    return [q for q in QUARTERS if code in cms_file(q).rows]


def payment(code: str, dos: date | str):
    return run_tool("payment", code=code, units=1, dos=str(dos), today=TODAY)


def result_text(result) -> str:
    return " ".join([result.summary, *result.warnings, *result.assumptions])


# --------------------------------------------------------------------------- the files on hand

def test_cms_files_on_hand_are_the_quarters_tested():
    """One payment limit file per quarter 2024Q1..2026Q1, each effective for exactly its quarter,
    and no other payment limit file in the folder (the tests below assume which is oldest/newest)."""
    assert CMS.is_dir(), f"missing {CMS} (set CART_SHARED_DIR)"
    for quarter in QUARTERS:
        f = cms_file(quarter)
        assert (f.effective, f.through) == (_start(quarter), _end(quarter)), f.path.name
        assert {"HCPCS Code", "Payment Limit", "HCPCS Code Dosage"} <= set(f.columns)
    on_hand = {p.name[:6] for p in CMS.glob("*.csv")
               if "crosswalk" not in p.name.lower() and re.match(r"\d{4}Q[1-4]-", p.name)}
    assert on_hand == set(QUARTERS)


@pytest.mark.parametrize("quarter", QUARTERS)
def test_imported_quarter_is_the_cms_file(quarter):
    """sources/reference/payment_limits/<quarter>-cms.yaml holds the file's rows for the reference
    codes exactly: limit, co-insurance (null where the column is missing), dosage, description."""
    f = cms_file(quarter)
    ref = load_reference()
    sources = [s for s in ref.limit_sources(quarter) if s.kind == "cms-file"]
    assert len(sources) == 1, f"{quarter}: expected one imported CMS file, got {[s.path for s in sources]}"
    src = sources[0]
    assert src.file == f.path.name and src.path == f"{quarter}-cms.yaml"
    assert (src.effective, src.through) == (f.effective.isoformat(), f.through.isoformat())
    raw = yaml.safe_load((ref.ref_dir / "payment_limits" / src.path).read_text(encoding="utf-8"))
    assert raw["source"]["sha256"] == hashlib.sha256(f.path.read_bytes()).hexdigest()
    assert set(src.rows) == ref.codes_used() & set(f.rows), "the default code set, nothing more"
    for code, row in src.rows.items():
        csv_row = f.rows[code]
        assert row.payment_limit == Decimal(csv_row["Payment Limit"]), code
        want = Decimal(csv_row[COINSURANCE]) if f.has_coinsurance else None
        assert row.coinsurance_pct == want, code
        assert row.dosage == csv_row["HCPCS Code Dosage"], code
        assert row.description == csv_row["Short Description"], code


# --------------------------------------------------------------------------- (a) the quarter of the date of service

@pytest.mark.parametrize("quarter, code", [(q, c) for q in QUARTERS for c in CART_CODES])
def test_price_is_the_cms_file_in_force_on_the_date_of_service(quarter, code):
    row = cms_row(quarter, code)
    limit = Decimal(row["Payment Limit"])
    pct, from_source = expected_coinsurance(quarter, code)
    allowed = limit * 1
    dos = _middle(quarter)

    values = payment(code, dos).values

    assert values["quarter"] == quarter
    reason = values["quarter_reason"]
    assert quarter in reason and "date of service" in reason.lower(), reason
    assert str(values["dos"]) == dos.isoformat()
    assert dec(values["payment_limit"]) == limit
    assert dec(values["coinsurance_pct"]) == pct
    assert values["coinsurance_from_source"] is from_source
    assert dec(values["allowed"]) == cents(allowed)
    assert dec(values["coinsurance"]) == cents(allowed * pct / 100)
    assert dec(values["medicare"]) == cents(allowed) - cents(allowed * pct / 100)


@pytest.mark.parametrize("quarter", QUARTERS)
def test_first_and_last_day_of_a_quarter_price_with_that_quarter(quarter):
    limit = Decimal(cms_row(quarter, "Q2055")["Payment Limit"])
    for dos in (_start(quarter), _end(quarter)):
        values = payment("Q2055", dos).values
        assert (values["quarter"], dec(values["payment_limit"])) == (quarter, limit), dos


# --------------------------------------------------------------------------- (b) after the newest CMS file

@pytest.mark.parametrize("code", CART_CODES)
def test_dos_after_the_newest_cms_file_offers_the_guides_figure(code):
    dos = date(2026, 5, 10)                       # 2026Q2: no CMS file on hand
    assert NEWEST == "2026Q1" and dos > cms_file(NEWEST).through

    result = payment(code, dos)
    values = result.values
    said = " ".join([result.summary, *result.warnings])

    assert NEWEST in said, said                   # the newest CMS quarter on hand
    assert "no cms" in said.lower(), said         # ... and no CMS limit for 2026Q2
    assert "2026Q2" in said, said
    assert values["quarter"] == "2026Q2"
    assert values["source"]["kind"] == "guide"
    assert dec(values["payment_limit"]) == GUIDE_2026Q2[code]
    assert values["coinsurance_from_source"] is False
    assert dec(values["coinsurance_pct"]) == DEFAULT_COINSURANCE
    assert any("20%" in s and "default" in s.lower() for s in [*result.assumptions, *result.warnings]), \
        [*result.assumptions, *result.warnings]


def test_guides_figure_for_q2056_is_the_guides():
    values = payment("Q2056", "2026-05-10").values
    assert dec(values["payment_limit"]) == Decimal("588494.808")
    assert values["source"]["kind"] == "guide"


# --------------------------------------------------------------------------- (c) before the oldest file

def test_dos_before_the_oldest_file_names_the_oldest_quarter():
    dos = date(2023, 11, 10)
    assert OLDEST == "2024Q1" and dos < cms_file(OLDEST).effective
    with pytest.raises(CalcError, match=OLDEST):
        payment("Q2055", dos)


# --------------------------------------------------------------------------- (d) code history from the files

def test_code_history_is_the_files():
    # the files themselves
    assert "J9070" in cms_file("2024Q1").rows
    assert present_in("J9070") == ["2024Q1"]
    assert "J9075" not in cms_file("2024Q1").rows and present_in("J9075") == QUARTERS[1:]
    assert "J1323" not in cms_file("2024Q1").rows and present_in("J1323") == QUARTERS[1:]
    assert cms_row("2024Q1", "J9070")["HCPCS Code Dosage"] == "100 MG"
    assert cms_row("2024Q2", "J9075")["HCPCS Code Dosage"] == "5 MG"

    # the reference layer says the same
    ref = load_reference()
    j9070, j9075, j1323 = ref.code("J9070"), ref.code("J9075"), ref.code("J1323")
    assert j9070.valid_to == date(2024, 3, 31)
    assert j9070.valid_from is None              # in the oldest file: it started before 2024Q1
    assert j9075.valid_from == date(2024, 4, 1)
    assert j9075.valid_to is None
    assert j1323.valid_from == date(2024, 4, 1)
    assert j1323.valid_to is None


def test_q2055_descriptor_changes_with_the_files():
    dosage = {q: cms_row(q, "Q2055")["HCPCS Code Dosage"].lower() for q in QUARTERS}
    assert [q for q in QUARTERS if "up to 460 million" in dosage[q]] == ["2024Q1", "2024Q2"]
    assert [q for q in QUARTERS if "up to 510 million" in dosage[q]] == QUARTERS[2:]

    q2055 = load_reference().code("Q2055")
    assert "460" in q2055.descriptor_on(date(2024, 5, 1))
    assert "510" in q2055.descriptor_on(date(2024, 8, 1))


@pytest.mark.parametrize("quarter", QUARTERS)
def test_q2055_descriptor_on_any_day_is_that_quarters_file(quarter):
    cells = re.search(r"up to (\d+) million", cms_row(quarter, "Q2055")["HCPCS Code Dosage"], re.I).group(1)
    q2055 = load_reference().code("Q2055")
    for day in (_start(quarter), _middle(quarter), _end(quarter)):
        text = q2055.descriptor_on(day)
        assert f"{cells} million" in text.lower(), (day, text)


def _reference_codes() -> list[str]:
    return sorted(c for c in load_reference().codes_used() if re.fullmatch(r"[JQ]\d{4}", c))


@pytest.mark.parametrize("code", _reference_codes())
def test_every_reference_codes_dates_are_the_files(code):
    """valid_from is the first day of the first file a code is in (None: already in the oldest
    file), valid_to the last day of the last file it is in (None: still in the newest)."""
    quarters = present_in(code)
    assert quarters, f"{code} is in no CMS file on hand"
    assert quarters == QUARTERS[QUARTERS.index(quarters[0]):QUARTERS.index(quarters[-1]) + 1], \
        f"{code} leaves and comes back: {quarters}"
    c = load_reference().code(code)
    assert c.valid_from == (None if quarters[0] == OLDEST else _start(quarters[0])), quarters
    assert c.valid_to == (None if quarters[-1] == NEWEST else _end(quarters[-1])), quarters
