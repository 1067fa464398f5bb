"""The assistant's web app (Gradio), served on 127.0.0.1:7860 by default.

For now it offers cited passage search over the index; the chat, calculators and sources tabs
build on it. Offline by construction: no analytics, system fonts (the default theme would fetch
Google Fonts), no CDN scripts.
"""

from __future__ import annotations

import html
import os
import sys

from assistant import config  # noqa: F401  (offline environment first)

HOST = os.environ.get("CART_HOST", "127.0.0.1")
PORT = int(os.environ.get("CART_PORT", "7860") or 7860)
ROOT_PATH = os.environ.get("CART_ROOT_PATH", "")
MAX_QUESTION_CHARS = 4000


def render_passages(question: str, retriever) -> str:
    """Passages as escaped HTML: a source's text is shown as text, never as markup."""
    question = (question or "").strip()
    if not question:
        return "<p>Type a billing question or a code (e.g. <code>Q2055</code>, <code>0540T</code>).</p>"
    if len(question) > MAX_QUESTION_CHARS:
        return f"<p class='err'>The question is {len(question):,} characters; the limit is {MAX_QUESTION_CHARS:,}.</p>"
    hits = retriever.search(question)
    if not hits:
        return "<p>No passage in the sources matches this question.</p>"
    parts = []
    for p in hits:
        dated = " · ".join(x for x in (f"effective {p.effective}" if p.effective else "",
                                       f"reviewed {p.reviewed}" if p.reviewed else "") if x)
        header = f"<div class='hdr'>table: {html.escape(p.header)}</div>" if p.header else ""
        parts.append(
            f"<div class='passage'><div class='cite'>[{p.rank}] <b>{html.escape(p.title)}</b>"
            f" — {html.escape(p.section)} <span class='meta'>({html.escape(dated)}; "
            f"chars {p.span[0]}–{p.span[1]})</span></div>{header}"
            f"<blockquote>{html.escape(p.quote)}</blockquote></div>"
        )
    return "\n".join(parts)


CSS = """
.passage {border-left: 3px solid #2b5797; padding: 4px 10px; margin: 10px 0;}
.passage blockquote {white-space: pre-wrap; margin: 6px 0; font-size: 0.93em;}
.cite .meta, .hdr {color: #555; font-size: 0.85em;}
.err {color: #a00;}
"""


def build_app(retriever):
    import gradio as gr

    theme = gr.themes.Default(font=["system-ui", "Segoe UI", "Arial", "sans-serif"],
                              font_mono=["ui-monospace", "Consolas", "monospace"])
    with gr.Blocks(title="CAR-T billing assistant") as demo:
        gr.Markdown("## CAR-T billing assistant — source search\nCited passages from the billing guides "
                    "and payer policies. Every passage shows its document, section and exact text.")
        with gr.Row():
            q = gr.Textbox(label="Question or code", placeholder="e.g. Q2055 payment limit", scale=5)
            go = gr.Button("Search", variant="primary", scale=1)
        out = gr.HTML()
        gr.Examples(["Q2055 payment limit", "cilta-cel lymphodepletion", "Does CarePartners require REMS?",
                     "D89.833", "Tecartus ALL cyclophosphamide"], inputs=q)
        go.click(lambda text: render_passages(text, retriever), q, out)
        q.submit(lambda text: render_passages(text, retriever), q, out)
    demo.queue(default_concurrency_limit=4)
    return demo, theme, CSS


def main() -> int:
    from assistant.retrieval import HybridRetriever
    from index.store import IndexMissingError

    try:
        retriever = HybridRetriever()
    except IndexMissingError as exc:
        print(exc, file=sys.stderr)
        return 1
    demo, theme, css = build_app(retriever)
    print(f"Serving on http://{HOST}:{PORT}{ROOT_PATH or '/'}", flush=True)
    demo.launch(server_name=HOST, server_port=PORT, root_path=ROOT_PATH or None, theme=theme, css=css,
                show_error=False, share=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
