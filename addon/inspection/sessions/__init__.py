"""Sessions: each chat flow a numbered turn of its session (opencode's headers or a fingerprint), what is new since the turn before, and the session page."""
