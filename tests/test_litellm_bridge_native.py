"""One test per litellm internal the native Gemini path wraps (addon/formats/litellm_bridge.py): a litellm
upgrade that changes any of them fails here, not somewhere in a proxied request."""

from __future__ import annotations

import socket

import pytest

from addon.formats import litellm_bridge


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("litellm tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_the_pinned_litellm_is_installed() -> None:
    import importlib.metadata

    assert importlib.metadata.version("litellm") == litellm_bridge.PINNED_LITELLM


@pytest.mark.parametrize(
    ("model", "effort", "thinking"),
    [
        ("gemini-2.5-flash", "low", {"thinkingBudget": 1024, "includeThoughts": True}),
        ("gemini-2.5-flash", "none", {"thinkingBudget": 0, "includeThoughts": False}),
        ("gemini-3-pro-preview", "high", {"thinkingLevel": "high", "includeThoughts": True}),
        ("gemini-3-pro-preview", "none", {"thinkingLevel": "low", "includeThoughts": False}),
        ("gemini-3-flash-preview", "minimal", {"thinkingLevel": "minimal", "includeThoughts": True}),
    ],
)
def test_generation_params_map_reasoning_effort(model: str, effort: str, thinking: dict) -> None:
    params = litellm_bridge.gemini_generation_params({"reasoning_effort": effort}, model, vertex=False)
    assert params["thinkingConfig"] == thinking


def test_generation_params_map_the_common_openai_fields() -> None:
    tools = [{"type": "function", "function": {"name": "read", "parameters": {"type": "object", "properties": {}}}}]
    params = litellm_bridge.gemini_generation_params(
        {"max_tokens": 50, "stop": "END", "seed": 7, "temperature": 0.2, "tools": tools, "tool_choice": "required"},
        "gemini-2.5-flash",
        vertex=False,
    )
    assert params["max_output_tokens"] == 50
    assert params["stop_sequences"] == ["END"]
    assert params["seed"] == 7 and params["temperature"] == 0.2
    assert params["tools"][0]["function_declarations"][0]["name"] == "read"
    assert params["tool_choice"] == {"functionCallingConfig": {"mode": "ANY"}}


def test_generation_params_refuse_an_unknown_reasoning_effort() -> None:
    with pytest.raises(ValueError, match="reasoning_effort"):
        litellm_bridge.gemini_generation_params({"reasoning_effort": "loud"}, "gemini-2.5-flash", vertex=False)


def test_request_body_turns_messages_into_contents_with_the_signature_from_the_id(no_network: None) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "read a"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1__thought__c2ln", "type": "function", "function": {"name": "read", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1__thought__c2ln", "content": "A"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]},
    ]
    body = litellm_bridge.gemini_request_body(messages, {}, "gemini-3-pro-preview", vertex=False)
    assert body["system_instruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user", "user"]
    call = body["contents"][1]["parts"][0]
    assert call["function_call"]["name"] == "read" and call["thoughtSignature"] == "c2ln"
    assert body["contents"][2]["parts"][0]["function_response"]["response"] == {"content": "A"}
    assert body["contents"][3]["parts"][0]["inline_data"] == {"data": "iVBO", "mime_type": "image/png"}


def test_request_body_puts_the_bypass_signature_on_unsigned_gemini_3_calls(no_network: None) -> None:
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c", "content": "ok"},
    ]
    body = litellm_bridge.gemini_request_body(messages, {}, "gemini-3-pro-preview", vertex=True)
    assert body["contents"][1]["parts"][0]["thoughtSignature"] == "c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I="


def test_request_body_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        litellm_bridge.gemini_request_body(
            [{"role": "user", "content": [{"type": "image_url"}]}], {}, "gemini-2.5-flash", False
        )


@pytest.mark.parametrize(
    ("model", "expected"), [("gemini-3-pro-preview", True), ("gemini-2.5-pro", False), ("gemini-2.0-flash", False)]
)
def test_is_gemini_3_or_newer(model: str, expected: bool) -> None:
    assert litellm_bridge.is_gemini_3_or_newer(model) is expected


@pytest.mark.parametrize(("model", "expected"), [("gemini-2.5-flash", True), ("gemini-2.0-flash", False)])
def test_supports_reasoning(model: str, expected: bool) -> None:
    assert litellm_bridge.supports_reasoning(model) is expected


@pytest.mark.parametrize(
    ("effort", "model", "level"),
    [
        ("none", "gemini-3-pro-preview", "low"),
        ("none", "gemini-3-flash-preview", "minimal"),
        ("minimal", "gemini-3-pro-preview", "low"),
        ("medium", "gemini-3-pro-preview", "medium"),
    ],
)
def test_gemini_3_thinking_level(effort: str, model: str, level: str) -> None:
    assert litellm_bridge.gemini_3_thinking_level(effort, model) == level


def test_gemini_3_thinking_level_refuses_an_unknown_effort() -> None:
    with pytest.raises(ValueError, match="reasoning_effort"):
        litellm_bridge.gemini_3_thinking_level("enormous", "gemini-3-pro-preview")
