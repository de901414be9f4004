"""Helpers for tests that run a real server: a free port, and stopping its process group.

Standard library only.  Start the server with ``start_new_session=True`` so that
it leads a process group of its own, which holds its workers too; then
:func:`stop_process_group` ends all of them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from typing import Any

__all__ = ["free_port", "stop_process_group"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on now.

    The kernel picks it (bind to port 0, read it back, close); another process
    may take it before the server binds it, which on a test machine is rare.
    Errors: OSError from ``socket``/``bind`` (``host`` not local, say).
    Syscalls: socket, bind, getsockname, close.
    """
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def stop_process_group(proc: "subprocess.Popen[Any]", sig: int = signal.SIGTERM,
                       timeout: float = 10.0) -> int:
    """Send ``sig`` to ``proc``'s process group, wait for ``proc``; SIGKILL the group after.

    ``proc`` must lead its group (``start_new_session=True``).  After ``proc``
    exits, or ``timeout`` seconds, the group gets SIGKILL, for workers that
    outlived it; then ``proc`` is waited for again (``timeout`` seconds).  A group
    already gone is not an error.  Returns ``proc``'s exit status.
    Errors: subprocess.TimeoutExpired if ``proc`` survives SIGKILL for
    ``timeout`` seconds.  Syscalls: kill (twice), wait4.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait(timeout)
