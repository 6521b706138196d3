"""The request side: local endpoints, the proxy key, validation, resolution and rewriting before the upstream."""
