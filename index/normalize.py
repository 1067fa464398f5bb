"""Repair text-extraction damage for search without changing what is quoted.

Normalization only ever inserts spaces where extraction glued two tokens together, so the
original is fully recoverable and every character of the normalized text maps back to an
offset in the original. Search (embeddings, BM25) sees the normalized form; quotes and spans
always come from the original.
"""

from __future__ import annotations

import re
from functools import lru_cache

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


def _glue_key() -> tuple[tuple[str, str], ...]:
    """The (brand, generic's first word) pairs the product glue is made of: the caches below
    are keyed by them, so a change of the reference products is never answered from an old cache."""
    from index.entities import products

    return tuple((p.brand, p.generic.split()[0]) for p in products())


@lru_cache(maxsize=4)
def _product_glue_for(key: tuple[tuple[str, str], ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(re.escape(brand) + r"(?=" + re.escape(generic) + ")") for brand, generic in key)


def _product_glue() -> tuple[re.Pattern[str], ...]:
    """Brand glued to its generic name in flattened tables ("Abecmaidecabtagene")."""
    return _product_glue_for(_glue_key())


def glue_points(text: str) -> list[int]:
    """Offsets in `text` before which a space should be inserted."""
    return list(_glue_points(text, _glue_key()))


@lru_cache(maxsize=32768)
def _glue_points(text: str, key: tuple[tuple[str, str], ...]) -> tuple[int, ...]:
    """Cached: the composer reads the same corpus sentences on every answer (~100 per turn)."""
    points: set[int] = set()
    protected: list[tuple[int, int]] = []
    for start, end, _kind, _code in find_codes(text):
        protected.append((start, end))
        if start > 0 and text[start - 1].isalnum():
            points.add(start)
        if end < len(text) and text[end].isalpha():
            points.add(end)
    inside = lambda i: any(s < i < e for s, e in protected)  # noqa: E731
    for pattern in [*_GLUE, *_product_glue_for(key)]:
        for m in pattern.finditer(text):
            if not inside(m.end()):
                points.add(m.end())
    return tuple(sorted(p for p in points if 0 < p < len(text)))


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
