"""Shared look-ups into dosing.yaml: product + indication -> rule, with clerk-friendly errors."""

from __future__ import annotations

from typing import Any

from assistant.core.reference import Product, Reference
from assistant.tools._inputs import to_text
from assistant.tools.errors import CalcError

INDICATION_ALIASES = {
    "mm": "mm", "myeloma": "mm", "multiplemyeloma": "mm", "rrmm": "mm",
    "mcl": "mcl", "mantlecell": "mcl", "mantlecelllymphoma": "mcl", "rrmcl": "mcl",
    "all": "all", "ball": "all", "acutelymphoblasticleukemia": "all", "acutelymphoblasticleukaemia": "all",
    "bcellprecursorall": "all", "bprecursorall": "all", "adultall": "all", "adultball": "all",
}


def resolve_product(name: str, ref: Reference) -> Product:
    """Product by any of its names or its HCPCS code; CalcError naming the known products."""
    found = ref.product(name)
    if found is None:
        known = ", ".join(p.brand for p in ref.products)
        raise CalcError(f"I don't know the product '{name}'. Known products: {known}.", field="product")
    return found


def product_rules(product: Any, indication: Any, ref: Reference) -> tuple[Product, str, dict]:
    """(product, indication key, indication rules) or CalcError."""
    prod = resolve_product(to_text(product, "product"), ref)
    rules = ref.dosing_products().get(prod.id)
    if not rules:
        have = ", ".join(sorted(ref.dosing_products()))
        raise CalcError(f"There is no dose rule for {prod.brand} in the reference data (have: {have}).", field="product")
    indications = rules.get("indications") or {}
    if indication is None or (isinstance(indication, str) and not indication.strip()):
        if len(indications) == 1:
            key = next(iter(indications))
            return prod, key, indications[key]
        opts = ", ".join(f"{k} ({v.get('name', '')})" for k, v in indications.items())
        raise CalcError(f"{prod.brand} has more than one indication with different doses; say which: {opts}.", field="indication")
    raw = to_text(indication, "indication")
    norm = "".join(ch for ch in raw.lower() if ch.isalnum())
    key = INDICATION_ALIASES.get(norm, norm)
    if key not in indications:
        opts = ", ".join(f"{k} ({v.get('name', '')})" for k, v in indications.items())
        raise CalcError(f"{prod.brand} has no '{raw}' indication in the reference data. Its indications: {opts}.", field="indication")
    return prod, key, indications[key]
