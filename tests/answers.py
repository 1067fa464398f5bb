"""Asking the real engine in tests, with the checks every answer must pass: each number shown is in
a cited quote, a tool call or the conversation's questions, and each citation marker points at a citation."""

from __future__ import annotations

import datetime as dt

from assistant.answer import Answer, bad_markers, untraceable_numbers
from assistant.engine import Conversation

TODAY = dt.date(2026, 11, 24)  # the golden set's "today" (evals/run.py): answers about staleness depend on it


def ask(engine, text: str, conv: Conversation | None = None, dos: str | None = None) -> Answer:
    conv = conv or Conversation()
    a = engine.ask(text, conv, today=TODAY, dos=dos)
    # the figures typed in the conversation's earlier turns are the user's too ("same pt" keeps the BSA)
    typed = " ".join([a.question, *(q.text for q in conv.turns[:-1])])
    assert untraceable_numbers(a.text, a.citations, a.tool_calls, typed) == set(), a.text
    assert bad_markers(a.text, a.citations) == set()
    return a


def first_paragraph(a: Answer) -> str:
    """What a coder copies."""
    return a.text.split("\n\n")[0]
