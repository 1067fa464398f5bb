"""Import a CMS quarterly file (payment limit / ASP pricing file, or NDC-HCPCS crosswalk).

    python -m index import-cms FILE [FILE...] [--quarter 2026Q1] [--codes J9185,Q2055 | --all]
                               [--reference-dir DIR] [--dry-run]

Why this exists: the calculators quote CMS payment limits and the NDC crosswalk, and those
figures change every quarter. Copying them by hand is where billing errors come from, so the
importer reads the file CMS publishes and writes one reviewed-in-git file per quarter:

    <reference>/payment_limits/<quarter>-cms.yaml      payment limit / ASP pricing file
    <reference>/crosswalk/<quarter>.csv (+ .meta.yaml)  NDC-HCPCS crosswalk

The CMS files are awkward on purpose-free grounds: cp1252 text (with 0xA0 non-breaking spaces),
a title block before the header row, rows padded with hundreds of empty columns, and columns
that come and go between quarters ("Co-insurance Percentage" is missing from older files). So
the header is found by its column names and every column is looked up by name, never position.
Only structure is parsed here; the numbers are copied exactly as CMS printed them.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import sys
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from assistant.core.files import write_atomic
from assistant.core.ndc import ndc11_or_none
from assistant.core.quarters import Quarter, QuarterError
from assistant.core.reference import load_reference

# Used only when the reference data does not (yet) list the codes the project cares about.
FALLBACK_CODES = (
    "J9185 J9075 J9071 J9072 J9073 J9074 J9076 J9070 J3262 J9380 J1323 "
    "Q2041 Q2042 Q2053 Q2054 Q2055 Q2056"
).split()

CROSSWALK_COLUMNS = [
    "quarter", "hcpcs", "short_description", "labeler_name", "ndc11", "drug_name",
    "hcpcs_dosage", "pkg_size", "pkg_qty", "billunits", "billunitspkg",
]

_NUMBER_RE = re.compile(r"^\d+(?:\.\d+)?$")
_EFFECTIVE_RE = re.compile(r"effective\s+(.+?)\s+(?:through|thru|to|-)\s+(.+)", re.IGNORECASE)
_DATE_FORMATS = ("%B %d, %Y", "%B %d %Y", "%b %d, %Y", "%b %d %Y", "%m/%d/%Y", "%m/%d/%y",
                 "%Y-%m-%d", "%d %B %Y", "%d %b %Y", "%B %Y")


class CmsImportError(Exception):
    """Bad input: reported as one line on stderr with exit code 2, never a traceback."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one readable line (exit 2) like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"import-cms: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


@dataclass
class Period:
    quarter: str
    effective: date
    through: date


@dataclass
class ParsedFile:
    """The structure of one CMS file: what kind it is, its title block, header and data rows."""

    path: Path
    kind: str                      # "payment-limit" or "crosswalk"
    title: str
    preamble: list[list[str]]
    columns: dict[str, int]        # normalised column name -> index
    rows: list[list[str]]
    sha256: str
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- reading

def _clean(cell: str) -> str:
    """CMS cells carry non-breaking spaces and stray padding; compare and store them trimmed."""
    return cell.replace("\xa0", " ").strip()


def _norm(name: str) -> str:
    """Column names differ in case and spacing between quarters: compare them as bare words."""
    return re.sub(r"[^a-z0-9]", "", _clean(name).lower())


def _decode(data: bytes) -> str:
    """CMS publishes cp1252; accept UTF-8 too in case they modernise, never fail on a byte."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _header_kind(cells: list[str]) -> str | None:
    names = {_norm(c) for c in cells if c.strip()}
    if "hcpcscode" in names and "paymentlimit" in names:
        return "payment-limit"
    if "ndc2" in names and any(re.fullmatch(r"\d{4}code", n) for n in names):
        return "crosswalk"
    return None


def read_cms_file(path: Path) -> ParsedFile:
    """Find the header row by its column names and split the file into title block and rows."""
    if not path.is_file():
        raise CmsImportError(f"{path}: no such file")
    data = path.read_bytes()
    if not data.strip():
        raise CmsImportError(f"{path.name}: the file is empty")
    if b"\x00" in data[:65536]:
        raise CmsImportError(f"{path.name}: not a CSV text file (binary content; save it as CSV)")
    try:
        all_rows = list(csv.reader(io.StringIO(_decode(data), newline="")))
    except csv.Error as exc:
        raise CmsImportError(f"{path.name}: not a readable CSV file ({exc})") from exc
    for i, row in enumerate(all_rows):
        kind = _header_kind(row)
        if kind is None:
            continue
        columns: dict[str, int] = {}
        for j, cell in enumerate(row):
            name = _norm(cell)
            if name and name not in columns:
                columns[name] = j
        if kind == "crosswalk":  # the code column is named after the year (_2026_CODE)
            columns["code"] = next(j for n, j in columns.items() if re.fullmatch(r"\d{4}code", n))
        preamble = [[_clean(c) for c in r] for r in all_rows[:i]]
        title = next((c for r in preamble for c in r if c), "")
        return ParsedFile(path=path, kind=kind, title=title, preamble=preamble, columns=columns,
                          rows=all_rows[i + 1:], sha256=hashlib.sha256(data).hexdigest())
    raise CmsImportError(
        f"{path.name}: no recognizable header row (expected 'HCPCS Code' and 'Payment Limit', "
        "or 'NDC2' and '_YYYY_CODE' columns)")


# --------------------------------------------------------------------------- quarter

def _parse_date(text: str) -> date | None:
    text = re.sub(r"\s+", " ", text.strip().strip(".,;:\"'()")).replace(" ,", ",")
    text = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text)
    text = re.sub(r"^([A-Za-z]{3,})\.", r"\1", text)  # "Jan. 1, 2026"
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _quarter_bounds(quarter: str) -> Period:
    try:
        q = Quarter.parse(quarter)
    except QuarterError:
        raise CmsImportError(f"--quarter {quarter!r} is not like 2026Q1") from None
    return Period(str(q), q.start, q.end)


def detect_period(preamble: list[list[str]]) -> Period | None:
    """The quarter comes from the file's own 'Effective <date> through <date>' line."""
    for row in preamble:
        for cell in row:
            match = _EFFECTIVE_RE.search(cell)
            if not match:
                continue
            start, end = _parse_date(match.group(1)), _parse_date(match.group(2))
            if start and end and start <= end:
                return Period(str(Quarter.of(start)), start, end)
    return None


def resolve_period(parsed: ParsedFile, override: str | None) -> Period:
    """Prefer the file's own dates; --quarter fills in when the file has none."""
    detected = detect_period(parsed.preamble)
    if override:
        wanted = _quarter_bounds(override)
        if detected and detected.quarter != wanted.quarter:
            raise CmsImportError(
                f"{parsed.path.name}: the file says {detected.quarter} "
                f"(effective {detected.effective}) but --quarter is {wanted.quarter}")
        return detected or wanted
    if detected is None:
        raise CmsImportError(
            f"{parsed.path.name}: unknown quarter (no 'Effective ... through ...' line); "
            "pass --quarter YYYYQn")
    return detected


# --------------------------------------------------------------------------- code set

def reference_codes(reference_dir: Path) -> set[str]:
    """The codes the project's reference data knows about: what a default import keeps."""
    return load_reference(reference_dir).codes_used() or set(FALLBACK_CODES)


# --------------------------------------------------------------------------- output

def _q(value: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is a subset of it)."""
    return json.dumps(value, ensure_ascii=False)


def _plain_or_q(value: str) -> str:
    """Plain when YAML reads it back as the same string (2026Q1-file.csv), else quoted (90371)."""
    import yaml

    plain = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value) and yaml.safe_load(value) == value
    return value if plain else _q(value)


def _number(cell: str) -> str | None:
    """Exact digits as printed, minus the decoration ($, commas, spaces); None if not a number."""
    text = re.sub(r"[\s$,]", "", _clean(cell))
    return text if _NUMBER_RE.match(text) else None


def _cell(row: list[str], columns: dict[str, int], *names: str) -> str:
    for name in names:
        j = columns.get(name)
        if j is not None:
            return _clean(row[j]) if j < len(row) else ""
    return ""


def payment_limit_yaml(parsed: ParsedFile, period: Period, codes: set[str] | None,
                       imported: str) -> tuple[str, int, int]:
    """Render the quarter's YAML; returns (text, data rows read, rows imported)."""
    has_coins = "coinsurancepercentage" in parsed.columns
    title = parsed.title or "Medicare Part B payment limit file"
    month = period.effective.strftime("%B %Y")
    if month.lower() not in title.lower():
        title = f"{title}, {month}"
    lines = [
        f"quarter: {period.quarter}",
        f"effective: {_q(period.effective.isoformat())}",
        f"through: {_q(period.through.isoformat())}",
        "source:",
        "  kind: cms-file",
        f"  title: {_q(title)}",
        f"  file: {_plain_or_q(parsed.path.name)}",
        f"  sha256: {_q(parsed.sha256)}",
        f"  imported: {_q(imported)}",
        "rows:",
    ]
    read = imported_rows = bad_limit = bad_coins = 0
    for row in parsed.rows:
        code = _cell(row, parsed.columns, "hcpcscode").upper()
        if not code:
            continue  # blank padding rows at the end of the file
        read += 1
        if codes is not None and code not in codes:
            continue
        limit = _number(_cell(row, parsed.columns, "paymentlimit"))
        if limit is None:
            bad_limit += 1
            continue
        coins_text = _cell(row, parsed.columns, "coinsurancepercentage") if has_coins else ""
        coins = _number(coins_text) if coins_text else None
        if coins_text and coins is None:
            bad_coins += 1
        lines += [
            f"  {_plain_or_q(code)}:",
            f"    description: {_q(_cell(row, parsed.columns, 'shortdescription'))}",
            f"    dosage: {_q(_cell(row, parsed.columns, 'hcpcscodedosage', 'hcpcsdosage'))}",
            f"    payment_limit: {_q(limit)}",
            f"    coinsurance_pct: {_q(coins) if coins is not None else 'null'}",
            f"    notes: {_q(_cell(row, parsed.columns, 'notes'))}",
            f"    cite: {_q(f'CMS {parsed.path.name}, HCPCS {code}')}",
        ]
        imported_rows += 1
    if bad_limit:
        parsed.warnings.append(f"{bad_limit} row(s) skipped: payment limit is not a number")
    if bad_coins:
        parsed.warnings.append(f"{bad_coins} row(s) with a non-numeric co-insurance kept as null")
    if not has_coins:
        parsed.warnings.append("no 'Co-insurance Percentage' column (older layout): coinsurance_pct is null")
    return "\n".join(lines) + "\n", read, imported_rows


def crosswalk_csv(parsed: ParsedFile, period: Period, codes: set[str] | None) -> tuple[str, int, int]:
    """Render the quarter's crosswalk CSV; returns (text, data rows read, rows imported)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CROSSWALK_COLUMNS)
    read = imported_rows = odd_ndc = 0
    cols = parsed.columns
    for row in parsed.rows:
        code = _cell(row, cols, "code").upper()
        if not code:
            continue
        read += 1
        if codes is not None and code not in codes:
            continue
        raw_ndc = _cell(row, cols, "ndc2")
        ndc = ndc11_or_none(raw_ndc)
        if ndc is None:
            odd_ndc += 1
        writer.writerow([
            period.quarter, code, _cell(row, cols, "shortdescription"), _cell(row, cols, "labelername"),
            ndc or raw_ndc, _cell(row, cols, "drugname"), _cell(row, cols, "hcpcsdosage"),
            _cell(row, cols, "pkgsize"), _cell(row, cols, "pkgqty"), _cell(row, cols, "billunits"),
            _cell(row, cols, "billunitspkg"),
        ])
        imported_rows += 1
    if odd_ndc:
        parsed.warnings.append(f"{odd_ndc} NDC(s) not readable as 5-4-2, kept as printed")
    return out.getvalue(), read, imported_rows


def crosswalk_meta(parsed: ParsedFile, period: Period, imported: str, count: int) -> str:
    return "\n".join([
        f"quarter: {period.quarter}",
        f"effective: {_q(period.effective.isoformat())}",
        f"through: {_q(period.through.isoformat())}",
        "source:",
        "  kind: cms-file",
        f"  title: {_q(parsed.title)}",
        f"  file: {_plain_or_q(parsed.path.name)}",
        f"  sha256: {_q(parsed.sha256)}",
        f"  imported: {_q(imported)}",
        f"row_count: {count}",
    ]) + "\n"


# --------------------------------------------------------------------------- command

def import_file(path: Path, reference_dir: Path, codes: set[str] | None, quarter: str | None,
                dry_run: bool) -> list[str]:
    """Import one file; returns the summary lines. Raises CmsImportError on bad input."""
    parsed = read_cms_file(path)
    period = resolve_period(parsed, quarter)
    imported = date.today().isoformat()
    outputs: list[tuple[Path, str]]
    if parsed.kind == "payment-limit":
        text, read, count = payment_limit_yaml(parsed, period, codes, imported)
        outputs = [(reference_dir / "payment_limits" / f"{period.quarter}-cms.yaml", text)]
        label = "payment limit / ASP pricing file"
    else:
        text, read, count = crosswalk_csv(parsed, period, codes)
        base = reference_dir / "crosswalk"
        outputs = [(base / f"{period.quarter}.csv", text),
                   (base / f"{period.quarter}.meta.yaml", crosswalk_meta(parsed, period, imported, count))]
        label = "NDC-HCPCS crosswalk"
    if read == 0:
        raise CmsImportError(f"{path.name}: the header was found but there are no data rows under it")
    if count == 0:
        raise CmsImportError(f"{path.name}: none of the requested codes are in the file; nothing written")
    summary = [
        f"{path.name}: {label}",
        f"  quarter {period.quarter}, effective {period.effective} through {period.through}",
        f"  rows read {read}, rows imported {count}",
    ]
    if codes is not None:
        key = "hcpcscode" if parsed.kind == "payment-limit" else "code"
        present = {_cell(r, parsed.columns, key).upper() for r in parsed.rows}
        missing = sorted(c for c in codes - present if re.fullmatch(r"[A-Z]\d{4}", c))  # not CPT
        if missing:
            summary.append(f"  not in this file: {', '.join(missing)}")
    summary += [f"  warning: {w}" for w in parsed.warnings]
    for out_path, out_text in outputs:
        if dry_run:
            summary.append(f"  dry run: would write {out_path} ({len(out_text.encode())} bytes)")
        else:
            write_atomic(out_path, out_text)
            summary.append(f"  wrote {out_path}")
    return summary


def _parse_codes(value: str) -> set[str]:
    codes = {c.strip().upper() for c in re.split(r"[,\s]+", value) if c.strip()}
    if not codes:
        raise CmsImportError("--codes is empty")
    return codes


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m index import-cms",
                     description="Import a CMS payment limit (ASP pricing) file or NDC-HCPCS "
                                 "crosswalk into the reference data, one file per quarter.")
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="CMS CSV file(s)")
    parser.add_argument("--quarter", help="YYYYQn, when the file has no 'Effective ... through' line")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="import every row, not only the reference codes")
    which.add_argument("--codes", help="comma-separated HCPCS codes to import (e.g. J9185,Q2055)")
    parser.add_argument("--reference-dir", type=Path,
                        help="destination reference directory (default: CART_REFERENCE_DIR)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be written, write nothing")
    return parser


def _destination_and_codes(args: argparse.Namespace) -> tuple[Path, set[str] | None]:
    """The reference directory to write and the codes to keep (None: all), checked before any file is read."""
    if args.reference_dir is not None:
        reference_dir = args.reference_dir.expanduser().resolve()
    else:
        from assistant import config

        reference_dir = config.load().reference_dir
    if args.quarter:
        _quarter_bounds(args.quarter)  # a typo is reported before any file is read
    codes: set[str] | None
    if args.all:
        codes = None
    elif args.codes:
        codes = _parse_codes(args.codes)
    else:
        codes = reference_codes(reference_dir)
    return reference_dir, codes


def _import_one(path: Path, reference_dir: Path, codes: set[str] | None, args: argparse.Namespace) -> int:
    """Import one file and print its summary; 2 with one line on stderr if it fails, so the other files still run."""
    try:
        for line in import_file(path, reference_dir, codes, args.quarter, args.dry_run):
            print(line)
    except CmsImportError as exc:
        print(f"import-cms: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"import-cms: error: {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # never a traceback for a bad file
        print(f"import-cms: error: {path.name}: could not import ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point for `python -m index import-cms`; 0 ok, 2 bad input (one line on stderr)."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        reference_dir, codes = _destination_and_codes(args)
    except CmsImportError as exc:
        print(f"import-cms: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # e.g. an unreadable hcpcs.yaml: still one line, no traceback
        print(f"import-cms: error: cannot read the reference data: {exc}", file=sys.stderr)
        return 2
    status = 0
    for path in args.files:  # every file is tried; any failure makes the exit status 2
        status = max(status, _import_one(path, reference_dir, codes, args))
    return status
