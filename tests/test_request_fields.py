import copy
import os

import pytest

from addon.gemini.request_fields import DENIED_FIELDS, SUPPORTED_FIELDS, repair_fields

# A request as opencode (@ai-sdk/openai-compatible) sends it to a provider aliased as "local-model".
OPENCODE_BODY = {
    "model": "local-model",
    "max_tokens": 32000,
    "temperature": 0.6,
    "top_p": 0.95,
    "reasoning_effort": "high",
    "messages": [
        {"role": "system", "content": "You are opencode, an interactive CLI tool."},
        {"role": "user", "content": [{"type": "text", "text": "List the files"}]},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "bash", "arguments": '{"command":"ls"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "README.md\naddon\n"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "bash",
                "description": "Executes a given bash command",
                "parameters": {
                    "type": "object",
                    "properties": {"command": {"type": "string"}},
                    "required": ["command"],
                },
            },
        }
    ],
    "tool_choice": "auto",
    "stream": True,
    "stream_options": {"include_usage": True},
    "prompt_cache_key": "ses_4f1c2a",
}


def test_opencode_request_loses_only_prompt_cache_key() -> None:
    body = copy.deepcopy(OPENCODE_BODY)
    notes = repair_fields(body, "gemini-2.5-flash")
    expected = copy.deepcopy(OPENCODE_BODY)
    del expected["prompt_cache_key"]
    assert body == expected
    assert notes == ["dropped field prompt_cache_key"]


@pytest.mark.parametrize("name", sorted(DENIED_FIELDS))
def test_denied_fields_are_dropped(name: str) -> None:
    body = {"model": "m", "messages": [], name: "x"}
    notes = repair_fields(body, "gemini-2.5-flash")
    assert body == {"model": "m", "messages": []}
    assert notes == [f"dropped field {name}"]


@pytest.mark.parametrize("name", sorted(SUPPORTED_FIELDS))
def test_supported_fields_pass_through(name: str) -> None:
    value = {"include_usage": True} if name == "stream_options" else {"google": {}} if name == "extra_body" else 1
    body = {name: value}
    assert repair_fields(body, "gemini-2.5-flash") == []
    assert body == {name: value}


def test_allow_and_deny_lists_are_disjoint_and_differ_from_litellm_where_they_must() -> None:
    import litellm

    native = set(litellm.get_supported_openai_params("gemini-2.5-flash", custom_llm_provider="gemini"))
    assert not SUPPORTED_FIELDS & DENIED_FIELDS
    # litellm translates these for the native API; the OpenAI endpoint refuses them.
    assert {"thinking", "web_search_options", "parallel_tool_calls"} <= native & DENIED_FIELDS
    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"


@pytest.mark.parametrize(
    ("extra", "model", "expected", "notes"),
    [
        ({"x_vendor": 1}, "gemini-2.5-flash", {}, ["dropped non-OpenAI field x_vendor (Gemini rejects unknown names)"]),
        (
            {"reasoning": {"effort": "low"}},
            "gemini-2.5-flash",
            {"reasoning_effort": "low"},
            ["translated reasoning.effort -> reasoning_effort"],
        ),
        (
            {"reasoning": {"effort": "low"}, "reasoning_effort": "high"},
            "gemini-2.5-flash",
            {"reasoning_effort": "high"},
            ["dropped field reasoning"],
        ),
        (
            {"reasoning": {"max_tokens": 2048}},
            "gemini-2.5-flash",
            {"extra_body": {"google": {"thinking_config": {"thinking_budget": 2048, "include_thoughts": True}}}},
            ["translated reasoning.max_tokens -> extra_body.google.thinking_config.thinking_budget"],
        ),
        ({"reasoning": "high"}, "gemini-2.5-flash", {}, ["dropped field reasoning"]),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 1024}},
            "gemini-2.5-pro",
            {"extra_body": {"google": {"thinking_config": {"thinking_budget": 1024, "include_thoughts": True}}}},
            ["translated thinking.budget_tokens -> extra_body.google.thinking_config.thinking_budget"],
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 1024}, "extra_body": {"google": {"cached_content": "c"}}},
            "gemini-2.5-pro",
            {
                "extra_body": {
                    "google": {
                        "cached_content": "c",
                        "thinking_config": {"thinking_budget": 1024, "include_thoughts": True},
                    }
                }
            },
            ["translated thinking.budget_tokens -> extra_body.google.thinking_config.thinking_budget"],
        ),
        (
            {
                "thinking": {"type": "enabled", "budget_tokens": 1024},
                "extra_body": {"google": {"thinking_config": {"thinking_budget": 64}}},
            },
            "gemini-2.5-pro",
            {"extra_body": {"google": {"thinking_config": {"thinking_budget": 64}}}},
            ["dropped field thinking"],
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 1024}, "reasoning_effort": "low"},
            "gemini-2.5-pro",
            {"reasoning_effort": "low"},
            ["dropped field thinking"],
        ),
        ({"thinking": {"type": "disabled"}}, "gemini-2.5-flash", {}, ["dropped field thinking"]),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "gemini-2.0-flash", {}, ["dropped field thinking"]),
        (
            {"reasoning_effort": "low"},
            "gemini-2.0-flash",
            {},
            ["dropped field reasoning_effort (litellm lists no support for it on gemini-2.0-flash)"],
        ),
        ({"reasoning_effort": "low"}, "gemini-7-experimental", {"reasoning_effort": "low"}, []),
        (
            {"reasoning_effort": "xhigh"},
            "gemini-2.5-pro",
            {"reasoning_effort": "high"},
            ["mapped reasoning_effort xhigh -> high"],
        ),
        (
            {"reasoning_effort": "high", "extra_body": {"google": {"thinking_config": {"thinking_level": "low"}}}},
            "gemini-3-pro-preview",
            {"extra_body": {"google": {"thinking_config": {"thinking_level": "low"}}}},
            ["dropped field reasoning_effort (Gemini refuses it next to extra_body.google.thinking_config)"],
        ),
        (
            {"reasoning_effort": "high", "extra_body": {"google": {"thinking_config": {"include_thoughts": True}}}},
            "gemini-2.5-flash",
            {"reasoning_effort": "high", "extra_body": {"google": {"thinking_config": {"include_thoughts": True}}}},
            [],
        ),
        (
            {"stream_options": {"include_usage": True, "include_obfuscation": False}},
            "gemini-2.5-flash",
            {"stream_options": {"include_usage": True}},
            ["dropped field stream_options.include_obfuscation"],
        ),
        ({"stream_options": True}, "gemini-2.5-flash", {}, ["dropped field stream_options (not an object)"]),
        (
            {"functions": [{"name": "f", "parameters": {"type": "object"}}], "function_call": {"name": "f"}},
            "gemini-2.5-flash",
            {
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
                "tool_choice": {"type": "function", "function": {"name": "f"}},
            },
            ["translated functions -> tools", "translated function_call -> tool_choice"],
        ),
        (
            {"functions": [], "tools": [], "function_call": "auto", "tool_choice": "none"},
            "gemini-2.5-flash",
            {"tools": [], "tool_choice": "none"},
            ["dropped field functions", "dropped field function_call"],
        ),
    ],
)
def test_translations_and_drops(extra: dict, model: str, expected: dict, notes: list[str]) -> None:
    body = {"model": "m", "messages": [], **copy.deepcopy(extra)}
    assert repair_fields(body, model) == notes
    assert body == {"model": "m", "messages": [], **expected}


def test_messages_and_tools_are_left_alone() -> None:
    body = copy.deepcopy(OPENCODE_BODY)
    body["messages"][0]["cache_control"] = {"type": "ephemeral"}
    repair_fields(body, "gemini-2.5-flash")
    assert body["messages"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["tools"] == OPENCODE_BODY["tools"]


@pytest.mark.parametrize(
    ("effort", "model", "sent", "notes"),
    [
        # Gemini 3 cannot stop thinking: "none" is litellm's lowest level for the model, as on the native path.
        ("none", "gemini-3-pro-preview", "low", ["mapped reasoning_effort none -> low"]),
        ("none", "gemini-3-flash-preview", "minimal", ["mapped reasoning_effort none -> minimal"]),
        ("minimal", "gemini-3-pro-preview", "low", ["mapped reasoning_effort minimal -> low"]),
        ("minimal", "gemini-3-flash-preview", "minimal", []),
        ("disable", "gemini-3.1-pro-preview", "low", ["mapped reasoning_effort disable -> low"]),
        ("high", "gemini-3-pro-preview", "high", []),
        ("xhigh", "gemini-3-pro-preview", "high", ["mapped reasoning_effort xhigh -> high"]),
        # Gemini 2.5 takes "none" (a zero budget) and "minimal" on this endpoint: unchanged.
        ("none", "gemini-2.5-flash", "none", []),
        ("minimal", "gemini-2.5-pro", "minimal", []),
    ],
)
def test_gemini_3_reasoning_effort_becomes_a_level_it_takes(
    effort: str, model: str, sent: str, notes: list[str]
) -> None:
    body = {**copy.deepcopy(OPENCODE_BODY), "model": model, "reasoning_effort": effort}
    repairs = repair_fields(body, model)
    assert body["reasoning_effort"] == sent
    mapped = [note.split(" (")[0] for note in repairs if note.startswith("mapped")]
    assert mapped == notes
