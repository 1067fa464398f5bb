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

Every file is written by the YAML / CSV library and parsed back before it replaces anything: the
loader reads these files on every answer, so one it cannot read would break all of them.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import re
import sys
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

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
# U+0080-U+009F (C1 controls) read as the cp1252 characters they stand for; cp1252's five
# undefined bytes (0x81 0x8D 0x8F 0x90 0x9D) become U+FFFD. See _decode.
_C1_AS_CP1252 = {c: bytes([c]).decode("cp1252", errors="replace") for c in range(0x80, 0xA0)}
_PLAIN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_NO_WRAP = 2**31 - 1  # a long description stays on one line: one reviewable diff line per field


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
    """CMS publishes cp1252; accept UTF-8 too in case they modernise, never fail on a byte.

    A byte cp1252 leaves undefined becomes U+FFFD on its own; the rest of the file is still read
    as cp1252. (Falling back to latin-1 for the whole file turned every 0x80-0x9F byte, the
    ellipsis and dashes CMS descriptions use, into C1 control characters, which PyYAML refuses
    to load: one stray byte broke every answer.) A C1 control in a UTF-8 file is the same
    mistake made upstream, so it is read as the cp1252 character it stands for.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    return text.translate(_C1_AS_CP1252)


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

class _Plain(str):
    """A string written bare when YAML reads it back as the same string (2026Q1, Q2055,
    2026Q1-file.csv), double-quoted otherwise (90371 would read back as a number)."""


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, so every string round-trips (control characters, quotes, ': ', ' #',
    a leading '- ' are escaped by the library, not by hand), with the layout the reviewed files
    have always had: keys bare when that reads back the same, string values double-quoted, so
    a figure like "558081.726" stays text."""

    def represent_mapping(self, tag: str, mapping: Any, flow_style: bool | None = None) -> yaml.MappingNode:
        keys_plain = {(_Plain(k) if type(k) is str else k): v for k, v in mapping.items()}
        return super().represent_mapping(tag, keys_plain, flow_style)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style='"')


def _represent_plain(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    plain = _PLAIN_RE.fullmatch(value) is not None and yaml.safe_load(value) == value
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style=None if plain else '"')


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(_Plain, _represent_plain)


def _dump_yaml(data: dict[str, Any]) -> str:
    """The YAML text of `data`, keys in the order given, block style, one line per field."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False,
                     width=_NO_WRAP)


def _dump_csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


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


def _header(parsed: ParsedFile, period: Period, title: str, imported: str) -> dict[str, Any]:
    """The quarter and source block both YAML files start with (the loader keys on these)."""
    return {
        "quarter": _Plain(period.quarter),
        "effective": period.effective.isoformat(),
        "through": period.through.isoformat(),
        "source": {"kind": _Plain("cms-file"), "title": title, "file": _Plain(parsed.path.name),
                   "sha256": parsed.sha256, "imported": imported},
    }


def payment_limit_data(parsed: ParsedFile, period: Period, codes: set[str] | None,
                       imported: str) -> tuple[dict[str, Any], int, int]:
    """The quarter's payment-limit file as data; returns (data, data rows read, rows imported)."""
    has_coins = "coinsurancepercentage" in parsed.columns
    title = parsed.title or "Medicare Part B payment limit file"
    month = period.effective.strftime("%B %Y")
    if month.lower() not in title.lower():
        title = f"{title}, {month}"
    data = _header(parsed, period, title, imported)
    rows: dict[str, dict[str, str | None]] = {}
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
        rows[_Plain(code)] = {
            "description": _cell(row, parsed.columns, "shortdescription"),
            "dosage": _cell(row, parsed.columns, "hcpcscodedosage", "hcpcsdosage"),
            "payment_limit": limit,
            "coinsurance_pct": coins,
            "notes": _cell(row, parsed.columns, "notes"),
            "cite": f"CMS {parsed.path.name}, HCPCS {code}",
        }
        imported_rows += 1
    if bad_limit:
        parsed.warnings.append(f"{bad_limit} row(s) skipped: payment limit is not a number")
    if bad_coins:
        parsed.warnings.append(f"{bad_coins} row(s) with a non-numeric co-insurance kept as null")
    if not has_coins:
        parsed.warnings.append("no 'Co-insurance Percentage' column (older layout): coinsurance_pct is null")
    data["rows"] = rows
    return data, read, imported_rows


def crosswalk_table(parsed: ParsedFile, period: Period, codes: set[str] | None) -> tuple[list[list[str]], int, int]:
    """The quarter's crosswalk CSV as rows, header first; returns (rows, data rows read, rows imported)."""
    table = [list(CROSSWALK_COLUMNS)]
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
        table.append([
            period.quarter, code, _cell(row, cols, "shortdescription"), _cell(row, cols, "labelername"),
            ndc or raw_ndc, _cell(row, cols, "drugname"), _cell(row, cols, "hcpcsdosage"),
            _cell(row, cols, "pkgsize"), _cell(row, cols, "pkgqty"), _cell(row, cols, "billunits"),
            _cell(row, cols, "billunitspkg"),
        ])
        imported_rows += 1
    if odd_ndc:
        parsed.warnings.append(f"{odd_ndc} NDC(s) not readable as 5-4-2, kept as printed")
    return table, read, imported_rows


def crosswalk_meta(parsed: ParsedFile, period: Period, imported: str, count: int) -> dict[str, Any]:
    """The crosswalk's provenance (the CSV has no room for it) as data."""
    return {**_header(parsed, period, parsed.title, imported), "row_count": count}


# --------------------------------------------------------------------------- read-back

@dataclass
class _Output:
    """One file to write: its bytes, and the data they must read back as."""

    path: Path
    data: bytes
    meant: Any


def _yaml_output(path: Path, meant: dict[str, Any]) -> _Output:
    return _Output(path, _dump_yaml(meant).encode("utf-8"), meant)


def _csv_output(path: Path, meant: list[list[str]]) -> _Output:
    return _Output(path, _dump_csv(meant).encode("utf-8"), meant)


def _one_line(exc: Exception) -> str:
    """A parser's message without its multi-line source excerpt (stderr gets one line)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    text = f"{problem} at line {mark.line + 1}" if problem and mark else str(exc)
    return " ".join(text.split())[:200]


def _first_difference(meant: Any, got: Any, where: str = "") -> str:
    """Where two parsed documents first differ, as a key path (rows.Q2055.payment_limit)."""
    if isinstance(meant, dict) and isinstance(got, dict):
        if list(meant) != list(got):
            missing = [str(k) for k in meant if k not in got] or [str(k) for k in got if k not in meant]
            return f"{where or 'top level'} keys ({', '.join(missing[:3]) or 'order'})"
        key = next(k for k in meant if meant[k] != got[k])
        return _first_difference(meant[key], got[key], f"{where}.{key}" if where else str(key))
    if isinstance(meant, list) and isinstance(got, list) and len(meant) != len(got):
        return f"{len(got)} rows instead of {len(meant)}"
    return where or "the whole document"


def _read_back(out: _Output) -> None:
    """Parse the bytes as the product will read the file and compare with what was meant.

    The loader reads every reference file on each answer: a file it cannot parse (or parses into
    different figures) breaks the calculators, so it must be refused here, before it replaces
    the file that works. Raises CmsImportError (one line) when the read-back does not hold."""
    try:
        text = out.data.decode("utf-8")
        if out.path.suffix == ".csv":
            got: Any = list(csv.reader(io.StringIO(text, newline="")))
        else:
            got = yaml.safe_load(text)
    except (UnicodeDecodeError, yaml.YAMLError, csv.Error) as exc:
        raise CmsImportError(f"{out.path.name}: the generated file does not read back "
                             f"({_one_line(exc)}); nothing written") from None
    if got != out.meant:
        raise CmsImportError(f"{out.path.name}: the generated file reads back differently "
                             f"({_first_difference(out.meant, got)}); nothing written")


# --------------------------------------------------------------------------- command

def import_file(path: Path, reference_dir: Path, codes: set[str] | None, quarter: str | None,
                dry_run: bool) -> list[str]:
    """Import one file; returns the summary lines. Raises CmsImportError on bad input."""
    parsed = read_cms_file(path)
    period = resolve_period(parsed, quarter)
    imported = date.today().isoformat()
    outputs: list[_Output]
    if parsed.kind == "payment-limit":
        data, read, count = payment_limit_data(parsed, period, codes, imported)
        outputs = [_yaml_output(reference_dir / "payment_limits" / f"{period.quarter}-cms.yaml", data)]
        label = "payment limit / ASP pricing file"
    else:
        table, read, count = crosswalk_table(parsed, period, codes)
        base = reference_dir / "crosswalk"
        outputs = [_csv_output(base / f"{period.quarter}.csv", table),
                   _yaml_output(base / f"{period.quarter}.meta.yaml", crosswalk_meta(parsed, period, imported, count))]
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
    for out in outputs:  # every output is checked before any file is replaced
        _read_back(out)
    for out in outputs:
        if dry_run:
            summary.append(f"  dry run: would write {out.path} ({len(out.data)} bytes)")
        else:
            write_atomic(out.path, out.data)
            summary.append(f"  wrote {out.path}")
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
