"""Option help text in the exact form mitmproxy stores it.

mitmproxy re-declares an addon's options when its script reloads, and keeps their current values only if the
declaration is unchanged — comparing the help text as given with the help as stored (dedented, stripped, one
line). A multi-line help string therefore never compares equal, and every `--set` value would silently fall
back to its default on reload. Passing help through `one_paragraph` makes the two equal.
"""

import textwrap


def one_paragraph(text: str) -> str:
    return textwrap.dedent(text).strip().replace("\n", " ")
