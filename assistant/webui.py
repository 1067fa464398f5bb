"""The Gradio page: Chat, Calculators, Sources.

One browser session = one conversation (its id lives in a gr.State; the Conversation itself stays
server-side in the shared `Conversations` store, so the JSON API and the page use one mechanism).
Everything shown is rendered by `assistant.render`, which escapes source and user text.
"""

import time

from assistant import render, requestlog
from assistant.api import Conversations, run_engine
from assistant.engine import Engine
from assistant.feedback import FeedbackStore

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
    """What the chat's events do; one instance per app, state lives in the page's gr.State."""

    def __init__(self, engine: Engine, feedback: FeedbackStore, conversations: Conversations):
        self.engine, self.feedback, self.conversations = engine, feedback, conversations

    def turn(self, message: str, history: list, conv_id: str | None, answers: list, started: float,
             dos: str | None = None):
        import gradio as gr

        message = message if isinstance(message, str) else ""
        dos = dos.strip() if isinstance(dos, str) and dos.strip() else None
        conv = self.conversations.get(conv_id)
        answer = self.engine.ask(message, conv, dos=dos)
        requestlog.log_ask("gradio", message, answer, conv.id, (time.perf_counter() - started) * 1000)
        shown = message if len(message) <= 2000 else message[:2000] + " …"
        history = list(history or []) + [
            {"role": "user", "content": render.md_text(shown)},
            {"role": "assistant", "content": render.answer_markdown(answer)},
        ]
        # the page keeps the serialized answer: feedback stores what the user saw
        answers = list(answers or []) + [{"question": message[:4000], "answer": answer.to_dict()}]
        return ("", history, conv.id, answers, render.answer_details_html(answer),
                gr.update(value="", interactive=True), "")

    async def ask(self, message: str, history: list, conv_id: str | None, answers: list, dos: str | None = None):
        # On the engine pool shared with the JSON API (CART_ENGINE_THREADS), awaited: a waiting
        # chat holds no Gradio worker thread, and Gradio's queue does not limit the chat's Ask.
        return await run_engine(self.turn, message, history, conv_id, answers, time.perf_counter(), dos)

    @staticmethod
    def new_conversation():
        return [], None, [], render.answer_details_html(None), "", ""

    def _save(self, rating: int, item: dict, conv_id: str | None, comment: str = "") -> int:
        started = time.perf_counter()
        fid = self.feedback.add(rating=rating, question=item["question"], answer=item["answer"],
                                comment=comment, conversation_id=conv_id)
        requestlog.log_feedback("gradio", rating, item["question"], item["answer"], conv_id,
                                (time.perf_counter() - started) * 1000)
        return fid

    def rate(self, rating: int, comment: str, conv_id: str | None, answers: list) -> str:
        if not answers:
            return "Ask a question first; feedback is about an answer."
        fid = self._save(rating, answers[-1], conv_id, comment or "")
        return f"Thank you — feedback #{fid} saved ({'helpful' if rating > 0 else 'not helpful'})."

    def like(self, conv_id: str | None, answers: list, data) -> str:
        # The chat's own thumbs: message index → the answer it belongs to (user, assistant pairs).
        idx = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        pair = (idx or 0) // 2
        if not answers or pair >= len(answers):
            return ""
        liked = data.liked if isinstance(data.liked, bool) else str(data.liked).lower() == "like"
        return f"Thank you — feedback #{self._save(1 if liked else -1, answers[pair], conv_id)} saved."


def build_blocks(engine: Engine, feedback: FeedbackStore, conversations: Conversations):
    import gradio as gr

    from assistant.webui_calculators import calculators_tab
    from assistant.webui_sources import sources_html

    h = ChatHandlers(engine, feedback, conversations)

    def like(conv_id: str | None, answers: list, data: gr.LikeData) -> str:
        return h.like(conv_id, answers, data)

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
                        details = gr.HTML(render.answer_details_html(None), elem_id="cart-evidence")
                        with gr.Group():
                            comment = gr.Textbox(label="Feedback on the last answer (optional comment)",
                                                 max_lines=3, elem_id="cart-comment")
                            with gr.Row():
                                up = gr.Button("Helpful", size="sm", elem_id="cart-up")
                                down = gr.Button("Not helpful", size="sm", elem_id="cart-down")
                            fb_status = gr.Markdown("", elem_id="cart-feedback-status")
                outputs = [box, chat, conv_id, answers, details, comment, fb_status]
                send.click(h.ask, [box, chat, conv_id, answers, dos], outputs, concurrency_limit=None)
                box.submit(h.ask, [box, chat, conv_id, answers, dos], outputs, concurrency_limit=None)
                new.click(h.new_conversation, None, [chat, conv_id, answers, details, comment, fb_status])
                # the chat's own "Clear" button: start over too, or a thumb on a new message would be
                # matched to an answer of the cleared conversation
                chat.clear(h.new_conversation, None, [chat, conv_id, answers, details, comment, fb_status])
                up.click(lambda c, i, a: h.rate(1, c, i, a), [comment, conv_id, answers], fb_status)
                down.click(lambda c, i, a: h.rate(-1, c, i, a), [comment, conv_id, answers], fb_status)
                chat.like(like, [conv_id, answers], fb_status)
            with gr.Tab("Calculators", id="calculators"):
                calculators_tab()
            with gr.Tab("Sources", id="sources"):
                gr.HTML(sources_html(engine))
    return demo
