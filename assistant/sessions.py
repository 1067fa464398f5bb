"""Conversations held in memory, each bound to its owner, and the answers they were given.

A conversation id travels to the browser and into URLs, so it must not work as a bearer token:
a conversation is found only by its id *and* its owner (the user from `assistant.auth`); anyone
else presenting the id gets a fresh conversation, told apart from nothing (no oracle).

Bounds: a conversation expires after CART_CONVERSATION_TTL idle seconds; one owner keeps at most
CART_MAX_CONVERSATIONS_PER_USER (their oldest dropped first), so one client asking a thousand
empty questions drops only its own conversations; the whole store keeps CART_MAX_CONVERSATIONS.
A follow-up whose conversation is gone is answered on its own and told so (`expired`).

Feedback names an answer by the id the server issued here (`remember`), never by answer text
the client sends back: what is stored is what the server said.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from assistant import config
from assistant.engine import Conversation

ANSWERS_KEPT = 50  # per conversation, for feedback on an earlier answer
EXPIRED_NOTE = ("This conversation expired, so the question was answered on its own, without the "
                "earlier turns; start again with the product and date of service if it was a follow-up.")


@dataclass
class Held:
    conversation: Conversation
    owner: str
    seen: float
    answers: OrderedDict[str, dict] = field(default_factory=OrderedDict)


class Conversations:
    """Thread-safe store of conversations by id and owner.

    `limit`, `ttl` (seconds) and `per_owner` default to CART_MAX_CONVERSATIONS,
    CART_CONVERSATION_TTL and CART_MAX_CONVERSATIONS_PER_USER, read when the store is made."""

    def __init__(self, limit: int | None = None, ttl: float | None = None, per_owner: int | None = None,
                 clock=time.monotonic):
        cfg = config.load()
        self.limit = limit if limit is not None else cfg.max_conversations
        self.ttl = ttl if ttl is not None else cfg.conversation_ttl
        self.per_owner = per_owner if per_owner is not None else cfg.max_conversations_per_user
        self._items: OrderedDict[str, Held] = OrderedDict()
        self._answers: dict[str, str] = {}  # answer id -> conversation id
        self._lock = threading.Lock()
        self._clock = clock

    def open(self, conv_id: str | None, owner: str) -> tuple[Conversation, bool]:
        """(the conversation, expired): the owner's conversation `conv_id`, or a new one; expired is
        True when an id was given but no conversation of this owner has it (any more)."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            held = self._items.get(conv_id) if conv_id else None
            if held is not None and held.owner == owner:
                self._items.move_to_end(held.conversation.id)
                held.seen = now
                return held.conversation, False
            held = Held(Conversation(), owner, now)
            self._items[held.conversation.id] = held
            self._bound(owner)
            return held.conversation, bool(conv_id)

    def remember(self, conversation: Conversation, question: str, answer: dict) -> str:
        """Keep an answer the server gave, for feedback on it; returns its id."""
        answer_id = secrets.token_urlsafe(12)
        with self._lock:
            held = self._items.get(conversation.id)
            if held is None:  # expired while answering: nothing to rate later
                return answer_id
            held.answers[answer_id] = {"question": question[:4000], "answer": answer}
            self._answers[answer_id] = conversation.id
            while len(held.answers) > ANSWERS_KEPT:
                self._answers.pop(held.answers.popitem(last=False)[0], None)
        return answer_id

    def answer(self, answer_id: str, owner: str) -> tuple[str, dict] | None:
        """(conversation id, {"question", "answer"}) of an answer this owner was given, or None."""
        with self._lock:
            conv_id = self._answers.get(answer_id)
            held = self._items.get(conv_id) if conv_id else None
            if held is None or held.owner != owner or answer_id not in held.answers:
                return None
            return conv_id, held.answers[answer_id]

    def delete(self, conv_id: str, owner: str) -> bool:
        """Forget the owner's conversation and its answers now; False if there was none."""
        with self._lock:
            held = self._items.get(conv_id)
            if held is None or held.owner != owner:
                return False
            self._drop(conv_id)
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    # --- bounds, under the lock --------------------------------------------------------------

    def _drop(self, conv_id: str) -> None:
        held = self._items.pop(conv_id)
        for answer_id in held.answers:
            self._answers.pop(answer_id, None)

    def _expire(self, now: float) -> None:
        for key in [k for k, h in self._items.items() if now - h.seen > self.ttl]:
            self._drop(key)

    def _bound(self, owner: str) -> None:
        mine = [k for k, h in self._items.items() if h.owner == owner]
        for key in mine[: max(0, len(mine) - self.per_owner)]:
            self._drop(key)
        while len(self._items) > self.limit:
            self._drop(next(iter(self._items)))
