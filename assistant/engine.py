"""One turn of the conversation: understand → call tools → retrieve → compose a cited answer.

The default composer needs no LLM: it leads with the direct answer (a tool result or the best
quoted sentence), follows with supporting quotes, each with a citation marker, then notes
(sources that disagree, prices from an earlier quarter, codes since retired). It never writes a
number that is neither in a cited quote nor a tool result; `answer.untraceable_numbers` checks.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from dataclasses import dataclass, field

from assistant import config as config_mod
from assistant.answer import Answer, Citation, ToolCall
from assistant.extract import best_sentences
from assistant.retrieval import HybridRetriever, Passage, QueryEntities
from assistant.understand import Question, read_question, resolve
from index.entities import product, products

MAX_QUESTION_CHARS = 4000
LLM_PASSAGES = 6  # passages an LLM composer sees

SCOPE = ("I answer billing, coding and coverage questions about CAR-T cell therapies from my "
         "sources (billing guides for Abecma, Carvykti and Tecartus; Centene and CarePartners of "
         "Connecticut policies for Abecma), and I calculate billing units, BSA, cell doses, "
         "tocilizumab doses, Medicare payments and NDC conversions.")


@dataclass
class Conversation:
    """What follow-ups inherit: the last resolved question. One per chat session."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    turns: list[Question] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list, repr=False)  # last turn's, for evals/debug
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def last(self) -> Question | None:
        return self.turns[-1] if self.turns else None


def _today() -> dt.date:
    return dt.date.today()


def current_quarter(today: dt.date | None = None) -> str:
    today = today or _today()
    return f"{today.year}Q{(today.month - 1) // 3 + 1}"


class Engine:
    def __init__(self, retriever=None, cfg: config_mod.Config | None = None, llm="from-env"):
        """`retriever`: anything with HybridRetriever's `search` (the evals swap in baselines).
        `llm`: an LLMComposer, None for the default composer only, or "from-env" to use one
        when CART_LLM_BASE_URL is set."""
        self.cfg = cfg or config_mod.load()
        self.retriever = retriever or HybridRetriever(self.cfg)
        if llm == "from-env":
            from assistant.llm import LLMComposer, LLMSettings

            settings = LLMSettings.from_env()
            llm = LLMComposer(settings, tools=_function_tools()) if settings else None
        self.llm = llm

    # --- public ------------------------------------------------------------------------

    def ask(self, text: str, conversation: Conversation | None = None,
            today: dt.date | None = None) -> Answer:
        """Answer one question in its conversation; never raises for bad input."""
        started = time.perf_counter()
        conversation = conversation or Conversation()
        with conversation.lock:
            answer = self._turn(text if isinstance(text, str) else "", conversation, today or _today())
        answer.latency_ms = round((time.perf_counter() - started) * 1000, 1)
        return answer

    # --- the turn ----------------------------------------------------------------------

    def _turn(self, text: str, conv: Conversation, today: dt.date) -> Answer:
        stripped = text.strip()
        if not stripped:
            return Answer(question=text, kind="clarify", text="Please type a question, for example "
                          "*What is the HCPCS code for Carvykti?* or *J9185 units for 55.5 mg*.")
        if len(stripped) > MAX_QUESTION_CHARS:
            return Answer(question=text[:200], kind="error",
                          text=f"That message is {len(stripped):,} characters long; the limit is "
                               f"{MAX_QUESTION_CHARS:,}. Please ask one question at a time.")
        q = resolve(read_question(stripped), conv.last)
        notes: list[str] = []
        if q.injection:
            notes.append("Instructions inside a question do not change how I work; I only answer "
                         "from my sources and calculators.")
        if q.off_topic or (q.injection and not q.text):
            return Answer(question=text, kind="refusal", refused=True, notes=notes,
                          text=f"Sorry, that is outside what I do. {SCOPE}")
        if q.treatment_decision:
            return Answer(question=text, kind="refusal", refused=True, notes=notes,
                          text="I can't advise on treatment choices; that is a clinical decision for "
                               "the care team. I can tell you how a product is coded, billed and "
                               "covered, and calculate units and payments.")
        conv.turns.append(q)
        context = _context(q)

        passages = self._retrieve(q)
        conv.passages = passages
        answer = self._compose(q, passages, notes, context, today)
        if self.llm is not None and answer.kind in ("answer", "tool") and passages:
            answer = self.llm.compose(q.text, passages[:LLM_PASSAGES], answer.tool_calls, answer)
        return answer

    def _retrieve(self, q: Question) -> list[Passage]:
        # A follow-up's inherited product/indication are added to the search text, and the
        # resolved entities (not just the words typed) steer the scoping.
        extra = []
        if "product" in q.inherited and q.product:
            extra.append(product(q.product).brand)
        if "indication" in q.inherited and q.indication:
            extra.append(q.indication.upper())
        query = " ".join([q.text, *extra])
        ents = QueryEntities(products=q.products, payers=tuple(p for p in q.payers if p != "medicare"),
                             codes=tuple(c.upper() for c in q.codes), comparison=q.comparison)
        return self.retriever.search(query, top_k=max(self.cfg.top_k, 10), entities=ents)

    # --- composition -------------------------------------------------------------------

    def _compose(self, q: Question, passages: list[Passage], notes: list[str], context: dict,
                 today: dt.date) -> Answer:
        uncovered = uncovered_products(q)
        sentences = best_sentences(q.text, passages, k=3, prefer_codes="code" in q.intents)
        # A product no document is about: only what reference data also covers (its code, a
        # CMS price, an NDC) may be answered; its dosing or coverage rules may not.
        if uncovered and len(uncovered) == len(q.products) and not {"code", "payment", "ndc"} & set(q.intents):
            names = ", ".join(product(p).brand for p in uncovered)
            return Answer(question=q.text, kind="not_covered", not_covered=True, notes=notes,
                          context=context,
                          text=f"My sources do not cover {names} for this question, so I can't give "
                               f"you a figure or rule for it. {SCOPE}")
        if not sentences:
            return Answer(question=q.text, kind="not_covered", not_covered=True, notes=notes,
                          context=context,
                          text="I found nothing in my sources that answers this. " + SCOPE)
        citations: list[Citation] = []
        lines: list[str] = []
        lead = direct_code_answer(q, passages)
        if lead is not None:
            sentence, text = lead
            sentences = [sentence] + [s for s in sentences if s.text != sentence.text][:2]
        for s in sentences:
            marker = len(citations) + 1
            citations.append(Citation(marker=marker, doc_id=s.passage.doc_id, title=s.passage.title,
                                      section=s.passage.section, quote=s.text, span=(s.start, s.end),
                                      kind=s.passage.kind, effective=s.passage.effective,
                                      reviewed=s.passage.reviewed))
            lines.append(f"{_one_line(s.text)} [{marker}]")
        if lead is not None:
            lines[0] = f"{lead[1]} [1]"
        body = lines[0]
        if len(lines) > 1:
            body += "\n\n" + "\n".join(f"- {line}" for line in lines[1:])
        notes = notes + stale_price_notes(citations, sentences, today)
        return Answer(question=q.text, kind="answer", text=body, citations=citations, notes=notes,
                      context=context)


def direct_code_answer(q: Question, passages: list[Passage]):
    """'What is the code for X?': the product's HCPCS code, backed by a passage that states it."""
    from assistant.extract import Sentence, split_sentences

    if "code" not in q.intents or not q.product or q.comparison:
        return None
    if not any(w in q.text.lower() for w in ("hcpcs", "q-code", "q code", "j-code", "drug code", "what code",
                                            "which code", "code for", "billed under", "billing code")):
        return None
    prod = product(q.product)
    candidates = []
    for p in passages:
        for a, b in split_sentences(p):
            text = p.quote[a - p.span[0]:b - p.span[0]]
            if prod.hcpcs in text and (prod.brand in text or prod.generic.lower() in text.lower()) and len(text) < 420:
                # prefer a plain statement ("billed under HCPCS Q2056") over a table cell
                candidates.append((0 if "billed under" in text else 1, p, a, b, text))
    if candidates:
        _, p, a, b, text = min(candidates, key=lambda c: c[0])
        return (Sentence(p, a, b, text, 99.0),
                f"**{prod.hcpcs}** is the HCPCS code for {prod.brand} ({prod.generic}): "
                f"\"{_one_line(text)}\"")
    return None


def _function_tools() -> list:
    """The calculators as llama-index FunctionTools, when the tools package provides them."""
    try:
        from assistant.tools.registry import function_tools
    except ImportError:
        return []
    return function_tools()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _context(q: Question) -> dict:
    f = q.figures
    ctx = {
        "products": list(q.products), "indication": q.indication, "payers": list(q.payers),
        "codes": list(q.codes), "intents": list(q.intents), "inherited": list(q.inherited),
    }
    figures = {k: v for k, v in {
        "weight": f.weight_text, "weight_kg": round(f.weight_kg, 3) if f.weight_kg else None,
        "height": f.height_text, "height_cm": round(f.height_cm, 2) if f.height_cm else None,
        "bsa_m2": f.bsa_m2, "date": f.date.isoformat() if f.date else None,
    }.items() if v is not None}
    if figures:
        ctx["figures"] = figures
    return ctx


def uncovered_products(q: Question) -> list[str]:
    """Products the question names that no source document is about."""
    covered = _covered_products()
    return [p for p in q.products if p not in covered]


_COVERED: set[str] | None = None


def _covered_products() -> set[str]:
    global _COVERED
    if _COVERED is None:
        from index.corpus import load_corpus

        _COVERED = {p for d in load_corpus(config_mod.load().sources_dir).documents for p in d.products}
    return _COVERED


def stale_price_notes(citations: list[Citation], sentences, today: dt.date) -> list[str]:
    """A quoted price from a quarter before today's is flagged with its quarter."""
    notes = []
    now = current_quarter(today)
    for c, s in zip(citations, sentences):
        pq = s.passage.price_quarter
        if pq and "$" in c.quote and pq < now:
            notes.append(f"The price quoted in [{c.marker}] is the {pq[4:]} {pq[:4]} Medicare payment "
                         f"limit; today is in {now[4:]} {now[:4]}, so it may be out of date.")
    return notes


__all__ = ["Engine", "Conversation", "Answer", "current_quarter", "products"]
