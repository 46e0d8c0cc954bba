"""Talking to deployed models: SSE parsing and OpenAI-compatible requests."""
