"""A chat request reduced to what the next turn of its session is compared with: digests, not bodies.

Each message is hashed as the raw bytes it came in (msgspec splits the list without decoding it), with CRC-32
and the length: cheap (about 1 ms per MB) and stable across restarts. Only the leading system messages are
decoded (for their role). Tools are hashed one by one; their shapes (description, parameters, required) are
decoded once per distinct tool and kept in a small shared cache (`ToolShapes`), so a changed tool can be told
apart by what changed. The request fields in FIELDS keep a digest and a short text.

In the proxy, routing has already split and digested the client's messages (formats/conversation.py, reused
from the turn before for the messages a turn repeats): `read_split` takes that split and gives what
`read_request` gives for the body routing sends on, without another pass over the conversation.
"""

from __future__ import annotations

import array
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import msgspec
import orjson

from ...formats.conversation import Split, digest

SYSTEM_ROLES = frozenset(("system", "developer"))
FIELD_TEXT = 80  # characters of a field's value kept for "changed from ... to ..."
TOOL_SHAPES = 512  # distinct tools remembered across all sessions

# The request fields compared between turns: what OpenAI's API and its compatible servers take. One pass of
# msgspec over the body splits the messages and tools and picks these out (unknown fields are skipped).
FIELDS = (
    "model", "temperature", "top_p", "top_k", "max_tokens", "max_completion_tokens", "reasoning_effort",
    "reasoning", "thinking", "verbosity", "tool_choice", "parallel_tool_calls", "functions", "function_call",
    "stream", "stream_options", "stop", "seed", "n", "presence_penalty", "frequency_penalty", "logit_bias",
    "logprobs", "top_logprobs", "response_format", "modalities", "audio", "prediction", "store", "metadata",
    "user", "service_tier", "prompt_cache_key", "safety_identifier", "web_search_options", "extra_body",
)  # fmt: skip
_ABSENT = msgspec.Raw()  # the default of a field the request does not have
RawJSON = bytes | memoryview | msgspec.Raw  # a JSON value's bytes, as they came


class _BodyBase(msgspec.Struct):
    messages: list[msgspec.Raw]
    tools: msgspec.Raw = _ABSENT  # a list, or null


# defstruct adds FIELDS at run time; a type checker knows only the base's fields (the rest are read by getattr).
_BODY = msgspec.json.Decoder(
    cast(
        type[_BodyBase],
        msgspec.defstruct("_Body", [(name, msgspec.Raw, _ABSENT) for name in FIELDS], bases=(_BodyBase,)),
    )
)


class _Role(msgspec.Struct):
    role: str = ""


_ROLE = msgspec.json.Decoder(_Role)
_LIST = msgspec.json.Decoder(list[msgspec.Raw])


def role_of(raw: RawJSON) -> str:
    try:
        return _ROLE.decode(raw).role
    except msgspec.DecodeError:
        return ""


@dataclass(slots=True, frozen=True)
class Snapshot:
    """One request of a session, as digests."""

    system: int  # digest of the leading system/developer messages together; 0 when there are none
    n_system: int  # how many leading messages are system/developer
    rest: array.array  # digests ('Q') of the messages after them, in order
    first_user: int  # digest of the first user message; 0 when there is none
    tools: tuple[tuple[str, int], ...]  # (name, digest) in order
    fields: tuple[tuple[str, int, str], ...]  # (name, digest, short text) of every other top-level field

    @property
    def messages(self) -> int:
        return self.n_system + len(self.rest)


@dataclass(slots=True, frozen=True)
class ToolShape:
    name: str
    description: int
    params: tuple[tuple[str, int], ...]
    required: tuple[str, ...]


class ToolShapes:
    """Tool digest -> its shape, for the last TOOL_SHAPES distinct tools seen."""

    def __init__(self, limit: int = TOOL_SHAPES) -> None:
        self.limit = limit
        self.shapes: OrderedDict[int, ToolShape] = OrderedDict()

    def get(self, key: int) -> ToolShape | None:
        return self.shapes.get(key)

    def shape(self, key: int, raw: RawJSON) -> ToolShape:
        found = self.shapes.get(key)
        if found is None:
            found = self.shapes[key] = tool_shape(raw)
            if len(self.shapes) > self.limit:
                self.shapes.popitem(last=False)
        else:
            self.shapes.move_to_end(key)
        return found


def tool_shape(raw: RawJSON) -> ToolShape:
    try:
        tool = orjson.loads(memoryview(raw))
    except orjson.JSONDecodeError:
        tool = None
    tool = tool if isinstance(tool, dict) else {}
    fn = function if isinstance(function := tool.get("function"), dict) else tool
    params = parameters if isinstance(parameters := fn.get("parameters"), dict) else {}
    props = properties if isinstance(properties := params.get("properties"), dict) else {}
    required = names if isinstance(names := params.get("required"), list) else []
    return ToolShape(
        name=str(fn.get("name") or "(no name)"),
        description=digest(orjson.dumps(fn.get("description"))),
        params=tuple((str(k), digest(orjson.dumps(v, option=orjson.OPT_SORT_KEYS))) for k, v in props.items()),
        required=tuple(sorted(str(r) for r in required)),
    )


def field_text(raw: RawJSON) -> str:
    text = bytes(memoryview(raw)[: FIELD_TEXT + 1]).decode("utf-8", "replace")
    return text if len(text) <= FIELD_TEXT else text[: FIELD_TEXT - 1] + "…"


def read_request(content: bytes, shapes: ToolShapes) -> tuple[Snapshot, list[msgspec.Raw]]:
    """The request's snapshot and its messages, raw; ValueError when it is not a chat request."""
    try:
        body = _BODY.decode(content)
        tools = _LIST.decode(body.tools) if body.tools and bytes(body.tools) != b"null" else []
    except msgspec.DecodeError as e:
        raise ValueError(f"not a chat request with a list of messages and tools: {e}") from None
    raws = body.messages
    n_system, first_user = _leading(len(raws), lambda i: role_of(raws[i]))
    rest = array.array("Q", [zlib.crc32(r) | len(r) << 32 for r in raws[n_system:]])  # digest(), inline: ~300 a MB
    fields = [(name, raw) for name in FIELDS if (raw := getattr(body, name))]
    return _snapshot(raws, n_system, first_user, rest, tools, fields, shapes), raws


def read_split(split: Split, body: dict, shapes: ToolShapes) -> tuple[Snapshot, list[memoryview]]:
    """read_request's answer for a request routing has split (formats/conversation.py): the split's messages
    and the other fields of `body`, encoded as routing sends them (msgspec), with no pass over the messages."""
    raws = split.messages()
    n_system, first_user = _leading(len(raws), split.roles.__getitem__)
    tools = body.get("tools")
    tool_raws = [msgspec.json.encode(tool) for tool in tools] if isinstance(tools, list) else []
    fields = [(name, msgspec.json.encode(body[name])) for name in FIELDS if name in body]
    rest = split.digests[n_system:]
    return _snapshot(raws, n_system, first_user, rest, tool_raws, fields, shapes), raws


def _leading(count: int, role: Callable[[int], str]) -> tuple[int, int | None]:
    """How many leading messages are system/developer, and the index of the first user message among the four
    after them (None when there is none); `role(i)` is the role of message i."""
    n_system = 0
    while n_system < count and role(n_system) in SYSTEM_ROLES:
        n_system += 1
    return n_system, next((i for i in range(n_system, min(n_system + 4, count)) if role(i) == "user"), None)


def _snapshot(
    raws: Sequence[RawJSON],
    n_system: int,
    first_user: int | None,
    rest: array.array,
    tools: Sequence[RawJSON],
    fields: Sequence[tuple[str, RawJSON]],
    shapes: ToolShapes,
) -> Snapshot:
    system = digest(b"".join(memoryview(r) for r in raws[:n_system])) if n_system else 0
    named = []
    for raw in tools:
        key = digest(raw)
        named.append((shapes.shape(key, raw).name, key))
    return Snapshot(
        system,
        n_system,
        rest,
        digest(raws[first_user]) if first_user is not None else 0,
        tuple(named),
        tuple((name, digest(raw), field_text(raw)) for name, raw in fields),
    )
