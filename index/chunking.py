"""Structure-aware chunks: sections, FAQ question + answer, table rows with their header, and
worked examples whole.

The documents are web pages and policies flattened to text: headings are short lines between
blank lines, tables are a run-together header line followed by one row per line, worked
examples are runs of lines starting with "# ". A chunk keeps the span of its original text
(what a citation quotes) and carries a normalized search text for the embedder and BM25.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property

from index.codes import codes_in
from index.corpus import SourceDocument
from index.entities import products_in
from index.normalize import NORMALIZER_VERSION, glue_points, normalize

MAX_CHARS = 900          # paragraphs are packed up to this size
SOFT_BREAK_CHARS = 450   # in a long block of short lines, prefer breaking before a label line


@dataclass(frozen=True)
class Block:
    """Consecutive non-blank lines: (start, end) offsets of each line in the document."""

    lines: tuple[tuple[int, int], ...]

    @property
    def start(self) -> int:
        return self.lines[0][0]

    @property
    def end(self) -> int:
        return self.lines[-1][1]


@dataclass
class Chunk:
    doc_id: str
    section: str
    chunk_type: str  # section | faq | table_row | example
    start: int
    end: int
    text: str        # the original text of [start, end): what citations quote
    header: str = ""  # a table row's header line (original text)
    products: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)

    @cached_property
    def search_text(self) -> str:
        """Normalized text for search: section path, table header and body (computed once:
        the id and the node both need it, and normalizing is most of the chunking time)."""
        parts = [self.section, normalize(self.header), normalize(self.text)]
        return "\n".join(p for p in parts if p)

    @property
    def id(self) -> str:
        key = f"{NORMALIZER_VERSION}|{self.doc_id}|{self.start}|{self.end}|{self.search_text}"
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def blocks_of(text: str) -> list[Block]:
    blocks: list[Block] = []
    current: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        start, end = pos, pos + len(line)
        pos = end + 1
        if line.strip():
            current.append((start, end))
        elif current:
            blocks.append(Block(tuple(current)))
            current = []
    if current:
        blocks.append(Block(tuple(current)))
    return blocks


_LIST_MARK = re.compile(r"^\s*(?:[-•*]|\d+[.)]|#|[a-z][.)]\s)")
_BADGE = re.compile(r"(?:verified|reviewed|review)(?: [A-Z][a-z]+ \d{4})?$|\((?:live)\)$", re.IGNORECASE)
_TOP_WORDS = re.compile(r"^(?:About |Frequently asked questions|Common denial|Instant Answer)")
_SUB_POLICY = re.compile(r"^(?:Appendix [A-Z]|Table \d|[A-H]\. )")
_ROMAN = re.compile(r"^[IVX]+\. ")
_EXAMPLE_START = re.compile(r"^# (?:Adult|Pediatric|Patient|Example|Case)\b|^# .*\b\d+ kg\b")


def is_heading(line: str) -> bool:
    s = line.strip()
    if not s or len(s) > 120 or "\t" in s or _LIST_MARK.match(line):
        return False
    if s.endswith("?") or s[-1] in ".,;" or (s.endswith(":") and not _ROMAN.match(s)):
        return False
    field = re.match(r"^([^:]{2,40}): (\S)", s)
    if field:
        # "Approval duration: 3 months", "Effective Date: 03.26.21" are fields of a form, while
        # "Appendix A: Abbreviation Key" and "Table 1: HCPCS Codes" are headings; a glossary
        # line "IMWG: International Myeloma Working Group" is a field.
        label, value_start = field.group(1), field.group(2)
        minor = {"of", "and", "the", "to", "for", "in", "on", "or", "a"}
        if value_start.isdigit() or label.isupper() or any(w[0].islower() for w in label.split() if w not in minor):
            return False
    return s[0].isupper() or s[0].isdigit()


def is_table_header(line: str) -> bool:
    """A run-together header ("CodeDescriptionWhen to use") or a tab-separated one."""
    s = line.strip()
    if "\t" in s:
        return True
    if len(s) > 110 or s[-1:] in ".:;?" or sum(c.isdigit() for c in s) > 2:
        return False
    return any(s[p - 1].islower() or s[p - 1].isupper() for p in glue_points(s)) and bool(
        re.search(r"[a-z][A-Z][a-z]|[A-Z]{2}[A-Z][a-z]", s)
    )


class _Sections:
    """The heading path a block sits under."""

    def __init__(self, badge_style: bool, fallback: str):
        self.badge_style = badge_style
        self.fallback = fallback  # for text before the first heading
        self.title = ""
        self.top = ""
        self.sub = ""

    def see(self, heading: str) -> None:
        if not self.title:
            self.title = heading
            return
        if self.badge_style:
            top = bool(_BADGE.search(heading) or _TOP_WORDS.match(heading)) or not self.top
        else:
            top = not _SUB_POLICY.match(heading)
        if top:
            self.top, self.sub = heading, ""
        else:
            self.sub = heading

    @property
    def path(self) -> str:
        return " > ".join(p for p in (self.top or self.title, self.sub) if p) or self.fallback


def _split_long(text: str, start: int, limit: int) -> list[tuple[int, int]]:
    """Split one long line at sentence ends into spans of at most about `limit` chars."""
    spans, s = [], start
    breaks = [start + m.end() for m in re.finditer(r"[.;!?] (?=[A-Z(])", text)]
    last = start
    for b in breaks + [start + len(text)]:
        if b - s > limit and last > s:
            spans.append((s, last))
            s = last
        last = b
    spans.append((s, start + len(text)))
    return [(a, b) for a, b in spans if b > a]


class _Chunker:
    """One document's chunking state: the heading path, the chunks so far and the paragraph lines being packed."""

    def __init__(self, doc: SourceDocument):
        self.doc = doc
        self.text = doc.text
        self.blocks = blocks_of(self.text)
        self.sections = _Sections(self._badge_style(), doc.title)
        self.chunks: list[Chunk] = []
        self.pending: list[tuple[int, int]] = []  # packed paragraph lines awaiting emission
        self.pending_section = ""

    def _badge_style(self) -> bool:
        """Web pages mark top sections with badges ("Verified May 2026"); three such headings mean this style."""
        text = self.text
        return sum(
            1 for b in self.blocks if len(b.lines) == 1 and is_heading(text[b.start:b.end])
            and _BADGE.search(text[b.start:b.end].strip())
        ) >= 3

    def emit(self, kind: str, start: int, end: int, header: str = "", section: str | None = None) -> None:
        """Add a chunk for [start, end), trimmed so the quote starts and ends on text (nothing if it is blank)."""
        text = self.text
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end <= start:
            return
        body = text[start:end]
        scope = f"{header}\n{body}"
        self.chunks.append(Chunk(
            doc_id=self.doc.id, section=section if section is not None else self.sections.path,
            chunk_type=kind, start=start, end=end, text=body, header=header,
            products=products_in(scope), codes=codes_in(scope),
        ))

    def flush(self) -> None:
        """Emit the packed paragraph lines as one section chunk, under the section they were packed in."""
        if self.pending:
            self.emit("section", self.pending[0][0], self.pending[-1][1], section=self.pending_section)
            self.pending = []

    def add_paragraph_lines(self, lines: list[tuple[int, int]]) -> None:
        """Pack paragraph lines up to MAX_CHARS, breaking early before a short label line and splitting over-long lines."""
        if self.pending and self.pending_section != self.sections.path:
            self.flush()
        self.pending_section = self.sections.path
        for a, b in lines:
            if b - a > MAX_CHARS:
                self.flush()
                self.pending_section = self.sections.path
                for s, e in _split_long(self.text[a:b], a, MAX_CHARS):
                    self.emit("section", s, e)
                continue
            size = (self.pending[-1][1] - self.pending[0][0]) if self.pending else 0
            short_label = (b - a) <= 30
            if self.pending and (size + (b - a) > MAX_CHARS or (size > SOFT_BREAK_CHARS and short_label)):
                self.flush()
                self.pending_section = self.sections.path
            self.pending.append((a, b))

    def examples(self, i: int) -> int:
        """Worked examples from the "# "-led blocks starting at block i; returns the index of the next block."""
        self.flush()
        text, blocks = self.text, self.blocks
        # A worked example runs over consecutive "# "-led blocks; a new one starts at a
        # patient line ("# Adult, 70 kg, ...").
        lines = list(blocks[i].lines)
        i += 1
        while i < len(blocks) and text[blocks[i].start:blocks[i].end].startswith("# "):
            lines += blocks[i].lines
            i += 1
        starts = [n for n, (a, b) in enumerate(lines)
                  if n == 0 or _EXAMPLE_START.match(text[a:b])]
        for k, n in enumerate(starts):
            last = (starts[k + 1] - 1) if k + 1 < len(starts) else len(lines) - 1
            self.emit("example", lines[n][0], lines[last][1])
        return i

    def table_rows(self, block: Block) -> None:
        """One chunk per table row, each carrying the header line."""
        self.flush()
        text = self.text
        header = text[block.lines[0][0]:block.lines[0][1]].strip()
        rows = list(block.lines[1:])
        n = 0
        while n < len(rows):
            a, b = rows[n]
            # short label lines ("UnitedHealthcare") belong to the row that follows
            while (b - a) < 45 and not any(c.isdigit() for c in text[a:b]) and n + 1 < len(rows):
                n += 1
                b = rows[n][1]
            self.emit("table_row", a, b, header=header)
            n += 1

    def step(self, i: int) -> int:
        """Chunk the block at index i by its shape (heading, FAQ, example, table, paragraphs); returns the next index."""
        blocks = self.blocks
        block = blocks[i]
        first = self.text[block.lines[0][0]:block.lines[0][1]]
        if len(block.lines) == 1 and is_heading(first):
            self.flush()
            self.sections.see(first.strip())
            return i + 1
        if (len(block.lines) == 1 and first.strip().endswith("?") and i + 1 < len(blocks)
                and len(first) <= 200):
            self.flush()
            self.emit("faq", block.start, blocks[i + 1].end)
            return i + 2
        if first.startswith("# "):
            return self.examples(i)
        if len(block.lines) >= 2 and is_table_header(first):
            self.table_rows(block)
            return i + 1
        self.add_paragraph_lines(list(block.lines))
        return i + 1

    def run(self) -> list[Chunk]:
        """All the document's chunks, in document order."""
        i = 0
        while i < len(self.blocks):
            i = self.step(i)
        self.flush()
        return self.chunks


def chunk_document(doc: SourceDocument) -> list[Chunk]:
    """The document's chunks (sections, FAQ question + answer, table rows, worked examples), in document order."""
    return _Chunker(doc).run()
