"""Table rows as records: column names, one cell per column, the row's exact quote and its codes.

The documents' tables reached us flattened: a header line and one line per row, cells either
tab-separated (the payer policies) or glued with no separator at all
("StageSettingPOSClaim formPayment mechanism", "...center21UB-04 / 837IMS-DRG 018 (CAR-T ...)").
An answer that needs "the POS of the inpatient stage" must read a cell, not a paragraph, so
every table is turned into rows at build time.

How a glued row is cut: the places where extraction glued two cells leave marks (a code's edge,
')' before a letter, a lowercase word running into a number, an acronym into a Word, ...).
Each mark is a candidate cut with a cost of *not* cutting there (strong marks cost more than
camel-case ones, which also occur inside names like "CareCost"). When the candidates give
exactly the header's width the row is done; otherwise the cuts and the placement of the pieces
into columns are chosen together, scoring each piece against what the table's cleanly split
rows hold in that column (its typical length, whether it holds codes). A merged cell above
(rowspan) leaves the row's first cells empty. A row that still cannot reach the header's width
keeps the cells that are certain and the rest in the next cell, with `complete=False`; no text
is ever dropped: the cells, whitespace aside, concatenate to the row.

Lines inside a table block that are not rows are recognised and left out: prose paragraphs run
on after the table (their first sentence has no glue mark), and captions ending in ':'.
Short unsplittable lines above a row ("UnitedHealthcare" / "Oncology Cellular Therapy Policy")
are the first cell of the row that follows them, as the chunker also treats them.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from index.chunking import Block, blocks_of, chunk_document
from index.codes import codes_in, find_codes
from index.corpus import SourceDocument, cached_corpus

__all__ = ["TableRow", "readable", "header_columns", "split_row", "table_rows", "all_table_rows"]


@dataclass(frozen=True)
class TableRow:
    """One row of a document's table; `quote` is document text[start:end], verbatim."""

    doc_id: str
    section: str
    table: int                      # ordinal of the table in its document (rows of one table share it)
    columns: tuple[str, ...]        # the header's column names
    cells: tuple[str, ...]          # one per column, '' where the row has nothing (or nothing certain)
    quote: str
    start: int
    end: int
    codes: tuple[tuple[str, str], ...]  # (kind, code) as index.codes names them, in row order
    complete: bool = True           # False: some cell may still hold the text of the cells after it

    def cell(self, column: str) -> str:
        """The cell under `column` (case-insensitive name); '' if there is no such column."""
        wanted = column.strip().lower()
        for name, value in zip(self.columns, self.cells, strict=True):
            if name.lower() == wanted:
                return value
        return ""


def readable(row: TableRow) -> str:
    """'Column: cell; Column: cell' (empty cells skipped): a row an answer can quote in words."""
    return "; ".join(f"{c}: {v}" for c, v in zip(row.columns, row.cells, strict=True) if v)


# --- column names ----------------------------------------------------------------------------

# Where a glued header changes column: "StageSetting" (lowercase -> Upper), "POSClaim" (an
# acronym, then a Word), "PA?Key", "(per FDA label)Bill", "#Denial". A space never separates
# two columns in a glued header ("Claim form" is one name).
_HEADER_CUT = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[)?#\]])(?=[A-Z#(])")
_NAME_START = re.compile(r"[A-Z#(0-9]")


def header_columns(line: str) -> tuple[str, ...] | None:
    """Column names of a table header line (tab-separated or glued), or None if it is not one."""
    s = line.strip()
    if not s or len(s) > 140 or s[-1] in ".,;:!" or ". " in s:
        return None
    if "\t" in s:
        names = [n.strip() for n in s.split("\t")]
        while names and not names[-1]:
            names.pop()
        limit = 60
    else:
        if find_codes(s):
            return None  # a glued row that opens its block, not a header
        cuts = [m.start() for m in _HEADER_CUT.finditer(s)]
        names = [s[a:b].strip() for a, b in zip([0, *cuts], [*cuts, len(s)], strict=True)]
        limit = 40
    ok = 2 <= len(names) <= 12 and all(0 < len(n) <= limit and _NAME_START.match(n) for n in names)
    return tuple(names) if ok else None


# --- candidate cuts ----------------------------------------------------------------------------

STRONG, CAMEL = 2.0, 0.6   # cost of *not* cutting at a mark of that kind
SPACE_KEEP = 0.4           # cost of cutting at a space after ')' (cells that were only spaced apart)

# Billing identifiers that end in a capital or a digit, glued to the next cell with nothing to
# mark the end ("837IOPPS APC", "837PMPFS", "ICD-1021Underlying"): kept whole like codes.
_TOKENS = re.compile(r"ICD-10(?:-CM|-PCS)?|UB-04|CMS-1500|(?<!\d)837[IPD](?![a-z])")
# A Category III code glued to a capitalised word ("0538TCAR-T therapy"), which index.codes
# leaves alone because "TCAR" could be a word.
_CPT3_GLUED = re.compile(r"(?<![0-9A-Za-z.,$])\d{4}T(?=[A-Z])")

# (pattern, cost of not cutting): each match's end is a cut.
_MARKS: tuple[tuple[re.Pattern[str], float], ...] = (
    (re.compile(r"[)\]](?=[A-Za-z0-9])"), STRONG),                   # "(office)Cellular", "default)Inpatient"
    (re.compile(r"(?<=[A-Za-z][a-z])(?=\d)"), STRONG),               # "center21", "mAb150", "Fludarabine24D"
    (re.compile(r"(?<![-./\d])\d+(?=[A-Z][A-Za-z])"), STRONG),       # "21UB-04", "1Non-FACT" (not "4-1BB")
    (re.compile(r"(?<![A-Za-z])[A-Z]{3,}(?=\d{1,2}(?![\d.]))"), STRONG),  # "NDC43", "HCPCS44", "CPT24D"
    (re.compile(r"(?<=[A-Z])(?=\d{5}(?!\d))"), STRONG),              # "24D96413", "E/M99213"
    (re.compile(r"CAR-T(?=[A-Z0-9])"), STRONG),                      # "CAR-TBCMA" (the class column)
    (re.compile(r"(?<=[a-z]{2})(?=[A-Z][a-z])"), CAMEL),             # "ApheresisOutpatient" (but "CareCost")
    (re.compile(r"(?<=[A-Za-z][a-z])(?=[A-Z]{2,}(?![a-z]))"), CAMEL),  # "AbBCMA" (not "KarMMa")
    (re.compile(r"(?<=[a-z]{3})(?=[A-Z](?![A-Za-z]))"), CAMEL),      # "bispecificR/R", "elranatamabJ-code"
    (re.compile(r"(?<=[A-Z]{2})(?=[A-Z][a-z]{2})"), CAMEL),          # "B-ALLKite", "REMSProgram"
)
_SPACED = re.compile(r"(?<=\)) (?=[A-Z0-9])")   # "...lot suffix) Up to 100 x 10^6" (outside parentheses)
_ANSWER = re.compile(r"(?:Yes|No)(?= \w)")       # the answer that opens a "PA?" column


@lru_cache(maxsize=8)
def _brand_marks(brands: tuple[tuple[str, str], ...]) -> tuple[re.Pattern[str], ...]:
    """Product names glued to a neighbour: "Abecmaidecabtagene" (brand, generic) and
    "PAABECMA REMS" (a word, then the brand in capitals)."""
    out = []
    for brand, generic in brands:
        out.append(re.compile(re.escape(brand) + r"(?=" + re.escape(generic.split()[0]) + ")"))
        out.append(re.compile(r"(?<=[A-Za-z])(?=" + re.escape(brand) + r"(?![a-z]))", re.IGNORECASE))
    return tuple(out)


def _brands() -> tuple[re.Pattern[str], ...]:
    from index.entities import products

    return _brand_marks(tuple((p.brand, p.generic) for p in products() if p.brand and p.generic))


def code_spans(text: str) -> list[tuple[int, int, str, str]]:
    """find_codes, corrected for table glue: an ICD-10 code does not take the first letters of
    the word after it ("C83.18MCL" is C83.18 + "MCL"), and "0538TCAR-T" starts with 0538T."""
    out = []
    for start, end, kind, code in find_codes(text):
        if kind == "icd" and end < len(text) and text[end].isalpha() and text[end - 1].isalpha():
            while end > start and text[end - 1].isalpha():
                end -= 1
            if end <= start or text[end - 1] == ".":
                continue
            code = text[start:end]
        out.append((start, end, kind, code))
    taken = [(s, e) for s, e, _, _ in out]
    for m in _CPT3_GLUED.finditer(text):
        if not any(s <= m.start() < e for s, e in taken):
            out.append((m.start(), m.end(), "cpt3", m.group(0)))
    return sorted(out)


def _protected(text: str) -> list[tuple[int, int]]:
    spans = [(s, e) for s, e, _, _ in code_spans(text)]
    return spans + [m.span() for m in _TOKENS.finditer(text)]


def _depth_zero(text: str, pos: int) -> bool:
    return text.count("(", 0, pos) <= text.count(")", 0, pos)


def candidate_cuts(text: str) -> dict[int, float]:
    """Every place the row may change cell -> the cost of not cutting there (negative: the
    cost of cutting, for the weak space-separated kind)."""
    cuts: dict[int, float] = {}
    protected = _protected(text)

    def add(pos: int, cost: float) -> None:
        if 0 < pos < len(text) and not any(s < pos < e for s, e in protected):
            cuts[pos] = max(cuts.get(pos, cost), cost)

    for s, e in protected:
        if s > 0 and text[s - 1].isalnum():
            add(s, STRONG)
        if e < len(text) and text[e].isalnum():
            add(e, STRONG)
    for pattern, cost in _MARKS:
        for m in pattern.finditer(text):
            add(m.end(), cost)
    for pattern in _brands():
        for m in pattern.finditer(text):
            add(m.end(), STRONG)
    for m in _SPACED.finditer(text):
        if m.start() not in cuts and _depth_zero(text, m.start()):
            add(m.start(), -SPACE_KEEP)
    return cuts


# --- choosing the cuts -------------------------------------------------------------------------

@dataclass(frozen=True)
class _Column:
    """What a table's cleanly split rows hold in one column."""

    length: float            # median cell length
    shape: str | None        # the shape most cells have, when most cells share one


def _shape(piece: str) -> str:
    """'code' (only codes and separators), 'number' (a POS or field number) or 'text'."""
    s = piece.strip()
    spans = code_spans(s)
    if spans:
        rest = "".join(s[a:b] for a, b in zip([0] + [e for _, e, _, _ in spans],
                                             [st for st, _, _, _ in spans] + [len(s)], strict=True))
        if re.fullmatch(r"(?:[\s/,;+&=-]|\b(?:or|and|to)\b)*", rest):
            return "code"
    if re.fullmatch(r"\d[\d\s/,()-]*(?:\s(?:or|and)\s[\d\s/,()-]+)*", s):
        return "number"
    return "text"


def _profile(rows: list[list[str]], width: int) -> list[_Column | None]:
    """Per column: median length and dominant shape over the rows that split cleanly."""
    out: list[_Column | None] = []
    for j in range(width):
        values = [r[j] for r in rows if r[j]]
        if not values:
            out.append(None)
            continue
        shapes = [_shape(v) for v in values]
        top = max(set(shapes), key=shapes.count)
        dominant = top if shapes.count(top) / len(shapes) >= 0.6 else None
        out.append(_Column(length=statistics.median(len(v) for v in values), shape=dominant))
    return out


def _fit(piece: str, column: _Column | None) -> float:
    """Cost of putting `piece` in a column: unlike the column's cells in length or shape."""
    if column is None:
        return 0.0
    cost = 0.5 * abs(math.log((len(piece) + 3) / (column.length + 3)))
    if column.shape and _shape(piece) != column.shape:
        cost += 1.5
    return cost


def _pieces(text: str, cuts: Sequence[int]) -> list[str]:
    bounds = [0, *cuts, len(text)]
    return [_clean(text[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]


def _clean(text: str) -> str:
    return " ".join(text.split())


def _placements(pieces: list[str], profile: Sequence[_Column | None]):
    """(cost, cells) for every order-keeping placement of the pieces into the columns."""
    n = len(profile)
    for cols in itertools.combinations(range(n), len(pieces)):
        cells = [""] * n
        cost = 0.0
        for i, (j, piece) in enumerate(zip(cols, pieces, strict=True)):
            cells[j] = piece
            cost += _fit(piece, profile[j]) + 0.01 * (j - i)
        lead = cols[0]
        cost += 0.7 * lead + 1.5 * (n - len(pieces) - lead)  # a rowspan gap above is likelier than a lost cut
        yield cost, cells


def _choose(text: str, cuts: dict[int, float], profile: Sequence[_Column | None]) -> tuple[list[str], bool]:
    """The cheapest set of cuts and placement of the pieces: (cells, complete)."""
    n = len(profile)
    positions = sorted(cuts)
    if len(positions) > 14:  # keep the enumeration small: the weakest marks go first
        positions = sorted(sorted(positions, key=lambda p: -abs(cuts[p]))[:14])
    best: tuple[float, list[str], bool] | None = None
    for size in range(min(len(positions), n - 1) + 1):
        for chosen in itertools.combinations(positions, size):
            kept = set(chosen)
            base = sum(-cuts[p] if cuts[p] < 0 else 0.0 for p in kept)
            base += sum(cuts[p] for p in positions if p not in kept and cuts[p] > 0)
            if best is not None and base >= best[0]:
                continue
            pieces = _pieces(text, chosen)
            for cost, cells in _placements(pieces, profile):
                total = base + cost
                if best is None or total < best[0]:
                    leading_gap_only = all(cells[j] for j in range(next(j for j, c in enumerate(cells) if c), n))
                    best = (total, cells, len(pieces) == n or leading_gap_only)
    assert best is not None
    return best[1], best[2]


def _question_cuts(text: str, cuts: dict[int, float], columns: Sequence[str]) -> None:
    """A "PA?"-style column opens with its answer ("Yes FACT certification, ..."): cut after it."""
    if not any(c.endswith("?") for c in columns):
        return
    for pos in [0, *(p for p, c in cuts.items() if c >= STRONG)]:
        m = _ANSWER.match(text, pos)
        if m:
            cuts[m.end()] = STRONG


def split_row(text: str, columns: Sequence[str], profile: Sequence[_Column | None] | None = None,
              number: int | None = None) -> tuple[tuple[str, ...], bool]:
    """Cut one row line into len(columns) cells: (cells, complete).

    `number` is the row number a '#' column should hold (numbered tables glue it to the next
    cell: "22L+: triple-class ..." is row 2). Tab-separated rows split on their tabs.
    """
    n = len(columns)
    if "\t" in text:
        cells = [_clean(c) for c in text.split("\t")]
        complete = len(cells) == n
        cells = [*cells[: n - 1], " ".join(c for c in cells[n - 1:] if c)] if len(cells) > n else cells + [""] * (n - len(cells))
        return tuple(cells), complete
    cuts = candidate_cuts(text)
    if number is not None and text.startswith(str(number)) and len(text) > len(str(number)):
        cuts[len(str(number))] = STRONG
    _question_cuts(text, cuts, columns)
    firm = sorted(p for p, c in cuts.items() if c > 0)
    if len(firm) == n - 1:
        return tuple(_pieces(text, firm)), True
    cells, complete = _choose(text, cuts, profile or [None] * n)
    return tuple(cells), complete


# --- rows of a table block -------------------------------------------------------------------

_SENTENCE_END = re.compile(r"[.?!:](?=\s+[A-Z(\"\d])|[.?!]$")


def _kind_of_line(text: str, width: int) -> str:
    """'row', 'label' (a short line naming the row below), 'prose' or 'caption'."""
    if "\t" in text:
        return "row"
    cuts = candidate_cuts(text)
    firm = [p for p, c in cuts.items() if c > 0]
    end = _SENTENCE_END.search(text)
    first = end.end() if end else len(text)
    if not any(p < first for p in firm):
        if end:
            return "prose"
        if text.rstrip().endswith(":"):
            return "caption"
    if len(text) < 45 and len(firm) + 1 <= max(1, width // 2) and text[-1] not in ".:;?!":
        return "label"
    return "row"


def _row_lines(text: str, block: Block, width: int) -> list[tuple[int, int, int]]:
    """(start, end, start of the row's own line) per row: label lines join the row below them.
    Labels with no row below stay a row of their own (own line start == end)."""
    rows: list[tuple[int, int, int]] = []
    pending: tuple[int, int] | None = None
    for a, b in block.lines[1:]:
        kind = _kind_of_line(text[a:b].strip(), width)
        if kind == "label":
            pending = (a, b) if pending is None else (pending[0], b)
            continue
        if kind == "row":
            rows.append((a if pending is None else pending[0], b, a))
        elif pending is not None:
            rows.append((pending[0], pending[1], pending[1]))
        pending = None
    if pending is not None:
        rows.append((pending[0], pending[1], pending[1]))
    return rows


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def _row_codes(cells: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """(kind, code) in the row, read cell by cell (a cut cell shows codes the glue hid)."""
    seen: dict[str, str] = {}
    for cell in cells:
        for _, _, kind, code in code_spans(cell):
            seen.setdefault(code, kind)
        for code in codes_in(cell):
            if code not in seen:
                found = find_codes(code)
                seen[code] = found[0][2] if found else "code"
    return tuple((kind, code) for code, kind in seen.items())


class _Table:
    """One table block: its columns and the rows cut to their width."""

    def __init__(self, text: str, block: Block, columns: tuple[str, ...]):
        self.text = text
        self.columns = columns
        self.lines = _row_lines(text, block, len(columns))

    def _cells(self, start: int, end: int, own: int, profile, number: int | None) -> tuple[tuple[str, ...], bool]:
        """Cells of the row spanning [start, end) whose own line starts at `own` (label lines before it)."""
        labels = _clean(self.text[start:own])
        line = self.text[own:end].strip()
        if not labels:
            return split_row(line, self.columns, profile, number)
        if not line:
            return (labels, *[""] * (len(self.columns) - 1)), False
        rest, complete = split_row(line, self.columns[1:], profile[1:] if profile else None)
        return (labels, *rest), complete

    def rows(self) -> list[tuple[int, int, tuple[str, ...], bool]]:
        """(start, end, cells, complete) per row, in order."""
        numbered = self.columns[0] in ("#", "No.", "No")
        first_pass = [self._cells(s, e, last, None, None) for s, e, last in self.lines]
        clean = [list(c) for c, ok in first_pass if ok and all(c)]
        profile = _profile(clean, len(self.columns)) if clean else None
        out, number = [], 1
        for s, e, last in self.lines:
            cells, complete = self._cells(s, e, last, profile, number if numbered else None)
            if numbered:
                number = int(cells[0]) + 1 if cells[0].isdigit() else number + 1
            a, b = _trim(self.text, s, e)
            out.append((a, b, cells, complete))
        return out


def _section_of(chunks, starts: list[int], pos: int) -> str:
    i = bisect.bisect_right(starts, pos) - 1
    return chunks[max(i, 0)].section if chunks else ""


def _rows_of(doc: SourceDocument) -> tuple[TableRow, ...]:
    text = doc.text
    chunks = chunk_document(doc)
    starts = [c.start for c in chunks]
    out: list[TableRow] = []
    ordinal = 0
    for block in blocks_of(text):
        if len(block.lines) < 2:
            continue
        columns = header_columns(text[block.lines[0][0]:block.lines[0][1]])
        if columns is None:
            continue
        rows = _Table(text, block, columns).rows()
        if not rows:
            continue
        ordinal += 1
        for a, b, cells, complete in rows:
            out.append(TableRow(
                doc_id=doc.id, section=_section_of(chunks, starts, a), table=ordinal, columns=columns,
                cells=cells, quote=text[a:b], start=a, end=b, codes=_row_codes(cells), complete=complete,
            ))
    return tuple(out)


@lru_cache(maxsize=64)
def _cached_rows(doc: SourceDocument) -> tuple[TableRow, ...]:
    return _rows_of(doc)


def table_rows(doc: SourceDocument) -> list[TableRow]:
    """Every table row of one document, in document order (computed once per document text)."""
    return list(_cached_rows(doc))


def all_table_rows() -> list[TableRow]:
    """Every table row of the configured corpus (reloaded when a document changes)."""
    from assistant import config

    cfg = config.load()
    view = cached_corpus(cfg.sources_dir, cfg.reference_dir)
    return [row for doc in view.documents.values() for row in table_rows(doc)]
