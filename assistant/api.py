"""JSON HTTP API for intranet pages that render their own widget.

    POST /api/ask   {"question": "...", "conversation_id": "optional", "dos": "optional date of service"}
      -> 200 {"conversation_id": "...", "answer": {...the structured Answer...}}
      -> 400/413/422 {"error": "a message a person can act on"}
    POST /api/feedback {"conversation_id": "...", "rating": 1 | -1, "comment": "...",
                        "question": "...", "answer": {...the answer object as received...}}
      -> 200 {"id": N}
    GET  /api/health -> {"status": "ok", "index": "<build id>", "documents": N}

Conversations live in memory, bounded (least recently used are dropped) and expire after an
idle period; a conversation id is an opaque random token. CORS is closed unless origins are
configured (CART_ALLOWED_ORIGINS, comma-separated): same-origin pages always work.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from fastapi import Request  # module level: FastAPI resolves the string annotation here

from assistant import config, requestlog
from assistant.core.dates import parse_service_date
from assistant.engine import MAX_QUESTION_CHARS, Conversation, Engine

MAX_BODY_BYTES = 64 * 1024


# --- the engine's own worker threads ------------------------------------------------------
# Engine.ask is mostly CPU-bound Python plus calls that release the GIL (the query embedding,
# Chroma; network waits with a Chroma server or the LLM composer). A few threads answer as many
# questions per second as dozens do, without the GIL thrashing between dozens of half-done
# answers: on the 2-core machine, with 32 concurrent conversations, 2-4 threads gave the best
# throughput and p95, 1 thread and 32 threads clearly worse (benchmarks/load.py). The JSON API
# and the Gradio chat share this one FIFO pool, so a burst on one interface cannot starve the
# other, and a waiting request holds no server thread.
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def engine_threads() -> int:
    return config.load().engine_threads


def engine_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=engine_threads(), thread_name_prefix="cart-engine")
        return _pool


async def run_engine(fn, *args):
    """Run `fn(*args)` on the engine pool without blocking the event loop."""
    import asyncio

    return await asyncio.get_running_loop().run_in_executor(engine_pool(), fn, *args)


class Conversations:
    """Thread-safe, bounded store of conversations by id.

    `limit` and `ttl` (seconds) default to CART_MAX_CONVERSATIONS and CART_CONVERSATION_TTL, read
    when the store is made."""

    def __init__(self, limit: int | None = None, ttl: float | None = None):
        self._items: OrderedDict[str, tuple[float, Conversation]] = OrderedDict()
        self._lock = threading.Lock()
        cfg = config.load() if limit is None or ttl is None else None
        self.limit = limit if limit is not None else cfg.max_conversations
        self.ttl = ttl if ttl is not None else cfg.conversation_ttl

    def get(self, conv_id: str | None) -> Conversation:
        now = time.monotonic()
        with self._lock:
            for key in [k for k, (t, _) in self._items.items() if now - t > self.ttl]:
                del self._items[key]
            if conv_id and conv_id in self._items:
                conv = self._items.pop(conv_id)[1]
            else:
                conv = Conversation()
            self._items[conv.id] = (now, conv)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
            return conv


class BadRequest(Exception):
    """A request the API refuses: its status and a message a person can act on."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message

    def response(self):
        from fastapi.responses import JSONResponse

        return JSONResponse({"error": self.message}, status_code=self.status)


def _check_headers(request: Request) -> None:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # Missing is tolerated (curl without -H); any other type is refused, which also keeps
    # other sites' pages from posting here without a CORS preflight (text/plain, forms).
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        raise BadRequest(415, f"Content-Type must be application/json (got {ctype[:60]!r}).")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadRequest(413, f"Request body is {int(declared):,} bytes; the limit is {MAX_BODY_BYTES:,}.")


async def _read_body(request: Request) -> bytes:
    raw = bytearray()
    async for chunk in request.stream():  # never more than the limit in memory
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise BadRequest(413, f"Request body is over {MAX_BODY_BYTES:,} bytes; the limit is {MAX_BODY_BYTES:,}.")
    return bytes(raw)


def _parse_object(raw: bytes) -> dict:
    too_deep = BadRequest(400, "The request body is nested too deeply to be a question.")
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(400, "The request body must be JSON (see the README's API section).") from None
    except RecursionError:
        raise too_deep from None
    if not isinstance(body, dict):
        raise BadRequest(422, "The request body must be a JSON object.")
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(400, "The request body contains an invalid Unicode escape (a lone surrogate "
                              "such as \\ud800).") from None
    except (RecursionError, ValueError):
        raise too_deep from None
    return body


async def read_json(request: Request) -> dict:
    """The body as a JSON object, or BadRequest saying what is wrong with it."""
    _check_headers(request)
    return _parse_object(await _read_body(request))


def _ask_fields(body: dict) -> tuple[str, str | None, str | None]:
    question, conv_id, dos = body.get("question"), body.get("conversation_id"), body.get("dos")
    if not isinstance(question, str):
        raise BadRequest(422, '"question" must be a string.')
    if conv_id is not None and not isinstance(conv_id, str):
        raise BadRequest(422, '"conversation_id" must be a string (or left out to start a conversation).')
    if dos is not None and (not isinstance(dos, str) or len(dos) > 40):
        raise BadRequest(422, '"dos" must be a date of service as text, e.g. "2026-02-03" (or left out).')
    if isinstance(dos, str) and dos.strip():
        try:
            parse_service_date(dos, dt.date.today())
        except ValueError as exc:
            raise BadRequest(422, f'"dos": {exc}') from None
    if len(question) > MAX_QUESTION_CHARS:
        raise BadRequest(413, f"The question is {len(question):,} characters; the limit is {MAX_QUESTION_CHARS:,}.")
    return question, conv_id, dos


def _feedback_fields(body: dict) -> dict:
    rating, answer = body.get("rating"), body.get("answer")
    if rating not in (1, -1) or isinstance(rating, bool):
        raise BadRequest(422, '"rating" must be 1 (helpful) or -1 (not helpful).')
    if not isinstance(answer, dict) or not isinstance(answer.get("text", ""), str):
        raise BadRequest(422, '"answer" must be the answer object the API returned.')
    question = body.get("question", answer.get("question", ""))
    comment, conv_id = body.get("comment", ""), body.get("conversation_id")
    if not all(isinstance(v, str) for v in (question, comment)) or not isinstance(conv_id, (str, type(None))):
        raise BadRequest(422, '"question", "comment" and "conversation_id" must be strings.')
    return {"rating": rating, "question": question, "answer": answer, "comment": comment, "conversation_id": conv_id}


def _log_feedback(body: dict, rating: int | None, status: int, started: float) -> None:
    """One request-log line for a feedback post, with whatever question the body carries."""
    answer = body.get("answer") if isinstance(body.get("answer"), dict) else None
    question = body.get("question", "")
    if not isinstance(question, str):
        question = ""
    if not question and answer is not None and isinstance(answer.get("question"), str):
        question = answer["question"]
    requestlog.log_feedback("api", rating, question, answer, body.get("conversation_id"),
                            (time.perf_counter() - started) * 1000, status=status,
                            kind=None if status == 200 else "rejected")


def create_api(engine: Engine, conversations: Conversations | None = None, feedback=None):
    """A FastAPI sub-application with the JSON endpoints (mounted by app.py under /api)."""
    from fastapi import FastAPI
    from starlette.concurrency import run_in_threadpool

    api = FastAPI(title="CAR-T billing assistant API", docs_url=None, redoc_url=None, openapi_url=None)
    conversations = conversations if conversations is not None else Conversations()

    @api.get("/health")
    def health():
        m = engine.retriever.manifest
        return {"status": "ok", "index": m.build_id, "documents": len(m.documents)}

    @api.post("/ask")
    async def ask(request: Request):
        started = time.perf_counter()
        body: dict = {}
        try:
            body = await read_json(request)
            question, conv_id, dos = _ask_fields(body)
        except BadRequest as bad:
            question, conv_id = body.get("question"), body.get("conversation_id")
            requestlog.log_ask("api", question if isinstance(question, str) else "", None,
                               conv_id if isinstance(conv_id, str) else None,
                               (time.perf_counter() - started) * 1000, status=bad.status, kind="rejected")
            return bad.response()
        conv = conversations.get(conv_id)
        # the engine is CPU-bound: run it off the event loop, on a bounded pool (CART_ENGINE_THREADS)
        answer = await run_engine(lambda: engine.ask(question, conv, dos=dos))
        requestlog.log_ask("api", question, answer, conv.id, (time.perf_counter() - started) * 1000, status=200)
        return {"conversation_id": conv.id, "answer": answer.to_dict()}

    @api.post("/feedback")
    async def give_feedback(request: Request):
        started = time.perf_counter()
        body: dict = {}
        try:
            if feedback is None:
                raise BadRequest(404, "Feedback is not enabled on this server.")
            body = await read_json(request)
            fields = _feedback_fields(body)
        except BadRequest as bad:
            _log_feedback(body, None, bad.status, started)
            return bad.response()
        fid = await run_in_threadpool(lambda: feedback.add(**fields))
        _log_feedback(body, fields["rating"], 200, started)
        return {"id": fid}

    return api
