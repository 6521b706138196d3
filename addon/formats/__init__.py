"""What OpenAI-format traffic looks like: error shapes, SSE events, the answer a stream folds into. Pure: no project imports above it."""
