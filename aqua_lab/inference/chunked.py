"""HTTP/1.1 chunked transfer coding, decoding side: what the upstream pool reads from model servers and
the router's server reads from clients."""

from __future__ import annotations


def unchunk(buffer: bytearray) -> tuple[list[bytes], bool]:
    """Take the complete chunks off the front of a chunked body (``buffer`` keeps what is left): their
    data, and whether the last chunk (size 0, with its trailers) was among them.  Raises ``ValueError``
    for a malformed body."""
    pieces, at = [], 0
    while (line_end := buffer.find(b"\r\n", at)) >= 0:
        size = int(bytes(buffer[at:line_end]).split(b";", 1)[0].strip(), 16)
        if size < 0:
            raise ValueError("negative chunk size")
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
