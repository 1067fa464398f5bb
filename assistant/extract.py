"""Pick the sentences of retrieved passages that answer a question, with exact spans.

The default composer quotes rather than paraphrases: a sentence is a span of the original
document, so its citation is exact and every number in it is traceable by construction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from assistant.core.reference import load_reference
from assistant.retrieval import Passage, strip_entity_names
from index.codes import codes_in, find_codes, tokenize
from index.entities import products_in, products_in_question
from index.normalize import normalize
from index.sentences import MAX_CHARS, sentence_id, sentence_spans

# Which code kinds (index.codes) a question asks for, by the code system it names.
_ASKED_KINDS = [
    (re.compile(r"ICD-?10-?PCS|\bPCS\b|procedure code", re.I), {"pcs"}),
    (re.compile(r"ICD-?10(?!-?PCS)|ICD-10-CM|diagnos", re.I), {"icd"}),
    (re.compile(r"\bCPT\b|administration code|apheresis code", re.I), {"cpt", "cpt3"}),
    (re.compile(r"HCPCS|Q-?code|J-?code", re.I), {"hcpcs"}),
    (re.compile(r"\bNDC\b", re.I), {"ndc"}),
    (re.compile(r"\bDRG\b", re.I), {"drg"}),
    (re.compile(r"\bmodifiers?\b|\bmod\b", re.I), {"modifier"}),
]
# a sentence that gives a modifier (they are not codes index.codes finds: JW, JZ, 25, JG ...)
_MODIFIER_GIVEN = re.compile(r"\bmodifiers?\s+(?:-?[0-9A-Z]{2}\b)|\b(?:JW|JZ|JG|TB|KX|GA|GY|GZ|PO|PN|JX)\b")
_MODIFIER_NAMED = re.compile(_MODIFIER_GIVEN.pattern, re.I)  # as typed in a question ("jz")


def asked_code_kinds(question: str) -> set[str]:
    kinds: set[str] = set()
    for rx, ks in _ASKED_KINDS:
        if rx.search(question):
            kinds |= ks
    return kinds


@dataclass(frozen=True)
class Sentence:
    passage: Passage
    start: int   # offsets in the document
    end: int
    text: str
    score: float


def split_sentences(p: Passage) -> list[tuple[int, int]]:
    """Document spans of the sentences/lines of a passage (table rows stay whole)."""
    return sentence_spans(p.quote, p.span, p.chunk_type)


# How billing staff abbreviate vs. how the documents spell it: both are matched.
SYNONYMS = {
    "auth": "authorization approval", "reauth": "reauthorization", "pa": "prior authorization",
    "docs": "documentation", "long": "duration", "ld": "lymphodepletion lymphodepleting",
    "cy": "cyclophosphamide", "flu": "fludarabine", "toci": "tocilizumab", "pt": "patient",
    "req": "required requirement", "admin": "administration", "dx": "diagnosis", "ma": "medicare advantage",
    "elig": "eligibility", "crs": "cytokine release syndrome", "tx": "treatment", "qty": "quantity",
    "turnaround": "vein-to-vein time", "tat": "vein-to-vein time",
    "hx": "history", "readmit": "readmission", "f/u": "follow-up",
    # a prior transplant as coders type it; the guides say "HSCT" / "stem cell transplant"
    "sct": "HSCT stem cell transplant", "asct": "auto-HSCT HSCT stem cell transplant",
    "auto-sct": "auto-HSCT HSCT stem cell transplant", "allo-sct": "allo-HSCT HSCT stem cell transplant",
}
# matched in a sentence, not added to the search: "OP claim" searched as "outpatient" ranks the setting
# rows above the fact asked (measured on the dev split: a 340B modifier case lost its JZ sentence)
SETTING_SYNONYMS = {"op": "outpatient", "ip": "inpatient"}
_WORD = re.compile(r"[A-Za-z]+")
_JOINED = re.compile(r"[A-Za-z]+[-/][A-Za-z]+")  # "auto-sct", "f/u": looked up whole too


def expand_query(text: str) -> str:
    """The question plus the documents' spelling of its abbreviations."""
    words = _WORD.findall(text) + _JOINED.findall(text)
    extra = [SYNONYMS[w.lower()] for w in words if w.lower() in SYNONYMS]
    return " ".join([text, *extra])


# One unit of word overlap is one shared content word; the embedding similarity of question and
# sentence (stored at build time, index.sentences; 0 to 1, ~0.5 for a related sentence) is worth
# up to this many words. Measured on the dev split: 2 fixed one case and lost none; 3 and more
# began to put a sentence that talks about a code system above the row that gives the code.
SEMANTIC_WEIGHT = 2.0
FAQ_WEIGHT = 0.5  # share of a FAQ question's match given to its answer's first sentence
OTHER_PRODUCT_PENALTY = 6.0  # a sentence about other products only, for a question about one
SAME_PRODUCT_BONUS = 1.0  # a sentence that names the asked product (by name or code) and no other
OTHER_DRUG_PENALTY = 1.0  # a sentence about the LD or supportive drugs, for a question about the product alone
INTRO_PENALTY = 3.0  # a sentence ending in ':' only announces a list
STATUS_BONUS = 1.5  # a "still / now" question: a sentence that says a thing ended, changed or is current
_STILL = re.compile(r"\bstill\b|\bcurrently\b|\bnow\b|\bany ?more\b|\bthese days\b", re.I)
_STATUS = re.compile(r"\b(?:ended|expired|no longer|discontinued|eliminated|deleted|replaced|retired|removed|"
                     r"current(?:ly)?|as of|since|effective)\b", re.I)


@dataclass(frozen=True)
class _Asked:
    """What of the question bears on a sentence beyond its words."""

    products: set[str]     # the products the question is about
    currency: bool         # "NTAP still?": the sentence saying what holds now
    prefer_codes: bool     # a "which code" question
    kinds: set[str]        # the code kinds it asks for
    codes: set[str]        # the codes it names
    drugs: bool = False    # it names a drug given around the infusion (fludarabine, tocilizumab ...) or the LD


@lru_cache(maxsize=1)
def _other_drugs() -> re.Pattern[str]:
    """The drugs given around a CAR-T infusion (reference data's drug names) and the LD itself."""
    names = sorted((n for n in load_reference().code_for_name() if len(n) > 3), key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r"|lymphodeplet\w*|\bLD\b|flu/?cy|chemo\w*)\b", re.I)


def _fit(text: str, asked: _Asked) -> float:
    """How the sentence's shape and subject fit the question, added to its word score."""
    score = 0.0
    if text.rstrip().endswith(":"):
        score -= INTRO_PENALTY  # "Tecartus carries two FDA-approved indications:" introduces the answer
    if asked.currency and _STATUS.search(text):
        score += STATUS_BONUS
    named = set(products_in(normalize(text))) if asked.products else set()
    if named and not named & asked.products:
        score -= OTHER_PRODUCT_PENALTY  # "tecartus MCL 2L?": a Breyanzi row says nothing about Tecartus
    elif named & asked.products and len(named) == 1:
        score += SAME_PRODUCT_BONUS  # "JW abecma needed?": the sentence about Q2055 over the guide's boilerplate
    if asked.products and not asked.drugs and _other_drugs().search(text):
        score -= OTHER_DRUG_PENALTY  # "JW abecma needed?": a sentence on fludarabine's JW is not about Abecma
    if asked.prefer_codes:
        # a "which code" question wants a sentence that gives one, of the kind asked
        found_kinds = {k for _, _, k, c in find_codes(normalize(text)) if c.upper() not in asked.codes}
        found_kinds |= {"modifier"} if "modifier" in asked.kinds and _MODIFIER_GIVEN.search(text) else set()
        score += 3.0 if asked.kinds & found_kinds else (1.0 if found_kinds else 0.0)
    return score


def best_sentences(question: str, passages: list[Passage], k: int = 3,
                   per_passage: int = 1, prefer_codes: bool = False) -> list[Sentence]:
    """Highest-overlap sentences, at most `per_passage` from each passage, in score order.

    Overlap counts the question's content tokens (entity names removed: every passage in scope
    names the product), with codes the question names weighing most.
    """
    q_tokens = set(tokenize(normalize(expand_query(strip_entity_names(question) or question))))
    q_codes = {c.upper() for c in codes_in(normalize(question))}
    kinds = asked_code_kinds(question) if prefer_codes else set()
    if _MODIFIER_NAMED.search(question):
        kinds.discard("modifier")  # "does abecma need JZ": a yes/no about the modifier named, not "which modifier"
    if not q_tokens and not q_codes:
        return []
    asked = _Asked(set(products_in_question(normalize(question))), bool(_STILL.search(question)),
                   prefer_codes, kinds, q_codes,
                   drugs=bool(_other_drugs().search(question) or re.search(r"\b(?:cy|flu)\b", question, re.I)))
    found: list[Sentence] = []
    for rank, p in enumerate(passages):
        scored = []
        faq_match = 0.0  # how well the FAQ question this sentence answers matches the user's question
        for a, b in split_sentences(p):
            text = p.quote[a - p.span[0]:b - p.span[0]]
            if len(text) > MAX_CHARS:
                continue
            toks = set(tokenize(normalize(text)))
            overlap = len(q_tokens & toks)
            code_hits = len(q_codes & {c.upper() for c in codes_in(normalize(text))})
            if text.rstrip().endswith("?"):
                # a question is never the answer; in a FAQ its match lifts the answer that follows it
                # (by its words: every FAQ of a guide names the product's code)
                words = len((q_tokens - {c.lower() for c in q_codes}) & toks)
                faq_match = (words + SEMANTIC_WEIGHT * p.sentence_sims.get(sentence_id(text), 0.0)
                             if p.chunk_type == "faq" and words else 0.0)
                continue
            if overlap == 0 and code_hits == 0 and faq_match == 0:
                continue
            score = (overlap + 2.0 * code_hits + 0.5 / (rank + 1) + FAQ_WEIGHT * faq_match
                     + SEMANTIC_WEIGHT * p.sentence_sims.get(sentence_id(text), 0.0))
            faq_match *= 0.5  # the answer's first sentence most
            scored.append(Sentence(p, a, b, text, score + _fit(text, asked)))
        scored.sort(key=lambda s: -s.score)
        found.extend(scored[:per_passage])
    found.sort(key=lambda s: -s.score)
    out: list[Sentence] = []
    seen: set[str] = set()
    for s in found:  # the three guides share boilerplate: quote each wording once
        key = " ".join(s.text.split()).lower()
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out[:k]
