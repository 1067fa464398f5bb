"""The Documents page's back end: an admin uploads a file, corrects the proposed metadata, adds it
and starts the rebuild, all through `index.ingest` and `index.build` (the same code as
`python -m index add`). Off unless CART_ADMIN_PAGES=on; every route is for admins only.

    GET    /api/admin/documents             the corpus (with revisions) and the build's state
    POST   /api/admin/uploads               the file's bytes (Content-Type application/octet-stream,
                                            X-File-Name: its name) -> the proposal with its evidence
    POST   /api/admin/uploads/{id}          {"fields": {...}}: the corrected proposal
    POST   /api/admin/uploads/{id}/add      {"fields": {...}}: write it and start the rebuild
    DELETE /api/admin/uploads/{id}          discard an upload
    GET    /api/admin/build                 the rebuild's state and progress lines

A staged upload is a file in `$CART_DATA_DIR/uploads` (0600, removed when added, discarded or an
hour old). The rebuild runs in a background thread; the old index keeps answering until the new
one is live, and then the engine switches to it.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from fastapi import Request

from assistant import config
from assistant.api import BadRequest, caller, read_json

STAGED_TTL = 3600.0                  # seconds an upload waits for its metadata to be confirmed


def enabled(cfg: config.Config) -> bool:
    return cfg.admin_pages == "on"


@dataclass
class BuildJob:
    """The one rebuild the page runs at a time, and what it said."""

    state: str = "idle"          # idle | running | built | up-to-date | failed
    lines: list[str] = field(default_factory=list)
    started: str = ""
    finished: str = ""
    message: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def to_dict(self) -> dict:
        with self.lock:
            return {"state": self.state, "lines": self.lines[-200:], "started": self.started,
                    "finished": self.finished, "message": self.message}

    def start(self, cfg: config.Config, on_live) -> bool:
        """Start a rebuild in the background; False when one is already running."""
        with self.lock:
            if self.state == "running":
                return False
            self.state, self.lines, self.message, self.finished = "running", [], "", ""
            self.started = dt.datetime.now().isoformat(timespec="seconds")
        threading.Thread(target=self._run, args=(cfg, on_live), name="documents-build", daemon=True).start()
        return True

    def _say(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)

    def _run(self, cfg: config.Config, on_live) -> None:
        from index.build import build

        try:
            report = build(cfg, progress=self._say)
            state, message = report.status, report.message
            if report.status == "built":
                on_live()
        except Exception as exc:  # the live index is untouched by a failed build
            state, message = "failed", f"Build failed: {exc}. The previous index is still the live one."
        with self.lock:
            self.state, self.message = state, message
            self.finished = dt.datetime.now().isoformat(timespec="seconds")


class Uploads:
    """Staged uploads by id: the file on disk and its `index.ingest.Staged`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.items: dict[str, tuple[float, object]] = {}
        self.lock = threading.Lock()

    def add(self, name: str, data: bytes) -> tuple[str, Path]:
        from index.ingest import safe_name

        self.expire()
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        upload_id = secrets.token_urlsafe(12)
        path = self.folder / f"{upload_id}-{safe_name(name)}"
        path.touch(mode=0o600)
        path.write_bytes(data)
        return upload_id, path

    def keep(self, upload_id: str, staged) -> None:
        with self.lock:
            self.items[upload_id] = (time.monotonic(), staged)

    def get(self, upload_id: str):
        self.expire()
        with self.lock:
            item = self.items.get(upload_id)
        if item is None:
            raise BadRequest(404, "That upload is not waiting here any more (added, discarded or over an hour old); "
                                  "upload the file again.")
        return item[1]

    def drop(self, upload_id: str) -> bool:
        with self.lock:
            item = self.items.pop(upload_id, None)
        if item is not None:
            item[1].path.unlink(missing_ok=True)
        for stray in self.folder.glob(f"{upload_id}-*"):  # a file whose staging failed
            stray.unlink(missing_ok=True)
        return item is not None

    def expire(self) -> None:
        now = time.monotonic()
        with self.lock:
            old = [k for k, (t, _s) in self.items.items() if now - t > STAGED_TTL]
        for k in old:
            self.drop(k)


def _proposal_dict(upload_id: str, staged) -> dict:
    ex = staged.extracted
    return {
        "upload_id": upload_id, "file": staged.name, "file_type": ex.file_type, "pages": len(ex.pages),
        "tables": ex.tables, "characters": len(ex.text),
        "fields": {name: {"value": list(p.value) if isinstance(p.value, tuple) else p.value,
                          "evidence": p.evidence, "source": p.source}
                   for name, p in staged.proposal.fields.items()},
        "problems": staged.problems(), "notes": list(staged.notes), "supersedes": staged.supersedes,
    }


def _fields(body: dict) -> dict:
    fields = body.get("fields", {})
    if not isinstance(fields, dict) or not all(isinstance(k, str) for k in fields):
        raise BadRequest(422, "'fields' must be an object of field name to value.")
    out = {}
    for k, v in fields.items():
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            out[k] = ",".join(v)
        elif isinstance(v, str) or v is None:
            out[k] = v or ""
        else:
            raise BadRequest(422, f"field {k!r} must be text or a list of text.")
    return out


def admin_only(handler):
    """A route for admins only, whose refusals (BadRequest; a file or correction the ingest
    refuses: 422) are answered with their message, never a traceback."""
    def refused(exc: Exception):
        return (exc if isinstance(exc, BadRequest) else BadRequest(422, str(exc))).response()

    def check(request) -> None:
        if not caller(request)[0].admin:
            raise BadRequest(403, "This is for administrators only (CART_ADMIN_GROUPS).")

    if inspect.iscoroutinefunction(handler):
        @functools.wraps(handler)
        async def run_async(self, *args, request: Request, **kwargs):
            try:
                check(request)
                return await handler(self, *args, request=request, **kwargs)
            except (BadRequest, ValueError) as exc:  # IngestError is a ValueError
                return refused(exc)
        return run_async

    @functools.wraps(handler)
    def run(self, *args, request: Request, **kwargs):
        try:
            check(request)
            return handler(self, *args, request=request, **kwargs)
        except (BadRequest, ValueError) as exc:
            return refused(exc)
    return run


class DocumentRoutes:
    """The admin routes; `engine` switches to the new index when a rebuild goes live."""

    def __init__(self, engine, cfg: config.Config):
        self.engine, self.cfg = engine, cfg
        self.uploads = Uploads(cfg.data_dir / "uploads")
        self.job = BuildJob()

    @admin_only
    def list_documents(self, request: Request):
        from index.corpus import load_corpus, versions

        report = load_corpus(self.cfg.sources_dir)
        order = versions(report.documents)
        docs = [{"id": d.id, "title": d.title, "kind": d.kind, "payer": d.payer or "", "products": list(d.products),
                 "effective": d.effective or "", "reviewed": d.reviewed or "", "policy_number": d.policy_number,
                 "original": d.original, "pages": len(d.pages) or None, "version": order[d.id].label() or "only version"}
                for d in report.documents]
        return {"documents": docs, "errors": [str(e) for e in report.errors], "build": self.job.to_dict()}

    @admin_only
    async def upload(self, request: Request):
        from starlette.concurrency import run_in_threadpool

        from index.ingest import stage

        name = unquote(request.headers.get("x-file-name", "")).strip()  # the page sends it URI-encoded
        if not name:
            raise BadRequest(400, "Name the file in the X-File-Name header.")
        data = await request.body()  # bounded by the front door (CART_MAX_UPLOAD_MB)
        upload_id, path = self.uploads.add(name, data)
        try:
            staged = await run_in_threadpool(lambda: stage(path, self.cfg.sources_dir, name=name,
                                                           max_bytes=self.cfg.max_upload_mb * 2**20))
        except BaseException:  # refused (one line) or failed: nothing kept
            self.uploads.drop(upload_id)
            raise
        self.uploads.keep(upload_id, staged)
        return _proposal_dict(upload_id, staged)

    @admin_only
    async def revise(self, upload_id: str, request: Request):
        from index.ingest import revise

        staged = revise(self.uploads.get(upload_id), self.cfg.sources_dir, _fields(await read_json(request)))
        self.uploads.keep(upload_id, staged)  # what the page now shows
        return _proposal_dict(upload_id, staged)

    @admin_only
    async def add(self, upload_id: str, request: Request):
        from index.ingest import commit, revise

        # a refused correction leaves the staged upload as it was (revise returns a copy)
        staged = revise(self.uploads.get(upload_id), self.cfg.sources_dir, _fields(await read_json(request)))
        if staged.problems():
            raise BadRequest(422, "Not added: " + "; ".join(staged.problems()))
        target = commit(staged, self.cfg.sources_dir)
        self.uploads.drop(upload_id)
        started = self.job.start(self.cfg, self.engine.use_live_index)
        return {"added": target.stem, "supersedes": staged.supersedes, "build_started": started,
                "build": self.job.to_dict()}

    @admin_only
    def discard(self, upload_id: str, request: Request):
        return {"discarded": self.uploads.drop(upload_id)}

    @admin_only
    def build_state(self, request: Request):
        return self.job.to_dict()


PAGE_FILES = {"documents": ("documents.html", "text/html"), "documents.js": ("documents.js", "text/javascript"),
              "documents.css": ("documents.css", "text/css")}


def serve_files(app, folder: Path, files: dict[str, tuple[str, str]], refusal: str) -> None:
    """/admin/<name> for each of `files` (name -> (file in `folder`, media type)), for admins only;
    anyone else gets `refusal` (403). The one way an admin page and its script and style are served."""
    from fastapi.responses import FileResponse, PlainTextResponse

    def serve(name: str):
        def route(request: Request):
            if not caller(request)[0].admin:
                return PlainTextResponse(refusal, status_code=403)
            file, media = files[name]
            return FileResponse(folder / file, media_type=media)
        return route

    for name in files:
        app.add_api_route(f"/admin/{name}", serve(name), methods=["GET"], include_in_schema=False)


def add_page(app, folder: Path) -> None:
    """/admin/documents (and its script and style sheet), for admins only."""
    serve_files(app, folder, PAGE_FILES, "The Documents page is for administrators.")


def add_routes(api, engine, cfg: config.Config) -> None:
    """Mount the admin routes on the JSON API (only when the page is on)."""
    r = DocumentRoutes(engine, cfg)
    api.add_api_route("/admin/documents", r.list_documents, methods=["GET"])
    api.add_api_route("/admin/uploads", r.upload, methods=["POST"])
    api.add_api_route("/admin/uploads/{upload_id}", r.revise, methods=["POST"])
    api.add_api_route("/admin/uploads/{upload_id}/add", r.add, methods=["POST"])
    api.add_api_route("/admin/uploads/{upload_id}", r.discard, methods=["DELETE"])
    api.add_api_route("/admin/build", r.build_state, methods=["GET"])
