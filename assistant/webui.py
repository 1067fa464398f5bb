"""The Gradio page: Chat, Calculators, Sources.

One browser session = one conversation (its id lives in a gr.State; the Conversation itself stays
server-side in the shared `Conversations` store, so the JSON API and the page use one mechanism).
Everything shown is rendered by `assistant.render`, which escapes source and user text.
"""

import time

from assistant import auth, render, requestlog
from assistant.api import caller, over_rate, run_engine
from assistant.engine import Engine
from assistant.feedback import FeedbackStore
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


class ChatHandlers:
    """What the chat's events do; one instance per app, state lives in the page's gr.State
    (held server-side by Gradio: the conversation id and the ids of the answers shown)."""

    def __init__(self, engine: Engine, feedback: FeedbackStore, conversations: Conversations):
        self.engine, self.feedback, self.conversations = engine, feedback, conversations

    def turn(self, message: str, history: list, conv_id: str | None, answers: list, started: float,
             dos: str | None = None, owner: str = auth.LOCAL):
        import gradio as gr

        message = message if isinstance(message, str) else ""
        dos = dos.strip() if isinstance(dos, str) and dos.strip() else None
        conv, expired = self.conversations.open(conv_id, owner)
        answer = self.engine.ask(message, conv, dos=dos)
        if expired:
            answer.notes.append(EXPIRED_NOTE)
        requestlog.log_ask("gradio", message, answer, conv.id, (time.perf_counter() - started) * 1000, user=owner)
        answer_id = self.conversations.remember(conv, message, answer.to_dict())
        shown = message if len(message) <= 2000 else message[:2000] + " …"
        history = list(history or []) + [
            {"role": "user", "content": render.md_text(shown)},
            {"role": "assistant", "content": render.answer_markdown(answer)},
        ]
        answers = list(answers or []) + [answer_id]  # feedback names the answer by the server's id
        return ("", history, conv.id, answers, render.answer_details_html(answer),
                gr.update(value="", interactive=True), "")

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
        return (gr.update(), history, conv_id, answers, gr.update(), gr.update(), f"**{refusal}**")

    @staticmethod
    def new_conversation():
        return [], None, [], render.answer_details_html(None), "", ""

    def _save(self, rating: int, answer_id: str, comment: str, request) -> str:
        user, key = caller(request)
        if wait := over_rate("feedback", key):
            return too_many(wait, "feedback posts")
        held = self.conversations.answer(answer_id, user.name)
        if held is None:
            return "That answer's conversation has expired; feedback can no longer be saved for it."
        started = time.perf_counter()
        conv_id, item = held
        fid = self.feedback.add(rating=rating, question=item["question"], answer=item["answer"],
                                comment=comment, conversation_id=conv_id, user=user.name, answer_id=answer_id)
        requestlog.log_feedback("gradio", rating, item["question"], item["answer"], conv_id,
                                (time.perf_counter() - started) * 1000, user=user.name)
        return f"Thank you — feedback #{fid} saved ({'helpful' if rating > 0 else 'not helpful'})."

    def rate(self, rating: int, comment: str, answers: list, request=None) -> str:
        if not answers:
            return "Ask a question first; feedback is about an answer."
        return self._save(rating, answers[-1], comment or "", request)

    def like(self, answers: list, data, request=None) -> str:
        # The chat's own thumbs: message index → the answer it belongs to (user, assistant pairs).
        idx = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        pair = (idx or 0) // 2
        if not answers or pair >= len(answers):
            return ""
        liked = data.liked if isinstance(data.liked, bool) else str(data.liked).lower() == "like"
        return self._save(1 if liked else -1, answers[pair], "", request)


def build_blocks(engine: Engine, feedback: FeedbackStore, conversations: Conversations):
    import gradio as gr

    from assistant.webui_calculators import calculators_tab
    from assistant.webui_sources import sources_html

    h = ChatHandlers(engine, feedback, conversations)

    # Gradio injects gr.Request and gr.LikeData by annotation, so the handlers are wrapped here
    async def ask(message, history, conv_id, answers, dos=None, request: gr.Request = None):
        return await h.ask(message, history, conv_id, answers, dos, request)

    def like(answers: list, data: gr.LikeData, request: gr.Request) -> str:
        return h.like(answers, data, request)

    def rate_up(comment: str, answers: list, request: gr.Request) -> str:
        return h.rate(1, comment, answers, request)

    def rate_down(comment: str, answers: list, request: gr.Request) -> str:
        return h.rate(-1, comment, answers, request)

    with gr.Blocks(title="CAR-T billing assistant", analytics_enabled=False) as demo:
        gr.Markdown("## CAR-T billing assistant\nCoding, billing and coverage answers for Abecma, "
                    "Carvykti and Tecartus, quoted from the billing guides and payer policies, with "
                    "calculations shown step by step. Not a substitute for the payer's own policy.")
        conv_id = gr.State(None)
        answers = gr.State([])
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row():
                    with gr.Column(scale=3):
                        chat = gr.Chatbot(label="Conversation", height=460, sanitize_html=True,
                                          latex_delimiters=[],  # "$430k to $500k" is not LaTeX
                                          allow_tags=False, elem_id="cart-chat",
                                          # no "share": it uploads the conversation to Hugging Face
                                          buttons=["copy", "copy_all"],
                                          placeholder="Ask about a code, a payment limit, a dose, "
                                                      "units or a payer's criteria.")
                        with gr.Row():
                            box = gr.Textbox(label="Your question", scale=5, max_lines=6,
                                             placeholder="e.g. Q2055 payment limit", elem_id="cart-question")
                            dos = gr.Textbox(label="Date of service (optional)", scale=1, max_lines=1,
                                             placeholder="e.g. 2/3/2026", elem_id="cart-dos",
                                             info="A date in the question wins; empty: today")
                            send = gr.Button("Ask", variant="primary", scale=1, elem_id="cart-ask")
                        with gr.Row():
                            new = gr.Button("New conversation", size="sm", elem_id="cart-new")
                        gr.Examples(EXAMPLES, inputs=box, label="Examples")
                    with gr.Column(scale=2):
                        details = render.html_panel(render.answer_details_html(None), elem_id="cart-evidence")
                        with gr.Group():
                            comment = gr.Textbox(label="Feedback on the last answer (optional comment)",
                                                 max_lines=3, elem_id="cart-comment")
                            with gr.Row():
                                up = gr.Button("Helpful", size="sm", elem_id="cart-up")
                                down = gr.Button("Not helpful", size="sm", elem_id="cart-down")
                            fb_status = gr.Markdown("", elem_id="cart-feedback-status")
                outputs = [box, chat, conv_id, answers, details, comment, fb_status]
                send.click(ask, [box, chat, conv_id, answers, dos], outputs, concurrency_limit=None)
                box.submit(ask, [box, chat, conv_id, answers, dos], outputs, concurrency_limit=None)
                new.click(h.new_conversation, None, [chat, conv_id, answers, details, comment, fb_status])
                # the chat's own "Clear" button: start over too, or a thumb on a new message would be
                # matched to an answer of the cleared conversation
                chat.clear(h.new_conversation, None, [chat, conv_id, answers, details, comment, fb_status])
                up.click(rate_up, [comment, answers], fb_status)
                down.click(rate_down, [comment, answers], fb_status)
                chat.like(like, [answers], fb_status)
            with gr.Tab("Calculators", id="calculators"):
                calculators_tab()
            with gr.Tab("Sources", id="sources"):
                render.html_panel(sources_html(engine), elem_id="cart-sources")
    return demo
