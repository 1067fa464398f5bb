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

from fastapi import Request  # module level: FastAPI resolves the string annotation here

from assistant import config
from assistant.engine import MAX_QUESTION_CHARS, Conversation, Engine

MAX_BODY_BYTES = 64 * 1024
MAX_CONVERSATIONS = config._int("CART_MAX_CONVERSATIONS", 1000)
CONVERSATION_TTL_S = config._int("CART_CONVERSATION_TTL", 3600)


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
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return error(413, f"Request body is {len(raw):,} bytes; the limit is {MAX_BODY_BYTES:,}.")
        try:
            body = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError):
            return error(400, "The request body must be JSON (see the README's API section).")
        if not isinstance(body, dict):
            return error(422, "The request body must be a JSON object.")
        return body

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @api.get("/health")
    def health():
        m = engine.retriever.manifest
        return {"status": "ok", "index": m.build_id, "documents": len(m.documents)}

    @api.post("/ask")
    async def ask(request: Request):
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        question = body.get("question")
        conv_id = body.get("conversation_id")
        if not isinstance(question, str):
            return error(422, '"question" must be a string.')
        if conv_id is not None and not isinstance(conv_id, str):
            return error(422, '"conversation_id" must be a string (or left out to start a conversation).')
        if len(question) > MAX_QUESTION_CHARS:
            return error(413, f"The question is {len(question):,} characters; the limit is {MAX_QUESTION_CHARS:,}.")
        conv = conversations.get(conv_id)
        # the engine is CPU-bound: run it off the event loop
        from starlette.concurrency import run_in_threadpool

        answer = await run_in_threadpool(engine.ask, question, conv)
        return {"conversation_id": conv.id, "answer": answer.to_dict()}

    @api.post("/feedback")
    async def give_feedback(request: Request):
        if feedback is None:
            return error(404, "Feedback is not enabled on this server.")
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        rating, answer = body.get("rating"), body.get("answer")
        if rating not in (1, -1) or isinstance(rating, bool):
            return error(422, '"rating" must be 1 (helpful) or -1 (not helpful).')
        if not isinstance(answer, dict) or not isinstance(answer.get("text", ""), str):
            return error(422, '"answer" must be the answer object the API returned.')
        question = body.get("question", answer.get("question", ""))
        comment, conv_id = body.get("comment", ""), body.get("conversation_id")
        if not all(isinstance(v, str) for v in (question, comment)) or not isinstance(conv_id, (str, type(None))):
            return error(422, '"question", "comment" and "conversation_id" must be strings.')
        from starlette.concurrency import run_in_threadpool

        fid = await run_in_threadpool(lambda: feedback.add(rating=rating, question=question, answer=answer,
                                                           comment=comment, conversation_id=conv_id))
        return {"id": fid}

    return api
