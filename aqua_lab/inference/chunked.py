"""HTTP/1.1 chunked transfer coding, decoding side: what the upstream pool reads from model servers and
the router's server reads from clients."""

from __future__ import annotations

import re

# hex digits only: int(..., 16) also takes "0x1f", "+5", "1_0" and spaces, which a proxy in front may
# read as another size (a smuggled request); a chunk extension after ";" is allowed and ignored
_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[^\r\n]*)?")


def unchunk(buffer: bytearray) -> tuple[list[bytes], bool]:
    """Take the complete chunks off the front of a chunked body (``buffer`` keeps what is left): their
    data, and whether the last chunk (size 0, with its trailers) was among them.  Raises ``ValueError``
    for a malformed body."""
    pieces, at = [], 0
    while (line_end := buffer.find(b"\r\n", at)) >= 0:
        match = _SIZE_LINE.fullmatch(buffer, at, line_end)
        if match is None:
            raise ValueError(f"chunk size line {bytes(buffer[at:line_end][:40])!r} is not hex digits")
        size = int(match[1], 16)
        if size == 0:  # trailers, if any, then a blank line
            end = buffer.find(b"\r\n\r\n", line_end)
            if end < 0:
                break
            del buffer[: end + 4]
            return pieces, True
        start, stop = line_end + 2, line_end + 2 + size
        if len(buffer) < stop + 2:
            break
        if buffer[stop : stop + 2] != b"\r\n":
            raise ValueError("chunk without its CRLF")
        pieces.append(bytes(buffer[start:stop]))
        at = stop + 2
    if buffer.find(b"\r\n", at) < 0 and len(buffer) - at > 1024:
        raise ValueError("chunk size line of over 1 KiB")
    del buffer[:at]
    return pieces, False
