"""Propose a new document's metadata from its text, each value with the line it came from.

A billing office adds a downloaded policy or guide; another module extracts its text. This module
reads that text the way a careful person would fill in the front matter, and shows its working:
every proposed value carries its evidence (the line, at most 200 characters, cut from the text
itself) and its source, so the person confirms or fixes each field instead of retyping them all.
A field the text does not give stays empty and is shown as "(not in the text)": nothing is
guessed, because a wrong effective date or payer would quietly mislead every answer built on it.

Validation is the corpus loader's own (`index.corpus` validators), so a proposal without
problems is a document `parse_document` accepts.

Rules, field by field (see each finder's docstring for why):
- title: the first title-like line among the first lines (names a product or a document type,
  not a labelled field, no tab/markup), else `title_hint`/hints["title"], else the file name stem.
  As the corpus writes titles, a payer policy's title ends with its policy number
  (", CP.PHAR.481") and a billing guide's with " billing guide" when the line lacks them.
- kind: a document-type cue in the title line decides; otherwise the class (payer policy or
  billing guide) with at least two distinct cue phrases and more than twice the other's.
  "reference" only from the title line. None when unclear.
- products: those the title line names plus those mentioned at least half as often as the most
  mentioned product, the title's first, then the most mentioned (a guide names its competitors in passing; its own
  product dominates the counts).
- payer: only for a payer policy (a guide naming Medicare prices is not Medicare's document):
  a payer whose full name is in the text, else one named in the header lines, else the most
  mentioned; "<payer> Advantage" is a plan type, not a mention of the payer.
- publisher: a payer policy's payer's name, else a copyright holder ("©2024 Bristol-Myers
  Squibb"; not a code set's owner), else a publisher the corpus already holds named in the text,
  else the file's author metadata.
- line_of_business: a "Line of Business:" line split on commas, else the checked plan types of
  an "Applies to:" line ("Medicare Advantage HMO").
- effective: the first "Effective:"/"Effective Date" line with a real date; reviewed/revised:
  the newest date on labelled lines ("Last Review Date:", "Revised:"); reviewed also from
  "reviewed/verified <date>" phrases, and only then from the newest dated entry of a revision log.
- price_quarter: the quarter most often stated on lines about prices (ASP, payment limit).
- codes: the billing codes mentioned, in order, at most 40. id: derived from payer, product and
  kind as the corpus names documents ("centene-abecma-policy", "abecma-billing-guide").
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from assistant.core.dates import find_service_dates
from assistant.core.quarters import Quarter, QuarterError
from index.codes import codes_in, find_codes
from index.corpus import _ID_RE, KINDS, REQUIRED, DocumentError, _date_field, _is_quarter, _str_list, configured_corpus
from index.entities import _name_pattern, known_payer_ids, known_product_ids, payers, products

__all__ = ["FIELDS", "Proposed", "Proposal", "propose", "read_date"]

FIELDS = ("id", "title", "publisher", "kind", "payer", "line_of_business", "products", "codes",
          "policy_number", "effective", "revised", "reviewed", "price_quarter")
LIST_FIELDS = frozenset({"line_of_business", "products", "codes"})
USER_EVIDENCE = "set by you"
MAX_EVIDENCE = 200
MAX_CODES = 40
_HEADER_LINES = 10      # lines a document's title and header fields sit in
_TITLE_LINES = 6
_LOG_LINES = 120        # how far a revision log is read after its heading


@dataclass(frozen=True)
class Proposed:
    """One proposed field: its value, the line it came from and where that line came from."""

    name: str                                   # one of FIELDS
    value: str | tuple[str, ...] | None         # None / () = the text does not give it
    evidence: str                               # the line (<= 200 chars) or "set by you"; "" if none
    source: str                                 # "text" | "file metadata" | "file name" | "user" | "derived" | ""


def _empty(name: str) -> Proposed:
    return Proposed(name, () if name in LIST_FIELDS else None, "", "")


def _blank(value: object) -> bool:
    return value in (None, "", ())


def _scalar(field: Proposed) -> str | None:
    return field.value if isinstance(field.value, str) and field.value else None


# --- the text and its lines -----------------------------------------------------------------------

class _Text:
    """The text with its line offsets, so every evidence string is a slice of it (never rebuilt)."""

    def __init__(self, text: str):
        self.text = text
        self.starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def line_bounds(self, pos: int) -> tuple[int, int]:
        start = self.starts[bisect.bisect_right(self.starts, pos) - 1]
        end = self.text.find("\n", start)
        return start, len(self.text) if end < 0 else end

    def evidence(self, pos: int) -> str:
        """The stripped line holding `pos`; a 200-character window of it around `pos` when longer."""
        start, end = self.line_bounds(pos)
        line = self.text[start:end]
        lead = len(line) - len(line.lstrip())
        start, end = start + lead, start + len(line.rstrip())
        if end - start <= MAX_EVIDENCE:
            return self.text[start:end]
        left = max(start, min(pos - 60, end - MAX_EVIDENCE))
        return self.text[left:left + MAX_EVIDENCE].strip()

    def lines(self) -> Iterator[tuple[int, str]]:
        for start in self.starts:
            end = self.text.find("\n", start)
            yield start, self.text[start:len(self.text) if end < 0 else end]

    def best(self, positions: list[int]) -> int:
        """The first position on a line short enough to quote whole (a heading beats a paragraph)."""
        for pos in positions:
            start, end = self.line_bounds(pos)
            if len(self.text[start:end].strip()) <= MAX_EVIDENCE:
                return pos
        return positions[0] if positions else 0

    def header(self, count: int = _HEADER_LINES) -> list[tuple[int, str]]:
        """The first `count` non-empty lines: where titles and header fields are."""
        out = []
        for start, line in self.lines():
            if line.strip():
                out.append((start, line))
                if len(out) == count:
                    break
        return out


def _from_text(name: str, value: str | tuple[str, ...], doc: _Text, pos: int) -> Proposed:
    return Proposed(name, value, doc.evidence(pos), "text")


def _clip(hint: str) -> str:
    return hint.strip()[:MAX_EVIDENCE].strip()


# --- dates ------------------------------------------------------------------------------------------

_ISO_MONTH = re.compile(r"((?:19|20)\d{2})-(0[1-9]|1[0-2])(?![\d-])")
_DOTTED_DAY = re.compile(r"(\d{1,2})\.(\d{1,2})\.((?:19|20)\d{2}|\d{2})(?![\d.])")
_DOTTED_MONTH = re.compile(r"(\d{1,2})\.((?:19|20)\d{2}|\d{2})(?![\d.])")
_HAS_YEAR = re.compile(r"(?:19|20)\d{2}|\d[/\-]\d{2}$|['’]\d{2}$")  # "Mar 4" or "today" name no year: never read


def _date_at(value: str) -> tuple[str, int] | None:
    """(date as front matter writes it, characters read) for a date at the very start of `value`.

    Every US form `assistant.core.dates` reads (9/1/2025, September 1, 2025, May 2026, ISO), plus
    the forms policies print in their headers: 03.26.21 (MM.DD.YY), 05.26 (MM.YY), 2026-05. Only a
    day or a month with its year is a date here; an impossible date (13/45/2021) is None."""
    text = value[:80]
    if m := _ISO_MONTH.match(text):
        return f"{m[1]}-{m[2]}", m.end()
    if m := _DOTTED_MONTH.match(text):
        year = int(m[2]) if len(m[2]) == 4 else 2000 + int(m[2])
        return (f"{year}-{int(m[1]):02d}", m.end()) if 1 <= int(m[1]) <= 12 else None
    text = _DOTTED_DAY.sub(lambda d: f"{d[1]}/{d[2]}/{d[3]}", text, count=1) if _DOTTED_DAY.match(text) else text
    reads = find_service_dates(text, dt.date.today())
    if not reads or not text.startswith(reads[0].text) or not _HAS_YEAR.search(reads[0].text):
        return None
    read = reads[0]
    if read.precision == "day":
        return read.start.isoformat(), len(read.text)
    if read.precision == "month":
        return f"{read.start.year}-{read.start.month:02d}", len(read.text)
    return None


def read_date(value: str) -> str | None:
    """A whole value as a front-matter date ('2025-09-01', '2026-05'), None when it is not one."""
    text = str(value).strip()
    found = _date_at(text)
    return found[0] if found and found[1] == len(text) else None


# The label must be followed by its date; a bare "Effective"/"Reviewed"/"Revised" needs a colon
# ("effective January 1, 2025" in a revision note or "Revised HCPCS code" is not a header field).
_EFFECTIVE = re.compile(r"(?i)(?<![a-z])(?:(?:original\s+)?effective\s+date|date\s+effective|effective(?=\s*:))\s*:?\s*")
_REVIEWED = re.compile(r"(?i)(?<![a-z])(?:(?:date\s+of\s+)?last\s+review(?:ed)?(?:\s+date)?|review(?:ed)?\s+date"
                       r"|page\s+reviewed|reviewed(?=\s*:))\s*(?:on\s+)?:?\s*")
_REVIEWED_PHRASE = re.compile(r"(?i)(?<![a-z])(?:reviewed|verified)\s*:?\s*")
_REVISED = re.compile(r"(?i)(?<![a-z])(?:date\s+of\s+last\s+revision|last\s+revis(?:ed|ion)(?:\s+date)?|revision\s+date"
                      r"|revised(?:\s+date)?(?=\s*:)|revised\s+on)\s*:?\s*")
_LOG_HEADING = re.compile(r"(?i)^\W{0,3}(?:(?:approval\s+and\s+)?revision\s+(?:log|history)|reviews?,\s+revisions"
                          r"|(?:policy|document)\s+history|change\s+log)\b")
_BULLET = re.compile(r"^[\s\-–•*·>]*")


def _labelled_dates(doc: _Text, label: re.Pattern[str]) -> list[tuple[str, int]]:
    """(date, position) for every `label` directly followed by a real date, in text order."""
    found = []
    for m in label.finditer(doc.text):
        _, end = doc.line_bounds(m.start())
        read = _date_at(doc.text[m.end():end])
        if read:
            found.append((read[0], m.start()))
    return found


def _log_dates(doc: _Text) -> list[tuple[str, int]]:
    """Dated entries of a revision log: a line starting 'July 16, 2025: ...' or a table cell that
    is only a date ('...annual review.<tab>03.26.26<tab>05.26')."""
    found: list[tuple[str, int]] = []
    remaining = 0
    for start, line in doc.lines():
        if _LOG_HEADING.match(line.split("\t")[0]) and len(line.split("\t")[0]) <= 80:
            remaining = _LOG_LINES
            continue
        if remaining <= 0:
            continue
        remaining -= 1
        lead = _BULLET.match(line).end()
        read = _date_at(line[lead:])
        if read and line[lead + read[1]:lead + read[1] + 2].lstrip(" ")[:1] in (":", ";", "\t", "-", "–"):
            found.append((read[0], start))
        for cell in line.split("\t")[1:]:
            if (value := read_date(cell)) is not None:
                found.append((value, start))
    return found


def _newest(name: str, doc: _Text, *candidates: list[tuple[str, int]]) -> Proposed:
    """The newest date of the first kind of evidence that gives one (labels before phrases before a log)."""
    for found in candidates:
        if found:
            value, pos = max(found, key=lambda c: c[0])
            return _from_text(name, value, doc, pos)
    return _empty(name)


def _effective(doc: _Text) -> Proposed:
    """The first effective-date label: a policy's header states it before any revision note does."""
    found = _labelled_dates(doc, _EFFECTIVE)
    return _from_text("effective", found[0][0], doc, found[0][1]) if found else _empty("effective")


def _reviewed(doc: _Text) -> Proposed:
    """A review-date field, else a 'reviewed/verified May 2026' phrase, else the revision log's newest entry."""
    return _newest("reviewed", doc, _labelled_dates(doc, _REVIEWED), _labelled_dates(doc, _REVIEWED_PHRASE), _log_dates(doc))


def _revised(doc: _Text) -> Proposed:
    """Only a revision-date field: a log entry may be a review without changes, so it is no revision date."""
    return _newest("revised", doc, _labelled_dates(doc, _REVISED))


# --- price quarter ------------------------------------------------------------------------------------

_PRICE_WORDS = re.compile(r"(?i)(?<![a-z])(?:ASP|payment\s+limits?|payment\s+allowance|pricing\s+file|prices?|fee\s+schedule)(?![a-z])")


def _quarters_in(line: str) -> set[str]:
    """Quarters a price line states; a day or month counts only after 'effective' (prices from Jan 1)."""
    effective = "effective" in line.lower()
    out = set()
    for read in find_service_dates(line[:2000], dt.date.today()):
        if read.precision == "quarter" or (effective and read.precision in ("day", "month") and _HAS_YEAR.search(read.text)):
            out.add(str(Quarter.of(read.start)))
    return out


def _price_quarter(doc: _Text) -> Proposed:
    """The quarter most price lines state (ties: the newest): the quarter the document's prices are for."""
    counts: Counter[str] = Counter()
    where: dict[str, list[int]] = {}
    for start, line in doc.lines():
        if not (price := _PRICE_WORDS.search(line)):
            continue
        for quarter in _quarters_in(line):
            counts[quarter] += 1
            where.setdefault(quarter, []).append(start + price.start())
    if not counts:
        return _empty("price_quarter")
    quarter = max(counts, key=lambda q: (counts[q], Quarter.parse(q)))
    return _from_text("price_quarter", quarter, doc, doc.best(where[quarter]))


# --- title, kind, policy number ----------------------------------------------------------------------

_FIELD_LINE = re.compile(r"(?i)^\W*(?:effective|reference\s+number|policy\s+(?:number|#|no)|last\s+review|review\s+date|lines?\s+of\s+business"
                         r"|applies\s+to|note|revised|revision|date\s+of|approved|original)\b[^:]{0,30}:")
_DOC_WORDS = re.compile(r"(?i)\b(?:policy|guidelines?|guide|coverage|billing|coding|prescribing\s+information|bulletin|criteria)\b")


def _title_line(doc: _Text) -> tuple[int, str] | None:
    """(position, title) of the first title-like line near the top, None when there is none."""
    for start, line in doc.header(_TITLE_LINES):
        text = line.strip()
        if len(text) > 160 or "\t" in text or "<" in text or text[:1] in "[!|" or _FIELD_LINE.match(text):
            continue
        title = re.sub(r"^#+\s*", "", text).strip("* ").strip()
        if title and (_DOC_WORDS.search(title) or _products_named(title)):
            return start, title
    return None


_POLICY_NUMBER = re.compile(r"(?i:\b(?:reference|policy)\s*(?:number|no\.?|#|id)\s*[:#.]?\s*)(?P<v>[A-Za-z0-9][A-Za-z0-9._/-]{0,30}[A-Za-z0-9])")


def _policy_number(doc: _Text) -> Proposed:
    """'Reference Number: CP.PHAR.481', 'Policy Number: 2023T0545', 'Policy #123' (a number has a digit)."""
    for m in _POLICY_NUMBER.finditer(doc.text):
        if any(c.isdigit() for c in m["v"]):
            return _from_text("policy_number", m["v"], doc, m.start())
    return _empty("policy_number")


_POLICY_CUES = re.compile(r"(?i)\b(clinical\s+policy|medical\s+policy|medical\s+necessity\s+guidelines?|coverage\s+criteria|coverage\s+policy"
                          r"|policy\s+number|reference\s+number|prior\s+authorization\s+required|lines?\s+of\s+business|approval\s+criteria"
                          r"|medically\s+necessary|policy/criteria)\b")
_BILLING_CUES = re.compile(r"(?i)\b(billing\s+(?:guide|faq)|billing\s+(?:and|&)\s+coding|coding\s+guide|how\s+to\s+bill|need\s+to\s+bill"
                           r"|claim\s+form|claim\s+cadence|billing\s+tips?|denial\s+reasons|common\s+denials|place\s+of\s+service|modifiers?"
                           r"|payment\s+limit|billed\s+under)\b|ASP\+6%")
_TITLE_KINDS = (
    ("payer-policy", re.compile(r"(?i)\b(?:clinical|medical|coverage|drug|payment)\s+policy\b|medical\s+necessity\s+guidelines?|policy\s+bulletin")),
    ("billing-guide", re.compile(r"(?i)\bbilling\b|\bcoding\s+guide\b|\bcoding\s+and\s+billing\b")),
    ("reference", re.compile(r"(?i)\b(?:prescribing\s+information|package\s+insert|fee\s+schedule|pricing\s+file|crosswalk|code\s+list)\b")),
)


def _cue_counts(doc: _Text, cues: re.Pattern[str]) -> tuple[int, int]:
    """(distinct cue phrases, where to quote one): distinct, so repeated boilerplate counts once."""
    seen: set[str] = set()
    at: list[int] = []
    for m in cues.finditer(doc.text):
        seen.add(" ".join(m.group(0).lower().split()))
        at.append(m.start())
    return len(seen), doc.best(at)


def _kind(doc: _Text, title: tuple[int, str] | None) -> Proposed:
    """A type named in the title decides; else the class with clearly more distinct cues; else None."""
    if title:
        for kind, rx in _TITLE_KINDS:
            if rx.search(title[1]):
                return _from_text("kind", kind, doc, title[0])
    policy, policy_at = _cue_counts(doc, _POLICY_CUES)
    billing, billing_at = _cue_counts(doc, _BILLING_CUES)
    if policy >= 2 and policy > 2 * billing:
        return _from_text("kind", "payer-policy", doc, policy_at)
    if billing >= 2 and billing > 2 * policy:
        return _from_text("kind", "billing-guide", doc, billing_at)
    return _empty("kind")


def _compose_title(title: str, kind: str | None, policy_number: str | None) -> str:
    """The corpus titles a policy with its number and a guide as '... billing guide'."""
    if kind == "payer-policy" and policy_number and policy_number.lower() not in title.lower():
        return f"{title}, {policy_number}"
    if kind == "billing-guide" and "guide" not in title.lower():
        return f"{title} billing guide"
    return title


def _title(doc: _Text, line: tuple[int, str] | None, fields: dict[str, Proposed], hint: str, file_name: str) -> Proposed:
    """The title line, else the file's title metadata, else the file name's stem."""
    kind, number = _scalar(fields["kind"]), _scalar(fields["policy_number"])
    if line:
        return _from_text("title", _compose_title(line[1], kind, number), doc, line[0])
    if hint.strip():
        return Proposed("title", _compose_title(_clip(hint), kind, number), _clip(hint), "file metadata")
    stem = Path(file_name.replace("\\", "/")).stem.strip() if file_name.strip() else ""
    return Proposed("title", stem, stem, "file name") if stem else _empty("title")


# --- products, payer, publisher --------------------------------------------------------------------

def _products_named(text: str) -> list[str]:
    return [p.id for p in products() if _name_pattern(p.names).search(text)]


def _mentions(doc: _Text, names: tuple[str, ...]) -> list[int]:
    """Positions of the names; '<name> Advantage' is a plan type (Medicare Advantage), not the name."""
    text = doc.text
    return [m.start() for m in _name_pattern(names).finditer(text) if not re.match(r"\s+advantage\b", text[m.end():m.end() + 12], re.I)]


def _products(doc: _Text, title: tuple[int, str] | None) -> Proposed:
    """Products in the title plus those mentioned at least half as often as the most mentioned one."""
    found = {p.id: hits for p in products() if (hits := _mentions(doc, p.names))}
    if not found:
        return _empty("products")
    top = max(len(h) for h in found.values())
    named = set(_products_named(title[1])) if title else set()
    chosen = sorted((pid for pid, hits in found.items() if pid in named or 2 * len(hits) >= top),
                    key=lambda pid: (pid not in named, -len(found[pid]), found[pid][0]))  # the title's product first
    first = chosen[0]
    pos = title[0] if first in named and title else doc.best(found[first])
    return _from_text("products", tuple(chosen), doc, pos)


def _payer(doc: _Text, kind: str | None) -> Proposed:
    """A payer policy's payer: full name in the text, else named in the header lines, else the most mentioned."""
    if kind != "payer-policy":
        return _empty("payer")
    hits = {p.id: h for p in payers() if (h := _mentions(doc, p.names))}
    if not hits:
        return _empty("payer")
    full = {p.id for p in payers() if p.id in hits and _mentions(doc, (p.name.lower(),))}
    header = doc.header()
    header_end = header[-1][0] + len(header[-1][1]) if header else 0
    in_header = {pid for pid, h in hits.items() if h[0] < header_end}
    pool = full or in_header or set(hits)
    best = max(pool, key=lambda pid: (len(hits[pid]), -hits[pid][0]))
    if best in full:  # quote the line with the payer's full name: the plainest evidence
        named = next(p for p in payers() if p.id == best)
        return _from_text("payer", best, doc, doc.best(_mentions(doc, (named.name.lower(),))))
    return _from_text("payer", best, doc, doc.best(hits[best]))


_YEARS = r"(?:19|20)\d{2}(?:\s*[-–]\s*(?:19|20)\d{2})?\s*,?\s*"
# "©2020 Centene Corporation.", "Copyright 2024 Kite Pharma, Inc."; the word alone needs a year ("Copyright Notice" names no one)
_COPYRIGHT = re.compile(rf"(?:(?:©|\([cC]\))\s*(?:{_YEARS})?|(?i:copyright)\s*(?:©\s*)?{_YEARS})"
                        r"(?P<name>[A-Z][A-Za-z0-9&'’.\- ]{1,60}?)\s*(?=[.,;|]\s|[.;]?\s*$|\s+All\s+rights)", re.M)


_CODE_SET_OWNERS = frozenset({"american medical association", "ama", "american hospital association", "aha"})


def _corpus_publishers() -> set[str]:
    """Publishers of the documents already in the corpus: a new guide from the same site is recognised."""
    return {d.publisher for d in configured_corpus().documents.values() if d.publisher}


def _known_publisher(doc: _Text) -> Proposed:
    counts = {name: hits for name in _corpus_publishers() if (hits := _mentions(doc, (name.lower(),)))}
    if not counts:
        return _empty("publisher")
    name = max(counts, key=lambda n: (len(counts[n]), -counts[n][0]))
    return _from_text("publisher", name, doc, counts[name][0])


def _copyright_holder(doc: _Text) -> Proposed:
    """The holder of the first copyright notice that is not a code set's ('CPT ... © American Medical Association')."""
    for m in _COPYRIGHT.finditer(doc.text):
        holder = re.sub(r"\s+(?:19|20)\d{2}$", "", m["name"]).strip(" .-")  # "© Novartis Pharmaceuticals Corporation 2024"
        if holder.lower() not in _CODE_SET_OWNERS and "CPT" not in doc.evidence(m.start()):
            return _from_text("publisher", holder, doc, m.start())
    return _empty("publisher")


def _publisher(doc: _Text, kind: str | None, payer: Proposed, hints: dict[str, str]) -> Proposed:
    """A payer policy's payer (policies quote others' copyrights: NCCN, AMA), else a copyright holder,
    else a publisher the corpus already holds named in the text, else the file's author metadata."""
    if kind == "payer-policy" and payer.value:
        named = next(p for p in payers() if p.id == payer.value)
        full = _mentions(doc, (named.name.lower(),))
        return Proposed("publisher", named.name, doc.evidence(doc.best(full)) if full else payer.evidence, "text")
    for found in (_copyright_holder(doc), _known_publisher(doc)):
        if found.value:
            return found
    author = next((hints[k] for k in ("publisher", "author") if str(hints.get(k) or "").strip()), "")
    return Proposed("publisher", _clip(author), _clip(author), "file metadata") if author else _empty("publisher")


# --- line of business, codes ------------------------------------------------------------------------

_LOB_LINE = re.compile(r"(?im)^[\W_]{0,4}lines?\s+of\s+business\s*:[ \t]*(?P<v>[^\n\t]*)")
_APPLIES_LINE = re.compile(r"(?im)^[\W_]{0,4}applies\s+to\s*:[ \t]*(?P<v>[^\n]*)")
_CHECKBOX = re.compile(r"<input\b[^>]{0,200}>", re.I)
_LOB_WORDS = re.compile(r"\b(?:Medicare\s+Advantage|Medicare\s+Part\s+[BD]|Medicare|Medicaid|Commercial|Marketplace|Exchange|HIM/ICHRA|ICHRA"
                        r"|Individual|Employer|Dual\s+Eligible|D-SNP|SNP|CHIP)(?:\s+(?:HMO-POS|HMO|PPO|PFFS|POS|EPO|SNP))?\b")


def _checked_segments(value: str) -> list[str]:
    """The parts of an 'Applies to:' line after a checked box (all of it when it has no boxes)."""
    boxes = list(_CHECKBOX.finditer(value))
    if not boxes:
        return [value]
    ends = [b.start() for b in boxes[1:]] + [len(value)]
    return [value[b.end():end] for b, end in zip(boxes, ends, strict=True) if "checked" in b.group(0).lower()]


def _line_of_business(doc: _Text) -> Proposed:
    """Lines of business only from a line that states them: 'Line of Business:' or 'Applies to:'."""
    if m := _LOB_LINE.search(doc.text):
        parts = tuple(p for p in (x.strip().rstrip(".").strip() for x in re.split(r"[,;]", m["v"])) if p)
        if parts:
            return _from_text("line_of_business", parts, doc, m.start("v"))
    if m := _APPLIES_LINE.search(doc.text):
        found: dict[str, None] = {}
        for segment in _checked_segments(m["v"]):
            for word in _LOB_WORDS.finditer(segment):
                found.setdefault(" ".join(word.group(0).split()), None)
        if found:
            return _from_text("line_of_business", tuple(found), doc, m.start("v"))
    return _empty("line_of_business")


def _codes(doc: _Text) -> Proposed:
    codes = tuple(codes_in(doc.text)[:MAX_CODES])
    if not codes:
        return _empty("codes")
    first = find_codes(doc.text)
    return _from_text("codes", codes, doc, first[0][0] if first else 0)


# --- id ---------------------------------------------------------------------------------------------------

def _derive_id(fields: dict[str, Proposed]) -> Proposed:
    """'<payer>-<product>-policy' for a payer policy, '<product>-<kind>' otherwise, as the corpus names files."""
    kind, payer, items = fields["kind"].value, fields["payer"].value, fields["products"].value
    if not kind or not items:
        return _empty("id")
    product = str(items[0])
    if kind == "payer-policy":
        value = f"{payer}-{product}-policy" if payer else None  # a policy's id names its payer
    else:
        value = f"{product}-{kind}"
    value = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-") if value else None
    return Proposed("id", value, "", "derived") if value and _ID_RE.match(value) else _empty("id")


# --- user overrides ---------------------------------------------------------------------------------------

def _as_product(name: str) -> str:
    match = next((p.id for p in products() if p.is_named(name)), None)
    return match or name


def _as_payer(name: str) -> str:
    key = name.strip().lower()
    return next((p.id for p in payers() if key == p.id or key in p.names), name.strip())


def _override_list(name: str, raw: object) -> tuple[str, ...]:
    if isinstance(raw, str):
        items: list[object] = list(raw.split(","))
    else:
        items = list(raw) if isinstance(raw, (list, tuple)) else [] if raw is None else [raw]
    values = [str(x).strip() for x in items if str(x).strip()]
    if name == "products":
        values = [_as_product(v) for v in values]
    return tuple(dict.fromkeys(values))


def _override_scalar(name: str, raw: object) -> str | None:
    """The user's value, normalised where it is unambiguous (a date typed 9/1/2025, 'Q2 2026', a payer's name)."""
    text = "" if raw is None else str(raw).strip()
    if not text:
        return None
    if name in ("effective", "reviewed", "revised"):
        return read_date(text) or text  # kept as typed when not a date, so problems() names it
    if name == "price_quarter":
        try:
            return str(Quarter.parse(text))
        except QuarterError:
            return text
    if name == "payer":
        return _as_payer(text)
    if name == "kind":
        return re.sub(r"[\s_]+", "-", text.lower())
    return text


# --- the proposal ------------------------------------------------------------------------------------------

_CHECK_PATH = Path("proposal")  # the corpus validators name a file; a proposal has none yet


def _check(validate, *args) -> str | None:
    try:
        validate(*args)
    except DocumentError as exc:
        return exc.problem
    return None


@dataclass(frozen=True)
class Proposal:
    """Every field of FIELDS, proposed with its evidence; what the person confirms or corrects."""

    fields: dict[str, Proposed]

    def value(self, name: str) -> str | tuple[str, ...] | None:
        return self.fields[name].value

    def _text(self, name: str) -> str:
        value = self.value(name)
        return "" if _blank(value) else str(value)

    def problems(self) -> list[str]:
        """One line per required field missing or value the corpus loader would refuse."""
        out = [f"{name}: required, but the text does not give it; set it" for name in REQUIRED if _blank(self.value(name))]
        checks = [self._id_problem(), self._kind_problem(), self._products_problem(), self._payer_problem()]
        checks += [_check(_date_field, self.value(n), n, _CHECK_PATH) for n in ("effective", "reviewed", "revised")]
        checks += [self._quarter_problem(), _check(_str_list, list(self.value("line_of_business") or ()), "line_of_business", _CHECK_PATH)]
        return out + [c for c in checks if c]

    def _id_problem(self) -> str | None:
        doc_id = self._text("id")
        return f"id {doc_id!r} must be lowercase letters, digits and hyphens" if doc_id and not _ID_RE.match(doc_id) else None

    def _kind_problem(self) -> str | None:
        kind = self._text("kind")
        return f"kind {kind!r} must be one of: {', '.join(KINDS)}" if kind and kind not in KINDS else None

    def _products_problem(self) -> str | None:
        unknown = [p for p in self.value("products") or () if p not in known_product_ids()]
        return (f"unknown product(s) {', '.join(unknown)}; add them to sources/reference/products.yaml first" if unknown else None)

    def _payer_problem(self) -> str | None:
        payer = self._text("payer")
        if self._text("kind") == "payer-policy" and not payer:
            return "a payer policy must name its payer"
        if payer and payer not in known_payer_ids():
            return f"unknown payer {payer!r}; add it to sources/reference/payers.yaml first"
        return None

    def _quarter_problem(self) -> str | None:
        quarter = self._text("price_quarter")
        return f"price_quarter must look like 2026Q2, got {quarter!r}" if quarter and not _is_quarter(quarter) else None

    def with_overrides(self, overrides: dict[str, str | list[str]]) -> Proposal:
        """The person's corrections (source 'user'); lists also as 'a,b'. The id follows the
        corrected payer, products and kind unless the person set it."""
        fields = dict(self.fields)
        for name, raw in overrides.items():
            if name not in FIELDS:
                raise ValueError(f"unknown field {name!r}; the fields are: {', '.join(FIELDS)}")
            value = _override_list(name, raw) if name in LIST_FIELDS else _override_scalar(name, raw)
            fields[name] = Proposed(name, value, USER_EVIDENCE, "user")
        if "id" not in overrides and fields["id"].source in ("derived", ""):
            fields["id"] = _derive_id(fields)
        return replace(self, fields=fields)

    def front_matter(self) -> dict:
        """The YAML front matter `index.corpus.parse_document` accepts (payer always, others when given)."""
        meta: dict = {}
        for name in ("id", "title", "publisher", "kind", "products", "payer", "line_of_business", "effective", "reviewed",
                     "price_quarter", "policy_number", "revised", "codes"):
            value = self.value(name)
            if name == "payer" or not _blank(value):
                meta[name] = list(value) if isinstance(value, tuple) else value
        return meta

    def render(self) -> str:
        """A table for the command line: each field, its value and where it came from, then the problems."""
        lines = []
        for name in FIELDS:
            field = self.fields[name]
            label = f"{name + ':':<18}"
            if _blank(field.value):
                lines.append(f"{label}(cleared by you)" if field.source == "user" else f"{label}(not in the text)")
                continue
            value = ", ".join(field.value) if isinstance(field.value, tuple) else field.value
            where = " ".join(field.evidence.split()) or "from payer/products/kind"  # tabs of a table row shown as spaces
            lines.append(f"{label}{value}   <- {where} ({field.source})")
        problems = self.problems()
        lines.append("Problems:" if problems else "No problems: the required metadata are complete.")
        lines += [f"  - {p}" for p in problems]
        return "\n".join(lines)


def propose(text: str, *, file_name: str = "", title_hint: str | None = None, hints: dict[str, str] | None = None) -> Proposal:
    """The metadata the text gives, each with its evidence; a field it does not give is left empty."""
    doc, hints = _Text(str(text)), dict(hints or {})
    title = _title_line(doc)
    fields = {name: _empty(name) for name in FIELDS}
    fields["policy_number"] = _policy_number(doc)
    fields["kind"] = kind = _kind(doc, title)
    fields["products"] = _products(doc, title)
    fields["payer"] = _payer(doc, _scalar(kind))
    fields["publisher"] = _publisher(doc, _scalar(kind), fields["payer"], hints)
    fields["line_of_business"] = _line_of_business(doc)
    fields["effective"], fields["reviewed"], fields["revised"] = _effective(doc), _reviewed(doc), _revised(doc)
    fields["price_quarter"] = _price_quarter(doc)
    fields["codes"] = _codes(doc)
    hint = title_hint if title_hint and title_hint.strip() else str(hints.get("title") or "")
    fields["title"] = _title(doc, title, fields, hint, file_name)
    fields["id"] = _derive_id(fields)
    return Proposal(fields)
