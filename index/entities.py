"""Products and payers a text mentions, from the names in `sources/reference/`.

The same matcher tags chunks at index time (which products a passage mentions) and reads
questions at query time (which product the user means), so both sides agree on what "ide-cel",
"Q2055" or "Abecma" refer to. Only questions get typo tolerance: a passage is tagged by what it
literally says.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache

from assistant.core.reference import Payer, Product, load_reference

__all__ = ["Payer", "Product", "products", "payers", "product", "known_product_ids", "known_payer_ids",
           "products_in", "payers_in", "products_in_question"]


def products() -> tuple[Product, ...]:
    return load_reference().products


def payers() -> tuple[Payer, ...]:
    return load_reference().payers


def known_product_ids() -> set[str]:
    return {p.id for p in products()}


def known_payer_ids() -> set[str]:
    return {p.id for p in payers()}


def product(product_id: str) -> Product | None:
    return load_reference().product_by_id(product_id)


@lru_cache(maxsize=1024)  # one per product/payer: a small cache thrashed on every question
def _name_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    # Names may be glued to codes/words in flattened tables ("vicleucelQ2055CAR-T"), so the
    # boundary is "not a lowercase letter" rather than \b, and matching is case-insensitive
    # only for the lowercase-letter guard's sake on the outside.
    alts = "|".join(re.escape(n) for n in names)
    return re.compile(rf"(?<![a-z])(?:{alts})(?![a-z])", re.IGNORECASE)


def _mentions(text: str, table) -> list[str]:
    found: list[str] = []
    for item in table:
        if _name_pattern(item.names).search(text):
            found.append(item.id)
    return found


def products_in(text: str) -> list[str]:
    """Ids of products a passage names (brand, generic, short name or Q/J-code)."""
    return _mentions(text, products())


def payers_in(text: str) -> list[str]:
    return _mentions(text, payers())


_WORD_RE = re.compile(r"[A-Za-z][A-Za-z-]{4,}")


def products_in_question(text: str) -> list[str]:
    """Like products_in, plus typo tolerance for brand/generic words ("carvyktii", "tecartis")."""
    found = products_in(text)
    vocab: dict[str, str | None] = {}
    for p in products():
        for name in (p.brand.lower(), *p.generic.lower().split()):
            if len(name) >= 6:
                # a word two products share ("autoleucel") identifies neither
                vocab[name] = p.id if vocab.get(name, p.id) == p.id else None
    vocab = {k: v for k, v in vocab.items() if v}
    for word in _WORD_RE.findall(text):
        match = difflib.get_close_matches(word.lower(), vocab, n=1, cutoff=0.8)  # "abcema": 0.83
        if match and vocab[match[0]] not in found:
            found.append(vocab[match[0]])
    return found
