"""Who is asking: identity from an SSO proxy's header, or a bearer token for the JSON API.

    CART_AUTH=none    anonymous (the default, for one person on 127.0.0.1): every request is
                      the user "local", who is also admin
    CART_AUTH=proxy   a proxy in front (oauth2-proxy, Apache mod_auth_*, nginx auth_request) logs
                      the user in and sends `X-Forwarded-User` (and `X-Forwarded-Groups`); the
                      header is believed only from CART_TRUSTED_PROXIES, and a request without it
                      is refused. A JSON API request may carry a bearer token instead.
    CART_AUTH=token   the JSON API only, each request with `Authorization: Bearer <token>`
                      (server-to-server widgets); the page is not served (it has no way to send one)

Tokens are made and revoked with the command line below and stored as SHA-256 hashes in
CART_TOKENS_FILE (0600): the file holds nothing a reader could replay.

    .venv/bin/python -m assistant.auth add NAME [--admin]   prints the new token once
    .venv/bin/python -m assistant.auth list | revoke NAME

Identity is decided once per request, by one pure function (`identify`) that the front door
(assistant/security.py) calls; the JSON API and the Gradio handlers read the user it put in the
request's state (`api.caller`; a gr.Request exposes the same state).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import ipaddress
import json
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from assistant import config
from assistant.core.files import write_atomic

LOCAL = "local"  # the one user of CART_AUTH=none


@dataclass(frozen=True)
class User:
    """An identified caller. `name` owns conversations and feedback; `via` says how it was known."""

    name: str
    admin: bool = False
    via: str = "none"  # none | proxy | token


class Refused(Exception):
    """A request without an identity the configuration accepts: its status and a message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


# --- addresses ---------------------------------------------------------------------------------

@lru_cache(maxsize=32)
def _networks(proxies: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def is_trusted_proxy(address: str | None, cfg: config.Config) -> bool:
    """True when the direct peer is one of CART_TRUSTED_PROXIES."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in net for net in _networks(cfg.trusted_proxies))


# --- tokens --------------------------------------------------------------------------------

def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def load_tokens(path: Path) -> dict[str, dict]:
    """name -> {"sha256": ..., "admin": bool}; a missing file is no tokens."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise Refused(503, f"The API token file {path.name} cannot be read ({exc.__class__.__name__}).") from None
    return {str(k): v for k, v in data.get("tokens", {}).items() if isinstance(v, dict)}


def save_tokens(path: Path, tokens: Mapping[str, dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # write_atomic's temporary file is made by mkstemp, so the file is 0600 from its first byte
    write_atomic(path, json.dumps({"tokens": dict(tokens)}, indent=2, sort_keys=True) + "\n")


def _token_user(authorization: str, cfg: config.Config) -> User | None:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    digest = token_hash(token.strip())
    for name, entry in load_tokens(cfg.tokens_file).items():
        if hmac.compare_digest(str(entry.get("sha256", "")), digest):
            return User(name=f"token:{name}", admin=bool(entry.get("admin")), via="token")
    return None


# --- the one decision ------------------------------------------------------------------------

def identify(headers: Mapping[str, str], peer: str | None, path: str, cfg: config.Config | None = None) -> User:
    """The caller of one request, or Refused. `headers`: lower-case names; `peer`: the direct
    client address (not X-Forwarded-For); `path`: the path inside the app (/api/... is the JSON API)."""
    cfg = cfg or config.load()
    if cfg.auth == "none":
        return User(LOCAL, admin=True)
    api = path == "/api" or path.startswith("/api/")
    bearer = headers.get("authorization", "")
    if bearer and api:
        user = _token_user(bearer, cfg)
        if user is None:
            raise Refused(401, "The API token is not valid (ask the administrator for a new one).")
        return user
    if cfg.auth == "token":
        if api:
            raise Refused(401, "This server needs an API token: send Authorization: Bearer <token>.")
        raise Refused(403, "This server answers its JSON API only (CART_AUTH=token); the page needs CART_AUTH=proxy.")
    name = headers.get(cfg.auth_user_header.lower(), "").strip()
    if not name or not is_trusted_proxy(peer, cfg):
        raise Refused(401, "Sign in through the hospital's single sign-on; this server does not accept "
                           "requests that bypass it.")
    groups = {g.strip() for g in headers.get(cfg.auth_groups_header.lower(), "").split(",") if g.strip()}
    return User(name=name[:200], admin=bool(groups & set(cfg.admin_groups)), via="proxy")


# --- command line ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assistant.auth", description="Manage the JSON API's bearer tokens.")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="make a token (printed once) for NAME")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="the token's caller is an admin")
    sub.add_parser("list", help="the token names")
    revoke = sub.add_parser("revoke", help="delete NAME's token")
    revoke.add_argument("name")
    args = parser.parse_args(argv)
    try:
        path = config.load().tokens_file
        tokens = load_tokens(path)
    except Refused as exc:
        print(exc.message, file=sys.stderr)
        return 2
    if args.command == "list":
        for name, entry in sorted(tokens.items()):
            print(f"{name}{' (admin)' if entry.get('admin') else ''}")
        return 0
    if args.command == "revoke":
        if tokens.pop(args.name, None) is None:
            print(f"No token named {args.name!r}.", file=sys.stderr)
            return 2
        save_tokens(path, tokens)
        print(f"Revoked {args.name!r}.")
        return 0
    token = secrets.token_urlsafe(32)
    tokens[args.name] = {"sha256": token_hash(token), "admin": bool(args.admin)}
    save_tokens(path, tokens)
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
