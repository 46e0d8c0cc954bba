"""How each public verb of the facade meets an event loop, said once, beside the verb itself.

The async face (:mod:`.aio`) is built from these marks, so a verb added to the facade gets its
coroutine twin by being marked, and ``tests/test_async_face.py`` fails on a public verb left unmarked:

- ``read``: runs in the executor;
- ``shared_read``: runs in the executor, and identical concurrent calls share one (its arguments
  must be hashable);
- ``write``: runs in the executor through the face's one write path, which ends the sharing of
  reads begun before it (a caller always sees its own change);
- ``on_loop``: already async (a coroutine or an async iterator): handed through as it is;
- ``blocking_only``: no twin: it blocks for minutes by design (polling until a state settles), which
  an event loop never waits on; the server polls the read verbs instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeVar

Kind = Literal["read", "shared_read", "write", "on_loop", "blocking_only"]
F = TypeVar("F", bound=Callable[..., Any])
MARK = "__aqua_lab_verb__"


def _mark(kind: Kind) -> Callable[[F], F]:
    def mark(fn: F) -> F:
        setattr(fn, MARK, kind)
        return fn

    return mark


read = _mark("read")
shared_read = _mark("shared_read")
write = _mark("write")
on_loop = _mark("on_loop")
blocking_only = _mark("blocking_only")


def kind_of(fn: Any) -> Kind | None:
    return getattr(fn, MARK, None)


def public_verbs(cls: type) -> Iterator[tuple[str, Any]]:
    """Every public callable of ``cls`` (static methods included), in definition order."""
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        fn = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
        if callable(fn):
            yield name, fn
