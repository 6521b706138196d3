"""Pieces the tests, the soak and the benchmark share; no pytest here, so scripts can import it too.

DIRECT                  a urllib opener that never goes through a proxy named by the environment
direct(request)         (status, headers, body) through it; an HTTP error status is an answer, not an exception
direct_json(request)    the JSON answer through it
READ_TOOL, WRITE_TOOL   opencode's read and write tools, as its requests offer them
zod_object(...)         a tool's parameters as opencode's zod-to-json-schema writes them
extra_provider(...)     add an openai-compatible provider to an opencode.json dict
configure_routing(...)  point an in-process Routing addon at an opencode.json written from a dict
"""

from __future__ import annotations

import email.message
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def direct(request: str | urllib.request.Request, timeout: float = 30) -> tuple[int, email.message.Message, bytes]:
    try:
        with DIRECT.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def direct_json(request: str | urllib.request.Request, timeout: float = 10) -> Any:
    with DIRECT.open(request, timeout=timeout) as response:
        return json.loads(response.read())


READ_TOOL = {
    "type": "function",
    "function": {
        "name": "read",
        "description": "Reads a file from the local filesystem.",
        "parameters": {
            "type": "object",
            "properties": {"filePath": {"type": "string"}, "offset": {"type": "number"}, "limit": {"type": "number"}},
            "required": ["filePath"],
        },
    },
}
WRITE_TOOL = {
    "type": "function",
    "function": {
        "name": "write",
        "description": "Writes a file to the local filesystem.",
        "parameters": {
            "type": "object",
            "properties": {"filePath": {"type": "string"}, "content": {"type": "string"}},
            "required": ["filePath", "content"],
        },
    },
}


DRAFT7 = "http://json-schema.org/draft-07/schema#"


def zod_object(properties: dict, required: list[str]) -> dict:
    """The shape opencode's zod-to-json-schema produces."""
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        "$schema": DRAFT7,
    }


def extra_provider(config: dict[str, Any], provider: str, name: str, base_url: str, models: dict[str, str]) -> None:
    """Add an openai-compatible provider to an opencode.json dict: models maps alias -> upstream id."""
    config["provider"][provider] = {
        "npm": "@ai-sdk/openai-compatible",
        "name": name,
        "options": {"baseURL": base_url, "apiKey": "k"},
        "models": {alias: {"id": upstream} for alias, upstream in models.items()},
    }


def configure_routing(tctx: Any, routing: Any, config: dict[str, Any], folder: Path) -> None:
    """tctx.configure(routing, ...) as the proxy starts it, with `config` as its opencode.json (written to folder)."""
    path = folder / "opencode.json"
    path.write_text(json.dumps(config))
    tctx.configure(
        routing,
        translate_config=str(path),
        translate_api_base="http://upstream.test/v1beta/openai/",
        listen_port=8000,
    )
