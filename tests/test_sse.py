"""The SSE parser: events split anywhere, CRLF, multi-line data, comments, named events, [DONE]."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aqua_lab.inference.sse import Event, SSEParser, iter_events

pytestmark = pytest.mark.inference

STREAM = (
    b": keep-alive\r\n\r\n"
    b'data: {"a": 1}\r\n\r\n'
    b"event: error\ndata: line one\ndata: line two\n\n"
    b"id: 7\ndata:no-space\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    Event('{"a": 1}'),
    Event("line one\nline two", "error"),
    Event("no-space", "message", "7"),
    Event("[DONE]", "message", "7"),
]


def test_a_whole_stream():
    events = SSEParser().feed(STREAM)
    assert events == EXPECTED
    assert events[-1].done and not events[0].done


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=12, unique=True))
def test_the_same_events_however_the_bytes_are_split(cuts):
    cuts = sorted(cuts)
    pieces = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
    assert list(iter_events(pieces)) == EXPECTED


def test_an_unterminated_last_event_is_flushed_at_the_end():
    assert list(iter_events([b"data: tail"])) == [Event("tail")]
