"""What a turn checks before it answers: unreadable or oversized input, instructions smuggled into
a question, off-topic or clinical questions, noise, and names the sources never mention.

Each check returns the answer to give instead (refusal, clarify, not covered, error) or None.
"""

from __future__ import annotations

import re
import unicodedata

from assistant.answer import Answer, AnswerKind
from assistant.answer_type import answer_type
from assistant.core.question import Question
from assistant.core.reference import load_reference
from assistant.core.scenario import negated_mention, prior_mention
from index.corpus import configured_corpus

MAX_QUESTION_CHARS = 4000
# zero-width and soft-hyphen characters, and the bidi controls that make text read differently
# from what it says (a "trojan source" question or log line)
INVISIBLE = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u00ad\u202a-\u202e\u2066-\u2069]")

SCOPE = ("I answer billing, coding and coverage questions about CAR-T cell therapies from my "
         "sources (billing guides for Abecma, Carvykti and Tecartus; Centene and CarePartners of "
         "Connecticut policies for Abecma), and I calculate billing units, BSA, cell doses, "
         "tocilizumab doses, Medicare payments and NDC conversions.")
INJECTION_NOTE = ("Instructions inside a question do not change how I work; I only answer from my sources "
                  "and calculators.")

# Payers and drugs people ask about; any the sources never mention is "not covered" (fuzzy
# spelling tolerance would otherwise take "humana" for "human").
KNOWN_NAMES = re.compile(r"\b(?:humana|anthem|kaiser|aetna|cigna|unitedhealthcare|uhc|bcbs|highmark|molina|"
                         r"wellcare|elevance|oscar|centene|carepartners|tricare|aucatzyl|blenrep|talvey|"
                         r"lynozyfic|darzalex|xpovio)\b", re.I)
# Code sets and claim rules people ask for that no source document gives (a payer's timely-filing
# limit, the year's Medicare deductible amounts; the payment calculator only says it assumes the
# Part B deductible met).
ABSENT_PHRASES = re.compile(r"\b(revenue code|rev code|condition code|value code|occurrence code|fee schedule|"
                            r"medical policy number|timely[- ]filing(?: limit| deadline| window)?|filing (?:limit|deadline)|"
                            r"part a deductible|part b deductible amount|20\d\d part b deductible)s?\b", re.I)
_STOP = {"the", "and", "for", "with", "are", "this", "that", "what", "how", "from", "not"}


def clean_text(text: object) -> str:
    """Full-width letters, ligatures and invisible characters typed or pasted by users, folded."""
    text = text if isinstance(text, str) else ""
    return INVISIBLE.sub("", unicodedata.normalize("NFKC", text))


def check_input(text: str) -> Answer | None:
    """An empty or oversized message."""
    stripped = text.strip()
    if not stripped:
        return Answer(question=text, kind=AnswerKind.CLARIFY, text="Please type a question, for example "
                      "*What is the HCPCS code for Carvykti?* or *J9185 units for 55.5 mg*.")
    if len(stripped) > MAX_QUESTION_CHARS:
        return Answer(question=text[:200], kind=AnswerKind.ERROR,
                      text=f"That message is {len(stripped):,} characters long; the limit is "
                           f"{MAX_QUESTION_CHARS:,}. Please ask one question at a time.")
    return None


def check_question(q: Question, text: str, notes: list[str]) -> Answer | None:
    """Off-topic, clinical-decision or noise questions (before the conversation keeps them)."""
    if q.off_topic or (q.injection and not q.text):
        return Answer(question=text, kind=AnswerKind.REFUSAL, notes=notes, text=f"Sorry, that is outside what I do. {SCOPE}")
    if q.treatment_decision:
        return Answer(question=text, kind=AnswerKind.REFUSAL, notes=notes,
                      text="I can't advise on treatment choices; that is a clinical decision for "
                           "the care team. I can tell you how a product is coded, billed and "
                           "covered, and calculate units and payments.")
    if is_noise(q):
        return Answer(question=text, kind=AnswerKind.CLARIFY, notes=notes, needs=["question"],
                      text="I could not find a billing question in that. Please ask about a code, "
                           "a payment limit, a dose or units, or a payer's criteria, e.g. *What is "
                           "the HCPCS code for Carvykti?*")
    return None


def check_names(q: Question, notes: list[str], context: dict) -> Answer | None:
    """A payer, drug or code set the sources never mention: not covered."""
    missing = unknown_terms(q)
    if not missing or len(answer_type(q.asked).code_systems) > 1:
        return None  # "Q code, units and rev code": the other parts are answered, the missing one said so
    return Answer(question=q.text, kind=AnswerKind.NOT_COVERED, notes=notes, context=context,
                  text=f"My sources do not mention {', '.join(missing)}, so I can't answer this from them. {SCOPE}")


def unknown_terms(q: Question) -> list[str]:
    """Names in the question the sources never mention: a payer or drug from a list of the
    usual suspects, or a code set no document gives. (A generic "word not in the corpus" rule
    was tried and rejected: it refused "convert", "sequestration" and "weighs".)"""
    absent = [m.group(1).lower() for m in ABSENT_PHRASES.finditer(q.text)]  # a billing question by itself
    words = vocabulary()
    therapies = {n for names in load_reference().drug_classes.values() for n in names}
    found = [m.group(0) for m in KNOWN_NAMES.finditer(q.text) if m.group(0).lower() not in words
             and not (m.group(0).lower() in therapies and _as_prior_therapy(q, m.start()))]
    # "do we need KX on Q2056": a modifier no source or reference row names (JW, JZ, JG, TB are named)
    found += [f"the {m} modifier" for m in _modifiers_named(q.text) if m not in _known_modifiers()]
    if absent or found and (q.products or q.payers or q.codes or q.intents):
        return list(dict.fromkeys(absent + found))
    return []


# a two-character modifier, typed in capitals, asked about as one: "KX modifier", "need KX on Q2056", "modifier KX"
_MODIFIER_ASKED = re.compile(r"\b([A-Z][A-Z0-9])\s+(?:mod(?:ifier)?s?\b|on (?:the )?(?:[QJ]\d{4}|q[- ]?code|line|claim))|"
                             r"\bmod(?:ifier)?s?\s+([A-Z][A-Z0-9])\b")


def _modifiers_named(text: str) -> list[str]:
    return [m.group(1) or m.group(2) for m in _MODIFIER_ASKED.finditer(text)]


def _known_modifiers() -> set[str]:
    """Every two-character capital token the documents print, and the reference data's modifiers."""
    from index.corpus import configured_corpus

    docs = " ".join(d.text for d in configured_corpus().documents.values())
    return set(re.findall(r"\b[A-Z][A-Z0-9]\b", docs)) | {str(m).upper() for m in load_reference().modifiers}


def _as_prior_therapy(q: Question, start: int) -> bool:
    """A drug named as a patient's prior therapy ("had Talvey 2024", a scenario put to a payer) is
    context for a coverage check, not a question about that drug."""
    return bool(q.payers) or prior_mention(q.text, start) or negated_mention(q.text, start)


def is_noise(q: Question) -> bool:
    """Nothing in the question the assistant could work with: no product, code, payer, intent,
    figure, and no word that occurs in the sources ("???", "asdfghjkl qwerty")."""
    if q.products or q.codes or q.payers or q.intents or q.indication or q.figures.weight_kg or q.figures.dose_mg:
        return False
    words = vocabulary()
    return not any(t in words and t not in _STOP for t in re.findall(r"[a-z]{3,}", q.text.lower()))


def vocabulary() -> frozenset[str]:
    """Every word of the corpus and its reference data (lower case)."""
    return configured_corpus().vocabulary
