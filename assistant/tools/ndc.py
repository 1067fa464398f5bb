"""NDC normalisation (10 -> 11 digits, 5-4-2) and NDC / labeler -> product and HCPCS.

Looks in (a) the CMS NDC-HCPCS crosswalk when imported (reference/crosswalk/*.csv), (b) the
crosswalk NDCs recorded in products.yaml, and (c) the NDCs and labelers as the source documents
give them — which differ for some products. The result says which matched, so a clerk sees when a
guide's NDC is not the crosswalk's.
"""

from __future__ import annotations

import re
from typing import Any

from assistant.tools._inputs import to_text
from assistant.tools.errors import CalcError
from assistant.tools.reference import Reference, get_reference
from assistant.tools.result import ToolResult, cite

_PAD = {(4, 4, 2): 0, (5, 3, 2): 1, (5, 4, 1): 2, (5, 4, 2): None}


def normalize_ndc(text: Any) -> tuple[str, str]:
    """(11-digit 5-4-2 with hyphens, the input's layout) or CalcError."""
    raw = to_text(text, "ndc", "NDC")
    s = re.sub(r"^\s*N4\s*", "", raw, flags=re.I).strip().replace(" ", "-")
    if re.fullmatch(r"\d+(-\d+){2}", s):
        parts = s.split("-")
        layout = tuple(len(p) for p in parts)
        if layout not in _PAD:
            raise CalcError(f"'{raw}' is not a valid NDC layout ({'-'.join(map(str, layout))}); NDCs are 4-4-2, 5-3-2, "
                            f"5-4-1 (10 digits) or 5-4-2 (11 digits).", field="ndc")
        i = _PAD[layout]
        if i is not None:
            parts[i] = "0" + parts[i]
        return "-".join(parts), "-".join(map(str, layout))
    if re.fullmatch(r"\d+", s):
        if len(s) == 11:
            return f"{s[:5]}-{s[5:9]}-{s[9:]}", "11 digits"
        if len(s) == 10:
            raise CalcError(f"'{raw}' has 10 digits without hyphens, which is ambiguous (4-4-2, 5-3-2 or 5-4-1 give "
                            f"different 11-digit NDCs). Please type it with hyphens as printed on the package, or give "
                            f"the 11-digit NDC.", field="ndc")
    raise CalcError(f"'{raw}' is not an NDC. Give 10 digits with hyphens (e.g. 71287-119-01) or 11 digits.", field="ndc")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", str(text))


def ndc(ndc: Any, reference: Reference | None = None) -> ToolResult:
    """Normalise an NDC and find its product and HCPCS code; a 5-digit labeler lists candidates."""
    ref = get_reference(reference)
    raw = to_text(ndc, "ndc", "NDC")
    labeler_only = bool(re.fullmatch(r"\d{5}", raw.strip()))
    if labeler_only:
        ndc11, layout, labeler, product_code = None, "labeler", raw.strip(), None
    else:
        ndc11, layout = normalize_ndc(raw)
        labeler, product_code = ndc11[:5], ndc11[6:10]
    matches: list[dict] = []
    citations: list[dict] = []
    warnings: list[str] = []

    # (a) CMS crosswalk, if imported
    for row in ref.crosswalk:
        d = _digits(row.get("ndc11", ""))
        hit = d[:5] == labeler if labeler_only else d == _digits(ndc11)
        if hit:
            prod = ref.product(row.get("hcpcs", ""))
            matches.append({"match": "labeler" if labeler_only else "exact", "source": "cms-crosswalk",
                            "ndc11": row.get("ndc11"), "hcpcs": row.get("hcpcs"), "product": prod["id"] if prod else None,
                            "drug_name": row.get("drug_name"), "labeler_name": row.get("labeler_name"),
                            "billunits_per_pkg": row.get("billunitspkg"), "quarter": row.get("quarter")})
            citations.append(cite(f"crosswalk/{row.get('_file')}#{row.get('ndc11')}",
                                  f"CMS NDC-HCPCS crosswalk {row.get('quarter', '')}: {row.get('ndc11')} → {row.get('hcpcs')}",
                                  f"{row.get('drug_name', '')}, {row.get('labeler_name', '')}"))
    # (b) reference NDCs (REFERENCE.md crosswalk facts)
    reference_rows = (ref.ndc.get("reference") or {})
    for row in reference_rows.get("rows") or []:
        ndcs = [_digits(x) for x in row.get("ndc11") or []]
        hit = (row.get("labeler") == labeler) if labeler_only else _digits(ndc11) in ndcs
        if hit and not any(m["source"] == "cms-crosswalk" and m["hcpcs"] == row["hcpcs"] for m in matches):
            matches.append({"match": "labeler" if labeler_only else "exact", "source": "reference",
                            "ndc11": None if labeler_only else ndc11, "hcpcs": row["hcpcs"], "product": row["product"],
                            "labeler_name": row.get("labeler_name"), "known_ndcs": row.get("ndc11")})
            citations.append(cite(f"products.yaml#ndc.{row['product']}", f"{row['product']} NDCs {', '.join(row.get('ndc11') or []) or '(labeler)'}",
                                  str(reference_rows.get("cite", ""))))
    # (c) NDCs and labelers as the source documents give them
    for src in (ref.ndc.get("sources") or []):
        pattern = src.get("pattern")
        src_lab = src.get("labeler")
        hit = False
        if labeler_only:
            hit = src_lab == labeler
        elif pattern:
            p_lab, p_prod = pattern.split("-")[0], pattern.split("-")[1]
            hit = p_lab.zfill(5) == labeler and p_prod.zfill(4) == product_code
        if hit:
            matches.append({"match": "labeler" if labeler_only else "source-pattern", "source": f"doc:{src['doc']}",
                            "pattern": pattern, "hcpcs": src["hcpcs"], "product": src["product"]})
            citations.append(cite(f"doc:{src['doc']}", src.get("section", ""), src["quote"]))
            known = next((r for r in reference_rows.get("rows") or [] if r["product"] == src["product"]), None)
            if known:
                if pattern and known.get("ndc11") and not any(_digits(x).startswith(_digits(pattern.split("-")[0]).zfill(5) + pattern.split("-")[1].zfill(4)) for x in known["ndc11"]):
                    warnings.append(f"⚠ {src['doc']} gives {src['product']}'s NDC as {pattern}; the CMS crosswalk lists "
                                    f"{', '.join(known['ndc11'])}. Use the NDC printed on the product's label.")
                if src_lab and known.get("labeler") and src_lab != known["labeler"]:
                    warnings.append(f"⚠ {src['doc']} gives {src['product']}'s labeler as {src_lab}; the CMS crosswalk has "
                                    f"{known['labeler']} ({known.get('labeler_name', '')}).")

    products = sorted({m["product"] for m in matches if m.get("product")})
    if labeler_only and len(products) > 1:
        warnings.append(f"Labeler {labeler} carries more than one product ({', '.join(products)}): give the full NDC to pick one.")
    if labeler_only:
        head = f"Labeler {labeler}: " + (", ".join(f"{_brand(m['product'])} ({m['hcpcs']}, {m['source']})" for m in _uniq(matches)) or "no CAR-T product known")
        summary = f"**{head}**"
        formula = "Labeler-only look-up (first 5 digits of the NDC)"
    else:
        found = _uniq(matches)
        head = f"NDC {raw} → **{ndc11}** (11-digit 5-4-2)"
        summary = head + (": " + "; ".join(f"{_brand(m['product'])} {m['hcpcs']} ({m['match']} match, {m['source']})" for m in found)
                          if found else ": not found in the crosswalk or the sources")
        formula = _pad_formula(raw, layout, ndc11)
    assumptions = []
    if not ref.crosswalk:
        assumptions.append("The CMS NDC-HCPCS crosswalk is not imported: matched against the NDCs recorded in the reference data and the documents only.")
    citations.append(cite("REFERENCE.md#formulas", "NDC 10 → 11 digits (5-4-2, N4 qualifier)",
                          "4-4-2 gets a leading zero on the labeler; 5-3-2 a leading zero on the product; 5-4-1 a leading zero on the package."))
    return ToolResult(name="ndc", inputs={"ndc": raw},
                      values={"ndc11": ndc11, "layout": layout, "labeler": labeler, "claim_format": f"N4{_digits(ndc11)}" if ndc11 else None,
                              "matches": matches, "products": products},
                      summary=summary, formula=formula, assumptions=assumptions, warnings=warnings, citations=citations)


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
    from assistant.tools.reference import load_reference

    prod = load_reference().product(product_id or "")
    return prod.get("brand", product_id) if prod else str(product_id)
