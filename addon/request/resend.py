"""Edit and resend in the client's own format: two mitmproxy commands over the client request a flow keeps.

`llm.client.copy FLOWS` adds, for each chat flow, a new flow whose request is the client's request as it was sent
(OpenAI format, the client's model name, the client's path; credentials not kept). Edit it like any request (a
message, a tool schema, temperature, the model alias) and replay it: replay.py sees a request in the client's form
and routing translates it in full, as a new exchange. `llm.resend FLOWS` does both steps at once, unedited.

From mitmproxy console: `:llm.client.copy @focus`, then `e` to edit and `r` to replay. From mitmweb: its command
bar, or its API (`POST /commands/llm.resend` with `{"arguments": ["~comment local-model"]}`). Both take any flow
spec: @focus, @marked, a filter expression.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mitmproxy import command, ctx, flow, http

from ..formats.exchange import KEY, Exchange
from .client_request import complete, restore, whole

logger = logging.getLogger(__name__)


def client_flow(original: http.HTTPFlow) -> http.HTTPFlow | None:
    """A new, unsent flow holding `original`'s client request; None when the flow keeps no whole one."""
    found = Exchange.find(original)
    stored = whole(found.client_request, original.request.raw_content) if found is not None else None
    if stored is None or not complete(stored):
        return None
    made = original.copy()  # a new id; the connections say where the client came from
    made.response = made.error = made.is_replay = None
    made.metadata = {KEY: Exchange(client_request=stored, resend_of=original.id)}
    restore(made.request, stored)
    made.comment, made.marked = f"client request of {original.id}: edit it, then replay", ""
    return made


class Resend:
    @command.command("llm.client.copy")
    def client_copy(self, flows: Sequence[flow.Flow]) -> None:
        """Add a new flow with each chat flow's client request as it was sent, to edit and replay."""
        self.add(self.made(flows))

    @command.command("llm.resend")
    def resend(self, flows: Sequence[flow.Flow]) -> None:
        """Send each chat flow's client request through the proxy again, as a new flow."""
        made = self.made(flows)
        self.add(made)
        if made:
            ctx.master.commands.call("replay.client", made)

    @staticmethod
    def made(flows: Sequence[flow.Flow]) -> list[http.HTTPFlow]:
        made = []
        for each in flows:
            new = client_flow(each) if isinstance(each, http.HTTPFlow) else None
            if new is None:
                logger.warning(f"{getattr(each, 'id', each)}: no client request kept (not a chat flow, or cut)")
            else:
                made.append(new)
        return made

    @staticmethod
    def add(made: list[http.HTTPFlow]) -> None:
        view = ctx.master.addons.get("view")  # mitmweb and the console list flows; mitmdump has no view
        if view is not None and made:
            view.add(made)
