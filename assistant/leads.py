"""Leads chosen by what the question asks, not by the top retrieved sentence.

A coder copies the first line, so where the question's setting or answer type decides the
answer, the lead says that answer in one sentence and quotes the passage that states it; the
other retrieved sentences follow as support.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import replace

from assistant.answer_type import AnswerType, answer_type, code_system_of, row_answers
from assistant.core.question import Question
from assistant.core.reference import Product, Reference
from assistant.extract import SETTING_SYNONYMS, SYNONYMS, Sentence, split_sentences
from assistant.retrieval import Passage
from assistant.tools.payment import unpriced_procedures
from index.corpus import SourceDocument, configured_corpus
from index.sentences import sentence_spans
from index.tables import TableRow, all_table_rows, readable, section_at

_DRG = re.compile(r"MS-DRG\s*018", re.I)
_GLUED = re.compile(r"[a-z]{2}[A-Z]|^\d[A-Z]")  # "deniedFor", "6Site": cells of a flattened table row run together
_BUNDLED = re.compile(r"bundl|not separately payable|informational|within|DRG payment", re.I)


def setting_answer(q: Question, passages: list[Passage], ref: Reference) -> tuple[Sentence, str] | None:
    """'What does Medicare pay for Q2055 on an inpatient stay?': not its Part B payment limit.
    The product is paid within MS-DRG 018; lead with that, quoting the passage that says it."""
    if q.setting not in ("inpatient", "both") or "payment" not in q.intents or any(p not in ("medicare",) for p in q.payers):
        return None
    prods = [ref.product_by_id(pid) for pid in q.products] or [ref.product(c) for c in q.codes]
    prod = next((p for p in prods if p is not None and p.hcpcs), None)
    if prod is None:
        return None
    best: tuple[int, Sentence] | None = None
    for p in passages:
        for a, b in split_sentences(p):
            text = p.quote[a - p.span[0]:b - p.span[0]]
            if not _DRG.search(text) or len(text) > 420 or _GLUED.search(text):
                continue  # a flattened row's cells run together: not a quote to lead with
            rank = (2 * (prod.hcpcs in text) + (prod.brand in text) + 2 * bool(_BUNDLED.search(text))
                    + (prod.id in p.products))
            if best is None or rank > best[0]:
                best = (rank, Sentence(p, a, b, text, 99.0))
    if best is None and (found := _document_sentence({prod.id}, lambda t: (2 * (prod.hcpcs in t) + (prod.brand in t) + 1) * bool(
            re.search(r"\bDRG\b", t) and _BUNDLED.search(t)))):
        best = (0, found)  # not among the retrieved passages: the product's guide says it
    if best is None:
        return None
    sentence = best[1]
    outpatient = (f"**Outpatient: {prod.hcpcs} is paid separately at its Part B payment limit (ask with a date of service "
                  f"for the amount).**" if q.setting == "both" else "The payment limit applies to an outpatient claim.")
    return sentence, (f"**Inpatient: Medicare does not pay {prod.hcpcs} ({prod.brand}) at its Part B payment limit; the "
                      f"stay is paid under MS-DRG 018, which includes the product.** {outpatient} "
                      f"\"{' '.join(sentence.text.split())}\"")


def _document_sentence(products: set[str], score: Callable[[str], float]) -> Sentence | None:
    """The best prose sentence (not a flattened table row) of the products' documents (any document
    without products given) by `score`, when one scores above 0: a lead the search did not retrieve."""
    best: tuple[float, SourceDocument, int, int] | None = None
    for doc in configured_corpus().documents.values():
        if products and not products & set(doc.products):
            continue
        for m in re.finditer(r"[^\n]+", doc.text):
            for a, b in sentence_spans(m.group(0), (m.start(), m.end()), "section"):
                text = doc.text[a:b].strip()
                if len(text) < 420 and not _GLUED.search(text) and (s := score(text)) > 0 \
                        and (best is None or s > best[0]):
                    best = (s, doc, a, b)
    return doc_sentence(best[1], best[2], best[3]) if best else None


_SEPARATELY = re.compile(r"\bseparate(?:ly)?\b|\bon top\b|\bline[- ]?item\b|\bcarve[- ]?out\b|\bin addition to the DRG\b", re.I)


def drug_bundled_answer(q: Question, ref: Reference) -> tuple[Sentence, str] | None:
    """'readmit for CRS - can we bill j3262 separately on the IP claim': a drug given during an
    inpatient stay is paid within the stay's DRG, not separately; lead with that, quoting the
    guide's sentence that says so (a guide that also says "bill J3262 line-item during a separate
    readmission" is not the lead)."""
    if q.setting != "inpatient" or not _SEPARATELY.search(q.asked):
        return None
    drug = next((row for c in q.codes if (row := ref.code(c.upper())) is not None and row.drug), None)
    if drug is None and "tocilizumab" in q.intents:  # "actemra", "toci": the code billed for the name
        drug = ref.code(ref.code_for_name().get("tocilizumab", ""))
    if drug is None:
        return None
    names = [drug.code, *drug.names, drug.drug]
    found = _document_sentence(set(q.products), lambda t: float(any(n.lower() in t.lower() for n in names if n)
                                                                and bool(re.search(r"bundled|within the DRG", t, re.I))))
    if found is None:
        return None
    return found, (f"**No: on an inpatient claim {drug.code} ({drug.drug}) is not paid separately; it is paid within the "
                   f"stay's DRG.** \"{' '.join(found.text.split())}\"")


# --- the DRG a CAR-T case groups to ---------------------------------------------------------------
_DRG_TYPED = re.compile(r"\b(?:MS-?)?DRG\s*(\d{3})\b", re.I)
_DRG_SINCE = re.compile(r"Effective FY 2021, CMS introduced MS-DRG 018[^.]*\.")
_READMISSION = re.compile(r"\bre-?admi\w*|\bCRS\b|\bICANS\b|complication|\bsepsis\b", re.I)
_FY2021 = dt.date(2020, 10, 1)  # FY 2021 began on October 1, 2020


def drg_verdict(q: Question, ref: Reference) -> tuple[Sentence, str] | None:
    """'encoder grouped our car-t case to DRG 016 - is that right?': a CAR-T admission groups to MS-DRG
    018 from FY 2021 (discharges from October 1, 2020); MS-DRG 016 was its default before. Backed by
    the guide's own sentence."""
    typed = {m.group(1) for m in _DRG_TYPED.finditer(q.text)}
    if len(typed) != 1 or answer_type(q.asked).kind != "yes_no" or _READMISSION.search(q.asked):
        return None  # a readmission (for CRS, ICANS) is grouped by its own principal diagnosis, not as the CAR-T stay
    drg = typed.pop()
    prods = [ref.product_by_id(pid) for pid in q.products] or [p for p in ref.products if p.car_t]
    found = next((f for p in prods if p is not None and (f := guide_match(p, _DRG_SINCE)) is not None), None)
    if found is None:
        return None
    doc, m = found
    before = q.service_date is not None and q.service_date.source != "today" and q.service_date.day < _FY2021
    if drg == "018":
        verdict = ("**No: MS-DRG 018 began with FY 2021; for a discharge before October 1, 2020 it did not exist.**" if before
                   else "**Yes: a CAR-T admission groups to MS-DRG 018 (CAR-T immunotherapy) from FY 2021.**")
    elif before:
        verdict = (f"**For a discharge before October 1, 2020 (before FY 2021), MS-DRG 018 did not exist yet; "
                   f"check MS-DRG {drg} against that year's grouper.**")
    else:
        verdict = (f"**No: a CAR-T admission groups to MS-DRG 018 (CAR-T immunotherapy) from FY 2021, not MS-DRG {drg}.** "
                   "Check that the CAR-T administration PCS code in force on the discharge date is the principal procedure "
                   "and that the encoder runs the current grouper.")
    return doc_sentence(doc, m.start(), m.end()), verdict


# --- code questions answered from a document's code table ------------------------------------
# Systems a table row may answer for the lead. HCPCS, CPT and ICD-10-PCS codes changed on dates
# (the guides' tables keep retired ones), so they are answered by the dated code calculator.
_TABLE_SYSTEMS = {"POS", "ICD-10-CM", "modifier", "claim field", "DRG", "claim form"}
_WORD = re.compile(r"[a-z0-9][a-z0-9.+-]*", re.I)
_COLUMNS = {"claim field": re.compile(r"field|\bFL\b|box|locator", re.I), "POS": re.compile(r"\bPOS\b|place of service", re.I),
            "modifier": re.compile(r"modifier", re.I), "DRG": re.compile(r"DRG", re.I),
            "claim form": re.compile(r"claim form", re.I)}
_STOP = frozenset("the a an and or for of to on in at is it what which who how do does i we my pt code codes "
                  "w with per this that be can".split())


# stages of the CAR-T episode whose rows differ: a question naming one wants that stage's row
_EPISODE = (re.compile(r"\breadmi", re.I), re.compile(r"\bapheresis\b|\bleukapheresis\b|\bharvest", re.I),
            re.compile(r"lymphodeplet|\bLD\b|flu/?cy|\bchemo\b", re.I))
_MODIFIER_NAMED = re.compile(r"\bmod(?:ifier)?\s*-?\s*([0-9A-Z]{2})\b|\b([0-9A-Z]{2})\s+mod(?:ifier)?\b")


def code_row_answer(q: Question, ref: Reference, at: AnswerType | None = None) -> tuple[Sentence, str] | None:
    """'POS for abecma OP infusion', 'z code for car-t hx', 'FL for the NDC': the row of a
    document's code table that gives a code of the asked system for the product, shown as a
    readable row (its header's names with the cells); the exact row text stays the citation."""
    at = at or answer_type(q.asked)
    if at.code_system not in _TABLE_SYSTEMS or (at.code_system == "ICD-10-CM" and at.detail != "Z"):
        return None  # a diagnosis question is the product's diagnosis sentence; a Z code is a table row
    # "ms-drg 018 relative weight": the code is given; a row leading with another code of its system does not answer
    given = {c.upper() for c in q.codes if code_system_of(c) == at.code_system}
    words = {w.lower() for w in _WORD.findall(q.asked)} - _STOP
    words |= {x for w in words for x in (SYNONYMS.get(w) or SETTING_SYNONYMS.get(w) or "").lower().split()}
    # the drugs and codes the question names: a row about another drug does not answer it
    drug_codes = ref.code_for_name()
    named = {c.upper() for c in q.codes} | _drugs_named(q.asked, drug_codes)
    modifiers = {m.group(1) or m.group(2) for m in _MODIFIER_NAMED.finditer(q.asked)} if at.code_system == "modifier" else set()
    docs = configured_corpus().documents
    one = q.setting if q.setting in ("inpatient", "outpatient") else None
    best: tuple[float, TableRow] | None = None
    for row in all_table_rows():
        if not row.complete or not row_answers(row, at):
            continue
        if q.products and not set(q.products) & set(docs[row.doc_id].products):
            continue
        text = " ".join(row.cells).lower()
        if _off_subject(row, text, q, named, modifiers, drug_codes) or given and _other_code(_asked_value(row, at), given, at):
            continue
        score = sum(1.0 for w in words if w in text) + (1.5 if one and one in text else 0.0)
        # "box on the 1500 for NDC": the row whose label (first cell) is the thing asked about
        score += 2.0 if words & {w.lower() for w in _WORD.findall(row.cells[0])} - _STOP else 0.0
        score -= 2.0 if one and ({"inpatient", "outpatient"} - {one}) & set(_WORD.findall(text)) else 0.0
        if best is None or score > best[0]:
            best = (score, row)
    if best is None or best[0] <= 0:
        return None
    row = best[1]
    return _row_sentence(row, docs[row.doc_id]), f"**{_asked_value(row, at)}** — {readable(row)}"


def _off_subject(row: TableRow, text: str, q: Question, named: set[str], modifiers: set[str],
                 drug_codes: dict[str, str]) -> bool:
    """A row about something other than what the question names: another drug or code, another
    stage of the episode, another modifier, or a drug's line for a question about the product."""
    names_in_row = {c for _k, c in row.codes} | _drugs_named(text, drug_codes)
    if named and not named & names_in_row:
        return True
    if any(rx.search(q.asked) and not rx.search(row.quote) for rx in _EPISODE):
        return True  # "DRG for a CRS readmission": the row of the CAR-T admission does not answer it
    if modifiers and not any(re.search(rf"\bmod(?:ifier)?\s*-?\s*{re.escape(m)}\b|\b{re.escape(m)}\s+mod(?:ifier)?\b|"
                                       rf"-{re.escape(m)}\b|\b{re.escape(m)}\b(?=\s*(?:/|or|and)\s*J[WZ]\b)", row.quote)
                             for m in modifiers):
        return True  # "modifier 25 when": a row about JW/JZ does not answer it
    # "JZ rule for abecma", "modifier for same day E/M": a row about fludarabine's line is not what is asked
    return bool(not named and names_in_row & set(drug_codes.values()) and not _EPISODE[2].search(q.asked))


def _other_code(value: str, given: set[str], at: AnswerType) -> bool:
    return code_system_of(value) == at.code_system and value.upper() not in given


def _drugs_named(text: str, drug_codes: dict[str, str]) -> set[str]:
    return {code for name, code in drug_codes.items() if re.search(rf"(?<![a-z]){re.escape(name)}(?![a-z])", text, re.I)}


def _asked_value(row: TableRow, at: AnswerType) -> str:
    """The cell a coder copies: the asked system's column, else the row's codes of that system."""
    column = _COLUMNS.get(at.code_system or "")
    for name, cell in zip(row.columns, row.cells, strict=True):
        if cell and column is not None and column.search(name):
            return f"{name} {cell}" if len(cell) <= 12 else cell
    codes = [c for _k, c in row.codes if code_system_of(c, at.code_system) == at.code_system]
    if not codes and at.code_system == "DRG":
        return next((c for c in row.cells[1:] if re.search(r"\bDRG\b", c)), row.cells[0])
    return ", ".join(dict.fromkeys(codes)) or row.cells[0]


def _row_sentence(row: TableRow, doc: SourceDocument) -> Sentence:
    """A table row as a quoted sentence (the composer cites it like any passage sentence)."""
    return doc_sentence(doc, row.start, row.end, row.section, chunk_type="table_row", header=" | ".join(row.columns),
                        codes=[c for _k, c in row.codes])


def doc_sentence(doc: SourceDocument, start: int, end: int, section: str | None = None, chunk_type: str = "section",
                 header: str = "", codes: list[str] | None = None) -> Sentence:
    """A span of a document as a quoted sentence, for a lead found in the document itself rather
    than among the retrieved passages (cited under the section it is in, unless one is given)."""
    quote = doc.text[start:end]
    section = section if section is not None else section_at(doc, start)
    passage = Passage(node_id=f"{doc.id}:{start}", doc_id=doc.id, title=doc.title, kind=doc.kind,
                      section=section, chunk_type=chunk_type, quote=quote, span=(start, end),
                      header=header, products=[], doc_products=list(doc.products),
                      codes=codes or [], payer=doc.payer or "", effective=doc.effective or "",
                      reviewed=doc.reviewed or "", price_quarter=doc.price_quarter or "", score=0.0)
    return Sentence(passage, start, end, quote, 99.0)


# --- a product's FDA indications, from its billing guide's fact card -------------------------------
_INDICATION_ASKED = re.compile(
    r"\bindicat\w*|\bapproved (?:for|in)\b|\bFDA[- ]approved\b|\bused (?:for|in)\b|\blines? of therapy\b|"
    r"\b(?:for|in|after|at) (?:\d|one|two|three|four)\+? ?(?:prior )?lines?\b|\b[1-5]L\+?(?= |$|\?)|"
    r"\b(?:for|in) (?:DLBCL|LBCL|FL|CLL|SLL|MCL|B-?ALL|ALL|MM|myeloma|lymphoma|leukemia|pediatric|peds|kids?)\b", re.I)
_FACT_CARD_INDICATIONS = re.compile(r"^Indications \(FDA\)\n(.+)$", re.M)


def indication_answer(q: Question, ref: Reference) -> tuple[Sentence, str] | None:
    """'what's the indication for tecartus', 'tecartus for DLBCL?', 'carvykti for 1 prior line': the
    product's FDA indications as its billing guide's fact card states them (with what it is not
    approved for), not the nearest sentence about indications in general."""
    prod = ref.product_by_id(q.product or "")
    if prod is None or q.payers or not _INDICATION_ASKED.search(q.asked):
        return None
    if (found := guide_match(prod, _FACT_CARD_INDICATIONS)) is None:
        return None
    doc, m = found
    return (doc_sentence(doc, m.start(1), m.end(1)),
            f"**{prod.brand}, FDA-approved indications (its billing guide's fact card):** {m.group(1)}")


def guide_match(prod: Product, pattern: re.Pattern[str]) -> tuple[SourceDocument, re.Match[str]] | None:
    """The first match of `pattern` in the product's own billing guide: a fact the guide states
    once, found in the document when the search did not bring its passage."""
    for doc in configured_corpus().documents.values():
        if doc.kind == "billing-guide" and prod.id in doc.products and (m := pattern.search(doc.text)):
            return doc, m
    return None


# --- a diagnosis code chosen by the words of the question ----------------------------------------
_CONDITION_WORDS = {
    "crs": re.compile(r"\bCRS\b|cytokine release", re.I),
    "icans": re.compile(r"\bICANS\b|neurotox|immune effector", re.I),
    "mcl": re.compile(r"\bMCL\b|mantle", re.I),
    "all": re.compile(r"\bB-?ALL\b|lymphoblastic", re.I),
    "mm": re.compile(r"\bMM\b|myeloma", re.I),
    "parkinsonism": re.compile(r"parkinsonism|\bMNT\b|movement and neurocognitive", re.I),
}
_GRADE = re.compile(r"\b(?:grade|gr|g)\s*([1-5])\b", re.I)


def dx_answer(q: Question, passages: list[Passage], ref: Reference,
              at: AnswerType | None = None) -> tuple[Sentence, str] | None:
    """The diagnosis code of each condition the question names ("CRS grade 1 and ICANS grade 1",
    "relapsed MM + CRS gr2"): one lead per condition, in the order asked, cited by the first."""
    at = at or answer_type(q.asked)
    named = [c for c, rx in _CONDITION_WORDS.items() if rx.search(q.text)]
    if len(named) < 2 or q.follows:
        return _dx_answer(q, passages, ref, at)
    parts = [part for part in re.split(r"\s*(?:\band\b|\+|&|,|;|\bplus\b|\bw/)\s*", q.text)
             if any(_CONDITION_WORDS[c].search(part) for c in named)]
    leads = [found for part in parts if (found := _dx_answer(replace(q, text=part), passages, ref, at)) is not None]
    if len(leads) < 2:
        return _dx_answer(q, passages, ref, at)
    return leads[0][0], " ".join(text for _s, text in leads)


def _dx_answer(q: Question, passages: list[Passage], ref: Reference,
               at: AnswerType | None = None) -> tuple[Sentence, str] | None:
    """'CRS grade 3 dx', 'abecma dx code relapsed', 'tecartus MCL site not documented dx': the one
    ICD-10-CM code (reference data, the code set's descriptor) the question's words describe,
    backed by a passage that names the code or its family. Without a qualifier that decides it, the
    candidates lead together with what decides between them."""
    at = at or answer_type(q.asked)
    condition = _condition(q, ref) if at.code_system == "ICD-10-CM" and at.detail != "Z" else None
    if condition is None:
        return None
    family = [c for c in ref.icd10cm.values() if c.condition == condition]
    if any(not _CATEGORY.fullmatch(c.upper()) and c.upper() not in {f.code for f in family} for c in q.codes):
        return None  # another code typed is asked about; a category ("which D89 code") or the family's codes are chosen from
    scored = sorted(((_qualifier_score(c, q.asked), c) for c in family), key=lambda t: (-t[0], t[1].code))
    if not scored:
        return None
    # a passage naming the family, or naming a code the guides misuse for it (G20.A1 for drug-induced parkinsonism)
    misused = [c for c in ref.icd10cm.values() if c.note and any(f.code in c.note for f in family)]
    support = _family_sentence(family, passages) or _family_row(family, q) or _family_sentence(misused, passages)
    if support is None:
        return None
    top, best = scored[0]
    # a code the quoted guide misdescribes ("G20.A1/A2" for CAR-T parkinsonism) is corrected beside it
    misdescribed = " ".join(f"The quoted guide's {c}: {row.note}" for c, row in sorted(ref.icd10cm.items())
                            if row.note and c in support.text and c not in {f.code for f in family})
    if top > 0 and (len(scored) == 1 or scored[1][0] < top):
        return support, (f"**{best.code}** is the ICD-10-CM code for {best.descriptor[0].lower() + best.descriptor[1:]} "
                         f"(ICD-10-CM tabular list).{' ' + misdescribed if misdescribed else ''}")
    options = "; ".join(f"**{c.code}** {c.descriptor}" for _s, c in scored)
    if (status := _STATUS.search(q.asked)) and top == 0:
        # "MCL in remission": no code of the family says so; never another condition's remission code
        return support, (f"My sources give no ICD-10-CM code for {_CONDITION_NAMES[condition]} "
                         f"{status.group(0).lower()}. The codes they list for it: {options} (ICD-10-CM tabular list).")
    return support, (f"ICD-10-CM by what the record documents: {options} (ICD-10-CM tabular list)."
                     f"{' ' + misdescribed if misdescribed else ''}")


def _condition(q: Question, ref: Reference) -> str | None:
    """The condition whose code is asked: named in the question, its indication, or the product's only one."""
    condition = next((c for c, rx in _CONDITION_WORDS.items() if rx.search(q.asked)), None)
    condition = condition or (q.indication if q.indication in _CONDITION_WORDS else None)
    if condition is None and q.product:
        indications = [i for i in ref.indications(q.product) if i in _CONDITION_WORDS]
        condition = indications[0] if len(indications) == 1 else None  # Abecma, Carvykti: myeloma
    return condition


_CATEGORY = re.compile(r"[A-TV-Z]\d{2}(?:\.\d{0,2}X*)?")  # D89, D89.83X: a code family, not one code
_STATUS = re.compile(r"\b(?:in |not in )?remission\b", re.I)  # an axis of the leukemia and myeloma codes
_CONDITION_NAMES = {"crs": "cytokine release syndrome", "icans": "ICANS", "mcl": "mantle cell lymphoma",
                    "all": "B-cell ALL", "mm": "multiple myeloma", "parkinsonism": "parkinsonism"}


def _family_row(family, q: Question) -> Sentence | None:
    """A document table row naming a code of the family, when no retrieved passage does: the
    guide's ICD-10-CM table holds the codes even when the search found other rows."""
    docs = configured_corpus().documents
    stems = {c.code for c in family} | {c.code[:5] for c in family}
    rows = [r for r in all_table_rows() if any(s in r.quote for s in stems) and len(r.quote) < 420]
    rows.sort(key=lambda r: (not (q.product and q.product in docs[r.doc_id].products), r.doc_id, r.start))
    return _row_sentence(rows[0], docs[rows[0].doc_id]) if rows else None


# a remission that has ended: "chart says 'in remission' from 2024 but now progressing" is a relapse
_PAST_REMISSION = re.compile(r"\b(?:was|were|had been|previously|formerly)\s+(?:\w+\s+){0,2}in remission\b|"
                             r"\bin remission\b[^.?]{0,40}\b(?:but|until|then|now)\b[^.?]{0,25}\b(?:relaps\w*|progress\w*|active)\b|"
                             r"\b(?:out of|no longer in|came off|lost) remission\b", re.I)


def _qualifier_score(code, text: str) -> int:
    """How well the question's words name the code's qualifier (its grade, remission status, site)."""
    grade = next(reversed(list(_GRADE.finditer(text))), None)  # a follow-up's "grade 4?" comes after the grade it replaces
    if grade is not None and code.condition in ("crs", "icans"):
        return 3 if code.descriptor.endswith(f"grade {grade.group(1)}") else 0
    if code.condition == "mm" and _PAST_REMISSION.search(text):
        return 3 if code.descriptor.lower().endswith("in relapse") else 0
    return max((len(n.split()) for n in code.names if re.search(rf"(?<![a-z]){re.escape(n)}(?:e?s)?(?![a-z])", text, re.I)),
               default=0)  # "multiple lymph nodes" names "multiple lymph node"


def _family_sentence(family, passages: list[Passage]) -> Sentence | None:
    """The passage sentence that names a code of the family (or its stem, "D89.83x", "C90.0x")."""
    stems = {c.code for c in family} | {c.code[:5] for c in family}
    for p in passages:
        for a, b in split_sentences(p):
            text = p.quote[a - p.span[0]:b - p.span[0]]
            if len(text) < 420 and any(s in text for s in stems):
                return Sentence(p, a, b, text, 99.0)
    return None


# --- the other parts of a compound question ------------------------------------------------------
_DX_TOO = re.compile(r"\b(?:dx|diag\w*)(?: codes?)?\s*(?:\+|&|,|and|w/|plus)\s*(?:an?\s+|the\s+)?z[- ]?codes?\b|"
                     r"\bz[- ]?codes?\s*(?:\+|&|,|and|w/|plus)\s*(?:an?\s+|the\s+)?(?:dx|diag\w*)\b", re.I)
_SHOWN = {"ICD-10-CM": re.compile(r"\b[A-TV-Z]\d{2}\.\w{1,4}\b"), "DRG": re.compile(r"\bMS-DRG \d{3}\b|\bDRG \d{3}\b"),
          "POS": re.compile(r"\bPOS:? \d{2}\b"), "HCPCS": re.compile(r"\b[QJ]\d{4}\b"),
          "modifier": re.compile(r"\bJ[WZ]\b"), "claim field": re.compile(r"\b(?:FL|[Ff]ield|box) ?\d")}


_PRINCIPAL_ASKED = re.compile(r"\bprincipal\b|\bprimary (?:dx|diag\w*)|\bfirst[- ]listed\b|\bpdx\b|\bsequenc\w*", re.I)
_TOXICITY = re.compile(r"\bCRS\b|\bICANS\b|\bD89\.83|\bG92\.0", re.I)


def _principal_part(q: Question, passages: list[Passage], shown: str) -> tuple[Sentence, str] | None:
    """'crs dx code + can crs be principal': the sentence of the sources that says what is
    principal and what secondary for a CRS / ICANS stay, as its own part of the lead."""
    if not (_PRINCIPAL_ASKED.search(q.asked) and _TOXICITY.search(q.asked)) or "principal" in shown.split("\n\n")[0].lower():
        return None
    says = lambda text: len(text) < 420 and _TOXICITY.search(text) and (  # noqa: E731
        "principal" in text.lower() and "secondary" in text.lower() or "principal manifestation" in text.lower())
    for p in passages:
        if p.chunk_type == "table_row":
            continue  # a flattened row reads glued; the guides say it in prose too
        for a, b in split_sentences(p):
            if says(text := p.quote[a - p.span[0]:b - p.span[0]]):
                return Sentence(p, a, b, text, 99.0), f"Principal vs secondary: {text}"
    # not among the retrieved passages: the product's guide says it
    if (found := _document_sentence(set(q.products), lambda t: float(bool(says(t))))) is None:
        return None
    return found, "Principal vs secondary: " + re.sub(r"^\d+\.\s*", "", found.text)  # a list number is not what it says


def _other_parts(q: Question, passages: list[Passage], ref: Reference, shown: str,
                 at: AnswerType) -> list[tuple[Sentence | None, str]]:
    """The parts of a compound question that are not another code system: the condition's code
    beside a Z code, what is principal, the inpatient route."""
    out: list[tuple[Sentence | None, str]] = []
    if at.detail == "Z" and _DX_TOO.search(q.asked) and not _SHOWN["ICD-10-CM"].search(shown.replace("Z", "")):
        # "dx code + Z code for the transplant status": the condition's code as well as the Z code
        if (found := dx_answer(q, passages, ref, replace(at, detail=None))) is not None:
            out.append(found)
    if (found := _principal_part(q, passages, shown)) is not None:
        out.append(found)
    if "MS-DRG 018, which includes the product" not in shown and (found := setting_answer(q, passages, ref)) is not None:
        out.append(found)  # "pcs code + is q2055 paid on top of the drg": the inpatient route as well
    if _AMOUNT_ASKED.search(q.text) and "$" not in shown and (cpts := list(dict.fromkeys(_CPT_SHOWN.findall(shown)))):
        # "admin cpt + medicare allowed": no source prices a procedure code (the CMS files are drug payment limits)
        out.append((None, unpriced_procedures(cpts)))
    return out


_AMOUNT_ASKED = re.compile(r"\ballow(?:ed|able)\b|\brates?\b|\bhow much\b|\bamount\b|\bamt\b|\breimburs\w*|\bfee\b", re.I)
_CPT_SHOWN = re.compile(r"\*\*(\d{5}|\d{4}T)\*\*")


def extra_leads(q: Question, passages: list[Passage], ref: Reference, shown: str,
                answered: set[str] | None = None) -> list[tuple[Sentence | None, str]]:
    """'abecma Q code, units and rev code', 'tecartus MCL dx code and PCS code': every code system
    the question asks for beyond the one the lead answers (`answered`; the question's first by
    default), each in one sentence of its own (with its citation), or said to be missing from the
    sources. `shown` is the answer so far: a system whose code it already shows is not repeated."""
    at = answer_type(q.asked)
    answered = {at.code_system} if answered is None else answered
    out = _other_parts(q, passages, ref, shown, at)
    for system in at.code_systems:
        if system in answered or ((rx := _SHOWN.get(system)) is not None and rx.search(shown)):
            continue
        part = replace(at, code_system=system, detail=None)
        found = None
        if system == "ICD-10-CM":
            found = dx_answer(q, passages, ref, part)
        elif system in _TABLE_SYSTEMS and q.setting == "both":
            # "IP vs OP - POS for each": the row of each setting
            rows = [(w, f) for w in ("inpatient", "outpatient") if (f := code_row_answer(replace(q, setting=w, codes=()), ref, part))]
            if len(rows) == 2 and rows[0][1][1] != rows[1][1][1]:
                out += [(f[0], f"{w.capitalize()}: {f[1]}") for w, f in rows]
                continue
            found = rows[0][1] if rows else None
        elif system in _TABLE_SYSTEMS:
            found = code_row_answer(q, ref, part)
        if found is not None:
            value, _sep, rest = found[1].partition(" — ")
            out.append((found[0], value + "." if rest and rest in shown else found[1]))  # the same row: its value only
        elif system == "revenue" and not any(re.search(r"revenue code|\brev(?:enue)? code", p.quote, re.I) for p in passages):
            out.append((None, "My sources give no revenue code for this."))
    return out


# --- a product the sources have no guide for, mentioned in passing in another's ----------------
_PASSING_TOPICS = {
    # the lymphodepletion: a drug, a rate or the word regimen near the product's name
    "lymphodepletion": (re.compile(r"\bregimen\b|\blymphodeplet\w*|\bfludarabine\b|\bcyclophosphamide\b|\bCy \d{3}\b", re.I),
                        re.compile(r"mg/m|\bCy \d{3}\b", re.I)),
    "cell_dose": (re.compile(r"\bdose\b|\btarget\b|x 10\^\d|\bcap\b|\bcells?\b", re.I), re.compile(r"x 10\^\d|\d+M\b", re.I)),
}


def passing_mentions(q: Question, prod: Product) -> list[tuple[Sentence, str]]:
    """'breyanzi LD regimen': the sources hold no Breyanzi guide, but the Carvykti guide remarks
    "the same cyclophosphamide dose used for Abecma and Breyanzi (300 mg/m^2)". For each dosing
    topic asked, the one sentence that names the product with that topic's figures; quoted as the
    nearest the sources come, never turned into a dose or days of the product's own (the days
    around another product's regimen are not this product's)."""
    name = re.compile(rf"\b(?:{re.escape(prod.brand)}|{re.escape(prod.generic)})\b", re.I)
    found = []
    for topic, (about, figures) in _PASSING_TOPICS.items():
        if topic not in q.intents:
            continue
        best = None
        for doc in configured_corpus().documents.values():
            for m in name.finditer(doc.text):
                start, end = _sentence_around(doc.text, m.start())
                text = doc.text[start:end]
                if not about.search(text):
                    continue
                rank = (len(figures.findall(text)) + 2 * bool(re.search(r"\bsame\b", text, re.I)), -len(text))
                if figures.search(text) and (best is None or rank > best[0]):
                    best = (rank, doc, start, end)
        if best is not None:
            _rank, doc, start, end = best
            found.append((doc_sentence(doc, start, end), doc.title))
    return found


def _sentence_around(text: str, at: int) -> tuple[int, int]:
    """The sentence (as the passages are split into sentences) of the line that holds offset `at`."""
    line_start = text.rfind("\n", 0, at) + 1
    line_end = text.find("\n", at)
    line_end = len(text) if line_end < 0 else line_end
    spans = sentence_spans(text[line_start:line_end], (line_start, line_end), "section")
    return next(((a, b) for a, b in spans if a <= at < b), (line_start, line_end))
