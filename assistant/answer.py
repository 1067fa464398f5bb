"""The one structured result every consumer reads (UI, HTTP API, CLI, evals), and the check
that every number in an answer is traceable to a cited quote or a tool result.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from assistant.core.dates import ServiceDate
from assistant.core.quantities import parse_number
from assistant.tools.result import ToolResult


@dataclass
class Citation:
    """A quoted passage an answer relies on: opens to document, section and the exact quote."""

    marker: int
    doc_id: str
    title: str
    section: str
    quote: str
    span: tuple[int, int]
    kind: str = ""
    effective: str = ""
    reviewed: str = ""
    page: int | None = None   # page of the original (an ingested PDF) where the quote starts
    version: str = ""         # which revision is quoted, when the corpus holds several


class AnswerKind(StrEnum):
    """What an answer is; the flags `not_covered` and `refused` follow from it."""

    ANSWER = "answer"            # quoted from the sources
    TOOL = "tool"                # led by a calculator's result
    CLARIFY = "clarify"          # asks back (a missing figure, an unreadable question)
    NOT_COVERED = "not_covered"  # the sources / reference data do not give it
    REFUSAL = "refusal"          # outside what the assistant does
    ERROR = "error"              # the question or the store could not be processed


@dataclass
class ToolCall:
    name: str
    arguments: dict
    result: ToolResult | None = None  # the calculator's typed result, or None on error
    error: str | None = None          # the calculator's message for bad input

    @property
    def ok(self) -> bool:
        return self.result is not None

    def to_dict(self) -> dict:
        return {"name": self.name, "arguments": dict(self.arguments),
                "result": self.result.to_dict() if self.result is not None else None, "error": self.error}


@dataclass
class Answer:
    question: str
    text: str                                   # markdown, with [n] citation markers
    kind: AnswerKind = AnswerKind.ANSWER
    citations: list[Citation] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)  # what the assistant asked back for
    context: dict = field(default_factory=dict)  # what the turn understood (product, figures...)
    composer: str = "default"
    latency_ms: float = 0.0
    service_date: ServiceDate | None = None    # the date the answer is for, and where it came from
    as_of: dict = field(default_factory=dict)  # date of service, its payment quarter, newest CMS quarter on hand

    def __post_init__(self) -> None:
        self.kind = AnswerKind(self.kind)

    @property
    def not_covered(self) -> bool:
        return self.kind is AnswerKind.NOT_COVERED

    @property
    def refused(self) -> bool:
        return self.kind is AnswerKind.REFUSAL

    def to_dict(self) -> dict:
        """The one serialization of an answer (API, feedback store, evals, CLI --json)."""
        return {
            "question": self.question, "text": self.text,
            "citations": [asdict(c) for c in self.citations],
            "tool_calls": [t.to_dict() for t in self.tool_calls],
            "notes": list(self.notes), "not_covered": self.not_covered, "refused": self.refused,
            "needs": list(self.needs), "kind": str(self.kind), "context": dict(self.context),
            "composer": self.composer, "latency_ms": self.latency_ms,
            "date_of_service": _service_date_dict(self.service_date), "as_of": dict(self.as_of),
        }

    def as_of_line(self) -> str:
        return as_of_text(self.as_of)

    @classmethod
    def from_dict(cls, d: dict) -> Answer:
        """A stored answer (to_dict) back as an Answer, to show it again after a reload or a
        restart exactly as it was shown (its date of service stays in `as_of` and the notes)."""
        fields = set(Citation.__dataclass_fields__)
        citations = [Citation(**{k: v for k, v in c.items() if k in fields} | {"span": tuple(c.get("span") or (0, 0))})
                     for c in d.get("citations") or []]
        calls = [ToolCall(name=t.get("name", ""), arguments=dict(t.get("arguments") or {}), error=t.get("error"),
                          result=ToolResult(**t["result"]) if t.get("result") else None)
                 for t in d.get("tool_calls") or []]
        return cls(question=d.get("question", ""), text=d.get("text", ""), kind=d.get("kind", "answer"), citations=citations,
                   tool_calls=calls, notes=list(d.get("notes") or []), needs=list(d.get("needs") or []),
                   context=dict(d.get("context") or {}), composer=d.get("composer", "default"),
                   latency_ms=float(d.get("latency_ms") or 0), as_of=dict(d.get("as_of") or {}))


def as_of_text(as_of: dict) -> str:
    """The one discreet line under an answer: which date it is for, the payment quarter that
    date falls in, and the newest CMS quarter on hand (a later quarter is not priced yet)."""
    if not as_of:
        return ""
    how = "today, no date of service given" if as_of.get("source") == "today" else as_of.get("source_label", "")
    return (f"As of {as_of['date_of_service']} ({how}) · payment quarter {as_of['payment_quarter']} · "
            f"newest CMS quarter on hand {as_of.get('newest_cms_quarter') or 'none'}")


def _service_date_dict(d: ServiceDate | None) -> dict | None:
    if d is None:
        return None
    return {"date": d.day.isoformat(), "start": d.start.isoformat(), "end": d.end.isoformat(),
            "precision": d.precision, "label": d.label(), "source": d.source, "event": d.event, "text": d.text}


# --- number provenance ---------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![A-Za-z0-9.])[-+]?\$?\d[\d,]*(?:\.\d+)?%?(?![A-Za-z0-9])")
# a number glued to its unit ("900mg", "1.85m2", "70kg") is a number too: "900mg" is no code
_NUMBER_UNIT = re.compile(r"(?<![A-Za-z0-9.])\d[\d,]*(?:\.\d+)?(?=(?:mg|mcg|g|kg|lbs?|cm|in|ml|m2|m²|units?)\b)", re.I)
_MARKER = re.compile(r"\[(\d+)\]")


def _canon(token: str) -> str | None:
    raw = token.strip("$%+").lstrip("-")
    try:
        value = parse_number(raw)  # the one reading of typed numbers (thousands vs decimal comma)
    except ValueError:
        return None
    return f"{value:.6f}".rstrip("0").rstrip(".")


def numbers_in(text: str) -> set[str]:
    """Canonical numbers in a text ("$588,494.808" and "588494.808" are the same number; "900mg"
    is 900)."""
    text = _MARKER.sub(" ", text)
    out = set()
    for m in (*_NUMBER.finditer(text), *_NUMBER_UNIT.finditer(text)):
        c = _canon(m.group(0))
        if c is not None:
            out.add(c)
    return out


def _glued_numbers(quote: str) -> set[str]:
    """Numbers a flattened table glued to a word ("NDC43 (UB-04)"): a quote's own digits, which an
    answer may show as the readable row's cell ("Field: 43")."""
    return {c for m in _DIGITS.finditer(quote) if (c := _canon(m.group(0))) is not None}


_DIGITS = re.compile(r"\d+(?:\.\d+)?")


def _flatten(value) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k} {_flatten(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return " ".join(_flatten(v) for v in value)
    return str(value)


def untraceable_numbers(text: str, citations: list[Citation], tool_calls: list[ToolCall],
                        question: str = "") -> set[str]:
    """Numbers in `text` found in no cited quote, no tool call and not in the question itself.

    Small counting numbers (0-10) are allowed: "2 sources", "step 1" carry no billing fact.
    """
    allowed = numbers_in(question)
    for c in citations:
        allowed |= numbers_in(c.quote) | numbers_in(c.section) | _glued_numbers(c.quote)
    for t in tool_calls:
        allowed |= numbers_in(_flatten(t.arguments)) | numbers_in(_flatten(t.result.to_dict() if t.result else {}))
        allowed |= numbers_in(t.error or "")  # a calculator's message names its limits
    found = numbers_in(text)
    return {n for n in found - allowed if not (n.isdigit() and int(n) <= 10)}


def bad_markers(text: str, citations: list[Citation]) -> set[int]:
    """Citation markers in `text` that point at no citation."""
    known = {c.marker for c in citations}
    return {int(m) for m in _MARKER.findall(text)} - known
