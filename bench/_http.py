"""The HTTP the bench scripts share: a POST of JSON whose answer may stream (tornado's client, the same
for every target so it cancels out of a comparison), and waiting for a started server to answer.

Not a bench itself (the leading underscore keeps it out of the list of scripts the tests run)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse


async def post(
    url: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    on_chunk: Callable[[bytes], None] | None = None,
    timeout: float = 600,
) -> HTTPResponse:
    """POST ``body`` as JSON; ``on_chunk`` sees the answer as it arrives.  An error status is returned,
    not raised: the caller says what it means for its measurement."""
    return await AsyncHTTPClient().fetch(
        HTTPRequest(
            url,
            method="POST",
            body=json.dumps(body),
            headers={"Content-Type": "application/json", **(headers or {})},
            streaming_callback=on_chunk,
            request_timeout=timeout,
        ),
        raise_error=False,
    )


def wait_until_answers(url: str, proc: subprocess.Popen, what: str, seconds: float = 30, every: float = 0.25) -> None:
    """Return once ``url`` answers; kill ``proc`` and raise if it does not within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(every)
    proc.kill()
    proc.wait(10)  # reaped, so a long bench run does not collect zombies
    raise RuntimeError(f"{what} did not start within {seconds:g} s")
