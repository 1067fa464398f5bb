"""Text, page offsets and tables out of the files a billing office downloads (PDF, saved web page,
Word .docx, plain text / Markdown).

What comes out is the text the product indexes and quotes, written in the shape index/chunking.py
reads: lines joined by "\\n", blocks (paragraphs, headings, lists, tables) separated by one blank
line, a heading a short line on its own, a table one block of tab-joined rows with its header
first. A file that cannot be ingested raises ReadError with one line naming the file and why,
so `python -m index add` can tell the user what to do instead of printing a traceback.

How each format is read (the choices, so a reader of a quote knows what it is looking at):

* PDF (pdfplumber): ruled tables found by `page.find_tables()` are written as table blocks in
  place of their region; the rest of the page is read outside the table boxes, as lines ordered
  by their top (a gap over 0.15 x the font size is a word space). A blank line goes between lines
  where the vertical gap is over 0.7 x the font size, the font size changes, or a short line
  changes boldness (a heading). Inside a block a line that ran to the right margin is a wrap and
  is joined to the next with a space; a short line or a list marker ("1.", "a.", "-", "•") keeps
  its line break. Hyphenation: "treat-" + "ment" becomes "treatment" only for lowercase, hyphen,
  line break, lowercase, and the hyphen is kept when the document writes the hyphenated word
  ("follow-up") within a line elsewhere; "CAR-" + "T" joins as "CAR-T". A word cut without a
  hyphen where a narrow table column ran out ("dexametha" + "sone") is glued back when the
  document writes the whole word elsewhere and the pieces are not both words; a cell's line
  breaks are wraps. Running headers and footers ("Page 3 of 9") are dropped: lines at a page's
  top or bottom that recur, digits aside and at one font size, on 3 pages (2 in a 2-3 page file).
  Glyphs pdfminer cannot map ("(cid:13)") are left out. Pages are joined by a blank line and
  `pages` holds where each starts; a page without text (a scan inside a text PDF) starts where the
  next one does and is listed in hints["image_only_pages"]. Known limits: multi-column layouts
  read across the columns; a paragraph running onto the next page is two blocks; a table without
  ruling lines is read as lines of text; a table continued on the next page is a second table
  block (with the header only if the PDF repeats it).
* HTML (BeautifulSoup, lxml): page furniture is removed (script, style, nav, aside, form, ...,
  role=navigation/banner/contentinfo, hidden elements; header/footer unless inside main/article),
  then the text of <main>, else the largest <article>, else role=main, else <body> is written:
  block elements start lines, h1-h6 are heading blocks, <ul> items get "- " and <ol> items their
  number, a data <table> (2+ rows and columns, no nested table) is a table block with colspan and
  rowspan laid out on the grid (a spanned cell is empty, not repeated).
* DOCX (python-docx): the body in document order (paragraphs, tables, content controls), Heading /
  Title styles become heading blocks, list paragraphs "- " lines (indented by level), merged cells
  are empty beyond their first grid cell.
* Text / Markdown: UTF-8 (BOM stripped), line endings normalised, a Markdown YAML front matter
  block dropped; the text is otherwise kept as written: tabs (the corpus' table rows) and
  indentation stay, and Markdown syntax is not interpreted ("## Coding" stays as it is).

Everything is cleaned the same way: control characters removed (a form feed or vertical tab is
a line break), U+00AD soft hyphens, zero-width spaces and bidirectional controls removed, the
FB00-FB06 ligatures ("ﬁ") spelled out by NFKC, non-breaking and other Unicode spaces made plain
spaces, runs of spaces inside a line collapsed, trailing spaces removed (a table row's trailing
tabs are its empty cells and stay), at most one blank line in a row.
"""

from __future__ import annotations

import bisect
import io
import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

SUFFIXES = {".pdf": "pdf", ".html": "html", ".htm": "html", ".docx": "docx", ".txt": "text", ".md": "markdown"}
MAX_BYTES_DEFAULT = 20 * 1024 * 1024
MIN_MAIN_CHARS = 200  # a web page with less text than this once furniture is removed has no main content
REASONS = ("unknown-type", "too-large", "empty", "encrypted", "image-only", "no-main-content", "unreadable")

_MB = 1024 * 1024


class ReadError(ValueError):
    """A file that cannot be ingested; str(exc) is ONE clear line naming the file and the reason
    (e.g. "policy.pdf: the PDF is encrypted; save an unprotected copy and add that"). `reason` is a short code."""

    def __init__(self, path: Path, reason: str, message: str):
        self.path = Path(path)
        self.reason = reason
        self.message = " ".join(message.split())  # one line, whatever the detail held
        super().__init__(f"{self.path.name}: {self.message}")


@dataclass(frozen=True)
class Extracted:
    """A file's text as the product indexes and quotes it, with where each page starts."""

    text: str                 # the document text; what the product quotes
    pages: tuple[int, ...]    # offset in `text` where each page starts; pages[0] == 0; non-PDF: (0,)
    file_type: str            # a value of SUFFIXES
    title_hint: str | None    # PDF /Title, HTML <title> (or first <h1>), DOCX title; None if absent/blank
    hints: dict[str, str]     # other file metadata found: author, subject, created, modified (ISO), keywords, ...
    tables: int               # number of tables written as rows

    def page_of(self, offset: int) -> int:
        """1-based page number containing `offset` (an offset may be len(text), the end of a span)."""
        if not 0 <= offset <= len(self.text):
            raise ValueError(f"offset {offset} is outside the text (0..{len(self.text)})")
        return max(1, bisect.bisect_right(self.pages, offset))


def read_file(path: Path, max_bytes: int = MAX_BYTES_DEFAULT) -> Extracted:
    """Read one downloaded file into indexable text; raises ReadError (never anything else) when it cannot."""
    path = Path(path)
    file_type = SUFFIXES.get(path.suffix.lower())
    if file_type is None:
        accepted = ", ".join(SUFFIXES)
        shown = path.suffix or "(no extension)"
        raise ReadError(path, "unknown-type", f"cannot read '{shown}' files; accepted types: {accepted}")
    data = _read_bytes(path, max_bytes)
    try:
        parsed = _READERS[file_type](path, data)
    except RecursionError:  # absurdly nested HTML or DOCX
        raise ReadError(path, "unreadable", "the file is nested too deeply to read") from None
    return _finish(path, file_type, parsed)


# --- the pieces every reader shares ---------------------------------------------------------------

Rows = tuple[tuple[str, ...], ...]
Block = str | Rows  # a text block (one or more lines) or a table's rows, header first


@dataclass
class _Parsed:
    """What a format reader found: blocks per page, and metadata."""

    pages: list[list[Block]]
    title: str | None = None
    hints: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Style:
    """How a format's text blocks are tidied: text files keep their tabs (tables) and indentation."""

    keep_tabs: bool
    keep_indent: bool


_STYLES = {
    "pdf": _Style(keep_tabs=False, keep_indent=False),
    "html": _Style(keep_tabs=False, keep_indent=True),   # the indentation is ours (nested lists)
    "docx": _Style(keep_tabs=False, keep_indent=True),
    "text": _Style(keep_tabs=True, keep_indent=True),
    "markdown": _Style(keep_tabs=True, keep_indent=True),
}


def _char_table() -> dict[int, str | None]:
    """Translation of the characters that would break the text conventions or quotes."""
    table: dict[int, str | None] = {c: None for c in [*range(0x20), *range(0x7F, 0xA0)] if c not in (9, 10)}
    table.update({c: "\n" for c in (0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029)})
    table.update({c: unicodedata.normalize("NFKC", chr(c)) for c in range(0xFB00, 0xFB07)})  # ligatures only
    table.update({c: None for c in (0x00AD, 0x200B, 0x2060, 0xFEFF)})  # soft hyphen, zero-width space, BOM
    # bidirectional controls: invisible, and they can make a quote display other than it reads
    table.update({c: None for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))})
    table.update({c: " " for c in (0x00A0, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000)})
    return table


_CHARS = _char_table()
_SPACE_RUN = re.compile(r" {2,}")
_SPACES_AROUND_TAB = re.compile(r" *\t *")


def _normalise_chars(text: str) -> str:
    """Line endings to "\\n" and the character clean-up described in the module docstring."""
    return text.replace("\r\n", "\n").replace("\r", "\n").translate(_CHARS)


def _tidy_line(line: str, style: _Style) -> str:
    """One line: spaces collapsed, no trailing spaces (trailing tabs are a table row's empty cells)."""
    if not style.keep_tabs:
        line = line.replace("\t", " ")
    body = line.lstrip(" \t")
    indent = line[: len(line) - len(body)] if style.keep_indent else ""
    body = _SPACE_RUN.sub(" ", body).rstrip(" ")
    if "\t" in body:  # a table row of a text file: its empty cells (trailing tabs too) are kept
        body = _SPACES_AROUND_TAB.sub("\t", body) if body.strip("\t") else ""
    return indent + body if body else ""


def _tidy_block(text: str, style: _Style) -> str:
    """A text block: tidy lines, one blank line at most between paragraphs, none at the ends."""
    out: list[str] = []
    for line in _normalise_chars(text).split("\n"):
        line = _tidy_line(line, style)
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def _tidy_cell(cell: str | None) -> str:
    """A table cell on one line: its own line breaks and tabs become spaces."""
    return " ".join(_normalise_chars(cell or "").split())


def _render_table(rows: Rows) -> tuple[str, bool]:
    """Header then one line per row, cells tab-joined and padded to one width; (text, is_table).

    Rows and columns with nothing in them are dropped (extraction artefacts); what is left with
    fewer than two columns is not a table and comes back as plain lines.
    """
    cells = [[_tidy_cell(c) for c in row] for row in rows]
    cells = [row for row in cells if any(row)]
    if not cells:
        return "", False
    width = max(len(row) for row in cells)
    cells = [row + [""] * (width - len(row)) for row in cells]
    keep = [i for i in range(width) if any(row[i] for row in cells)]
    if len(keep) < 2:
        return "\n".join(c for row in cells for c in row if c), False
    return "\n".join("\t".join(row[i] for i in keep) for row in cells), True


def _join_pages(texts: list[str]) -> tuple[str, tuple[int, ...]]:
    """Pages joined by a blank line; a page without text starts where the next page with text does."""
    starts: list[int | None] = []
    kept: list[str] = []
    pos = 0
    for page in texts:
        if not page:
            starts.append(None)
            continue
        if kept:
            pos += 2
        starts.append(pos)
        kept.append(page)
        pos += len(page)
    text = "\n\n".join(kept) + "\n" if kept else ""
    following, fixed = len(text), []
    for start in reversed(starts):
        following = start if start is not None else following
        fixed.append(following)
    return text, tuple(reversed(fixed)) or (0,)


def _finish(path: Path, file_type: str, parsed: _Parsed) -> Extracted:
    """Render the blocks into the final text and its page offsets; no text at all is an error."""
    style = _STYLES[file_type]
    texts: list[str] = []
    tables = 0
    for blocks in parsed.pages:
        parts = []
        for block in blocks:
            if isinstance(block, tuple):
                rendered, is_table = _render_table(block)
                tables += is_table
            else:
                rendered = _tidy_block(block, style)
            if rendered:
                parts.append(rendered)
        texts.append("\n\n".join(parts))
    text, pages = _join_pages(texts)
    if not text:
        raise ReadError(path, "empty", "no text found in the file")
    return Extracted(text=text, pages=pages, file_type=file_type, title_hint=parsed.title,
                     hints=parsed.hints, tables=tables)


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, refusing empty and oversized files before reading them."""
    try:
        size = path.stat().st_size
        if size == 0:
            raise ReadError(path, "empty", "the file is empty (0 bytes)")
        if size > max_bytes:
            raise ReadError(path, "too-large", f"the file is {_mb(size)}, over the {_mb(max_bytes)} limit; "
                            "split it or raise the size limit")
        return path.read_bytes()
    except OSError as exc:
        raise ReadError(path, "unreadable", f"cannot be read ({exc.strerror or exc})") from None


def _mb(n: int) -> str:
    """A size in MB as people read it: "20 MB", "3.4 MB", "0.0001 MB"."""
    mb = n / _MB
    shown = f"{mb:.1f}" if mb >= 0.1 else f"{mb:.2g}"
    return f"{shown.removesuffix('.0')} MB"


def _detail(exc: BaseException) -> str:
    """A library exception as a short phrase for a one-line message."""
    inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else exc
    text = " ".join(str(inner).split()) or type(inner).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _tidy_title(value: str | None) -> str | None:
    """A metadata title, or None when blank or a placeholder ("Untitled", "Microsoft Word - " prefix dropped)."""
    if not value:
        return None
    title = " ".join(_normalise_chars(value).split())
    title = re.sub(r"^Microsoft (?:Word|PowerPoint|Excel) - ", "", title)
    return None if title.lower() in ("", "untitled", "untitled document", "document") else title


def _iso(value: object) -> str | None:
    """A date or datetime, or a string holding one, as ISO text; None when it is not a date."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, str) and value.strip():
        try:
            return datetime.fromisoformat(value.strip()).isoformat()
        except ValueError:
            return None
    return None


# --- text and Markdown ---------------------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?:.*?\n)??---[ \t]*(?:\n|\Z)", re.DOTALL)


def _read_text(path: Path, data: bytes, markdown: bool = False) -> _Parsed:
    """UTF-8 text; Markdown front matter (the corpus' metadata block) is not document text."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ReadError(path, "unreadable", "not UTF-8 text; save it as UTF-8 and add it again") from None
    if "\x00" in text:
        raise ReadError(path, "unreadable", "not a text file (it holds binary data)")
    text = text.replace("\r\n", "\n")
    if markdown:
        text = _FRONT_MATTER.sub("", text, count=1)
    return _Parsed(pages=[[text]])


def _read_markdown(path: Path, data: bytes) -> _Parsed:
    return _read_text(path, data, markdown=True)


# --- PDF -----------------------------------------------------------------------------------------

_ENCRYPTED = "the PDF is encrypted (password-protected); save an unprotected copy and add that"
_IMAGE_ONLY = ("the PDF has no text layer, only page images (a scan); it needs OCR, which this product does not do: "
               "add a text PDF of the document, or run OCR on it first")
_MIN_PAGE_CHARS = 20  # fewer non-space characters than this and a page has no text to speak of
_LIST_START = re.compile(r"^(?:[-•▪◦*–]\s|\(?\d{1,3}[.)]\s|\(?[a-zA-Z][.)]\s|\(?[ivxIVX]{1,5}[.)]\s)")
_BOLD_FONT = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)
_HYPHENATED = re.compile(r"[a-z]+-[a-z]+")
# A gap wider than 0.15 x the font size is a word space. pdfplumber's fixed default (3 pt) glues the
# words of tightly set 10 pt text that spaces words by positioning rather than with space characters.
_TEXT_SETTINGS = {"x_tolerance_ratio": 0.15}
_CID = re.compile(r"\(cid:\d+\)")  # pdfminer's stand-in for a glyph its font does not map to a character
_UNDECODED = ("the PDF's text cannot be extracted (its fonts do not map glyphs to characters); it needs OCR, which this "
              "product does not do: add a text PDF of the document, or run OCR on it first")
_PDF_DATE = re.compile(r"^(?:D:)?(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(Z|[+-]\d{2}'?\d{2}'?)?")


@dataclass(frozen=True)
class _Line:
    """A text line of a PDF page with what the layout rules need."""

    text: str
    top: float
    bottom: float
    x0: float
    x1: float
    size: float
    bold: bool


@dataclass
class _PdfPage:
    lines: list[_Line]
    tables: list[tuple[float, list[list[str | None]]]]  # (top, raw rows)
    height: float
    has_images: bool
    undecoded: int = 0  # glyphs pdfminer could not map to characters ("(cid:13)"), left out of the text

    def chars(self) -> int:
        """Non-space characters of the page's text and tables."""
        text = "".join(line.text for line in self.lines)
        cells = "".join(c or "" for _, rows in self.tables for row in rows for c in row)
        return sum(not ch.isspace() for ch in text + cells)


@dataclass(frozen=True)
class _Layout:
    """Document-wide measures: the body text's left and right edges, and hyphenated words it spells."""

    left: float
    right: float
    hyphenated: frozenset[str]  # "follow-up": hyphenated words the document writes within a line
    words: frozenset[str]       # words the document writes away from a line break, lowercased

    def full(self, line: _Line) -> bool:
        """The line ran (nearly) to the right margin, so its break is a wrap."""
        return line.x1 >= self.right - 0.15 * max(self.right - self.left, 1.0)

    def breaks(self, prev: _Line, cur: _Line) -> bool:
        """A paragraph ends between the lines: a large gap, another font size, or a short line changing boldness."""
        height = max(prev.size, 1.0)
        return (cur.top - prev.bottom > 0.7 * height or abs(cur.size - prev.size) > 0.15 * height
                or (cur.bold != prev.bold and not self.full(prev)))

    def join(self, before: str, prev: _Line, cur: _Line) -> str | None:
        """`before` (ending with the line `prev`) continued by `cur`, or None when `cur` starts a new line."""
        if re.search(r"[a-z]-$", before) and cur.text[:1].islower():
            return self.fold(before, cur.text, cut=False)  # hyphenation, wherever the line ended
        if not self.full(prev) or _LIST_START.match(cur.text):
            return None
        return self.fold(before, cur.text, cut=self.cut_word(before, cur.text))

    def fold(self, before: str, nxt: str, cut: bool) -> str:
        """Join across a wrap: a hyphenated word made whole, a cut word glued, otherwise a space."""
        hyphen = re.search(r"([a-z]+)-$", before)
        if hyphen and nxt[:1].islower():
            word = hyphen.group(1) + "-" + re.match(r"[a-z]*", nxt).group(0)
            return before + nxt if word in self.hyphenated else before[:-1] + nxt
        if cut or re.search(r"\w-$", before):
            return before + nxt  # "dexametha" + "sone", "CAR-" + "T": one word
        return before + " " + nxt

    def cell(self, text: str) -> str:
        """A table cell's lines joined the way body lines are (every line break in a cell is a wrap).
        """
        lines = [line.strip() for line in _normalise_chars(text).split("\n") if line.strip()]
        if not lines:
            return ""
        out = lines[0]
        for n, nxt in enumerate(lines[1:], 1):
            ahead = nxt  # a line that is one piece of a word cut twice ("de" / "xamethaso" / "ne") runs on
            for more in lines[n + 1:]:
                if not re.fullmatch(r"[A-Za-z0-9]+", ahead):
                    break
                ahead += more
            out = self.fold(out, nxt, cut=self.cut_word(out, ahead))
        return out

    def cut_word(self, line: str, nxt: str) -> bool:
        """A word cut without a hyphen where the line ran out (narrow table columns cut "dexametha" + "sone"):
        the two pieces make a word the document writes elsewhere, and are not both words themselves
        ("in" + "to" stays two words)."""
        left, right = re.search(r"[A-Za-z0-9]*$", line).group(0).lower(), re.match(r"[A-Za-z0-9]*", nxt).group(0).lower()
        return bool(left and right) and left + right in self.words and not (left in self.words and right in self.words)


def _read_pdf(path: Path, data: bytes) -> _Parsed:
    """A PDF's pages as blocks; encrypted, scanned and broken PDFs are refused with what to do."""
    import pdfplumber

    if b"%PDF-" not in data[:1024]:
        raise ReadError(path, "unreadable", "not a readable PDF (the file does not start like a PDF)")
    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            meta = dict(pdf.metadata or {})
            pages = [_pdf_page(page) for page in pdf.pages]
    except ReadError:
        raise
    except Exception as exc:  # pdfminer raises many types for damaged files; none may escape as a traceback
        raise _pdf_error(path, exc, data) from None
    if not pages:
        raise ReadError(path, "empty", "the PDF has no pages")
    _drop_furniture(pages)
    title, hints = _pdf_meta(meta)
    if sum(p.undecoded for p in pages) > sum(p.chars() for p in pages):
        raise ReadError(path, "unreadable", _UNDECODED)
    with_text = [p.chars() >= _MIN_PAGE_CHARS for p in pages]
    if not any(with_text):
        if any(p.has_images for p in pages):
            raise ReadError(path, "image-only", _IMAGE_ONLY)
        raise ReadError(path, "empty", "no text found in the PDF")
    scanned = [str(n) for n, (p, ok) in enumerate(zip(pages, with_text, strict=True), 1) if p.has_images and not ok]
    if scanned:
        hints["image_only_pages"] = ", ".join(scanned)  # pages whose text would need OCR
    layout = _pdf_layout(pages)
    return _Parsed(pages=[_pdf_blocks(p, layout) for p in pages], title=title, hints=hints)


def _pdf_error(path: Path, exc: Exception, data: bytes) -> ReadError:
    """Encrypted (a password we do not have) or unreadable, from what pdfminer raised."""
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect

    causes = [exc, *exc.args, exc.__cause__, exc.__context__]
    if any(isinstance(c, (PDFPasswordIncorrect, PDFEncryptionError)) for c in causes) or b"/Encrypt" in data:
        return ReadError(path, "encrypted", _ENCRYPTED)
    return ReadError(path, "unreadable", f"not a readable PDF ({_detail(exc)})")


def _inside(obj: dict[str, Any], boxes: list[tuple[float, float, float, float]]) -> bool:
    """The object's centre lies in one of the table boxes."""
    x = (obj.get("x0", 0.0) + obj.get("x1", 0.0)) / 2
    y = (obj.get("top", 0.0) + obj.get("bottom", 0.0)) / 2
    return any(x0 - 1 <= x <= x1 + 1 and top - 1 <= y <= bottom + 1 for x0, top, x1, bottom in boxes)


def _is_grid(rows: list[list[str | None]]) -> bool:
    """A found table worth writing as one: 2+ rows and 2+ columns with text (a framed note is not)."""
    filled = [[bool((c or "").strip()) for c in row] for row in rows]
    width = max((len(r) for r in filled), default=0)
    columns = sum(any(r[i] for r in filled if i < len(r)) for i in range(width))
    return sum(any(r) for r in filled) >= 2 and columns >= 2


def _pdf_page(page: Any) -> _PdfPage:
    """Lines outside the tables, and the tables with their top, of one pdfplumber page."""
    tables, boxes = [], []
    for table in page.find_tables():
        rows = [[_CID.sub("", c) if c else c for c in row] for row in table.extract(**_TEXT_SETTINGS)]
        if _is_grid(rows):
            tables.append((table.bbox[1], rows))
            boxes.append(table.bbox)
    body = page.filter(lambda obj: not _inside(obj, boxes)) if boxes else page
    lines, undecoded = [], 0
    for raw in body.extract_text_lines(strip=True, return_chars=True, **_TEXT_SETTINGS):
        chars = [c for c in raw["chars"] if not c["text"].isspace() and not _CID.fullmatch(c["text"])]
        undecoded += len(raw["chars"]) - len(chars) - sum(c["text"].isspace() for c in raw["chars"])
        text = _CID.sub("", raw["text"])
        if not text.strip() or not chars:
            continue
        size = statistics.median(c["size"] for c in chars)
        bold = sum(bool(_BOLD_FONT.search(c.get("fontname", ""))) for c in chars) * 2 > len(chars)
        lines.append(_Line(_normalise_chars(text), raw["top"], raw["bottom"], raw["x0"], raw["x1"], size, bold))
    return _PdfPage(lines=lines, tables=tables, height=float(page.height), has_images=bool(page.images), undecoded=undecoded)


def _edge_lines(page: _PdfPage) -> list[_Line]:
    """The first and last two lines of a page when they sit in its top or bottom eighth."""
    candidates = page.lines[:2] + page.lines[-2:]
    seen: dict[int, _Line] = {id(line): line for line in candidates}
    return [line for line in seen.values() if line.top < page.height / 8 or line.bottom > page.height * 7 / 8]


def _furniture_key(line: _Line) -> str:
    """A line as running headers repeat it: page numbers aside, at one font size (a title on page 1 is larger)."""
    return re.sub(r"\d+", "#", " ".join(line.text.lower().split())) + f"@{round(line.size)}"


def _drop_furniture(pages: list[_PdfPage]) -> None:
    """Remove running headers and footers: edge lines that recur (page numbers aside) on 3 pages, or 2 of
    a 2-3 page file (a chapter's running header recurs only over that chapter's pages)."""
    if len(pages) < 2:
        return
    counts: Counter[str] = Counter()
    for page in pages:
        counts.update({_furniture_key(line) for line in _edge_lines(page)})
    need = 2 if len(pages) <= 3 else 3
    repeated = {key for key, n in counts.items() if n >= need}
    for page in pages:
        doomed = {id(line) for line in _edge_lines(page) if _furniture_key(line) in repeated}
        page.lines = [line for line in page.lines if id(line) not in doomed]


def _pdf_layout(pages: list[_PdfPage]) -> _Layout:
    """Margins from the body lines of the whole document (outliers aside), and the words it writes."""
    lines = [line for page in pages for line in page.lines]
    rights = sorted(line.x1 for line in lines) or [0.0]
    lefts = sorted(line.x0 for line in lines) or [0.0]
    cells = [c for page in pages for _, rows in page.tables for row in rows for c in row if c]
    written = "\n".join([line.text for line in lines] + cells).lower()
    # words away from any line break: a piece of a cut word sits at a break, so it does not count
    inner = [w for line in lines for w in re.findall(r"[a-z0-9]+", line.text.lower())[1:-1]]
    for cell in cells:
        parts = cell.lower().split("\n")
        for n, part in enumerate(parts):
            tokens = re.findall(r"[a-z0-9]+", part)
            inner += tokens[(n > 0):len(tokens) - (n < len(parts) - 1)]
    return _Layout(left=lefts[len(lefts) // 10], right=rights[min(len(rights) - 1, len(rights) * 9 // 10)],
                   hyphenated=frozenset(_HYPHENATED.findall(written)), words=frozenset(inner))


def _pdf_blocks(page: _PdfPage, layout: _Layout) -> list[Block]:
    """The page's lines grouped into paragraphs and its tables in place, in reading order (by top)."""
    items: list[tuple[float, int, _Line | list[list[str | None]]]] = [(line.top, 0, line) for line in page.lines]
    items += [(top, 1, rows) for top, rows in page.tables]
    items.sort(key=lambda item: (item[0], item[1]))
    blocks: list[Block] = []
    current: list[str] = []
    prev: _Line | None = None
    for _, _, item in items:
        if not isinstance(item, _Line):
            blocks += ["\n".join(current)] if current else []
            blocks.append(tuple(tuple(layout.cell(c or "") for c in row) for row in item))
            current, prev = [], None
            continue
        if prev is None or layout.breaks(prev, item):
            blocks += ["\n".join(current)] if current else []
            current = [item.text]
        else:
            joined = layout.join(current[-1], prev, item)
            if joined is None:
                current.append(item.text)
            else:
                current[-1] = joined
        prev = item
    blocks += ["\n".join(current)] if current else []
    return blocks


def _meta_str(value: object) -> str | None:
    """A PDF metadata value as text (pdfminer may leave bytes or a name object)."""
    if isinstance(value, bytes):
        value = value.decode("utf-16") if value[:2] in (b"\xfe\xff", b"\xff\xfe") else value.decode("latin-1")
    elif hasattr(value, "name") and not isinstance(value, str):
        value = str(value.name)
    if not isinstance(value, str):
        return None
    text = " ".join(_normalise_chars(value).split())
    return text or None


def _pdf_date(value: str | None) -> str | None:
    """A PDF date ("D:20240131120000-05'00'") as ISO text."""
    m = _PDF_DATE.match(value or "")
    if not m:
        return None
    year, month, day, hour, minute, second, zone = m.groups()
    try:
        if hour is None:
            return date(int(year), int(month or 1), int(day or 1)).isoformat()
        tz = None
        if zone == "Z":
            tz = UTC
        elif zone:
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace("'", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0)))
        when = datetime(int(year), int(month or 1), int(day or 1), int(hour), int(minute or 0), int(second or 0), tzinfo=tz)
        return when.isoformat()
    except ValueError:
        return None


def _pdf_meta(meta: dict[str, Any]) -> tuple[str | None, dict[str, str]]:
    """Title and the other document-information fields worth keeping."""
    hints: dict[str, str] = {}
    for key, name in (("Author", "author"), ("Subject", "subject"), ("Keywords", "keywords")):
        value = _meta_str(meta.get(key))
        if value:
            hints[name] = value
    for key, name in (("CreationDate", "created"), ("ModDate", "modified")):
        value = _pdf_date(_meta_str(meta.get(key)))
        if value:
            hints[name] = value
    return _tidy_title(_meta_str(meta.get("Title"))), hints


# --- HTML ----------------------------------------------------------------------------------------

_HTML_DROP = frozenset({"script", "style", "nav", "aside", "form", "noscript", "template", "svg", "iframe", "canvas",
                        "object", "embed", "button", "select", "dialog", "head", "title", "meta", "link"})
_HTML_DROP_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alertdialog"})
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_HTML_BLOCKS = frozenset({"p", "div", "section", "article", "main", "blockquote", "figure", "figcaption", "address",
                          "details", "summary", "fieldset", "legend", "dl", "hr", "header", "footer", "center", "body",
                          "html", "table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption"})
_HTML_LINES = frozenset({"dt", "dd", "option"})
_HTML_BREAKING = _HTML_BLOCKS | _HTML_LINES | _HEADINGS | {"br", "li", "ul", "ol", "pre"}
_HTML_TAG = re.compile(rb"<\s*(?:!doctype|html|head|body|main|article|div|p|table|h[1-6])\b", re.IGNORECASE)
_NO_MAIN = (f"the page has no main content (under {MIN_MAIN_CHARS} characters of text once navigation, header, footer "
            "and scripts are removed); save the article itself, or a PDF of it")
_HTML_META = {
    "author": "author", "article:author": "author", "dc.creator": "author",
    "description": "description", "og:description": "description",
    "keywords": "keywords",
    "article:published_time": "created", "date": "created", "dc.date": "created", "dcterms.created": "created",
    "article:modified_time": "modified", "last-modified": "modified", "dcterms.modified": "modified",
    "og:updated_time": "modified",
    "og:url": "url", "og:site_name": "publisher",
}


def _text_types() -> tuple[type, ...]:
    from bs4 import CData, NavigableString

    return (NavigableString, CData)


def _is_text(node: object, kinds: tuple[type, ...]) -> bool:
    """Document text, not a comment, doctype or processing instruction (those subclass NavigableString)."""
    return type(node) in kinds


def _inline_text(element: Any, kinds: tuple[type, ...]) -> str:
    """An element's text on one line; block children are separated by a space."""
    parts: list[str] = []

    def visit(node: Any) -> None:
        for child in node.children:
            if _is_text(child, kinds):
                parts.append(str(child))
            elif getattr(child, "name", None):
                breaking = child.name in _HTML_BREAKING
                parts.append(" " if breaking else "")
                visit(child)
                parts.append(" " if breaking else "")

    visit(element)
    return " ".join("".join(parts).split())


class _HtmlWriter:
    """Collects lines and blocks while the element tree is walked."""

    def __init__(self, kinds: tuple[type, ...]):
        self.kinds = kinds
        self.blocks: list[Block] = []
        self.lines: list[str] = []
        self.inline: list[str] = []
        self.prefix = ""  # a list item's marker, put before its first line

    def add(self, text: str) -> None:
        self.inline.append(text)

    def end_line(self) -> None:
        line = " ".join("".join(self.inline).split())
        self.inline = []
        if line:
            self.lines.append(self.prefix + line)
            self.prefix = ""

    def end_block(self) -> None:
        self.end_line()
        if self.lines:
            self.blocks.append("\n".join(self.lines))
            self.lines = []

    def start_item(self, marker: str) -> None:
        self.end_line()
        self.prefix = marker

    def heading(self, text: str) -> None:
        self.end_block()
        if text:
            self.blocks.append(text)

    def table(self, rows: Rows) -> None:
        self.end_block()
        self.blocks.append(rows)

    def pre(self, text: str) -> None:
        self.end_block()
        self.blocks.append(text.strip("\n"))

    def visit(self, node: Any, depth: int) -> None:
        """One node of the tree; `depth` is the list nesting (inside a list, blocks only break lines)."""
        if _is_text(node, self.kinds):
            self.add(str(node))
            return
        name = getattr(node, "name", None)
        if name is None:
            return
        rows = _data_table(node, self.kinds) if name == "table" else None
        if name in _HEADINGS:
            self.heading(_inline_text(node, self.kinds))
        elif name == "br":
            self.end_line()
        elif rows is not None:
            caption = node.find("caption")
            self.heading(_inline_text(caption, self.kinds) if caption else "")
            self.table(rows)
        elif name in ("ul", "ol"):
            self.visit_list(node, depth)
        elif name == "li":
            self.visit_item(node, depth, "- ")
        elif name == "pre":
            self.pre(node.get_text())
        else:
            self.visit_container(node, depth, name)

    def visit_container(self, node: Any, depth: int, name: str) -> None:
        """A block element starts and ends a block (a line inside lists); inline elements just pass their text."""
        brk = (self.end_line if depth or name in _HTML_LINES else self.end_block) if name in _HTML_BREAKING else None
        if brk:
            brk()
        for child in node.children:
            self.visit(child, depth)
        if brk:
            brk()

    def visit_list(self, node: Any, depth: int) -> None:
        """A list as one block of "- " lines (numbers for <ol>), nested lists indented."""
        end = self.end_line if depth else self.end_block  # a nested list stays in its item's block
        end()
        ordered = node.name == "ol"
        number = _int_attr(node, "start", 1, low=-10**6)
        for child in node.children:
            if getattr(child, "name", None) == "li":
                self.visit_item(child, depth, f"{number}. " if ordered else "- ")
                number += 1
            else:
                self.visit(child, depth + 1)
        end()

    def visit_item(self, node: Any, depth: int, marker: str) -> None:
        """A list item: its marker indented by the lists around it, its text on the marker's line."""
        self.start_item("  " * depth + marker)
        for child in node.children:
            self.visit(child, depth + 1)
        self.end_line()
        self.prefix = ""


def _int_attr(element: Any, name: str, default: int, low: int = 1, high: int = 1000) -> int:
    try:
        return min(max(int(str(element.get(name, default)).strip()), low), high)
    except ValueError:
        return default


def _grid(trs: list[Any], kinds: tuple[type, ...]) -> list[list[str]]:
    """Table rows on the column grid: a colspan or rowspan cell fills its first grid cell, the rest stay empty."""
    rows: list[list[str]] = []
    covered: dict[int, int] = {}  # column -> rows below still covered by a rowspan from above
    for tr in trs:
        row: list[str] = []
        new: dict[int, int] = {}
        for cell in tr.find_all(("td", "th"), recursive=False):
            while len(row) in covered:
                row.append("")
            text = _inline_text(cell, kinds)
            down = _int_attr(cell, "rowspan", 1)
            for k in range(_int_attr(cell, "colspan", 1, high=100)):
                if down > 1:
                    new[len(row)] = down - 1
                row.append("" if k else text)
        rows.append(row)
        covered = {c: n - 1 for c, n in covered.items() if n > 1} | new
    return rows


def _data_table(table: Any, kinds: tuple[type, ...]) -> Rows | None:
    """The rows of a data table, or None for a layout table (one row or column, a nested table, role=presentation)."""
    if table.find("table") is not None or str(table.get("role", "")).lower() in ("presentation", "none"):
        return None
    trs = [tr for tr in table.find_all("tr") if tr.find_parent("table") is table]
    rows = _grid(trs, kinds)
    if sum(any(r) for r in rows) < 2 or max((len(r) for r in rows), default=0) < 2:
        return None
    return tuple(tuple(r) for r in rows)


def _is_page_part(element: Any) -> bool:
    """Navigation, banners, scripts, hidden elements: what a saved page has besides its content."""
    if element.name in _HTML_DROP or str(element.get("role", "")).strip().lower() in _HTML_DROP_ROLES:
        return True
    if element.has_attr("hidden") or str(element.get("aria-hidden", "")).lower() == "true":
        return True
    if _HIDDEN_STYLE.search(str(element.get("style", ""))):
        return True
    # the site's header and footer go; an article's own header (its title) stays
    return element.name in ("header", "footer") and element.find_parent(("main", "article")) is None


def _html_meta(soup: Any, kinds: tuple[type, ...]) -> tuple[str | None, dict[str, str]]:
    """<title> (else the first <h1>) and the <meta> fields worth keeping."""
    title = _tidy_title(_inline_text(soup.title, kinds)) if soup.title else None
    if title is None and soup.find("h1") is not None:
        title = _tidy_title(_inline_text(soup.find("h1"), kinds))
    hints: dict[str, str] = {}
    for meta in soup.find_all("meta"):
        key = str(meta.get("name") or meta.get("property") or meta.get("itemprop") or "").strip().lower()
        name, content = _HTML_META.get(key), " ".join(str(meta.get("content", "")).split())
        if not name or not content or name in hints:
            continue
        value = _iso(content) if name in ("created", "modified") else content
        if value:
            hints[name] = value
    canonical = soup.find("link", rel="canonical")
    if canonical is not None and canonical.get("href"):
        hints["url"] = str(canonical["href"]).strip()
    return title, hints


def _main_candidates(soup: Any) -> Iterator[Any]:
    """Where the content is, most specific first."""
    if soup.find("main") is not None:
        yield soup.find("main")
    articles = soup.find_all("article")
    if articles:
        yield max(articles, key=lambda a: len(a.get_text()))
    role = soup.find(attrs={"role": "main"})
    if role is not None:
        yield role
    yield soup.body or soup


def _block_chars(blocks: list[Block]) -> int:
    flat = "".join(b if isinstance(b, str) else "".join("".join(row) for row in b) for b in blocks)
    return sum(not ch.isspace() for ch in flat)


def _read_html(path: Path, data: bytes) -> _Parsed:
    """A saved web page's main content; a page that is all navigation is refused."""
    from bs4 import BeautifulSoup

    markup: bytes | str = data
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        markup = data.decode("utf-16")
    elif not _HTML_TAG.search(data[:262144]):
        raise ReadError(path, "unreadable", "not an HTML page (no HTML tags found)")
    try:
        soup = BeautifulSoup(markup, "lxml")
    except Exception as exc:  # the parser on a damaged file
        raise ReadError(path, "unreadable", f"not a readable HTML page ({_detail(exc)})") from None
    kinds = _text_types()
    title, hints = _html_meta(soup, kinds)
    for element in [el for el in soup.find_all(True) if _is_page_part(el)]:
        if not element.decomposed:
            element.decompose()
    for candidate in _main_candidates(soup):
        writer = _HtmlWriter(kinds)
        writer.visit(candidate, 0)
        writer.end_block()
        if _block_chars(writer.blocks) >= MIN_MAIN_CHARS:
            return _Parsed(pages=[writer.blocks], title=title, hints=hints)
    raise ReadError(path, "no-main-content", _NO_MAIN)


# --- DOCX ----------------------------------------------------------------------------------------

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a Compound File: encrypted Office file or an old .doc
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")


def _read_docx(path: Path, data: bytes) -> _Parsed:
    """A Word document's body in order; encrypted and non-docx files are refused with what to do."""
    if data.startswith(_OLE_MAGIC):
        if _ENCRYPTED_PACKAGE in data:
            raise ReadError(path, "encrypted", "the Word document is password-protected; save an unprotected copy and add that")
        raise ReadError(path, "unreadable", "not a .docx file (it looks like an old Word .doc); save it as .docx and add that")
    if not data.startswith(b"PK"):
        raise ReadError(path, "unreadable", "not a readable Word .docx file (it is not a .docx package)")
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
        blocks, styled_title = _docx_blocks(document)
        title, hints = _docx_meta(document.core_properties)
    except Exception as exc:  # zipfile, lxml and python-docx errors for damaged packages
        raise ReadError(path, "unreadable", f"not a readable Word .docx file ({_detail(exc)})") from None
    return _Parsed(pages=[blocks], title=title or styled_title, hints=hints)


def _docx_elements(container: Any) -> Iterator[Any]:
    """Paragraph and table elements of a body in document order, content controls opened."""
    from docx.oxml.ns import qn

    for child in container.iterchildren():
        if child.tag in (qn("w:p"), qn("w:tbl")):
            yield child
        elif child.tag == qn("w:sdt"):
            content = child.find(qn("w:sdtContent"))
            if content is not None:
                yield from _docx_elements(content)


def _docx_paragraph(paragraph: Any) -> tuple[str, str]:
    """(kind, text) of a paragraph: kind is heading, item (a list line) or text; empty text is spacing."""
    text = paragraph.text
    if not text.strip():
        return "text", ""
    style = paragraph.style.name if paragraph.style is not None else ""
    if style.startswith(("Heading", "Title")):
        return "heading", " ".join(text.split())
    ppr = paragraph._p.pPr
    numbered = ppr is not None and ppr.numPr is not None
    if numbered or style.startswith("List"):
        level = ppr.numPr.ilvl.val if numbered and ppr.numPr.ilvl is not None else 0
        return "item", "  " * int(level or 0) + "- " + " ".join(text.split())
    return "text", text


def _docx_blocks(document: Any) -> tuple[list[Block], str | None]:
    """Blocks of the body, consecutive list paragraphs kept as one block; also the first Title-styled text."""
    from docx.oxml.ns import qn
    from docx.text.paragraph import Paragraph

    blocks: list[Block] = []
    items: list[str] = []
    styled_title = None
    for element in _docx_elements(document.element.body):
        if element.tag == qn("w:tbl"):
            kind, text = "table", ""
        else:
            paragraph = Paragraph(element, document)
            kind, text = _docx_paragraph(paragraph)
            style = paragraph.style.name if paragraph.style is not None else ""
            if kind == "heading" and styled_title is None and style.startswith("Title"):
                styled_title = text
        if kind == "item":
            items.append(text)
            continue
        if items and (text or kind == "table"):
            blocks.append("\n".join(items))
            items = []
        if kind == "table":
            blocks.append(_docx_rows(element, document))
        elif text:
            blocks.append(text)
    if items:
        blocks.append("\n".join(items))
    return blocks, styled_title


def _docx_rows(table: Any, document: Any) -> Rows:
    """A table's rows on its grid: a merged cell's text in its first grid cell, the others empty."""
    from docx.oxml.ns import qn
    from docx.text.paragraph import Paragraph

    rows = []
    for tr in table.tr_lst:
        row = [""] * int(tr.grid_before or 0)
        for tc in tr.tc_lst:
            continued = tc.vMerge == "continue"
            text = "" if continued else " ".join(Paragraph(p, document).text for p in tc.iter(qn("w:p")))
            row.append(text)
            row.extend([""] * (int(tc.grid_span or 1) - 1))
        rows.append(tuple(row))
    return tuple(rows)


def _docx_meta(props: Any) -> tuple[str | None, dict[str, str]]:
    """Core properties: the title, and author, subject, keywords, category, comments, dates as hints."""
    hints: dict[str, str] = {}
    for attr, name in (("author", "author"), ("subject", "subject"), ("keywords", "keywords"),
                       ("category", "category"), ("comments", "description")):
        value = " ".join(_normalise_chars(getattr(props, attr, "") or "").split())
        if value:
            hints[name] = value
    for attr in ("created", "modified"):
        value = _iso(getattr(props, attr, None))
        if value:
            hints[attr] = value
    return _tidy_title(props.title), hints


_READERS: dict[str, Callable[[Path, bytes], _Parsed]] = {
    "pdf": _read_pdf,
    "html": _read_html,
    "docx": _read_docx,
    "text": _read_text,
    "markdown": _read_markdown,
}
