"""What a person reads: the log, the flow comment and marks, tool-call checks, the LLM chat view."""
