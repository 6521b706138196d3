"""The one renderer of the LLM contentviews: document.py (record, sections, bodies, clipping), conversation.py."""
