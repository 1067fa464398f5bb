"""The source viewer: a citation opens its document at the quoted passage.

    GET /sources/view?doc=ID&start=S&end=E   the page (embed/source.html): the passage highlighted in its
                                             section, with the document's metadata and links
    GET /sources/view?doc=ID                 the whole document, nothing highlighted
    GET /api/documents/{id}?start=S&end=E    what the page shows, as JSON (no span: the whole document)
    GET /api/documents/{id}/text             the document's text, exactly as indexed (text/plain)
    GET /api/documents/{id}/original         the file it was extracted from (a download), when there is one

For every signed-in user (the front door enforces sign-in; there is nothing here an admin only may
read: every user already gets quotes of these documents). The documents come from the configured
corpus on each request (cached per version of the files), so a document added while the app runs is
served at once. A quote is an offset span into the text, so the page shows `text[start:end]`
unaltered: the page builds its DOM with textContent only and keeps whitespace (white-space: pre-wrap).
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path
from urllib.parse import urlencode

from fastapi import Request  # module level: FastAPI resolves the string annotation here

from assistant.api import BadRequest
from index.chunking import blocks_of, is_heading
from index.corpus import _ID_RE as DOC_ID  # the corpus's own id rule: an id is never a path
from index.corpus import SourceDocument

ORIGINALS = "originals"       # where `index add` keeps originals, under the documents folder
MAX_SECTION_CHARS = 8000      # a "section" longer than this is no help in finding the passage
NEARBY_BLOCKS = 2             # blocks either side of the passage when no headings bound a section
_SPAN_NUMBER = re.compile(r"^[0-9]{1,9}$")  # no sign, no spaces, no "1e3": what view_link writes

PAGE_FILES = {"view": ("source.html", "text/html"), "source.js": ("source.js", "text/javascript"),
              "source.css": ("source.css", "text/css")}


def view_link(doc_id: str, span: tuple[int, int]) -> str:
    """The viewer's URL for a citation, relative to the app's root (so it works behind CART_ROOT_PATH)."""
    return "sources/view?" + urlencode({"doc": doc_id, "start": int(span[0]), "end": int(span[1])})


# --- the section around a passage ------------------------------------------------------------

def _heading_blocks(text: str, blocks) -> list[bool]:
    """Which blocks are headings: a one-line block that reads as one, as the chunker decides."""
    return [len(b.lines) == 1 and is_heading(text[b.start:b.end]) for b in blocks]


def section_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The span of whole blocks to show around `text[start:end]`: from the nearest heading at or
    before the passage's first block to the block before the next heading after its last one.
    Without such headings close enough (the section would run past MAX_SECTION_CHARS), the
    passage's blocks and NEARBY_BLOCKS either side. Always contains [start, end)."""
    blocks = blocks_of(text)
    if not blocks:
        return 0, len(text)
    # first block ending after start (start may sit on a blank line), last block starting before end
    first = next((i for i, b in enumerate(blocks) if b.end > start), len(blocks) - 1)
    last = max((i for i, b in enumerate(blocks) if b.start < end), default=first)
    last = max(last, first)
    heading = _heading_blocks(text, blocks)
    top = next((i for i in range(first, -1, -1) if heading[i]), None)
    after = next((i for i in range(last + 1, len(blocks)) if heading[i]), len(blocks))
    if top is not None and blocks[after - 1].end - blocks[top].start <= MAX_SECTION_CHARS:
        lo, hi = top, after - 1
    else:
        lo, hi = max(0, first - NEARBY_BLOCKS), min(len(blocks) - 1, last + NEARBY_BLOCKS)
    return min(blocks[lo].start, start), max(blocks[hi].end, end)


# --- the JSON -----------------------------------------------------------------------------------

def _span(request: Request, text: str) -> tuple[int, int] | None:
    """The `start`/`end` query values as a span of `text` (None: both left out); BadRequest(422) otherwise."""
    raw = request.query_params.get("start"), request.query_params.get("end")
    if raw == (None, None):
        return None
    if not all(v is not None and _SPAN_NUMBER.match(v) for v in raw):
        raise BadRequest(422, "'start' and 'end' must both be given, as whole numbers of characters from the start "
                           "of the document (or both left out for the whole document).")
    start, end = int(raw[0]), int(raw[1])
    if end <= start:
        raise BadRequest(422, f"'end' ({end}) must be after 'start' ({start}).")
    if end > len(text):
        raise BadRequest(422, f"The span {start}-{end} runs past the end of the document ({len(text)} characters).")
    return start, end


def _document(doc_id: str) -> tuple[SourceDocument, object]:
    """The document and the corpus it is in; BadRequest(404) for an unknown (or impossible) id."""
    from index.corpus import configured_corpus

    corpus = configured_corpus()
    doc = corpus.documents.get(doc_id) if DOC_ID.fullmatch(doc_id) else None
    if doc is None:
        raise BadRequest(404, f"There is no document {doc_id[:100]!r} in the sources.")
    return doc, corpus


def _original_path(doc: SourceDocument) -> Path | None:
    """The document's original file, only if it is a file inside the documents folder's originals/
    (after resolving links and '..'): the front matter is data, never trusted as a path."""
    from assistant import config

    if not doc.original:
        return None
    root = (config.load().sources_dir / "documents" / ORIGINALS).resolve()
    try:
        path = (root.parent / doc.original).resolve()
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL byte
        return None
    return path if path.is_relative_to(root) and path != root and path.is_file() else None


def document_view(doc: SourceDocument, version: str, span: tuple[int, int] | None) -> dict:
    """What the viewer shows: metadata, the section (the whole text without a span) and the passage."""
    text = doc.text
    lo, hi = section_around(text, *span) if span else (0, len(text))
    return {
        "id": doc.id, "title": doc.title, "kind": doc.kind, "payer": doc.payer, "publisher": doc.publisher,
        "effective": doc.effective, "reviewed": doc.reviewed, "version": version,
        "pages": len(doc.pages) or None, "page": doc.page_of(span[0]) if span else None,
        "original": _original_path(doc) is not None,
        "section": {"start": lo, "end": hi, "text": text[lo:hi]},
        "passage": {"start": span[0], "end": span[1], "text": text[span[0]:span[1]]} if span else None,
    }


# --- the routes ---------------------------------------------------------------------------------

def _refusals(handler):
    """Answer a BadRequest with its JSON message (a plain function: FastAPI reads its signature)."""
    import functools

    @functools.wraps(handler)
    def run(doc_id: str, request: Request):
        try:
            return handler(doc_id, request)
        except BadRequest as refused:
            return refused.response()
    return run


@_refusals
def get_document(doc_id: str, request: Request):
    doc, corpus = _document(doc_id)
    version = corpus.versions[doc.id].label() if doc.id in corpus.versions else ""
    return document_view(doc, version, _span(request, doc.text))


@_refusals
def get_text(doc_id: str, request: Request):
    from fastapi.responses import Response

    doc, _corpus = _document(doc_id)
    return Response(doc.text.encode("utf-8"), media_type="text/plain; charset=utf-8")


@_refusals
def get_original(doc_id: str, request: Request):
    from fastapi.responses import FileResponse

    doc, _corpus = _document(doc_id)
    path = _original_path(doc)
    if path is None:
        raise BadRequest(404, f"The document {doc.id!r} has no original file here (it was typed in, or its file is missing).")
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media, filename=path.name, content_disposition_type="attachment")


def _api_app(app):
    """The JSON API sub-application mounted at /api (a route added beside the mount would never
    be reached: the mount takes every /api path); None when there is none."""
    from starlette.routing import Mount

    return next((r.app for r in app.router.routes if isinstance(r, Mount) and r.path == "/api"), None)


def add_routes(app, folder: Path) -> None:
    """The viewer page and its files under /sources/, and the document routes on the JSON API."""
    from fastapi.responses import FileResponse

    def serve(name: str):
        file, media = PAGE_FILES[name]

        def route():
            return FileResponse(folder / file, media_type=media)
        return route

    for name in PAGE_FILES:
        app.add_api_route(f"/sources/{name}", serve(name), methods=["GET"], include_in_schema=False)
    api = _api_app(app)
    target, prefix = (api, "") if api is not None else (app, "/api")
    target.add_api_route(f"{prefix}/documents/{{doc_id}}", get_document, methods=["GET"])
    target.add_api_route(f"{prefix}/documents/{{doc_id}}/text", get_text, methods=["GET"])
    target.add_api_route(f"{prefix}/documents/{{doc_id}}/original", get_original, methods=["GET"])
