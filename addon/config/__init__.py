"""opencode.json and where a model name goes: loading, resolution, reloads. Pure: no mitmproxy."""
