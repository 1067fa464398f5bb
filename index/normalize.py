"""Repair text-extraction damage for search without changing what is quoted.

Normalization only ever inserts spaces where extraction glued two tokens together, so the
original is fully recoverable and every character of the normalized text maps back to an
offset in the original. Search (embeddings, BM25) sees the normalized form; quotes and spans
always come from the original.
"""

from __future__ import annotations

import re

from index.codes import find_codes

NORMALIZER_VERSION = "1"

# Glue points between words, as regexes whose match end is where a space belongs.
_GLUE = [
    re.compile(r"[a-z]{2}(?=[A-Z][a-z]{2})"),   # CodeDescription, ApheresisOutpatient
    re.compile(r"[a-z]{3}(?=[A-Z]{2})"),        # PayerPA, immunotherapyCAR
    re.compile(r"[A-Z]{2}(?=[A-Z][a-z]{2})"),   # HCPCSClass, REMSProgram
    re.compile(r"[0-9](?=[A-Z][a-z]{2})"),      # 38206Blood, 6A550Z2Apheresis
    re.compile(r"[)\]](?=[A-Za-z0-9])"),        # (office)Cellular
    re.compile(r"[a-z)][.;](?=[A-Z][a-z])"),    # page).Updated
    re.compile(r"[a-z]:(?=[A-Za-z])"),          # policies:verified, data:Q2
    re.compile(r"CAR-T(?=[A-Z0-9])"),           # CAR-TBCMA (the class column run into the next)
]


def _product_glue() -> list[re.Pattern[str]]:
    """Brand glued to its generic name in flattened tables ("Abecmaidecabtagene")."""
    from index.entities import products

    return [re.compile(re.escape(p.brand) + r"(?=" + re.escape(p.generic.split()[0]) + ")")
            for p in products()]


def glue_points(text: str) -> list[int]:
    """Offsets in `text` before which a space should be inserted."""
    points: set[int] = set()
    protected: list[tuple[int, int]] = []
    for start, end, _kind, _code in find_codes(text):
        protected.append((start, end))
        if start > 0 and text[start - 1].isalnum():
            points.add(start)
        if end < len(text) and text[end].isalpha():
            points.add(end)
    inside = lambda i: any(s < i < e for s, e in protected)  # noqa: E731
    for pattern in [*_GLUE, *_product_glue()]:
        for m in pattern.finditer(text):
            if not inside(m.end()):
                points.add(m.end())
    return sorted(p for p in points if 0 < p < len(text))


def normalize_with_map(text: str) -> tuple[str, list[int]]:
    """(normalized text, offsets): offsets[i] is the original offset of normalized char i.

    An inserted space maps to the offset of the character after it.
    """
    out: list[str] = []
    offsets: list[int] = []
    last = 0
    for p in glue_points(text):
        out.append(text[last:p])
        offsets.extend(range(last, p))
        out.append(" ")
        offsets.append(p)
        last = p
    out.append(text[last:])
    offsets.extend(range(last, len(text)))
    return "".join(out), offsets


def normalize(text: str) -> str:
    return normalize_with_map(text)[0]
