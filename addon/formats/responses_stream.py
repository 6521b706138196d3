"""A chat-completions stream as OpenAI Responses events, written as the chat chunks pass.

response.created and response.in_progress; one output item per run of reasoning (its summary events), text
(content_part and output_text events) or a tool call (function_call_arguments events; a `custom` tool's call,
whose chat form is {"input": ...}, as custom_tool_call_input events); then response.completed with the output
and usage. A stream that fails or stops short ends with response.failed and an `error` event. Each event has
its sequence_number. call_ids are the chat answer's tool-call ids (thought signatures packed in them come back).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from .chat_stream_in import ChatStreamReader, token_counts
from .client_formats import sse


def custom_input(arguments: str) -> str:
    """A custom tool's input from the chat call's arguments (litellm gives custom tools one string parameter)."""
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(parsed, dict) and len(parsed) == 1 and isinstance(next(iter(parsed.values())), str):
        return next(iter(parsed.values()))
    return arguments


class ResponsesStream(ChatStreamReader):
    def __init__(self, model: str, echo: dict[str, Any], custom_tools: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.model = model
        self.echo = echo  # request fields a Responses answer repeats (instructions, tools, metadata, ...)
        self.custom_tools = custom_tools
        self.id = f"resp_{time.time_ns():x}"
        self.created = int(time.time())
        self.sequence = 0
        self.started = False
        self.items: list[dict[str, Any]] = []
        self.open_item: tuple[str, int] | None = None  # ("reasoning" | "message" | "tool", tool index)

    def emit(self, kind: str, **data: Any) -> bytes:
        self.sequence += 1
        return sse(kind, {"type": kind, "sequence_number": self.sequence - 1, **data})

    def response(self, status: str, **more: Any) -> dict[str, Any]:
        body = {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.model,
            "output": self.items if status != "in_progress" else [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "incomplete_details": None,
            "error": None,
            "usage": None,
            **self.echo,
        }
        body.update(more)
        return body

    def start(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        return self.emit("response.created", response=self.response("in_progress")) + self.emit(
            "response.in_progress", response=self.response("in_progress")
        )

    def add(self, kind: tuple[str, int], item: dict[str, Any]) -> bytes:
        out = self.close()
        self.open_item = kind
        self.items.append(item)
        return out + self.emit("response.output_item.added", output_index=len(self.items) - 1, item=dict(item))

    @property
    def item(self) -> dict[str, Any]:
        return self.items[-1]

    def on_reasoning(self, text: str) -> bytes:
        out = b""
        if self.open_item != ("reasoning", 0):
            out = self.add(
                ("reasoning", 0), {"type": "reasoning", "id": f"rs_{self.id}_{len(self.items)}", "summary": []}
            )
            part = {"type": "summary_text", "text": ""}
            out += self.emit("response.reasoning_summary_part.added", **self.at(), summary_index=0, part=part)
            self.item["text"] = ""
        self.item["text"] += text
        return out + self.emit("response.reasoning_summary_text.delta", **self.at(), summary_index=0, delta=text)

    def on_text(self, text: str) -> bytes:
        out = b""
        if self.open_item != ("message", 0):
            item = {"type": "message", "id": f"msg_{self.id}_{len(self.items)}", "status": "in_progress"}
            out = self.add(("message", 0), {**item, "role": "assistant", "content": []})
            part = {"type": "output_text", "text": "", "annotations": []}
            out += self.emit("response.content_part.added", **self.at(), content_index=0, part=part)
            self.item["text"] = ""
        self.item["text"] += text
        return out + self.emit("response.output_text.delta", **self.at(), content_index=0, delta=text, logprobs=[])

    def on_tool(self, index: int, call_id: object, name: object, arguments: str) -> bytes:
        out = b""
        if self.open_item != ("tool", index):
            custom = name in self.custom_tools
            kind, prefix = ("custom_tool_call", "ctc") if custom else ("function_call", "fc")
            item = {"type": kind, "id": f"{prefix}_{self.id}_{len(self.items)}", "status": "in_progress"}
            item |= {"call_id": str(call_id or f"call_{index}"), "name": str(name or "")}
            out = self.add(("tool", index), {**item, **({"input": ""} if custom else {"arguments": ""})})
            self.item["args"] = ""
        self.item["args"] += arguments
        if arguments and self.item["type"] == "function_call":
            out += self.emit("response.function_call_arguments.delta", **self.at(), delta=arguments)
        return out

    def at(self) -> dict[str, Any]:
        return {"item_id": self.item["id"], "output_index": len(self.items) - 1}

    def close(self) -> bytes:
        """Finish the open item: its .done events and output_item.done."""
        if self.open_item is None:
            return b""
        self.open_item = None
        item, at = self.item, self.at()
        if item["type"] == "reasoning":
            text = item.pop("text")
            part = {"type": "summary_text", "text": text}
            out = self.emit("response.reasoning_summary_text.done", **at, summary_index=0, text=text)
            out += self.emit("response.reasoning_summary_part.done", **at, summary_index=0, part=part)
            item["summary"] = [part]
        elif item["type"] == "message":
            text = item.pop("text")
            part = {"type": "output_text", "text": text, "annotations": []}
            out = self.emit("response.output_text.done", **at, content_index=0, text=text, logprobs=[])
            out += self.emit("response.content_part.done", **at, content_index=0, part=part)
            item["content"], item["status"] = [part], "completed"
        elif item["type"] == "custom_tool_call":
            item["input"] = custom_input(item.pop("args"))
            out = self.emit("response.custom_tool_call_input.delta", **at, delta=item["input"])
            out += self.emit("response.custom_tool_call_input.done", **at, input=item["input"])
            item["status"] = "completed"
        else:
            item["arguments"] = item.pop("args")
            out = self.emit("response.function_call_arguments.done", **at, arguments=item["arguments"])
            item["status"] = "completed"
        return out + self.emit("response.output_item.done", output_index=at["output_index"], item=item)

    def usage_body(self) -> dict[str, Any]:
        prompt, completion, cached, reasoning = token_counts(self.usage)
        return {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": prompt + completion,
        }

    def complete(self) -> bytes:
        out = self.start() + self.close()
        if self.finish_reason == "length":
            final = self.response(
                "incomplete", incomplete_details={"reason": "max_output_tokens"}, usage=self.usage_body()
            )
            return out + self.emit("response.incomplete", response=final)
        final = self.response("completed", usage=self.usage_body())
        return out + self.emit("response.completed", response=final)

    def failed(self, message: str, status: int, code: str | None) -> bytes:
        out = self.start() + self.close()
        error = {"code": code or "server_error", "message": message}
        final = self.response("failed", error=error, usage=self.usage_body())
        out += self.emit("response.failed", response=final)
        return out + self.emit("error", code=code or "server_error", message=message, param=None)
