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

With a `History` (assistant/history.py) every turn is also saved to its database, and a
conversation that left memory (idle, evicted, or the app restarted) is rebuilt on `open` from its
stored turns: same id, same owner, the engine's context restored by replaying the stored questions
(`replay`), and its answer ids valid again for feedback. Without one, conversations live in memory
only.

Several app processes on one shared history (PostgreSQL, `History.shared`): a conversation that
moves to another process is rebuilt there as above. One this process still holds in memory may
have been continued elsewhere since (a load balancer without sticky sessions), so `open` first asks
the history for turns beyond the ones this process has folded in (`Held.stored`) and replays them
too (`_catch_up`: one small query per question, none with SQLite, where one process is the rule);
one deleted elsewhere is dropped here as well.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from assistant import config
from assistant.core.private_db import DB_ERRORS
from assistant.engine import Conversation
from assistant.history import History

ANSWERS_KEPT = 50  # per conversation, for feedback on an earlier answer
REPLAY_TURNS = 20  # a restored conversation replays at most its last 20 questions (cost: one engine turn each)
EXPIRED_NOTE = ("This conversation expired, so the question was answered on its own, without the "
                "earlier turns; start again with the product and date of service if it was a follow-up.")
log = logging.getLogger(__name__)

Replay = Callable[[str, Conversation, str | None], object]  # (question, conversation, dos); its answer is dropped


@dataclass
class Held:
    conversation: Conversation
    owner: str
    seen: float
    answers: OrderedDict[str, dict] = field(default_factory=OrderedDict)
    stored: int = 0  # the history's turns folded into `conversation` (restored or caught up)
    saved: bool = False  # a turn of it reached the history (so one missing there now was deleted)
    sync: threading.Lock = field(default_factory=threading.Lock, repr=False)  # one catch-up at a time


class Conversations:
    """Thread-safe store of conversations by id and owner.

    `limit`, `ttl` (seconds) and `per_owner` default to CART_MAX_CONVERSATIONS,
    CART_CONVERSATION_TTL and CART_MAX_CONVERSATIONS_PER_USER, read when the store is made; they
    bound memory only. `history` makes conversations durable; `replay(question, conversation, dos)`
    runs a stored question through the engine again to restore a rebuilt conversation's context
    (the app passes `lambda q, conv, dos: engine.ask(q, conv, dos=dos)`)."""

    def __init__(self, limit: int | None = None, ttl: float | None = None, per_owner: int | None = None,
                 clock=time.monotonic, history: History | None = None, replay: Replay | None = None):
        cfg = config.load()
        self.history = history
        self.replay = replay
        self.limit = limit if limit is not None else cfg.max_conversations
        self.ttl = ttl if ttl is not None else cfg.conversation_ttl
        self.per_owner = per_owner if per_owner is not None else cfg.max_conversations_per_user
        self._items: OrderedDict[str, Held] = OrderedDict()
        self._answers: dict[str, str] = {}  # answer id -> conversation id
        self._lock = threading.Lock()
        self._clock = clock

    @property
    def history_shared(self) -> bool:
        """Other processes write the same history (PostgreSQL): memory may lag behind it."""
        return self.history is not None and self.history.shared

    def open(self, conv_id: str | None, owner: str) -> tuple[Conversation, bool]:
        """(the conversation, expired): the owner's conversation `conv_id`, or a new one; expired is
        True when an id was given but no conversation of this owner has it (any more). With a
        history, one that left memory is rebuilt from it (`_restore`) and is not expired, unless
        there is no `replay` to restore what its follow-ups inherit."""
        with self._lock:
            self._expire(self._clock())
            if (held := self._mine(conv_id, owner)) is not None and not self.history_shared:
                return held.conversation, False
            if held is None and (not conv_id or self.history is None or conv_id in self._items):  # in memory, someone else's
                return self._new(owner), bool(conv_id)
        if held is not None:  # another process may have continued it: outside the lock, as below
            return self._catch_up(held, owner)
        # not in memory: from the history, outside the lock (SQLite, then one engine turn per question)
        restored = self._restore(conv_id, owner)
        with self._lock:
            if (held := self._mine(conv_id, owner)) is not None:  # a concurrent open restored it first
                return held.conversation, False
            if restored is None or conv_id in self._items:
                return self._new(owner), True
            restored.seen = self._clock()
            self._items[conv_id] = restored
            for answer_id in restored.answers:
                self._answers[answer_id] = conv_id
            self._bound(owner)
            # without a replay the engine's context is gone: the caller says so (EXPIRED_NOTE)
            return restored.conversation, self.replay is None and bool(restored.answers)

    def remember(self, conversation: Conversation, question: str, answer: dict, dos: str | None = None) -> str:
        """Keep an answer the server gave, for feedback on it (and in the history, with the date
        field's `dos` for a later replay); returns its id."""
        answer_id = secrets.token_urlsafe(12)
        with self._lock:
            held = self._items.get(conversation.id)
            if held is None:  # expired while answering: nothing to rate later, no owner to save it under
                return answer_id
            held.answers[answer_id] = {"question": question[:4000], "answer": answer}
            self._answers[answer_id] = conversation.id
            while len(held.answers) > ANSWERS_KEPT:
                self._answers.pop(held.answers.popitem(last=False)[0], None)
            owner = held.owner
        if self.history is not None:
            try:
                self.history.save_turn(conversation.id, owner, question, answer, dos, answer_id)
                held.saved = True
            except DB_ERRORS as exc:  # the answer is still given; it is just not kept
                log.warning("conversation history: a turn could not be saved: %s", type(exc).__name__)
        return answer_id

    def answer(self, answer_id: str, owner: str) -> tuple[str, dict] | None:
        """(conversation id, {"question", "answer"}) of an answer this owner was given, or None;
        with a history, also one whose conversation is not in memory (feedback after a restart)."""
        with self._lock:
            conv_id = self._answers.get(answer_id)
            held = self._items.get(conv_id) if conv_id else None
            if held is not None and held.owner == owner and answer_id in held.answers:
                return conv_id, held.answers[answer_id]
        return self.history.answer(answer_id, owner) if self.history is not None else None

    def list(self, owner: str, limit: int = 50) -> list[dict]:
        """The owner's stored conversations, most recently used first (empty without a history)."""
        return self.history.list(owner, limit) if self.history is not None else []

    def transcript(self, conv_id: str, owner: str) -> list[dict] | None:
        """The owner's stored turns of `conv_id` (question, dos, whole answer, answer id, created),
        or None when they have none by that id or there is no history."""
        return self.history.turns(conv_id, owner) if self.history is not None else None

    def delete(self, conv_id: str, owner: str) -> bool:
        """Forget the owner's conversation and its answers now, in memory and in the history;
        False if neither had it."""
        with self._lock:
            held = self._items.get(conv_id)
            mine = held is not None and held.owner == owner
            if mine:
                self._drop(conv_id)
        stored = self.history.delete(conv_id, owner) if self.history is not None else False
        return mine or stored

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    # --- restoring from the history, outside the lock -------------------------------------------

    def _restore(self, conv_id: str, owner: str) -> Held | None:
        """The owner's stored conversation rebuilt under its own id, or None if they have none.

        The engine keeps what follow-ups inherit in `Conversation.turns`, so the stored questions
        are asked again, in order (the last REPLAY_TURNS of them), and their new answers dropped:
        what the user saw is the stored answer, the replay only rebuilds the context."""
        try:
            stored = self.history.turns(conv_id, owner)
        except DB_ERRORS as exc:  # the question is still answered, on its own and told so
            log.warning("conversation history: a conversation could not be read: %s", type(exc).__name__)
            return None
        if stored is None:
            return None
        conversation = Conversation(id=conv_id)
        self._replay(conversation, stored[-REPLAY_TURNS:])
        held = Held(conversation, owner, 0.0, stored=len(stored))
        for turn in stored[-ANSWERS_KEPT:]:
            held.answers[turn["answer_id"]] = {"question": turn["question"], "answer": turn["answer"]}
        return held

    def _replay(self, conversation: Conversation, turns: list[dict]) -> None:
        """Ask the stored questions again, in order, into `conversation` (without a replay: nothing)."""
        if self.replay is None:
            return
        for turn in turns:
            try:
                self.replay(turn["question"], conversation, turn["dos"])
            except Exception as exc:  # context from the turns before it is kept; never the question in a log
                log.warning("conversation history: replaying a turn failed: %s", type(exc).__name__)

    def _catch_up(self, held: Held, owner: str) -> tuple[Conversation, bool]:
        """With a shared history: replay into a conversation held here the turns another process
        added since (not this process's own, which its context has already), and take their
        answer ids; a conversation deleted elsewhere is dropped here too (a fresh one, expired).
        The history unreachable: carry on with what memory holds."""
        conv_id = held.conversation.id
        with held.sync:
            try:
                newer = self.history.turns(conv_id, owner, after=held.stored)
            except DB_ERRORS as exc:
                log.warning("conversation history: a conversation could not be read: %s", type(exc).__name__)
                return held.conversation, False
            if newer is None and (held.stored or held.saved):  # it was in the history, and is gone from it
                with self._lock:
                    if self._items.get(conv_id) is held:
                        self._drop(conv_id)
                    return self._new(owner), True
            newer = newer or []
            self._replay(held.conversation, [t for t in newer if t["answer_id"] not in held.answers])
            with self._lock:
                held.stored += len(newer)
                self._take_answers(held, newer)
        return held.conversation, False

    def _take_answers(self, held: Held, turns: list[dict]) -> None:
        """Under the lock: the answers of turns another process gave, for feedback here."""
        conv_id = held.conversation.id
        for turn in turns:
            held.answers.setdefault(turn["answer_id"], {"question": turn["question"], "answer": turn["answer"]})
            if self._items.get(conv_id) is held:
                self._answers[turn["answer_id"]] = conv_id
        while len(held.answers) > ANSWERS_KEPT:
            self._answers.pop(held.answers.popitem(last=False)[0], None)

    # --- bounds, under the lock --------------------------------------------------------------

    def _mine(self, conv_id: str | None, owner: str) -> Held | None:
        """The owner's conversation in memory, marked as just used; None for anyone else's."""
        held = self._items.get(conv_id) if conv_id else None
        if held is None or held.owner != owner:
            return None
        self._items.move_to_end(conv_id)
        held.seen = self._clock()
        return held

    def _new(self, owner: str) -> Conversation:
        held = Held(Conversation(), owner, self._clock())
        self._items[held.conversation.id] = held
        self._bound(owner)
        return held.conversation

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
