"""The translation proxy: a mitmproxy addon between OpenAI-format clients and OpenAI-compatible model servers."""
