"""realdoc: pin a symlinked docroot to its real path once per request.

Apache mod_realdoc's atomic-deploy trick for Python app servers.  Public names:
``realpath``, ``first_link`` (the core), ``Resolver`` and ``resolve`` (the
per-process cache), ``stats``, ``cache_info``, ``clear``, ``set_maxsize``,
``get_maxsize`` (introspection), ``switch`` (the atomic flip, with
``SwitchConflict``, ``SwitchCheckFailed`` and ``SwitchResult``), ``status``, ``prune``
and ``rollback`` (the release lifecycle, with ``Status``, ``PruneResult`` and
``NoPreviousRelease``), ``docroot`` and ``join`` (the request's pinned
docroot, set by ``realdoc.wsgi`` / ``realdoc.asgi`` middleware), and
``pin_process`` and ``process_release`` (the process pin, with rollover),
``ReleaseFilter`` (the release on log records), and
``implementation`` (``"cython"`` or ``"python"``).
"""

from __future__ import annotations

from ._context import docroot, join
from ._impl import (
    IMPLEMENTATION as implementation,
    Resolver,
    cache_info,
    clear,
    features,
    first_link,
    get_maxsize,
    realpath,
    resolve,
    set_features,
    set_maxsize,
    stats,
)
from ._lifecycle import NoPreviousRelease, PruneResult, Status, prune, rollback, status
from ._process import pin_process, process_release
from ._release import ReleaseFilter
from ._switch import (
    SwitchCheckFailed,
    SwitchConflict,
    SwitchResult,
    switch,  # the function; the module stays importable as realdoc.switch
)

__version__ = "0.2.0.dev0"

__all__ = [
    "NoPreviousRelease",
    "PruneResult",
    "ReleaseFilter",
    "Resolver",
    "SwitchCheckFailed",
    "Status",
    "SwitchConflict",
    "SwitchResult",
    "__version__",
    "cache_info",
    "clear",
    "docroot",
    "features",
    "first_link",
    "get_maxsize",
    "implementation",
    "join",
    "pin_process",
    "process_release",
    "prune",
    "realpath",
    "resolve",
    "rollback",
    "set_features",
    "set_maxsize",
    "stats",
    "status",
    "switch",
]
