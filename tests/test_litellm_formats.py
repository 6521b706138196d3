"""One test per litellm translation the client formats use (addon/formats/litellm_formats.py): a litellm upgrade
that changes one fails here."""

from __future__ import annotations

import pytest

from addon.formats import litellm_formats

COMPLETION = {
    "id": "c1",
    "object": "chat.completion",
    "created": 1,
    "model": "local-3",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": "Reading.",
                "tool_calls": [
                    {
                        "id": "call_1__thought__c2ln+/=",
                        "type": "function",
                        "function": {"name": "read", "arguments": '{"path":"a"}'},
                    }
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
}


def test_anthropic_request_becomes_chat() -> None:
    chat, names = litellm_formats.anthropic_to_chat(
        {
            "model": "m",
            "max_tokens": 100,
            "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "read a"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1__thought__x", "name": "read", "input": {"path": "a"}}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1__thought__x", "content": "A"}]},
            ],
            "tools": [{"name": "read", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}],
            "tool_choice": {"type": "any"},
            "thinking": {"type": "enabled", "budget_tokens": 2000},
        }
    )
    assert chat["messages"][0]["role"] == "system"
    assert chat["messages"][2]["tool_calls"][0]["id"] == "t1__thought__x"
    assert chat["messages"][3] == {"role": "tool", "tool_call_id": "t1__thought__x", "content": "A"}
    assert chat["tools"][0]["function"]["name"] == "read"
    assert chat["tool_choice"] == "required" and chat["reasoning_effort"] in ("low", "minimal", "medium")
    assert chat["max_tokens"] == 100 and names == {}


def test_chat_answer_becomes_anthropic_keeping_the_packed_id() -> None:
    answer = litellm_formats.chat_to_anthropic(COMPLETION)
    assert answer["type"] == "message" and answer["stop_reason"] == "tool_use"
    assert answer["content"][0] == {"type": "text", "text": "Reading."}
    assert answer["content"][1]["id"] == "call_1__thought__c2ln+/=" and answer["content"][1]["input"] == {"path": "a"}
    assert answer["usage"]["input_tokens"] == 10 and answer["usage"]["output_tokens"] == 5


def test_responses_request_becomes_chat() -> None:
    chat = litellm_formats.responses_to_chat(
        {
            "model": "m",
            "instructions": "be brief",
            "input": [
                {"role": "developer", "content": "dev"},
                {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
                {"type": "function_call", "call_id": "c__thought__s", "name": "read", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c__thought__s", "output": "ok"},
            ],
            "tools": [{"type": "function", "name": "read", "parameters": {"type": "object", "properties": {}}}],
            "reasoning": {"effort": "low", "summary": "auto"},
            "max_output_tokens": 300,
            "stream": True,
        }
    )
    roles = [m["role"] for m in chat["messages"]]
    assert roles == ["system", "developer", "user", "assistant", "tool"]
    assert chat["messages"][3]["tool_calls"][0]["id"] == "c__thought__s"
    assert chat["reasoning_effort"] == "low" and chat["max_tokens"] == 300 and chat["stream"] is True
    assert "custom_llm_provider" not in chat


def test_responses_custom_tools_become_functions() -> None:
    chat = litellm_formats.responses_to_chat(
        {"model": "m", "input": "x", "tools": [{"type": "custom", "name": "apply_patch", "description": "patch"}]}
    )
    assert chat["tools"][0]["function"]["name"] == "apply_patch"


def test_chat_answer_becomes_a_responses_answer() -> None:
    answer = litellm_formats.chat_to_responses({"model": "local-3", "input": "x", "instructions": "i"}, COMPLETION)
    kinds = [item["type"] for item in answer["output"]]
    assert kinds == ["message", "function_call"] and answer["status"] == "completed"
    assert answer["output"][1]["call_id"] == "call_1__thought__c2ln+/="
    assert answer["usage"]["input_tokens"] == 10 and answer["instructions"] == "i"


def test_count_tokens() -> None:
    few = litellm_formats.count_tokens("gemini/gemini-2.5-flash", [{"role": "user", "content": "hi"}], None)
    many = litellm_formats.count_tokens("gemini/gemini-2.5-flash", [{"role": "user", "content": "hi " * 100}], None)
    assert 0 < few < many


def test_litellm_refusals_become_value_errors() -> None:
    with pytest.raises(ValueError):
        litellm_formats.anthropic_to_chat({"model": "m", "messages": "not a list"})


def test_a_reasoning_item_gets_the_summary_responses_clients_read() -> None:
    thinking = {
        **COMPLETION["choices"][0],
        "message": {"role": "assistant", "content": "Hi", "reasoning_content": "Hmm."},
    }
    answer = litellm_formats.chat_to_responses({"model": "m", "input": "x"}, {**COMPLETION, "choices": [thinking]})
    reasoning = answer["output"][0]
    assert reasoning["type"] == "reasoning" and reasoning["summary"] == [{"type": "summary_text", "text": "Hmm."}]
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "Hmm."}]
