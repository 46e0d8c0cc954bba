"""A Server-Sent Events parser (the WHATWG rules that matter here), fed bytes as they arrive.

Handles events split across chunks, ``\\r\\n`` line ends, multi-line ``data``, comments, ``event:``
names; the OpenAI ``data: [DONE]`` terminator is just an event whose data is ``[DONE]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    data: str
    event: str = "message"
    id: str | None = None

    @property
    def done(self) -> bool:
        return self.data.strip() == "[DONE]"


class SSEParser:
    def __init__(self) -> None:
        self._buffer = ""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None

    def feed(self, chunk: bytes | str) -> list[Event]:
        self._buffer += chunk.decode("utf-8", "replace") if isinstance(chunk, bytes) else chunk
        events = []
        while True:
            cut = min((i for i in (self._buffer.find("\n"), self._buffer.find("\r")) if i >= 0), default=-1)
            if cut < 0:
                return events
            line = self._buffer[:cut]
            skip = 2 if self._buffer[cut : cut + 2] == "\r\n" else 1
            if self._buffer[cut] == "\r" and cut + 1 == len(self._buffer):
                return events  # a lone \r at the end may be half of \r\n
            self._buffer = self._buffer[cut + skip :]
            event = self._line(line)
            if event is not None:
                events.append(event)

    def _line(self, line: str) -> Event | None:
        if line == "":
            if not self._data:
                self._event = ""
                return None
            event = Event("\n".join(self._data), self._event or "message", self._id)
            self._data, self._event = [], ""
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None


def iter_events(chunks: Iterable[bytes]) -> Iterator[Event]:
    parser = SSEParser()
    for chunk in chunks:
        yield from parser.feed(chunk)
    yield from parser.feed("\n\n")
