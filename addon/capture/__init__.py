"""Capture mode, the second product: a forward proxy that only watches any provider's LLM traffic and shows it (format readers, credentials masked in the flows)."""
