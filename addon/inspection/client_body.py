"""The body of the request as the client sent it, from what a flow keeps of it.

request/client_request.py keeps the client's request beside the rewritten one (the exchange record's
`client_request`: method, path, headers, body, `truncated` when the body was cut). The views and the tool check read
the offered tools from it, since a native flow's request is Gemini's body. Flows saved by the first native-path
version kept the body itself (bytes) under the same key; the record keeps that in its `extra` (the type differs),
and both read the same. A body kept as a patch of the forwarded one (formats/kept_body.py: the OpenAI-compatible
path, where only `model` and repaired fields differ) reads as None here: callers read the flow's request, which
holds the same messages and tools.
"""

from __future__ import annotations

from ..formats import kept_body
from ..formats.exchange import Exchange


def client_body(ex: Exchange | None) -> bytes | None:
    """The client's request body kept in the record, or None when none was kept."""
    if ex is None:
        return None
    kept = ex.client_request if ex.client_request is not None else ex.extra.get("client_request")
    if isinstance(kept, dict):
        if kept_body.encoded(kept):
            # Kept as it came (replay sends it again as it came): compressed. Decoding it here would undo the
            # request side's bounded decoding (a bomb); callers fall back to the flow's request, which routing
            # decoded for the OpenAI-compatible path.
            return None
        kept = kept.get("body")
    if isinstance(kept, str):
        kept = kept.encode()
    return kept if isinstance(kept, bytes) and kept else None


def client_body_cut(ex: Exchange | None) -> bool:
    """True when the kept body was cut at its cap."""
    if ex is None:
        return False
    if ex.client_request is not None:
        return bool(ex.client_request.get("truncated"))
    return bool(ex.extra.get("client_request_truncated"))
