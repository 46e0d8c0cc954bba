"""Why a model server stopped, as its own log says: llama.cpp's error lines (``E`` level, and the
``GGML_ASSERT``/``GGML_ABORT`` line it dies on) since it last started or woke from sleep.

When ggml aborts it runs a debugger to print a backtrace into the log: dozens of lines that would be
all a short tail shows (a failed wake ends ``[Inferior 1 (process …) detached]``), so they are left
out, and the cause a user reads first is the engine's own words (``insufficient memory``, ``this GGUF
file is version …``)."""

from __future__ import annotations

import re
from pathlib import Path

#: how much of the end of a log is read: one start or wake writes a few hundred lines
TAIL_BYTES = 64 * 1024
#: the distinct error messages a cause names (the first says why, the last ones what gave up: the file)
CAUSE_MESSAGES = 3
MESSAGE_CHARS = 200
# where a run of the server begins: the supervisor's start line, llama-server leaving its sleep
_MARKERS = ("=== starting ", "exiting sleeping state")
_ERROR = re.compile(r"^[\d.]+ E (.+)$")  # "0.02.955.532 E gguf_init_from_reader: failed to read header"
_ABORT = re.compile(r"^\S+\.(?:c|cc|cpp|h):\d+: (.+)$")  # "…/ggml.c:1644: GGML_ASSERT(…) failed"
_THROWN = re.compile(r"^(terminate called after throwing .+|\s*what\(\): .+)$")
_DEBUGGER = re.compile(
    r"^(#\d+ |\[New LWP |\[Thread debugging |\[Inferior |Using host libthread_db|0x[0-9a-f]+ in |\d+\t|"
    r"warning: .*(debug|symbol))"
)


def last_run(path: Path) -> list[str]:
    """The log's lines since the server last started or woke, without a debugger's backtrace."""
    try:
        with open(path, "rb") as log:
            log.seek(0, 2)
            log.seek(max(0, log.tell() - TAIL_BYTES))
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return []
    lines = text.splitlines()
    begins = max((i for i, line in enumerate(lines) if any(m in line for m in _MARKERS)), default=0)
    return [line for line in lines[begins:] if line.strip() and not _DEBUGGER.match(line)]


def cause(lines: list[str]) -> str | None:
    """The engine's own error messages among ``lines``, the first and the last ones, in one line."""
    found: list[str] = []
    for line in lines:
        match = _ERROR.match(line) or _ABORT.match(line) or _THROWN.match(line)
        if match:
            message = " ".join(match.group(1).split())[:MESSAGE_CHARS]
            if message not in found:
                found.append(message)
    if not found:
        return None
    keep = found if len(found) <= CAUSE_MESSAGES else [found[0], *found[1 - CAUSE_MESSAGES :]]
    return "; ".join(keep)
