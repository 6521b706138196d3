"""litellm's translations between client formats and the chat exchange: the bridge's second half.

The proxy's pipeline speaks one format, OpenAI chat completions. Clients that speak Anthropic Messages or OpenAI
Responses are translated at the edges with litellm's own pure functions (no HTTP, no stream wrapper):

- Anthropic Messages: `LiteLLMAnthropicMessagesAdapter.translate_anthropic_to_openai` (request) and
  `translate_openai_response_to_anthropic` (a whole answer);
- OpenAI Responses: `LiteLLMCompletionResponsesConfig.transform_responses_api_request_to_chat_completion_request`
  (request) and `transform_chat_completion_response_to_responses_api_response` (a whole answer);
- `token_counter` for Anthropic's count_tokens.

Like litellm_bridge, each function waits for the background import (callers on the event loop check
`litellm_bridge.ready()` first). litellm raises its own exception types; they become ValueError with its message.
tests/test_litellm_formats.py checks each piece against the installed litellm.
"""

from __future__ import annotations

from typing import Any

from . import litellm_bridge


def _adapter() -> Any:
    return litellm_bridge.anthropic_messages_adapter()


def _responses_config() -> Any:
    return litellm_bridge.responses_completion_config()


def anthropic_to_chat(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """An Anthropic Messages request as a chat request, and the map of shortened tool names to the client's."""
    try:
        chat, names = _adapter().translate_anthropic_to_openai(body, drop_params=True)
    except Exception as e:  # litellm raises its own types for requests it cannot read
        raise ValueError(litellm_bridge._message(e)) from None
    return dict(chat), dict(names or {})


def chat_to_anthropic(completion: dict[str, Any], tool_names: dict[str, str] | None = None) -> dict[str, Any]:
    """A whole chat.completion as an Anthropic Messages answer (tool_use ids exactly as the chat answer's)."""
    litellm = litellm_bridge._litellm()
    try:
        answer = _adapter().translate_openai_response_to_anthropic(litellm.ModelResponse(**completion), tool_names)
    except Exception as e:
        raise ValueError(litellm_bridge._message(e)) from None
    answer = dict(answer)
    # litellm cuts a `__thought__` signature off tool-call ids; the client must echo it back (thought_signatures).
    ids = [call.get("id") for choice in completion.get("choices") or () for call in _calls(choice)]
    uses = [block for block in answer.get("content") or () if isinstance(block, dict) and block["type"] == "tool_use"]
    for block, call_id in zip(uses, ids, strict=False):
        if isinstance(call_id, str):
            block["id"] = call_id
    return answer


def _calls(choice: Any) -> list[dict[str, Any]]:
    message = choice.get("message") if isinstance(choice, dict) else None
    calls = message.get("tool_calls") if isinstance(message, dict) else None
    return [call for call in calls or () if isinstance(call, dict)]


def responses_to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI Responses request as a chat request (litellm's own `custom_llm_provider` key left out)."""
    params = {name: value for name, value in body.items() if name not in ("model", "input")}
    try:
        chat = _responses_config().transform_responses_api_request_to_chat_completion_request(
            model=body["model"], input=body.get("input") or "", responses_api_request=params, stream=body.get("stream")
        )
    except Exception as e:
        raise ValueError(litellm_bridge._message(e)) from None
    chat.pop("custom_llm_provider", None)
    return dict(chat)


def chat_to_responses(request: dict[str, Any], completion: dict[str, Any]) -> dict[str, Any]:
    """A whole chat.completion as an OpenAI Responses answer; `request` is the client's Responses request."""
    params = {name: value for name, value in request.items() if name not in ("model", "input")}
    try:
        answer = _responses_config().transform_chat_completion_response_to_responses_api_response(
            request_input=request.get("input") or "", responses_api_request=params, chat_completion_response=completion
        )
    except Exception as e:
        raise ValueError(litellm_bridge._message(e)) from None
    body = answer.model_dump(mode="json", exclude_none=True)
    for item in body.get("output") or ():
        if isinstance(item, dict) and item.get("type") == "reasoning":
            _reasoning_summary(item)
    return body


def _reasoning_summary(item: dict[str, Any]) -> None:
    """litellm puts the thoughts in a reasoning item's `content` as output_text; Responses clients (Codex, the AI
    SDK) read its `summary` (required there): the text goes into both, with the types the Responses API uses."""
    texts = [part.get("text") or "" for part in item.get("content") or () if isinstance(part, dict)]
    item.setdefault("summary", [{"type": "summary_text", "text": "".join(texts)}] if texts else [])
    item["content"] = [{"type": "reasoning_text", "text": text} for text in texts]
    item.pop("role", None)


def count_tokens(model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int:
    """litellm's token count of a chat request's messages and tools for `model` (a litellm model name)."""
    try:
        return int(_litellm_token_counter()(model=model, messages=messages, tools=tools or None))
    except Exception as e:
        raise ValueError(litellm_bridge._message(e)) from None


def _litellm_token_counter() -> Any:
    return litellm_bridge._litellm().token_counter
