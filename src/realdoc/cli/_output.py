"""Writing a command's result to stdout without turning a done operation into a failure.

Policy of every ``realdoc`` subcommand, once its operation has happened (a link was
switched, a path resolved, a demo run):

* **Broken pipe** (``realdoc resolve X | true``, ``| head -0``): the rest of the
  output is dropped quietly, no message and no traceback, and the exit code stays
  the operation's (0 after a success).  realdoc does not die of SIGPIPE (status
  141) the way ``cat`` does: a deploy script running with ``set -o pipefail`` must
  not read a switch that happened as a failure.
* **Any other write error** (``>/dev/full``: ENOSPC; stdout closed: no stream or
  EBADF; EIO...): one line on stderr, ``realdoc: cannot write the result to
  stdout: REASON``, and the exit code stays the operation's.

After either, stdout is pointed at ``/dev/null`` (dup2 on descriptor 1), so the
interpreter's final flush cannot print "Exception ignored" at exit.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, TextIO

__all__ = ["emit", "emit_text", "finish", "report_error", "write_failed"]


def report_error(message: str) -> None:
    """Write ``realdoc: message`` as one line on stderr; never raises for a broken stderr."""
    stream = sys.stderr
    if stream is None:
        return
    try:
        stream.write(f"realdoc: {message}\n")
        stream.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    """Point descriptor 1 (and sys.stdout's pending buffer) at /dev/null."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:  # pragma: no cover - no /dev/null
        return
    try:
        os.dup2(devnull, 1)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(devnull)


def write_failed(exc: BaseException) -> None:
    """Apply the policy above to a write error ``exc``."""
    _silence_stdout()
    if isinstance(exc, BrokenPipeError):
        return
    if isinstance(exc, OSError) and exc.errno is not None:
        reason = f"{exc.strerror} [Errno {exc.errno}]"
    else:
        reason = " ".join(str(exc).split()) or type(exc).__name__
    report_error(f"cannot write the result to stdout: {reason}")


def _stdout() -> Optional[TextIO]:
    return sys.stdout


def emit(data: bytes) -> bool:
    """Write raw bytes to stdout and flush; return False if the write failed.

    Bytes go to ``sys.stdout.buffer`` when there is one (after flushing pending
    text), so non-UTF-8 file names round-trip; otherwise they are decoded with the
    file system encoding.  A failure is handled as the module docstring says.
    """
    stream = _stdout()
    if stream is None:  # descriptor 1 was closed when Python started
        report_error("cannot write the result to stdout: stdout is closed")
        return False
    try:
        buffer = getattr(stream, "buffer", None)
        if buffer is None:
            stream.write(os.fsdecode(data))
            stream.flush()
        else:
            stream.flush()
            buffer.write(data)
            buffer.flush()
    except (OSError, ValueError) as exc:  # ValueError: the stream was closed
        write_failed(exc)
        return False
    return True


def emit_text(text: str) -> bool:
    """Write ``text`` to stdout (text layer) and flush; as :func:`emit` otherwise."""
    stream = _stdout()
    if stream is None:
        report_error("cannot write the result to stdout: stdout is closed")
        return False
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError) as exc:
        write_failed(exc)
        return False
    return True


def finish() -> None:
    """Flush stdout at the end of a command (argparse's help, say) under the same policy."""
    stream = _stdout()
    if stream is None:
        return
    try:
        stream.flush()
    except (OSError, ValueError) as exc:
        write_failed(exc)
