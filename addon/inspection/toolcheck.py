"""Check a model's tool calls against the JSON schemas the request offered (pure).

Every finding is a mistake of the model, not of the client: the client offered these tools with
these schemas, and the model answered with a call that does not fit them.
"""

from __future__ import annotations

import functools
from typing import Any

import jsonschema
import orjson

from ..formats.exchange import Exchange

HEADLINE = "the model, not the client, sent tool calls that do not fit the tools the request offered"
_JSON_TYPES = {  # Python type -> JSON name, for findings
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}
MESSAGE_LIMIT = 200  # jsonschema messages quote the bad value; keep findings one readable line


def check_request(tool_calls: list[dict], request: bytes) -> list[str]:
    """The calls checked against the tools a request body (JSON bytes) offered; [] when it is not JSON."""
    try:
        body = orjson.loads(request)
    except orjson.JSONDecodeError:
        return []
    return check_tool_calls(tool_calls, tool_schemas(body if isinstance(body, dict) else {}))


def checks_of(ex: Exchange, request: bytes | None) -> list[str]:
    """The check of the exchange's answered tool calls against the tools `request` (a chat body) offered, made
    once and kept in `ex.tool_checks`: the report and the session index both read it, whichever comes first."""
    calls = (ex.answer or {}).get("tool_calls")
    if ex.tool_checks is None and calls:
        ex.tool_checks = check_request(calls, request or b"")
    return ex.tool_checks or []


def tool_schemas(request_body: dict) -> dict[str, dict]:
    """Tool name -> parameters schema, from the request's `tools` (or legacy `functions`).

    Odd shapes are tolerated: flat `{"name", "parameters"}` tools, `input_schema`, missing or
    non-object parameters (which accept anything)."""
    if not isinstance(request_body, dict):
        return {}
    schemas = {}
    for tool in _as_list(request_body.get("tools")) + _as_list(request_body.get("functions")):
        if not isinstance(tool, dict):
            continue
        fn = tool["function"] if isinstance(tool.get("function"), dict) else tool
        name = fn.get("name")
        if isinstance(name, str) and name:
            params = fn.get("parameters", fn.get("input_schema"))
            schemas[name] = params if isinstance(params, dict) else {}
    return schemas


def check_tool_calls(tool_calls: list[dict], schemas: dict[str, dict]) -> list[str]:
    """Findings for calls `[{"id", "name", "arguments": str}]`; an empty list means all fit."""
    findings = []
    for call in tool_calls:
        name = str(call.get("name") or "")
        label = f"{name or '(no name)'} ({call['id']})" if call.get("id") else name or "(no name)"
        findings += [f"{label}: {problem}" for problem in _call_problems(call, name, schemas)]
    return findings


def _call_problems(call: dict, name: str, schemas: dict[str, dict]) -> list[str]:
    if name not in schemas:
        return ["unknown tool (not offered in the request)"]
    try:
        args = _parse_arguments(call.get("arguments"))
    except ValueError as e:
        return [str(e)]
    return _schema_problems(args, schemas[name])


def _parse_arguments(arguments: Any) -> Any:
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str | bytes):
        raise ValueError(f"model sent arguments of type {type(arguments).__name__}, not a JSON string")
    if not arguments.strip():
        return {}  # some servers send "" for a call without arguments
    try:
        return orjson.loads(arguments)
    except orjson.JSONDecodeError as e:
        raise ValueError(f"model sent malformed JSON arguments: {e.msg} at char {e.pos}") from None


def _schema_problems(args: Any, schema: dict) -> list[str]:
    if not isinstance(args, dict):
        return [f"model sent a JSON {_JSON_TYPES.get(type(args), 'value')} as arguments, not an object"]
    try:
        validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode())
        errors = sorted(validator.iter_errors(args), key=lambda e: list(map(str, e.absolute_path)))
        return [_describe(e) for e in errors]
    except jsonschema.SchemaError as e:
        return [f"not checked: the request's schema for this tool is invalid ({_short(e.message)})"]
    except Exception as e:  # unresolvable $ref, unknown type names, ...
        return [f"not checked: the request's schema could not be applied ({_short(str(e))})"]


@functools.lru_cache(maxsize=64)
def _validator(schema_text: str) -> jsonschema.protocols.Validator:
    """Compiled validator for a schema (JSON text as the cache key): the draft named by `$schema`,
    else Draft 2020-12. Raises jsonschema.SchemaError for an invalid schema."""
    schema = orjson.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


def _describe(error: jsonschema.ValidationError) -> str:
    where = "".join(f"/{part}" for part in error.absolute_path)
    at = f" at {where}" if where else ""
    if error.validator == "required" and isinstance(error.instance, dict):
        for field in error.validator_value:  # one error per missing field; find which
            if field not in error.instance and error.message.startswith(repr(field)):
                return f"missing required field {field!r}{at}"
    return f"{_short(error.message)}{at}"


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _short(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"
