"""The session page: the proxy's session index as a small web page and as JSON, on the proxy's own port.

  GET /_proxy/sessions                  every session, the most recently active first, subagents under their parent
  GET /_proxy/sessions/<id>, ?id=<id>   one session's timeline of turns
  GET /_proxy/sessions.json             {"sessions": [{"id", "parent_id", "turns", ...}], "replica", ...}

Answered here, in the request hook before routing, so nothing of it goes upstream; it reads the session index
(Sessions.index, passed in), so it works under mitmdump as under mitmweb. A browser's own request for an icon
(/favicon.ico) is answered too, with 204 before any key is asked for: no failure, nothing upstream (the pages
name no icon, so a browser that reads them asks for none). With PROXY_API_KEY set it asks for the
key as the API does (`Authorization: Bearer KEY`); a browser opens `/_proxy/sessions?token=KEY` once and gets an
HttpOnly cookie (a value derived from the key, not the key) for the rest of its visit. The flow the page leaves
in mitmweb holds neither the token nor the cookie. Templates: ./templates (Jinja2, autoescaped).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import socket
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from mitmproxy import ctx, http

from ...config import keys
from ...formats import errors
from . import views
from .index import SessionIndex

logger = logging.getLogger(__name__)

PREFIX = "/_proxy/"
BROWSER_OWN = frozenset(("/favicon.ico",))  # what a browser asks for by itself when it opens a page
LIST, JSON = "/_proxy/sessions", "/_proxy/sessions.json"
COOKIE = "translation_proxy_page"
TEMPLATES = Path(__file__).parent / "templates"


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))
    for name in ("clock", "seconds", "milliseconds", "money", "number"):
        env.filters[name] = getattr(views, name)
    env.filters["url"] = lambda value: quote(str(value), safe="")
    return env


class SessionPage:
    def __init__(self, index: SessionIndex, instance: str = "") -> None:
        self.index, self.instance = index, instance
        self.proxy_key = os.environ.get("PROXY_API_KEY") or None
        self.cookie_value = (
            hmac.new(self.proxy_key.encode(), b"session page", hashlib.sha256).hexdigest() if self.proxy_key else ""
        )
        self.templates = environment()

    @property
    def replica(self) -> str:
        """This proxy, as a balancer names it: its listen address."""
        host = getattr(ctx.options, "listen_host", "") or socket.gethostname()
        return f"{host}:{getattr(ctx.options, 'listen_port', None) or os.environ.get('PROXY_PORT') or 8000}"

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        if flow.request.path.split("?", 1)[0] in BROWSER_OWN and flow.request.method in ("GET", "HEAD"):
            self.answered_here(flow)
            flow.response = http.Response.make(204, b"", {"cache-control": "max-age=86400"})
            return
        if not flow.request.path.startswith(PREFIX):
            return
        path, _, query_text = flow.request.path.partition("?")
        path = path.rstrip("/")
        query = {k: v[0] for k, v in parse_qs(query_text).items()}
        self.answered_here(flow)  # every /_proxy/ path is the proxy's own: none goes upstream
        if path != JSON and path != LIST and not path.startswith(LIST + "/"):
            return self.refuse(
                flow, 404, f"{path} is not a page of this proxy; the sessions are at {LIST}.", "not_found"
            )
        if flow.request.method not in ("GET", "HEAD"):
            return self.refuse(flow, 405, f"{path} takes GET.", "method_not_allowed")
        token = query.pop("token", None)
        if not self.authorized(flow, token):
            return self.refuse(
                flow,
                401,
                "Missing or wrong proxy key: send PROXY_API_KEY as the Bearer token, or open "
                f"{LIST}?token=<PROXY_API_KEY> once in a browser.",
                "invalid_api_key",
            )
        rest = f"?{urlencode(query)}" if query else ""
        flow.request.path = path + rest  # the flow keeps no token, no credentials
        for name in ("authorization", "cookie"):
            flow.request.headers.pop(name, None)
        if token is not None:  # a browser's first visit: the cookie, and the address without the token
            flow.response = http.Response.make(303, b"", {"location": path + rest})
            flow.response.headers["set-cookie"] = (
                f"{COOKIE}={self.cookie_value}; Path={LIST}; HttpOnly; SameSite=Strict"
            )
            return
        if path == JSON:
            return self.answer(flow, orjson.dumps(self.to_json()), "application/json")
        session_id = path[len(LIST) + 1 :] if path.startswith(LIST + "/") else query.get("id")
        if session_id:
            return self.session_page(flow, session_id)
        self.answer(flow, self.render("sessions.html", families=views.family_rows(self.index)))

    def authorized(self, flow: http.HTTPFlow, token: str | None) -> bool:
        if not self.proxy_key:
            return True
        sent = flow.request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if hmac.compare_digest(sent.encode(), self.proxy_key.encode()):
            return True
        if token is not None:
            return hmac.compare_digest(token.encode(), self.proxy_key.encode())
        cookie = flow.request.cookies.get(COOKIE, "")
        return hmac.compare_digest(cookie.encode(), self.cookie_value.encode())

    def to_json(self) -> dict:
        out = self.index.to_json()
        replica = self.replica
        for session in out["sessions"]:
            session["replica"] = replica
        return {**out, "replica": replica, "instance": self.instance}

    def session_page(self, flow: http.HTTPFlow, session_id: str) -> None:
        session = self.index.get(session_id)
        if session is None:
            return self.answer(flow, self.render("missing.html", session_id=session_id), status=404)
        subagents = views.children_of(self.index).get(session.id, [])
        turns, unplaced = views.turn_views(session, subagents)
        html = self.render(
            "session.html",
            session=session,
            parent=self.index.get(session.parent_id) if session.parent_id else None,
            turns=turns,
            unplaced=unplaced,
            web=self.mitmweb_address(),
        )
        self.answer(flow, html)

    @staticmethod
    def mitmweb_address() -> str | None:
        """mitmweb's address when mitmweb is the UI (its options exist only there), for links to flows."""
        if not hasattr(ctx.options, "web_port"):
            return None
        host = ctx.options.web_host or os.environ.get("WEB_HOST") or "127.0.0.1"
        return f"http://{host}:{ctx.options.web_port}"

    def render(self, template: str, **values) -> bytes:
        values.update(index=self.index, replica=self.replica, list_url=LIST, json_url=JSON)
        return self.templates.get_template(template).render(**values).encode()

    def answer(self, flow: http.HTTPFlow, body: bytes, kind: str = "text/html; charset=utf-8", status=200) -> None:
        body = self.without_keys(body)
        flow.response = http.Response.make(status, body, {"content-type": kind, "cache-control": "no-store"})

    @staticmethod
    def without_keys(body: bytes) -> bytes:
        """Last line of defence: a key that reached a session's text (an upstream's error message) goes masked."""
        for name in ("GEMINI_API_KEY", "PROXY_API_KEY"):
            key = os.environ.get(name) or ""
            if len(key) >= 8 and key.encode() in body:
                body = body.replace(key.encode(), keys.mask_key(key).encode())
        return body

    def refuse(self, flow: http.HTTPFlow, status: int, message: str, code: str) -> None:
        flow.response = errors.error_response(message, status, code)

    @staticmethod
    def answered_here(flow: http.HTTPFlow) -> None:
        """The flow names the proxy's own address, not the reverse-proxy target (as routing's local answers do)."""
        host, port = flow.client_conn.sockname[:2]
        if host:
            flow.request.scheme, flow.request.host, flow.request.port = "http", host, port
