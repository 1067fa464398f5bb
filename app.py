"""The assistant's web server: the Gradio page, the JSON API and the embeddable web component.

    /            the Gradio app (Chat, Calculators, Sources)
    /api/...     JSON API for intranet pages that render their own widget (assistant/api.py)
    /gradio.js   Gradio's web-component loader, served from the installed package: an intranet
                 page embeds the assistant with it and nothing is fetched from a CDN
    /embed/help.html  the example help page (also servable from any other web server), and
    /embed/help.js    the script it embeds the assistant with, from the server that served it
    /admin/documents  admins add source documents (only with CART_ADMIN_PAGES=on; assistant/documents.py)

Listens on 127.0.0.1:7860 by default (CART_HOST, CART_PORT; CART_ROOT_PATH behind a proxy).
Offline by construction: no analytics, system fonts (the default theme would fetch Google Fonts).
"""

from __future__ import annotations

import sys
from pathlib import Path

from assistant import config

HERE = Path(__file__).resolve().parent
# Run history is off, but runs an earlier version saved stay in the browser under a key of that
# process's random app id: embed/forget-runs.js removes them all. An external script, because
# Gradio inserts `head` with JavaScript, and an inline script inserted so is refused by the CSP.
FORGET_OLD_RUNS = '<script src="embed/forget-runs.js"></script>'
# "Copy answer with citations" (embed/copy-answer.js): the page's one script of its own
PAGE_SCRIPTS = FORGET_OLD_RUNS + '<script src="embed/copy-answer.js"></script>'


def create_app(engine=None, feedback=None):
    """The whole server as one FastAPI app (tests run it with uvicorn on a free port)."""
    import gradio as gr
    from fastapi import FastAPI
    from fastapi.middleware.cors import CORSMiddleware
    from fastapi.responses import FileResponse

    from assistant import documents, requestlog
    from assistant.api import create_api
    from assistant.engine import Engine
    from assistant.feedback import FeedbackStore
    from assistant.history import History
    from assistant.render import CSS
    from assistant.security import FrontDoor
    from assistant.sessions import Conversations
    from assistant.webui import build_blocks

    cfg = config.load()  # every setting checked here: a bad value stops with a ConfigError
    requestlog.configure()  # one line per request on stderr or CART_LOG_FILE
    if engine is None:  # CART_ENGINE_PROCESSES > 0: answers computed in worker processes, on every core
        from assistant.engine_workers import with_workers
        engine = with_workers(Engine(cfg=cfg), cfg.engine_processes)
    # SQLite files by default; with CART_DATABASE_URL both stores are in PostgreSQL, shared by every app process
    feedback = feedback or FeedbackStore(cfg.feedback_db, url=cfg.database_url)
    feedback.start_retention(cfg.retention_days)  # now and daily: rows older than CART_RETENTION_DAYS go
    # per user only with identity on: with CART_AUTH=none every conversation is the one local user's
    per_user = cfg.max_conversations_per_user if cfg.auth != "none" else cfg.max_conversations
    # conversations survive a reload and a restart: stored with their answers (0600, CART_HISTORY_DAYS)
    history = History(cfg.history_db, cfg.history_days, url=cfg.database_url)
    history.start_retention()
    conversations = Conversations(cfg.max_conversations, cfg.conversation_ttl, per_user, history=history,
                                  replay=lambda q, conv, dos: engine.ask(q, conv, dos=dos))

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, telemetry=config.NO_TELEMETRY)
    # Same-origin always works; other origins only when listed. Installed even when the list is
    # empty: Gradio then defers to it, whereas Gradio's own CORS middleware reflects *any* origin
    # as soon as the server is reached by a non-localhost host name.
    # Any request header from a listed origin: the web component sends its own (X-Gradio-User).
    app.add_middleware(CORSMiddleware, allow_origins=list(cfg.allowed_origins), allow_methods=["GET", "POST"],
                       allow_headers=["*"], allow_credentials=False)
    app.mount("/api", create_api(engine, conversations, feedback))

    gradio_js = Path(gr.__file__).parent / "templates" / "frontend" / "gradio.js"

    @app.get("/gradio.js", include_in_schema=False)
    def web_component():
        return FileResponse(gradio_js, media_type="text/javascript")

    @app.get("/embed/help.html", include_in_schema=False)
    def help_page():
        return FileResponse(HERE / "embed" / "help.html", media_type="text/html")

    @app.get("/embed/forget-runs.js", include_in_schema=False)
    def forget_runs():
        return FileResponse(HERE / "embed" / "forget-runs.js", media_type="text/javascript")

    @app.get("/embed/copy-answer.js", include_in_schema=False)
    def copy_answer():
        return FileResponse(HERE / "embed" / "copy-answer.js", media_type="text/javascript")

    @app.get("/embed/help.js", include_in_schema=False)
    def help_script():  # points the page at the server it came from (no address typed in the page)
        return FileResponse(HERE / "embed" / "help.js", media_type="text/javascript")

    from assistant import source_view
    source_view.add_routes(app, HERE / "embed")  # /sources/view and /api/documents/...: citations open here

    if documents.enabled(cfg):
        documents.add_page(app, HERE / "embed")
        from assistant import review
        review.add_page(app, HERE / "embed")

    theme = gr.themes.Default(primary_hue="blue", neutral_hue="slate",
                              font=["system-ui", "Segoe UI", "Arial", "sans-serif"],
                              font_mono=["ui-monospace", "Consolas", "monospace"])
    # the default blue-500 and red-500 under white text are 3.7:1; WCAG AA wants 4.5:1 for text
    theme = theme.set(color_accent="*primary_700", button_primary_background_fill="*primary_700",
                      button_primary_background_fill_hover="*primary_800", button_cancel_background_fill="#b91c1c",
                      button_cancel_background_fill_hover="#991b1b", button_cancel_text_color="white")
    demo = build_blocks(engine, feedback, conversations)
    # CART_CONCURRENCY bounds the other Gradio events (calculators, feedback); the chat's Ask is
    # not limited by the queue but by the engine pool (CART_ENGINE_THREADS) it shares with the API.
    # (not api_open=False: it refuses the embedded web component's calls from another origin; the
    # front door closes the /run and /call routes that skip the queue instead)
    demo.queue(default_concurrency_limit=cfg.concurrency)
    # Nothing of a conversation may stay in the browser or on a route for the next person at a
    # shared workstation: no run history (Gradio keeps every question and answer in localStorage
    # and lists it at /gradio_api/runs), no monitoring, no MCP server, no uploads (1-byte cap; the
    # front door also closes the route), no PWA install.
    app = gr.mount_gradio_app(app, demo, path="/", theme=theme, css=CSS, show_error=False,
                              footer_links=[], root_path=cfg.root_path or None, ssr_mode=False,
                              run_history=False, enable_monitoring=False, mcp_server=False,
                              max_file_size=1, pwa=False, head=PAGE_SCRIPTS)
    for route in app.routes:  # Gradio's own FastAPI app, mounted at "/"
        if isinstance(getattr(route, "app", None), FastAPI) and isinstance(getattr(route.app, "_telemetry", None), dict):
            route.app._telemetry.update(config.NO_TELEMETRY)  # the dict its NativeTelemetry reads
    # outermost: identity, hosts, closed routes, cross-site writes, body limits, headers
    app.add_middleware(FrontDoor, cfg=cfg)
    return app


def start_line(cfg) -> str:
    """What the server says when it starts: where, and who may use it."""
    who = {"none": "no sign-in (CART_AUTH=none): for one person on this machine; see the README's "
                   "'Deploying on an intranet' before opening it to a network",
           "proxy": f"users from the {cfg.auth_user_header} header of {', '.join(cfg.trusted_proxies)}",
           "token": "JSON API with bearer tokens only (CART_AUTH=token)"}[cfg.auth]
    return f"Serving on http://{cfg.host}:{cfg.port}{cfg.root_path}/ - {who}"


def main() -> int:
    try:
        cfg = config.load()
    except config.ConfigError as exc:  # one line per bad value, exit status 2, no traceback
        print(exc, file=sys.stderr)
        return 2

    import uvicorn

    from assistant.core.private_db import DB_ERRORS, PrivateDB
    from index.store import IndexMissingError

    try:
        app = create_app()
    except IndexMissingError as exc:
        print(exc, file=sys.stderr)
        return 1
    except DB_ERRORS as exc:  # the history/feedback database: unreachable, refused, or an unwritable file
        where = PrivateDB.describe(cfg.feedback_db, cfg.database_url)
        print(f"The conversation and feedback database ({where}) cannot be opened "
              f"({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
              + ("Check that the PostgreSQL server runs and CART_DATABASE_URL." if cfg.database_url
                 else "Check CART_FEEDBACK_DB / CART_HISTORY_DB and the folder's permissions."), file=sys.stderr)
        return 1
    print(start_line(cfg), flush=True)
    # uvicorn's own proxy-header handling is off: the front door believes X-Forwarded-* only
    # from CART_TRUSTED_PROXIES and still knows the proxy's address when it checks identity
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning", proxy_headers=False,
                server_header=False, date_header=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
