"""JSON HTTP API for intranet pages that render their own widget.

    POST /api/ask   {"question": "...", "conversation_id": "optional", "dos": "optional date of service"}
      -> 200 {"conversation_id": "...", "answer_id": "...", "expired": false, "answer": {...the Answer...}}
      -> 400/413/415/422 {"error": "a message a person can act on"}; 429 (rate) / 503 (busy) with Retry-After
    POST /api/feedback {"answer_id": "...", "rating": 1 | -1, "comment": "optional"}
      -> 200 {"id": N}; 404 when the answer is not one this server gave this user (or it expired)
    DELETE /api/feedback/<id>            an admin deletes a feedback row
    DELETE /api/conversations/<id>       the owner forgets a conversation now
    GET  /api/health -> {"status": "ok", "index": "<build id>", "documents": N}

Conversations live in memory, bound to their owner (assistant/sessions.py). Identity, content
types, origins, body size and headers are checked before a request gets here
(assistant/security.py); CORS is closed unless origins are configured (CART_ALLOWED_ORIGINS).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

from fastapi import Request  # module level: FastAPI resolves the string annotation here

from assistant import config, requestlog
from assistant.auth import LOCAL, User
from assistant.core.dates import parse_service_date
from assistant.engine import MAX_QUESTION_CHARS, Engine
from assistant.limits import Busy, FairPool, shared, too_many
from assistant.security import MAX_BODY_BYTES
from assistant.sessions import EXPIRED_NOTE, Conversations

# --- the engine's own worker threads ------------------------------------------------------
# Engine.ask is mostly CPU-bound Python plus calls that release the GIL (the query embedding,
# Chroma; network waits with a Chroma server or the LLM composer). A few threads answer as many
# questions per second as dozens do, without the GIL thrashing between dozens of half-done
# answers: on the 2-core machine, with 32 concurrent conversations, 2-4 threads gave the best
# throughput and p95, 1 thread and 32 threads clearly worse (benchmarks/load.py). The JSON API
# and the Gradio chat share this one pool, which takes waiting questions round-robin by client
# (limits.FairPool), so a burst from one client or interface cannot starve the others, and a
# waiting request holds no server thread.
_pool: FairPool | None = None
_pool_lock = threading.Lock()


def engine_threads() -> int:
    return config.load().engine_threads


def engine_pool() -> FairPool:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = FairPool(engine_threads())
        return _pool


async def run_engine(fn, *args, client: str = "local"):
    """Run `fn(*args)` on the engine pool, in `client`'s turn, without blocking the event loop;
    raises limits.Busy when CART_MAX_PENDING questions are already waiting or running."""
    import asyncio

    with shared("engine", config.load().max_pending).slot():
        return await asyncio.wrap_future(engine_pool().submit(client, fn, *args))


def caller(request) -> tuple[User, str]:
    """(the user, the rate-limit key) the front door put on the request (assistant/security.py)."""
    state = getattr(request, "state", None)
    user = getattr(state, "cart_user", None) or User(LOCAL, admin=True)
    return user, getattr(state, "cart_client", None) or user.name


def over_rate(kind: str, key: str) -> int:
    """Seconds to wait when `key` is over its rate of `kind` ("asks" | "feedback"), else 0."""
    cfg = config.load()
    return shared(kind, cfg.rate_asks if kind == "asks" else cfg.rate_feedback).check(key)


class BadRequest(Exception):
    """A request the API refuses: its status and a message a person can act on."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers

    def response(self):
        from fastapi.responses import JSONResponse

        return JSONResponse({"error": self.message}, status_code=self.status, headers=self.headers)


def _check_headers(request: Request) -> None:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # Required: a missing or other type is what a page on another site can send without a CORS
    # preflight (a form, text/plain, a Blob, sendBeacon). The front door checks it too.
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise BadRequest(415, f"Content-Type must be application/json (got {ctype[:60] or 'none'!r}).")
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


def _feedback_fields(body: dict) -> tuple[int, str, str, str]:
    """(rating, answer_id, comment, reason); a reason is one of feedback.REASONS, only with rating -1."""
    from assistant.feedback import REASONS, check_reason

    rating, answer_id, comment = body.get("rating"), body.get("answer_id"), body.get("comment", "")
    reason = "" if body.get("reason") is None else body["reason"]
    if rating not in (1, -1) or isinstance(rating, bool):
        raise BadRequest(422, '"rating" must be 1 (helpful) or -1 (not helpful).')
    if not isinstance(answer_id, str) or not answer_id or len(answer_id) > 64:
        raise BadRequest(422, '"answer_id" must be the answer_id /api/ask returned with the answer.')
    if not isinstance(comment, str):
        raise BadRequest(422, '"comment" must be a string.')
    if not isinstance(reason, str):
        raise BadRequest(422, f'"reason" must be one of {", ".join(REASONS)} (or left out).')
    try:
        check_reason(reason, rating)
    except ValueError as exc:
        raise BadRequest(422, f"{exc}.") from None
    return rating, answer_id, comment, reason


def _log_feedback(held: tuple[str, dict] | None, rating: int | None, status: int, started: float,
                  user: str) -> None:
    """One request-log line for a feedback post, about the answer it names (if it was found)."""
    conv_id, item = held if held is not None else (None, {})
    requestlog.log_feedback("api", rating, item.get("question", ""), item.get("answer"), conv_id,
                            (time.perf_counter() - started) * 1000, status=status,
                            kind=None if status == 200 else "rejected", user=user)


class Routes:
    """The JSON endpoints' handlers (registered by `create_api`)."""

    def __init__(self, engine: Engine, conversations: Conversations, feedback):
        self.engine, self.conversations, self.feedback = engine, conversations, feedback

    def health(self):
        m = self.engine.retriever.manifest
        return {"status": "ok", "index": m.build_id, "documents": len(m.documents)}

    async def ask(self, request: Request):
        started = time.perf_counter()
        body: dict = {}
        user, key = caller(request)
        try:
            body = await read_json(request)
            question, conv_id, dos = _ask_fields(body)
            if wait := over_rate("asks", key):
                raise BadRequest(429, too_many(wait), {"Retry-After": str(wait)})
        except BadRequest as bad:
            question, conv_id = body.get("question"), body.get("conversation_id")
            requestlog.log_ask("api", question if isinstance(question, str) else "", None,
                               conv_id if isinstance(conv_id, str) else None,
                               (time.perf_counter() - started) * 1000, status=bad.status, kind="rejected",
                               user=user.name)
            return bad.response()
        def turn():  # opening may replay a stored conversation (after a restart): on the pool too
            conv, expired = self.conversations.open(conv_id, user.name)
            return conv, expired, self.engine.ask(question, conv, dos=dos)

        try:  # the engine is CPU-bound: off the event loop, on a bounded pool (CART_ENGINE_THREADS)
            conv, expired, answer = await run_engine(turn, client=key)
        except Busy as busy:
            requestlog.log_ask("api", question, None, conv_id, (time.perf_counter() - started) * 1000,
                               status=503, kind="busy", user=user.name)
            return BadRequest(503, busy.message, {"Retry-After": str(Busy.retry_after)}).response()
        if expired:
            answer.notes.append(EXPIRED_NOTE)
        data = answer.to_dict()
        answer_id = self.conversations.remember(conv, question, data, dos=dos)
        requestlog.log_ask("api", question, answer, conv.id, (time.perf_counter() - started) * 1000, status=200,
                           user=user.name)
        return {"conversation_id": conv.id, "answer_id": answer_id, "expired": expired, "answer": data}

    async def give_feedback(self, request: Request):
        from starlette.concurrency import run_in_threadpool

        started = time.perf_counter()
        user, key = caller(request)
        held, rating = None, None
        try:
            if self.feedback is None:
                raise BadRequest(404, "Feedback is not enabled on this server.")
            if wait := over_rate("feedback", key):
                raise BadRequest(429, too_many(wait, "feedback posts"), {"Retry-After": str(wait)})
            rating, answer_id, comment, reason = _feedback_fields(await read_json(request))
            held = self.conversations.answer(answer_id, user.name)
            if held is None:
                raise BadRequest(404, "That answer is not one this server gave you, or its conversation has "
                                      "expired; feedback names the answer_id returned with the answer.")
        except BadRequest as bad:
            _log_feedback(held, rating, bad.status, started, user.name)
            return bad.response()
        conv_id, item = held
        fid = await run_in_threadpool(lambda: self.feedback.add(
            rating=rating, question=item["question"], answer=item["answer"], comment=comment,
            conversation_id=conv_id, user=user.name, answer_id=answer_id, reason=reason))
        _log_feedback(held, rating, 200, started, user.name)
        return {"id": fid}

    async def delete_feedback(self, fid: int, request: Request):
        from starlette.concurrency import run_in_threadpool

        user, _ = caller(request)
        if self.feedback is None:
            return BadRequest(404, "Feedback is not enabled on this server.").response()
        if not user.admin:
            return BadRequest(403, "Only an administrator deletes feedback.").response()
        return {"deleted": await run_in_threadpool(lambda: self.feedback.delete([fid]))}

    def delete_conversation(self, conv_id: str, request: Request):
        user, _ = caller(request)
        return {"deleted": int(self.conversations.delete(conv_id, user.name))}


def create_api(engine: Engine, conversations: Conversations | None = None, feedback=None):
    """A FastAPI sub-application with the JSON endpoints (mounted by app.py under /api)."""
    from fastapi import FastAPI

    api = FastAPI(title="CAR-T billing assistant API", docs_url=None, redoc_url=None, openapi_url=None,
                  telemetry=config.NO_TELEMETRY)
    r = Routes(engine, conversations if conversations is not None else Conversations(), feedback)
    api.add_api_route("/health", r.health, methods=["GET"])
    api.add_api_route("/ask", r.ask, methods=["POST"])
    api.add_api_route("/feedback", r.give_feedback, methods=["POST"])
    api.add_api_route("/feedback/{fid}", r.delete_feedback, methods=["DELETE"])
    api.add_api_route("/conversations/{conv_id}", r.delete_conversation, methods=["DELETE"])
    from assistant import documents, export, review

    export.add_routes(api, r.conversations)  # GET /conversations/{id}/export.md | .pdf
    cfg = config.load()
    if documents.enabled(cfg):
        documents.add_routes(api, engine, cfg)
        review.add_routes(api, feedback, cfg)
    return api
