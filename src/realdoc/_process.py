"""The process pin: one release for a process's code, for the process's whole life.

Python loads a worker's code once.  A request pin (the middleware) keeps a
request's files on one release, but the code it runs came from whatever release
``current`` named when each module was imported, and modules imported lazily
after a flip come from the new one.  :func:`pin_process` resolves the
application directory once and rewrites the interpreter's import state so that
every later import, and every file read next to a module's ``__file__``, comes
from that one release.

What :func:`pin_process` rewrites, for paths equal to or under ``app_dir``
(compared component-wise after :func:`os.path.abspath`; each is replaced by the
same path under the release):

* ``sys.path`` entries (in place, same list), and the matching
  ``sys.path_importer_cache`` entries are dropped so no finder keeps a
  directory listing read through the link;
* for every module in ``sys.modules``: ``__file__``, ``__cached__``,
  ``__path__`` (a list is rewritten in place; a namespace package's
  ``_NamespacePath`` has its entries rewritten and recomputes from the
  rewritten parent path), ``__spec__.origin``, ``__spec__.cached``,
  ``__spec__.submodule_search_locations``, and the loader's ``path``
  (source, bytecode and extension loaders) or ``archive`` (zip imports);
* the ``co_filename`` of the code of functions and methods defined in those
  modules (nested code included), so tracebacks and :mod:`inspect` read the
  pinned source; :mod:`linecache` entries for the old names are dropped.

Left alone on purpose: ``sys.argv``, ``os.environ`` (``PYTHONPATH``) and the
working directory (the kernel already holds a real directory there), because a
restart or re-exec must find the *next* release through ``current``; frames
already running (the caller's own module-level code); and names spelled through
another symlink than ``app_dir`` itself (the comparison is textual).

A module imported through ``app_dir`` before the pin was read from the release
``current`` named at that moment, which may be older than the one pinned if the
link moved in between (a flip while the server was importing the entry module).
:func:`pin_process` notices when some module was imported through ``app_dir``
and a symlink on ``app_dir`` changed after the process started (lstat mtime
against the process start time, 10 ms resolution): a worker of a supported
server then retires itself gracefully before serving (see
:mod:`realdoc._rollover`), anywhere else one WARNING says so.  Call it first
thing in the entry module.

:func:`pinned` and :func:`map_path` are the small internal API that a
process-scoped docroot uses: the pinned ``(app_dir, release)`` pair, and the
lexical mapping of a path under ``app_dir`` to the same path under the release
(no syscall).
"""

from __future__ import annotations

import linecache
import os
import stat
import sys
import threading
import time
import types
from typing import Any, Dict, List, NamedTuple, Optional, Set

from . import _inuse, _rollover, _scope
from ._impl import realpath
from ._policy import check_every, check_watch

__all__ = ["Pin", "map_path", "pin_process", "pinned", "process_release"]


class Pin(NamedTuple):
    """The pinned pair: ``app_dir`` as normalised absolute text, and its real release."""

    app_dir: str
    release: str


_pin: Optional[Pin] = None
_lock = threading.Lock()


def pinned() -> Optional[Pin]:
    """The process's :class:`Pin`, or ``None`` before :func:`pin_process`.  No syscall."""
    return _pin


def process_release() -> Optional[str]:
    """The release directory this process is pinned to, or ``None`` before the pin.

    No syscall: the value :func:`pin_process` resolved, kept for the process's
    life (a forked child keeps its parent's).
    """
    pin = _pin
    return None if pin is None else pin.release


def _under(path: str, base: str) -> bool:
    """``path`` equals ``base`` or lies under it, component-wise (both normalised)."""
    if path == base or base == "/":
        return True
    return path.startswith(base) and path[len(base)] == "/"


def _mapper(app_dir: str, release: str) -> Any:
    def map_one(path: Any) -> Any:
        if not isinstance(path, str) or not path:
            return None
        p = os.path.abspath(path)
        if not _under(p, app_dir):
            return None
        return release + p[len(app_dir):] if app_dir != "/" else p
    return map_one


def map_path(path: str) -> Optional[str]:
    """``path`` under the pinned release when it lies under the pinned ``app_dir``.

    Lexical (abspath, component-wise comparison), no syscall.  Returns ``None``
    when the process is not pinned or ``path`` is not under ``app_dir``.
    """
    pin = _pin
    if pin is None:
        return None
    result: Optional[str] = _mapper(pin.app_dir, pin.release)(path)
    return result


def _check_app_dir(app_dir: Any) -> str:
    if isinstance(app_dir, bytes):
        text = os.fsdecode(app_dir)
    elif isinstance(app_dir, str):
        text = app_dir
    else:
        try:
            fs = os.fspath(app_dir)
        except TypeError:
            raise TypeError("app_dir must be str, bytes or os.PathLike, not "
                            f"{type(app_dir).__name__}") from None
        text = os.fsdecode(fs)
    if "\0" in text:
        raise ValueError("app_dir contains an embedded null byte")
    if not text:
        raise FileNotFoundError(2, os.strerror(2), app_dir)
    return text


def pin_process(app_dir: Any, *, rollover: bool = True, every: float = 2.0,
                watch: bool = False) -> str:
    """Pin this process's code to the release that ``app_dir`` names now; return it.

    ``app_dir`` is the symlinked application directory (``/srv/app/current``,
    or a directory under it), as str, bytes or PathLike; a relative path is
    taken from the working directory.  It is resolved once, with
    :func:`realdoc.realpath`, and the import state is rewritten as listed in
    this module's documentation, so that modules imported later, and files
    read next to any module's ``__file__``, come from that release.  Returns
    the release directory (str), which :func:`process_release` returns from
    then on.  Call it at the top of the WSGI/ASGI entry module, before the
    framework is imported.

    A second call with the same ``app_dir`` (after abspath/normalisation)
    returns the same release without a syscall and changes nothing (its
    ``rollover``, ``every`` and ``watch`` are checked, then ignored: the first call's
    stand); another ``app_dir`` raises ``ValueError`` (one release per
    process).  A forked child keeps its parent's pin, without the parent's
    rollover thread.

    ``rollover=True`` asks the server for a graceful reload when ``current``
    moves, checking at most every ``every`` seconds (see
    :mod:`realdoc._rollover` for the servers supported and what happens
    elsewhere).  ``every`` is checked as for :class:`realdoc.Resolver`
    (``TypeError`` for a non-number or bool, ``ValueError`` for a negative
    number or NaN).  ``watch=True`` (a bool, ``TypeError`` otherwise): the
    rollover thread learns of a flip from inotify (see
    :class:`realdoc.Resolver`'s ``watch``) and asks within milliseconds,
    ``every`` staying the bound where no event comes; without inotify it
    checks every ``every`` seconds, as without ``watch``.

    Errors: ``TypeError`` for an ``app_dir`` that is not a path, or a
    ``rollover`` that is not a bool; ``ValueError`` for an embedded NUL;
    ``FileNotFoundError`` (``filename`` is ``app_dir`` as given) when it is
    missing or a dangling link; ``NotADirectoryError`` when it is not a
    directory; other ``OSError`` as :func:`realdoc.realpath` raises them.
    Syscalls: those of one ``realpath`` plus one ``stat``, and, when code was
    already imported through ``app_dir``, one ``lstat`` per component of
    ``app_dir`` and a read of ``/proc/self/stat``; plus the release's in-use mark,
    held for the process's life (:func:`realdoc._inuse.hold_for_life`: an ``lstat``
    per component of ``app_dir`` after its innermost symlink, ``open``, ``flock``,
    ``fstat``, ``stat``), so ``realdoc status`` shows the process "pinned by
    realdoc" and ``realdoc prune`` keeps its release; then none per request (the
    rollover checks run in their own thread).
    """
    global _pin
    text = _check_app_dir(app_dir)
    if not isinstance(rollover, bool):
        raise TypeError(f"rollover must be a bool, not {type(rollover).__name__}")
    watch = check_watch(watch)
    every = check_every(every)
    wanted = os.path.abspath(text)
    with _lock:
        if _pin is not None:
            if _pin.app_dir != wanted:
                raise ValueError(
                    f"this process is already pinned to {_pin.app_dir!r} (release "
                    f"{_pin.release!r}); one release per process, so {app_dir!r} "
                    "cannot be pinned too")
            return _pin.release
        try:
            release: str = realpath(wanted)
            st = os.stat(release)
        except OSError as exc:  # name app_dir as the caller gave it
            raise type(exc)(exc.errno, exc.strerror, app_dir) from None
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(20, os.strerror(20), app_dir)
        suspect = False
        if release != wanted:
            suspect = _moved_since_start(wanted, _imported_under(wanted))
            _rewrite(wanted, release)
        _pin = Pin(wanted, release)
        _inuse.hold_for_life(release, wanted)
    _scope.on_pin()  # auto-scope Resolvers made before the pin follow the code from now on
    if rollover:
        _rollover.start(_pin, every, suspect, watch)
    elif suspect:
        _rollover.warn_suspect(_pin)
    return release


def _imported_under(app_dir: str) -> bool:
    """Some module was already imported from under ``app_dir`` (lexically)."""
    mapped = _mapper(app_dir, app_dir)
    for module in list(sys.modules.values()):
        if mapped(getattr(module, "__file__", None)) is not None:
            return True
    return False


def _moved_since_start(app_dir: str, imported: bool) -> bool:
    """A symlink on ``app_dir`` changed after this process started, and code was
    imported through it before the pin: that code may be from an older release.

    Compares each link's lstat mtime with the process's start time on the boot
    clock (10 ms resolution, /proc/self/stat).  False when nothing was imported
    or the start time cannot be read.
    """
    if not imported:
        return False
    try:
        with open("/proc/self/stat", "rb") as f:
            data = f.read()
        ticks = int(data[data.rindex(b")") + 2:].split()[19])
        started = ticks / os.sysconf("SC_CLK_TCK")
        offset = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    except (OSError, ValueError, IndexError, AttributeError):
        return False
    parts = app_dir.split("/")
    for i in range(2, len(parts) + 1):
        try:
            st = os.lstat("/".join(parts[:i]))
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode) and st.st_mtime - offset >= started:
            return True
    return False


def _rewrite(app_dir: str, release: str) -> None:
    """Rewrite sys.path, the importer cache and loaded modules from app_dir to release."""
    mapped = _mapper(app_dir, release)
    sys.path[:] = [mapped(p) or p for p in sys.path]
    for key in list(sys.path_importer_cache):
        if mapped(key) is not None:
            sys.path_importer_cache.pop(key, None)
    old_files: Set[str] = set()
    for name, module in list(sys.modules.items()):
        if isinstance(module, types.ModuleType):
            if _rewrite_module(module, mapped, old_files):
                _rewrite_code_in(module, name, mapped)
    for filename in old_files:
        linecache.cache.pop(filename, None)


def _rewrite_list(paths: Any, mapped: Any) -> None:
    """Rewrite a list (or a _NamespacePath's list) of directories in place."""
    target = paths
    if not isinstance(target, list):
        target = getattr(paths, "_path", None)  # importlib's _NamespacePath
        if not isinstance(target, list):
            return
    for i, p in enumerate(target):
        new = mapped(p)
        if new is not None:
            target[i] = new


def _rewrite_module(module: types.ModuleType, mapped: Any, old_files: Set[str]) -> bool:
    """Rewrite one module's location attributes; True when its __file__ moved."""
    d: Dict[str, Any] = module.__dict__
    moved = False
    for attr in ("__file__", "__cached__"):
        new = mapped(d.get(attr))
        if new is not None:
            if attr == "__file__":
                old_files.add(d[attr])
                moved = True
            d[attr] = new
    if "__path__" in d:
        _rewrite_list(d["__path__"], mapped)
    spec = d.get("__spec__")
    if spec is not None:
        try:
            new = mapped(spec.origin)
            if new is not None:
                moved = True
                old_files.add(spec.origin)
                spec.origin = new
            new = mapped(getattr(spec, "cached", None))
            if new is not None:
                spec.cached = new
            locations = spec.submodule_search_locations
            if locations is not None:
                _rewrite_list(locations, mapped)
        except AttributeError:  # not a ModuleSpec
            pass
    loaders: List[Any] = [d.get("__loader__")]
    if spec is not None:
        loaders.append(getattr(spec, "loader", None))
    for loader in loaders:
        if loader is None:
            continue
        for attr in ("path", "archive"):
            new = mapped(getattr(loader, attr, None))
            if new is not None:
                try:
                    setattr(loader, attr, new)
                except (AttributeError, TypeError):
                    pass
    return moved


def _new_code(code: types.CodeType, mapped: Any) -> types.CodeType:
    """``code`` with co_filename (and nested code's) under the release."""
    consts = tuple(_new_code(c, mapped) if isinstance(c, types.CodeType) else c
                   for c in code.co_consts)
    filename = mapped(code.co_filename) or code.co_filename
    if filename == code.co_filename and consts == code.co_consts:
        return code
    return code.replace(co_filename=filename, co_consts=consts)


def _rewrite_code_in(module: types.ModuleType, name: str, mapped: Any) -> None:
    """Give the functions and methods defined in ``module`` code naming the release."""
    seen: Set[int] = set()

    def visit(obj: Any, depth: int) -> None:
        if id(obj) in seen or depth > 8:
            return
        seen.add(id(obj))
        if isinstance(obj, (staticmethod, classmethod)):
            visit(obj.__func__, depth + 1)
        elif isinstance(obj, property):
            for f in (obj.fget, obj.fset, obj.fdel):
                if f is not None:
                    visit(f, depth + 1)
        elif isinstance(obj, types.FunctionType):
            code = obj.__code__
            if mapped(code.co_filename) is not None:
                obj.__code__ = _new_code(code, mapped)
        elif isinstance(obj, type) and getattr(obj, "__module__", None) == name:
            for value in list(vars(obj).values()):
                visit(value, depth + 1)

    for value in list(module.__dict__.values()):
        visit(value, 0)


def _after_fork_in_child() -> None:
    """A forked child keeps the pin (same code) but not the parent's lock state."""
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
