"""Leads chosen by what the question asks, not by the top retrieved sentence.

A coder copies the first line, so where the question's setting or answer type decides the
answer, the lead says that answer in one sentence and quotes the passage that states it; the
other retrieved sentences follow as support.
"""

from __future__ import annotations

import re

from assistant.core.question import Question
from assistant.core.reference import Reference
from assistant.extract import Sentence, split_sentences
from assistant.retrieval import Passage

_DRG = re.compile(r"MS-DRG\s*018", re.I)
_BUNDLED = re.compile(r"bundl|not separately payable|informational|within|DRG payment", re.I)


def setting_answer(q: Question, passages: list[Passage], ref: Reference) -> tuple[Sentence, str] | None:
    """'What does Medicare pay for Q2055 on an inpatient stay?': not its Part B payment limit.
    The product is paid within MS-DRG 018; lead with that, quoting the passage that says it."""
    if q.setting != "inpatient" or "payment" not in q.intents or any(p not in ("medicare",) for p in q.payers):
        return None
    prods = [ref.product_by_id(pid) for pid in q.products] or [ref.product(c) for c in q.codes]
    prod = next((p for p in prods if p is not None and p.hcpcs), None)
    if prod is None:
        return None
    best: tuple[int, Sentence] | None = None
    for p in passages:
        for a, b in split_sentences(p):
            text = p.quote[a - p.span[0]:b - p.span[0]]
            if not _DRG.search(text) or len(text) > 420:
                continue
            rank = (2 * (prod.hcpcs in text) + (prod.brand in text) + 2 * bool(_BUNDLED.search(text))
                    + (prod.id in p.products))
            if best is None or rank > best[0]:
                best = (rank, Sentence(p, a, b, text, 99.0))
    if best is None:
        return None
    sentence = best[1]
    return sentence, (f"**Inpatient: Medicare does not pay {prod.hcpcs} ({prod.brand}) at its Part B payment limit; the "
                      f"stay is paid under MS-DRG 018, which includes the product.** The payment limit applies to an "
                      f"outpatient claim. \"{' '.join(sentence.text.split())}\"")
