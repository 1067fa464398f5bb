"""Notes for an answer: sources that disagree, and codes a source uses that have since been retired.

The facts live in reference data (`conflicts.yaml`, `hcpcs.yaml`), each side quoted from its
document with the document's date; this module only decides which notes an answer needs.
"""

from __future__ import annotations

import re

from assistant import config
from assistant.answer import Citation
from assistant.core.question import Question
from assistant.core.reference import load_reference
from index.corpus import cached_corpus


def _doc_label(doc_id: str, docs: dict) -> str:
    d = docs.get(doc_id)
    if d is None:
        return doc_id
    dates = ", ".join(x for x in (f"effective {d.effective}" if d.effective else "",
                                  f"reviewed {d.reviewed}" if d.reviewed else "") if x)
    return f"{d.title}" + (f" ({dates})" if dates else "")


def conflict_notes(q: Question, citations: list[Citation], exclude: set[str] = frozenset()) -> list[str]:
    """A note per known disagreement the question or its cited passages touch."""
    cfg = config.load()
    docs = cached_corpus(cfg.sources_dir, cfg.reference_dir).documents
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


def retired_code_notes(texts: list[str]) -> list[str]:
    """A note per retired code quoted in the answer, naming what replaced it.

    Codes are looked for literally (the sources glue them to the next word: "0540TCAR-T")."""
    ref = load_reference()
    text = " ".join(texts)

    def present(code: str) -> bool:
        return re.search(rf"(?<![0-9A-Z]){re.escape(code)}", text) is not None

    notes = []
    retired_cpt = {c: row for c, row in ref.cpt.items() if row.status == "retired"}
    if any(present(c) for c in retired_cpt):
        pairs = ", ".join(f"{c} → {row.replacement}" for c, row in sorted(retired_cpt.items()))
        notes.append("Retired codes: the Category III CAR-T codes were deleted on January 1, 2025 and "
                     f"replaced by Category I codes ({pairs}). The source still uses the old codes; "
                     "bill the current ones.")
    if present("0541T") and "0541T" in ref.cpt:
        notes.append("0541T: " + ref.cpt["0541T"].note)
    for code, row in sorted(ref.hcpcs.items()):
        if row.status == "retired" and present(code):
            notes.append(f"Retired code: {code} ({row.descriptor}) — {row.note} "
                         f"Replacements: {', '.join(row.replaced_by)}.")
    return notes
