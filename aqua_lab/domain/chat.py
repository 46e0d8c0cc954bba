"""Chat: the REST face of the one OpenAI wire, and the text a stream chunk adds.

``ChatRequest``, ``CompareRequest`` and ``ChatMessage`` live in :mod:`aqua_lab.inference.protocol`
(every sampling field's bounds are written there, once) and are re-exported here for the fronts.
"""

from __future__ import annotations

from typing import Any

from ..inference.protocol import ChatMessage, ChatRequest, ChatRoute, CompareRequest

__all__ = ["ChatMessage", "ChatRequest", "ChatRoute", "CompareRequest", "chunk_text"]


def chunk_text(chunk: dict[str, Any]) -> str:
    """The text an OpenAI stream chunk adds (chat: ``delta.content``; completions: ``text``)."""
    choice = (chunk.get("choices") or [{}])[0]
    return choice.get("delta", {}).get("content") or choice.get("text") or ""
