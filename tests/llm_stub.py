"""A tiny OpenAI-compatible chat-completions server on 127.0.0.1 that replies from a script.

Each request pops the next scripted step: a function of the request body that returns a reply
dict ("content" or "tool_call") or the string "timeout" / "error". Requests are recorded.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedLLM:
    def __init__(self):
        self.script: list = []
        self.requests: list[dict] = []
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                stub.requests.append(body)
                step = stub.script.pop(0) if stub.script else (lambda b: {"content": "No script left."})
                reply = step(body)
                if reply == "timeout":
                    time.sleep(3)
                    reply = {"content": "too late"}
                if reply == "error":
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "boom"}}')
                    return
                message = {"role": "assistant", "content": reply.get("content")}
                finish = "stop"
                if "tool_call" in reply:
                    name, args = reply["tool_call"]
                    message = {"role": "assistant", "content": None, "tool_calls": [{
                        "id": "call_1", "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args)}}]}
                    finish = "tool_calls"
                data = {"id": "cmpl-1", "object": "chat.completion", "created": int(time.time()),
                        "model": body.get("model", "stub"),
                        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
                raw = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        return Handler


def user_prompt(body: dict) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def quote_first_passage(body: dict) -> dict:
    """A good answer: the first line of passage [1], cited."""
    prompt = user_prompt(body)
    m = re.search(r"^\[1\] .*\n(.+)$", prompt, re.M)
    return {"content": f"According to the guide: {m.group(1).strip()} [1]"}
