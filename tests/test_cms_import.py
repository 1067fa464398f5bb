"""The CMS quarterly importer: the real files give REFERENCE.md's figures; bad input is one line.

Real files come from the shared folder (read-only, never copied into the project); the small
fixtures in tests/fixtures/cms/ reproduce the CMS layout quirks (cp1252 with 0xA0, title block
before the header, padded columns, the older layout without "Co-insurance Percentage").
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from assistant import config
from index import cms_import
from tests.conftest import subprocess_env

PROJECT = config.PROJECT_ROOT
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cms"
CMS = config.load().shared_dir / "cms"
PAYMENT_2026Q1 = CMS / "2026Q1-payment-limit-file.csv"
PAYMENT_2025Q4 = CMS / "2025Q4-asp-pricing-file.csv"
CROSSWALK_2026Q1 = CMS / "2026Q1-ndc-hcpcs-crosswalk.csv"

# REFERENCE.md "Payment limits per dose (CMS files)": (limit, coinsurance %) per quarter.
LIMITS = {
    "2025Q4": {"Q2041": ("533230.171", "18.187"), "Q2042": ("591726.201", "17.633"),
               "Q2053": ("489304.608", "19.819"), "Q2054": ("562538.185", "18.170"),
               "Q2055": ("557317.934", "18.751"), "Q2056": ("565868.945", "18.863")},
    "2026Q1": {"Q2041": ("532192.241", "18.350"), "Q2042": ("566531.304", "18.547"),
               "Q2053": ("489450.202", "19.952"), "Q2054": ("562201.242", "18.308"),
               "Q2055": ("558081.726", "18.857"), "Q2056": ("587649.574", "18.291")},
}
# REFERENCE.md "CAR-T NDCs in the CMS crosswalk (January 2026)".
CART_NDCS = {
    "Q2041": {"71287-0119-01"},
    "Q2042": {"00078-0846-19", "00078-0958-19"},
    "Q2053": {"71287-0219-01", "71287-0220-01"},
    "Q2054": {"73153-0900-01"},
    "Q2055": {"59572-0515-01", "59572-0515-02", "59572-0515-03"},
    "Q2056": {"57894-0111-01", "57894-0111-02"},
}
# REFERENCE.md "HCPCS billing units".
DOSAGE = {"J9185": "50 MG", "J9075": "5 MG", "J3262": "1 MG", "J9380": "0.5 MG", "J1323": "1 MG"}


def run(*args: str | Path) -> int:
    return cms_import.main([str(a) for a in args])


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def crosswalk_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_real_files_are_present():
    """The real-file tests below must run, not skip: fail loudly if the shared folder moved."""
    for path in (PAYMENT_2026Q1, PAYMENT_2025Q4, CROSSWALK_2026Q1):
        assert path.is_file(), f"missing {path} (set CART_SHARED_DIR)"


# --------------------------------------------------------------------------- real CMS files

@pytest.mark.parametrize("path, quarter, effective, through", [
    (PAYMENT_2026Q1, "2026Q1", "2026-01-01", "2026-03-31"),
    (PAYMENT_2025Q4, "2025Q4", "2025-10-01", "2025-12-31"),
])
def test_real_payment_limit_file(tmp_path, capsys, path, quarter, effective, through):
    assert run(path, "--reference-dir", tmp_path) == 0
    out = capsys.readouterr().out
    assert quarter in out and "rows imported" in out
    data = load(tmp_path / "payment_limits" / f"{quarter}-cms.yaml")
    assert data["quarter"] == quarter
    assert (data["effective"], data["through"]) == (effective, through)
    assert data["source"]["kind"] == "cms-file"
    assert data["source"]["file"] == path.name
    assert len(data["source"]["sha256"]) == 64
    assert data["source"]["title"].startswith("Payment Allowance Limits for Medicare Part B Drugs")
    rows = data["rows"]
    for code, (limit, coins) in LIMITS[quarter].items():
        assert rows[code]["payment_limit"] == limit, code
        assert rows[code]["coinsurance_pct"] == coins, code
        assert rows[code]["notes"] == "Inflation-adjusted coinsurance"
        assert rows[code]["cite"] == f"CMS {path.name}, HCPCS {code}"
    for code, dosage in DOSAGE.items():
        assert rows[code]["dosage"] == dosage, code
    assert "MILLION" in rows["Q2055"]["dosage"].upper() and "510" in rows["Q2055"]["dosage"]
    assert "J9070" not in rows  # gone since April 2024: not in either file
    assert "90371" not in rows  # default import keeps only reference codes


def test_real_payment_limit_file_exact_text_layout(tmp_path):
    """The calculators read this layout: quarter plain, dates and figures as quoted strings."""
    assert run(PAYMENT_2026Q1, "--reference-dir", tmp_path, "--codes", "Q2055") == 0
    text = (tmp_path / "payment_limits" / "2026Q1-cms.yaml").read_text(encoding="utf-8")
    assert text.startswith('quarter: 2026Q1\neffective: "2026-01-01"\nthrough: "2026-03-31"\nsource:\n'
                           "  kind: cms-file\n")
    assert "  file: 2026Q1-payment-limit-file.csv\n" in text
    assert ('rows:\n  Q2055:\n    description: "Idecabtagene vicleucel car"\n'
            '    dosage: "UP TO 510 MILLION AUTOLOGOUS ANTI-BCMA CAR-POSITIVE VIABLE T CELLS"\n'
            '    payment_limit: "558081.726"\n    coinsurance_pct: "18.857"\n'
            '    notes: "Inflation-adjusted coinsurance"\n'
            '    cite: "CMS 2026Q1-payment-limit-file.csv, HCPCS Q2055"\n') in text
    assert list(load(tmp_path / "payment_limits" / "2026Q1-cms.yaml")["rows"]) == ["Q2055"]


def test_real_payment_limit_file_all_rows_and_nbsp(tmp_path):
    assert run(PAYMENT_2026Q1, "--reference-dir", tmp_path, "--all") == 0
    rows = load(tmp_path / "payment_limits" / "2026Q1-cms.yaml")["rows"]
    assert len(rows) > 800
    assert rows["90371"]["payment_limit"] == "137.828"  # numeric code kept as a string key
    assert rows["J9325"]["dosage"] == "1 million PFU"    # the file has a 0xA0 in this cell


def test_real_crosswalk(tmp_path, capsys):
    assert run(CROSSWALK_2026Q1, "--reference-dir", tmp_path) == 0
    assert "2026Q1" in capsys.readouterr().out
    out = tmp_path / "crosswalk" / "2026Q1.csv"
    with out.open(encoding="utf-8", newline="") as fh:
        assert next(csv.reader(fh)) == cms_import.CROSSWALK_COLUMNS
    rows = crosswalk_rows(out)
    for code, ndcs in CART_NDCS.items():
        assert {r["ndc11"] for r in rows if r["hcpcs"] == code} == ndcs, code
    assert all(r["quarter"] == "2026Q1" for r in rows)
    abecma = [r for r in rows if r["ndc11"] == "59572-0515-01"][0]
    assert abecma["labeler_name"] == "Celgene Corporation"
    assert abecma["drug_name"] == "Abecma" and abecma["billunits"] == "1"
    kymriah = [r for r in rows if r["ndc11"] == "00078-0846-19"][0]
    assert kymriah["drug_name"] == "Kymriah"  # trailing space in the file is trimmed
    assert kymriah["labeler_name"] == "Novartis Pharmaceuticals Corporation"
    tecvayli = {r["drug_name"] for r in rows if r["ndc11"].startswith("57894-")}
    assert {"Carvykti", "Tecvayli"} <= tecvayli  # Janssen's labeler 57894 also carries Tecvayli
    assert {r["hcpcs_dosage"] for r in rows if r["hcpcs"] == "J9185"} == {"50 MG"}
    meta = load(tmp_path / "crosswalk" / "2026Q1.meta.yaml")
    assert meta["quarter"] == "2026Q1"
    assert (meta["effective"], meta["through"]) == ("2026-01-01", "2026-03-31")
    assert meta["source"]["file"] == CROSSWALK_2026Q1.name
    assert meta["row_count"] == len(rows)


def test_committed_reference_data_matches_the_real_files(tmp_path):
    """The imported files in sources/reference are what the importer makes of the CMS files."""
    ref = PROJECT / "sources" / "reference"
    for quarter, path in (("2026Q1", PAYMENT_2026Q1), ("2025Q4", PAYMENT_2025Q4)):
        committed = load(ref / "payment_limits" / f"{quarter}-cms.yaml")
        for code, (limit, coins) in LIMITS[quarter].items():
            assert committed["rows"][code]["payment_limit"] == limit
            assert committed["rows"][code]["coinsurance_pct"] == coins
        assert run(path, "--reference-dir", tmp_path, "--codes", ",".join(committed["rows"])) == 0
        fresh = load(tmp_path / "payment_limits" / f"{quarter}-cms.yaml")
        assert fresh["rows"] == committed["rows"]
        assert fresh["source"]["sha256"] == committed["source"]["sha256"]
    committed_rows = crosswalk_rows(ref / "crosswalk" / "2026Q1.csv")
    for code, ndcs in CART_NDCS.items():
        assert {r["ndc11"] for r in committed_rows if r["hcpcs"] == code} == ndcs


# --------------------------------------------------------------------------- fixtures

def test_fixture_current_layout(tmp_path, capsys):
    assert run(FIXTURES / "payment-limit-2026Q2.csv", "--reference-dir", tmp_path) == 0
    out = capsys.readouterr().out
    assert "2026Q2" in out and "2026-04-01 through 2026-06-30" in out
    assert "1 row(s) skipped: payment limit is not a number" in out
    data = load(tmp_path / "payment_limits" / "2026Q2-cms.yaml")
    assert (data["quarter"], data["effective"], data["through"]) == ("2026Q2", "2026-04-01", "2026-06-30")
    rows = data["rows"]
    assert rows["Q2055"]["payment_limit"] == "559781.081"  # " $559,781.081 " in the file
    assert rows["Q2055"]["coinsurance_pct"] == "18.900"
    assert rows["J9185"]["dosage"] == "50 MG"               # 0xA0 between 50 and MG
    assert "J9380" not in rows                              # "N/A" limit: skipped, not guessed
    assert "90371" not in rows


def test_fixture_old_layout_has_null_coinsurance(tmp_path, capsys):
    assert run(FIXTURES / "payment-limit-old-layout.csv", "--reference-dir", tmp_path) == 0
    assert "older layout" in capsys.readouterr().out
    data = load(tmp_path / "payment_limits" / "2023Q4-cms.yaml")
    assert (data["effective"], data["through"]) == ("2023-10-01", "2023-12-31")  # "Oct. 1st 2023", "12/31/2023"
    assert data["rows"]["Q2055"]["payment_limit"] == "419500.000"  # columns found by name, not position
    assert data["rows"]["Q2055"]["dosage"] == "UP TO 460 MILLION CELLS"
    assert all(row["coinsurance_pct"] is None for row in data["rows"].values())
    assert "coinsurance_pct: null" in (tmp_path / "payment_limits" / "2023Q4-cms.yaml").read_text()


def test_fixture_crosswalk_padded_columns_and_ndc_forms(tmp_path):
    assert run(FIXTURES / "crosswalk-2026Q2.csv", "--reference-dir", tmp_path, "--all") == 0
    rows = crosswalk_rows(tmp_path / "crosswalk" / "2026Q2.csv")
    ndc = {r["hcpcs"]: r["ndc11"] for r in rows}
    assert ndc == {
        "90371": "13533-0636-01",
        "J9185": "24201-0237-01",  # 11 digits without hyphens
        "Q2041": "71287-0119-01",  # 5-3-2
        "Q2042": "00078-0846-19",  # 4-4-2
        "Q2055": "59572-0515-01",  # 5-4-1
    }
    assert all(len(r) == len(cms_import.CROSSWALK_COLUMNS) for r in rows)
    assert load(tmp_path / "crosswalk" / "2026Q2.meta.yaml")["row_count"] == 5


@pytest.mark.parametrize("text, quarter, effective, through", [
    ("Effective January 1, 2026 through March 31, 2026", "2026Q1", "2026-01-01", "2026-03-31"),
    ("     Effective October 1, 2025 through December 31, 2025", "2025Q4", "2025-10-01", "2025-12-31"),
    ("effective Jul 1 2025 thru Sep 30 2025", "2025Q3", "2025-07-01", "2025-09-30"),
    ("Effective 04/01/2026 through 06/30/2026", "2026Q2", "2026-04-01", "2026-06-30"),
    ("Effective 2024-01-01 to 2024-03-31", "2024Q1", "2024-01-01", "2024-03-31"),
])
def test_quarter_detection(text, quarter, effective, through):
    period = cms_import.detect_period([["Title"], ["", text, ""]])
    assert period is not None
    assert (period.quarter, period.effective.isoformat(), period.through.isoformat()) == (
        quarter, effective, through)


def test_quarter_detection_absent():
    assert cms_import.detect_period([["Payment Allowance Limits"], ["Note 1: nothing here"]]) is None


def test_quarter_override_when_file_has_no_dates(tmp_path, capsys):
    path = FIXTURES / "payment-limit-no-dates.csv"
    assert run(path, "--reference-dir", tmp_path) == 2
    assert "--quarter" in capsys.readouterr().err
    assert not (tmp_path / "payment_limits").exists()
    assert run(path, "--reference-dir", tmp_path, "--quarter", "2025q3") == 0
    data = load(tmp_path / "payment_limits" / "2025Q3-cms.yaml")
    assert (data["quarter"], data["effective"], data["through"]) == ("2025Q3", "2025-07-01", "2025-09-30")
    assert data["rows"]["Q2041"]["payment_limit"] == "530000.000"


def test_quarter_override_contradicting_the_file_is_refused(tmp_path, capsys):
    assert run(FIXTURES / "payment-limit-2026Q2.csv", "--reference-dir", tmp_path, "--quarter", "2026Q1") == 2
    err = capsys.readouterr().err
    assert "2026Q2" in err and "2026Q1" in err
    assert not (tmp_path / "payment_limits").exists()


def test_reimport_replaces_only_its_own_quarter(tmp_path):
    assert run(FIXTURES / "payment-limit-old-layout.csv", "--reference-dir", tmp_path) == 0
    assert run(FIXTURES / "payment-limit-2026Q2.csv", "--reference-dir", tmp_path) == 0
    other = tmp_path / "payment_limits" / "2023Q4-cms.yaml"
    this = tmp_path / "payment_limits" / "2026Q2-cms.yaml"
    before = other.read_bytes()
    this.write_text("stale\n", encoding="utf-8")
    assert run(FIXTURES / "payment-limit-2026Q2.csv", "--reference-dir", tmp_path, "--codes", "J9185") == 0
    assert other.read_bytes() == before
    assert list(load(this)["rows"]) == ["J9185"]
    assert sorted(p.name for p in (tmp_path / "payment_limits").iterdir()) == [
        "2023Q4-cms.yaml", "2026Q2-cms.yaml"]  # no temporary files left behind


def test_dry_run_writes_nothing(tmp_path, capsys):
    assert run(FIXTURES / "crosswalk-2026Q2.csv", "--reference-dir", tmp_path, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "would write" in out and "2026Q2.csv" in out
    assert list(tmp_path.iterdir()) == []


def test_default_codes_come_from_the_reference_data(tmp_path):
    (tmp_path / "products.yaml").write_text("products:\n  - id: x\n    hcpcs: '90371'\n", encoding="utf-8")
    (tmp_path / "hcpcs.yaml").write_text("codes:\n  J9185:\n    drug: fludarabine\n", encoding="utf-8")
    assert cms_import.reference_codes(tmp_path) == {"J9185", "90371"}
    assert run(FIXTURES / "payment-limit-2026Q2.csv", "--reference-dir", tmp_path) == 0
    assert set(load(tmp_path / "payment_limits" / "2026Q2-cms.yaml")["rows"]) == {"J9185", "90371"}
    project_codes = cms_import.reference_codes(PROJECT / "sources" / "reference")
    assert set(LIMITS["2026Q1"]) | {"J9185", "J9075"} <= project_codes


# --------------------------------------------------------------------------- bad input

def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    binary = tmp_path / "report.xlsx"
    binary.write_bytes(b"PK\x03\x04\x00\x00\x08\x00" + bytes(range(256)))
    header_only = tmp_path / "header-only.csv"
    header_only.write_bytes(b'"Effective January 1, 2026 through March 31, 2026"\r\n'
                            b"HCPCS Code,Short Description,HCPCS Code Dosage,Payment Limit\r\n,,,\r\n")
    return {
        "missing": (tmp_path / "nope.csv", "no such file"),
        "empty": (empty, "empty"),
        "binary": (binary, "not a CSV"),
        "malformed": (FIXTURES / "malformed.csv", "no recognizable header"),
        "no rows": (header_only, "no data rows"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "binary", "malformed", "no rows"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case):
    path, expected = _bad_inputs(tmp_path)[case]
    ref = tmp_path / "ref"
    assert run(path, "--reference-dir", ref) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert expected in err and "Traceback" not in captured.err + captured.out
    assert len(err.splitlines()) == 1 and err.startswith("import-cms: error:")
    assert not ref.exists()


def test_no_requested_code_in_file_writes_nothing(tmp_path, capsys):
    assert run(FIXTURES / "payment-limit-2026Q2.csv", "--reference-dir", tmp_path, "--codes", "Z9999") == 2
    assert "none of the requested codes" in capsys.readouterr().err
    assert not (tmp_path / "payment_limits").exists()


@pytest.mark.parametrize("argv", [[], ["x.csv", "--all", "--codes", "Q2055"], ["x.csv", "--quarter", "26Q1"]])
def test_usage_errors_exit_2_without_traceback(tmp_path, capsys, argv):
    try:
        code = cms_import.main(argv + ["--reference-dir", str(tmp_path)] if argv else argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert "import-cms: error:" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "no such file" not in err


def test_quarter_flag_not_a_quarter(tmp_path, capsys):
    assert run(FIXTURES / "payment-limit-no-dates.csv", "--reference-dir", tmp_path, "--quarter", "26Q1") == 2
    assert "not like 2026Q1" in capsys.readouterr().err


def test_subprocess_bad_input_and_real_run(tmp_path):
    """Through the real entry point: a bad file is one stderr line, a good one a summary."""
    cmd = [sys.executable, "-m", "index", "import-cms"]
    env = subprocess_env(CART_REFERENCE_DIR=str(tmp_path / "ref"))
    bad = subprocess.run(cmd + [str(FIXTURES / "malformed.csv")], cwd=PROJECT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()]
    assert "no recognizable header" in bad.stderr
    good = subprocess.run(cmd + [str(FIXTURES / "payment-limit-old-layout.csv")], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert good.returncode == 0, good.stderr
    assert "2023Q4" in good.stdout and "rows imported 3" in good.stdout
    assert (tmp_path / "ref" / "payment_limits" / "2023Q4-cms.yaml").is_file()  # CART_REFERENCE_DIR honoured


# --------------------------------------------------------------------------- encoding and read-back

PAYMENT_HEADER = (b"HCPCS Code,Short Description,HCPCS Code Dosage,Payment Limit,Co-insurance Percentage,"
                  b"Vaccine AWP%,Vaccine Limit,Blood AWP%,Blood limit,Clotting Factor,Notes,")
C1_CONTROLS = {chr(c) for c in range(0x80, 0xA0)}


def _cp1252_cell(cell: str | bytes) -> bytes:
    raw = cell if isinstance(cell, bytes) else cell.encode("cp1252")
    return b'"' + raw.replace(b'"', b'""') + b'"'


def payment_file(tmp_path: Path, rows: list[tuple[str | bytes, ...]], name: str = "payment-limit-2026Q2.csv") -> Path:
    """A payment limit file in CMS's layout (cp1252, CRLF, title block, padded columns).

    Each row is (code, description, dosage, limit, coinsurance, notes); a bytes cell is written as is,
    so a test can put bytes into the file that cp1252 does not define."""
    lines = [b"Payment Allowance Limits for Medicare Part B Drugs,,,,,,,,,,,", b",,,,,,,,,,,",
             b'"Effective April 1, 2026 through June 30, 2026",,,,,,,,,,,', b",,,,,,,,,,,", PAYMENT_HEADER]
    for code, description, dosage, limit, coins, notes in rows:
        cells = [code, description, dosage, limit, coins, "", "", "", "", "", notes, ""]
        lines.append(b",".join(_cp1252_cell(c) for c in cells))
    path = tmp_path / name
    path.write_bytes(b"\r\n".join(lines + [b",,,,,,,,,,,", b""]))
    return path


def test_cp1252_punctuation_and_an_undefined_byte_import_as_loadable_yaml(tmp_path, capsys):
    """0x85 (ellipsis) and 0x96 (en dash) stay cp1252 characters even when the same file holds 0x81,
    which cp1252 leaves undefined: only that byte is replaced, and the YAML loads (no C1 controls)."""
    path = payment_file(tmp_path, [
        ("Q2055", b"Idecabtagene\x85 vicleucel \x96 car\x81", "UP TO 510 MILLION CELLS", "559781.081", "18.900",
         b"Inflation\x96adjusted"),
        ("J9185", "Fludarabine phosphate inj", "50 MG", "81.409", "20.000", ""),
    ])
    ref = tmp_path / "ref"
    assert run(path, "--reference-dir", ref, "--all") == 0, capsys.readouterr().err
    out = ref / "payment_limits" / "2026Q2-cms.yaml"
    text = out.read_text(encoding="utf-8")
    assert not C1_CONTROLS & set(text)
    rows = yaml.safe_load(text)["rows"]
    assert rows["Q2055"]["description"] == "Idecabtagene\u2026 vicleucel \u2013 car\ufffd"
    assert rows["Q2055"]["notes"] == "Inflation\u2013adjusted"
    assert rows["Q2055"]["payment_limit"] == "559781.081"
    assert rows["J9185"]["description"] == "Fludarabine phosphate inj"
    from assistant.core.reference import load_reference  # the product's loader reads it too

    limits = {s.kind: s for s in load_reference(ref).limits["2026Q2"]}["cms-file"].rows
    assert str(limits["Q2055"].payment_limit) == "559781.081"
    assert limits["Q2055"].description == "Idecabtagene\u2026 vicleucel \u2013 car\ufffd"


@pytest.mark.parametrize("data, text", [
    (b"caf\xe9 \x85 \x96 \xa0x", "caf\xe9 \u2026 \u2013 \xa0x"),              # cp1252, as CMS publishes
    (b"\x81 \x8d \x8f \x90 \x9d \x80", "\ufffd \ufffd \ufffd \ufffd \ufffd \u20ac"),  # only undefined bytes replaced
    (b"\xef\xbb\xbfcaf\xc3\xa9 \xe2\x80\xa6", "caf\xe9 \u2026"),                 # UTF-8 with a BOM
    (b"caf\xc3\xa9 \xc2\x85 \xc2\x96 \xc2\x81", "caf\xe9 \u2026 \u2013 \ufffd"),  # UTF-8 carrying C1 controls
])
def test_decode_never_yields_c1_controls(data, text):
    assert cms_import._decode(data) == text


SPECIAL = [
    'Inj: "quoted" # not a comment',
    "- leading dash",
    "{brace} [bracket], & *alias !tag | > % @ `",
    "back\\slash \\n \\x41 \\\\",
    "'single' quotes: \"double\" quotes",
    "key: value\ttab and a bell\x07",
    "trailing colon:",
    "null",
    "0.5",
    "yes",
    "#leading hash",
    "? question",
]


def test_yaml_special_characters_round_trip(tmp_path):
    """Whatever CMS prints in a description, the YAML reads back the same string (written by the library)."""
    rows = [(f"J{9000 + i}", text, text, "1.000", "20.000", text) for i, text in enumerate(SPECIAL)]
    rows.append(("90371", "Hep b ig im", "1 ML", "137.828", "20.000", ""))  # a numeric code stays a string key
    ref = tmp_path / "ref"
    assert run(payment_file(tmp_path, rows), "--reference-dir", ref, "--all") == 0
    data = load(ref / "payment_limits" / "2026Q2-cms.yaml")
    for i, text in enumerate(SPECIAL):
        row = data["rows"][f"J{9000 + i}"]
        assert (row["description"], row["dosage"], row["notes"]) == (text, text, text), text
    assert data["rows"]["90371"]["payment_limit"] == "137.828"
    assert list(data["rows"]) == [f"J{9000 + i}" for i in range(len(SPECIAL))] + ["90371"]  # the file's order


def _broken_yaml(data: dict) -> str:
    return "quarter: 2026Q2\nrows: [\n  unclosed: {\n"


def _changed_yaml(real_dump):
    """A generator whose text parses, but a figure is not the one meant."""
    return lambda data: real_dump(data).replace('"559781.081"', '"559781.08"')


@pytest.mark.parametrize("make_generator, expected", [
    (lambda real_dump: _broken_yaml, "does not read back"),
    (_changed_yaml, "reads back differently (rows.Q2055.payment_limit)"),
], ids=["unparsable", "different-figure"])
def test_failed_read_back_leaves_the_previous_file_unchanged(tmp_path, capsys, monkeypatch, make_generator, expected):
    path = FIXTURES / "payment-limit-2026Q2.csv"
    assert run(path, "--reference-dir", tmp_path) == 0
    target = tmp_path / "payment_limits" / "2026Q2-cms.yaml"
    before = target.read_bytes()
    capsys.readouterr()
    monkeypatch.setattr(cms_import, "_dump_yaml", make_generator(cms_import._dump_yaml))
    assert run(path, "--reference-dir", tmp_path, "--codes", "Q2055") == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("import-cms: error: 2026Q2-cms.yaml: ")
    assert expected in err and "nothing written" in err
    assert "Traceback" not in captured.err + captured.out and "wrote" not in captured.out
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == ["2026Q2-cms.yaml"]  # no temporary file left


def test_crosswalk_outputs_are_all_checked_before_any_is_replaced(tmp_path, capsys, monkeypatch):
    """The CSV reads back fine but its .meta.yaml does not: the CSV is not replaced either."""
    path = FIXTURES / "crosswalk-2026Q2.csv"
    assert run(path, "--reference-dir", tmp_path, "--all") == 0
    folder = tmp_path / "crosswalk"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    capsys.readouterr()
    monkeypatch.setattr(cms_import, "_dump_yaml", _broken_yaml)
    assert run(path, "--reference-dir", tmp_path, "--codes", "Q2055") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "2026Q2.meta.yaml: the generated file does not read back" in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
