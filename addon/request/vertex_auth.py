"""Vertex AI's OAuth token on requests routed there: an async request hook, so that minting or refreshing the
token (runtime/google_token.py, in a worker thread) never blocks the event loop. Runs after Routing."""

from __future__ import annotations

import logging

from mitmproxy import http

from ..config import resolution
from ..formats.exchange import Exchange
from ..runtime import google_token, upstream_key
from .local_answers import error_response

logger = logging.getLogger(__name__)


class VertexAuth:
    def __init__(self) -> None:
        self.google = google_token.GoogleToken()

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        ex = Exchange.find(flow)
        if ex is None or not ex.vertex_auth:
            return
        try:
            token = await self.google.token()
        except google_token.CredentialsError as e:
            logger.warning(str(e))
            return error_response(flow, 502, str(e), "upstream_credentials")
        masked = resolution.mask_key(token)
        ex.key = masked
        upstream_key.attach_key(flow.request, token, masked)
