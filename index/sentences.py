"""The sentences of a chunk, and their vectors stored at build time for the answer's ranking.

The default composer quotes single sentences, chosen by how well each answers the question.
Word overlap alone picks a sentence that shares words with the question over one that says the
same thing in the documents' wording ("toci dose for CRS" vs "tocilizumab 8 mg/kg"); the
embedding model's similarity catches that. Embedding a turn's ~40 candidate sentences would cost
more than the rest of the answer, so every sentence is embedded once, at build time, into a
Chroma collection beside the chunks (same build, same atomic swap), keyed by its text's hash.
"""

from __future__ import annotations

import hashlib
import re

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[A-Z(\"'#•\-\d])|\n+")
MIN_CHARS = 12
MAX_CHARS = 420  # longer spans are paragraphs glued by extraction: never quoted as one sentence
COLLECTION_SUFFIX = "__sentences"  # the sentence collection of build collection X is X + this
VERSION = "sentences-v1"  # part of the corpus hash: an index built before sentence vectors is rebuilt


def sentence_spans(quote: str, span: tuple[int, int], chunk_type: str) -> list[tuple[int, int]]:
    """Document spans of the sentences/lines of a passage (`quote` is the text of `span`;
    a table row stays whole)."""
    if chunk_type == "table_row":
        return [span]
    cuts, last = [], 0
    for m in _SENTENCE_END.finditer(quote):
        cuts.append((last, m.start()))
        last = m.end()
    cuts.append((last, len(quote)))
    out = []
    for a, b in cuts:
        seg = quote[a:b]
        lead = len(seg) - len(seg.lstrip())
        a, b = a + lead, a + len(seg.rstrip())
        if b - a >= MIN_CHARS:
            out.append((span[0] + a, span[0] + b))
    return out


def quotable_sentences(quote: str, span: tuple[int, int], chunk_type: str) -> list[tuple[int, int, str]]:
    """(start, end, text) of the sentences a composer may quote: not longer than MAX_CHARS."""
    out = []
    for a, b in sentence_spans(quote, span, chunk_type):
        text = quote[a - span[0]:b - span[0]]
        if len(text) <= MAX_CHARS:
            out.append((a, b, text))
    return out


def sentence_id(text: str) -> str:
    """A sentence's key in the sentence collection: its text's hash (one vector per wording)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
