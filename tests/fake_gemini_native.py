"""A STRICT local fake of Gemini's native API (generateContent / streamGenerateContent?alt=sse) and of Vertex AI,
with a fake OAuth token endpoint, for end-to-end tests of the native path.

    fake = FakeNativeGemini().start()       # fake.gemini_base, fake.vertex_base, fake.token_uri, fake.key
    fake.script(Reply(thought=..., text=..., calls=[...], finish="STOP", usage={...}))   # next answers, in order
    fake.requests / fake.tokens_issued; fake.stop()

Strict like the real API: a body with OpenAI's fields (`messages`, `model`) or any unknown field is a 400 in
Google's error shape; so is a Gemini 3 request whose history has a model turn with function calls but no thought
signature on the first call (the real API's "missing thought signature" error). The key goes in
`x-goog-api-key` (Gemini API) or an OAuth Bearer token this fake issued (Vertex AI). Streams come as the native
API sends them: `data: {...}\\r\\n\\r\\n`, thoughts first, each function call whole in one event, usage and the
finish reason in the last.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.served_app import ServedApp

KEY = "AIzaFAKE-native-key-0123456789abcdef"
BYPASS = "skip_thought_signature_validator"
TOP_LEVEL = {
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "cachedContent",
    "labels",
    "serviceTier",
}
PART = {
    "text",
    "thought",
    "thoughtSignature",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "videoMetadata",
    "mediaResolution",
}
GENERATION = {
    "temperature",
    "topP",
    "topK",
    "candidateCount",
    "maxOutputTokens",
    "stopSequences",
    "presencePenalty",
    "frequencyPenalty",
    "seed",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseLogprobs",
    "logprobs",
    "thinkingConfig",
    "responseModalities",
    "mediaResolution",
    "speechConfig",
}
THINKING = {"includeThoughts", "thinkingBudget", "thinkingLevel"}


def camel(name: str) -> str:
    """The proto JSON mapping accepts snake_case and lowerCamelCase field names alike."""
    return re.sub(r"_([a-z])", lambda m: m[1].upper(), name)


class Rejected(Exception):
    def __init__(self, status: int, message: str, reason: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


@dataclass
class Reply:
    """One scripted answer. calls: [(name, args)]; usage: usageMetadata fields."""

    text: str = "Hello from native Gemini."
    thought: str | None = "Thinking it over."
    calls: list[tuple[str, dict]] = field(default_factory=list)
    finish: str = "STOP"
    usage: dict[str, int] = field(
        default_factory=lambda: {
            "promptTokenCount": 120,
            "candidatesTokenCount": 12,
            "thoughtsTokenCount": 30,
            "cachedContentTokenCount": 100,
            "totalTokenCount": 162,
        }
    )


def _check_keys(obj: Any, allowed: set[str], where: str) -> dict:
    if not isinstance(obj, dict):
        raise Rejected(400, f"Invalid value at '{where}': expected an object.")
    for key in obj:
        if camel(key) not in allowed:
            raise Rejected(
                400, f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
            )
    return {camel(k): v for k, v in obj.items()}


def check_body(body: Any, model: str, signatures: set[str]) -> dict:
    """The body, normalized to camelCase; Rejected as the real API would reject it."""
    body = _check_keys(body, TOP_LEVEL, "request")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise Rejected(400, "* GenerateContentRequest.contents: contents is not specified")
    gemini3 = model.startswith("gemini-3")
    for i, content in enumerate(contents):
        content = _check_keys(content, {"role", "parts"}, f"contents[{i}]")
        if content.get("role") not in ("user", "model"):
            raise Rejected(400, f"Please use a valid role: user, model. (contents[{i}].role={content.get('role')!r})")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise Rejected(400, f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
        parts = [_check_keys(p, PART, f"contents[{i}].parts") for p in parts]
        calls = [p for p in parts if "functionCall" in p]
        if gemini3 and content["role"] == "model" and calls:
            signature = calls[0].get("thoughtSignature")
            known = signatures | {BYPASS, base64.b64encode(BYPASS.encode()).decode()}
            if signature not in known:
                raise Rejected(
                    400,
                    f"Function call is missing a thought_signature in functionCall parts. (contents[{i}].parts[0])",
                )
    config = _check_keys(body.get("generationConfig") or {}, GENERATION, "generation_config")
    thinking = _check_keys(config.get("thinkingConfig") or {}, THINKING, "generation_config.thinking_config")
    if "thinkingLevel" in thinking and not gemini3:
        raise Rejected(400, "Thinking level is not supported for this model.")
    if "thinkingLevel" in thinking and "thinkingBudget" in thinking:
        raise Rejected(400, "You can only set thinking_level or thinking_budget, not both.")
    return body


class FakeNativeGemini(ServedApp):
    def __init__(self, key: str = KEY) -> None:
        self.key = key
        self.port = 0
        self.requests: list[dict[str, Any]] = []
        self.replies: list[Reply] = []
        self.signatures: set[str] = set()
        self.tokens_issued: list[str] = []
        self.token_requests: list[dict[str, str]] = []
        self.public_key: Any = None  # set by a test: the service account's public key, to check JWT assertions

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gemini_base(self) -> str:
        return self.root_url + "/v1beta"

    @property
    def vertex_base(self) -> str:
        return self.root_url + "/v1/projects/fake-project/locations/us-central1/publishers/google"

    @property
    def token_uri(self) -> str:
        return self.root_url + "/token"

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def reset(self) -> FakeNativeGemini:
        self.requests.clear()
        self.replies.clear()
        return self

    # --- handlers ---

    async def generate(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        model, _, method = request.match_info["call"].partition(":")
        record = {"path": request.path, "query": request.query_string, "headers": dict(request.headers)}
        record.update(model=model, method=method, raw=raw)
        self.requests.append(record)
        try:
            self._authorize(request)
            if method not in ("generateContent", "streamGenerateContent"):
                raise Rejected(404, f"Method {method} not found.", "NOT_FOUND")
            if method == "streamGenerateContent" and request.query.get("alt") != "sse":
                raise Rejected(400, "This fake streams only with ?alt=sse.")
            try:
                body = json.loads(raw)
            except ValueError:
                raise Rejected(400, "Invalid JSON payload received.") from None
            record["body"] = check_body(body, model, self.signatures)
        except Rejected as e:
            error = {"error": {"code": e.status, "message": str(e), "status": e.reason}}
            return web.json_response(error, status=e.status)
        reply = self.replies.pop(0) if self.replies else Reply()
        events = self._events(reply, model)
        if method == "generateContent":
            return web.json_response(self._merge(events))
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for event in events:
            await response.write(b"data: " + json.dumps(event).encode() + b"\r\n\r\n")
            await asyncio.sleep(0.005)
        await response.write_eof()
        return response

    def _authorize(self, request: web.Request) -> None:
        if request.path.startswith("/v1/projects/"):
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if token not in self.tokens_issued:
                raise Rejected(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
        elif request.headers.get("x-goog-api-key") != self.key or "authorization" in request.headers:
            raise Rejected(400, "API key not valid. Please pass a valid API key.")

    def _events(self, reply: Reply, model: str) -> list[dict]:
        parts: list[dict] = []
        if reply.thought:
            parts.append({"text": reply.thought, "thought": True})
        if reply.text:
            middle = len(reply.text) // 2
            parts += [{"text": reply.text[:middle]}, {"text": reply.text[middle:]}]
        for i, (name, args) in enumerate(reply.calls):
            part: dict = {"functionCall": {"name": name, "args": args}}
            if i == 0:
                signature = base64.b64encode(f"sig-{len(self.signatures)}-{time.time()}".encode()).decode()
                self.signatures.add(signature)
                part["thoughtSignature"] = signature
            parts.append(part)
        events = []
        for i, part in enumerate(parts or [None]):  # a failed finish comes as a candidate without content
            candidate: dict = {"content": {"role": "model", "parts": [part]}, "index": 0} if part else {"index": 0}
            event = {"candidates": [candidate], "modelVersion": model, "responseId": "fake-response"}
            event["usageMetadata"] = {"promptTokenCount": reply.usage.get("promptTokenCount", 0)}
            if i == max(len(parts), 1) - 1:
                candidate["finishReason"] = reply.finish
                event["usageMetadata"] = dict(reply.usage)
            events.append(event)
        return events

    @staticmethod
    def _merge(events: list[dict]) -> dict:
        parts = [p for e in events for p in e["candidates"][0].get("content", {}).get("parts", [])]
        merged = dict(events[-1])
        candidate = {**events[-1]["candidates"][0], "content": {"role": "model", "parts": parts}}
        merged["candidates"] = [candidate if parts else events[-1]["candidates"][0]]
        return merged

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_requests.append({k: str(v) for k, v in form.items()})
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or not self._valid_jwt(
            str(form.get("assertion", ""))
        ):
            return web.json_response({"error": "invalid_grant"}, status=400)
        token = f"ya29.fake-{len(self.tokens_issued)}-{time.time_ns()}"
        self.tokens_issued.append(token)
        return web.json_response({"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    def _valid_jwt(self, assertion: str) -> bool:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            head, claims, signature = assertion.split(".")
            pad = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))  # noqa: E731
            if self.public_key is not None:
                self.public_key.verify(pad(signature), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
            claims_ = json.loads(pad(claims))  # google-auth names Google's token endpoint as the audience
            audience_ok = claims_.get("aud") in (self.token_uri, "https://oauth2.googleapis.com/token")
            return audience_ok and "cloud-platform" in claims_.get("scope", "") and claims_.get("exp", 0) > time.time()
        except Exception:
            return False

    # --- serving ---

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1beta/models/{call}", self.generate)
        app.router.add_post(
            "/v1/projects/{project}/locations/{location}/publishers/google/models/{call}", self.generate
        )
        app.router.add_post("/token", self.token)
        return app
