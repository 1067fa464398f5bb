"""Turn an Answer (or a calculator result) into what the web page shows.

Everything that came from a source document, a question or a calculator input is escaped here:
sources and questions are text, never markup, so a `<script>` or an `onerror=` attribute inside
either renders inert. The chat bubble gets escaped markdown; the evidence panel gets escaped HTML.
"""

from __future__ import annotations

import html
import re

from assistant.answer import Answer, AnswerKind, Citation, ToolCall
from assistant.guards import INVISIBLE
from assistant.source_view import view_link

_EMPHASIS = re.compile(r"\*\*([^*\n]+)\*\*|(?<![\w*])\*([^*\s][^*\n]*?)\*(?![\w*])")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]()#!|~>])")


def esc(text: object) -> str:
    """HTML-escaped text on one line: a newline becomes `&#10;` (the same character once parsed,
    and pre-wrap still breaks there), so the markup is a single HTML block to `html_panel`."""
    return html.escape(str(text), quote=True).replace("\r\n", "&#10;").replace("\n", "&#10;")


def html_panel(value: str = "", **kwargs):
    """The Gradio component for our escaped HTML (evidence, results, sources, field errors).

    gr.Markdown, not gr.HTML: gr.HTML runs its template through `new Function`, which the page's
    Content-Security-Policy (no 'unsafe-eval', assistant/security.py) forbids. Markdown passes a
    one-line HTML block through its sanitizer unchanged, and with no LaTeX delimiters a `$` in a
    quote stays a dollar sign."""
    import gradio as gr

    return gr.Markdown(value, sanitize_html=True, latex_delimiters=[], **kwargs)


def md_text(text: str) -> str:
    """Plain text safe inside markdown: HTML escaped, markdown syntax neutralized.

    Quotes are left as they are: `'` would become `&#x27;`, whose `#` the markdown escaping then
    turns into visible text. Outside a tag, quotes are harmless once `<`, `>` and `&` are escaped.
    """
    return _MD_SPECIAL.sub(r"\\\1", html.escape(INVISIBLE.sub("", str(text)), quote=False))


def _emphasis(text: str, escape, bold: str, italic: str) -> str:
    """**bold** and *italic* from engine/calculator text kept (as `bold`/`italic` templates),
    every other character escaped with `escape`."""
    parts, last = [], 0
    for m in _EMPHASIS.finditer(text):
        parts.append(escape(text[last:m.start()]))
        parts.append(bold.format(escape(m.group(1))) if m.group(1) is not None else italic.format(escape(m.group(2))))
        last = m.end()
    parts.append(escape(text[last:]))
    return "".join(parts)


def md_inline(text: str) -> str:
    """Engine or calculator text as markdown: **bold** and *italic* kept, everything else escaped."""
    return _emphasis(text, md_text, "**{}**", "*{}*")


def html_inline(text: str) -> str:
    """Engine or calculator text as HTML: **bold** and *italic* become tags, everything else escaped."""
    return _emphasis(text, esc, "<b>{}</b>", "<i>{}</i>")


KIND_LABELS = {AnswerKind.NOT_COVERED: "Not covered by my sources.", AnswerKind.REFUSAL: "Outside what I do.",
               AnswerKind.CLARIFY: "I need more to answer.", AnswerKind.ERROR: "Can't process that."}


def answer_markdown(answer: Answer) -> str:
    """The chat bubble: the answer text with its [n] markers, then notes, all escaped.

    The engine's own markup is limited to **bold** leads, *italic* labels and "- " bullets; those are kept, the
    rest of the text is neutralized so a quoted source cannot inject links, images or HTML.
    """
    lines = []
    for raw in (answer.text or "").split("\n"):
        bullet = raw.startswith("- ")
        body = raw[2:] if bullet else raw
        text = md_inline(body)
        text = re.sub(r"\\\[(\d+)\\\]", r"[\1]", text)  # keep citation markers readable
        lines.append(("- " if bullet else "") + text)
    out = "\n".join(lines)
    if answer.kind in KIND_LABELS:
        out = f"**{KIND_LABELS[answer.kind]}** " + out
    for t in answer.tool_calls:  # what the engine's text does not already say
        if t.error and t.error not in (answer.text or ""):
            out += f"\n\n**{md_text(t.name)}:** {md_text(t.error)}"
        elif t.result and t.result.summary and t.result.summary not in (answer.text or ""):
            out += f"\n\n**{md_text(t.name)}:** {md_inline(t.result.summary)}"
    # the date-of-service note is the as-of line's first part: shown once, as that line, last
    notes = answer.notes[1:] if answer.as_of else answer.notes
    if notes:
        out += "\n\n" + "\n".join(f"> **Note:** {md_text(n)}" for n in notes)
    if answer.as_of:
        out += f"\n\n*{md_text(answer.as_of_line())}*"
    return out


def _dates(c: Citation) -> str:
    bits = [f"page {c.page}" if c.page else "", f"effective {c.effective}" if c.effective else "",
            f"reviewed {c.reviewed}" if c.reviewed else "", c.version]
    return " · ".join(b for b in bits if b)


def citations_html(citations: list[Citation]) -> str:
    parts = []
    for c in citations:
        dates = _dates(c)
        parts.append(
            f"<details class='cart-cite' data-marker='{esc(c.marker)}'>"
            f"<summary><span class='cart-marker'>[{esc(c.marker)}]</span> <b>{esc(c.title)}</b>"
            f" — {esc(c.section or 'document')}"
            + (f" <span class='cart-meta'>({esc(dates)})</span>" if dates else "")
            + "</summary>"
            f"<blockquote class='cart-quote'>{esc(c.quote)}</blockquote>"
            f"<div class='cart-meta'>{esc(c.doc_id)} · characters {esc(c.span[0])}–{esc(c.span[1])} · "
            f"<a class='cart-open' href='{esc(view_link(c.doc_id, c.span))}' target='_blank' rel='noopener'>"
            "Open in the document</a></div>"
            "</details>")
    return "".join(parts)


def tool_html(call: ToolCall) -> str:
    """One calculator call: the result line, the formula with numbers, assumptions, warnings."""
    name = esc(call.name)
    if call.error or call.result is None:
        return f"<div class='cart-tool cart-error'><b>{name}</b>: {esc(call.error or '')}</div>"
    r = call.result
    out = [f"<div class='cart-tool'><div><b>{name}</b>: {html_inline(r.summary)}</div>"]
    if r.formula:
        out.append(f"<pre class='cart-formula'>{esc(r.formula)}</pre>")
    for label, items in (("Assumption", r.assumptions), ("Warning", r.warnings)):
        for item in items:
            cls = "cart-warning" if label == "Warning" else "cart-meta"
            out.append(f"<div class='{cls}'>{label}: {esc(item)}</div>")
    cites = r.citations
    if cites:
        out.append("<div class='cart-meta'>Reference: " + "; ".join(
            esc(c.get("label") or c.get("ref") or "") + (f" — “{esc(c['quote'])}”" if c.get("quote") else "")
            for c in cites) + "</div>")
    out.append("</div>")
    return "".join(out)


def answer_details_html(answer: Answer | None) -> str:
    """The evidence panel for one answer: citations that open to the quote, tools, notes."""
    if answer is None:
        return ("<div class='cart-empty'>Ask a question: the passages each answer relies on appear "
                "here, with the document, section, dates and exact quote.</div>")
    parts = []
    if answer.not_covered:
        parts.append("<div class='cart-notcovered'>Not covered: my sources have no passage that "
                     "answers this, so no figure is given.</div>")
    if answer.tool_calls:
        parts.append("<h4>Calculations</h4>" + "".join(tool_html(t) for t in answer.tool_calls))
    notes = answer.notes[1:] if answer.as_of else answer.notes  # the date note is the as-of line's first part
    if notes:
        parts.append("<h4>Notes</h4>" + "".join(f"<div class='cart-note'>{esc(n)}</div>" for n in notes))
    if answer.citations:
        parts.append("<h4>Sources</h4>" + citations_html(answer.citations))
    if answer.as_of:
        parts.append(f"<div class='cart-meta cart-asof'>{esc(answer.as_of_line())}</div>")
    return "<div class='cart-evidence'>" + "".join(parts) + "</div>" if parts else ""


CSS = """
.cart-evidence h4 {margin: 10px 0 4px; font-size: 0.95em; text-transform: uppercase; letter-spacing: .03em; color: #334;}
.cart-cite {border-left: 3px solid #1f4e8c; padding: 4px 10px; margin: 6px 0; background: #f7f9fc;}
.cart-cite summary {cursor: pointer;}
.cart-quote {white-space: pre-wrap; margin: 6px 0; font-size: 0.93em; border-left: 2px solid #c8d3e6; padding-left: 8px;}
.cart-meta {color: #555; font-size: 0.85em;}
.cart-marker {font-weight: 600; color: #1f4e8c;}
.cart-note {background: #fff6da; border-left: 3px solid #c99a06; padding: 6px 10px; margin: 6px 0;}
.cart-notcovered {background: #fdecec; border-left: 3px solid #b3261e; padding: 6px 10px; margin: 6px 0;}
.cart-tool {background: #eef6ef; border-left: 3px solid #2e7d32; padding: 6px 10px; margin: 6px 0;}
.cart-formula {white-space: pre-wrap; font-size: 0.88em; margin: 4px 0; background: transparent; border: 0;}
.cart-warning {color: #8a4b00; font-size: 0.9em;}
.cart-error {background: #fdecec; border-left-color: #b3261e;}
.cart-empty {color: #666; font-style: italic;}
.cart-field-error {color: #b3261e; font-weight: 600;}
#cart-feedback-status {padding: 2px 12px;}
footer {display: none !important;}
.cart-offscreen {position: absolute !important; left: -10000px; width: 1px; height: 1px; overflow: hidden;}
"""
