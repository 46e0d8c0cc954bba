"""The one Server-Sent Events parser (the WHATWG rules that matter here), fed bytes as they arrive.

Lines are cut on the bytes and each is decoded whole, so a UTF-8 character split across two network
reads arrives intact (decoding each read on its own turns it into U+FFFD).  Handles events split
anywhere, ``\\r\\n`` and ``\\r`` line ends, multi-line ``data``, comments, ``event:`` names; the OpenAI
``data: [DONE]`` terminator is just an event whose data is ``[DONE]``.  Each event keeps the exact
bytes it came in (``raw``, comments before it included), so a relay such as the local router can pass
a stream on unchanged while reading it — one parse per stream, not two.  A parser made with
``comments=True`` also yields each comment line as an event of its own (``comment`` set, the text
after the colon as ``data``): the local router tells a stream that its model is waking that way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class Event:
    data: str
    event: str = "message"
    id: str | None = None
    raw: bytes = field(default=b"", compare=False, repr=False)
    comment: bool = False

    @property
    def done(self) -> bool:
        return self.data.strip() == "[DONE]"


class SSEParser:
    def __init__(self, comments: bool = False) -> None:
        self._comments = comments
        self._buffer = b""  # bytes after the last complete line
        self._raw = bytearray()  # the complete lines of the event being read
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None

    def feed(self, chunk: bytes | str) -> list[Event]:
        if isinstance(chunk, str):
            chunk = chunk.encode()
        elif not isinstance(chunk, bytes):  # a bytearray or memoryview: events carry bytes
            chunk = bytes(chunk)
        buffer = self._buffer + chunk if self._buffer else chunk
        # an event's raw bytes are one slice of ``buffer`` (from ``since``), joined once when it ends
        # rather than line by line; only a comment yielded on its own breaks the run
        events, start, since, size = [], 0, 0, len(buffer)
        crlf = b"\r" in buffer  # the regex only where a \r may end a line: engines send \n
        while True:
            if crlf:
                end = _LINE_END.search(buffer, start)
                if end is None:
                    break
                stop, after = end.span()
                if after == size and after - stop == 1 and buffer[stop] == 13:
                    break  # a lone \r at the end may be half of \r\n
            else:
                stop = buffer.find(b"\n", start)
                if stop < 0:
                    break
                after = stop + 1
            line, begun, start = buffer[start:stop], start, after
            if not line:
                if not self._data:
                    self._event = ""  # a comment-only block: its bytes go out with the next event
                    continue
                raw = buffer[since:after]
                if self._raw:
                    raw, self._raw = bytes(self._raw) + raw, bytearray()
                events.append(Event("\n".join(self._data), self._event or "message", self._id, raw))
                self._data, self._event, since = [], "", after
            elif line[0] == 58:  # ":", a comment
                if self._comments:
                    self._raw += buffer[since:begun]
                    since = after
                    events.append(
                        Event(line[1:].strip().decode("utf-8", "replace"), raw=buffer[begun:after], comment=True)
                    )
            else:
                name, _, value = line.partition(b":")
                if value[:1] == b" ":
                    value = value[1:]
                if name == b"data":
                    self._data.append(value.decode("utf-8", "replace"))
                elif name == b"event":
                    self._event = value.decode("utf-8", "replace")
                elif name == b"id":
                    self._id = value.decode("utf-8", "replace")
        self._raw += buffer[since:start]
        self._buffer = buffer[start:]
        return events

    def close(self) -> list[Event]:
        """The events an unterminated end of the stream still makes (as if it ended with a blank line)."""
        return self.feed(b"\n\n") if self._buffer or self._data else []

    def pending(self) -> bytes:
        """The bytes received that no event has carried yet (an unfinished event, trailing comments)."""
        return bytes(self._raw) + self._buffer


def iter_events(chunks: Iterable[bytes]) -> Iterator[Event]:
    parser = SSEParser()
    for chunk in chunks:
        yield from parser.feed(chunk)
    yield from parser.close()
