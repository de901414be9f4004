"""Rollover: when ``current`` moves, ask the server to replace its workers, once.

:func:`realdoc.pin_process` with ``rollover=True`` calls :func:`start`.  It
finds out, once, which server runs this process, by looking at the objects on
the call stack (the server is importing the entry module):

``gunicorn`` (a ``gunicorn.workers.base.Worker`` on the stack, ``preload_app`` off)
    Reload request: ``SIGHUP`` to the arbiter (the worker's parent).  gunicorn
    (tested: 27.0.1, ``Arbiter.reload``) spawns ``workers`` new workers, which
    import the app again and pin the new release, then sends ``SIGTERM`` to
    the oldest ones, which finish their requests in flight within
    ``graceful_timeout``.  The listening socket stays open in the arbiter, so
    no connection is refused meanwhile.
``uvicorn --workers N`` (a ``uvicorn.supervisors.multiprocess.Process`` on the stack)
    Reload request: ``SIGHUP`` to the supervisor (the worker's parent).
    uvicorn (tested: 0.54.0, ``Multiprocess.restart_all``) replaces the
    workers one at a time: it starts a new one, waits until it serves, then
    terminates the old one; if the new one is not ready within
    ``timeout_worker_healthcheck`` it keeps the old worker and stops the
    restart.
uWSGI with ``lazy-apps``, ``master``, ``enable-threads`` (the ``uwsgi`` module, ``worker_id() > 0``)
    Reload request: ``c`` (chain reload) written to the ``master-fifo``, or,
    without one, a touch of the ``touch-chain-reload`` file.  uWSGI (tested:
    pyuwsgi 2.0.30) replaces the workers one at a time, and in lazy-apps mode
    the replacements import the app again.  ``uwsgi.reload()`` is not used: it
    re-execs the master (with pyuwsgi, the base interpreter without the
    virtualenv, which dies).  uWSGI drops a chain reload asked for while one
    runs, so the worker that asked, still alive and on its old release
    ``REASK_AFTER`` seconds later, asks once more (on every server), and never
    again for that release.

Everywhere else rollover cannot happen, and :func:`start` logs one WARNING on
the ``realdoc`` logger saying that the process stays on its release until it is
restarted, and does nothing more: gunicorn with ``preload_app=True`` (the app
was imported by the arbiter, which a ``SIGHUP`` does not re-import), uWSGI
without ``lazy-apps``, ``master``, ``enable-threads``, or a master FIFO or
``touch-chain-reload`` file, uvicorn without
``--workers`` (or ``--workers 1``, or ``--reload``), and any process that is not
a worker of these servers (a script, a test, ``python -m http.server``...).
Pass ``rollover=False`` to say nothing.

Detection: a daemon thread (``realdoc-rollover``) resolves ``app_dir`` with
:func:`realdoc.realpath` every ``every`` seconds (at least 0.1 s apart; with
``every=inf`` it never checks and says so once).  With ``watch=True`` it
resolves through a watching :class:`realdoc.Resolver` and wakes as soon as
inotify reports a change of a link on ``app_dir`` (``every`` stays the longest
pause, for filesystems without events); it makes no syscall in between.  A thread,
rather than a check on the request path, so that idle workers notice too and requests pay nothing.
When the release differs from the process's, the worker asks for one reload.

One reload per flip: the workers of one server that notice the same new
release race to create a marker file with ``O_CREAT | O_EXCL`` named after the
server, its master's pid and start time, and the new release, in
``$XDG_RUNTIME_DIR/realdoc-<uid>`` (or the temporary directory).  Only the
worker that creates it asks; the others log at DEBUG.  A worker that starts,
and a worker that sees ``current`` back on its own release, removes the
markers of its master for other releases, and of masters that are gone, so a
later flip to an earlier release reloads again.  When the directory is not
usable every noticing worker asks (a duplicate reload is safer than none).

Logging: the worker that asks logs one INFO line on the ``realdoc`` logger:
``rollover: release OLD -> NEW (pid N): sent SIGHUP to the gunicorn arbiter
(pid M)`` (``again, ...`` for the one re-ask).

A worker that imported code through ``app_dir`` before its pin while the link
moved (see :mod:`realdoc._process`) retires itself at once, while the server is
still importing the app: ``SIGTERM`` to itself (gunicorn: the graceful exit,
the arbiter starts a replacement; uvicorn: the same, though during a supervisor
restart the restart is then aborted and the re-ask repeats it), ``SIGHUP`` under
uWSGI (that worker's graceful reload).  It logs one INFO line saying so.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import math
import os
import signal
import stat
import sys
import tempfile
import threading
import time
from typing import Any, Callable, List, NamedTuple, Optional, Tuple, Union

from ._impl import Resolver, realpath

logger = logging.getLogger("realdoc")

#: The checking thread's shortest pause, whatever ``every`` says (``every=0``).
MIN_INTERVAL = 0.1
#: Seconds after which the worker that asked for a reload, still not replaced and
#: still on its old release, asks once more (a server may drop a request).
REASK_AFTER = 10.0


class Target(NamedTuple):
    """A supported server, found once: how to ask it for a graceful reload."""

    server: str           #: "gunicorn", "uvicorn" or "uwsgi"
    master_pid: int       #: the process that reloads (arbiter, supervisor, master)
    how: str              #: for the log line: "sent SIGHUP to the gunicorn arbiter (pid 12)"
    request: Callable[[], None]  #: asks for the reload; raises OSError on failure
    retire: int = signal.SIGTERM  #: the signal that makes this one worker exit gracefully


def _on_stack(cls: type) -> Any:
    """The first ``self`` on the current call stack that is an instance of ``cls``."""
    frame = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, cls):
            return candidate
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _signal_parent(pid: int, what: str) -> Callable[[], None]:
    def request() -> None:
        if os.getppid() != pid:  # the master is gone: never signal a reused pid
            raise ProcessLookupError(errno.ESRCH, f"{what} (pid {pid}) is no longer the parent")
        os.kill(pid, signal.SIGHUP)
    return request


def detect() -> Union[Target, str]:
    """The server this process is a worker of, or why rollover cannot happen here."""
    uwsgi = sys.modules.get("uwsgi")
    if uwsgi is not None and hasattr(uwsgi, "opt") and hasattr(uwsgi, "reload"):
        opt = uwsgi.opt
        master = int(uwsgi.masterpid() or 0)
        if not opt.get("lazy-apps") and not opt.get("lazy"):
            return ("uWSGI without lazy-apps loads the app in the master, and its reload "
                    "does not import it again")
        if not master:
            return "uWSGI without master cannot reload its workers"
        if not getattr(uwsgi, "has_threads", False) and not opt.get("enable-threads"):
            return "uWSGI without enable-threads does not run the rollover thread"
        if int(uwsgi.worker_id()) <= 0:
            return "the uWSGI master imported the app, and its reload does not import it again"
        fifo = _uwsgi_path(opt.get("master-fifo"))
        touch = _uwsgi_path(opt.get("touch-chain-reload"))
        if fifo is not None:
            return Target("uwsgi", master, f"wrote 'c' (chain reload) to the uWSGI master FIFO "
                          f"{fifo} (master pid {master})", _write_fifo(fifo), signal.SIGHUP)
        if touch is not None:
            return Target("uwsgi", master, f"touched the uWSGI touch-chain-reload file {touch} "
                          f"(master pid {master})", lambda: os.utime(touch), signal.SIGHUP)
        return ("uWSGI without master-fifo or touch-chain-reload: realdoc asks for a chain "
                "reload through one of them (uwsgi.reload() would re-exec the master)")

    workers = sys.modules.get("gunicorn.workers.base")
    if workers is not None:
        worker = _on_stack(workers.Worker)
        if worker is not None:
            if worker.cfg.preload_app:  # pragma: no cover - preload imports in the arbiter
                return "gunicorn preload_app=True: a SIGHUP does not import the app again"
            pid = int(worker.ppid)
            return Target("gunicorn", pid, f"sent SIGHUP to the gunicorn arbiter (pid {pid})",
                          _signal_parent(pid, "the gunicorn arbiter"))
    arbiter = sys.modules.get("gunicorn.arbiter")
    if arbiter is not None and _on_stack(arbiter.Arbiter) is not None:
        return ("gunicorn preload_app=True: the arbiter imported the app, and a SIGHUP "
                "does not import it again")

    multiprocess = sys.modules.get("uvicorn.supervisors.multiprocess")
    if multiprocess is not None and _on_stack(multiprocess.Process) is not None:
        pid = os.getppid()
        return Target("uvicorn", pid, f"sent SIGHUP to the uvicorn supervisor (pid {pid})",
                      _signal_parent(pid, "the uvicorn supervisor"))
    return ("not a worker of a supported server (gunicorn with preload_app off, "
            "uvicorn --workers N, uWSGI lazy-apps)")


def _uwsgi_path(value: Any) -> Optional[str]:
    """The first path of a uWSGI option (bytes, str, or a list of them), or None."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    return value if isinstance(value, str) and value else None


def _write_fifo(path: str) -> Callable[[], None]:
    def request() -> None:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO when the master is gone
        try:
            os.write(fd, b"c")
        finally:
            os.close(fd)
    return request


# -- one reload per flip: marker files --------------------------------------------


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks (/proc/PID/stat field 22), or "0"."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return data[data.rindex(b")") + 2:].split()[19].decode()
    except (OSError, ValueError, IndexError):
        return "0"


def runtime_dir() -> Optional[str]:
    """The private directory for the markers, created 0700; ``None`` if not usable."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    path = os.path.join(base, f"realdoc-{os.getuid()}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None  # someone else's, or a link: do not trust it
    return path


class Markers:
    """The marker files of one master: ``<server>.<pid>.<start>.<hash of release>``."""

    def __init__(self, target: Target) -> None:
        self.prefix = f"{target.server}.{target.master_pid}.{_start_time(target.master_pid)}."
        self.dir = runtime_dir()

    @staticmethod
    def _key(release: str) -> str:
        return hashlib.sha256(os.fsencode(release)).hexdigest()[:24]

    def claim(self, release: str) -> bool:
        """True for the one caller that first claims ``release`` (or when no dir)."""
        if self.dir is None:
            return True
        path = os.path.join(self.dir, self.prefix + self._key(release))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        except OSError:
            return True
        os.close(fd)
        self.clean(keep=release)
        return True

    def clean(self, keep: str) -> None:
        """Drop this master's markers for releases other than ``keep``, and dead masters'."""
        if self.dir is None:
            return
        mine = self.prefix + self._key(keep)
        try:
            names: List[str] = os.listdir(self.dir)
        except OSError:
            return
        for name in names:
            if name == mine:
                continue
            if not name.startswith(self.prefix) and self._alive(name):
                continue
            try:
                os.unlink(os.path.join(self.dir, name))
            except OSError:
                pass

    @staticmethod
    def _alive(name: str) -> bool:
        """The master a marker names still runs (same pid, same start time)."""
        parts = name.split(".")
        if len(parts) != 4 or not parts[1].isdigit():
            return True  # not ours: leave it
        return _start_time(int(parts[1])) == parts[2]


# -- the checking thread --------------------------------------------------------------

_started_in: Optional[int] = None
_stop = threading.Event()


def warn_suspect(pin: Any) -> None:
    """Say that code imported before the pin may come from an older release."""
    logger.warning("realdoc: pid %d imported code through %s before pin_process() while "
                   "the link moved: that code may be from a release older than %s; restart "
                   "the process", os.getpid(), pin.app_dir, pin.release)


def start(pin: Any, every: float, suspect: bool = False, watch: bool = False) -> None:
    """Start rollover for ``pin`` (a realdoc._process.Pin), or log once why not.

    ``suspect``: code was imported through ``app_dir`` before the pin while the
    link moved (see realdoc._process); a worker of a supported server then
    retires itself gracefully (the server starts a replacement), elsewhere a
    WARNING says so.
    """
    global _started_in
    if _started_in == os.getpid():
        return
    _started_in = os.getpid()
    found = detect()
    if isinstance(found, str):
        if suspect:
            warn_suspect(pin)
        logger.warning("realdoc: rollover off in pid %d: %s; it stays on release %s until "
                       "it is restarted", os.getpid(), found, pin.release)
        return
    if suspect:
        logger.info("realdoc: rollover: pid %d imported code through %s before pin_process() "
                    "while the link moved to %s; retiring this worker (%s to itself) so that "
                    "%s starts a coherent one", os.getpid(), pin.app_dir, pin.release,
                    signal.Signals(found.retire).name, found.server)
        # now, while the server still imports the app: its handler is installed
        # (gunicorn, uWSGI) and the worker exits before it serves a request
        os.kill(os.getpid(), found.retire)
        return
    if math.isinf(every):
        logger.warning("realdoc: rollover off in pid %d: every=inf never checks %s; it stays "
                       "on release %s until it is restarted", os.getpid(), pin.app_dir,
                       pin.release)
        return
    markers = Markers(found)
    markers.clean(keep=pin.release)
    thread = threading.Thread(target=_watch,
                              args=(pin, max(every, MIN_INTERVAL), found, markers, watch),
                              name="realdoc-rollover", daemon=True)
    thread.start()


def _checker(pin: Any, interval: float, watch: bool
             ) -> Tuple[Callable[[], bool], Callable[[], str]]:
    """``(wait, check)``: ``wait()`` pauses until the next check (True: stop);
    ``check()`` resolves ``app_dir`` (raises OSError)."""
    if not watch:
        return (lambda: _stop.wait(interval)), (lambda: realpath(pin.app_dir))
    resolver = Resolver(pin.app_dir, every=interval, watch=True, on_error="raise")
    wake = threading.Event()
    handle = resolver._watch
    assert handle is not None  # watch=True
    handle.listeners.append(wake.set)
    try:
        resolver()  # watches the links now
    except OSError:
        pass

    def wait() -> bool:
        wake.wait(interval)
        wake.clear()
        return _stop.is_set()

    return wait, resolver.refresh


def _watch(pin: Any, interval: float, target: Target, markers: Markers,
           watch: bool = False) -> None:
    asked: Optional[str] = None
    asked_at = 0.0
    reasked = False
    wait, check = _checker(pin, interval, watch)
    while not wait():
        if _started_in != os.getpid():  # pragma: no cover - threads do not survive fork
            return
        try:
            now = check()
        except OSError:
            continue  # current is missing for a moment: look again later
        if now == pin.release:
            if asked is not None:
                markers.clean(keep=pin.release)
                asked = None
            continue
        if now == asked:
            if asked_at and not reasked and time.monotonic() - asked_at > REASK_AFTER:
                # still here long after asking: the server dropped the request (uWSGI
                # ignores a chain reload while one runs): ask once more
                reasked = True
                _ask(pin, now, target, "again, ")
            continue
        asked, asked_at, reasked = now, 0.0, False
        if not markers.claim(now):
            logger.debug("realdoc: release %s -> %s (pid %d): another worker asked for the "
                         "reload", pin.release, now, os.getpid())
            continue
        if _ask(pin, now, target, ""):
            asked_at = time.monotonic()


def _ask(pin: Any, now: str, target: Target, again: str) -> bool:
    # The line is written before the request: a server may stop this worker as soon
    # as it gets the request (uWSGI's chain reload can start with the asking worker),
    # and a line written after it would then be lost.
    logger.info("realdoc: rollover: release %s -> %s (pid %d): %s%s", pin.release, now,
                os.getpid(), again, target.how)
    try:
        target.request()
    except OSError as exc:
        logger.warning("realdoc: release %s -> %s (pid %d): could not ask %s for a "
                       "reload: %s", pin.release, now, os.getpid(), target.server, exc)
        return False
    return True


def _after_fork_in_child() -> None:
    """A forked child is not the worker the thread watched for: it has no thread."""
    global _started_in
    _started_in = None


os.register_at_fork(after_in_child=_after_fork_in_child)
