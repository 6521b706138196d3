"""mitmproxy integration: the patches of its internals, memory, flow retention, clean shutdown, option help."""
