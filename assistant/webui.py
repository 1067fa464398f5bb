"""The Gradio page: Chat, Calculators, Sources.

One browser session = one conversation (its id lives in a gr.State; the Conversation itself stays
server-side in the shared `Conversations` store, so the JSON API and the page use one mechanism).
Everything shown is rendered by `assistant.render`, which escapes source and user text.
"""

import time
from types import SimpleNamespace

from assistant import auth, export, render, requestlog
from assistant.answer import Answer
from assistant.api import caller, over_rate, run_engine
from assistant.engine import Engine
from assistant.feedback import REASONS, FeedbackStore
from assistant.limits import Busy, too_many
from assistant.sessions import EXPIRED_NOTE, Conversations

EXAMPLES = [
    "What is the HCPCS code for Carvykti?",
    "What is the Q2055 payment limit?",
    "Does CarePartners still require REMS for Abecma?",
    "cilta-cel dose for a 120 kg patient",
    "fludarabine 30 mg/m2 at BSA 1.85: how many J9185 units?",
    "Which ICD-10-PCS code drives MS-DRG 018?",
    "is 0540T ok for a 12/30/24 DOS or do i need 38228",
    "what's medicare paying on a Q2053 line DOS 8/14/25 after coins and seq",
]


def bubbles(question: str, answer: Answer) -> list[dict]:
    """One turn as the chat shows it: the question (escaped) and the rendered answer."""
    shown = question if len(question) <= 2000 else question[:2000] + " …"
    return [{"role": "user", "content": render.md_text(shown)},
            {"role": "assistant", "content": render.answer_markdown(answer)}]


def gr_choices(choices: list, value: str | None = None) -> object:
    import gradio as gr

    return gr.update(choices=choices, value=value)


class ChatHandlers:
    """What the chat's events do; one instance per app, state lives in the page's gr.State
    (held server-side by Gradio: the conversation id and the ids of the answers shown)."""

    def __init__(self, engine: Engine, feedback: FeedbackStore, conversations: Conversations):
        self.engine, self.feedback, self.conversations = engine, feedback, conversations

    def turn(self, message: str, history: list, conv_id: str | None, answers: list, started: float,
             dos: str | None = None, owner: str = auth.LOCAL):

        message = message if isinstance(message, str) else ""
        dos = dos.strip() if isinstance(dos, str) and dos.strip() else None
        conv, expired = self.conversations.open(conv_id, owner)
        answer = self.engine.ask(message, conv, dos=dos)
        if expired:
            answer.notes.append(EXPIRED_NOTE)
        requestlog.log_ask("gradio", message, answer, conv.id, (time.perf_counter() - started) * 1000, user=owner)
        data = answer.to_dict()
        answer_id = self.conversations.remember(conv, message, data, dos=dos)
        history = list(history or []) + bubbles(message, answer)
        answers = list(answers or []) + [answer_id]  # feedback names the answer by the server's id
        # plain values only: Gradio builds a new component (and its config) for every gr.update
        # output, the largest share of the page's cost per answer (README "Load"); the list of
        # earlier conversations is read when its accordion is opened, not after every answer
        return ("", history, conv.id, answers, render.answer_details_html(answer), "", "",
                *self._copy_and_links(conv.id, data))

    @staticmethod
    def _copy_and_links(conv_id: str | None, data: dict | None) -> tuple[str, str]:
        """What goes beside the answer: its copy text and the export links."""
        copy = export.answer_text(data) if data else ""
        links = (f"Export this conversation: [Markdown](api/conversations/{conv_id}/export.md) · "
                 f"[PDF](api/conversations/{conv_id}/export.pdf)") if conv_id and data else ""
        return copy, links

    def _shown(self, conv_id: str | None, data: dict | None, owner: str) -> tuple:
        """The copy text, the export links and the earlier conversations (on opening one)."""
        return (*self._copy_and_links(conv_id, data), gr_choices(self.choices(owner), conv_id))

    def listed(self, conv_id: str | None, request=None):
        """The earlier conversations, read when their accordion is opened."""
        user, _ = caller(request)
        return gr_choices(self.choices(user.name), conv_id)

    def choices(self, owner: str) -> list[tuple[str, str]]:
        return [(f"{c['title']} ({c['updated'][:10]}, {c['turns']} question{'s' if c['turns'] != 1 else ''})", c["id"])
                for c in self.conversations.list(owner)]

    def reopen(self, conv_id: str | None, request=None) -> tuple:
        """A conversation shown again as it was (after a reload, a restart, or picked from the
        list): its questions and stored answers, the last answer's evidence, feedback ids."""
        user, _ = caller(request)
        turns = self.conversations.transcript(conv_id, user.name) if conv_id else None
        if not turns:
            return (*self.new_conversation(), "", "", gr_choices(self.choices(user.name)))
        history, answers = [], []
        for t in turns:
            history += bubbles(t["question"], Answer.from_dict(t["answer"]))
            answers.append(t["answer_id"])
        last = turns[-1]["answer"]
        return (history, conv_id, answers, render.answer_details_html(Answer.from_dict(last)), "", "",
                *self._shown(conv_id, last, user.name))

    def latest(self, request=None) -> tuple:
        """On page load: the user's most recent conversation, so a reload loses nothing."""
        user, _ = caller(request)
        mine = self.conversations.list(user.name)
        return self.reopen(mine[0]["id"] if mine else None, request)

    def forget(self, conv_id: str | None, request=None) -> tuple:
        """Delete the open conversation from memory and from the database, then start afresh."""
        user, _ = caller(request)
        gone = bool(conv_id) and self.conversations.delete(conv_id, user.name)
        status = "Conversation deleted." if gone else "Nothing to delete: this conversation was not saved yet."
        return (*self.new_conversation()[:-1], status, "", "", gr_choices(self.choices(user.name)))

    async def ask(self, message: str, history: list, conv_id: str | None, answers: list, dos: str | None = None,
                  request=None):
        # On the engine pool shared with the JSON API (CART_ENGINE_THREADS), awaited: a waiting
        # chat holds no Gradio worker thread, and Gradio's queue does not limit the chat's Ask.
        import gradio as gr

        user, key = caller(request)
        refusal = None
        if wait := over_rate("asks", key):
            refusal = too_many(wait)
        else:
            try:
                return await run_engine(self.turn, message, history, conv_id, answers, time.perf_counter(),
                                        dos, user.name, client=key)
            except Busy as busy:
                refusal = busy.message
        # the question stays in the box, to be asked again
        return (gr.update(), history, conv_id, answers, gr.update(), gr.update(), f"**{refusal}**",
                gr.update(), gr.update())

    @staticmethod
    def new_conversation():
        return [], None, [], render.answer_details_html(None), "", ""

    def _save(self, rating: int, answer_id: str, comment: str, request, reason: str = "") -> str:
        user, key = caller(request)
        if wait := over_rate("feedback", key):
            return too_many(wait, "feedback posts")
        held = self.conversations.answer(answer_id, user.name)
        if held is None:
            return "That answer's conversation has expired; feedback can no longer be saved for it."
        started = time.perf_counter()
        conv_id, item = held
        fid = self.feedback.add(rating=rating, question=item["question"], answer=item["answer"], comment=comment,
                                conversation_id=conv_id, user=user.name, answer_id=answer_id,
                                reason=reason if rating < 0 else "")
        requestlog.log_feedback("gradio", rating, item["question"], item["answer"], conv_id,
                                (time.perf_counter() - started) * 1000, user=user.name)
        return f"Thank you — feedback #{fid} saved ({'helpful' if rating > 0 else 'not helpful'})."

    def rate(self, rating: int, comment: str, answers: list, request=None, reason: str = "") -> str:
        if not answers:
            return "Ask a question first; feedback is about an answer."
        return self._save(rating, answers[-1], comment or "", request, reason if reason in REASONS else "")

    def like(self, answers: list, data, request=None) -> str:
        # The chat's own thumbs: message index → the answer it belongs to (user, assistant pairs).
        idx = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        pair = (idx or 0) // 2
        if not answers or pair >= len(answers):
            return ""
        liked = data.liked if isinstance(data.liked, bool) else str(data.liked).lower() == "like"
        return self._save(1 if liked else -1, answers[pair], "", request)


def _chat_layout() -> SimpleNamespace:
    """The Chat tab's components: the conversation and the question on the left, the evidence and
    feedback on the right (side by side on a laptop; below min_width the columns stack)."""
    import gradio as gr

    ui = SimpleNamespace(conv_id=gr.State(None), answers=gr.State([]))
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=380):
            ui.chat = gr.Chatbot(label="Conversation", height=520, sanitize_html=True,
                                 latex_delimiters=[],  # "$430k to $500k" is not LaTeX
                                 allow_tags=False, elem_id="cart-chat",
                                 # no "share": it uploads the conversation to Hugging Face
                                 buttons=["copy", "copy_all"],
                                 placeholder="Ask about a code, a payment limit, a dose, units or a payer's criteria.")
            with gr.Row():
                ui.box = gr.Textbox(label="Your question (Enter asks, Shift+Enter is a new line)", scale=5, max_lines=6,
                                    placeholder="e.g. Q2055 payment limit", elem_id="cart-question")
                ui.dos = gr.Textbox(label="Date of service (optional)", scale=1, max_lines=1, placeholder="e.g. 2/3/2026",
                                    elem_id="cart-dos", info="A date in the question wins; empty: today")
                ui.send = gr.Button("Ask", variant="primary", scale=1, elem_id="cart-ask")
            with gr.Row():
                ui.new = gr.Button("New conversation", size="sm", elem_id="cart-new")
                # copied by embed/copy-answer.js from the off-screen box below (no server round trip)
                gr.Button("Copy answer with citations", size="sm", elem_id="cart-copy")
                ui.delete = gr.Button("Delete this conversation", size="sm", variant="stop", elem_id="cart-delete")
            gr.Markdown("", elem_id="cart-copy-status")
            ui.links = gr.Markdown("", elem_id="cart-export")
            ui.copy_text = gr.Textbox("", show_label=False, interactive=False, lines=2, elem_id="cart-copy-text",
                                      elem_classes=["cart-offscreen"])
            with gr.Accordion("Earlier conversations", open=False, elem_id="cart-history") as ui.history:
                ui.past = gr.Dropdown(label="Your conversations (kept 30 days, then deleted)", choices=[], value=None,
                                      elem_id="cart-past")
                ui.open_past = gr.Button("Open", size="sm", elem_id="cart-open")
            gr.Examples(EXAMPLES, inputs=ui.box, label="Examples")
            # set once the load event has shown the latest conversation (tests wait for it)
            ui.loaded = gr.Markdown("", elem_id="cart-loaded", elem_classes=["cart-offscreen"])
        with gr.Column(scale=2, min_width=340):
            ui.details = render.html_panel(render.answer_details_html(None), elem_id="cart-evidence")
            with gr.Group():
                ui.comment = gr.Textbox(label="Feedback on the last answer (optional comment)", max_lines=3,
                                        elem_id="cart-comment")
                ui.reason = gr.Dropdown(label="If not helpful, why?", choices=[(v, k) for k, v in REASONS.items()],
                                        value=None, elem_id="cart-reason")
                with gr.Row():
                    ui.up = gr.Button("Helpful", size="sm", elem_id="cart-up")
                    ui.down = gr.Button("Not helpful", size="sm", elem_id="cart-down")
                ui.fb_status = gr.Markdown("", elem_id="cart-feedback-status")
    return ui


def _wire_chat(demo, ui: SimpleNamespace, h: ChatHandlers) -> None:
    """The Chat tab's events. Gradio injects gr.Request and gr.LikeData by annotation, so the
    handlers are wrapped here."""
    import gradio as gr

    async def ask(message, history, conv_id, answers, dos=None, request: gr.Request = None):
        return await h.ask(message, history, conv_id, answers, dos, request)

    def like(answers: list, data: gr.LikeData, request: gr.Request) -> str:
        return h.like(answers, data, request)

    def rate_up(comment: str, answers: list, request: gr.Request) -> str:
        return h.rate(1, comment, answers, request)

    def rate_down(comment: str, reason: str, answers: list, request: gr.Request) -> str:
        return h.rate(-1, comment, answers, request, reason)

    def reopen(conv: str, request: gr.Request):
        return h.reopen(conv, request)

    def latest(request: gr.Request):
        return (*h.latest(request), "loaded")

    def forget(conv: str, request: gr.Request):
        return h.forget(conv, request)

    def listed(conv: str, request: gr.Request):
        return h.listed(conv, request)

    shown = [ui.chat, ui.conv_id, ui.answers, ui.details, ui.comment, ui.fb_status, ui.copy_text, ui.links, ui.past]
    inputs = [ui.box, ui.chat, ui.conv_id, ui.answers, ui.dos]
    ui.send.click(ask, inputs, [ui.box, *shown[:-1]], concurrency_limit=None)
    ui.box.submit(ask, inputs, [ui.box, *shown[:-1]], concurrency_limit=None)
    ui.history.expand(listed, [ui.conv_id], ui.past)
    fresh = shown[:6]
    ui.new.click(h.new_conversation, None, fresh)
    # the chat's own "Clear" button: start over too, or a thumb on a new message would be
    # matched to an answer of the cleared conversation
    ui.chat.clear(h.new_conversation, None, fresh)
    ui.up.click(rate_up, [ui.comment, ui.answers], ui.fb_status)
    ui.down.click(rate_down, [ui.comment, ui.reason, ui.answers], ui.fb_status)
    ui.chat.like(like, [ui.answers], ui.fb_status)
    ui.open_past.click(reopen, [ui.past], shown)
    ui.delete.click(forget, [ui.conv_id], shown)
    demo.load(latest, None, [*shown, ui.loaded])  # a reload shows the user's latest conversation again (from the server)


def build_blocks(engine: Engine, feedback: FeedbackStore, conversations: Conversations):
    import gradio as gr

    from assistant.webui_calculators import calculators_tab
    from assistant.webui_sources import sources_html

    h = ChatHandlers(engine, feedback, conversations)
    with gr.Blocks(title="CAR-T billing assistant", analytics_enabled=False) as demo:
        gr.Markdown("## CAR-T billing assistant\nCoding, billing and coverage answers for Abecma, "
                    "Carvykti and Tecartus, quoted from the billing guides and payer policies, with "
                    "calculations shown step by step. Not a substitute for the payer's own policy.")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                _wire_chat(demo, _chat_layout(), h)
            with gr.Tab("Calculators", id="calculators"):
                calculators_tab()
            with gr.Tab("Sources", id="sources"):
                render.html_panel(sources_html(engine), elem_id="cart-sources")
    return demo
