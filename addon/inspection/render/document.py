"""What every LLM contentview is drawn with: the flow's record, titled sections joined by a rule, a body as indented
JSON or text, text clipped to fit. A view subclasses `View`: `render_priority` says which flows it claims (`DEFAULT`,
`OVER_CHAT`; by default none: it is picked by hand), `sections` what it shows of one (None: not this view's data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from mitmproxy import http
from mitmproxy.contentviews import Contentview, Metadata

from ...formats import kept_body
from ...formats.exchange import Exchange

RULE = "─" * 40
DEFAULT = 2.0  # render_priority above mitmproxy's JSON view: mitmweb shows this view by itself
OVER_CHAT = 3.0  # above the LLM chat view, for the flows a more particular view shows better
NOT_MINE = -1.0  # mitmproxy's "not mine": the view is only picked by hand from the view menu
TEXT_LIMIT, HEAD, TAIL = 2000, 1200, 600  # text longer than TEXT_LIMIT keeps HEAD + TAIL characters


@dataclass(slots=True)
class Section:
    """Part of a view: a title line (as written; None for a section that starts with its own heading), its lines."""

    title: str | None = None
    lines: list[str] = field(default_factory=list)


def join(*sections: Section | None) -> str:
    """The sections in order, a blank line and a rule between them; None (nothing to show) is left out."""
    out: list[str] = []
    for section in filter(None, sections):
        out += ["", RULE] if out else []
        out += [] if section.title is None else [section.title]
        out += section.lines
    return "\n".join(out)


class View(Contentview):
    """An LLM contentview: the sections it shows of a flow's message, or None when the data is not its kind."""

    syntax_highlight = "none"
    not_mine = "Not an LLM exchange."  # the ValueError's sentence when `sections` gives None

    def prettify(self, data: bytes, metadata: Metadata) -> str:
        sections = self.sections(data, metadata, record(metadata))
        if sections is None:
            raise ValueError(self.not_mine)
        return join(*sections)

    def sections(self, data: bytes, metadata: Metadata, ex: Exchange) -> list[Section | None] | None:
        raise NotImplementedError

    def render_priority(self, data: bytes, metadata: Metadata) -> float:
        return NOT_MINE  # picked by hand, unless the view claims flows


def record(metadata: Metadata) -> Exchange:
    """The flow's exchange record; an empty one for data without a flow of this proxy (nothing is created)."""
    flow = metadata.flow
    return (Exchange.find(flow) if flow is not None else None) or Exchange()


def kept_request(metadata: Metadata, ex: Exchange) -> dict | None:
    """The client's request as the record keeps it (request/client_request.py), its body whole again when it was
    kept as a patch of the forwarded one (formats/kept_body.py); as stored when that request was edited since."""
    flow = metadata.flow
    if ex.client_request is None or not isinstance(flow, http.HTTPFlow):
        return None
    return kept_body.whole(ex.client_request, flow.request.raw_content) or ex.client_request


def loads(body: bytes | str) -> Any:
    """The JSON value of a body, or None when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def pretty(body: bytes) -> str:
    """A body as indented JSON, or as text when it is not JSON."""
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")


def clip(value: Any, limit: int = 200) -> str:
    """A value on one line of at most `limit` characters: a string as it is, anything else as JSON."""
    text = (value if isinstance(value, str) else orjson.dumps(value, default=repr).decode()).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shorten(text: str) -> str:
    """Long text with its middle cut out, saying how much went."""
    if len(text) <= TEXT_LIMIT:
        return text
    return f"{text[:HEAD]}\n... ({len(text) - HEAD - TAIL} chars) ...\n{text[-TAIL:]}"


def indent(text: str, n: int) -> list[str]:
    return [" " * n + line for line in text.split("\n")] if text else []
