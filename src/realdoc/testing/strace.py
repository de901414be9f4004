"""strace-based syscall counting, without pytest (used by realdoc.testing and realdoc bench).

How counting works.  The measured code is bracketed by two *marker* syscalls:
``os.stat("/realdoc-syscall-marker/<TAG>-<nonce>")``, which fails with ENOENT.
The nonce is random per run and the full path is built at run time, so it never
appears verbatim in argv or in data the process reads; strace shows it as a
quoted string argument, which is what the parser looks for.  Only call lines
of the thread that issued the BEGIN marker, strictly between BEGIN and END, are
counted; each call is counted once, at its first line (``<... resumed>``,
``--- SIG``, ``+++ exited`` lines are skipped).  Optionally a calibration run of
an empty body is subtracted name by name (floored at zero) to remove
interpreter noise.
"""

from __future__ import annotations

import collections
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterable, List, Mapping, Optional, Tuple

__all__ = [
    "StraceUnavailable",
    "SyscallTrace",
    "count_syscalls",
    "count_syscalls_in_child",
    "in_ci",
    "strace_available",
    "strace_status",
]

_MARKER_DIR = "/realdoc-syscall-marker/"
_STRING_LIMIT = "128"  # strace -s: long enough that a marker path is never truncated
_ATTACH_TIMEOUT = 10.0
_DETACH_TIMEOUT = 10.0
_TRUE = frozenset({"1", "true", "yes", "on"})


class StraceUnavailable(RuntimeError):
    """strace is not installed, cannot trace here, or could not attach (ptrace denied)."""


@dataclass
class SyscallTrace:
    """Syscalls one thread issued between two markers, counted by strace's name.

    ``counts`` maps a syscall name (``readlink``, ``newfstatat``, ...) to how
    many times it was called, after subtracting ``baseline`` if one was
    taken.  ``lines`` are the raw strace lines of the measured run (before
    any subtraction).  ``repeat`` is how many times the measured body ran.
    """

    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    lines: List[str] = field(default_factory=list)
    repeat: int = 1
    baseline: Optional[collections.Counter[str]] = None

    @property
    def total(self) -> int:
        """Sum of :attr:`counts`."""
        return sum(self.counts.values())

    @property
    def per_call(self) -> collections.Counter[str]:
        """``counts`` divided by ``repeat`` (floor), zero entries dropped."""
        return collections.Counter(
            {k: v // self.repeat for k, v in self.counts.items() if v // self.repeat}
        )


# --------------------------------------------------------------------------- parsing

_PID_PREFIX = re.compile(r"(?:\[pid\s+(\d+)\]|(\d+))\s+")
_CALL_START = re.compile(r"([A-Za-z_]\w*)\(")


def _between_markers(
    lines: Iterable[str], begin: str, end: str, tid: Optional[int] = None
) -> Tuple[collections.Counter[str], List[str]]:
    """Count call lines of one thread strictly between the *begin* and *end* markers.

    The thread is the one whose call line first mentions ``"<begin>"`` (quoted,
    as strace prints a string argument), restricted to *tid* if given.  A
    call line is one whose text (after the optional pid prefix, either
    ``123 `` or ``[pid 123] ``) starts with ``name(``; this covers complete
    calls and ``<unfinished ...>`` halves, and skips ``<... name resumed>``,
    signal and exit lines, so every call counts once.  Returns the counts and
    the counted raw lines.  Raises :class:`RuntimeError` if either marker is
    missing.
    """
    begin_q, end_q = f'"{begin}"', f'"{end}"'
    counts: collections.Counter[str] = collections.Counter()
    counted: List[str] = []
    owner: Optional[int] = None
    inside = False
    for raw in lines:
        line = raw.rstrip("\n")
        m = _PID_PREFIX.match(line)
        pid = int(m.group(1) or m.group(2)) if m else None
        body = line[m.end():] if m else line
        call = _CALL_START.match(body)
        if call is None:
            continue
        if not inside:
            if begin_q in body and (tid is None or pid is None or pid == tid):
                inside, owner = True, pid
            continue
        if pid != owner:
            continue
        if end_q in body:
            return counts, counted
        counts[call.group(1)] += 1
        counted.append(line)
    missing = "END" if inside else "BEGIN"
    raise RuntimeError(f"strace output has no {missing} marker ({begin if not inside else end})")


def _subtract(
    trace: SyscallTrace, baseline: Optional[collections.Counter[str]]
) -> SyscallTrace:
    if baseline is not None:
        trace.baseline = baseline
        trace.counts = trace.counts - baseline  # Counter '-' floors at zero
    return trace


# --------------------------------------------------------------------------- strace probe


@functools.lru_cache(maxsize=None)
def _strace_status() -> Tuple[bool, str]:
    exe = shutil.which("strace")
    if exe is None:
        return False, "strace not found on PATH"
    try:
        proc = subprocess.run(
            [exe, "-f", "-qq", "-o", os.devnull, sys.executable, "-c", "pass"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return False, f"running {exe} failed: {e}"
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        return False, f"{exe} cannot trace here (exit {proc.returncode}): {err}"
    return True, exe


def strace_available() -> bool:
    """True if strace is on PATH and can trace a child process here.

    Probed once per process (a traced ``python -c pass``), then cached.
    Attaching to a running process can still be denied (Yama ptrace_scope);
    :func:`count_syscalls` raises :class:`StraceUnavailable` then.
    """
    return _strace_status()[0]


def _strace() -> str:
    ok, detail = _strace_status()
    if not ok:
        raise StraceUnavailable(detail)
    return detail


def in_ci() -> bool:
    """True when the ``CI`` environment variable is 1/true/yes/on."""
    return os.environ.get("CI", "").strip().lower() in _TRUE


def _nonce() -> str:
    return uuid.uuid4().hex


# --------------------------------------------------------------------------- child process

_CHILD_TEMPLATE = """\
{setup}
import os as _realdoc_os
def _realdoc_mark(tag):
    try:
        _realdoc_os.stat({marker_dir!r} + tag + "-" + {nonce!r})
    except OSError:
        pass
_realdoc_mark("BEGIN")
{code}
_realdoc_mark("END")
"""


def _run_child(
    exe: str, code: str, setup: str, python: str, env: Optional[Mapping[str, str]], timeout: float
) -> SyscallTrace:
    nonce = _nonce()
    script = _CHILD_TEMPLATE.format(
        setup=textwrap.dedent(setup),
        code=textwrap.dedent(code),
        marker_dir=_MARKER_DIR,
        nonce=nonce,
    )
    with tempfile.TemporaryDirectory(prefix="realdoc-strace-") as tmp:
        out = os.path.join(tmp, "trace")
        cmd = [exe, "-f", "-qq", "-s", _STRING_LIMIT, "-o", out, python, "-c", script]
        # Own session, so a timeout can kill strace and the traced child together.
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(os.environ if env is None else env),
            start_new_session=True,
        )
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        if proc.returncode != 0:
            raise RuntimeError(
                f"traced child exited with {proc.returncode}; stderr:\n"
                + err.decode(errors="replace")
            )
        with open(out, encoding="utf-8", errors="replace") as fh:
            counts, lines = _between_markers(
                fh, _MARKER_DIR + "BEGIN-" + nonce, _MARKER_DIR + "END-" + nonce
            )
    return SyscallTrace(counts, lines)


def count_syscalls_in_child(
    code: str,
    *,
    setup: str = "",
    python: str = sys.executable,
    env: Optional[Mapping[str, str]] = None,
    timeout: float = 60,
    subtract_baseline: bool = True,
) -> SyscallTrace:
    """Count the syscalls *code* issues in a fresh ``python -c`` child under strace.

    The child runs *setup*, the BEGIN marker, *code*, the END marker (both
    dedented, at module level, so *code* sees names bound by *setup*).  Only
    the main thread's calls strictly between the markers are counted: start-up,
    imports, *setup* and other threads are excluded.  With
    *subtract_baseline*, a second child runs ``pass`` with the same *setup*
    and its counts are subtracted (see :class:`SyscallTrace`), so *setup*
    must leave a child that can exit after ``pass`` (threads it starts should
    be daemons).  *env*
    replaces the child's environment (default: inherit ``os.environ``).

    Raises :class:`StraceUnavailable` if strace cannot run,
    :class:`RuntimeError` (with the child's stderr) if the child exits
    non-zero or a marker is missing, and :class:`subprocess.TimeoutExpired`
    after *timeout* seconds per child (strace and the child are killed).
    """
    exe = _strace()
    trace = _run_child(exe, code, setup, python, env, timeout)
    if subtract_baseline:
        return _subtract(trace, _run_child(exe, "pass", setup, python, env, timeout).counts)
    return trace


# --------------------------------------------------------------------------- this process


def _mark(path: str) -> None:
    try:
        os.stat(path)
    except OSError:
        pass


def _wait_attached(proc: "subprocess.Popen[bytes]", out: str, marker: str) -> None:
    """Issue *marker* until strace has written it to *out*; raise StraceUnavailable on failure.

    The file is read forward with bounded ``pread`` calls, never to EOF in one
    go: every read of a traced file makes strace append to it.
    """
    needle = f'"{marker}"'.encode()
    fd = os.open(out, os.O_RDONLY)
    try:
        offset, tail = 0, b""
        deadline = time.monotonic() + _ATTACH_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise StraceUnavailable(
                    f"strace could not attach (exit {proc.returncode}): {err.strip()}")
            _mark(marker)
            chunk = os.pread(fd, 1 << 20, offset)
            offset += len(chunk)
            tail += chunk
            if needle in tail:
                return
            tail = tail[-len(needle):]
            time.sleep(0.002)
    finally:
        os.close(fd)
    raise StraceUnavailable(f"strace did not attach within {_ATTACH_TIMEOUT} s")


def _stop_strace(proc: "subprocess.Popen[bytes]") -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # strace detaches cleanly and flushes
        try:
            proc.wait(_DETACH_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


def count_syscalls(
    func: Callable[[], object], *, repeat: int = 1, subtract_baseline: bool = True
) -> SyscallTrace:
    """Count the syscalls ``func()`` issues in this process, called *repeat* times.

    Attaches ``strace -f -p <this pid>`` (all threads), waits until a marker
    from the calling thread shows up in its output, then runs: baseline
    section (an empty callable *repeat* times, if *subtract_baseline*), then
    BEGIN marker, *func* *repeat* times, END marker; then detaches strace
    with SIGINT.  Only the calling thread's calls (``threading.get_native_id``)
    strictly between markers are counted, so other threads are ignored.
    Counts are totals for all *repeat* calls; see :attr:`SyscallTrace.per_call`.

    Exceptions from *func* propagate (strace is detached first).  Raises
    :class:`StraceUnavailable` if strace is missing or cannot attach (e.g.
    ptrace denied), :class:`ValueError` if *repeat* < 1.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    exe = _strace()
    nonce = _nonce()
    tags = {t: f"{_MARKER_DIR}{t}-{nonce}" for t in ("ATTACH", "BASE0", "BASE1", "BEGIN", "END")}

    def empty() -> None:
        pass

    with tempfile.TemporaryDirectory(prefix="realdoc-strace-") as tmp:
        out = os.path.join(tmp, "trace")
        open(out, "wb").close()  # exists before strace opens it, so we can poll it
        cmd = [exe, "-f", "-qq", "-s", _STRING_LIMIT, "-o", out, "-p", str(os.getpid())]
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            _wait_attached(proc, out, tags["ATTACH"])
            if subtract_baseline:
                _mark(tags["BASE0"])
                for _ in range(repeat):
                    empty()
                _mark(tags["BASE1"])
            _mark(tags["BEGIN"])
            for _ in range(repeat):
                func()
            _mark(tags["END"])
        finally:
            _stop_strace(proc)
        tid = threading.get_native_id()
        with open(out, encoding="utf-8", errors="replace") as fh:
            text = fh.read().splitlines()
    counts, lines = _between_markers(text, tags["BEGIN"], tags["END"], tid)
    trace = SyscallTrace(counts, lines, repeat)
    if subtract_baseline:
        return _subtract(trace, _between_markers(text, tags["BASE0"], tags["BASE1"], tid)[0])
    return trace


def strace_status() -> Tuple[bool, str]:
    """``(usable, detail)``: whether strace can trace here, and why not."""
    return _strace_status()

