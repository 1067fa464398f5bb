"""One turn of the conversation: understand → check → plan calculators → retrieve → compose.

The pieces live in their own modules: reading the question (`understand`), the checks that
answer instead (`guards`), the calculators and their planning (`tools`, `routing`), retrieval
(`retrieval`) and composition (`composer`, or the optional `llm` composer with the same call
shape). This module only runs them in order and keeps the conversation.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from dataclasses import dataclass, field, replace

from assistant import config as config_mod
from assistant import routing
from assistant.answer import Answer, AnswerKind, ToolCall
from assistant.answer_type import answer_type
from assistant.composer import Composer, DefaultComposer, Turn, tool_failure
from assistant.core.dates import ServiceDate, impossible_date, parse_service_date, today_date
from assistant.core.quarters import Quarter
from assistant.core.question import Question
from assistant.core.reference import load_reference
from assistant.extract import expand_query
from assistant.guards import INJECTION_NOTE, MAX_QUESTION_CHARS, check_input, check_names, check_question, clean_text
from assistant.retrieval import HybridRetriever, Passage, QueryEntities, Retriever
from assistant.tools.component import Plan
from assistant.tools.errors import CalcError, MissingDataError, UnknownCodeError, UnknownQuarterError
from assistant.tools.registry import run_tool
from assistant.understand import read_question, resolve
from index import store as store_mod
from index.corpus import cached_corpus, one_corpus

__all__ = ["Engine", "Conversation", "Answer", "MAX_QUESTION_CHARS", "run_calls"]


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


class StoreDown(Exception):
    """The store could not be searched; `message` says why in words."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Engine:
    def __init__(self, retriever: Retriever | None = None, cfg: config_mod.Config | None = None, llm="from-env"):
        """`retriever`: anything with HybridRetriever's `search` (the evals swap in baselines).
        `llm`: an LLMComposer, None for the default composer only, or "from-env" to use one
        when CART_LLM_BASE_URL is set."""
        self.cfg = cfg or config_mod.load()
        self._owns_retriever = retriever is None  # ours to reload after a store failure
        self._store_failed = False
        self._pointer = store_mod.pointer_stamp(self.cfg)
        self.retriever: Retriever = retriever or HybridRetriever(self.cfg)
        if llm == "from-env":
            from assistant.llm import LLMComposer, LLMSettings
            from assistant.tools.registry import function_tools

            settings = LLMSettings.from_env()
            llm = LLMComposer(settings, tools=function_tools()) if settings else None
        self.llm = llm
        self.composer: Composer = llm if llm is not None else DefaultComposer()

    # --- public ------------------------------------------------------------------------

    def ask(self, text: str, conversation: Conversation | None = None,
            today: dt.date | None = None, dos: str | None = None) -> Answer:
        """Answer one question in its conversation; never raises for bad input. `dos` is a
        date of service typed in a field (API, CLI --dos, the page's date box); a date in the
        question itself is more specific and wins."""
        started = time.perf_counter()
        conversation = conversation or Conversation()
        today = today or dt.date.today()
        with conversation.lock:
            try:
                field_date = parse_service_date(dos, today) if dos not in (None, "") else None
            except ValueError as exc:
                answer = Answer(question=clean_text(text)[:200], kind=AnswerKind.CLARIFY, needs=["dos"], text=str(exc))
            else:
                with one_corpus():  # one answer, one corpus: its files are checked once, not per reader
                    answer = self._turn(clean_text(text), conversation, today, field_date)
        answer.latency_ms = round((time.perf_counter() - started) * 1000, 1)
        return answer

    # --- the turn ----------------------------------------------------------------------

    def _turn(self, text: str, conv: Conversation, today: dt.date, field_date: ServiceDate | None) -> Answer:
        if (early := check_input(text)) is not None:
            return early
        if (bad := impossible_date(text, today)) is not None:
            # "dos 13/45/25": never answered for another date (today's quarter) in its place
            return Answer(question=text[:200], kind=AnswerKind.CLARIFY, needs=["dos"],
                          text=f"'{bad}' is not a calendar date. Please give the date of service again "
                               "(month/day/year).")
        q = resolve(read_question(text.strip(), today), conv.last)
        q = replace(q, service_date=choose_service_date(q.service_date, field_date, today))
        answer = self._answer(q, text, conv, today)
        if answer.kind in (AnswerKind.ANSWER, AnswerKind.TOOL, AnswerKind.NOT_COVERED):
            answer.service_date = q.service_date
            answer.as_of = as_of(q.service_date)
            answer.notes = [service_date_line(q.service_date), *answer.notes, *self._locate(answer)]
        return answer

    def _locate(self, answer: Answer) -> list[str]:
        """Every composer's citations get the page of the original and the revision they quote;
        a revision that a newer one replaced later is named in a note (it is quoted because it
        was the one in force on the date of service)."""
        corpus = cached_corpus(self.cfg.sources_dir, self.cfg.reference_dir)
        notes = []
        for c in answer.citations:
            doc, version = corpus.documents.get(c.doc_id), corpus.versions.get(c.doc_id)
            if doc is not None:
                c.page = doc.page_of(c.span[0])
            if version is not None and version.of > 1:
                c.version = version.label()
                note = (f"{c.title}: quoting {c.version}, the revision in force on the date of service; "
                        f"{version.superseded_by} replaces it from {version.in_force_until}.")
                if not version.current and note not in notes:
                    notes.append(note)
        return notes

    def _answer(self, q: Question, text: str, conv: Conversation, today: dt.date) -> Answer:
        notes = [INJECTION_NOTE] if q.injection else []
        if (early := check_question(q, text, notes)) is not None:
            return early
        conv.turns.append(q)
        context = _context(q)
        if (early := check_names(q, notes, context)) is not None:
            return early
        plan = routing.plan(q, today)
        if plan.ask_back:
            return Answer(question=q.text, kind=AnswerKind.CLARIFY, needs=plan.needs, notes=notes,
                          context=context, text=plan.ask_back)
        calls, missing_data = run_calls(plan)
        turn = Turn(question=q, passages=[], tool_calls=calls, derived=plan.derived, notes=notes,
                    context=context, today=today)
        try:
            turn.passages = self._retrieve(q)
        except StoreDown as down:
            if not any(c.ok for c in calls):
                return Answer(question=q.text, kind=AnswerKind.ERROR, notes=notes, context=context,
                              text=f"I can't search my sources right now. {down.message}")
            # the calculators still answer; no passage backs them this time
            turn.notes = notes + [f"My sources could not be searched for supporting quotes. {down.message}"]
        conv.passages = turn.passages
        if calls and not any(c.ok for c in calls):
            return tool_failure(turn, missing_data)
        return self.composer.compose(turn)

    def _reload_retriever(self) -> None:
        """Reopen the live index after a store failure (a rebuilt one, or the same one on a
        server that is back), or when another process's rebuild moved the local pointer
        (`python -m index add` while the app runs). When it cannot be opened, keep the old
        retriever: its next search fails (or recovers) on its own."""
        if not self._owns_retriever:
            return
        stamp = store_mod.pointer_stamp(self.cfg)
        if not self._store_failed and stamp == self._pointer:
            return
        self._pointer = stamp
        self.use_live_index()

    def use_live_index(self) -> None:
        """Switch to the live build (the Documents page calls it when its rebuild goes live);
        a search already running finishes on the build it started with, which is kept."""
        if not self._owns_retriever:
            return
        try:
            self.retriever = HybridRetriever(self.cfg)
        except Exception as exc:
            if not store_mod.is_store_error(exc):
                raise

    def _retrieve(self, q: Question) -> list[Passage]:
        """Search for the resolved question; StoreDown when the store went away (server down,
        files damaged)."""
        self._reload_retriever()
        query, entities = search_query(q)
        # a revision replaced by another on the date of service is not searched at all
        day = (q.service_date.day if q.service_date else dt.date.today()).isoformat()
        exclude = cached_corpus(self.cfg.sources_dir, self.cfg.reference_dir).not_in_force(day)
        try:
            passages = self.retriever.search(query, top_k=max(self.cfg.top_k, 10), entities=entities, exclude=exclude)
        except Exception as exc:
            if not store_mod.is_store_error(exc):
                raise
            self._store_failed = True
            raise StoreDown(str(exc) if isinstance(exc, store_mod.IndexMissingError)
                            else store_mod.unreachable_message(self.cfg, exc)) from None
        self._store_failed = False
        return passages


def choose_service_date(from_question: ServiceDate | None, from_field: ServiceDate | None,
                        today: dt.date) -> ServiceDate:
    """The date of service a turn answers for: typed in the question, else the field, else
    carried over from the conversation, else today (and the answer says so)."""
    if from_question is not None and from_question.source == "question":
        return from_question
    return from_field or from_question or today_date(today)


SOURCE_WORDS = {"question": "from the question", "field": "from the date field",
                "conversation": "from earlier in the conversation"}  # where a date of service was read


def service_date_line(d: ServiceDate) -> str:
    """The one short line that says which date the answer is for, and where it came from."""
    if d.source == "today":
        return f"As of today, {d.label()} (no date of service given)."
    what = {"discharge": "Discharge date", "infusion": "Infusion date", "admission": "Admission date"}.get(
        d.event, "Date of service")
    where = SOURCE_WORDS.get(d.source, d.source)
    return f"{what}: {d.label()} ({where})."


def as_of(d: ServiceDate) -> dict:
    """What an answer is as of (Answer.as_of_line): the date of service and where it came from, the
    quarter whose payment limits apply to it, and the newest CMS quarter imported."""
    cms = load_reference().cms_quarters()
    where = SOURCE_WORDS.get(d.source, d.source)
    return {"date_of_service": d.label(), "source": d.source, "source_label": where,
            "payment_quarter": str(Quarter.of(d.day)), "newest_cms_quarter": cms[-1] if cms else ""}


def search_query(q: Question) -> tuple[str, QueryEntities]:
    """The search text and entities for a resolved question. A follow-up's inherited product and
    indication are added to the text, and the resolved entities (not just the words typed) steer
    the scoping; a code comparison searches for each product's code, not just the word."""
    ref = load_reference()
    extra = []
    if "product" in q.inherited and q.product and (prod := ref.product_by_id(q.product)):
        extra.append(prod.brand)
    if "indication" in q.inherited and q.indication:
        extra.append(q.indication.upper())
    codes = [c.upper() for c in q.codes]
    if q.comparison and {"code", "payment"} & set(q.intents):
        codes += [p.hcpcs for p in (ref.product_by_id(pid) for pid in q.products) if p and p.hcpcs]
        extra += codes
    elif _asks_own_hcpcs(q) and (prod := ref.product_by_id(q.product or "")) and prod.hcpcs:
        # "abecma q code dos 3/2/24": the words match denial-table rows about wrong Q-codes;
        # the passage that states the product's code names that code
        codes.append(prod.hcpcs)
        extra.append(prod.hcpcs)
    query = expand_query(" ".join([q.asked, *extra]))
    return query, QueryEntities(products=q.products, payers=tuple(p for p in q.payers if p != "medicare"),
                                codes=tuple(dict.fromkeys(codes)), comparison=q.comparison)


def _asks_own_hcpcs(q: Question) -> bool:
    """One product's own HCPCS code is asked (no code typed, no other code system)."""
    return ("code" in q.intents and len(q.products) == 1 and not q.codes
            and answer_type(q.asked).code_system == "HCPCS")


def run_calls(plan: Plan) -> tuple[list[ToolCall], bool]:
    """Run the planned calculator calls; bad input becomes the call's error message. Also says
    whether every failure was missing reference data (a quarter or a code with no payment limit)
    rather than bad input: that is "not covered", not something the user should fix."""
    calls, missing_data = [], True
    for name, args in plan.calls:
        try:
            calls.append(ToolCall(name=name, arguments=args, result=run_tool(name, **args)))
        except CalcError as exc:
            calls.append(ToolCall(name=name, arguments=args, error=exc.message))
            missing_data &= isinstance(exc, (UnknownQuarterError, MissingDataError)) or (
                name == "payment" and isinstance(exc, UnknownCodeError))
    return calls, missing_data


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
