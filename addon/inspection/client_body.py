"""The body of the request as the client sent it, from what a flow keeps of it.

request/client_request.py keeps the client's request beside the rewritten one (`client_request`: method, path,
headers, body, `truncated` when the body was cut). The views and the tool check read the offered tools from it,
since a native flow's request is Gemini's body. Flows saved by the first native-path version kept the body itself
(bytes) under the same key; both read the same.
"""

from __future__ import annotations


def client_body(llm: object) -> bytes | None:
    """The client's request body kept in flow.metadata["llm"], or None when none was kept."""
    kept = llm.get("client_request") if isinstance(llm, dict) else None
    if isinstance(kept, dict):
        kept = kept.get("body")
    if isinstance(kept, str):
        kept = kept.encode()
    return kept if isinstance(kept, bytes) and kept else None


def client_body_cut(llm: object) -> bool:
    """True when the kept body was cut at its cap."""
    kept = llm.get("client_request") if isinstance(llm, dict) else None
    if isinstance(kept, dict):
        return bool(kept.get("truncated"))
    return bool(isinstance(llm, dict) and llm.get("client_request_truncated"))
