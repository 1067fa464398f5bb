"""One log line per request (API ask, Gradio chat ask, feedback), without the question verbatim.

    2025-05-01T14:03:12.481+00:00 event=ask interface=api status=200 latency_ms=61.2 kind=answer
        tools=- citations=2 conv=3f9a1c2b q=h:5d0c9e1a7b42 len=35

(one line; wrapped here). Fields: ISO time (UTC, ms), event (ask | feedback), interface (api |
gradio), HTTP status for the API, latency in ms, the answer's kind (or `rejected` for a request
refused before the engine ran), the calculators called (names only, `-` if none), the number of
citations, the first 8 characters of the conversation id, and the question:

    CART_LOG_QUESTIONS=hash    (default) `q=h:<12 hex>` a salted SHA-256 of the question, and its length
    CART_LOG_QUESTIONS=redact  the question with numbers, dates and long identifiers replaced
                               ("carvykti dose 120 kg" -> "carvykti dose <n> kg"), quoted, cut to 200 chars
    CART_LOG_QUESTIONS=full    the question verbatim (quoted, cut to 500 chars): patient figures included

The salt is CART_LOG_SALT, or a random one per process (hashes then match within one run only:
enough to see the same question repeated, useless for recovering it). Lines go to the logger
"cart.requests": to stderr, or appended to CART_LOG_FILE when set. A deployment that configures
logging itself can attach its own handler to that logger instead (it then gets no default one).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import secrets
import sys
import threading

from assistant import config

LOGGER_NAME = "cart.requests"
MODES = config.spec("CART_LOG_QUESTIONS").choices  # ("hash", "redact", "full")
_REDACT_MAX, _FULL_MAX = 200, 500

logger = logging.getLogger(LOGGER_NAME)
_configured = False
_config_lock = threading.Lock()
_random_salt = secrets.token_hex(16)  # used when CART_LOG_SALT is unset: hashes match within one run


def mode() -> str:
    """CART_LOG_QUESTIONS (one of MODES); a bad value is a config.ConfigError."""
    return config.load().log_questions


def _salt() -> str:
    return config.load().log_salt or _random_salt


def configure() -> logging.Logger:
    """Attach the default handler once (stderr, or CART_LOG_FILE); checks the settings."""
    global _configured
    path = config.load().log_file
    with _config_lock:
        if _configured or logger.handlers:
            _configured = True
            return logger
        handler = logging.FileHandler(path, encoding="utf-8") if path else logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        _configured = True
    return logger


# --- the question, not verbatim --------------------------------------------------------------

_MONTHS = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?|"
           r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_REDACTIONS = [
    # dates: 2024-03-05, 03/05/2024, 3.5.24, 5 March 2024, March 5, 2024, Mar 2024
    (re.compile(r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b"), "<date>"),
    (re.compile(r"\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b"), "<date>"),
    (re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}\.?(?:,?\s+\d{{2,4}})?\b", re.I), "<date>"),
    (re.compile(rf"\b{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{2,4}})?\b", re.I), "<date>"),
    (re.compile(rf"\b{_MONTHS}\.?\s+\d{{4}}\b", re.I), "<date>"),
    # identifiers with a long run of digits (MRN123456, account numbers), kept codes are short
    (re.compile(r"\b\w*\d{5,}\w*\b"), "<id>"),
    # any other number not part of a word: weights, doses, BSA, ages, amounts (codes like Q2055 stay)
    (re.compile(r"(?<![A-Za-z0-9])\.\d+(?![A-Za-z0-9])"), "<n>"),
    (re.compile(r"(?<![A-Za-z0-9])[-+]?\d[\d,]*(?:\.\d+)?(?![A-Za-z0-9])"), "<n>"),
    # digits glued to units: 120kg, 1.85m2, 30mg
    (re.compile(r"(?<![A-Za-z0-9])\d+(?:[.,]\d+)?(?=[A-Za-z])"), "<n>"),
]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def redact(text: str) -> str:
    """The question with numbers, dates and long identifiers replaced, on one line."""
    text = _CONTROL.sub(" ", text)
    for pattern, repl in _REDACTIONS:
        text = pattern.sub(repl, text)
    text = " ".join(text.split())
    return text if len(text) <= _REDACT_MAX else text[:_REDACT_MAX] + "…"


def question_hash(text: str) -> str:
    return hashlib.sha256((_salt() + "\x00" + text).encode("utf-8", "surrogatepass")).hexdigest()[:12]


def question_field(text: str, how: str | None = None) -> str:
    text = text if isinstance(text, str) else ""
    how = how or mode()
    if how == "full":
        shown = " ".join(_CONTROL.sub(" ", text).split())
        shown = shown if len(shown) <= _FULL_MAX else shown[:_FULL_MAX] + "…"
        return f"q={_quote(shown)} len={len(text)}"
    if how == "redact":
        return f"q={_quote(redact(text))} len={len(text)}"
    return f"q=h:{question_hash(text)} len={len(text)}"


def _quote(text: str) -> str:
    # JSON string escaping: one line, no raw control characters, unambiguous to parse back
    return json.dumps(text, ensure_ascii=False).encode("utf-8", "backslashreplace").decode("utf-8")


def short_id(conv_id: object) -> str:
    return str(conv_id)[:8] if isinstance(conv_id, str) and conv_id else "-"


def _token(value: object) -> str:
    """A field value without spaces or quotes (kinds and tool names are identifiers anyway)."""
    s = re.sub(r"[^\w.:+-]", "_", str(value))[:40]
    return s or "-"


# --- the lines -----------------------------------------------------------------------------

def line(*, event: str, interface: str, latency_ms: float, question: str = "", kind: str = "-",
         tools: list[str] | None = None, citations: int = 0, conversation_id: object = None,
         status: int | None = None, rating: int | None = None, how: str | None = None) -> str:
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    parts = [now, f"event={_token(event)}", f"interface={_token(interface)}"]
    if status is not None:
        parts.append(f"status={int(status)}")
    parts.append(f"latency_ms={float(latency_ms):.1f}")
    parts.append(f"kind={_token(kind)}")
    if rating is not None:
        parts.append(f"rating={int(rating):+d}")
    names = [_token(t) for t in (tools or [])]
    parts.append(f"tools={','.join(dict.fromkeys(names)) or '-'}")
    parts.append(f"citations={int(citations)}")
    parts.append(f"conv={_token(short_id(conversation_id))}")
    parts.append(question_field(question, how))
    return " ".join(parts)


def _emit(text: str) -> None:
    try:
        configure()
        logger.info(text)
    except Exception:  # logging must never break a request
        pass


def log_ask(interface: str, question: str, answer=None, conversation_id=None, latency_ms: float = 0.0,
            status: int | None = None, kind: str | None = None) -> None:
    """One line for an ask. `answer`: the engine's Answer (or its dict), None if rejected before it."""
    try:
        data = answer.to_dict() if hasattr(answer, "to_dict") else (answer or {})
        tools = [c.get("name", "?") for c in data.get("tool_calls", []) if isinstance(c, dict)]
        text = line(event="ask", interface=interface, latency_ms=latency_ms, question=question,
                    kind=kind or data.get("kind", "-"), tools=tools,
                    citations=len(data.get("citations") or []), conversation_id=conversation_id,
                    status=status)
    except Exception:
        return
    _emit(text)


def log_feedback(interface: str, rating: int | None, question: str = "", answer: dict | None = None,
                 conversation_id=None, latency_ms: float = 0.0, status: int | None = None,
                 kind: str | None = None) -> None:
    try:
        data = answer if isinstance(answer, dict) else {}
        cits = data.get("citations")
        calls = data.get("tool_calls")
        tools = [c.get("name", "?") for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
        text = line(event="feedback", interface=interface, latency_ms=latency_ms,
                    question=question if isinstance(question, str) else "",
                    kind=kind or data.get("kind", "-"), tools=tools,
                    citations=len(cits) if isinstance(cits, list) else 0,
                    conversation_id=conversation_id, status=status,
                    rating=rating if rating in (1, -1) and not isinstance(rating, bool) else None)
    except Exception:
        return
    _emit(text)
