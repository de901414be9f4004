"""The release, visible: its name in a response header and in log records.

A deploy's smoke test wants to know which release answered, and a log line
which release served it.  The *release name* is the name of the release
directory (``r42`` for ``/srv/app/releases/r42``), computed without a syscall:

* when the process is pinned (:func:`realdoc.pin_process`) and the request's
  docroot lies under the process's release, the release's name;
* otherwise the configured docroot's link target: the resolved docroot with
  the trailing components it shares with the configured one removed
  (``/srv/app/current/public`` resolved to ``/srv/app/releases/r42/public``
  gives ``r42``); when nothing differs (no symlink on the docroot path) the
  resolved docroot's own last component.

Both middlewares take ``header="X-Release"`` (opt-in; ``None`` reads
``REALDOC_HEADER``, ``""`` turns it off even when the variable is set) and add
that header, valued with the release name, to every ``http`` response (and
websocket accept).  :class:`ReleaseFilter` sets ``record.release`` on log
records: the release of the request being served in this thread or task, else
the process's release, else ``"-"``.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, Dict, Mapping, Optional
from urllib.parse import quote

from ._context import DOCROOT
from ._process import pinned

__all__ = ["ENV_HEADER", "ReleaseFilter", "current_release_name", "header_option",
           "header_value", "release_name", "remember"]

ENV_HEADER = "REALDOC_HEADER"

#: RFC 9110 field-name characters (a token).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")

# resolved docroot -> release name, for ReleaseFilter; filled by the middlewares.
_names: Dict[str, str] = {}
_MAX_NAMES = 256


def header_option(header: Any, environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The response header name to send, or ``None`` for none.

    ``header`` given in code wins: a field name (str), or ``""`` for none.
    ``None`` reads ``REALDOC_HEADER`` (blank or unset: none).  Raises
    TypeError for a non-str and ValueError for a name that is not an HTTP
    field-name token (naming ``REALDOC_HEADER`` when it came from there).
    """
    source = "header"
    if header is None:
        env = os.environ if environ is None else environ
        header = (env.get(ENV_HEADER) or "").strip()
        source = ENV_HEADER
    if not isinstance(header, str):
        raise TypeError(f"header must be a str (a header name) or None, not "
                        f"{type(header).__name__}")
    if header == "":
        return None
    if not _TOKEN.match(header):
        raise ValueError(f"{source}={header!r} is not an HTTP header name "
                         "(letters, digits and !#$%&'*+-.^_`|~ only)")
    return header


def release_name(configured: str, root: str) -> str:
    """The release name for resolved docroot ``root`` of configured docroot
    ``configured`` (both absolute str), by the rule in this module's docs.  No
    syscall."""
    pin = pinned()
    if pin is not None:
        release = pin.release
        if root == release or root.startswith(release + "/"):
            return os.path.basename(release)
    want = os.path.abspath(configured).split("/")
    got = root.rstrip("/").split("/")
    while len(want) > 1 and len(got) > 1 and want[-1] == got[-1]:
        want.pop()
        got.pop()
    name = os.path.basename(root.rstrip("/")) if got == want else got[-1]
    return name or "/"


_SAFE = "".join(chr(c) for c in range(0x20, 0x7f) if chr(c) != "%")


def header_value(name: str) -> str:
    """``name`` as a header value: printable ASCII as is, anything else (and
    ``%``) percent-encoded from its UTF-8 bytes (surrogate escapes as the raw bytes)."""
    if name.isascii() and name.isprintable() and "%" not in name:
        return name
    return quote(name.encode("utf-8", "surrogateescape"), safe=_SAFE)


def remember(root: str, name: str) -> None:
    """Record ``name`` for resolved docroot ``root`` (for :class:`ReleaseFilter`)."""
    if len(_names) >= _MAX_NAMES:
        _names.clear()
    _names[root] = name


class ReleaseFilter(logging.Filter):
    """A :class:`logging.Filter` that adds ``record.release`` and passes every record.

    ``record.release`` is the release name (see :mod:`realdoc._release`) of the
    request being served in this thread or task when a realdoc middleware set
    its docroot, else the process's release name when it is pinned, else
    ``"-"``.  A record that already has a ``release`` attribute keeps it.  No
    syscall.  Attach it to a handler (so every record it emits has the field)
    and use ``%(release)s`` in the format::

        handler.addFilter(realdoc.ReleaseFilter())
        handler.setFormatter(logging.Formatter("%(release)s %(message)s"))
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "release"):
            record.release = current_release_name()
        return True


def current_release_name() -> str:
    """The name :class:`ReleaseFilter` gives: request, else process, else ``"-"``."""
    root = DOCROOT.get(None)
    pin = pinned()
    if root is not None:
        name = _names.get(root)
        if name is not None:
            return name
        if pin is not None and (root == pin.release or root.startswith(pin.release + "/")):
            return os.path.basename(pin.release)
        return os.path.basename(root.rstrip("/")) or "/"
    if pin is not None:
        return os.path.basename(pin.release)
    return "-"
