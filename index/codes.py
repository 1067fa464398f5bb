"""Billing codes in text, and the code-aware tokenizer the lexical index and queries share.

Flattened tables glue codes to words ("vicleucelQ2055CAR-T", "38206Blood-derived",
"D89.831 - D89.835Cytokine"), so the patterns tolerate a letter on either side where a normal
word boundary would miss the code. Codes are kept whole as tokens (a generic tokenizer would cut
"D89.833" into "d89" and "833" and "57894-502-XX" into three numbers).
"""

from __future__ import annotations

import re
from functools import lru_cache

# Order matters: the longest, most specific shapes first.
CODE_PATTERN = re.compile(
    r"""
    (?P<ndc>(?<![\d-])\d{4,5}-\d{3,4}-(?:\d{1,2}|XX|xx)(?![\d]))
  | (?P<drg>(?<![A-Za-z])MS-DRG[ \u00a0]?\d{3}(?!\d))
  | (?P<pcs>(?<![0-9A-Z])(?=[0-9A-Z]*\d[0-9A-Z]*\d[0-9A-Z]*\d)(?=[0-9A-Z]*[A-Z])[0-9A-HJ-NP-Z]{7}(?![0-9]|[A-Z](?![a-z])))
  | (?P<hcpcs>(?<![A-Z0-9])[A-V]\d{4}(?![0-9]))
  | (?P<cpt3>(?<![0-9A-Za-z.,$])\d{4}[TF](?![0-9]|[A-Z](?![a-z])))
  | (?P<icd>(?<![A-Z0-9])[A-TV-Z]\d{2}(?:\.[0-9A-Zx]{1,4}(?![0-9a-wyz])|(?![0-9.])))
  | (?P<icd_glued>(?<=[A-Z]{2})[A-TV-Z]\d{2}\.[0-9A-Zx]{1,4}(?![0-9a-wyz]))
  | (?P<cpt>(?<![0-9A-Za-z.,$/-])\d{5}(?![0-9]|[.,]\d|-\d))
    """,
    re.VERBOSE,
)

_RANGE_RE = re.compile(r"([A-Z]?\d{2,4}(?:\.\d{1,3})?[A-Z]?)\s*[-–]\s*([A-Z]?\d{2,4}(?:\.\d{1,3})?[A-Z]?)(?![a-z])")


def find_codes(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, kind, code) for every code in text, in order."""
    return list(_find_codes(text))


@lru_cache(maxsize=32768)
def _find_codes(text: str) -> tuple[tuple[int, int, str, str], ...]:
    """Cached: the composer scans the same corpus sentences on every answer."""
    out = []
    for m in CODE_PATTERN.finditer(text):
        kind = (m.lastgroup or "code").removesuffix("_glued")
        code = m.group(0).replace("\u00a0", " ")
        if kind == "drg":
            code = "MS-DRG " + code[-3:]
        out.append((m.start(), m.end(), kind, code))
    return tuple(out)


def codes_in(text: str) -> list[str]:
    """Distinct codes a text mentions (including those inside ranges like 0537T-0541T)."""
    seen: dict[str, None] = {}
    for _, _, _, code in find_codes(text):
        seen.setdefault(code, None)
    for code in _range_members(text):
        seen.setdefault(code, None)
    return list(seen)


def _range_members(text: str) -> list[str]:
    """Codes implied by a range ("0537T-0541T" -> 0538T, 0539T, 0540T), at most 10 steps."""
    out = []
    for m in _RANGE_RE.finditer(text):
        a, b = m.group(1), m.group(2)
        pa = re.match(r"^(.*?)(\d+)([A-Z]?)$", a)
        pb = re.match(r"^(.*?)(\d+)([A-Z]?)$", b)
        if not pa or not pb or pa.group(1) != pb.group(1) or pa.group(3) != pb.group(3):
            continue
        if len(pa.group(2)) != len(pb.group(2)):
            continue
        lo, hi = int(pa.group(2)), int(pb.group(2))
        if not 0 < hi - lo <= 10:
            continue
        if not find_codes(a) or not find_codes(b):
            continue
        width = len(pa.group(2))
        out.extend(f"{pa.group(1)}{n:0{width}d}{pa.group(3)}" for n in range(lo + 1, hi))
    return out


_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?")
STOPWORDS = frozenset(
    "a an and are as at be but by for from has have how i if in into is it its of on or per "
    "the their them then there these they this to was what when where which who why will with "
    "does do did can could should would my our your we you all about any".split()
)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # PyStemmer, a dependency of the BM25 integration

    return Stemmer.Stemmer("english")


def code_tokens(code: str) -> list[str]:
    """A code's own token plus the family tokens a user may type instead."""
    c = code.lower().replace(" ", "-")
    tokens = [c]
    if c.startswith("ms-drg-"):
        tokens += ["drg", c[-3:]]
    elif re.match(r"^[a-z]\d{2}\.", c):  # ICD-10-CM: the category (D89) finds D89.831 too
        tokens.append(c.split(".")[0])
    elif re.match(r"^\d{4,5}-", c):  # NDC: the labeler alone
        tokens.append(c.split("-")[0])
    return tokens


def _word_tokens(text: str) -> list[str]:
    stem = _stemmer().stemWord
    out = []
    for w in _WORD_RE.findall(text):
        low = w.lower()
        if low in STOPWORDS:
            # "ALL" (acute lymphoblastic leukemia) is not the word "all"
            if w.isupper() and len(w) > 1:
                out.append(low + "_")
            continue
        out.append(stem(low))
    return out


def tokenize(text: str) -> list[str]:
    """Lowercase tokens for BM25: codes whole (plus family tokens), words stemmed, stopwords out.

    Applied to passages and questions alike, after normalization has split glued words.
    """
    tokens: list[str] = []
    pos = 0
    for start, end, _kind, code in find_codes(text):
        tokens += _word_tokens(text[pos:start])
        tokens += code_tokens(code)
        pos = end
    tokens += _word_tokens(text[pos:])
    tokens += [t for code in _range_members(text) for t in code_tokens(code)]
    return tokens
