"""Load test: N concurrent 3-turn conversations against the JSON API and the Gradio chat.

    .venv/bin/python -m benchmarks.load                      # starts app.py on a free loopback port
    .venv/bin/python -m benchmarks.load --url http://127.0.0.1:7860 --levels 1,8,32

For each N in --levels and each interface (api: POST /api/ask; gradio: the chat's Ask event through
Gradio's queue API, one page session per conversation; mixed: half the conversations on each, at the
same time), N conversations run concurrently, each asking its turns in order and waiting for each
answer. Each conversation is its own user (X-Forwarded-User, the started app runs with
CART_AUTH=proxy from loopback; give a --url app the same setting). A chat conversation first opens
its page as a browser tab does: the page's load event (which shows the user's latest conversation
and is where Gradio creates the tab's session state) runs before the clock starts, and its p95 is
printed as "open p95"; the question latencies are the Ask events only. Conversations differ in product (Abecma, Carvykti,
Tecartus), so a reply meant for another conversation shows: a reply is counted as
"mixed up" when it does not name its own conversation's product (its HCPCS code or its name) or
cites another product's billing guide.

Printed per level and interface: requests, throughput (req/s), p50/p95/max latency, errors,
mixed-up replies and the machine's load average. Bounded: loopback only, --turns turns per
conversation, no new turn after --max-seconds per level, --timeout per request. The target from
the issue: no errors, no mix-ups, p95 under 2 s at 32 concurrent conversations on a 2-core
machine. Asserts nothing (exit status 1 only if the app could not be started).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
PRODUCTS = [("Abecma", "Q2055"), ("Carvykti", "Q2056"), ("Tecartus", "Q2053")]
TURNS = [
    "What is the HCPCS code for {product}?",
    "And its payment limit?",
    "What modifier is needed with it?",
    "Does it require REMS?",
    "How is it billed in the outpatient setting?",
]


# --- starting the app ----------------------------------------------------------------------

def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(env_overrides: dict[str, str], timeout: float = 180.0):
    port = _free_port()
    env = dict(os.environ, CART_HOST="127.0.0.1", CART_PORT=str(port), HF_HUB_OFFLINE="1",
               ANONYMIZED_TELEMETRY="False", PYTHONUNBUFFERED="1")
    env.update(env_overrides)
    log = tempfile.TemporaryFile(mode="w+b")
    proc = subprocess.Popen([sys.executable, str(PROJECT / "app.py")], cwd=PROJECT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"app.py exited with {proc.returncode}:\n{log.read().decode('utf-8', 'replace')}")
        try:
            with urllib.request.urlopen(url + "/api/health", timeout=5) as r:
                if r.status == 200:
                    return proc, url, log
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.3)
    proc.terminate()
    raise RuntimeError(f"app.py did not answer /api/health within {timeout:.0f} s")


def stop_app(proc) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


# --- one conversation per interface --------------------------------------------------------

@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    mixed: list[str] = field(default_factory=list)
    opens: list[float] = field(default_factory=list)  # page-load event of each Gradio tab (before the clock)


def mixed_up(product: str, code: str, text: str, cited: str = "") -> bool:
    """The reply does not name its own product, or cites another product's document."""
    low = text.lower()
    if code.lower() not in low and product.lower() not in low:
        return True
    others = [p.lower() for p, _ in PRODUCTS if p != product]
    return any(f"{o}-" in cited.lower() for o in others)


class ApiConversation:
    def __init__(self, url: str, timeout: float):
        import uuid

        self.url, self.timeout, self.conv_id = url, timeout, None
        self.user = f"load-{uuid.uuid4().hex[:12]}"

    def ask(self, question: str) -> tuple[str, str]:
        body = {"question": question}
        if self.conv_id:
            body["conversation_id"] = self.conv_id
        req = urllib.request.Request(self.url + "/api/ask", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "X-Forwarded-User": self.user})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                data = json.loads(r.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"HTTP {exc.code}: {exc.read()[:200]!r}") from None
        if self.conv_id and data.get("conversation_id") != self.conv_id:
            raise RuntimeError("conversation id changed")
        self.conv_id = data["conversation_id"]
        answer = data["answer"]
        return answer.get("text", ""), " ".join(c.get("doc_id", "") for c in answer.get("citations", []))


class GradioConversation:
    """One gradio_client session = one browser tab: its conversation id lives in the session's State."""

    def __init__(self, url: str, timeout: float):
        from gradio_client import Client

        self.client = Client(url, verbose=False, download_files=False)
        self.timeout, self.history = timeout, []

    def ask(self, question: str) -> tuple[str, str]:
        job = self.client.submit(question, self.history, api_name="/ask")
        out = job.result(timeout=self.timeout)
        history, details = out[1], out[2]  # out[0] is not needed: the reply is read from the history
        self.history = history
        last = history[-1] if history else {}
        content = last.get("content", "") if isinstance(last, dict) else ""
        if isinstance(content, list):
            content = " ".join(c.get("text", "") if isinstance(c, dict) else str(c) for c in content)
        if not content or (isinstance(last, dict) and last.get("role") != "assistant"):
            raise RuntimeError(f"no assistant message in the reply: {str(out)[:200]}")
        return str(content), str(details or "")


class GradioHttpConversation:
    """One browser tab speaking Gradio's own queue protocol over plain HTTP (what the page's
    JavaScript does: POST queue/join, then read the queue/data event stream). Much lighter on the
    load machine's CPU than gradio_client, so the figures measure the server, not the client."""

    _fn: dict[str, dict[str, tuple[int, int]]] = {}

    def __init__(self, url: str, timeout: float):
        import uuid

        self.base, self.timeout = url.rstrip("/"), timeout
        self.session, self.history = uuid.uuid4().hex[:12], []
        self.headers = {"Content-Type": "application/json", "X-Forwarded-User": f"load-{self.session}"}
        if url not in self._fn:
            config = urllib.request.Request(f"{self.base}/config", headers=self.headers)
            with urllib.request.urlopen(config, timeout=timeout) as resp:
                deps = json.load(resp)["dependencies"]
            ask = next(i for i, d in enumerate(deps) if d.get("api_name") == "ask")
            load = next(i for i, d in enumerate(deps) if any(t[1] == "load" for t in d.get("targets", [])))
            self._fn[url] = {"ask": (ask, deps[ask]["targets"][0][0]), "load": (load, deps[load]["targets"][0][0])}
        self.fns = self._fn[url]
        # the page's load event, as a browser tab runs it on opening (it shows the user's latest
        # conversation); Gradio creates the tab's session state here, before any question
        started = time.perf_counter()
        self._event(*self.fns["load"], [])
        self.opened_s = time.perf_counter() - started

    def _event(self, fn_index: int, trigger: int, data: list) -> list:
        body = json.dumps({"data": data, "event_data": None, "fn_index": fn_index, "trigger_id": trigger,
                           "session_hash": self.session}).encode()
        req = urllib.request.Request(f"{self.base}/gradio_api/queue/join", body, self.headers)
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            event_id = json.load(resp)["event_id"]
        stream = urllib.request.Request(f"{self.base}/gradio_api/queue/data?session_hash={self.session}",
                                        headers=self.headers)
        with urllib.request.urlopen(stream, timeout=self.timeout) as resp:
            for raw in resp:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("event_id") != event_id or msg.get("msg") != "process_completed":
                    continue
                if not msg.get("success"):
                    raise RuntimeError(f"gradio error: {str(msg)[:200]}")
                return msg["output"]["data"]
        raise RuntimeError("the event stream ended without a result")

    def ask(self, question: str) -> tuple[str, str]:
        out = self._event(*self.fns["ask"], [question, self.history, None, None, ""])
        self.history = out[1]
        last = self.history[-1] if self.history else {}
        content = last.get("content", "") if isinstance(last, dict) else ""
        if isinstance(content, list):
            content = " ".join(c.get("text", "") if isinstance(c, dict) else str(c) for c in content)
        if not content or last.get("role") != "assistant":
            raise RuntimeError(f"no assistant message in the reply: {str(out)[:200]}")
        return str(content), ""


def run_conversation(make, product: str, code: str, turns: int, deadline: float, result: Result,
                     lock: threading.Lock, conv=None) -> None:
    try:
        conv = conv or make()
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        with lock:
            result.errors.append(f"connect: {exc!r}"[:200])
        return
    for i in range(turns):
        if time.monotonic() > deadline:
            return
        question = TURNS[i % len(TURNS)].format(product=product)
        started = time.perf_counter()
        try:
            text, cited = conv.ask(question)
        except Exception as exc:  # noqa: BLE001
            with lock:
                result.errors.append(f"{product} turn {i + 1}: {exc!r}"[:300])
            return
        elapsed = time.perf_counter() - started
        with lock:
            result.latencies.append(elapsed)
            if mixed_up(product, code, text, cited if isinstance(conv, ApiConversation) else ""):
                result.mixed.append(f"{product} turn {i + 1} ({question!r}): {text[:120]!r}")


GRADIO_CLIENTS = {"http": GradioHttpConversation, "gradio_client": GradioConversation}


def run_level(url: str, interface: str, n: int, turns: int, max_seconds: float, timeout: float,
              gradio_client: str = "http"):
    gradio = GRADIO_CLIENTS[gradio_client]
    makers = {"api": lambda: ApiConversation(url, timeout), "gradio": lambda: gradio(url, timeout)}
    plan = []
    for i in range(n):
        kind = interface if interface != "mixed" else ("api" if i % 2 == 0 else "gradio")
        product, code = PRODUCTS[i % len(PRODUCTS)]
        plan.append((makers[kind], product, code))
    # sessions are opened before the clock starts (a Gradio client fetches the app's config)
    convs = []
    with ThreadPoolExecutor(max_workers=min(n, 8)) as pool:
        convs = list(pool.map(lambda p: _try(p[0]), plan))
    result, lock = Result(), threading.Lock()
    for c in convs:
        if isinstance(c, Exception):
            result.errors.append(f"connect: {c!r}"[:200])
    started = time.perf_counter()
    deadline = time.monotonic() + max_seconds
    with ThreadPoolExecutor(max_workers=n) as pool:
        for (make, product, code), conv in zip(plan, convs, strict=True):  # convs is pool.map over plan
            if not isinstance(conv, Exception):
                pool.submit(run_conversation, make, product, code, turns, deadline, result, lock, conv)
    wall = time.perf_counter() - started
    result.opens = [c.opened_s for c in convs if isinstance(c, GradioHttpConversation)]
    for c in convs:
        if isinstance(c, GradioConversation):
            try:
                c.client.close()
            except Exception:  # noqa: BLE001
                pass
    return result, wall


def _try(make):
    try:
        return make()
    except Exception as exc:  # noqa: BLE001
        return exc


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="a running app (default: start app.py on a free loopback port)")
    ap.add_argument("--levels", default="1,8,32", help="concurrent conversations per level (default 1,8,32)")
    ap.add_argument("--interfaces", default="api,gradio,mixed", help="api, gradio, mixed (default all three)")
    ap.add_argument("--turns", type=int, default=3, help="turns per conversation (default 3, at most 5)")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="no new turn after this per level (default 60)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for the started app, e.g. --env CART_ENGINE_THREADS=2")
    ap.add_argument("--gradio-client", choices=sorted(GRADIO_CLIENTS), default="http",
                    help="how the gradio interface is driven: Gradio's queue protocol over plain HTTP, as the "
                         "page does (default), or the gradio_client package (heavier on the load machine)")
    ap.add_argument("--show", type=int, default=3, help="errors / mix-ups printed per row (default 3)")
    args = ap.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    interfaces = [x.strip() for x in args.interfaces.split(",") if x.strip()]
    turns = max(1, min(args.turns, len(TURNS)))
    if any(i not in ("api", "gradio", "mixed") for i in interfaces):
        ap.error("--interfaces: api, gradio, mixed")
    if args.url and not args.url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        ap.error("--url must be a loopback address")

    proc = log = None
    url = args.url.rstrip("/") if args.url else None
    if url is None:
        overrides = dict(kv.split("=", 1) for kv in args.env)
        overrides.setdefault("CART_LOG_FILE", os.devnull)  # request lines would flood the terminal
        # every simulated user comes from 127.0.0.1, one client to the rate limits: measure the
        # server's capacity, not CART_RATE_ASKS
        overrides.setdefault("CART_RATE_ASKS", "1000000")
        overrides.setdefault("CART_RATE_FEEDBACK", "1000000")
        # each simulated conversation is its own user, told apart by X-Forwarded-User as behind an
        # SSO proxy: a tab's load event reopens its user's latest conversation, so 32 tabs of one
        # local user would all continue the same one
        overrides.setdefault("CART_AUTH", "proxy")
        try:
            proc, url, log = start_app(overrides)
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
    try:
        # warm up: the first answers load models and caches
        for iface in ("api", "gradio"):
            if iface in interfaces or "mixed" in interfaces:
                run_level(url, iface, 1, 2, 30, args.timeout, args.gradio_client)
        print(f"app {url}  turns/conversation {turns}  max {args.max_seconds:.0f} s/level  "
              f"cpus {os.cpu_count()}  load before {load_average()}")
        header = (f"{'N':>3} {'interface':<9} {'requests':>8} {'req/s':>7} {'p50 s':>7} {'p95 s':>7} "
                  f"{'max s':>7} {'errors':>6} {'mixed-up':>8} {'open p95':>8}  load (1/5/15 min)")
        print(header)
        print("-" * len(header))
        for n in levels:
            for iface in interfaces:
                if iface == "mixed" and n < 2:
                    continue
                result, wall = run_level(url, iface, n, turns, args.max_seconds, args.timeout, args.gradio_client)
                lat = result.latencies
                print(f"{n:>3} {iface:<9} {len(lat):>8} {len(lat) / wall if wall else 0:>7.1f} "
                      f"{pct(lat, .5):>7.2f} {pct(lat, .95):>7.2f} {max(lat, default=float('nan')):>7.2f} "
                      f"{len(result.errors):>6} {len(result.mixed):>8} "
                      f"{f'{pct(result.opens, .95):.2f}' if result.opens else '-':>8}  {load_average()}", flush=True)
                for line in (result.errors[:args.show] + result.mixed[:args.show]):
                    print(f"      ! {line}")
    finally:
        if proc is not None:
            stop_app(proc)
            log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
