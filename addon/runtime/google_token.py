"""Google application-default credentials for Vertex AI: an OAuth access token, minted and refreshed by
google-auth in a worker thread (its refresh is a blocking HTTP call to the credentials' token_uri).

The credentials come from where google-auth looks: GOOGLE_APPLICATION_CREDENTIALS (a service-account JSON
file), gcloud's application-default login, or the metadata server. The token is never logged; the flow shows
it masked (upstream_key.attach_key).
"""

from __future__ import annotations

import asyncio
from typing import Any

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


class CredentialsError(RuntimeError):
    """No usable Google credentials; the message says where google-auth looked and what to set."""


class GoogleToken:
    """One set of credentials for the proxy's life, refreshed when google-auth says the token is not valid."""

    def __init__(self) -> None:
        self.credentials: Any = None
        self._lock: asyncio.Lock | None = None

    async def token(self) -> str:
        """A valid access token; refreshes (once, for all waiting requests) off the event loop."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.credentials is None:
                self.credentials = await asyncio.to_thread(load_credentials)
            if not self.credentials.valid:
                await asyncio.to_thread(refresh, self.credentials)
            return self.credentials.token


def load_credentials() -> Any:
    """google.auth.default() with the cloud-platform scope; CredentialsError when there are none."""
    import google.auth
    import google.auth.exceptions

    try:
        credentials, _project = google.auth.default(scopes=list(SCOPES))
    except google.auth.exceptions.DefaultCredentialsError as e:
        raise CredentialsError(
            f"No Google credentials for Vertex AI: {e} Set GOOGLE_APPLICATION_CREDENTIALS to a service-account "
            "JSON file, or run `gcloud auth application-default login`."
        ) from None
    return credentials


def refresh(credentials: Any) -> None:
    """Mint a new token (blocking: run it in a thread); CredentialsError without the token in the message."""
    import google.auth.exceptions
    import google.auth.transport.requests

    try:
        credentials.refresh(google.auth.transport.requests.Request())
    except (google.auth.exceptions.GoogleAuthError, OSError) as e:
        raise CredentialsError(f"Google did not give Vertex AI a token: {type(e).__name__}: {e}") from None
