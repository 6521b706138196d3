"""Which model names the proxy takes: one rule, checked when a request is read and when a name is resolved (pure).

A name is at most 256 characters of printable text, spaces and any script included (opencode's provider keys can
read `KTDS Model/gemini-3-flash-preview`). Refused: an empty or blank name, control characters, the URL
characters `?`, `#`, `%` and the backslash, and an empty, blank, `.` or `..` segment between slashes (a name ends
up in upstream URLs and flow files, so it must not reach outside them).
"""

from __future__ import annotations

import re

MAX_LENGTH = 256
_URL_CHAR = re.compile(r"[?#%\\]")


def check_model_name(model: str) -> None:
    """Raise ValueError, saying what is wrong, unless `model` is a name the proxy can route."""
    if not model.strip():
        raise ValueError("The model name is empty; ask for a model such as 'local-model'.")
    if len(model) > MAX_LENGTH:
        raise ValueError(f"The model name is {len(model)} characters long; at most {MAX_LENGTH} are allowed.")
    bad = _URL_CHAR.search(model)
    if bad or not model.isprintable():
        char = bad[0] if bad else next(c for c in model if not c.isprintable())
        raise ValueError(f"The model name {model[:80]!r} contains {char!r}, which a model name may not contain.")
    if any(part.strip() in ("", ".", "..") for part in model.split("/")):
        raise ValueError(f"The model name {model!r} has an empty, '.' or '..' path segment; use 'provider/model'.")
