"""Tool parameter schemas cut down to the JSON-Schema subset Gemini accepts.

opencode sends zod-generated JSON Schema (`$schema`, `additionalProperties`, `exclusiveMinimum`, `propertyNames`,
`const`, `$defs`/`$ref`, `anyOf` with null) and Gemini's OpenAI endpoint answers 400 `Unknown name "..."` for every
keyword outside its Schema proto. litellm's `build_vertex_schema` is not reused: on such schemas it mutates its
input, reports nothing, loses the type under `oneOf`/`allOf`, turns `const` and `#/properties/...` refs into bare
objects, keeps `required` names that have no property and raises on boolean schemas. This module is the small
equivalent and takes litellm's knowledge as data: the accepted keywords are the fields of litellm's `Schema`
TypedDict (Gemini's Schema proto), and string formats are limited to the two litellm lets through.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import orjson

from ..formats import litellm_bridge

_STRING_FORMATS = frozenset({"enum", "date-time"})  # what litellm's filter_schema_fields keeps
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
# Value types of the accepted scalar keywords; any other accepted keyword takes a number.
_VALUE_TYPES: dict[str, type | tuple[type, ...]] = {
    "enum": list,
    "required": list,
    "propertyOrdering": list,
    "anyOf": list,
    "properties": dict,
    "nullable": bool,
    "default": object,
    "example": object,
    **dict.fromkeys(("type", "format", "title", "description", "pattern"), str),
}
_TEXTS = ("title", "description")
_INTO_DESCRIPTION = frozenset({"default", "example"})
_MAX_DEPTH, _MAX_NODES = 64, 20_000
_DROP = object()


def accepted_fields() -> frozenset[str]:
    """The schema keywords Gemini accepts: the fields of litellm's Schema TypedDict (Gemini's Schema proto)."""
    # litellm's Schema lists `default` and `example`, but Gemini's OpenAI endpoint has refused `default` with
    # "Unknown name" (opencode's webfetch sends one): their values move into the description instead.
    return litellm_bridge.gemini_schema_fields() - _INTO_DESCRIPTION


def clean_schema(schema: object) -> tuple[dict, list[str]]:
    """Return a cleaned copy of `schema` and notes on what changed; the input is never mutated."""
    if not isinstance(schema, dict):
        raise ValueError(f"A tool parameter schema must be a JSON object, not {type(schema).__name__}.")
    try:  # a JSON round trip copies JSON data many times faster than copy.deepcopy
        copied = orjson.loads(orjson.dumps(schema))
    except (TypeError, orjson.JSONEncodeError):
        copied = copy.deepcopy(schema)
    cleaner = _Cleaner(copied)
    return cleaner.clean(cleaner.root, 0), list(cleaner.notes)


def clean_tools(body: dict) -> list[str]:
    """Clean every tools[i].function.parameters of a chat request in place; one note per changed tool."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []
    try:
        encoded = orjson.dumps(tools)
    except (TypeError, orjson.JSONEncodeError):
        return _clean_tool_list(tools)
    cleaned, notes = _clean_encoded_tools(encoded)
    body["tools"] = orjson.loads(cleaned)
    return list(notes)


@functools.lru_cache(maxsize=64)
def _clean_encoded_tools(encoded: bytes) -> tuple[bytes, tuple[str, ...]]:
    """A client sends the same tool list with every request of a session (opencode: ten tools, each turn),
    and cleaning it takes a few hundred µs: the result is kept per tool list."""
    tools = orjson.loads(encoded)
    notes = _clean_tool_list(tools)
    return orjson.dumps(tools), tuple(notes)


def _clean_tool_list(tools: list) -> list[str]:
    notes = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or function.get("parameters") is None:
            continue
        prefix = f"tools[{i}] {function.get('name', '?')}"
        try:
            function["parameters"], tool_notes = clean_schema(function["parameters"])
        except ValueError as e:
            notes.append(f"{prefix}: parameters left unchanged: {e}")
            continue
        if tool_notes:
            notes.append(f"{prefix}: {'; '.join(tool_notes)}")
    return notes


class _Cleaner:
    """One schema's pass: the root (for $ref), the refs being expanded, and the notes (ordered, unique)."""

    def __init__(self, root: dict) -> None:
        self.root = root
        self.expanding = ["#"]
        self.notes: dict[str, None] = {}
        self.nodes = 0

    def note(self, text: str) -> None:
        self.notes[text] = None

    def clean(self, node: object, depth: int) -> dict:
        self.nodes += 1
        if depth > _MAX_DEPTH or self.nodes > _MAX_NODES:
            raise ValueError(f"The schema nests deeper than {_MAX_DEPTH} levels or expands past {_MAX_NODES} nodes.")
        if not isinstance(node, dict):
            self.note("replaced a boolean or non-object schema with an untyped one")
            node = {}
        node = self.merge_all_of(dict(node)) if isinstance(node.get("allOf"), list) else node
        if isinstance(node.get("$ref"), str):
            return self.inline_ref(node, depth)
        node = self.flatten(dict(node))
        out = {key: value for key in node if (value := self.keep(key, node[key], depth)) is not _DROP}
        return self.finish(out, depth)

    def inline_ref(self, node: dict, depth: int) -> dict:
        ref = node["$ref"]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        target = _resolve(self.root, ref)
        if ref in self.expanding or target is None:
            self.note(f"cut {'recursive' if target is not None else 'unresolvable'} $ref {ref} to an object")
            return self.clean({**siblings, "type": "object"}, depth)
        self.note(f"inlined $ref {ref}")
        self.expanding.append(ref)
        try:
            return self.clean({**target, **siblings}, depth)
        finally:
            self.expanding.pop()

    def merge_all_of(self, node: dict) -> dict:
        """Merge allOf branches under the node's own keywords (a branch's $ref is inlined next)."""
        self.note("merged allOf")
        for branch in filter(lambda b: isinstance(b, dict), node.pop("allOf")):
            merged = {**branch, **node}
            mine, theirs = node.get("properties", {}), branch.get("properties", {})
            if isinstance(mine, dict) and isinstance(theirs, dict) and (mine or theirs):
                merged["properties"] = {**theirs, **mine}
            mine, theirs = node.get("required", []), branch.get("required", [])
            if isinstance(mine, list) and isinstance(theirs, list) and (mine or theirs):
                merged["required"] = [*mine, *theirs]
            node = merged
        return node

    def flatten(self, node: dict) -> dict:
        """Rewrite oneOf, const, exclusive bounds and list types into keywords Gemini knows."""
        if isinstance(node.get("oneOf"), list):
            self.note("turned oneOf into anyOf")
            any_of = node.get("anyOf")
            node["anyOf"] = [*(any_of if isinstance(any_of, list) else []), *node.pop("oneOf")]
        if "const" in node:
            const = node.pop("const")
            self.note("turned const into enum" if isinstance(const, str) else "removed const")
            node.update({"enum": [const]} if isinstance(const, str) else {})
        for key in sorted(_INTO_DESCRIPTION & node.keys()):
            text = f"{key.capitalize()}: {json.dumps(node.pop(key))}."
            description = node.get("description")
            node["description"] = f"{description} {text}" if isinstance(description, str) and description else text
            self.note(f"moved {key} into the description")
        for exclusive, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if _valid_value(inclusive, node.get(exclusive)) and inclusive not in node:
                self.note(f"turned {exclusive} into {inclusive}")
                node[inclusive] = node.pop(exclusive)
        if isinstance(node.get("type"), list):
            types = [t for t in node.pop("type") if isinstance(t, str)]
            kinds = [t for t in types if t != "null"] or ["null"]
            node.update({"nullable": True} if "null" in types and kinds != ["null"] else {})
            node.update({"type": kinds[0]} if len(kinds) == 1 else {"anyOf": [{"type": t} for t in kinds]})
            self.note("turned a list type into " + ("one type" if len(kinds) == 1 else "anyOf"))
        return node

    def keep(self, key: str, value: Any, depth: int) -> Any:
        """The cleaned value of one keyword, or _DROP."""
        if key not in accepted_fields():
            self.note(f"removed {key}")
            return _DROP
        if key == "items":
            if isinstance(value, list):
                self.note("turned tuple items into one schema")
                value = value[0] if len(value) == 1 else {"anyOf": value}
            return self.clean(value, depth + 1)
        if key == "properties" and isinstance(value, dict):
            return {name: self.clean(sub, depth + 1) for name, sub in value.items()}
        if key == "anyOf" and isinstance(value, list):
            return [self.clean(sub, depth + 1) for sub in value]
        if _valid_value(key, value):
            return value
        self.note(f"removed invalid {key}")
        return _DROP

    def finish(self, out: dict, depth: int) -> dict:
        """Fix what only makes sense once the node's keywords are clean."""
        if "anyOf" in out:
            out = self.collapse_any_of(out)
            if "anyOf" in out:
                return out
        self.fix_type(out)
        self.fix_enum(out)
        self.fix_object(out)
        if out["type"] == "array" and "items" not in out:
            self.note("added items to an array")
            out["items"] = self.clean({}, depth + 1)
        if "format" in out and (out["type"] != "string" or out["format"] not in _STRING_FORMATS):
            self.note(f"removed format {out.pop('format')}")
        return out

    def collapse_any_of(self, out: dict) -> dict:
        """Null branches become nullable; one branch left merges into the node; several keep anyOf alone."""
        branches = out.pop("anyOf")
        kept = [b for b in branches if b.get("type") != "null"]
        nullable = {"nullable": True} if out.pop("nullable", False) or len(kept) < len(branches) else {}
        if len(kept) < len(branches):
            self.note("turned the null branch of anyOf into nullable")
        texts = {k: out[k] for k in _TEXTS if k in out}
        if len(kept) <= 1:
            base = kept[0] if kept else ({"type": "null"} if nullable else {})
            merged = {**out, **base, **texts, **nullable}
            return self.collapse_any_of(merged) if "anyOf" in merged else merged
        if set(out) - set(texts):
            self.note(f"removed {', '.join(sorted(set(out) - set(texts)))} next to anyOf")
        return {"anyOf": [{**branch, **texts, **nullable} for branch in kept]}

    def fix_type(self, out: dict) -> None:
        if out.get("type") in _TYPES:
            return
        bad = out.pop("type", None)
        out["type"] = _infer_type(out)
        self.note(f"replaced type {bad} with {out['type']}" if bad else f"added type {out['type']}")

    def fix_enum(self, out: dict) -> None:
        """Gemini takes non-empty string enum values only: null -> nullable, other enums go into the description."""
        if "enum" not in out:
            return
        values = [v for v in out["enum"] if v is not None]
        out.update({"nullable": True} if len(values) < len(out["enum"]) else {})
        strings = [v for v in values if isinstance(v, str) and v]
        if out["type"] == "string" and strings:
            if len(strings) < len(values):
                self.note("removed empty or non-string enum values")
            out["enum"] = strings
            return
        listed = ", ".join(json.dumps(v) for v in out.pop("enum"))
        out["description"] = f"{out.get('description', '')} Allowed values: {listed}.".strip()
        self.note(f"moved a {out['type']} enum into the description")

    def fix_object(self, out: dict) -> None:
        if out["type"] != "object":
            for key in ("properties", "required", "propertyOrdering"):
                if out.pop(key, None) is not None:
                    self.note(f"removed {key} from a {out['type']}")
            return
        if out.get("properties") == {}:
            del out["properties"]
            self.note("removed empty properties")
        names = out.get("properties", {})
        for key in ("required", "propertyOrdering"):
            listed = out.pop(key, [])
            kept = [n for n in listed if isinstance(n, str) and n in names]
            out.update({key: kept} if kept else {})
            if len(kept) < len(listed):
                self.note(f"removed {key} names without a property")


def _valid_value(key: str, value: object) -> bool:
    kind = _VALUE_TYPES.get(key)
    return isinstance(value, kind) if kind else isinstance(value, int | float) and not isinstance(value, bool)


def _infer_type(out: dict) -> str:
    if "items" in out:
        return "array"
    if isinstance(out.get("enum"), list) and all(isinstance(v, str | None) for v in out["enum"]):
        return "string"
    if "minimum" in out or "maximum" in out:
        return "number"
    return "object"  # litellm's add_object_type does the same for schemas without a type


def _resolve(root: dict, ref: str) -> dict | None:
    """Follow a local JSON pointer ("#", "#/$defs/Foo", "#/properties/a/items"); None when it leads nowhere."""
    if not ref.startswith("#"):
        return None
    node: object = root
    for part in filter(None, ref[1:].split("/")):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, dict) else None
