"""An answer, or a whole conversation, as text to hand on: plain text for the clipboard (pasted
into an appeal or a prior-authorization note), Markdown and PDF downloads.

Every function reads the stored answer object (`Answer.to_dict()`), so an export after a restart
shows what the user was shown: the answer, its numbered citations (quote, document, section,
page, dates, revision) and each calculation with its formula.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from fastapi import Request

from assistant.answer import as_of_text

_EMPHASIS = re.compile(r"\*\*([^*\n]+)\*\*|(?<![\w*])\*([^*\s][^*\n]*?)\*(?![\w*])")
PDF_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # Debian's fonts-dejavu-core


def plain(text: str) -> str:
    """The engine's **bold** / *italic* marks taken off: plain text for a note."""
    return _EMPHASIS.sub(lambda m: m.group(1) or m.group(2), text or "")


def citation_line(c: dict) -> str:
    """'[1] Title, section, page 3, reviewed 2026-05, version ...' for one citation."""
    bits = [c.get("title", ""), c.get("section", ""), f"page {c['page']}" if c.get("page") else "",
            f"effective {c['effective']}" if c.get("effective") else "",
            f"reviewed {c['reviewed']}" if c.get("reviewed") else "", c.get("version", "")]
    return f"[{c.get('marker', '?')}] " + ", ".join(b for b in bits if b)


def _calculations(answer: dict) -> list[str]:
    """Each calculation the answer's text does not already spell out: its result and formula."""
    out, shown = [], plain(answer.get("text", ""))
    for t in answer.get("tool_calls") or []:
        result = t.get("result") or {}
        if t.get("error") and t["error"] not in shown:
            out.append(f"{t.get('name')}: {t['error']}")
        elif result and not (result.get("formula") and result["formula"] in shown):
            out.append(f"{t.get('name')}: {plain(result.get('summary', ''))}")
            if result.get("formula"):
                out.append(f"  Formula: {result['formula']}")
    return out


def answer_text(answer: dict) -> str:
    """One answer as plain text: the answer, its calculations with formulas, the numbered
    citations with their exact quotes, the notes, and the as-of line."""
    lines = [plain(answer.get("text", "")).strip()]
    calcs = _calculations(answer)
    if calcs:
        lines += ["", "Calculations:", *calcs]
    cites = answer.get("citations") or []
    if cites:
        lines += ["", "Sources:"]
        for c in cites:
            lines += [citation_line(c), f'    "{c.get("quote", "")}"']
    notes = answer.get("notes") or []
    as_of = answer.get("as_of") or {}
    if as_of:
        notes = notes[1:]  # the date-of-service note is the as-of line's first part
    if notes:
        lines += ["", *(f"Note: {plain(n)}" for n in notes)]
    if as_of:
        lines += ["", as_of_text(as_of)]
    return "\n".join(lines).strip() + "\n"


def conversation_markdown(turns: list[dict], title: str = "CAR-T billing assistant conversation") -> str:
    """The conversation as Markdown: each question, then its answer as `answer_text` gives it
    (in a fenced block, so a quote's own characters are never read as Markdown)."""
    out = [f"# {title}", "", f"Exported {dt.datetime.now().isoformat(timespec='minutes')}", ""]
    for i, turn in enumerate(turns, 1):
        out += [f"## {i}. {turn.get('question', '')}", "", "```text", answer_text(turn.get("answer") or {}).rstrip(), "```", ""]
    return "\n".join(out)


def conversation_pdf(turns: list[dict], title: str = "CAR-T billing assistant conversation") -> bytes:
    """The same content as a PDF (fpdf2). DejaVu Sans draws every character the sources hold
    (≥, ⁶, ™); without that font, characters outside Latin-1 are replaced and the PDF says so."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_auto_page_break(auto=True, margin=15)
    unicode_font = PDF_FONT.exists()
    if unicode_font:
        pdf.add_font("DejaVu", fname=str(PDF_FONT))
    family = "DejaVu" if unicode_font else "Helvetica"

    def text(value: str) -> str:
        return value if unicode_font else value.encode("latin-1", "replace").decode("latin-1")

    pdf.add_page()
    pdf.set_font(family, size=14)
    pdf.multi_cell(0, 7, text(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, size=8)
    note = "" if unicode_font else " (characters outside Latin-1 shown as '?': install fonts-dejavu-core)"
    pdf.multi_cell(0, 5, text(f"Exported {dt.datetime.now().isoformat(timespec='minutes')}{note}"), new_x="LMARGIN", new_y="NEXT")
    for i, turn in enumerate(turns, 1):
        pdf.ln(3)
        pdf.set_font(family, size=11)
        pdf.multi_cell(0, 6, text(f"{i}. {turn.get('question', '')}"), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, size=9)
        for line in answer_text(turn.get("answer") or {}).split("\n"):
            pdf.multi_cell(0, 4.5, text(line) or " ", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def add_routes(api, conversations) -> None:
    """GET /api/conversations/{id}/export.md and .pdf: the caller's own conversation, as shown
    (stored answers with their citations), as a download."""
    from fastapi import Response

    from assistant.api import BadRequest, caller

    def export(conv_id: str, fmt: str, request):
        user, _ = caller(request)
        turns = conversations.transcript(conv_id, user.name)
        if not turns:
            return BadRequest(404, "No conversation of yours has that id (or it was deleted).").response()
        name = f"cart-conversation-{dt.date.today().isoformat()}.{fmt}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if fmt == "md":
            return Response(conversation_markdown(turns), media_type="text/markdown; charset=utf-8", headers=headers)
        return Response(conversation_pdf(turns), media_type="application/pdf", headers=headers)

    def export_md(conv_id: str, request: Request):
        return export(conv_id, "md", request)

    def export_pdf(conv_id: str, request: Request):
        return export(conv_id, "pdf", request)

    api.add_api_route("/conversations/{conv_id}/export.md", export_md, methods=["GET"])
    api.add_api_route("/conversations/{conv_id}/export.pdf", export_pdf, methods=["GET"])
