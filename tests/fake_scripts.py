"""What the fake Gemini answers, without the server: request checks, script markers, answers.

The last user message's text is the script. Markers (any number, anywhere in the text):
  [tool:NAME {json args}]  call tool NAME (repeat the marker for parallel calls); once the last message is a tool
                           result, answer "Tool said: <each result>".
  [steps:N]                one call of the first [tool:...] per step until N tool results are present.
  [empty-ids]              tool calls get id "" (as Gemini sometimes sends).
  [error:CODE] [error:CODE:TIMES]  a list-wrapped error (429 carries Retry-After: 7); with TIMES, only the first
                           TIMES requests with this text fail.
  [empty] [empty:TIMES]    an empty answer: no text, no tool calls, finish_reason "stop" (what Gemini's endpoint
                           sends for MALFORMED_FUNCTION_CALL); with TIMES, only the first TIMES requests with this text.
  [cached:N]               usage reports N of the prompt tokens as cached (prompt_tokens_details.cached_tokens).
  [cut] [stall:S] [slow:S] [chunks:N:MS] [big:N]   transport behaviour, applied by the server (see fake_gemini).
  [linger:S]               a stream ends its body S seconds after [DONE] (a client that closes at [DONE] leaves
                           before the upstream's end, as it may with a real upstream).
Without markers the answer is "Hello from fake Gemini. You said: <text>".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

DEFAULT_KEY = "test-gemini-key-1234567890"
BYPASS_SIGNATURE = "skip_thought_signature_validator"
ACCEPTED_FIELDS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "n",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "tools",
        "tool_choice",
        "response_format",
        "reasoning_effort",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logprobs",
        "top_logprobs",
        "extra_body",
        "modalities",
        "audio",
    }
)
# The keys of Gemini's Schema message: anything else inside tool parameters is an unknown name.
SCHEMA_FIELDS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "items",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "minimum",
        "maximum",
    }
)
SCHEMA_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object"})
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
ERROR_MESSAGES = {
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}
SIGNATURE_MISSING = (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work "
    "correctly, and missing thought_signature may lead to degraded model performance. Additional data, function "
    "call `default_api:{name}` , position {position}. Please refer to "
    "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)


class FakeError(Exception):
    """An error answer: Gemini wraps the error object in a list on its OpenAI endpoint."""

    def __init__(self, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.headers = code, message, headers or {}

    def body(self) -> list[dict[str, Any]]:
        error = {"code": self.code, "message": self.message, "status": STATUS_NAMES.get(self.code, "UNKNOWN")}
        if self.code in (400, 401) and "API key" in self.message:
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ]
        return [{"error": error}]


class Signer:
    """Opaque thought signatures only this fake can validate: base64 of a nonce, filler and their HMAC.

    About 310 characters with "+", "/" and "=" in them, like real ones (which run to hundreds or thousands).
    """

    def __init__(self, secret: bytes = b"fake-gemini-secret") -> None:
        self.secret = secret

    def sign(self, seed: str) -> str:
        content = hashlib.sha512(seed.encode()).digest() * 3
        return base64.b64encode(b"fakesig" + content + self._mac(content)).decode()

    def valid(self, signature: object) -> bool:
        if signature == BYPASS_SIGNATURE:
            return True
        try:
            raw = base64.b64decode(str(signature), validate=True)
        except ValueError:
            return False
        content, mac = raw[7:-32], raw[-32:]
        return raw.startswith(b"fakesig") and hmac.compare_digest(mac, self._mac(content))

    def _mac(self, content: bytes) -> bytes:
        return hmac.new(self.secret, content, hashlib.sha256).digest()


@dataclass
class Script:
    text: str
    tools: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    steps: int = 0
    empty_ids: bool = False
    error: tuple[int, int] | None = None  # (code, times; 0 = always)
    cut: bool = False
    stall: float = 0.0
    slow: float = 0.0
    chunks: tuple[int, int] | None = None  # (count, milliseconds apart)
    big: int = 0
    empty: int | None = None  # answer empty (the first TIMES requests with this text; 0 = always)
    cached: int = 0
    linger: float = 0.0  # seconds between a stream's [DONE] and the end of its body


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str
    signature: str | None = None

    def to_json(self) -> dict[str, Any]:
        call: dict[str, Any] = {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }
        if self.signature:
            call["extra_content"] = {"google": {"thought_signature": self.signature}}
        return call


@dataclass
class Answer:
    pieces: list[str]  # the text, as it is streamed
    tool_calls: list[ToolCall]
    cached_tokens: int = 0

    @property
    def text(self) -> str:
        return "".join(self.pieces)


_NUMBER = r"(\d+(?:\.\d+)?)"


def parse_script(text: str) -> Script:
    """Read the markers out of a user message's text."""
    script = Script(text=text, tools=_parse_tools(text), empty_ids="[empty-ids]" in text, cut="[cut]" in text)
    if m := re.search(r"\[steps:(\d+)\]", text):
        script.steps = int(m[1])
    if m := re.search(r"\[error:(\d{3})(?::(\d+))?\]", text):
        script.error = (int(m[1]), int(m[2] or 0))
    if m := re.search(rf"\[stall:{_NUMBER}\]", text):
        script.stall = float(m[1])
    if m := re.search(rf"\[slow:{_NUMBER}\]", text):
        script.slow = float(m[1])
    if m := re.search(r"\[chunks:(\d+):(\d+)\]", text):
        script.chunks = (int(m[1]), int(m[2]))
    if m := re.search(r"\[big:(\d+)\]", text):
        script.big = int(m[1])
    if m := re.search(r"\[empty(?::(\d+))?\]", text):
        script.empty = int(m[1] or 0)
    if m := re.search(r"\[cached:(\d+)\]", text):
        script.cached = int(m[1])
    if m := re.search(rf"\[linger:{_NUMBER}\]", text):
        script.linger = float(m[1])
    return script


def _parse_tools(text: str) -> list[tuple[str, dict[str, Any]]]:
    tools, decoder = [], json.JSONDecoder()
    for m in re.finditer(r"\[tool:([\w.-]+)\s*", text):
        args: dict[str, Any] = {}
        if text[m.end() : m.end() + 1] == "{":
            try:
                args, _ = decoder.raw_decode(text, m.end())
            except ValueError as e:
                raise FakeError(
                    400, f"fake script: bad JSON arguments in {text[m.start() : m.start() + 80]!r}: {e}"
                ) from e
        tools.append((m[1], args))
    return tools


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return content if isinstance(content, str) else ""


def check_request(body: object, signer: Signer, signature_scope: str = "all") -> dict[str, Any]:
    """Reject what Gemini rejects: unknown fields, models, schema keywords, broken tool-call history."""
    if not isinstance(body, dict):
        raise FakeError(400, "Invalid JSON payload received. Expected an object.")
    for name in body:
        if name not in ACCEPTED_FIELDS:
            raise FakeError(400, f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.')
    model = str(body.get("model", ""))
    if not model.removeprefix("models/").startswith("gemini-"):
        raise FakeError(
            404,
            f"models/{model} is not found for API version v1main, or is not supported for "
            "generateContent. Call ListModels to see the list of available models and their "
            "supported methods.",
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise FakeError(400, "* GenerateContentRequest.contents: contents is not specified\n")
    for i, tool in enumerate(body.get("tools") or []):
        params = (tool.get("function") or {}).get("parameters") if isinstance(tool, dict) else None
        if params is not None:
            _check_schema(params, f"tools[{i}].function_declarations[0].parameters")
    _check_history(body["messages"], model, signer, signature_scope)
    return body


def _check_schema(schema: object, path: str) -> None:
    if not isinstance(schema, dict):
        raise FakeError(400, f"Invalid JSON payload received. Expected an object at '{path}'.")
    for key in schema:
        if key not in SCHEMA_FIELDS:
            raise FakeError(
                400, f"Invalid JSON payload received. Unknown name \"{key}\" at '{path}': Cannot find field."
            )
    kind = schema.get("type")
    if kind is not None and (not isinstance(kind, str) or kind.lower() not in SCHEMA_TYPES):
        raise FakeError(
            400,
            f"Invalid JSON payload received. Invalid value at '{path}.type' "
            f"(type.googleapis.com/google.ai.generativelanguage.v1beta.Type), {json.dumps(kind)}",
        )
    for n, sub in enumerate((schema.get("properties") or {}).values()):
        _check_schema(sub, f"{path}.properties[{n}].value")
    if "items" in schema:
        _check_schema(schema["items"], f"{path}.items")
    for n, sub in enumerate(schema.get("anyOf") or []):
        _check_schema(sub, f"{path}.any_of[{n}]")


def _check_history(messages: list[Any], model: str, signer: Signer, scope: str) -> None:
    enforce = model.removeprefix("models/").startswith("gemini-3")
    current_turn = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=0)
    call_ids: set[str] = set()
    for i, message in enumerate(messages):
        position = i + 1
        calls = (message.get("tool_calls") or []) if message.get("role") == "assistant" else []
        if calls and enforce and (scope == "all" or i > current_turn):
            first = calls[0]
            signature = ((first.get("extra_content") or {}).get("google") or {}).get("thought_signature")
            if signature is None:
                name = (first.get("function") or {}).get("name", "")
                raise FakeError(400, SIGNATURE_MISSING.format(name=name, position=position))
            if not signer.valid(signature):
                raise FakeError(400, "Unable to submit request because Thought signature is not valid.")
        call_ids.update(str(c.get("id", "")) for c in calls)
        if message.get("role") == "tool" and str(message.get("tool_call_id", "")) not in call_ids:
            raise FakeError(
                400,
                f"Invalid tool message at position {position}: tool_call_id "
                f"{message.get('tool_call_id')!r} matches no tool call of an earlier assistant "
                "message.",
            )


def answer(body: dict[str, Any], script: Script, signer: Signer) -> Answer:
    """The scripted answer to a checked request."""
    result = _answer(body, script, signer)
    result.cached_tokens = script.cached
    return result


def _answer(body: dict[str, Any], script: Script, signer: Signer) -> Answer:
    messages = body["messages"]
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    results = [message_text(m) for m in messages[last_user + 1 :] if m.get("role") == "tool"]
    done = messages[-1].get("role") == "tool" and len(results) >= script.steps
    if script.tools and done:
        return Answer(_split("Tool said: " + " | ".join(results)), [])
    if script.tools and body.get("tools"):  # a model calls only tools it is offered (none in title requests)
        wanted = script.tools[:1] if script.steps else script.tools
        return Answer([], _calls(wanted, messages, body, script, signer))
    if script.chunks:
        return Answer([f"chunk {i} " for i in range(script.chunks[0])], [])
    if script.big:
        text = ("0123456789" * (script.big // 10 + 1))[: script.big]
        return Answer([text[i : i + 1000] for i in range(0, len(text), 1000)], [])
    return Answer(_split(f"Hello from fake Gemini. You said: {script.text[:500]}"), [])


def _calls(
    wanted: list[tuple[str, dict[str, Any]]], messages: list[Any], body: dict[str, Any], script: Script, signer: Signer
) -> list[ToolCall]:
    earlier = sum(len(m.get("tool_calls") or []) for m in messages if m.get("role") == "assistant")
    signed = str(body["model"]).removeprefix("models/").startswith("gemini-3")
    calls = []
    for n, (name, args) in enumerate(wanted):
        call_id = "" if script.empty_ids else f"call_{earlier + n + 1}"
        signature = signer.sign(f"{body['model']}|{earlier + n}|{name}|{script.text}") if signed and n == 0 else None
        calls.append(ToolCall(call_id, name, json.dumps(args), signature))
    return calls


def _split(text: str, size: int = 16) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def usage(body: dict[str, Any], result: Answer) -> dict[str, Any]:
    prompt = len(json.dumps(body.get("messages", []))) // 4 + 1 + result.cached_tokens
    completion = len(result.text) // 4 + sum(len(c.arguments) // 4 + 1 for c in result.tool_calls) + 1
    counts: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if result.cached_tokens:
        counts["prompt_tokens_details"] = {"cached_tokens": result.cached_tokens}
    return counts


def completion(body: dict[str, Any], result: Answer, response_id: str) -> dict[str, Any]:
    """The unstreamed answer: finish_reason "tool_calls" when calls were made."""
    message: dict[str, Any] = {"role": "assistant", "content": result.text or None}
    if result.tool_calls:
        message["tool_calls"] = [c.to_json() for c in result.tool_calls]
    choice = {"index": 0, "message": message, "finish_reason": "tool_calls" if result.tool_calls else "stop"}
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [choice],
        "usage": usage(body, result),
    }


def stream_chunks(body: dict[str, Any], result: Answer, response_id: str) -> list[dict[str, Any]]:
    """Gemini's stream: role in every delta, each tool call whole and without index, finish_reason "stop"."""
    base = {"id": response_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": body["model"]}
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": p} for p in result.pieces if p]
    deltas += [{"role": "assistant", "tool_calls": [c.to_json()]} for c in result.tool_calls]
    deltas = deltas or [{"role": "assistant", "content": ""}]
    chunks = [{**base, "choices": [{"index": 0, "delta": d}]} for d in deltas]
    chunks[-1]["choices"][0]["finish_reason"] = "stop"
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks[-1]["usage"] = usage(body, result)
    return chunks
