"""addon/inspection/sessions/keys.py: the session a request names in its headers, or its conversation's fingerprint."""

import pytest
from mitmproxy import http

from addon.inspection.sessions import keys as session_keys
from addon.inspection.sessions.keys import SessionKey
from tests.session_fixtures import SESSION_ID, TURNS


def test_the_headers_opencode_really_sends():
    headers = http.Headers(**{k.replace("-", "_"): v for k, v in TURNS[0]["headers"].items()})
    assert session_keys.from_headers(headers) == SessionKey(SESSION_ID, None, "header")


def test_a_subagent_names_its_parent():
    headers = http.Headers(
        [(b"X-Session-Id", b"ses_child"), (b"x-session-affinity", b"ses_child"), (b"x-parent-session-id", b"ses_p")]
    )
    assert session_keys.from_headers(headers) == SessionKey("ses_child", "ses_p", "header")


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({}, None),
        ({"x-session-id": "ses_b"}, "ses_b"),  # either header names the session
        ({"x-claude-code-session-id": "cc-1"}, "cc-1"),  # Claude Code
        ({"session-id": "codex-1"}, "codex-1"),  # Codex CLI
        ({"x-session-affinity": "  "}, None),
        ({"x-session-affinity": "a\x00b"}, None),  # not printable: not an id
        ({"x-session-affinity": "s" * 1000}, "s" * 128),  # cut: a label, not a key
    ],
)
def test_header_values(headers, expected):
    key = session_keys.from_headers(http.Headers(**{k.replace("-", "_"): v for k, v in headers.items()}))
    assert (key.id if key else None) == expected


def test_fingerprint_depends_on_system_prompt_and_first_user_message_only():
    a = session_keys.fingerprint(1, 2)
    assert a == session_keys.fingerprint(1, 2) and a.source == "fingerprint" and a.id.startswith("fp-")
    assert len(a.id) == 19
    assert len({a, session_keys.fingerprint(1, 3), session_keys.fingerprint(3, 2)}) == 3


def test_tags_are_short_and_stable_across_runs():
    assert session_keys.tag("ses_dd6337eefffe2xpeYnqyaXJyfm") == "s:5511"  # the same on every run
    assert len(session_keys.tag("x")) == 6 and len(session_keys.tag("x", 6)) == 8
