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
keeps the cells that are certain and the rest in the next cell (fit 'partial'); no text
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
from index.corpus import SourceDocument, configured_corpus

__all__ = ["TableRow", "TableShape", "readable", "header_columns", "split_row", "table_shape", "candidate_cuts",
           "code_spans", "table_rows", "all_table_rows"]


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
    fit: str = "exact"              # how the cells were found: tabs | exact | chosen | partial (see split_row)

    @property
    def complete(self) -> bool:
        """Every cell holds its own column's text (no cell known to run on into the next)."""
        return self.fit != "partial"

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

STRONG, LEARNED, CAMEL = 2.0, 1.0, 0.6  # cost of *not* cutting at a mark of that kind
SPACE_KEEP = 0.4   # cost of cutting where cells were only spaced apart (after ')' or a sentence)
GAP, LEAD_GAP = 1.5, 0.7  # cost of an empty cell; of a leading one under a row (rowspan)

# Billing identifiers that end in a capital or a digit, glued to the next cell with nothing to
# mark the end ("837IOPPS APC", "837PMPFS", "ICD-1021Underlying", "CAR-TBCMA"): kept whole like
# codes, and cut at where they touch a neighbour.
_TOKENS = re.compile(r"ICD-10(?:-CM|-PCS)?|UB-04|CMS-1500|(?<!\d)837[IPD](?![a-z])|CAR-T(?![a-z])")
# Codes index.codes leaves alone in glue it cannot tell from a word: a Category III code before
# a capitalised word ("0538TCAR-T therapy"), a HCPCS code after a claim field ("24DJ9185").
_GLUED_CODES = (
    (re.compile(r"(?<![0-9A-Za-z.,$])\d{4}T(?=[A-Z])"), "cpt3"),
    (re.compile(r"(?<=\d[A-Z])[A-V]\d{4}(?!\d)"), "hcpcs"),
)

# (pattern, cost of not cutting): each match's end is a cut.
_MARKS: tuple[tuple[re.Pattern[str], float], ...] = (
    (re.compile(r"[)\]](?=[A-Za-z0-9])"), STRONG),                   # "(office)Cellular", "default)Inpatient"
    (re.compile(r"(?<=[A-Za-z][a-z])(?=\d)"), STRONG),               # "center21", "mAb150", "Fludarabine24D"
    (re.compile(r"(?<=\d)(?=[A-Z][a-z])"), STRONG),                  # "1Non-FACT", "-2Match", "1021Underlying"
    (re.compile(r"(?<![-./\d])\d+(?=[A-Z]{2})"), STRONG),             # "21UB-04", "11CMS-1500" (not "4-1BB")
    (re.compile(r"(?<![A-Za-z-])[A-Z]{3,}(?=\d{1,2}(?![\d.]))"), STRONG),  # "NDC43", "HCPCS44", "CPT24D"
    (re.compile(r"(?<=[A-Z])(?=\d{5}(?!\d))"), STRONG),              # "24D96413", "E/M99213"
    (re.compile(r"(?<=[a-z]{2})(?=[A-Z][a-z])"), CAMEL),             # "ApheresisOutpatient" (but "CareCost")
    (re.compile(r"(?<=[A-Za-z][a-z])(?=[A-Z]{2,}(?![a-z]))"), CAMEL),  # "AbBCMA" (not "KarMMa")
    (re.compile(r"(?<=[a-z]{3})(?=[A-Z](?![A-Za-z]))"), CAMEL),      # "bispecificR/R", "elranatamabJ-code"
    (re.compile(r"(?<=[A-Z]{2})(?=[A-Z][a-z]{2})"), CAMEL),          # "B-ALLKite", "REMSProgram"
    (re.compile(r"(?<=[A-Za-z0-9]\+)(?=[A-Za-z])"), CAMEL),          # "R/R MM 3L+BMS / 2seventy bio"
)
# Cells only spaced apart: "...lot suffix) Up to 100 x 10^6"; "...revision date. Yes; inpatient"
# (a sentence end: tried only when the table's clean rows say how long the cells run).
_SPACED = re.compile(r"(?<=\)) (?=[A-Z0-9])")
_SENTENCE = re.compile(r"(?<=[.;]) (?=[A-Z0-9])")
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


_PCS_SECTIONS = frozenset("0123456789BCDFGHX")  # the first character of every ICD-10-PCS code


def code_spans(text: str) -> list[tuple[int, int, str, str]]:
    """find_codes, corrected for table glue: an ICD-10 code does not take the first letters of
    an acronym after it ("C83.18MCL" is C83.18 + "MCL"); "0538TCAR-T" starts with 0538T; a
    seven-character run outside the PCS sections is no PCS code ("J3262JW" is J3262 + JW)."""
    out = []
    for start, end, kind, code in find_codes(text):
        if kind == "pcs" and code[0] not in _PCS_SECTIONS:
            if not re.match(r"[A-V]\d{4}", code):
                continue
            end, kind, code = start + 5, "hcpcs", code[:5]  # "J3262JW": a HCPCS code and its modifier
        if kind == "icd" and _acronym_follows(text, end) and text[end - 1].isupper():
            while text[end - 1].isupper() and text[end - 2] != ".":
                end -= 1
            code = text[start:end]
        out.append((start, end, kind, code))
    taken = [(s, e) for s, e, _, _ in out]
    for pattern, kind in _GLUED_CODES:
        for m in pattern.finditer(text):
            if not any(s < m.end() and m.start() < e for s, e in taken):
                out.append((m.start(), m.end(), kind, m.group(0)))
    return sorted(out)


def _acronym_follows(text: str, pos: int) -> bool:
    """An all-capitals word continues at pos ("MCL," after "C83.18MC"), not a Word ("Immune")."""
    return pos < len(text) and text[pos].isupper() and not (pos + 1 < len(text) and text[pos + 1].islower())


def _protected(text: str) -> list[tuple[int, int]]:
    spans = [(s, e) for s, e, _, _ in code_spans(text)]
    return spans + [m.span() for m in _TOKENS.finditer(text)]


def _depth_zero(text: str, pos: int) -> bool:
    return text.count("(", 0, pos) <= text.count(")", 0, pos)


def _marks(text: str, protected: list[tuple[int, int]], sentences: bool):
    """(position, cost) of every glue mark, before protected spans are consulted."""
    for s, e in protected:  # a code or billing token touching a letter or digit
        if s > 0 and text[s - 1].isalnum():
            yield s, STRONG
        if e < len(text) and text[e].isalnum():
            yield e, STRONG
    for pattern, cost in _MARKS:
        yield from ((m.end(), cost) for m in pattern.finditer(text))
    for pattern in _brands():
        yield from ((m.end(), STRONG) for m in pattern.finditer(text))
    for pattern in (_SPACED, _SENTENCE) if sentences else (_SPACED,):
        yield from ((m.start(), -SPACE_KEEP) for m in pattern.finditer(text) if _depth_zero(text, m.start()))


def candidate_cuts(text: str, sentences: bool = False) -> dict[int, float]:
    """Every place the row may change cell -> the cost of not cutting there (negative: the
    cost of cutting, for the weak space-separated kinds; sentence ends only if `sentences`)."""
    cuts: dict[int, float] = {}
    protected = _protected(text)
    for pos, cost in _marks(text, protected, sentences):
        if not 0 < pos < len(text) or any(s < pos < e for s, e in protected):
            continue
        if cost < 0:  # a spaced cut only where no glue mark is
            cuts.setdefault(pos, cost)
        else:
            cuts[pos] = max(cuts.get(pos, cost), cost)
    return _no_lone_letters(text, cuts)


def _no_lone_letters(text: str, cuts: dict[int, float]) -> dict[int, float]:
    """A single capital between two cuts ends the piece before it: "24|D|J9185" is field 24D,
    "837|I|MS-DRG" is the 837I claim."""
    order = sorted(cuts)
    for p, q in zip(order, order[1:], strict=False):
        if q - p == 1 and text[p].isupper() and cuts[p] > 0 and cuts[q] > 0:
            del cuts[p]
    return cuts


# --- choosing the cuts -------------------------------------------------------------------------

@dataclass(frozen=True)
class _Column:
    """What a table's cleanly split rows hold in one column."""

    length: float            # median cell length
    shape: str | None        # the shape most cells have, when most cells share one
    starts: frozenset[str]   # first words of its cells ("BMS", "R/R")


@dataclass(frozen=True)
class TableShape:
    """What the rows of one table that split cleanly show: per column, and the cell values."""

    columns: tuple[_Column | None, ...]
    values: frozenset[str]   # whole cells ("chart narrative + Z79.899"), found again glued elsewhere

    def without_first(self) -> TableShape:
        return TableShape(self.columns[1:], self.values)


def _shape(piece: str) -> str:
    """'code' (only codes and separators), 'number' (a POS or field number) or 'text'."""
    s = piece.strip()
    spans = code_spans(s)
    if spans:
        bounds = [0, *[x for a, b, _, _ in spans for x in (a, b)], len(s)]
        rest = "".join(s[bounds[i]:bounds[i + 1]] for i in range(0, len(bounds), 2))
        if re.fullmatch(r"(?:[\s/,;+&=-]|\b(?:or|and|to)\b)*", rest):
            return "code"
    if re.fullmatch(r"\d[\d\s/,()-]*(?:\s(?:or|and)\s[\d\s/,()-]+)*", s):
        return "number"
    return "text"


_FIRST_WORD = re.compile(r"[A-Za-z][A-Za-z/]{2,}(?=[\s,;]|$)")


def table_shape(rows: Sequence[Sequence[str]], width: int) -> TableShape:
    """Per column: median length, dominant shape and first words, over cleanly split rows."""
    columns: list[_Column | None] = []
    for j in range(width):
        values = [r[j] for r in rows if r[j]]
        if not values:
            columns.append(None)
            continue
        shapes = [_shape(v) for v in values]
        top = max(set(shapes), key=shapes.count)
        dominant = top if shapes.count(top) / len(shapes) >= 0.6 else None
        starts = frozenset(m.group(0) for v in values if (m := _FIRST_WORD.match(v)))
        columns.append(_Column(length=statistics.median(len(v) for v in values), shape=dominant, starts=starts))
    values = frozenset(v for r in rows for v in r if len(v) >= 6)
    return TableShape(tuple(columns), values)


def _learned_cuts(text: str, cuts: dict[int, float], shape: TableShape) -> None:
    """Cells repeat in a table: where a known cell, or a word that opens cells of a column, sits
    glued to other text ("exposurechart narrative + Z79.899", "MCLBMS / Juno"), cut there."""
    def glued(pos: int) -> bool:
        return 0 < pos < len(text) and text[pos - 1].isalnum() and text[pos].isalnum() and pos not in cuts

    for value in shape.values:
        for m in re.finditer(re.escape(value), text):
            for pos in m.span():
                if glued(pos):
                    cuts[pos] = LEARNED
    words = {w for c in shape.columns if c for w in c.starts}
    for word in words:
        for m in re.finditer(re.escape(word) + r"(?![A-Za-z])", text):
            if glued(m.start()):
                cuts[m.start()] = LEARNED


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


def _placements(pieces: list[str], columns: Sequence[_Column | None], lead_cost: float):
    """(cost, cells) for every order-keeping placement of the pieces into the columns.

    Empty cells cost: leading ones `lead_cost` each (a cell merged with the row above, cheap
    only when there is a row above), the others more (a cut that was not found)."""
    n = len(columns)
    for cols in itertools.combinations(range(n), len(pieces)):
        cells = [""] * n
        cost = 0.0
        for i, (j, piece) in enumerate(zip(cols, pieces, strict=True)):
            cells[j] = piece
            cost += _fit(piece, columns[j]) + 0.01 * (j - i)
        lead = cols[0]
        cost += lead_cost * lead + GAP * (n - len(pieces) - lead)
        yield cost, cells


def _choose(text: str, cuts: dict[int, float], columns: Sequence[_Column | None],
            lead_cost: float) -> tuple[list[str], str]:
    """The cheapest set of cuts and placement of the pieces: (cells, fit)."""
    n = len(columns)
    positions = sorted(cuts)
    if len(positions) > 14:  # keep the enumeration small: the weakest marks go first
        positions = sorted(sorted(positions, key=lambda p: -abs(cuts[p]))[:14])
    best: tuple[float, list[str]] | None = None
    for size in range(min(len(positions), n - 1) + 1):
        for chosen in itertools.combinations(positions, size):
            kept = set(chosen)
            base = sum(-cuts[p] if cuts[p] < 0 else 0.0 for p in kept)
            base += sum(cuts[p] for p in positions if p not in kept and cuts[p] > 0)
            if best is not None and base >= best[0]:
                continue
            for cost, cells in _placements(_pieces(text, chosen), columns, lead_cost):
                if best is None or base + cost < best[0]:
                    best = (base + cost, cells)
    assert best is not None
    cells = best[1]
    first = next((j for j, c in enumerate(cells) if c), 0)
    return cells, "chosen" if all(cells[first:]) else "partial"


def _question_cuts(text: str, cuts: dict[int, float], columns: Sequence[str]) -> None:
    """A "PA?"-style column opens with its answer ("Yes FACT certification, ..."): cut after it."""
    if not any(c.endswith("?") for c in columns):
        return
    for pos in [0, *(p for p, c in cuts.items() if c >= STRONG)]:
        m = _ANSWER.match(text, pos)
        if m:
            cuts[m.end()] = STRONG


def _tab_cells(text: str, n: int) -> tuple[tuple[str, ...], str]:
    cells = [_clean(c) for c in text.split("\t")]
    if len(cells) <= n:  # missing trailing tabs are empty cells
        return tuple(cells + [""] * (n - len(cells))), "tabs"
    return (*cells[: n - 1], " ".join(c for c in cells[n - 1:] if c)), "partial"


def split_row(text: str, columns: Sequence[str], shape: TableShape | None = None,
              number: int | None = None, above: bool = False) -> tuple[tuple[str, ...], str]:
    """Cut one row line into len(columns) cells: (cells, fit).

    fit is 'tabs' (tab-separated), 'exact' (the glue marks gave the header's width), 'chosen'
    (cuts and placement chosen against the table's shape; leading cells may be empty, merged
    with the row above) or 'partial' (a cell holds the text of the cells after it too).
    `shape` comes from the table's cleanly split rows; `number` is the row number a '#' column
    should hold (numbered tables glue it on: "22L+: triple-class ..." is row 2); `above`: there
    is a row above that may share this row's first cells.
    """
    n = len(columns)
    if "\t" in text:
        return _tab_cells(text, n)
    cuts = candidate_cuts(text, sentences=shape is not None)
    if number is not None and text.startswith(str(number)) and len(text) > len(str(number)):
        cuts[len(str(number))] = STRONG
    _question_cuts(text, cuts, columns)
    firm = sorted(p for p, c in cuts.items() if c > 0)
    if len(firm) == n - 1:
        return tuple(_pieces(text, firm)), "exact"
    if shape is not None:
        _learned_cuts(text, cuts, shape)
    cells, fit = _choose(text, cuts, shape.columns if shape else [None] * n, LEAD_GAP if above else GAP)
    return tuple(cells), fit


# --- rows of a table block -------------------------------------------------------------------

_SENTENCE_END = re.compile(r"[.?!](?=\s+[A-Z(\"\d])|(?<=[a-z]{2}):(?=\s+[A-Z(])|[.?!]$")


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
        kind = _kind_of_line(text[a:b].strip(" \r\n"), width)
        if kind == "label":
            pending = (a, b) if pending is None else (pending[0], b)
            continue
        if kind == "row" or (kind == "prose" and pending is not None):  # a labelled row's own line
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

    def _cells(self, span: tuple[int, int, int], shape: TableShape | None, number: int | None,
               above: bool) -> tuple[tuple[str, ...], str]:
        """Cells of a row span (start, end, start of its own line; label lines before that)."""
        start, end, own = span
        labels = _clean(self.text[start:own])
        line = self.text[own:end].strip(" \r\n")
        if not labels:
            return split_row(line, self.columns, shape, number, above)
        if not line:
            return (labels, *[""] * (len(self.columns) - 1)), "partial"
        rest, fit = split_row(line, self.columns[1:], shape.without_first() if shape else None)
        return (labels, *rest), fit

    def rows(self) -> list[tuple[int, int, tuple[str, ...], str]]:
        """(start, end, cells, fit) per row, in order: a first pass finds the cleanly split
        rows, whose shape then guides the others."""
        numbered = self.columns[0] in ("#", "No.", "No")
        first = [self._cells(span, None, None, i > 0) for i, span in enumerate(self.lines)]
        clean = [c for c, fit in first if fit in ("exact", "tabs") and all(c)]
        shape = table_shape(clean, len(self.columns)) if clean else None
        out, number = [], 1
        for i, span in enumerate(self.lines):
            cells, fit = self._cells(span, shape, number if numbered else None, i > 0)
            if numbered:
                number = int(cells[0]) + 1 if cells[0].isdigit() else number + 1
            a, b = _trim(self.text, span[0], span[1])
            out.append((a, b, cells, fit))
        return out


def _section_of(chunks, starts: Sequence[int], pos: int) -> str:
    i = bisect.bisect_right(starts, pos) - 1
    return chunks[max(i, 0)].section if chunks else ""


@lru_cache(maxsize=64)
def _chunked(doc: SourceDocument) -> tuple[tuple, tuple[int, ...]]:
    """A document's chunks and their start offsets (cached: immutable, shared by every caller)."""
    chunks = tuple(chunk_document(doc))
    return chunks, tuple(c.start for c in chunks)


def section_at(doc: SourceDocument, pos: int) -> str:
    """The section (heading path) of the document a position falls in, as its chunks carry it:
    a quote found in the document text is cited with the section a reader finds it under."""
    chunks, starts = _chunked(doc)
    return _section_of(chunks, starts, pos)


def _rows_of(doc: SourceDocument) -> tuple[TableRow, ...]:
    text = doc.text
    chunks, starts = _chunked(doc)
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
        for a, b, cells, fit in rows:
            out.append(TableRow(
                doc_id=doc.id, section=_section_of(chunks, starts, a), table=ordinal, columns=columns,
                cells=cells, quote=text[a:b], start=a, end=b, codes=_row_codes(cells), fit=fit,
            ))
    return tuple(out)


@lru_cache(maxsize=64)
def _cached_rows(doc: SourceDocument) -> tuple[TableRow, ...]:
    return _rows_of(doc)


def table_rows(doc: SourceDocument) -> list[TableRow]:
    """Every table row of one document, in document order (computed once per document text)."""
    return list(_cached_rows(doc))


@lru_cache(maxsize=64)
def _rows_by_span(doc: SourceDocument) -> dict[tuple[int, int], TableRow]:
    return {(r.start, r.end): r for r in _cached_rows(doc)}


def row_at(doc: SourceDocument, start: int, end: int) -> TableRow | None:
    """The table row whose text is exactly doc.text[start:end], if there is one."""
    return _rows_by_span(doc).get((start, end))


def all_table_rows() -> list[TableRow]:
    """Every table row of the configured corpus (reloaded when a document changes)."""
    return [row for doc in configured_corpus().documents.values() for row in table_rows(doc)]
