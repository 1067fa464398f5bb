"""NDC normalisation (10 -> 11 digits, 5-4-2) and NDC / labeler -> product and HCPCS.

Looks in (a) the CMS NDC-HCPCS crosswalk when imported (reference/crosswalk/*.csv), (b) the
crosswalk NDCs recorded in products.yaml, and (c) the NDCs and labelers as the source documents
give them — which differ for some products. The result says which matched, so a clerk sees when a
guide's NDC is not the crosswalk's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

from assistant.core.ndc import NdcError, digits
from assistant.core.ndc import normalize_ndc as _normalize
from assistant.core.reference import Reference, get_reference
from assistant.tools._inputs import to_text
from assistant.tools.component import Calculator, Number, Plan, Text, param
from assistant.tools.errors import CalcError
from assistant.tools.planning import Planning, backed_by
from assistant.tools.result import ToolResult, cite


def normalize_ndc(text: Any) -> tuple[str, str]:
    """(11-digit 5-4-2 with hyphens, the input's layout) or CalcError (one normalizer: core.ndc)."""
    raw = to_text(text, "ndc", "NDC")
    try:
        return _normalize(raw)
    except NdcError as exc:
        raise CalcError(str(exc), field="ndc") from None


_digits = digits


def ndc(ndc: Annotated[Text, param("NDC (hyphenated 10-digit, or 11-digit) or 5-digit labeler", label="NDC or labeler",
                                   example="71287-119-01")],
        product: Annotated[Text, param("With a labeler: the product whose NDCs are asked ('carvykti ndc')",
                                       form=False)] = None,
        vial_mg: Annotated[Number | None, param("With a product: the vial size in mg ('tecvayli 153 mg vial'): picks "
                                                "its NDC by the crosswalk's billing units per package", form=False)] = None,
        reference: Reference | None = None) -> ToolResult:
    """Normalise an NDC and find its product and HCPCS code; a 5-digit labeler lists candidates
    (or, with `product`, that product's NDCs)."""
    ref = get_reference(reference)
    raw = to_text(ndc, "ndc", "NDC")
    if re.fullmatch(r"\d{5}", raw.strip()):
        asked = _Asked(raw=raw, ndc11=None, layout="labeler", labeler=raw.strip(), product_code=None)
    else:
        ndc11, layout = normalize_ndc(raw)
        asked = _Asked(raw=raw, ndc11=ndc11, layout=layout, labeler=ndc11[:5], product_code=ndc11[6:10])
    found = _Found()
    _crosswalk_matches(asked, ref, found)
    _reference_matches(asked, ref, found)
    _source_matches(asked, ref, found)
    wanted = ref.product(product) if product else None
    if wanted is not None and asked.labeler_only:  # "carvykti ndc": that product's rows of its labeler
        found.matches = [m for m in found.matches if m.get("product") == wanted.id]
    products = sorted({m["product"] for m in found.matches if m.get("product")})
    if asked.labeler_only and len(products) > 1:
        found.warnings.append(f"Labeler {asked.labeler} carries more than one product ({', '.join(products)}): "
                              "give the full NDC to pick one.")
    assumptions = []
    if not ref.crosswalk:
        assumptions.append("The CMS NDC-HCPCS crosswalk is not imported: matched against the NDCs recorded in the "
                           "reference data and the documents only.")
    found.citations.append(cite("formulas#ndc", "NDC 10 → 11 digits (5-4-2, N4 qualifier): the 11-digit format the CMS "
                                "NDC-HCPCS crosswalk and claims use",
                                "4-4-2 gets a leading zero on the labeler; 5-3-2 a leading zero on the product; "
                                "5-4-1 a leading zero on the package."))
    summary, formula = _summary(asked, found.matches, wanted.brand if wanted else None)
    if not asked.labeler_only and (absent := _not_in_crosswalk(asked, found.matches, ref)):
        summary = absent  # a guide's NDC the crosswalk does not list: said first, with the crosswalk's NDCs
    elif asked.labeler_only and (other := _labeler_not_listed(asked, found.matches, ref)):
        summary = other  # "breyanzi labeler 73154": the guide's slip is not repeated as the answer
    elif asked.labeler_only and wanted is not None and vial_mg is not None and (vial := _vial(found.matches, ref, vial_mg, wanted.brand)):
        summary, formula = vial
    return ToolResult(name="ndc", inputs={"ndc": raw, "product": product},
                      values={"ndc11": asked.ndc11, "layout": asked.layout, "labeler": asked.labeler,
                              "claim_format": f"N4{_digits(asked.ndc11)}" if asked.ndc11 else None,
                              "matches": found.matches, "products": products},
                      summary=summary, formula=formula, assumptions=assumptions, warnings=found.warnings,
                      citations=found.citations)


@dataclass(frozen=True)
class _Asked:
    """What was asked: a full NDC (normalized) or a labeler only."""

    raw: str
    ndc11: str | None
    layout: str
    labeler: str
    product_code: str | None

    @property
    def labeler_only(self) -> bool:
        return self.ndc11 is None

    @property
    def match_kind(self) -> str:
        return "labeler" if self.labeler_only else "exact"


@dataclass
class _Found:
    matches: list[dict] = field(default_factory=list)
    citations: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _crosswalk_matches(asked: _Asked, ref: Reference, found: _Found) -> None:
    """(a) The CMS crosswalk, if imported."""
    for row in ref.crosswalk:
        d = _digits(row.ndc11)
        if not (d[:5] == asked.labeler if asked.labeler_only else d == _digits(asked.ndc11)):
            continue
        prod = ref.product(row.hcpcs)
        found.matches.append({"match": asked.match_kind, "source": "cms-crosswalk", "ndc11": row.ndc11, "hcpcs": row.hcpcs,
                              "product": prod.id if prod else None, "drug_name": row.drug_name,
                              "labeler_name": row.labeler_name, "billunits_per_pkg": row.billunitspkg,
                              "quarter": row.quarter})
        found.citations.append(cite(f"crosswalk/{row.file}#{row.ndc11}",
                                    f"CMS NDC-HCPCS crosswalk {row.quarter}: {row.ndc11} → {row.hcpcs}",
                                    f"{row.drug_name}, {row.labeler_name}"))


def _reference_matches(asked: _Asked, ref: Reference, found: _Found) -> None:
    """(b) The crosswalk NDCs recorded in the reference data."""
    reference_rows = ref.ndc.get("reference") or {}
    for row in reference_rows.get("rows") or []:
        ndcs = [_digits(x) for x in row.get("ndc11") or []]
        hit = (row.get("labeler") == asked.labeler) if asked.labeler_only else _digits(asked.ndc11) in ndcs
        if not hit or any(m["source"] == "cms-crosswalk" and m["hcpcs"] == row["hcpcs"] for m in found.matches):
            continue
        found.matches.append({"match": asked.match_kind, "source": "reference", "ndc11": asked.ndc11,
                              "hcpcs": row["hcpcs"], "product": row["product"], "labeler_name": row.get("labeler_name"),
                              "known_ndcs": row.get("ndc11")})
        found.citations.append(cite(f"products.yaml#ndc.{row['product']}",
                                    f"{row['product']} NDCs {', '.join(row.get('ndc11') or []) or '(labeler)'}",
                                    str(reference_rows.get("cite", ""))))


def _source_matches(asked: _Asked, ref: Reference, found: _Found) -> None:
    """(c) NDCs and labelers as the source documents give them, with where they differ."""
    known_rows = (ref.ndc.get("reference") or {}).get("rows") or []
    for src in ref.ndc.get("sources") or []:
        pattern, src_lab = src.get("pattern"), src.get("labeler")
        if asked.labeler_only:
            hit = src_lab == asked.labeler
        else:
            hit = bool(pattern) and _pattern_prefix(pattern) == asked.labeler + asked.product_code
        if not hit:
            continue
        found.matches.append({"match": "labeler" if asked.labeler_only else "source-pattern", "source": f"doc:{src['doc']}",
                              "pattern": pattern, "hcpcs": src["hcpcs"], "product": src["product"]})
        found.citations.append(cite(f"doc:{src['doc']}", src.get("section", ""), src["quote"]))
        known = next((r for r in known_rows if r["product"] == src["product"]), None)
        if known:
            found.warnings += _source_differs(src, known)


def _not_in_crosswalk(asked: _Asked, matches: list[dict], ref: Reference) -> str | None:
    """The lead for a full NDC that only a source document's NDC pattern matches."""
    if any(m["source"] in ("cms-crosswalk", "reference") for m in matches):
        return None
    src = next((m for m in matches if m["source"].startswith("doc:")), None)
    if src is None:
        return None
    listed = sorted({r.ndc11 for r in ref.crosswalk if r.hcpcs == src["hcpcs"]})
    if not listed:
        known = next((r for r in (ref.ndc.get("reference") or {}).get("rows") or [] if r["product"] == src["product"]), {})
        listed = list(known.get("ndc11") or [])
    if not listed:
        return None
    quarter = next((f" ({r.quarter})" for r in ref.crosswalk), "")
    return (f"**No: NDC {asked.raw} ({asked.ndc11}) is not in the CMS NDC-HCPCS crosswalk{quarter}.** The crosswalk lists "
            f"{_brand(src['product'])} ({src['hcpcs']}) as {', '.join(listed)}; the {src['source'][4:].replace('-', ' ')} gives the NDC as "
            f"{src['pattern']}. Bill the NDC printed on the product's label.")


def _labeler_not_listed(asked: _Asked, matches: list[dict], ref: Reference) -> str | None:
    """The lead for a labeler that only a source document gives for a product whose labeler in
    the CMS crosswalk (as recorded in the reference data) is another."""
    if not matches or any(not m["source"].startswith("doc:") for m in matches):
        return None
    rows = (ref.ndc.get("reference") or {}).get("rows") or []
    for m in matches:
        known = next((r for r in rows if r["product"] == m["product"]), None)
        if known and known.get("labeler") and known["labeler"] != asked.labeler:
            return (f"**No: {_brand(m['product'])}'s labeler is {known['labeler']} ({known.get('labeler_name', '')}), not "
                    f"{asked.labeler}** (CMS NDC-HCPCS crosswalk: {', '.join(known.get('ndc11') or [])} → {known['hcpcs']}); "
                    f"the {m['source'][4:].replace('-', ' ')} gives {asked.labeler}. Bill the NDC printed on the product's label.")
    return None


def _vial(matches: list[dict], ref: Reference, vial_mg: Decimal, brand: str) -> tuple[str, str] | None:
    """The crosswalk row of the asked vial: its billing units per package times the code's unit size
    is the vial's mg ("tecvayli 153 mg vial": J9380 0.5 mg a unit, 306 units per package)."""
    for m in matches:
        code = ref.code(m.get("hcpcs") or "")
        if m["source"] != "cms-crosswalk" or code is None or code.per_dose or not m.get("billunits_per_pkg"):
            continue
        try:
            units = Decimal(m["billunits_per_pkg"])
        except ArithmeticError:
            continue
        if units * code.unit_value == vial_mg:
            vial_mg, units = vial_mg.normalize(), units.normalize()
            return (f"**{brand} {vial_mg:f} mg vial: NDC {m['ndc11']}** (11-digit 5-4-2) → HCPCS {code.code}, "
                    f"**{units:f} units per vial** ({code.unit_value.normalize():f} mg per unit; CMS NDC-HCPCS crosswalk {m['quarter']}: "
                    f"{units:f} billing units per package); on the claim: N4{_digits(m['ndc11'])}"), \
                f"{vial_mg:f} mg ÷ {code.unit_value.normalize():f} mg per unit = {units:f} units = the crosswalk's billing units per package"
    return None


def _pattern_prefix(pattern: str) -> str:
    """'71287-129-XX' -> '712870129': labeler and product digits as the 11-digit form pads them."""
    labeler, product = pattern.split("-")[0], pattern.split("-")[1]
    return _digits(labeler).zfill(5) + product.zfill(4)


def _source_differs(src: dict, known: dict) -> list[str]:
    out = []
    pattern, src_lab = src.get("pattern"), src.get("labeler")
    if pattern and known.get("ndc11") and not any(_digits(x).startswith(_pattern_prefix(pattern)) for x in known["ndc11"]):
        out.append(f"⚠ {src['doc']} gives {src['product']}'s NDC as {pattern}; the CMS crosswalk lists "
                   f"{', '.join(known['ndc11'])}. Use the NDC printed on the product's label.")
    if src_lab and known.get("labeler") and src_lab != known["labeler"]:
        out.append(f"⚠ {src['doc']} gives {src['product']}'s labeler as {src_lab}; the CMS crosswalk has "
                   f"{known['labeler']} ({known.get('labeler_name', '')}).")
    return out


def _summary(asked: _Asked, matches: list[dict], brand: str | None = None) -> tuple[str, str]:
    found = _uniq(matches)
    cms = list(dict.fromkeys(m["ndc11"] for m in matches if m["source"] == "cms-crosswalk" and m.get("ndc11")))
    cms = cms or list(dict.fromkeys(n for m in matches if m["source"] == "reference" for n in m.get("known_ndcs") or []))
    if asked.labeler_only and brand and cms:
        hcpcs = next((m["hcpcs"] for m in found), "")
        where = next((f"CMS NDC-HCPCS crosswalk {m['quarter']}" for m in matches if m["source"] == "cms-crosswalk"),
                     "CMS NDC-HCPCS crosswalk, as recorded in the reference data")
        return (f"**{brand} NDC (11-digit, 5-4-2): {', '.join(cms)}** → HCPCS {hcpcs} ({where}); "
                f"on the claim: N4 + the 11 digits, e.g. N4{_digits(cms[0])}"), \
            f"Product look-up under labeler {asked.labeler} (first 5 digits of the NDC)"
    if asked.labeler_only:
        listed = ", ".join(f"{_brand(m['product'])} ({m['hcpcs']}, {m['source']})" for m in found)
        return f"**Labeler {asked.labeler}: {listed or 'no CAR-T product known'}**", \
            "Labeler-only look-up (first 5 digits of the NDC)"
    head = f"NDC {asked.raw} → **{asked.ndc11}** (11-digit 5-4-2; on the claim: N4{_digits(asked.ndc11)})"
    listed = "; ".join(f"{_brand(m['product']) if m.get('product') else m.get('drug_name') or 'drug'} {m['hcpcs']}"
                       f"{_per_package(m)} ({m['match']} match, {m['source']})" for m in found)
    return head + (f": {listed}" if found else ": not found in the crosswalk or the sources"), \
        _pad_formula(asked.raw, asked.layout, asked.ndc11)


def _per_package(m: dict) -> str:
    """', 200 billing units per package' from the crosswalk row (what a vial bills as)."""
    units = m.get("billunits_per_pkg")
    return f", {units} billing units per package" if m.get("source") == "cms-crosswalk" and units else ""


def _uniq(matches: list[dict]) -> list[dict]:
    seen, out = set(), []
    for m in matches:
        key = (m.get("product"), m.get("hcpcs"), m.get("source"))
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out


def _pad_formula(raw: str, layout: str, ndc11: str) -> str:
    where = {"4-4-2": "a leading zero on the labeler", "5-3-2": "a leading zero on the product code",
             "5-4-1": "a leading zero on the package code"}.get(layout)
    if where:
        return f"{raw} is {layout}: add {where} → {ndc11}; on the claim: N4{_digits(ndc11)}"
    return f"{raw} is already 11 digits → {ndc11}; on the claim: N4{_digits(ndc11)}"


def _brand(product_id: str | None) -> str:
    """Brand name for a product id (the summary is read by people, not programs)."""
    from assistant.core.reference import load_reference

    prod = load_reference().product(product_id or "")
    return prod.brand if prod else str(product_id)


# --- the component ------------------------------------------------------------------------
NDC_TOKEN = re.compile(r"(?<![\d-])(\d{4,5}-\d{3,4}-\d{1,2}|\d{10,11})(?![\d-])")
LABELER = re.compile(r"\blabeler(?: code)?\s*(?:#|no\.?|number|is|=|:)?\s*(\d{5})\b|\b(\d{5})\s+(?:is (?:the |which )?)?labeler\b", re.I)
_NDC_WORDS = re.compile(r"\bNDCs?\b|labeler", re.I)
_TOPIC = re.compile(r"NDC|labeler|\d{4,5}-\d{3,4}", re.I)


def _plan(p: Planning) -> Plan | None:
    """An NDC or labeler typed in the question; or 'carvykti ndc': the product's labelers."""
    ndcs = [m.group(1) for m in NDC_TOKEN.finditer(p.text)][:3]
    labelers = [a or b for a, b in LABELER.findall(p.text)][:2]
    where = re.search(r"\b(?:FL|form locator|box|field|loop|segment)\b|which (?:line|field)|where (?:does|do|to) ", p.text, re.I)
    if not (ndcs or labelers) and p.has("ndc") and p.q.products and _NDC_WORDS.search(p.text) and not where:
        labelers = p.labelers(p.q.products)[:3]  # the result lists the crosswalk NDCs
    if not (ndcs or labelers):
        return None
    named = p.q.product if not ndcs and p.q.product and len(p.q.products) == 1 else None
    vial = {"vial_mg": sizes[0]} if named and len(sizes := p.vial_sizes() or ([p.q.figures.dose_mg] if re.search(
        r"\bvial\b", p.text, re.I) and p.q.figures.dose_mg else [])) == 1 else {}
    return Plan(calls=[("ndc", {"ndc": n} | ({"product": named} | vial if named and n in labelers else {}))
                       for n in ndcs + labelers])


CALCULATOR = Calculator(
    name="ndc", title="NDC", priority=10, compute=ndc, plan=_plan,
    description="Normalise an NDC to 11 digits (5-4-2) and find its product and HCPCS; a 5-digit labeler "
                "lists the candidate products.",
    supports=backed_by(_TOPIC),
)
