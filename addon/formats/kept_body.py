"""The client's chat body kept as a patch of the body the proxy forwarded: the few fields that differ, not a copy.

A chat flow's request is the body routing sent upstream; the client's own body is kept beside it for replay, resend,
the views and export (request/client_request.py). The two differ in a handful of fields (`model`, a repaired tool
schema, a default added), so a second copy of a 200 kB history would double what a kept flow holds. Kept instead:

    {"ops": [[path, value] | [path], ...], "crc": crc32 of the forwarded bytes, "length": the client body's length}

`[path, value]` sets the value at `path` (keys and list indexes from the top), `[path]` removes it. Applied to the
forwarded body, the ops give the client's JSON back (same values; whitespace and key order are orjson's). The crc
names the forwarded bytes the ops apply to: when a flow's request was edited since, `rebuild` gives None.
Pure functions, plain data (tnetstring writes it to -w files as it is).
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

Path = list[str | int]


def diff(client: Any, base: Any, path: Path | None = None) -> list[list[Any]]:
    """The ops that turn `base` into `client`: per key for objects, per index for lists of the same length."""
    path = path or []
    if type(client) is type(base) and client == base:
        return []
    if isinstance(client, dict) and isinstance(base, dict):
        ops: list[list[Any]] = [[[*path, key]] for key in base if key not in client]
        for key, value in client.items():
            if key not in base:
                ops.append([[*path, key], value])
            else:
                ops += diff(value, base[key], [*path, key])
        return ops
    if isinstance(client, list) and isinstance(base, list) and len(client) == len(base):
        return [op for i, (a, b) in enumerate(zip(client, base, strict=True)) for op in diff(a, b, [*path, i])]
    return [[path, client]]


def apply(base: Any, ops: list[list[Any]]) -> Any:
    """`base` (parsed, changed in place) with the ops applied; ValueError when an op does not fit it."""
    for op in ops:
        if not isinstance(op, list) or len(op) not in (1, 2) or not isinstance(op[0], list):
            raise ValueError(f"{op!r} is not a patch op.")
        path = op[0]
        if not path:
            if len(op) == 1:
                raise ValueError("A patch op cannot remove the whole body.")
            base = op[1]
            continue
        parent = base
        try:
            for step in path[:-1]:
                parent = parent[_fitting(parent, step)]
            _fitting(parent, path[-1])
            if len(op) == 2:
                parent[path[-1]] = op[1]
            else:
                del parent[path[-1]]
        except (KeyError, IndexError, TypeError) as e:
            raise ValueError(f"The patch op at {path!r} does not fit the body: {e!r}") from None
    return base


def _fitting(container: Any, step: Any) -> Any:
    """A path step that names a key of an object or an index of a list, else TypeError."""
    if isinstance(container, dict) and isinstance(step, str):
        return step
    if isinstance(container, list) and isinstance(step, int) and not isinstance(step, bool):
        return step
    raise TypeError(f"{step!r} does not name a place in a {type(container).__name__}")


def make(client: bytes, forwarded: bytes, most: float = 0.25) -> dict[str, Any] | None:
    """The patch keeping `client` beside `forwarded`, or None when either is not JSON, the patch would be more than
    `most` of the body, or it would not give the body back."""
    try:
        wanted, base = orjson.loads(client), orjson.loads(forwarded)
    except orjson.JSONDecodeError:
        return None
    return _patch(wanted, base, forwarded, len(client), most)


def make_beside(
    client: dict[str, Any], forwarded: dict[str, Any], forwarded_bytes: bytes, length: int, most: float = 0.25
) -> dict[str, Any] | None:
    """make()'s patch when both bodies hold the same `messages` bytes (routing left the conversation raw): `client`
    and `forwarded` are their other top-level fields, decoded. Reading a 1 MB history twice to find it unchanged cost
    ~8 ms a request in process and ~35 ms of the benchmark's 1 MB p50 (docs/benchmarks.md); this reads none of it."""
    try:
        base = orjson.loads(orjson.dumps(forwarded))  # a copy: apply() changes it in place
    except orjson.JSONEncodeError:
        return None
    return _patch(client, base, forwarded_bytes, length, most)


def _patch(wanted: Any, base: Any, forwarded: bytes, length: int, most: float) -> dict[str, Any] | None:
    ops = diff(wanted, base)
    if len(orjson.dumps(ops)) > most * length:
        return None
    try:
        rebuilt = apply(base, ops)
    except ValueError:
        return None
    if _canonical(rebuilt) != _canonical(wanted):
        return None  # a value equal in Python but not in JSON (1 and true): keep the bytes
    return {"ops": ops, "crc": zlib.crc32(forwarded), "length": length}


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def rebuild(patch: Any, forwarded: bytes | None) -> bytes | None:
    """The client's body from its patch and the forwarded bytes; None when they are not the bytes it was made for,
    or the patch is not one."""
    if not isinstance(patch, dict) or forwarded is None or patch.get("crc") != zlib.crc32(forwarded):
        return None
    ops = patch.get("ops")
    if not isinstance(ops, list):
        return None
    try:
        return orjson.dumps(apply(orjson.loads(forwarded), ops))
    except (ValueError, TypeError):  # orjson's decode error is a ValueError
        return None


def size(patch: Any) -> int:
    """Roughly the bytes a kept patch holds."""
    return len(orjson.dumps(patch.get("ops") or [])) if isinstance(patch, dict) else 0


def stored_body(stored: dict[str, Any], forwarded: bytes | None) -> bytes | None:
    """The body a kept client request holds ("body"), or rebuilds from its "body_patch" and the forwarded bytes."""
    body = stored.get("body")
    if body is not None:
        return body.encode() if isinstance(body, str) else body if isinstance(body, bytes) else None
    return rebuild(stored.get("body_patch"), forwarded) if "body_patch" in stored else None


def whole(stored: object, forwarded: bytes | None) -> dict[str, Any] | None:
    """A kept client request ({method, path, headers, body | body_patch, ...}) with its body whole, rebuilt from
    the forwarded bytes; None when there is none or the patch does not fit those bytes (the request was edited)."""
    if not isinstance(stored, dict) or "body_patch" not in stored:
        return stored if isinstance(stored, dict) else None
    body = stored_body(stored, forwarded)
    if body is None:
        return None
    rebuilt = {k: v for k, v in stored.items() if k != "body_patch"}
    rebuilt["body"] = body
    return rebuilt


def encoded(stored: dict) -> bool:
    """Whether the kept body is compressed as the client sent it (its content-encoding header)."""
    return any(
        isinstance(pair, (list, tuple))
        and len(pair) == 2
        and str(pair[0]).lower() == "content-encoding"
        and str(pair[1]).strip().lower() not in ("", "identity")
        for pair in stored.get("headers") or ()
    )
