"""Command line for the assistant.

    python -m assistant ask "question" [--dos DATE] [--json]  one cited answer
    python -m assistant chat [--dos DATE] [--json]            a conversation (follow-ups keep context)
    python -m assistant search "question" [--json] [-k N]   ranked passages with citations
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from assistant import config

MAX_QUESTION_CHARS = 4000


def _search(args: argparse.Namespace) -> int:
    question = " ".join(args.question).strip()
    if not question:
        print("Please type a question, e.g. python -m assistant search \"Q2055 payment limit\".", file=sys.stderr)
        return 2
    if len(question) > MAX_QUESTION_CHARS:
        print(f"The question is {len(question):,} characters; the limit is {MAX_QUESTION_CHARS:,}.", file=sys.stderr)
        return 2
    from assistant.retrieval import HybridRetriever
    from index.store import IndexMissingError

    try:
        retriever = HybridRetriever()
    except IndexMissingError as exc:
        print(exc, file=sys.stderr)
        return 1
    passages = retriever.search(question, top_k=args.k)
    if args.json:
        print(json.dumps({"question": question, "passages": [p.to_dict() for p in passages]},
                         ensure_ascii=False, indent=1))
        return 0
    if not passages:
        print("No passage matches this question.")
        return 0
    for p in passages:
        page = f", page {p.page}" if p.page else ""
        print(f"[{p.rank}] {p.title} — {p.section}  (score {p.score:.4f}, {p.chunk_type}, "
              f"chars {p.span[0]}-{p.span[1]}{page})")
        if p.header:
            print(f"    table: {p.header}")
        print(textwrap.indent(textwrap.shorten(p.quote, 500, placeholder=" …"), "    "))
    return 0


def _engine():
    from assistant.engine import Engine
    from index.store import IndexMissingError

    try:
        return Engine()
    except IndexMissingError as exc:
        print(exc, file=sys.stderr)
        return None


def render_answer(answer) -> str:
    """Plain-text rendering: answer, numbered sources with their quotes, tool formulas, notes."""
    out = [answer.text]
    for t in answer.tool_calls:
        if t.result:
            out.append(f"\n  calculator {t.name}: {t.result.formula}")
        elif t.error:
            out.append(f"\n  calculator {t.name}: {t.error}")
    if answer.citations:
        out.append("\nSources:")
        for c in answer.citations:
            where = ", ".join(x for x in (c.section, f"page {c.page}" if c.page else "", c.version) if x)
            out.append(f"  [{c.marker}] {c.title} — {where}")
            out.append(textwrap.indent(textwrap.fill(" ".join(c.quote.split()), 96), "      "))
    for n in answer.notes[1:] if answer.as_of else answer.notes:  # the date note is the as-of line's first part
        out.append(f"Note: {n}")
    if answer.as_of:
        out.append(answer.as_of_line())
    return "\n".join(out)


def _ask(args: argparse.Namespace) -> int:
    engine = _engine()
    if engine is None:
        return 1
    answer = engine.ask(" ".join(args.question), dos=args.dos)
    print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=1) if args.json else render_answer(answer))
    return 0


def _chat(args: argparse.Namespace) -> int:
    from assistant.engine import Conversation

    engine = _engine()
    if engine is None:
        return 1
    conv = Conversation()
    if not args.json:
        print("CAR-T billing assistant. Ask a question; 'new' starts a new conversation, 'quit' ends.")
    while True:
        try:
            line = input("" if args.json else "\n> ")
        except (EOFError, KeyboardInterrupt):
            break
        if line.strip().lower() in {"quit", "exit"}:
            break
        if line.strip().lower() == "new":
            conv = Conversation()
            continue
        answer = engine.ask(line, conv, dos=args.dos)
        if args.json:
            print(json.dumps(answer.to_dict(), ensure_ascii=False), flush=True)
        else:
            print(render_answer(answer), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assistant", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("search", help="ranked passages for a question")
    s.add_argument("question", nargs="+")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("-k", type=int, default=None, help="number of passages (default CART_TOP_K)")
    s.set_defaults(func=_search)
    a = sub.add_parser("ask", help="one cited answer")
    a.add_argument("question", nargs="+")
    a.add_argument("--json", action="store_true", help="the structured answer object")
    a.add_argument("--dos", help="date of service (2026-02-03, 2/3/2026, Q1 2026...); a date in the question wins")
    a.set_defaults(func=_ask)
    c = sub.add_parser("chat", help="interactive conversation (stdin); --json prints one object per line")
    c.add_argument("--json", action="store_true")
    c.add_argument("--dos", help="date of service for every question of the conversation (a date typed in a question wins)")
    c.set_defaults(func=_chat)
    args = parser.parse_args(argv)
    try:
        config.load()
    except config.ConfigError as exc:  # one line per bad value, exit status 2, no traceback
        print(exc, file=sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
