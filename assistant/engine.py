"""One turn of the conversation: understand → call tools → retrieve → compose a cited answer.

The default composer needs no LLM: it leads with the direct answer (a tool result or the best
quoted sentence), follows with supporting quotes, each with a citation marker, then notes
(sources that disagree, prices from an earlier quarter, codes since retired). It never writes a
number that is neither in a cited quote nor a tool result; `answer.untraceable_numbers` checks.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import threading
import time
import uuid
from dataclasses import dataclass, field

from assistant import config as config_mod
from assistant import routing
from assistant.answer import Answer, Citation, ToolCall
from assistant.conflicts import conflict_notes, retired_code_notes
from assistant.extract import best_sentences, expand_query
from assistant.retrieval import HybridRetriever, Passage, QueryEntities
from assistant.understand import Question, read_question, resolve
from index import store as store_mod
from index.entities import product, products

MAX_QUESTION_CHARS = 4000
_INVISIBLE = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u00ad]")
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
        self._owns_retriever = retriever is None  # ours to reload after a store failure
        self._store_failed = False
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
        # Full-width letters, ligatures and invisible characters typed or pasted by users
        text = unicodedata.normalize("NFKC", text)
        text = _INVISIBLE.sub("", text)
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
        if is_noise(q):
            return Answer(question=text, kind="clarify", notes=notes, needs=["question"],
                          text="I could not find a billing question in that. Please ask about a code, "
                               "a payment limit, a dose or units, or a payer's criteria, e.g. *What is "
                               "the HCPCS code for Carvykti?*")
        conv.turns.append(q)
        context = _context(q)

        missing = unknown_terms(q)
        if missing:
            return Answer(question=q.text, kind="not_covered", not_covered=True, notes=notes, context=context,
                          text=f"My sources do not mention {', '.join(missing)}, so I can't answer this "
                               f"from them. {SCOPE}")
        plan = routing.plan(q, today)
        if plan.ask_back:
            return Answer(question=q.text, kind="clarify", needs=plan.needs, notes=notes,
                          context=context, text=plan.ask_back)
        calls, missing_data = run_calls(plan)
        try:
            passages = self._retrieve(q)
        except Exception as exc:  # the store went away (server down, files damaged): say so
            if not store_mod.is_store_error(exc):
                raise
            self._store_failed = True
            message = str(exc) if isinstance(exc, store_mod.IndexMissingError) \
                else store_mod.unreachable_message(self.cfg, exc)
            if not any(c.result for c in calls):
                return Answer(question=q.text, kind="error", notes=notes, context=context,
                              text=f"I can't search my sources right now. {message}")
            passages = []  # the calculators still answer; no passage backs them this time
            notes = notes + [f"My sources could not be searched for supporting quotes. {message}"]
        else:
            self._store_failed = False
        conv.passages = passages
        if calls and not any(c.result for c in calls):
            return tool_failure(q, calls, missing_data, notes, context)
        answer = self._compose(q, passages, notes, context, today, calls, plan.derived)
        if self.llm is not None and answer.kind in ("answer", "tool") and passages:
            answer = self.llm.compose(q.text, passages[:LLM_PASSAGES], answer.tool_calls, answer)
        return answer

    def _reload_retriever(self) -> None:
        """After a store failure, reopen the live index (a rebuilt one, or the same one on a
        server that is back). When it still cannot be opened, keep the old retriever: its next
        search fails (or recovers) on its own."""
        if not (self._store_failed and self._owns_retriever):
            return
        try:
            self.retriever = HybridRetriever(self.cfg)
        except Exception as exc:
            if not store_mod.is_store_error(exc):
                raise

    def _retrieve(self, q: Question) -> list[Passage]:
        self._reload_retriever()
        # A follow-up's inherited product/indication are added to the search text, and the
        # resolved entities (not just the words typed) steer the scoping.
        extra = []
        if "product" in q.inherited and q.product:
            extra.append(product(q.product).brand)
        if "indication" in q.inherited and q.indication:
            extra.append(q.indication.upper())
        codes = [c.upper() for c in q.codes]
        if q.comparison and {"code", "payment"} & set(q.intents):
            # "Abecma vs Carvykti HCPCS": search for each product's code, not just the word
            codes += [product(pid).hcpcs for pid in q.products if product(pid).hcpcs]
            extra += codes
        query = expand_query(" ".join([q.text, *extra]))
        ents = QueryEntities(products=q.products, payers=tuple(p for p in q.payers if p != "medicare"),
                             codes=tuple(dict.fromkeys(codes)), comparison=q.comparison)
        return self.retriever.search(query, top_k=max(self.cfg.top_k, 10), entities=ents)

    # --- composition -------------------------------------------------------------------

    def _compose(self, q: Question, passages: list[Passage], notes: list[str], context: dict,
                 today: dt.date, calls: list[ToolCall] | None = None,
                 derived: list[str] | None = None) -> Answer:
        calls = calls or []
        uncovered = uncovered_products(q)
        # a payer's criteria are a list of short conditions: quote more of them
        criteria = bool(q.payers) and "policy" in q.intents and not calls
        sentences = best_sentences(q.text, passages, k=8 if calls else 5 if criteria else 3,
                                   per_passage=2 if criteria else 1, prefer_codes="code" in q.intents)
        if calls:
            return compose_with_tools(q, sentences, calls, derived or [], notes, context, today)
        # A product no document is about: only what reference data also covers (its code, a
        # CMS price, an NDC) may be answered; its dosing or coverage rules may not.
        if uncovered and len(uncovered) == len(q.products) and not {"code", "payment", "ndc"} & set(q.intents):
            names = ", ".join(product(p).brand for p in uncovered)
            return Answer(question=q.text, kind="not_covered", not_covered=True, notes=notes,
                          context=context,
                          text=f"My sources do not cover {names} for this question, so I can't give "
                               f"you a figure or rule for it. {SCOPE}")
        lead = direct_code_answer(q, passages)
        if not sentences and lead is None:
            return Answer(question=q.text, kind="not_covered", not_covered=True, notes=notes,
                          context=context,
                          text="I found nothing in my sources that answers this. " + SCOPE)
        citations: list[Citation] = []
        lines: list[str] = []
        if lead is not None:
            sentence, text = lead
            sentences = [sentence] + [s for s in sentences if s.text != sentence.text][:2]
        for s in sentences:
            citations.append(cite_sentence(s, len(citations) + 1))
            lines.append(f"{_one_line(s.text)} [{citations[-1].marker}]")
        if lead is not None:
            lines[0] = f"{lead[1]} [1]"
        body = lines[0]
        if len(lines) > 1:
            body += "\n\n" + "\n".join(f"- {line}" for line in lines[1:])
        notes = notes + stale_price_notes(citations, sentences, today)
        notes += conflict_notes(q, citations) + retired_code_notes([c.quote for c in citations])
        return Answer(question=q.text, kind="answer", text=body, citations=citations, notes=_dedupe(notes),
                      context=context)


# Payers and drugs people ask about; any the sources never mention is "not covered" (fuzzy
# spelling tolerance would otherwise take "humana" for "human").
KNOWN_NAMES = re.compile(r"\b(?:humana|anthem|kaiser|aetna|cigna|unitedhealthcare|uhc|bcbs|highmark|molina|"
                         r"wellcare|elevance|oscar|centene|carepartners|tricare|aucatzyl|blenrep|talvey|"
                         r"lynozyfic|darzalex|xpovio)\b", re.I)
# Code sets people ask for that no source document gives.
ABSENT_PHRASES = re.compile(r"\b(revenue code|condition code|value code|occurrence code|fee schedule|"
                            r"medical policy number)s?\b", re.I)


def unknown_terms(q: Question) -> list[str]:
    """Names in the question the sources never mention: a payer or drug from a list of the
    usual suspects, or a code set no document gives. (A generic "word not in the corpus" rule
    was tried and rejected: it refused "convert", "sequestration" and "weighs".)"""
    found = [m.group(1).lower() for m in ABSENT_PHRASES.finditer(q.text)]
    vocab = _vocab()
    found += [m.group(0) for m in KNOWN_NAMES.finditer(q.text) if m.group(0).lower() not in vocab]
    if found and (q.products or q.payers or q.codes or q.intents):
        return list(dict.fromkeys(found))
    return []


def code_sentence(prod, passages: list[Passage], named_only: bool = True):
    """The sentence that best states `prod`'s HCPCS code: a plain statement naming the product
    ("Carvykti is billed under HCPCS Q2056") before a table cell that names it, before (unless
    `named_only`) any sentence that only has the code. Returns (Sentence, text) or None."""
    from assistant.extract import Sentence, split_sentences

    best = None
    for p in passages:
        for a, b in split_sentences(p):
            text = p.quote[a - p.span[0]:b - p.span[0]]
            if prod.hcpcs not in text or len(text) >= 420:
                continue
            named = prod.brand in text or prod.generic.lower() in text.lower()
            rank = 0 if named and "billed under" in text else 1 if named else 2
            if (named or not named_only) and (best is None or rank < best[0]):
                best = (rank, Sentence(p, a, b, text, 99.0), text)
    return best[1:] if best else None


def comparison_code_answer(q: Question, passages: list[Passage]):
    """'Abecma vs Carvykti HCPCS': each product's code from reference data, backed by the first
    passage sentence that states it (the lead cites the first product's sentence)."""
    if not re.search(r"hcpcs|q-?code|j-?code|drug code|billing code|\bcodes?\b", q.text, re.I):
        return None
    parts, first = [], None
    for pid in q.products:
        prod = product(pid)
        if not prod.hcpcs:
            continue
        parts.append(f"**{prod.hcpcs}** {prod.brand}")
        if first is None:
            first = code_sentence(prod, passages, named_only=False)
    if len(parts) < 2 or first is None:
        return None
    return first[0], "HCPCS codes: " + "; ".join(parts) + f" (product reference data). \"{_one_line(first[1])}\""


def run_calls(plan: routing.Plan) -> tuple[list[ToolCall], bool]:
    """Run the planned calculator calls; bad input becomes the call's error message. Also says
    whether every failure was missing reference data (a quarter or a code with no payment limit)
    rather than bad input: that is "not covered", not something the user should fix."""
    from assistant.tools.errors import CalcError, UnknownCodeError, UnknownQuarterError
    from assistant.tools.registry import run_tool

    calls, missing_data = [], True
    for name, args in plan.calls:
        try:
            calls.append(ToolCall(name=name, arguments=args, result=run_tool(name, **args).to_dict()))
        except CalcError as exc:
            calls.append(ToolCall(name=name, arguments=args, error=exc.message))
            missing_data &= isinstance(exc, UnknownQuarterError) or (
                name == "payment" and isinstance(exc, UnknownCodeError))
    return calls, missing_data


def tool_failure(q: Question, calls: list[ToolCall], missing_data: bool, notes: list[str],
                 context: dict) -> Answer:
    """Every calculator call failed: say why in the calculator's words."""
    messages = [c.error or "" for c in calls]
    if missing_data:
        return Answer(question=q.text, kind="not_covered", not_covered=True, tool_calls=calls, notes=notes,
                      context=context, text="My reference data does not cover this: " + " ".join(messages))
    return Answer(question=q.text, kind="clarify", needs=[c.name for c in calls], tool_calls=calls,
                  notes=notes, context=context, text="I can't calculate that as asked: " + " ".join(messages))


def compose_with_tools(q: Question, sentences, calls: list[ToolCall], derived: list[str],
                       notes: list[str], context: dict, today: dt.date) -> Answer:
    """Lead with the calculators' results and formulas, then the passages that state the rule."""
    lines = []
    for c in calls:
        if c.result:
            lines.append(c.result["summary"])
    for step in derived:
        lines.append(f"*Input:* {step}")
    for c in calls:
        if c.result and c.result.get("formula"):
            lines.append(f"*How:* {c.result['formula']}")
        elif c.error:
            lines.append(f"*{c.name}:* {c.error}")
    citations: list[Citation] = []
    if {c.name for c in calls} <= {"bsa"}:
        sentences = []  # a formula needs no passage; the corpus's example patients would mislead
    else:
        from assistant.tools.reference import load_reference

        ref = load_reference()
        sentences = [s for s in sentences if _about_calls(s, calls, ref)][:2]
    citations += [cite_sentence(s, i) for i, s in enumerate(sentences, 1)]
    body = "\n\n".join(lines)
    if citations:
        body += "\n\nFrom the sources:\n" + "\n".join(f"- {_one_line(c.quote)} [{c.marker}]" for c in citations)
    warned = [w for c in calls if c.result for w in c.result.get("warnings") or []]
    ran = {c.name for c in calls if c.result}
    exclude = set()
    if "cell_dose" in ran:
        exclude.add("abecma-dose")
    if "lymphodepletion_plan" in ran:
        exclude |= {"tecartus-all-cy"}
    notes = notes + warned + conflict_notes(q, citations, exclude=exclude)
    notes += retired_code_notes([c.quote for c in citations])
    return Answer(question=q.text, kind="tool", text=body, citations=citations, tool_calls=calls,
                  notes=_dedupe(notes), context=context)


TOOL_TOPICS = {  # words a supporting sentence must contain to back a calculator's result
    "cell_dose": r"x ?10|cells|dose",
    "lymphodepletion_plan": r"fludarabine|cyclophosphamide|lymphodeplet|J9185|J907\d",
    "tocilizumab_dose": r"tocilizumab|actemra|J3262",
    "payment": r"payment limit|ASP|\$",
    "dose_units": r"units?",
    "ndc": r"NDC|labeler|\d{4,5}-\d{3,4}",
}


def _about_calls(sentence, calls: list[ToolCall], ref) -> bool:
    """Whether a supporting sentence backs what a calculator computed: same product (or code)
    and the same topic. A Yescarta payment must not be "supported" by a Tecartus price."""
    text = sentence.text
    for c in calls:
        topic = TOOL_TOPICS.get(c.name)
        if topic is None or not re.search(topic, text, re.I):
            continue
        args = c.arguments
        if c.name in ("cell_dose", "lymphodepletion_plan"):
            prod = ref.product(str(args.get("product", "")))
            if prod and prod["id"] in sentence.passage.products:
                return True
        elif c.name in ("payment", "dose_units"):
            code = str(args.get("code", "")).upper()
            drug = str((ref.code(code) or {}).get("drug") or "~").lower()
            prod = ref.product(code) if code.startswith("Q") else None
            if code in text or drug in text.lower() or (prod and prod["id"] in sentence.passage.products):
                return True
        else:
            return True
    return False


def cite_sentence(s, marker: int) -> Citation:
    """A quoted sentence as the answer's citation number `marker`."""
    return Citation(marker=marker, doc_id=s.passage.doc_id, title=s.passage.title, section=s.passage.section,
                    quote=s.text, span=(s.start, s.end), kind=s.passage.kind,
                    effective=s.passage.effective, reviewed=s.passage.reviewed)


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


_VOCAB: set[str] | None = None


def is_noise(q: Question) -> bool:
    """Nothing in the question the assistant could work with: no product, code, payer, intent,
    figure, and no word that occurs in the sources ("???", "asdfghjkl qwerty")."""
    if q.products or q.codes or q.payers or q.intents or q.indication or q.figures.weight_kg or q.figures.dose_mg:
        return False
    stop = {"the", "and", "for", "with", "are", "this", "that", "what", "how", "from", "not"}
    tokens = re.findall(r"[a-z]{3,}", q.text.lower())
    return not any(t in _vocab() and t not in stop for t in tokens)


def _vocab() -> set[str]:
    """Every word of the corpus and its reference data (lower case)."""
    global _VOCAB
    if _VOCAB is None:
        from index.corpus import load_corpus

        cfg = config_mod.load()
        words: set[str] = set()
        for d in load_corpus(cfg.sources_dir).documents:
            words |= set(re.findall(r"[a-z]{3,}", d.text.lower()))
        for path in cfg.reference_dir.glob("*.yaml"):
            words |= set(re.findall(r"[a-z]{3,}", path.read_text(encoding="utf-8").lower()))
        _VOCAB = words
    return _VOCAB


def direct_code_answer(q: Question, passages: list[Passage]):
    """'What is the code for X?': the product's HCPCS code, backed by a passage that states it."""
    if "code" not in q.intents or not q.products:
        return None
    if q.comparison or len(q.products) > 1:
        return comparison_code_answer(q, passages)
    if not any(w in q.text.lower() for w in ("hcpcs", "q-code", "q code", "j-code", "drug code", "what code",
                                            "which code", "code for", "billed under", "billing code")):
        return None
    prod = product(q.product)
    found = code_sentence(prod, passages)
    if found is None:
        return None
    sentence, text = found
    return (sentence, f"**{prod.hcpcs}** is the HCPCS code for {prod.brand} ({prod.generic}): "
                      f"\"{_one_line(text)}\"")


def _function_tools() -> list:
    """The calculators as llama-index FunctionTools, when the tools package provides them."""
    try:
        from assistant.tools.registry import function_tools
    except ImportError:
        return []
    return function_tools()


def _one_line(text: str) -> str:
    """A quote on one line, without the source's leading list/heading marks (the citation keeps
    the exact quote)."""
    return " ".join(text.split()).lstrip("-*#• ").strip()


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
