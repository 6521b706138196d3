"""The response side: JSON answers, SSE streams rewritten as they pass, upstream timeouts, fallbacks."""
