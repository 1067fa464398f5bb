"""The Review page's back end: the feedback queue for admins, each item as it was shown (question,
answer, citations, calculations, the reason given with "Not helpful"), a golden-set case drafted
from an item, and the queue as CSV. Off unless CART_ADMIN_PAGES=on; every route is for admins only.

    GET /api/admin/review/items                ?rating=1|-1&kind=answer|tool|...&from=YYYY-MM-DD&to=YYYY-MM-DD&limit=500
                                               -> {"items": [...], "count": N, "limit": 500, "reasons": {...}, "kinds": [...]}
                                               (days in UTC, both ends included; the newest `limit` rows)
    GET /api/admin/review/items/{id}/golden    a case draft for evals/ (text/yaml, review-<id>.yaml)
    GET /api/admin/review/export.csv           the queue with the same filters (text/csv; up to 5000 rows)

Patient data: feedback rows hold questions with names and figures. Nothing here is cached or kept
in the browser (the front door sends no-store); the YAML and CSV are downloads an admin asked for.
A drafted case must have its question de-identified before it goes into evals/ (the note says so).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import yaml
from fastapi import Request

from assistant import config
from assistant.api import BadRequest
from assistant.documents import admin_only, serve_files
from assistant.feedback import ANSWER_KINDS, REASONS

PAGE_FILES = {"review": ("review.html", "text/html"), "review.js": ("review.js", "text/javascript"),
              "review.css": ("review.css", "text/css")}
RATINGS = {"1": 1, "helpful": 1, "-1": -1, "not-helpful": -1}
CSV_HEADER = ["id", "created", "user", "rating", "reason", "kind", "question", "answer first line", "cited docs", "comment"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as the start of a formula
FILL_IN = "FILL-IN-must-pattern"  # a must pattern no answer contains: the draft fails the eval until a person writes it
MAX_PATTERNS, MAX_EVIDENCE, MAX_QUOTE = 6, 4, 300

# --- the golden case draft ----------------------------------------------------------------
EXPECT = {"answer": "answer", "tool": "answer", "clarify": "clarify", "not_covered": "not_covered",
          "refusal": "refusal", "error": "error"}
KIND_BY_ANSWER = {"not_covered": "not_covered", "refusal": "off_topic", "error": "malformed"}
KIND_BY_TOOL = {"payment": "payment", "payment_change": "payment", "payer_policy": "policy", "code_on_date": "code",
                "rule_on_date": "code"}  # any other calculator: "calc"
KIND_BY_WORDS = [  # the first that matches the question; else "policy"
    ("code", re.compile(r"\b(hcpcs|cpt|icd|dx|q ?code|codes?|ndc|revenue|rev|drg|modifiers?|pcs)\b", re.I)),
    ("comparison", re.compile(r"\b(vs\.?|versus|compare|comparison|difference|differ)\b", re.I)),
    ("payment", re.compile(r"\b(payment|pay|paid|pays|allowed|allowable|asp|reimburs\w*|coinsurance|price)\b", re.I)),
    ("dosing", re.compile(r"\b(dose|doses|dosing|cells?/kg|mg/kg)\b", re.I)),
]
_AMOUNT = re.compile(r"\$\s?(\d[\d,]*(?:\.\d+)?)|(?<![\w.$])(\d[\d,]*(?:\.\d+)?)\s?(%|mg|mcg|kg|mL|m²|m2|units?)(?![\w²])")
_MARKERS = re.compile(r"\[\d+\]")


def first_paragraph(text: str) -> str:
    """The answer's lead, as plain text: up to the first blank line, without citation markers or bold."""
    lead = re.split(r"\n\s*\n", (text or "").strip(), maxsplit=1)[0]
    return _MARKERS.sub("", lead).replace("**", "").replace("__", "").strip()


def _number_pattern(number: str) -> str:
    """A typed number as the golden set writes it: thousands commas optional, the dot literal."""
    return re.escape(number).replace(",", ",?")


def lead_patterns(text: str) -> list[str]:
    """The codes and amounts of the answer's first paragraph as regexes (escaped), in order."""
    from index.codes import codes_in

    lead = first_paragraph(text)
    found = [rf"\b{re.escape(code)}\b" if code[0].isalnum() and code[-1].isalnum() else re.escape(code)
             for code in codes_in(lead)]
    for m in _AMOUNT.finditer(lead):
        number = (m.group(1) or m.group(2)).rstrip(",")
        found.append(_number_pattern(number) + (r"\s*" + re.escape(m.group(3)) if m.group(3) else ""))
    return list(dict.fromkeys(found))[:MAX_PATTERNS]


def case_kind(question: str, answer: dict) -> str:
    """A value of check_golden.KINDS: from the answer's kind, its date of service, its calculator,
    else from what the question asks about."""
    from index.codes import codes_in

    if answer.get("kind") in KIND_BY_ANSWER:
        return KIND_BY_ANSWER[answer["kind"]]
    if answer.get("kind") == "clarify":  # asked back: for an unreadable question, a date, or a calculator's figure
        needs = answer.get("needs") or []
        return "malformed" if "question" in needs else "dos" if "dos" in needs else "calc"
    if ((answer.get("date_of_service") or {}).get("source")) in ("question", "field"):
        return "dos"
    tool = _tool_name(answer)
    if tool:
        return KIND_BY_TOOL.get(tool, "calc")
    if codes_in(question):
        return "code"
    return next((kind for kind, words in KIND_BY_WORDS if words.search(question)), "policy")


def _tool_name(answer: dict) -> str | None:
    """The first calculator that gave a result and that the golden set knows, else None."""
    from evals.check_golden import TOOLS

    return next((t.get("name") for t in answer.get("tool_calls") or []
                 if t.get("result") is not None and t.get("name") in TOOLS), None)


def fit_quote(quote: str, document: str) -> str | None:
    """The quote as check_golden takes it (verbatim in the document, 10-300 characters): a long one
    cut at a sentence or word end inside its first 300 characters (still verbatim); None if not found."""
    quote = (quote or "").strip()
    if len(quote) < 10 or quote not in document:
        return None
    if len(quote) > MAX_QUOTE:
        head = quote[:MAX_QUOTE]
        cut = max(head.rfind(". ") + 1, head.rfind("\n"))
        if cut < 40:
            cut = head.rfind(" ")
        quote = head[:cut].rstrip() if cut >= 10 else head.rstrip()
    return quote if len(quote) >= 10 else None


def _evidence(answer: dict, docs: dict[str, str]) -> tuple[list[str], list[dict], list[str]]:
    """(docs, evidence, docs left out): the cited documents the golden set knows, their quotes fitted."""
    cited, evidence, unknown = [], [], []
    for c in answer.get("citations") or []:
        doc = str(c.get("doc_id", ""))
        if doc not in docs:
            if doc and doc not in unknown:
                unknown.append(doc)
            continue
        if doc not in cited:
            cited.append(doc)
        quote = fit_quote(str(c.get("quote", "")), docs[doc])
        if quote and len(evidence) < MAX_EVIDENCE and {"doc": doc, "quote": quote} not in evidence:
            evidence.append({"doc": doc, "quote": quote})
    return cited, evidence, unknown


def _slug(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())[:6]
    return "-".join(words)[:40].strip("-")


def _question(question: str, answer: dict) -> tuple[str, str]:
    """The question as asked; a date of service typed in the date field is added to it (the eval
    has no field), with a note saying so."""
    dos = answer.get("date_of_service") or {}
    if dos.get("source") == "field" and dos.get("date"):
        return f"{question} DOS {dos['date']}", f"The date of service {dos['date']} was typed in the date field; added to the question."
    if dos.get("source") == "conversation":
        return question, "The date of service came from an earlier turn: add the earlier questions as turns (kind followup)."
    return question, ""


def _note(item: dict, fill_in: list[str], extra: list[str]) -> str:
    rating = "helpful" if item.get("rating") == 1 else "not helpful"
    reason = f", {REASONS[item['reason']]}" if item.get("reason") in REASONS else ""
    comment = (item.get("comment") or "").strip()
    parts = [f"From Review feedback #{item['id']} ({str(item.get('created', ''))[:10]}, {rating}{reason})"
             + (f": {comment}" if comment else "") + "."]
    parts += [f"Answer kind {item['answer'].get('kind') or item.get('kind') or '?'}."]
    parts += [f"Fill in: {what}." for what in fill_in] + [e for e in extra if e]
    parts.append("Remove patient details from the question before adding the case to evals/.")
    return " ".join(parts)


def golden_case(item: dict, docs: dict[str, str]) -> dict:
    """A golden-set case (the evals/golden*.yaml shape) derived from a feedback item, checkable by
    evals/check_golden.py: a wrong answer's codes are not made the expected ones (the reviewer said
    a code or number is wrong), and where the reviewer must write the facts the pattern is FILL_IN."""
    answer, question = item["answer"], item["question"]
    kind, expect = case_kind(question, answer), EXPECT.get(str(answer.get("kind") or item.get("kind")), "answer")
    asked, dos_note = _question(question, answer)
    patterns = lead_patterns(answer.get("text", "")) if expect == "answer" else []
    fill_in, extra = [], [dos_note]
    if expect == "answer" and (item.get("reason") == "wrong-code-or-number" or not patterns):
        said = ", ".join(patterns) or "no code or amount"
        fill_in.append(f"must: the codes or amounts a right answer leads with (this answer led with {said})")
        patterns, lead = [FILL_IN], []
    else:
        lead = patterns[:2]
    cited, evidence, unknown = _evidence(answer, docs) if expect == "answer" else ([], [], [])
    if unknown:
        extra.append(f"Cited but not in sources/documents: {', '.join(unknown)}.")
    if item.get("reason") in ("outdated-source", "wrong-document"):
        fill_in.append("docs and evidence: the document the answer should have cited (these are the ones it cited)")
    slug = _slug(question)
    return {"id": f"{kind.replace('_', '-')}-review-{item['id']}" + (f"-{slug}" if slug else ""), "kind": kind,
            "split": "dev", "turns": [], "question": asked, "expect": expect, "must": patterns, "must_not": [],
            "docs": cited, "tool": _tool_name(answer), "evidence": evidence, "note": _note(item, fill_in, extra),
            "lead": lead}


def golden_yaml(item: dict) -> str:
    """The draft as a YAML file of one case, with what check_golden would still say as comments."""
    from evals import check_golden

    docs = {p.stem: check_golden.body(p.read_text(encoding="utf-8")) for p in check_golden.DOCS.glob("*.md")}
    case = golden_case(item, docs)
    problems = check_golden.row_problems(0, case, docs, set())
    head = [f"# Golden-set case drafted from Review feedback #{item['id']}. Check it, then add it to an evals/golden*.yaml file:",
            f"#   .venv/bin/python evals/check_golden.py review-{item['id']}.yaml"]
    head += [f"# check_golden: {p}" for p in problems]
    body = yaml.safe_dump([case], sort_keys=False, allow_unicode=True, default_flow_style=None, width=100_000)
    return "\n".join(head) + "\n" + body


# --- the queue as the page shows it, and as CSV --------------------------------------------

def _shown(item: dict) -> dict:
    """One item for the page: what the answer showed, not the turn's internals (context, latency)."""
    answer = item["answer"]
    calcs = [{"name": t.get("name", ""), "summary": (t.get("result") or {}).get("summary", ""),
              "formula": (t.get("result") or {}).get("formula", ""), "error": t.get("error") or ""}
             for t in answer.get("tool_calls") or []]
    cites = [{k: c.get(k) for k in ("marker", "doc_id", "title", "section", "quote", "page", "version", "effective")}
             for c in answer.get("citations") or item.get("citations") or []]
    return {k: item.get(k) for k in ("id", "created", "user", "rating", "reason", "reason_label", "comment", "question", "kind")} | {
        "answer": {"text": answer.get("text", ""), "kind": answer.get("kind", item.get("kind", "")), "citations": cites,
                   "tool_calls": calcs, "notes": list(answer.get("notes") or []),
                   "date_of_service": answer.get("date_of_service")}}


def safe_cell(value) -> str:
    """A CSV cell a spreadsheet shows as text: one starting like a formula gets a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_text(items: list[dict]) -> str:
    """The queue as CSV (with a byte-order mark, so a spreadsheet reads it as UTF-8)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for it in items:
        answer = it["answer"]
        first = next((line.strip() for line in str(answer.get("text", "")).splitlines() if line.strip()), "")
        docs = list(dict.fromkeys(str(c.get("doc_id", "")) for c in answer.get("citations") or []))
        writer.writerow([safe_cell(v) for v in (
            it["id"], it["created"], it["user"], "helpful" if it["rating"] == 1 else "not helpful", REASONS.get(it.get("reason", ""), ""),
            it["kind"], it["question"], first.replace("**", ""), "; ".join(docs), it["comment"])])
    return "\ufeff" + out.getvalue()


def query_filters(params, limit: int = 500) -> dict:
    """`FeedbackStore.items` arguments from the query string (`limit` unless it gives one); ValueError
    (422) names a bad one."""
    rating = (params.get("rating") or "").strip()
    if rating and rating not in RATINGS:
        raise ValueError("rating must be 1 (helpful) or -1 (not helpful)")
    kind = (params.get("kind") or "").strip()
    if kind and kind not in ANSWER_KINDS:
        raise ValueError(f"kind must be one of {', '.join(ANSWER_KINDS)}")
    given = (params.get("limit") or str(limit)).strip()
    if not given.isdigit():
        raise ValueError("limit must be a whole number")
    return {"rating": RATINGS.get(rating), "kind": kind or None, "since": _day(params, "from"), "until": _day(params, "to"),
            "limit": int(given)}


def _day(params, name: str) -> dt.date | None:
    value = (params.get(name) or "").strip()
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        raise ValueError(f"'{name}' must be a date like 2026-12-01, not {value[:40]!r}") from None


class ReviewRoutes:
    """The admin routes over the feedback store (None: the server was created without one)."""

    def __init__(self, feedback, cfg: config.Config):
        self.feedback, self.cfg = feedback, cfg

    def _store(self):
        if self.feedback is None:
            raise BadRequest(404, "Feedback is not enabled on this server.")
        return self.feedback

    @admin_only
    def list_items(self, request: Request):
        filters = query_filters(request.query_params)
        items = self._store().items(**filters)
        return {"items": [_shown(i) for i in items], "count": len(items), "limit": filters["limit"], "reasons": REASONS,
                "kinds": list(ANSWER_KINDS)}

    @admin_only
    def golden(self, fid: int, request: Request):
        from fastapi.responses import Response

        item = self._store().item(fid)
        if item is None:
            raise BadRequest(404, f"There is no feedback #{fid} (deleted, or older than the retention period).")
        return Response(golden_yaml(item), media_type="text/yaml; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="review-{fid}.yaml"'})

    @admin_only
    def export_csv(self, request: Request):
        from fastapi.responses import Response

        items = self._store().items(**query_filters(request.query_params, limit=5000))  # the whole queue, as a rule
        return Response(csv_text(items), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="review-feedback.csv"'})


def add_page(app, folder: Path) -> None:
    """/admin/review (and its script and style sheet), for admins only."""
    serve_files(app, folder, PAGE_FILES, "The Review page is for administrators.")


def add_routes(api, feedback, cfg: config.Config) -> None:
    """Mount the review routes on the JSON API (only when the admin pages are on)."""
    r = ReviewRoutes(feedback, cfg)
    api.add_api_route("/admin/review/items", r.list_items, methods=["GET"])
    api.add_api_route("/admin/review/items/{fid}/golden", r.golden, methods=["GET"])
    api.add_api_route("/admin/review/export.csv", r.export_csv, methods=["GET"])
