"""Repairs for what opencode and Gemini get wrong about each other: fields, schemas, thought signatures, streamed tool calls. Pure."""
