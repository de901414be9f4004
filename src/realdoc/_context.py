"""The docroot pinned for the request being served, and safe joins under it.

Either middleware (:mod:`realdoc.wsgi`, :mod:`realdoc.asgi`) sets
:data:`DOCROOT` for exactly the span of one request, with a token reset, so
code deep in an app can call :func:`docroot` instead of threading the WSGI
environ or ASGI scope through.  A ``ContextVar`` is per thread (threaded
servers) and per asyncio task, so concurrent requests never see each other's
value, and a reused thread or task never sees a stale one.

Build file paths with :func:`join` from that one value, never through the
symlinked docroot again: every file a request reads then comes from the same
release, even if ``current`` flips in the middle of the request.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from typing import Any, List, Union, overload

__all__ = ["DOCROOT", "docroot", "join"]

#: The pinned real docroot of the current request (set by the middlewares only).
DOCROOT: ContextVar[str] = ContextVar("realdoc.docroot")

_OUTSIDE = (
    "realdoc.docroot() was called outside a request: no realdoc middleware "
    "(realdoc.wsgi.RealdocMiddleware or realdoc.asgi.RealdocMiddleware) is serving "
    "a request in this thread or task"
)


def docroot() -> str:
    """Return the real docroot pinned for the request being served.

    The value was resolved once, when the request entered a realdoc middleware,
    and stays the same for the whole request (a WSGI streaming body included).
    No syscall.  Raises LookupError outside a request (at import time, in a
    background thread or task the request did not start, after it finished).
    """
    try:
        return DOCROOT.get()
    except LookupError:
        raise LookupError(_OUTSIDE) from None


StrPath = Union[str, "os.PathLike[str]"]
BytesPath = Union[bytes, "os.PathLike[bytes]"]


def _plain(value: Any) -> Any:
    """Return a str or bytes subclass instance as a plain str or bytes (same value)."""
    cls = type(value)
    if cls is str or cls is bytes:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bytes):
        return bytes.__add__(b"", value)
    return value


@overload
def join(root: StrPath, *parts: StrPath) -> str: ...
@overload
def join(root: BytesPath, *parts: BytesPath) -> bytes: ...
def join(root: Any, *parts: Any) -> Any:
    """Join relative ``parts`` under ``root`` and refuse to leave it.

    The way to build file paths under the pinned docroot:
    ``open(realdoc.join(realdoc.docroot(), "css", "site.css"))``.  ``root`` and
    ``parts`` are str or bytes (or ``os.PathLike``), all of one kind; a part may
    hold several components (``"css/site.css"``).  Empty and ``.`` components
    are dropped; with no components left the result is ``root`` unchanged.

    Purely lexical: no syscall, so symlinks below ``root`` are followed by the
    kernel when the path is opened (whoever controls the release controls
    those).  Raises ValueError for an absolute part, for any ``..`` component
    (lexically it cannot be told whether ``a/..`` stays under ``root`` when
    ``a`` is a symlink, so none is accepted) and for a NUL byte in ``root`` or
    a part, and for an empty ``root``; TypeError for mixed str and bytes or a
    non-path argument.  Subclasses of str and bytes (``markupsafe.Markup``, say)
    count as str and bytes and may be mixed with them; they are taken by value, so
    the result is always a plain ``str`` or ``bytes`` (no subclass's ``+`` or
    escaping runs).
    """
    base: Any = _plain(os.fspath(root))
    sep: Any
    dot: Any
    dotdot: Any
    nul: Any
    if isinstance(base, str):
        sep, dot, dotdot, nul = "/", ".", "..", "\0"
    else:
        sep, dot, dotdot, nul = b"/", b".", b"..", b"\0"
    if not base:
        raise ValueError("join: root must not be empty")
    if nul in base:
        raise ValueError(f"join: root contains a NUL byte: {base!r}")
    comps: List[Any] = []
    for part in parts:
        p: Any = _plain(os.fspath(part))
        if type(p) is not type(base):
            raise TypeError(
                f"join: cannot mix {type(base).__name__} and {type(p).__name__} arguments"
            )
        if nul in p:
            raise ValueError(f"join: part contains a NUL byte: {p!r}")
        if p.startswith(sep):
            raise ValueError(f"join: absolute part {p!r} would leave the root")
        for c in p.split(sep):
            if c == dotdot:
                raise ValueError(f"join: part {p!r} has a '..' component")
            if c and c != dot:
                comps.append(c)
    if not comps:
        return base
    if not base.endswith(sep):
        base += sep
    return base + sep.join(comps)
