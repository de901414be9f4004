"""Test helpers for realdoc users: deploy trees, a flipper, strace syscall counting.

Nothing here runs unless asked for.  The pytest plugin is opt-in: load it with
``-p realdoc.testing`` on the command line, or ``pytest_plugins =
["realdoc.testing"]`` in a top-level ``conftest.py``.  It then provides the
fixtures ``deploy_tree`` and ``syscall_counter`` (:mod:`realdoc.testing.plugin`).
Installing realdoc registers no plugin, so it never changes how another
project's test suite runs.

Importing this package imports neither pytest nor realdoc's core: the helpers
are in :mod:`realdoc.testing.tree` (:class:`DeployTree`, :class:`Flipper`) and
:mod:`realdoc.testing.strace` (:func:`count_syscalls`,
:func:`count_syscalls_in_child`) and :mod:`realdoc.testing.servers`
(:func:`free_port`, :func:`stop_process_group`), all standard library only.
"""

from __future__ import annotations

from .servers import free_port, stop_process_group
from .strace import (
    StraceUnavailable,
    SyscallTrace,
    count_syscalls,
    count_syscalls_in_child,
    strace_available,
)
from .tree import DeployTree, Flipper

#: Loaded by pytest when this package is given to ``-p`` or ``pytest_plugins``.
pytest_plugins = ["realdoc.testing.plugin"]

__all__ = [
    "DeployTree",
    "Flipper",
    "StraceUnavailable",
    "SyscallTrace",
    "count_syscalls",
    "count_syscalls_in_child",
    "free_port",
    "stop_process_group",
    "strace_available",
]
