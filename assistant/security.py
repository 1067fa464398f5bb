"""The app's front door: one ASGI middleware around everything app.py serves.

In order, for every HTTP request:

1. **Forwarded headers and hosts.** `X-Forwarded-*` and the identity headers are believed only
   from CART_TRUSTED_PROXIES (and then the client address is taken from X-Forwarded-For); from
   anyone else they are removed before the app sees them. The Host (or trusted X-Forwarded-Host)
   must be one of CART_TRUSTED_HOSTS: Gradio writes it into the page as the API base.
2. **Identity** (`assistant.auth.identify`): a request without one the configuration accepts is
   refused (401/403); the caller is put in `scope["state"]["cart_user"]`.
3. **Closed surfaces.** Routes the page does not use are 404: uploads, Gradio's run history,
   monitoring, deep links, API docs and info (CLOSED_PREFIXES).
4. **Cross-site writes.** A request with a body must say `Content-Type: application/json` and
   come from this origin or a listed one (CART_ALLOWED_ORIGINS): a page elsewhere cannot post
   with a form, `text/plain`, a Blob or `sendBeacon`. The one exception is the Documents
   page's upload (UPLOAD_PATH, an admin's `application/octet-stream` file, CART_ADMIN_PAGES=on).
5. **Bounded use.** Bodies over MAX_BODY_BYTES (the upload: CART_MAX_UPLOAD_MB) are 413 on every route; Gradio's event routes
   (the chat, calculators, feedback) are rate-limited per client (429 with Retry-After).
6. **Response headers.** A Content-Security-Policy (`script-src 'self'` plus the SHA-256 of the
   page's own inline bootstrap scripts, computed from the page as served, never
   'unsafe-inline'), `frame-ancestors` from CART_ALLOWED_ORIGINS ('none' by default), `nosniff`,
   `Referrer-Policy: same-origin`, and `Cache-Control: no-store` on everything but static assets.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections import OrderedDict
from urllib.parse import parse_qs

from assistant import auth, config
from assistant.limits import RateLimiter, too_many

MAX_BODY_BYTES = 64 * 1024
UPLOAD_PATH = "/api/admin/uploads"  # the Documents page's file upload: CART_MAX_UPLOAD_MB, admins only
# Gradio routes the page never needs, each a place patient data could be read or left behind.
# (/gradio_api/info stays: the embedded web component reads the event names from it.)
CLOSED_PREFIXES = (
    "/gradio_api/upload", "/upload", "/gradio_api/file", "/file=", "/file/", "/gradio_api/process_recording",
    "/gradio_api/stream/", "/gradio_api/runs", "/gradio_api/run-history", "/monitoring", "/gradio_api/monitoring",
    "/gradio_api/deep_link", "/gradio_api/openapi", "/openapi", "/docs", "/redoc", "/gradio_api/mcp",
    "/gradio_api/vibe", "/gradio_api/run/", "/gradio_api/call/", "/run/", "/call/", "/gradio_api/api/",
)
OPEN_PATHS = ("/api/health",)  # without identity: a load balancer's probe; status and build id only
# Gradio's event route: every chat question, calculator run and thumb goes through the queue
# (the direct /run and /call routes, which skip it, are closed above)
EVENT_PREFIXES = ("/gradio_api/queue/join",)
STATIC_PREFIXES = ("/assets/", "/gradio_api/static/", "/static/", "/gradio.js", "/favicon", "/svelte/",
                   "/gradio_api/assets/", "/custom_component/")
_FORWARDED = (b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-port",
              b"x-forwarded-prefix", b"forwarded", b"x-real-ip")
# Gradio takes the page's API base from this one too, from anybody: never believed
_NEVER = (b"x-gradio-server",)
_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)
_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_SESSION_PATH = re.compile(r"^/gradio_api/(?:heartbeat|stream)/([^/]+)")
MAX_SESSIONS = 50_000


def _host_allowed(host: str, trusted: tuple[str, ...]) -> bool:
    name = host.strip().lower()
    name = name[1:].split("]")[0] if name.startswith("[") else name.rsplit(":", 1)[0] if name.count(":") == 1 else name
    for pattern in trusted:
        if pattern == "*" or name == pattern or (pattern.startswith("*.") and name.endswith(pattern[1:])):
            return True
    return False


def csp(script_hashes: list[str], cfg: config.Config) -> str:
    origins = " ".join(cfg.allowed_origins) if cfg.allowed_origins else "'none'"
    scripts = " ".join(["'self'", *(f"'sha256-{h}'" for h in script_hashes)])
    return ("default-src 'self'; "
            f"script-src {scripts}; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
            "connect-src 'self'; media-src 'self' blob:; worker-src 'self' blob:; object-src 'none'; "
            f"base-uri 'self'; form-action 'self'; frame-ancestors {origins}")


def inline_script_hashes(html: bytes) -> list[str]:
    """Base64 SHA-256 of each inline <script>'s text, as a CSP source expression wants them."""
    out = []
    for m in _SCRIPT.finditer(html):
        digest = base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode()
        out.append(digest)
    return list(dict.fromkeys(out))


class _Reply(Exception):
    """Answer the request here: status, message, extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class FrontDoor:
    """The ASGI middleware (see the module docstring). `cfg` is read once, at start-up."""

    def __init__(self, app, cfg: config.Config | None = None):
        self.app = app
        self.cfg = cfg or config.load()
        self.events = RateLimiter(self.cfg.rate_asks * 4)  # the chat itself is also limited per ask
        self._sessions: OrderedDict[str, str] = OrderedDict()  # Gradio session hash -> its user
        self._sessions_lock = threading.Lock()
        self.identity_headers = {self.cfg.auth_user_header.lower().encode(),
                                 self.cfg.auth_groups_header.lower().encode()}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self._admit(scope)
        except _Reply as reply:
            await self._reply(scope, send, reply)
            return
        except auth.Refused as refused:
            await self._reply(scope, send, _Reply(refused.status, refused.message))
            return
        body = b""
        if scope["method"] in _WRITE_METHODS:
            limit = self._body_limit(scope)
            body = await self._read_body(receive, limit)
            if body is None:
                await self._reply(scope, send, _Reply(413, f"Request body is over {limit:,} bytes; "
                                                           f"the limit is {limit:,}."))
                return
            receive = self._replay(body, receive)
        if not self._owns_session(scope, body):
            await self._reply(scope, send, _Reply(403, "This page session belongs to another user."))
            return
        await self.app(scope, receive, self._headers(scope, send))

    def _owns_session(self, scope, body: bytes) -> bool:
        """Gradio's session hash travels in URLs (and so in proxy logs); with it, anyone could read
        a session's answer stream. Bind it to the first user who used it, refuse everyone else."""
        if scope["state"]["cart_user"].via == "open":  # a CORS preflight or the health probe
            return True
        path, hashes = scope.get("path", ""), []
        if m := _SESSION_PATH.match(path):
            hashes.append(m.group(1))
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        hashes += query.get("session_hash", [])
        if body[:1] == b"{" and b"session_hash" in body:
            try:
                value = json.loads(body).get("session_hash")
            except (ValueError, AttributeError, RecursionError):
                value = None
            if isinstance(value, str):
                hashes.append(value)
        user = scope["state"]["cart_user"].name
        with self._sessions_lock:
            for h in hashes:
                owner = self._sessions.setdefault(h, user)
                self._sessions.move_to_end(h)
                if owner != user:
                    return False
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return True

    # --- the checks, in order ------------------------------------------------------------

    def _admit(self, scope) -> None:
        path = scope.get("path", "")
        peer = (scope.get("client") or ("",))[0]  # the direct peer, before X-Forwarded-For is adopted
        trusted = self._forwarded(scope, peer)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("x-forwarded-host", "") if trusted else ""
        host = host.split(",")[0].strip() or headers.get("host", "")
        if not _host_allowed(host, self.cfg.trusted_hosts):
            raise _Reply(400, "Unknown host name; the administrator lists the names this server answers "
                              "to in CART_TRUSTED_HOSTS.")
        if path in OPEN_PATHS or scope["method"] == "OPTIONS":  # no data in them: load balancers, CORS
            user = auth.User("anonymous", via="open")
        else:
            user = auth.identify(headers, peer, path, self.cfg)
        state = scope.setdefault("state", {})
        state["cart_user"] = user
        client = (scope.get("client") or ("unknown",))[0]
        state["cart_client"] = user.name if self.cfg.auth != "none" else f"ip:{client}"
        if path.startswith(CLOSED_PREFIXES):
            raise _Reply(404, "Not found.")
        if scope["method"] in _WRITE_METHODS:
            self._check_write(scope, headers, host)
            if path.startswith(EVENT_PREFIXES) and (wait := self.events.check(state["cart_client"])):
                raise _Reply(429, too_many(wait, "requests"), {"retry-after": str(wait)})

    def _forwarded(self, scope, peer: str) -> bool:
        """True when the direct peer is a trusted proxy (and adopt X-Forwarded-For as the client);
        otherwise False after removing every forwarded and identity header."""
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k not in _NEVER]
        if b"deep_link=" in scope.get("query_string", b""):  # a saved session's state: never served
            scope["query_string"] = b""
        if auth.is_trusted_proxy(peer, self.cfg):
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    hops = [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
                    if hops:
                        scope["client"] = (hops[-1], 0)
                elif name == b"x-forwarded-proto" and value.strip().lower() in (b"http", b"https"):
                    scope["scheme"] = value.strip().lower().decode()
            return True
        drop = set(_FORWARDED) | self.identity_headers
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k not in drop]
        return False

    def _is_upload(self, scope) -> bool:
        """The Documents page's file upload: on, POST, and from an admin (anyone else gets the
        JSON rules and limit, and the route's own 403)."""
        return (self.cfg.admin_pages == "on" and scope["method"] == "POST" and scope.get("path") == UPLOAD_PATH
                and scope["state"]["cart_user"].admin)

    def _body_limit(self, scope) -> int:
        return self.cfg.max_upload_mb * 2**20 if self._is_upload(scope) else MAX_BODY_BYTES

    def _check_write(self, scope, headers: dict[str, str], host: str) -> None:
        has_body = headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        upload = self._is_upload(scope)
        if upload and has_body and ctype != "application/octet-stream":
            raise _Reply(415, "Upload the file as Content-Type: application/octet-stream.")
        if not upload and has_body and ctype != "application/json" and not ctype.endswith("+json"):
            raise _Reply(415, "Content-Type must be application/json.")
        declared, limit = headers.get("content-length", ""), self._body_limit(scope)
        if declared.isdigit() and int(declared) > limit:
            raise _Reply(413, f"Request body is {int(declared):,} bytes; the limit is {limit:,}.")
        origin = headers.get("origin", "")
        if origin and origin != "null":
            own = {f"{scheme}://{host}" for scheme in ("http", "https")}
            if origin not in own and origin not in self.cfg.allowed_origins and "*" not in self.cfg.allowed_origins:
                raise _Reply(403, "Requests from another site's page are refused (CART_ALLOWED_ORIGINS).")
        elif origin == "null":
            raise _Reply(403, "Requests from a sandboxed or file page are refused.")

    # --- what goes through ---------------------------------------------------------------------

    @staticmethod
    async def _read_body(receive, limit: int) -> bytes | None:
        """The whole request body (at most `limit` bytes), or None when it outgrows that; read
        here so that a body without Content-Length is bounded on every route alike."""
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return bytes(body)
            body += message.get("body", b"")
            if len(body) > limit:
                return None
            if not message.get("more_body"):
                return bytes(body)

    @staticmethod
    def _replay(body: bytes, receive):
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # then wait for the disconnect, as the server would say it
        return replay

    def _headers(self, scope, send):
        path = scope.get("path", "")
        static = path.startswith(STATIC_PREFIXES)
        held: dict = {}

        async def wrapped(message):
            if held.get("replaced"):  # the body of a 500 that was answered as a 400 instead
                return
            if message["type"] == "http.response.start" and message["status"] >= 500 and not path.startswith("/api"):
                # a malformed Gradio event (an unknown fn_index) raises inside Gradio: say it was a
                # bad request, without the server's internals (the JSON API words its own errors)
                held["replaced"] = True
                await self._reply(scope, send, _Reply(400, "This request is not one the page makes."))
                return
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in (
                    b"content-security-policy", b"x-frame-options", b"server")]
                headers += [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]
                if not static:
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                if not self.cfg.allowed_origins:
                    headers.append((b"x-frame-options", b"DENY"))
                ctype = dict((k.lower(), v) for k, v in headers).get(b"content-type", b"")
                if ctype.startswith(b"text/html"):  # hold the page: its CSP depends on its scripts
                    held["start"] = {**message, "headers": headers}
                    held["body"] = b""
                    return
                headers.append((b"content-security-policy", csp([], self.cfg).encode()))
                await send({**message, "headers": headers})
                return
            if "start" in held and message["type"] == "http.response.body":
                held["body"] += message.get("body", b"")
                if message.get("more_body"):
                    return
                start = held.pop("start")
                body = held.pop("body")
                policy = csp(inline_script_hashes(body), self.cfg).encode()
                headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                headers += [(b"content-security-policy", policy), (b"content-length", str(len(body)).encode())]
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)
        return wrapped

    async def _reply(self, scope, send, reply: _Reply) -> None:
        api = scope.get("path", "").startswith("/api")
        if api or reply.status != 401:
            body = json.dumps({"error": reply.message}).encode()
            ctype = b"application/json"
        else:
            body = reply.message.encode()
            ctype = b"text/plain; charset=utf-8"
        headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                   (b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"),
                   (b"content-security-policy", csp([], self.cfg).encode())]
        headers += [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
