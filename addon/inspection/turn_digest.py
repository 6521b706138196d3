"""A chat request reduced to what the next turn of its session is compared with: digests, not bodies.

Each message is hashed as the raw bytes it came in (msgspec splits the list without decoding it), with CRC-32
and the length: cheap (about 1 ms per MB) and stable across restarts. Only the leading system messages are
decoded (for their role). Tools are hashed one by one; their shapes (description, parameters, required) are
decoded once per distinct tool and kept in a small shared cache (`ToolShapes`), so a changed tool can be told
apart by what changed. Other request fields keep a digest and a short text.
"""

from __future__ import annotations

import array
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import msgspec
import orjson

SYSTEM_ROLES = frozenset(("system", "developer"))
FIELD_TEXT = 80  # characters of a field's value kept for "changed from ... to ..."
TOOL_SHAPES = 512  # distinct tools remembered across all sessions

_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_LIST = msgspec.json.Decoder(list[msgspec.Raw])


class _Role(msgspec.Struct):
    role: str = ""


_ROLE = msgspec.json.Decoder(_Role)


def digest(raw: bytes | msgspec.Raw) -> int:
    """A 64-bit digest of raw JSON: CRC-32 and the length."""
    view = memoryview(raw)
    return zlib.crc32(view) | len(view) << 32


def role_of(raw: msgspec.Raw) -> str:
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

    def shape(self, key: int, raw: msgspec.Raw) -> ToolShape:
        found = self.shapes.get(key)
        if found is None:
            found = self.shapes[key] = tool_shape(raw)
            if len(self.shapes) > self.limit:
                self.shapes.popitem(last=False)
        else:
            self.shapes.move_to_end(key)
        return found


def tool_shape(raw: msgspec.Raw) -> ToolShape:
    try:
        tool = orjson.loads(memoryview(raw))
    except orjson.JSONDecodeError:
        tool = None
    tool = tool if isinstance(tool, dict) else {}
    fn = tool.get("function") if isinstance(tool.get("function"), dict) else tool
    params = fn.get("parameters") if isinstance(fn.get("parameters"), dict) else {}
    props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
    required = params.get("required") if isinstance(params.get("required"), list) else []
    return ToolShape(
        name=str(fn.get("name") or "(no name)"),
        description=digest(orjson.dumps(fn.get("description"))),
        params=tuple((str(k), digest(orjson.dumps(v, option=orjson.OPT_SORT_KEYS))) for k, v in props.items()),
        required=tuple(sorted(str(r) for r in required)),
    )


def field_text(raw: msgspec.Raw) -> str:
    text = bytes(memoryview(raw)[: FIELD_TEXT + 1]).decode("utf-8", "replace")
    return text if len(text) <= FIELD_TEXT else text[: FIELD_TEXT - 1] + "…"


def read_request(content: bytes, shapes: ToolShapes) -> tuple[Snapshot, list[msgspec.Raw]]:
    """The request's snapshot and its messages, raw; ValueError when it is not a chat request."""
    try:
        top = _TOP.decode(content)
        raws = _LIST.decode(top["messages"])
        tools = _LIST.decode(top["tools"]) if "tools" in top and bytes(top["tools"]) != b"null" else []
    except (msgspec.DecodeError, KeyError) as e:
        raise ValueError(f"not a chat request with a list of messages: {e}") from None
    n_system = 0
    while n_system < len(raws) and role_of(raws[n_system]) in SYSTEM_ROLES:
        n_system += 1
    system = digest(b"".join(memoryview(r) for r in raws[:n_system])) if n_system else 0
    first_user = next((digest(r) for r in raws[n_system : n_system + 4] if role_of(r) == "user"), 0)
    named = []
    for raw in tools:
        key = digest(raw)
        named.append((shapes.shape(key, raw).name, key))
    fields = tuple(
        (name, digest(raw), field_text(raw)) for name, raw in top.items() if name not in ("messages", "tools")
    )
    rest = array.array("Q", (digest(r) for r in raws[n_system:]))
    return Snapshot(system, n_system, rest, first_user, tuple(named), fields), raws
