"""Notes for an answer: sources that disagree, and codes a source uses that have since been retired.

The facts live in reference data (`conflicts.yaml`, `hcpcs.yaml`), each side quoted from its
document with the document's date; this module only decides which notes an answer needs.
"""

from __future__ import annotations

import datetime as dt
import re

from assistant.answer import Citation
from assistant.core.question import Question
from assistant.core.reference import load_reference
from index.codes import codes_in
from index.corpus import configured_corpus


def _doc_label(doc_id: str, docs: dict) -> str:
    d = docs.get(doc_id)
    if d is None:
        return doc_id
    dates = ", ".join(x for x in (f"effective {d.effective}" if d.effective else "",
                                  f"reviewed {d.reviewed}" if d.reviewed else "") if x)
    return f"{d.title}" + (f" ({dates})" if dates else "")


def conflict_notes(q: Question, citations: list[Citation], exclude: set[str] = frozenset()) -> list[str]:
    """A note per known disagreement the question or its cited passages touch."""
    docs = configured_corpus().documents
    quotes = " ".join(c.quote for c in citations)
    notes = []
    for c in load_reference().conflicts:
        if c["id"] in exclude:
            continue
        when = c.get("when") or {}
        hit_q = bool(when.get("q")) and re.search(when["q"], q.text, re.I)
        hit_quotes = bool(when.get("quotes")) and re.search(when["quotes"], quotes)
        products = set(c.get("products") or [])
        # about other products, or (naming none) not about this topic's passages
        if products and (not products & set(q.products) if q.products else not hit_quotes):
            continue
        # about another indication: the question's, or (naming none) its passages'
        if c.get("indication") and q.indication != c["indication"] and (q.indication or not hit_quotes):
            continue
        if not (hit_q or (hit_quotes and c.get("quotes_alone"))):
            continue
        sides = [s for s in c["sides"] if not s.get("products") or not q.products
                 or set(s["products"]) & set(q.products)]
        said = "; ".join(f"{_doc_label(s['doc'], docs)} says “{s['quote']}”" for s in sides)
        notes.append(f"Sources disagree on {c['topic']}: {said}. Reference: {c['reference']} {c['newer']}")
    return notes


# a code or a range of codes; "0537TChimeric" (glued to the next word) is one too
_CODE_RANGE = re.compile(r"(?<![0-9A-Z])([0-9]{4}T|[A-Z][0-9]{4})(?:\s*[-–]\s*([0-9]{4}T|[A-Z][0-9]{4}))?(?![0-9a-z])")


_PCS_CODE = re.compile(r"(?<![0-9A-Z])XW0[0-9A-Z]{4}")  # seven characters, glued or not ("XW033C3Introduction")


def retired_code_notes(texts: list[str], day: dt.date) -> list[str]:
    """A note per code quoted in the answer that changed: replaced before the date of service
    (bill the replacement), or still in force on it (and when it was replaced). About the date of
    service, not today: J9070 on a 2023 claim is right, on a 2025 claim it is not.

    Codes are looked for literally (the sources glue them to the next word: "0540TCAR-T")."""
    ref = load_reference()
    text = " ".join(texts)
    in_ranges = set(codes_in(text))  # a range ("0537T-0541T") names every code inside it

    def present(code: str) -> bool:
        return code in in_ranges or re.search(rf"(?<![0-9A-Z]){re.escape(code)}", text) is not None

    notes = []
    changed_cpt = {c: row for c, row in ref.cpt.items() if row.valid_to and present(c)}
    if changed_cpt:
        notes.append(_cpt_note(changed_cpt, day))
    if present("0541T") and "0541T" in ref.cpt:
        notes.append("0541T: " + ref.cpt["0541T"].note)
    for code, row in sorted(ref.hcpcs.items()):
        if row.valid_to and present(code):
            notes.append(_hcpcs_note(code, row, day))
    for code, row in sorted(ref.pcs.items()):  # "XW033C3 ... drives MS-DRG 018" on a 2026 discharge
        if row.valid_to and row.valid_to < day and present(code):
            notes.append(f"Retired code: ICD-10-PCS {code} ({row.descriptor}) is for discharges through "
                         f"{row.valid_to.isoformat()}, not one on {day.isoformat()}; since then the product's own code: "
                         f"{', '.join(row.replaced_by)}.")
    return notes


def mark_retired(text: str, day: dt.date) -> str:
    """A lead that shows a source's row or sentence keeps its codes, and each code (or range)
    retired before the date of service says so where a coder copies it: "0537T-0541T [retired
    for this date of service: see the note]". The replacement and its date are in the note
    (retired_code_notes), the exact source text in the citation; the mark adds no number."""
    ref = load_reference()
    rows = {**ref.hcpcs, **ref.cpt}

    def marker(table: dict, group: int):
        def mark(m: re.Match[str]) -> str:
            row = table.get(m.group(group))
            # marked once: the string being substituted, not `text` (the first pass moved the offsets)
            if row is None or not row.valid_to or row.valid_to >= day or m.string.startswith(" [retired", m.end()):
                return m.group(0)
            return f"{m.group(0)} [retired for this date of service: see the note]"
        return mark

    return _PCS_CODE.sub(marker(ref.pcs, 0), _CODE_RANGE.sub(marker(rows, 1), text))


def outdated_conflicts(quote: str) -> list[str]:
    """The conflicts (ids) of which this quote is an outdated side ("ABECMA REMS required")."""
    squeezed = " ".join(quote.split())
    return [c["id"] for c in load_reference().conflicts
            for side in c["sides"] if side.get("outdated") and (side["quote"] in squeezed or squeezed in side["quote"])]


def mark_quoted(text: str, quote: str, day: dt.date) -> str:
    """A supporting passage as shown under a current fact: its retired codes marked, and marked
    outdated when it is the outdated side of a known conflict (the note says what holds), so the
    text below a lead never states the old fact as if it held."""
    text = mark_retired(text, day)
    return text + " [outdated: see the note]" if outdated_conflicts(quote) else text


def _cpt_note(changed: dict, day: dt.date) -> str:
    pairs = ", ".join(f"{c} → {row.replacement}" for c, row in sorted(changed.items()))
    end = min(row.valid_to for row in changed.values())
    start = end + dt.timedelta(days=1)
    if day > end:
        return (f"Retired codes: the Category III CAR-T codes were deleted on {start:%B} {start.day}, {start.year} and "
                f"replaced by Category I codes ({pairs}). The source still uses the old codes; for a date of service of "
                f"{day.isoformat()} bill the new ones.")
    return (f"For a date of service of {day.isoformat()} the Category III CAR-T codes the source uses are still in force "
            f"(through {end.isoformat()}); from {start:%B} {start.day}, {start.year} they are replaced ({pairs}).")


def _hcpcs_note(code: str, row, day: dt.date) -> str:
    if day > row.valid_to:
        return (f"Retired code: {code} ({row.descriptor}) was in force through {row.valid_to.isoformat()}, so not for "
                f"a date of service of {day.isoformat()} — {row.note} Replacements: {', '.join(row.replaced_by)}.")
    return (f"{code} is the code in force on {day.isoformat()} (through {row.valid_to.isoformat()}); from "
            f"{(row.valid_to + dt.timedelta(days=1)).isoformat()} it is {row.replacement} or a manufacturer-specific code.")
