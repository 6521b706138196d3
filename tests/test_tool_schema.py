import copy
import json
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from addon.gemini import tool_schema
from addon.gemini.tool_schema import accepted_fields, clean_schema, clean_tools

DRAFT7 = "http://json-schema.org/draft-07/schema#"
DRAFT2020 = "https://json-schema.org/draft/2020-12/schema"

# opencode's built-in tools as zod renders them (zod-to-json-schema for draft-07, z.toJSONSchema for 2020-12).
BASH = {
    "$schema": DRAFT7,
    "type": "object",
    "properties": {
        "command": {"type": "string", "description": "The command to execute"},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "description": "Optional timeout in milliseconds"},
        "workdir": {"type": "string", "description": "The working directory to run the command in."},
        "description": {"type": "string", "description": "Clear, concise description of what this command does"},
    },
    "required": ["command", "description"],
    "additionalProperties": False,
}
READ = {
    "$schema": DRAFT2020,
    "type": "object",
    "properties": {
        "filePath": {"type": "string", "description": "The path to the file to read"},
        "offset": {"type": "number", "description": "The line number to start reading from (0-based)"},
        "limit": {"type": "number", "description": "The number of lines to read (defaults to 2000)"},
    },
    "required": ["filePath"],
    "additionalProperties": False,
}
EDIT = {
    "$schema": DRAFT7,
    "type": "object",
    "properties": {
        "filePath": {"type": "string", "description": "The absolute path to the file to modify"},
        "oldString": {"type": "string", "description": "The text to replace"},
        "newString": {"type": "string", "description": "The text to replace it with"},
        "replaceAll": {"type": "boolean", "default": False, "description": "Replace all occurrences of oldString"},
    },
    "required": ["filePath", "oldString", "newString"],
    "additionalProperties": False,
}
TODO_ITEM = {
    "type": "object",
    "properties": {
        "content": {"type": "string", "description": "Brief description of the task"},
        "status": {
            "type": "string",
            "enum": ["pending", "in_progress", "completed", "cancelled"],
            "description": "Current status of the task",
        },
        "priority": {"type": "string", "enum": ["high", "medium", "low"], "description": "Priority level"},
        "id": {"type": "string", "description": "Unique identifier for the todo item"},
    },
    "required": ["content", "status", "priority", "id"],
    "additionalProperties": False,
}
TODOWRITE = {
    "$schema": DRAFT7,
    "type": "object",
    "properties": {"todos": {"type": "array", "items": TODO_ITEM, "description": "The updated todo list"}},
    "required": ["todos"],
    "additionalProperties": False,
}
TODOREAD = {"$schema": DRAFT7, "type": "object", "properties": {}, "additionalProperties": False}
WEBFETCH = {  # z.enum(...).default("markdown"), z.number().int().positive().max(120).optional()
    "$schema": DRAFT2020,
    "type": "object",
    "properties": {
        "url": {"type": "string", "format": "uri", "description": "The URL to fetch content from"},
        "format": {"type": "string", "enum": ["text", "markdown", "html"], "default": "markdown"},
        "timeout": {"type": "integer", "exclusiveMinimum": 0, "maximum": 120, "description": "Timeout in seconds"},
    },
    "required": ["url", "format"],
    "additionalProperties": False,
}
DEFS = {  # a $defs/$ref schema with a recursive node, as z.toJSONSchema renders z.lazy()
    "$schema": DRAFT2020,
    "type": "object",
    "properties": {"root": {"$ref": "#/$defs/Node", "description": "The tree"}, "label": {"$ref": "#/$defs/Label"}},
    "required": ["root"],
    "additionalProperties": False,
    "$defs": {
        "Label": {"type": "string", "const": "leaf"},
        "Node": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
            },
            "required": ["name"],
            "additionalProperties": False,
        },
    },
}
NULLABLE = {  # z.string().nullable() and z.union([z.string(), z.number()]).nullable()
    "$schema": DRAFT7,
    "type": "object",
    "properties": {
        "pattern": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "Glob pattern"},
        "value": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}], "description": "A value"},
        "kind": {"type": ["string", "null"], "enum": ["a", "b", None]},
    },
    "required": ["pattern", "ghost"],
    "additionalProperties": False,
}
RECORD = {  # z.record(z.string(), z.string()) as z.toJSONSchema renders it
    "$schema": DRAFT2020,
    "type": "object",
    "properties": {
        "env": {"type": "object", "propertyNames": {"type": "string"}, "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}
OPENCODE_TOOLS = {
    "bash": BASH,
    "read": READ,
    "edit": EDIT,
    "todowrite": TODOWRITE,
    "todoread": TODOREAD,
    "webfetch": WEBFETCH,
    "defs": DEFS,
    "nullable": NULLABLE,
    "record": RECORD,
}
FORBIDDEN = {
    "$schema",
    "$defs",
    "definitions",
    "$ref",
    "additionalProperties",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "propertyNames",
    "const",
    "oneOf",
    "allOf",
    "prefixItems",
    "patternProperties",
}


def schema_nodes(node: dict) -> Iterator[dict]:
    """Every schema node of a cleaned tree (property-name maps are not schema nodes)."""
    yield node
    for sub in node.get("properties", {}).values():
        yield from schema_nodes(sub)
    if "items" in node:
        yield from schema_nodes(node["items"])
    for sub in node.get("anyOf", []):
        yield from schema_nodes(sub)


def assert_gemini_schema(schema: dict) -> None:
    for node in schema_nodes(schema):
        assert isinstance(node, dict)
        assert set(node) <= accepted_fields(), node
        assert not set(node) & FORBIDDEN, node
        assert "type" in node or "anyOf" in node, node
        assert set(node.get("required", [])) <= set(node.get("properties", {})), node
        if "anyOf" in node:
            assert set(node) == {"anyOf"}, node
        if node.get("type") == "array":
            assert "items" in node, node
        assert all(isinstance(v, str) and v for v in node.get("enum", [])), node


@pytest.mark.parametrize("name", sorted(OPENCODE_TOOLS))
def test_opencode_tools_become_gemini_schemas_without_touching_the_input(name: str) -> None:
    original = copy.deepcopy(OPENCODE_TOOLS[name])
    cleaned, notes = clean_schema(OPENCODE_TOOLS[name])
    assert OPENCODE_TOOLS[name] == original
    assert_gemini_schema(cleaned)
    assert notes
    assert clean_schema(cleaned) == (cleaned, [])


def test_bash_keeps_descriptions_and_required() -> None:
    cleaned, notes = clean_schema(BASH)
    assert cleaned == {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The command to execute"},
            "timeout": {"type": "number", "minimum": 0, "description": "Optional timeout in milliseconds"},
            "workdir": {"type": "string", "description": "The working directory to run the command in."},
            "description": {"type": "string", "description": "Clear, concise description of what this command does"},
        },
        "required": ["command", "description"],
    }
    assert notes == ["removed $schema", "turned exclusiveMinimum into minimum", "removed additionalProperties"]


def test_todowrite_keeps_nested_enums_and_required() -> None:
    cleaned, _ = clean_schema(TODOWRITE)
    item = cleaned["properties"]["todos"]["items"]
    assert cleaned["properties"]["todos"]["description"] == "The updated todo list"
    assert item["properties"]["status"]["enum"] == ["pending", "in_progress", "completed", "cancelled"]
    assert item["properties"]["priority"] == TODO_ITEM["properties"]["priority"]
    assert item["required"] == ["content", "status", "priority", "id"]


def test_tool_without_parameters_becomes_a_bare_object() -> None:
    assert clean_schema(TODOREAD) == (
        {"type": "object"},
        ["removed $schema", "removed additionalProperties", "removed empty properties"],
    )


def test_webfetch_drops_formats_gemini_refuses_and_moves_default_into_the_description() -> None:
    cleaned, notes = clean_schema(WEBFETCH)
    assert cleaned["properties"]["url"] == {"type": "string", "description": "The URL to fetch content from"}
    assert "default" not in cleaned["properties"]["format"]
    assert cleaned["properties"]["format"]["description"].endswith('Default: "markdown".')
    assert "moved default into the description" in notes
    timeout = {"type": "integer", "minimum": 0, "maximum": 120, "description": "Timeout in seconds"}
    assert cleaned["properties"]["timeout"] == timeout
    assert "removed format uri" in notes


def test_defs_are_inlined_and_recursion_is_cut() -> None:
    cleaned, notes = clean_schema(DEFS)
    root = cleaned["properties"]["root"]
    assert root["description"] == "The tree"
    assert root["required"] == ["name"]
    assert root["properties"]["children"] == {"type": "array", "items": {"type": "object"}}
    assert cleaned["properties"]["label"] == {"type": "string", "enum": ["leaf"]}
    assert "inlined $ref #/$defs/Node" in notes
    assert "cut recursive $ref #/$defs/Node to an object" in notes
    assert "removed $defs" in notes


def test_nullable_unions() -> None:
    cleaned, notes = clean_schema(NULLABLE)
    props = cleaned["properties"]
    assert props["pattern"] == {"type": "string", "nullable": True, "description": "Glob pattern"}
    assert props["value"] == {
        "anyOf": [
            {"type": "string", "description": "A value", "nullable": True},
            {"type": "number", "description": "A value", "nullable": True},
        ]
    }
    assert props["kind"] == {"type": "string", "enum": ["a", "b"], "nullable": True}
    assert cleaned["required"] == ["pattern"]
    assert "removed required names without a property" in notes


def test_record_loses_property_names() -> None:
    cleaned, notes = clean_schema(RECORD)
    assert cleaned["properties"]["env"] == {"type": "object"}
    assert {"removed propertyNames", "removed additionalProperties"} <= set(notes)


def obj(**properties: dict) -> dict:
    return {"type": "object", "properties": properties}


STRING, INT1 = {"type": "string"}, {"type": "integer", "minimum": 1}


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"$ref": "#"}, {"type": "object"}),
        ({"$ref": "https://example.com/s.json"}, {"type": "object"}),
        ({"definitions": {"A": STRING}, "properties": {"a": {"$ref": "#/definitions/A"}}}, obj(a=STRING)),
        ({"properties": {"a": {"$ref": "#/properties/b"}, "b": INT1}}, obj(a=INT1, b=INT1)),
        (
            {"properties": {"a": {"oneOf": [STRING, {"type": "boolean"}]}}},
            obj(a={"anyOf": [STRING, {"type": "boolean"}]}),
        ),
        (
            {"properties": {"a": {"allOf": [{"$ref": "#/$defs/A"}], "description": "d"}}, "$defs": {"A": STRING}},
            obj(a={"type": "string", "description": "d"}),
        ),
        (
            {"allOf": [{"properties": {"a": STRING}, "required": ["a"]}, {"properties": {"b": {"type": "number"}}}]},
            {**obj(a=STRING, b={"type": "number"}), "required": ["a"]},
        ),
        ({"properties": {"n": {"const": 3}}}, obj(n={"type": "object"})),
        (
            {"properties": {"n": {"type": "integer", "enum": [1, 2]}}},
            obj(n={"type": "integer", "description": "Allowed values: 1, 2."}),
        ),
        ({"properties": {"s": {"type": "string", "enum": ["", "a"]}}}, obj(s={"type": "string", "enum": ["a"]})),
        (
            {
                "properties": {
                    "t": {"type": "string", "format": "date-time"},
                    "i": {"type": "integer", "format": "int64"},
                }
            },
            obj(t={"type": "string", "format": "date-time"}, i={"type": "integer"}),
        ),
        ({"properties": {"xs": {"type": "array"}}}, obj(xs={"type": "array", "items": {"type": "object"}})),
        (
            {"properties": {"xs": {"type": "array", "items": [STRING], "minItems": 1, "maxItems": 1}}},
            obj(xs={"type": "array", "items": STRING, "minItems": 1, "maxItems": 1}),
        ),
        ({"properties": {"x": True, "y": {}}}, obj(x={"type": "object"}, y={"type": "object"})),
        ({"properties": {"x": {"type": ["integer", "string"]}}}, obj(x={"anyOf": [{"type": "integer"}, STRING]})),
        ({"properties": {"x": {"type": "string", "properties": {"a": {}}, "required": ["a"]}}}, obj(x=STRING)),
        ({"properties": {"x": {"type": "text", "description": 5, "nullable": "yes"}}}, obj(x={"type": "object"})),
        (
            {"type": "object", "title": "Args", "propertyOrdering": ["b", "zz"], "properties": {"b": STRING}},
            {**obj(b=STRING), "title": "Args", "propertyOrdering": ["b"]},
        ),
    ],
)
def test_keyword_rewrites(schema: dict, expected: dict) -> None:
    cleaned, notes = clean_schema(schema)
    assert cleaned == expected
    assert notes
    assert_gemini_schema(cleaned)


@pytest.mark.parametrize("schema", [None, [], "object", 1, True])
def test_non_object_schema_is_a_value_error(schema: object) -> None:
    with pytest.raises(ValueError, match="must be a JSON object"):
        clean_schema(schema)


def test_too_deep_or_too_large_is_a_value_error() -> None:
    deep: dict = {"type": "string"}
    for _ in range(100):
        deep = {"type": "object", "properties": {"a": deep}}
    with pytest.raises(ValueError, match="nests deeper"):
        clean_schema(deep)
    bomb = {"$defs": {"D0": {"type": "string"}}, "$ref": "#/$defs/D30"}
    for i in range(1, 31):
        previous = {"$ref": f"#/$defs/D{i - 1}"}
        bomb["$defs"][f"D{i}"] = {"properties": {"a": previous, "b": previous}}
    with pytest.raises(ValueError, match="expands past"):
        clean_schema(bomb)


def test_clean_tools_cleans_in_place_and_tolerates_odd_shapes() -> None:
    body = {
        "model": "local-model",
        "tools": [
            {"type": "function", "function": {"name": "bash", "description": "Run", "parameters": copy.deepcopy(BASH)}},
            "not a tool",
            {"type": "function"},
            {"type": "function", "function": {"name": "noargs"}},
            {"type": "function", "function": {"name": "clean", "parameters": {"type": "object"}}},
            {"type": "function", "function": {"name": "broken", "parameters": "{}"}},
        ],
    }
    notes = clean_tools(body)
    assert body["tools"][0]["function"]["parameters"] == clean_schema(BASH)[0]
    assert body["tools"][0]["function"]["description"] == "Run"
    assert body["tools"][1:4] == [
        "not a tool",
        {"type": "function"},
        {"type": "function", "function": {"name": "noargs"}},
    ]
    assert notes == [
        "tools[0] bash: removed $schema; turned exclusiveMinimum into minimum; removed additionalProperties",
        "tools[5] broken: parameters left unchanged: A tool parameter schema must be a JSON object, not str.",
    ]


@pytest.mark.parametrize("body", [{}, {"tools": None}, {"tools": {"bash": BASH}}, {"tools": []}])
def test_clean_tools_without_a_tool_list(body: dict) -> None:
    assert clean_tools(body) == []


def test_accepted_fields_come_from_litellm_schema() -> None:
    assert accepted_fields() == {
        "anyOf",
        "description",
        "enum",
        "format",
        "items",
        "maxItems",
        "maxLength",
        "maxProperties",
        "maximum",
        "minItems",
        "minLength",
        "minProperties",
        "minimum",
        "nullable",
        "pattern",
        "properties",
        "propertyOrdering",
        "required",
        "title",
        "type",
    }


KEYWORDS = [
    "type",
    "properties",
    "items",
    "anyOf",
    "oneOf",
    "allOf",
    "$ref",
    "$defs",
    "enum",
    "const",
    "required",
    "description",
    "additionalProperties",
    "format",
    "nullable",
    "minimum",
    "exclusiveMinimum",
    "default",
]
WORDS = ["string", "number", "integer", "object", "array", "null", "", "a", "#", "#/$defs/A", "#/properties/a", "uri"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(WORDS))
JSONISH = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(KEYWORDS + ["a", "A"]), children, max_size=4),
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYWORDS), JSONISH, max_size=5))
def test_any_input_gives_a_gemini_schema_or_a_value_error(schema: dict) -> None:
    original = json.dumps(schema, sort_keys=True)
    try:
        cleaned, _ = clean_schema(schema)
    except ValueError:
        return
    assert json.dumps(schema, sort_keys=True) == original
    assert_gemini_schema(cleaned)
    assert clean_schema(cleaned) == (cleaned, [])


def test_a_tool_list_sent_again_is_cleaned_from_the_cache_into_fresh_objects():
    tools = [
        {
            "type": "function",
            "function": {
                "name": "read",
                "parameters": {
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "properties": {"filePath": {"type": "string"}},
                    "additionalProperties": False,
                },
            },
        }
    ]
    first, second = {"tools": copy.deepcopy(tools)}, {"tools": copy.deepcopy(tools)}
    hits = tool_schema._clean_encoded_tools.cache_info().hits
    notes = tool_schema.clean_tools(first)
    assert tool_schema.clean_tools(second) == notes and notes
    assert tool_schema._clean_encoded_tools.cache_info().hits == hits + 1
    assert first == second and "$schema" not in second["tools"][0]["function"]["parameters"]
    first["tools"][0]["function"]["name"] = "changed"  # one request's objects are its own
    assert second["tools"][0]["function"]["name"] == "read"
