"""JSON HTTP API for intranet pages that render their own widget.

    POST /api/ask   {"question": "...", "conversation_id": "optional"}
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

import json
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from fastapi import Request  # module level: FastAPI resolves the string annotation here

from assistant import config, requestlog
from assistant.engine import MAX_QUESTION_CHARS, Conversation, Engine

MAX_BODY_BYTES = 64 * 1024
MAX_CONVERSATIONS = config._int("CART_MAX_CONVERSATIONS", 1000)
CONVERSATION_TTL_S = config._int("CART_CONVERSATION_TTL", 3600)


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
    n = config._int("CART_ENGINE_THREADS", 4)
    if n < 1:
        raise SystemExit(f"Configuration error: CART_ENGINE_THREADS={n} must be at least 1")
    return n


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


def allowed_origins() -> list[str]:
    return [o.strip().rstrip("/") for o in os.environ.get("CART_ALLOWED_ORIGINS", "").split(",") if o.strip()]


class Conversations:
    """Thread-safe, bounded store of conversations by id."""

    def __init__(self, limit: int = MAX_CONVERSATIONS, ttl: float = CONVERSATION_TTL_S):
        self._items: OrderedDict[str, tuple[float, Conversation]] = OrderedDict()
        self._lock = threading.Lock()
        self.limit, self.ttl = limit, ttl

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


def create_api(engine: Engine, conversations: Conversations | None = None, feedback=None):
    """A FastAPI sub-application with the JSON endpoints (mounted by app.py under /api)."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    api = FastAPI(title="CAR-T billing assistant API", docs_url=None, redoc_url=None, openapi_url=None)
    conversations = conversations if conversations is not None else Conversations()

    async def read_json(request: Request):
        """The body as a JSON object, or a JSONResponse saying what is wrong with it."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        # Missing is tolerated (curl without -H); any other type is refused, which also keeps
        # other sites' pages from posting here without a CORS preflight (text/plain, forms).
        if ctype and ctype != "application/json" and not ctype.endswith("+json"):
            return error(415, f"Content-Type must be application/json (got {ctype[:60]!r}).")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return error(413, f"Request body is {int(declared):,} bytes; the limit is {MAX_BODY_BYTES:,}.")
        raw = bytearray()
        async for chunk in request.stream():  # never more than the limit in memory
            raw += chunk
            if len(raw) > MAX_BODY_BYTES:
                return error(413, f"Request body is over {MAX_BODY_BYTES:,} bytes; the limit is "
                                  f"{MAX_BODY_BYTES:,}.")
        try:
            body = json.loads(bytes(raw) or b"null")
        except (ValueError, UnicodeDecodeError):
            return error(400, "The request body must be JSON (see the README's API section).")
        except RecursionError:
            return error(400, "The request body is nested too deeply to be a question.")
        if not isinstance(body, dict):
            return error(422, "The request body must be a JSON object.")
        try:
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return error(400, "The request body contains an invalid Unicode escape (a lone surrogate "
                              "such as \\ud800).")
        except (RecursionError, ValueError):
            return error(400, "The request body is nested too deeply to be a question.")
        return body

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @api.get("/health")
    def health():
        m = engine.retriever.manifest
        return {"status": "ok", "index": m.build_id, "documents": len(m.documents)}

    @api.post("/ask")
    async def ask(request: Request):
        started = time.perf_counter()
        question, conv_id = None, None

        def rejected(response: JSONResponse) -> JSONResponse:
            requestlog.log_ask("api", question if isinstance(question, str) else "", None,
                               conv_id if isinstance(conv_id, str) else None,
                               (time.perf_counter() - started) * 1000, status=response.status_code,
                               kind="rejected")
            return response

        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return rejected(body)
        question = body.get("question")
        conv_id = body.get("conversation_id")
        if not isinstance(question, str):
            return rejected(error(422, '"question" must be a string.'))
        if conv_id is not None and not isinstance(conv_id, str):
            return rejected(error(422, '"conversation_id" must be a string (or left out to start a conversation).'))
        if len(question) > MAX_QUESTION_CHARS:
            return rejected(error(413, f"The question is {len(question):,} characters; the limit is "
                                       f"{MAX_QUESTION_CHARS:,}."))
        conv = conversations.get(conv_id)
        # the engine is CPU-bound: run it off the event loop, on a bounded pool (CART_ENGINE_THREADS)
        answer = await run_engine(engine.ask, question, conv)
        requestlog.log_ask("api", question, answer, conv.id, (time.perf_counter() - started) * 1000, status=200)
        return {"conversation_id": conv.id, "answer": answer.to_dict()}

    @api.post("/feedback")
    async def give_feedback(request: Request):
        started = time.perf_counter()
        body: dict = {}

        def done(response, rating=None):
            answer = body.get("answer") if isinstance(body, dict) else None
            question = body.get("question", "") if isinstance(body, dict) else ""
            if not isinstance(question, str) and isinstance(answer, dict):
                question = ""
            if not question and isinstance(answer, dict) and isinstance(answer.get("question"), str):
                question = answer["question"]
            status = response.status_code if isinstance(response, JSONResponse) else 200
            requestlog.log_feedback("api", rating, question, answer if isinstance(answer, dict) else None,
                                    body.get("conversation_id") if isinstance(body, dict) else None,
                                    (time.perf_counter() - started) * 1000, status=status,
                                    kind=None if status == 200 else "rejected")
            return response

        if feedback is None:
            return done(error(404, "Feedback is not enabled on this server."))
        parsed = await read_json(request)
        if isinstance(parsed, JSONResponse):
            return done(parsed)
        body = parsed
        rating, answer = body.get("rating"), body.get("answer")
        if rating not in (1, -1) or isinstance(rating, bool):
            return done(error(422, '"rating" must be 1 (helpful) or -1 (not helpful).'))
        if not isinstance(answer, dict) or not isinstance(answer.get("text", ""), str):
            return done(error(422, '"answer" must be the answer object the API returned.'))
        question = body.get("question", answer.get("question", ""))
        comment, conv_id = body.get("comment", ""), body.get("conversation_id")
        if not all(isinstance(v, str) for v in (question, comment)) or not isinstance(conv_id, (str, type(None))):
            return done(error(422, '"question", "comment" and "conversation_id" must be strings.'))
        from starlette.concurrency import run_in_threadpool

        fid = await run_in_threadpool(lambda: feedback.add(rating=rating, question=question, answer=answer,
                                                           comment=comment, conversation_id=conv_id))
        return done({"id": fid}, rating)

    return api
