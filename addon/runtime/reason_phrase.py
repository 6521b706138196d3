"""Every status the proxy sends carries its own reason phrase: never `HTTP/1.1 502 OK`.

Responses the proxy makes (http.Response.make, formats/errors.py) get the phrase of their status. A response whose
status is changed afterwards (the native path turns Gemini's 200 with MALFORMED_FUNCTION_CALL into a 502) keeps
the phrase the upstream sent with the old status. This addon, after every addon that may change a status, puts
the status's own phrase back where the phrase is another status's or empty, in `responseheaders` (a streamed
answer's head leaves right after it) and in `response` (a whole answer's head leaves after it). A phrase that is no
standard one ("200 Success") is the upstream's own and is left as it came.
"""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.net.http import status_codes

STANDARD_PHRASES = frozenset(status_codes.RESPONSES.values())


def fix_reason(response: http.Response) -> None:
    """The status's own phrase in place of another status's (or none)."""
    right = status_codes.RESPONSES.get(response.status_code)
    if right and response.reason != right and (not response.reason or response.reason in STANDARD_PHRASES):
        response.reason = right


class ReasonPhrase:
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response and flow.live:
            fix_reason(flow.response)

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.response and flow.live:
            fix_reason(flow.response)
