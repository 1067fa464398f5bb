"""The Sources tab: what the assistant answers from, how current it is, when it was indexed."""

from __future__ import annotations

from assistant.render import esc


def sources_html(engine) -> str:
    from assistant.core.reference import load_reference
    from index.corpus import load_corpus

    cfg = engine.cfg
    docs = load_corpus(cfg.sources_dir).documents
    rows = "".join(
        f"<tr><td><b>{esc(d.title)}</b><div class='cart-meta'>{esc(d.id)}</div></td><td>{esc(d.kind)}</td>"
        f"<td>{esc(d.payer or '—')}</td><td>{esc(', '.join(d.products))}</td>"
        f"<td>{esc(d.effective or '—')}</td><td>{esc(d.reviewed or '—')}</td>"
        f"<td>{esc(d.price_quarter or '—')}</td></tr>" for d in docs)
    ref = load_reference(cfg.reference_dir)
    q_rows = "".join(
        f"<tr><td>{esc(q)}</td><td>{esc(s.kind)}</td><td>{esc(s.title)}</td>"
        f"<td>{esc(s.effective)} – {esc(s.through)}</td><td>{len(s.rows)}</td></tr>"
        for q in reversed(ref.quarters()) for s in ref.limit_sources(q))
    m = getattr(engine.retriever, "manifest", None)
    built = (f"Index build <code>{esc(m.build_id)}</code>, created {esc(m.created)}, "
             f"{len(m.chunk_ids)} passages from {len(m.documents)} documents.") if m else "Index: unknown."
    return f"""
<div class='cart-evidence'>
<h4>Documents</h4>
<table class='cart-table'><thead><tr><th>Document</th><th>Kind</th><th>Payer</th><th>Products</th>
<th>Effective</th><th>Reviewed</th><th>Prices quoted for</th></tr></thead><tbody>{rows}</tbody></table>
<h4>Payment-limit reference data</h4>
<p>{esc(_quarters_line(ref))}</p>
<table class='cart-table'><thead><tr><th>Quarter</th><th>Source</th><th>Title</th><th>Effective</th>
<th>Codes</th></tr></thead><tbody>{q_rows}</tbody></table>
<h4>Index</h4><p>{built}</p>
</div>"""


def _quarters_line(ref) -> str:
    """Which quarters a claim can be priced for: a date of service is priced with its quarter's file."""
    cms = ref.cms_quarters()
    if not cms:
        return "No CMS payment limit file is imported."
    guides = [q for q in ref.quarters() if q not in cms]
    text = (f"CMS payment limit files on hand: {cms[0]} to {cms[-1]} ({len(cms)} quarters). A date of service is "
            f"priced with the file of its quarter; a later date has no CMS limit on hand.")
    if guides:
        text += f" The billing guides' quoted figures cover {', '.join(guides)}."
    return text
