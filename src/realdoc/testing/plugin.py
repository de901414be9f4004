"""pytest plugin for realdoc: deploy-tree fixtures and strace-based syscall counting.

Opt-in: load it with ``-p realdoc.testing`` (or ``pytest_plugins =
["realdoc.testing"]`` in a top-level conftest.py).  Provides:

- fixture ``deploy_tree``: a :class:`DeployTree` with three releases in ``tmp_path``;
- fixture ``syscall_counter``: :func:`count_syscalls`, or a skip when strace
  cannot run (a failure instead when ``CI`` is set to a true value);
- :func:`count_syscalls_in_child` / :func:`count_syscalls`: count the syscalls a
  snippet or callable issues, by name as strace prints them.

Counting is done by :mod:`realdoc.testing.strace` (no pytest needed there; its docstring
says how the markers work).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, NoReturn

import pytest

from .strace import (
    StraceUnavailable,
    SyscallTrace,
    count_syscalls,
    count_syscalls_in_child,
    in_ci,
    strace_available,
    strace_status,
)
from .tree import DeployTree, Flipper

__all__ = [
    "DeployTree",
    "Flipper",
    "StraceUnavailable",
    "SyscallTrace",
    "count_syscalls",
    "count_syscalls_in_child",
    "deploy_tree",
    "require_strace",
    "strace_available",
    "syscall_counter",
]


def _skip_or_fail(reason: str) -> NoReturn:
    msg = f"strace is not available: {reason}"
    if in_ci():
        pytest.fail(f"{msg} (CI is set: CI must install strace)", pytrace=False)
    pytest.skip(msg)


def require_strace() -> None:
    """Skip the calling test if strace cannot trace; fail instead if ``CI`` is true."""
    ok, detail = strace_status()
    if not ok:
        _skip_or_fail(detail)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def deploy_tree(tmp_path: Path) -> DeployTree:
    """A fresh :class:`DeployTree` at ``tmp_path/site``: releases r1..r3, ``current -> r1``."""
    return DeployTree.create(tmp_path / "site", releases=3)


CountSyscalls = Callable[..., SyscallTrace]


@pytest.fixture
def syscall_counter() -> CountSyscalls:
    """:func:`count_syscalls`, skipping the test when strace cannot run or attach.

    When the ``CI`` environment variable is true (``1``/``true``/``yes``/``on``)
    the test fails instead of skipping: CI installs strace, so its absence is
    a bug there.
    """
    require_strace()

    def counter(
        func: Callable[[], object], *, repeat: int = 1, subtract_baseline: bool = True
    ) -> SyscallTrace:
        try:
            return count_syscalls(func, repeat=repeat, subtract_baseline=subtract_baseline)
        except StraceUnavailable as e:
            _skip_or_fail(str(e))

    return counter
