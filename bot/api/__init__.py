"""The JSON doors, one blueprint each: the spec's chat API (spec_door.py, `/api/v1/...`) and the
OpenAI-compatible API (openai_door.py, `/v1/...`). Each answers its own errors in its own shape."""
