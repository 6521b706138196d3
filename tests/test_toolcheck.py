import orjson
import pytest

from addon.inspection import toolcheck
from addon.inspection.toolcheck import check_tool_calls, tool_schemas
from tests.support import DRAFT7, zod_object

TODO = {
    "type": "object",
    "properties": {
        "content": {"type": "string"},
        "status": {"type": "string", "enum": ["pending", "in_progress", "completed", "cancelled"]},
        "id": {"type": "string"},
    },
    "required": ["content", "status", "id"],
    "additionalProperties": False,
}

REQUEST = {
    "model": "local-model",
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "bash",
                "description": "Run a command",
                "parameters": zod_object(
                    {"command": {"type": "string"}, "timeout": {"type": "number"}, "description": {"type": "string"}},
                    ["command", "description"],
                ),
            },
        },
        {
            "type": "function",
            "function": {
                "name": "read",
                "parameters": zod_object(
                    {"filePath": {"type": "string"}, "offset": {"type": "number"}, "limit": {"type": "number"}},
                    ["filePath"],
                ),
            },
        },
        {
            "type": "function",
            "function": {
                "name": "edit",
                "parameters": zod_object(
                    {
                        "filePath": {"type": "string"},
                        "oldString": {"type": "string"},
                        "newString": {"type": "string"},
                        "replaceAll": {"type": "boolean"},
                    },
                    ["filePath", "oldString", "newString"],
                ),
            },
        },
        {
            "type": "function",
            "function": {
                "name": "todowrite",
                "parameters": zod_object({"todos": {"type": "array", "items": TODO}}, ["todos"]),
            },
        },
    ],
}
SCHEMAS = tool_schemas(REQUEST)


def call(name: str, arguments: str, id: str | None = "call_1") -> dict:
    return {"id": id, "name": name, "arguments": arguments}


def test_tool_schemas_from_opencode_request():
    assert list(SCHEMAS) == ["bash", "read", "edit", "todowrite"]
    assert SCHEMAS["read"]["required"] == ["filePath"]


def test_tool_schemas_tolerates_odd_shapes():
    body = {
        "tools": [
            "junk",
            {"type": "function"},
            {"type": "function", "function": {"name": "noparams"}},
            {"type": "function", "function": {"name": "badparams", "parameters": "string"}},
            {"name": "flat", "parameters": {"type": "object"}},
            {"name": "anthropic", "input_schema": {"type": "object", "required": ["x"]}},
        ],
        "functions": [{"name": "legacy", "parameters": {"type": "object"}}],
    }
    assert tool_schemas(body) == {
        "noparams": {},
        "badparams": {},
        "flat": {"type": "object"},
        "anthropic": {"type": "object", "required": ["x"]},
        "legacy": {"type": "object"},
    }
    assert tool_schemas({"tools": {"not": "a list"}}) == {}
    assert tool_schemas([]) == {}


def test_valid_calls_have_no_findings():
    calls = [
        call("read", '{"filePath": "/src/app.ts", "limit": 20}'),
        call("bash", '{"command": "ls", "description": "List"}'),
        call("read", {"filePath": "already parsed"}),
        call("noargs", ""),
    ]
    assert check_tool_calls(calls, SCHEMAS | {"noargs": {}}) == []


@pytest.mark.parametrize(
    "tool_call, finding",
    [
        (
            call("read", '{"filePath": "/a" "limit": 2}'),
            "read (call_1): model sent malformed JSON arguments: unexpected character, expected ',' or '}' at char 18",
        ),
        (call("bash", '{"description": "List files"}', "call_2"), "bash (call_2): missing required field 'command'"),
        (
            call("edit", '{"filePath": "a", "oldString": 1, "newString": "b"}', None),
            "edit: 1 is not of type 'string' at /oldString",
        ),
        (call("frobnicate", "{}", "call_3"), "frobnicate (call_3): unknown tool (not offered in the request)"),
        (call("read", '["/a"]'), "read (call_1): model sent a JSON array as arguments, not an object"),
        (
            call("read", '{"filePath": "/a", "path": "/b"}'),
            "read (call_1): Additional properties are not allowed ('path' was unexpected)",
        ),
        (
            call("todowrite", '{"todos": [{"content": "x", "status": "done", "id": "1"}]}'),
            "todowrite (call_1): 'done' is not one of ['pending', 'in_progress', 'completed', 'cancelled']"
            " at /todos/0/status",
        ),
        (
            call("todowrite", '{"todos": [{"content": "x", "status": "pending"}]}'),
            "todowrite (call_1): missing required field 'id' at /todos/0",
        ),
        (call("", "{}"), "(no name) (call_1): unknown tool (not offered in the request)"),
        (call("read", 42), "read (call_1): model sent arguments of type int, not a JSON string"),
    ],
)
def test_findings(tool_call, finding):
    assert check_tool_calls([tool_call], SCHEMAS) == [finding]


def test_every_problem_of_a_call_is_listed():
    findings = check_tool_calls([call("bash", '{"timeout": "10s"}')], SCHEMAS)
    assert findings == [
        "bash (call_1): missing required field 'command'",
        "bash (call_1): missing required field 'description'",
        "bash (call_1): '10s' is not of type 'number' at /timeout",
    ]


def test_draft_is_chosen_by_dollar_schema():
    # `dependencies` is a draft-07 keyword; Draft 2020-12 (the default) ignores it.
    schema = {"type": "object", "dependencies": {"a": ["b"]}}
    draft7 = check_tool_calls([call("t", '{"a": 1}')], {"t": schema | {"$schema": DRAFT7}})
    assert draft7 == ["t (call_1): 'b' is a dependency of 'a'"]
    assert check_tool_calls([call("t", '{"a": 1}')], {"t": schema}) == []


def test_broken_schemas_are_reported_as_not_checked():
    bad_type = {"t": {"type": "object", "properties": {"a": {"type": "strin"}}}}
    [finding] = check_tool_calls([call("t", '{"a": 1}')], bad_type)
    assert finding.startswith("t (call_1): not checked: the request's schema for this tool is invalid (")
    bad_ref = {"t": {"$ref": "https://example.invalid/schema.json"}}
    [finding] = check_tool_calls([call("t", "{}")], bad_ref)
    assert finding.startswith("t (call_1): not checked: the request's schema could not be applied (")


def test_long_messages_are_clipped():
    huge = orjson.dumps({"filePath": "a", "oldString": ["x" * 5000], "newString": ""}).decode()
    findings = check_tool_calls([call("edit", huge)], SCHEMAS)
    assert len(findings) == 1 and len(findings[0]) < 250 and "… at /oldString" in findings[0]


def test_validators_are_compiled_once_per_schema():
    toolcheck._validator.cache_clear()
    check_tool_calls([call("read", '{"filePath": "a"}')] * 5 + [call("bash", "{}")], SCHEMAS)
    info = toolcheck._validator.cache_info()
    assert (info.misses, info.hits) == (2, 4)
