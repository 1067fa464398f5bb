"""The default composer (no LLM): a cited answer from retrieved passages and calculator results.

It leads with the direct answer (a tool result or the best quoted sentence), follows with
supporting quotes, each with a citation marker, then notes (sources that disagree, prices from
an earlier quarter, codes since retired). It never writes a number that is neither in a cited
quote nor a tool result; `answer.untraceable_numbers` checks. The LLM composer
(`assistant.llm.LLMComposer`) has the same call shape: `compose(turn) -> Answer`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from assistant.answer import Answer, AnswerKind, Citation, ToolCall
from assistant.answer_type import answer_type
from assistant.conflicts import conflict_notes, mark_quoted, mark_retired, outdated_conflicts, retired_code_notes
from assistant.core.quarters import Quarter
from assistant.core.question import Question
from assistant.core.reference import Product, Reference, load_reference
from assistant.extract import Sentence, best_sentences, split_sentences
from assistant.guards import SCOPE
from assistant.leads import (
    code_row_answer,
    doc_sentence,
    drg_verdict,
    drug_bundled_answer,
    dx_answer,
    extra_leads,
    guide_match,
    indication_answer,
    passing_mentions,
    setting_answer,
)
from assistant.retrieval import Passage
from assistant.tools.planning import dosing_unknown
from assistant.tools.registry import get as get_calculator
from index.corpus import configured_corpus
from index.tables import readable, row_at


@dataclass
class Turn:
    """Everything a composer gets: the resolved question, the passages found, the calculator
    calls made (with the arithmetic done to form their arguments), notes so far, the context
    the turn understood and the date it answers for."""

    question: Question
    passages: list[Passage]
    tool_calls: list[ToolCall] = field(default_factory=list)
    derived: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    context: dict = field(default_factory=dict)
    today: dt.date = field(default_factory=dt.date.today)


class Composer(Protocol):
    name: str

    def compose(self, turn: Turn) -> Answer: ...


class DefaultComposer:
    name = "default"

    def compose(self, turn: Turn) -> Answer:
        q, passages = turn.question, turn.passages
        # a payer's criteria are a list of short conditions: quote more of them
        criteria = bool(q.payers) and "policy" in q.intents and not turn.tool_calls
        sentences = best_sentences(q.asked, passages, k=8 if turn.tool_calls else 5 if criteria else 3,
                                   per_passage=2 if criteria else 1, prefer_codes="code" in q.intents)
        if turn.tool_calls:
            return compose_with_tools(turn, sentences)
        return compose_from_passages(turn, sentences)


def compose_from_passages(turn: Turn, sentences: list[Sentence]) -> Answer:
    """A quoted answer: the direct code answer or the best sentence first, then support."""
    q, notes = turn.question, turn.notes
    ref = load_reference()
    uncovered = uncovered_products(q)
    # A product no document is about: only what reference data also covers (its code, a
    # CMS price, an NDC) may be answered; its dosing or coverage rules may not.
    if missing := dosing_unknown(q, ref):
        # "breyanzi CLL LD regimen + J codes": its Q-code is known, its regimen and doses are not
        names = ", ".join(p.brand for p in (ref.product_by_id(u) for u in missing) if p)
        prod = ref.product_by_id(missing[0])
        if len(missing) == 1 and prod is not None and (said := passing_mentions(q, prod)):
            citations = [cite_sentence(s, i) for i, (s, _t) in enumerate(said, 1)]
            quoted = " ".join(f"The {title} says: “{one_line(s.text)}” [{c.marker}]" for (s, title), c in zip(said, citations, strict=True))
            what = " or ".join(w for topic, w in (("lymphodepletion", "lymphodepletion regimen"), ("cell_dose", "cell dose"))
                               if topic in q.intents)
            text = mark_retired(f"**My sources have no {prod.brand} label or billing guide, so they do not give its {what}.** "
                                f"The nearest they come is a remark in another product's guide: {quoted}", q.service_day(turn.today))
            notes = notes + retired_code_notes([c.quote for c in citations], q.service_day(turn.today))
            return Answer(question=q.text, kind=AnswerKind.NOT_COVERED, text=text, citations=citations, notes=dedupe(notes),
                          context=turn.context)
        what, cant = (("lymphodepletion regimen", "its doses or their billing units") if "lymphodepletion" in q.intents
                      else ("cell dose", "a dose range or cell count"))
        held = sorted(p.brand for p in (ref.product_by_id(x) for x in ref.dosing_products()) if p)
        return Answer(question=q.text, kind=AnswerKind.NOT_COVERED, notes=notes, context=turn.context,
                      text=f"My sources do not give the {what} for {names}, so I can't give {cant} (they give it "
                           f"for {', '.join(held[:-1])} and {held[-1]} only). {SCOPE}")
    if uncovered and len(uncovered) == len(q.products) and not {"code", "payment", "ndc"} & set(q.intents):
        names = ", ".join(p.brand for p in (ref.product_by_id(u) for u in uncovered) if p)
        return Answer(question=q.text, kind=AnswerKind.NOT_COVERED, notes=notes, context=turn.context,
                      text=f"My sources do not cover {names} for this question, so I can't give "
                           f"you a figure or rule for it. {SCOPE}")
    setting = setting_answer(q, turn.passages, ref)
    lead = (setting or drug_bundled_answer(q, ref) or drg_verdict(q, ref) or dx_answer(q, turn.passages, ref)
            or direct_code_answer(q, turn.passages, ref) or every_cart_code(q, ref) or code_row_answer(q, ref)
            or indication_answer(q, ref))
    if not sentences and lead is None:
        return Answer(question=q.text, kind=AnswerKind.NOT_COVERED, notes=notes, context=turn.context,
                      text="I found nothing in my sources that answers this. " + SCOPE)
    compared = comparison_lead(q, turn.passages, ref) if lead is None else None
    nearest = lead[0] if lead is not None else sentences[0] if sentences and not compared else None
    if nearest is not None and not re.search(r"\d", _NOT_FIGURES.sub("", nearest.text)) and (
            _FIGURE_ONLY.search(q.asked) or lead is None and _FIGURE_ASKED.search(q.asked) and answer_type(q.asked).kind == "amount"):
        # "FY26 MS-DRG 018 relative weight + base payment?": no passage gives the figure, so it is said first
        lead = (nearest, f"My sources do not give that figure. The nearest they come: {one_line(nearest.text)}")
    # the other parts join a lead (a setting's payment lead answers no code system: "POS for each" is still asked)
    extras = extra_leads(q, turn.passages, ref, lead[1], set() if setting else None) if lead is not None else []
    if lead is None and nearest is not None and not compared and (more := extra_leads(q, turn.passages, ref, shown(nearest))):
        # the best sentence leads, and the compound question's other parts join it ("D89.832 as principal or secondary?")
        lead, extras = (nearest, shown(nearest)), more
    parts = [s for s, _t in extras if s is not None]
    if lead is not None:
        sentences = [lead[0], *parts] + [s for s in sentences if s.text not in {lead[0].text, *(p.text for p in parts)}][:2]
    elif compared:  # "abecma vs carvykti target antigen": each product's own sentence leads
        sentences = [s for _b, s in compared] + [s for s in sentences if s.text not in {c.text for _b, c in compared}][:1]
    citations = [cite_sentence(s, i) for i, s in enumerate(sentences, 1)]
    day = q.service_day(turn.today)
    lines = [f"{mark_quoted(shown(s), s.text, day)} [{c.marker}]" for s, c in zip(sentences, citations, strict=True)]
    if lead is not None:
        lines[0] = f"{lead[1]} [1]"
        marker = 2
        for sent, text in extras:  # the compound question's other parts, in the lead paragraph
            lines[0] += f" {text}" + (f" [{marker}]" if sent is not None else "")
            marker += sent is not None
        lines = [lines[0]] + lines[1 + len(parts):]
    elif compared:
        lines = [" ".join(f"**{brand}:** {lines[i]}" for i, (brand, _s) in enumerate(compared))] + lines[len(compared):]
    lines[0] = mark_retired(lines[0], day)  # the line a coder copies says a code is retired
    body = lines[0] + ("\n\n" + "\n".join(f"- {line}" for line in lines[1:]) if len(lines) > 1 else "")
    notes = notes + stale_price_notes(citations, sentences, turn.today) + policy_version_notes(citations, q)
    notes += conflict_notes(q, citations) + retired_code_notes([c.quote for c in citations], day)
    return Answer(question=q.text, kind=AnswerKind.ANSWER, text=body, citations=citations, notes=dedupe(notes),
                  context=turn.context)


def comparison_lead(q: Question, passages: list[Passage], ref: Reference) -> list[tuple[str, Sentence]] | None:
    """A comparison of products: each product's best sentence from its own documents (one product's
    guide says nothing reliable about the other), or None unless every product has one."""
    if not q.comparison or len(q.products) < 2:
        return None
    out: list[tuple[str, Sentence]] = []
    for pid in q.products[:3]:
        prod = ref.product_by_id(pid)
        own = [p for p in passages if pid in p.doc_products]
        best = best_sentences(q.asked, own, k=1) if prod is not None and own else []
        if not best or best[0].text in {s.text for _b, s in out}:
            return None
        out.append((prod.brand, best[0]))
    return out


def compose_with_tools(turn: Turn, sentences: list[Sentence]) -> Answer:
    """Lead with the calculators' results and formulas, then the passages that state the rule."""
    q, calls = turn.question, turn.tool_calls
    # the results a question asked for (four CPT services, three codes, a CPT code and the Q-code's units)
    # form one lead paragraph: the coder copies the first one
    summaries = [c.result.summary for c in calls if c.result]
    # each result's first paragraph in the lead (units and the coinsurance on them), the rest after it
    lines = ["\n".join(s.split("\n\n")[0] for s in summaries), *(r for s in summaries for r in s.split("\n\n")[1:])] \
        if summaries else []
    lines += [f"*Input:* {step}" for step in turn.derived]
    for c in calls:
        if c.result and c.result.formula:
            lines.append(f"*How:* {c.result.formula}")
        elif c.error:
            lines.append(f"*{c.name}:* {c.error}")
    ref = load_reference()
    inline = inline_citations(calls, turn.question.service_day(turn.today))
    sentences = [] if inline else [s for s in sentences if backs_a_result(s, calls, ref)][:2]
    citations = inline + [cite_sentence(s, i) for i, s in enumerate(sentences, len(inline) + 1)]
    answered = {row["system"] for c in calls if c.result for row in c.result.values.get("codes") or []}
    day = turn.question.service_day(turn.today)
    for sent, text in extra_leads(q, turn.passages, ref, "\n".join(lines), answered):  # a compound question's other parts
        if sent is not None:
            citations.append(cite_sentence(sent, len(citations) + 1))
        lines[0] += f" {mark_retired(text, day)}" + (f" [{citations[-1].marker}]" if sent is not None else "")
    if (_TURNAROUND.search(q.asked) and [c.name for c in calls] == ["payer_policy"] and lines
            and not _DURATION_GIVEN.search(lines[0])):
        # "PDAC review turnaround - how many days": the policy says who reviews, not how long it takes
        lines[0] = "**My sources do not give that time.** The nearest they come: " + lines[0]
    body = "\n\n".join(lines)
    if sentences:
        body += "\n\nFrom the sources:\n" + "\n".join(f"- {mark_quoted(one_line(c.quote), c.quote, day)} [{c.marker}]"
                                                      for c in citations[len(inline):])
    warned = [w for c in calls if c.result for w in c.result.warnings]
    # a calculator whose result shows both sides of a known conflict supersedes its note
    exclude: set[str] = set()
    for c in calls:
        calc = get_calculator(c.name)
        if c.result and calc is not None and c.result.values.get("supersedes", True):
            exclude |= calc.supersedes
    exclude -= {cid for c in citations[len(inline):] for cid in outdated_conflicts(c.quote)}  # a marked bullet's note stays
    notes = turn.notes + warned + policy_version_notes(citations, q) + conflict_notes(q, citations, exclude=exclude)
    notes += retired_code_notes([c.quote for c in citations], day)
    return Answer(question=q.text, kind=AnswerKind.TOOL, text=body, citations=citations, tool_calls=calls,
                  notes=dedupe(notes), context=turn.context)


def inline_citations(calls: Sequence[ToolCall], day: dt.date | None = None) -> list[Citation]:
    """The document citations of a calculator whose summary marks them inline ([1], [2] ... in
    the order of its citations): each becomes an answer citation with its span in the document."""
    corpus = configured_corpus()
    docs = corpus.documents
    out: list[Citation] = []
    for c in calls:
        calc = get_calculator(c.name)
        if not (c.result and calc is not None and calc.inline_citations):
            continue
        for entry in c.result.citations:
            # the revision in force on the date of service (a record is used only while it still holds the quote)
            doc = docs.get(corpus.in_force(entry["ref"].removeprefix("doc:"), (day or dt.date.today()).isoformat()))
            start = doc.text.find(entry["quote"]) if doc is not None else -1
            if doc is None or start < 0:
                continue  # a quote not in the document is not cited (tests/test_policy.py keeps them exact)
            out.append(Citation(marker=len(out) + 1, doc_id=doc.id, title=doc.title, section=entry.get("label", ""),
                                quote=entry["quote"], span=(start, start + len(entry["quote"])), kind=doc.kind,
                                effective=doc.effective or "", reviewed=doc.reviewed or ""))
    return out


def backs_a_result(sentence: Sentence, calls: Sequence[ToolCall], ref: Reference) -> bool:
    """Whether a supporting sentence backs what a calculator computed: same product (or code)
    and the same topic. A Yescarta payment must not be "supported" by a Tecartus price."""
    for c in calls:
        calc = get_calculator(c.name)
        if calc is None or calc.supports is None or not calc.supports(sentence.text, sentence.passage.products, c.arguments, ref):
            continue
        if _price_of_another_quarter(sentence, c):
            continue  # a Q2 2026 price does not back a Q1 2026 limit
        return True
    return False


def _price_of_another_quarter(sentence: Sentence, call: ToolCall) -> bool:
    quarter = (call.result.values.get("quarter") if call.result else None) or ""
    pq = sentence.passage.price_quarter
    return bool(quarter and pq and "$" in sentence.text and pq != quarter)


def tool_failure(turn: Turn, missing_data: bool) -> Answer:
    """Every calculator call failed: say why in the calculator's words."""
    q, calls = turn.question, turn.tool_calls
    messages = " ".join(c.error or "" for c in calls)
    if missing_data:
        lead = "" if messages.startswith(("My sources", "My reference data")) else "My reference data does not cover this: "
        return Answer(question=q.text, kind=AnswerKind.NOT_COVERED, tool_calls=calls, notes=turn.notes,
                      context=turn.context, text=lead + messages)
    return Answer(question=q.text, kind=AnswerKind.CLARIFY, needs=[c.name for c in calls], tool_calls=calls,
                  notes=turn.notes, context=turn.context, text="I can't calculate that as asked: " + messages)


# --- code answers ---------------------------------------------------------------------------

_CODE_WORDS = ("hcpcs", "q-code", "q code", "qcode", "j-code", "j code", "jcode", "drug code", "what code", "which code", "code for",
               "billed under", "billing code", "what do we bill", "what do i bill", "what should we bill")


def direct_code_answer(q: Question, passages: list[Passage], ref: Reference):
    """'What is the code for X?': the product's HCPCS code, backed by a passage that states it;
    'what is Q2056?': the product the code is for."""
    if (rev := _REVERSE.match(q.asked.strip())) and (prod := ref.product(rev.group(1) or rev.group(2))) and prod.hcpcs:
        found = code_sentence(prod, passages) or code_sentence(prod, passages, named_only=False)
        if found is not None:  # (the CMS descriptor's cell count is not in the quote: not shown)
            return found[0], f"**{prod.hcpcs}** is the HCPCS code for {prod.brand} ({prod.generic}). \"{one_line(found[1])}\""
    if "code" not in q.intents or not q.products:
        return None
    if q.comparison or len(q.products) > 1:
        return comparison_code_answer(q, passages, ref)
    if not any(w in q.asked.lower() for w in _CODE_WORDS):
        return None
    if answer_type(q.asked).code_system not in (None, "HCPCS"):
        return None  # "dx code for tecartus" asks a diagnosis, not the product's Q-code
    prod = ref.product_by_id(q.product or "")
    # a sentence naming the product and its code; else any sentence with the code (the code is reference data)
    found = (code_sentence(prod, passages) or code_sentence(prod, passages, named_only=False)) if prod else None
    if prod is not None and (found is None or "billed under" not in found[1]):
        found = guide_code_sentence(prod) or found  # the guide's own statement, when the search did not bring it
    if found is None:
        return None
    sentence, text = found
    units = ""
    code = ref.code(prod.hcpcs)
    if re.search(r"\bunits?\b", q.asked, re.I) and code is not None and code.per_dose:
        units = " Billed as one unit per therapeutic dose (one infusion), whatever the cell count."
    if re.search(r"\bj[- ]?codes?\b", q.asked, re.I) and prod.hcpcs.startswith("Q"):
        units = f" It is a Q-code; {prod.brand} has no J-code.{units}"
    return sentence, f"**{prod.hcpcs}** is the HCPCS code for {prod.brand} ({prod.generic}).{units} \"{one_line(text)}\""


# "what is Q2056", "whats q2053 for", "Q2055 = which product?": the code's product
_REVERSE = re.compile(r"(?:what(?:'?s| is| are)?|which (?:drug|product) is)\s+(?:hcpcs\s+|code\s+)?(Q\d{4})\b"
                      r"(?:\s+(?:for|code|hcpcs|again|mean))*\s*\??$|(Q\d{4})\s*(?:=|is)\s*(?:what|which)\b.*$", re.I)


_FIGURE_ASKED = re.compile(r"relative weight|\bbase (?:rate|payment)|\bweights?\b|\brates?\b|\$|\bhow much\b|\bamount\b", re.I)
# figures no calculator gives and the guides only talk about (a DRG weight, an APC rate, an outlier threshold)
_FIGURE_ONLY = re.compile(r"relative weight|outlier threshold|\bbase (?:rate|payment)|\bAPC (?:payment )?rate|\bpayment rate\b|"
                          r"conversion factor|\bwage index", re.I)
# how long a payer takes to decide (not how long an approval lasts)
_TURNAROUND = re.compile(r"turn[- ]?around|\bTAT\b|how (?:fast|quick\w*|soon)|how many (?:business |calendar )?days|"
                         r"(?:decision|review|processing|response) time|\bhear back\b", re.I)
_DURATION_GIVEN = re.compile(r"\b\d+\s*(?:-\s*\d+\s*)?(?:calendar |business |working )?(?:days?|months?|mos?|weeks?|wks?|hours?|hrs?|"
                             r"years?)\b", re.I)
_NOT_FIGURES = re.compile(r"(?:MS-)?DRG\s*\d{3}|\b[A-Z]+\d+[\w.]*|\b\d+[A-Z]\w*")  # codes (MS-DRG 018, Q2055, 0540T), not amounts
_ANY_CART = re.compile(r"\bcar-?t\b|\bcell therap", re.I)


def every_cart_code(q: Question, ref: Reference):
    """'whats the q code for car-t': no product named, so each CAR-T product's own code, and which one
    is asked back (backed by the first covered product's guide sentence)."""
    at = answer_type(q.asked)
    if not ("code" in q.intents and "payment" not in q.intents and not q.products and _ANY_CART.search(q.asked)
            and at.code_system in (None, "HCPCS") and at.kind != "amount"):
        return None
    prods = [p for p in ref.products if p.car_t and p.hcpcs]
    found = next((f for p in prods if (f := guide_code_sentence(p)) is not None), None)
    if found is None:
        return None
    listed = "; ".join(f"**{p.hcpcs}** {p.brand}" for p in prods)
    return found[0], (f"Each CAR-T product has its own HCPCS Q-code: {listed} (product reference data). "
                      f"Which product is this for? \"{one_line(found[1])}\"")


def comparison_code_answer(q: Question, passages: list[Passage], ref: Reference):
    """'Abecma vs Carvykti HCPCS': each product's code from reference data, backed by the first
    passage sentence that states it (the lead cites the first product's sentence)."""
    if not re.search(r"hcpcs|q-?code|j-?code|drug code|billing code|\bcodes?\b", q.asked, re.I):
        return None
    parts, first = [], None
    for prod in (ref.product_by_id(pid) for pid in q.products):
        if not prod or not prod.hcpcs:
            continue
        parts.append(f"**{prod.hcpcs}** {prod.brand}")
        if first is None:
            first = code_sentence(prod, passages, named_only=False)
    if len(parts) < 2 or first is None:
        return None
    return first[0], "HCPCS codes: " + "; ".join(parts) + f" (product reference data). \"{one_line(first[1])}\""


def code_sentence(prod: Product, passages: list[Passage], named_only: bool = True):
    """The sentence that best states `prod`'s HCPCS code: a plain statement naming the product
    ("Carvykti is billed under HCPCS Q2056") before a table cell that names it, before (unless
    `named_only`) any sentence that only has the code. Returns (Sentence, text) or None."""
    best = None
    for p in passages:
        for a, b in split_sentences(p):
            text = p.quote[a - p.span[0]:b - p.span[0]]
            if prod.hcpcs not in text or len(text) >= 420 or text.rstrip().endswith("?"):
                continue  # (a FAQ's question states nothing)
            named = prod.brand in text or prod.generic.lower() in text.lower()
            # "do not bill Q2055 if the product fails" names the code, but does not state it
            negated = bool(re.search(r"\b(?:do not|don't|never|not) (?:be )?bill", text, re.I))
            rank = 0 if named and "billed under" in text else 1 if named and not negated else 2 if not negated else 3
            if (named and not (negated and named_only) or not named_only) and (best is None or rank < best[0]):
                best = (rank, Sentence(p, a, b, text, 99.0), text)
    return best[1:] if best else None


def guide_code_sentence(prod: Product):
    """'Abecma is billed under HCPCS Q2055 as a single therapeutic dose.' from the product's own
    billing guide, as (Sentence, text), or None."""
    pattern = re.compile(rf"[^.\n]*\b{re.escape(prod.brand)}\b[^.\n]*\bbilled under HCPCS {re.escape(prod.hcpcs)}\b[^.\n]*\.")
    if (found := guide_match(prod, pattern)) is None:
        return None
    doc, m = found
    return doc_sentence(doc, m.start(), m.end()), m.group(0)


# --- small pieces -----------------------------------------------------------------------------

def cite_sentence(s: Sentence, marker: int) -> Citation:
    """A quoted sentence as the answer's citation number `marker`."""
    return Citation(marker=marker, doc_id=s.passage.doc_id, title=s.passage.title, section=s.passage.section,
                    quote=s.text, span=(s.start, s.end), kind=s.passage.kind,
                    effective=s.passage.effective, reviewed=s.passage.reviewed)


def stale_price_notes(citations: list[Citation], sentences: list[Sentence], today: dt.date) -> list[str]:
    """A quoted price from a quarter before today's is flagged with its quarter."""
    notes = []
    now = Quarter.of(today)
    for c, s in zip(citations, sentences, strict=True):
        pq = s.passage.price_quarter
        if pq and "$" in c.quote and Quarter.parse(pq) < now:
            quoted = Quarter.parse(pq)
            notes.append(f"The price quoted in [{c.marker}] is the Q{quoted.q} {quoted.year} Medicare payment "
                         f"limit; today is in Q{now.q} {now.year}, so it may be out of date.")
    return notes


def policy_version_notes(citations: list[Citation], q: Question) -> list[str]:
    """A payer policy quoted for a date of service before the version on hand took effect (or
    was last revised) says so: the version in force then is not in the sources."""
    d = q.service_date
    if d is None or d.source == "today":
        return []
    notes, seen = [], set()
    versions = configured_corpus().versions
    for c in citations:
        # a later revision is quoted only when it is the one in force (the search leaves out the others)
        if c.kind != "payer-policy" or c.doc_id in seen or (c.doc_id in versions and versions[c.doc_id].number > 1):
            continue
        seen.add(c.doc_id)
        effective, reviewed = _day(c.effective), _day(c.reviewed)
        if effective and d.end < effective:
            notes.append(f"{c.title}: the version on hand takes effect {c.effective}; the date of service ({d.label()}) "
                         "is before it, so an earlier version (not in my sources) applied then.")
        elif reviewed and d.end < reviewed and (effective is None or reviewed > effective):
            notes.append(f"{c.title}: the version on hand was last reviewed {c.reviewed}; for a date of service of "
                         f"{d.label()} the version in force then may differ (see its revision history).")
    return notes


def _day(text: str) -> dt.date | None:
    """A document date ('2025-09-01' or '2026-05': its first day)."""
    try:
        return dt.date.fromisoformat(text if len(text) == 10 else f"{text}-01")
    except (TypeError, ValueError):
        return None


def uncovered_products(q: Question) -> list[str]:
    """Products the question names that no source document is about."""
    covered = configured_corpus().products
    return [p for p in q.products if p not in covered]


def shown(s: Sentence) -> str:
    """How a quoted sentence reads in the answer: a table row as its header's names with the cells
    ("Denial: ...; Fix: ..."), not its glued extraction; the citation keeps the exact quote."""
    doc = configured_corpus().documents.get(s.passage.doc_id)
    row = row_at(doc, s.start, s.end) if doc is not None else None
    return readable(row) if row is not None and row.complete else one_line(s.text)


def one_line(text: str) -> str:
    """A quote on one line, without the source's leading list/heading marks (the citation keeps
    the exact quote)."""
    return " ".join(text.split()).lstrip("-*#• ").strip()


def dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
