"""Pure-Python twin of ``realdoc._fastpath``: same functions, same results and errors.

Used where the extension is not built (no compiler, not Linux,
``REALDOC_NO_EXTENSIONS=1``).  It issues the same syscalls as the compiled
core for :func:`realpath` and :func:`first_link` (openat2 through ctypes); its
:class:`Resolver` refreshes with a full :func:`realpath` (no prediction), so a
refresh costs 3 syscalls on a deep docroot instead of the core's readlink +
openat2 + close.  The syscall strategy, and what each errno leads to, is
docs/design-syscalls.md (and the block comment at the top of _fastpath.pyx).
"""

from __future__ import annotations

import ctypes
import errno
import inspect
import itertools
import math
import os
import select
import sys
import threading
import time
from typing import (
    Any,
    AnyStr,
    Callable,
    Dict,
    Iterator,
    List,
    Optional,
    Tuple,
    Union,
    cast,
    overload,
)

from . import _common, _policy, _scope, _watch
from ._common import MAXSYMLINKS, PATH_MAX, PROC_MIN_COMPONENTS
from ._policy import BytesPath, CacheInfoRow, OnError, StrPath, UseReadlink
from ._registry import RESOLVE_DOC, ClearFunction, Registry, Stats, registry_key
from ._scope import Scope

__all__ = [
    "realpath", "first_link", "Resolver", "resolve", "stats", "cache_info",
    "clear", "set_maxsize", "get_maxsize", "features", "set_features",
]

_O_PATH: int = getattr(os, "O_PATH", 0)
_O_CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)
_AT_FDCWD = -100
_SYS_OPENAT2 = 437  # the same number on every Linux architecture
_RESOLVE_NO_MAGICLINKS = 0x02


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def _load_syscall() -> Optional[Any]:
    if not sys.platform.startswith("linux") or _O_PATH == 0:
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_long
    fn.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
    return fn


_syscall = _load_syscall()


def _load_inotify() -> Optional[_watch.Backend]:
    """watch mode's syscalls through ctypes (None where libc has no inotify)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        init1, add, rm = libc.inotify_init1, libc.inotify_add_watch, libc.inotify_rm_watch
    except (OSError, AttributeError):
        return None
    init1.argtypes, init1.restype = [ctypes.c_int], ctypes.c_int
    add.argtypes, add.restype = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32], ctypes.c_int
    rm.argtypes, rm.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int

    def checked(rc: int) -> int:
        if rc < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        return rc

    def wait(fd: int) -> None:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        for _fd, ev in poller.poll():  # no timeout; EINTR is retried (PEP 475)
            if ev & select.POLLNVAL:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    def read(fd: int) -> bytes:
        try:
            return os.read(fd, _watch.READ_SIZE)
        except BlockingIOError:
            return b""

    def remove(fd: int, wd: int) -> None:
        checked(rm(fd, wd))

    return _watch.Backend(
        init=lambda: checked(init1(os.O_CLOEXEC | os.O_NONBLOCK)),
        add=lambda fd, d, mask: checked(add(fd, d, mask)),
        rm=remove, wait=wait, read=read, close=os.close, readlink=lambda p: _readlink(p))

# Run-time features; a probe failure switches one off for the process.
_features: Dict[str, bool] = {
    "proc": _syscall is not None,
    "openat2": _syscall is not None,  # used by the proc route; refreshes use realpath()
}

_SYSCALL_NAMES = ("readlink", "openat2", "close", "getcwd")
_sys: Dict[str, int] = dict.fromkeys(_SYSCALL_NAMES, 0)


def features() -> Dict[str, bool]:
    """Kernel features this process uses (``proc``, ``openat2``)."""
    return dict(_features)


def set_features(**flags: bool) -> Dict[str, bool]:
    """Switch run-time kernel features off (or back on); returns the old set.

    For tests and for systems where a feature misbehaves: with every feature
    off, resolution falls back to the plain readlink walk, with the same
    results.  Unknown names raise ValueError.
    """
    old = dict(_features)
    for name, on in flags.items():
        if name not in _features:
            raise ValueError(f"unknown feature {name!r}")
        _features[name] = bool(on) and _syscall is not None
    return old


# --------------------------------------------------------------------- syscalls

def _readlink(p: bytes) -> bytes:
    _sys["readlink"] += 1
    return os.readlink(p)


def _getcwd() -> bytes:
    _sys["getcwd"] += 1
    return os.getcwdb()


# ------------------------------------------------------------------ resolution

def _walk(raw: bytes, filename: Any) -> bytes:
    """glibc's realpath walk: one readlink per component; raises OSError.

    As glibc's realpath into a PATH_MAX buffer: a working directory of PATH_MAX
    bytes or more is climbed lexically by leading ``..``, and an answer of
    PATH_MAX bytes or more is ENAMETOOLONG.
    """
    if raw[:1] == b"/":
        dest = b"/"
    else:
        try:
            dest = _getcwd()
        except OSError as e:
            raise _common.os_error(e.errno, filename) from None
    rest = raw
    n = len(rest)
    i = 0
    links = 0
    while i < n:
        while i < n and rest[i] == 47:
            i += 1
        if i >= n:
            break
        j = rest.find(b"/", i)
        if j < 0:
            j = n
        comp = rest[i:j]
        if comp == b".":
            pass
        elif comp == b"..":
            if dest != b"/":
                dest = dest[: dest.rindex(b"/")] or b"/"
        else:
            cand = dest + b"/" + comp if dest != b"/" else b"/" + comp
            if len(cand) >= PATH_MAX:
                raise _common.os_error(errno.ENAMETOOLONG, filename)
            try:
                target = _readlink(cand)
            except OSError as e:
                if _common.suffix_requires_dir_check(rest, j):
                    if len(cand) + 1 >= PATH_MAX:
                        raise _common.os_error(errno.ENAMETOOLONG, filename) from None
                    try:
                        _readlink(cand + b"/")
                    except OSError as e2:
                        if e2.errno != errno.EINVAL:
                            raise _common.os_error(e2.errno, filename) from None
                    else:  # pragma: no cover - a directory is never a link
                        raise _common.os_error(errno.ENOTDIR, filename) from None
                elif e.errno != errno.EINVAL:
                    raise _common.os_error(e.errno, filename) from None
                dest = cand
            else:
                links += 1
                if links > MAXSYMLINKS:
                    raise _common.os_error(errno.ELOOP, filename)
                rest = target + rest[j:]
                n = len(rest)
                i = 0
                if target[:1] == b"/":
                    dest = b"/"
                continue
        i = j
    if len(dest) >= PATH_MAX:  # only a working directory this long gets here
        raise _common.os_error(errno.ENAMETOOLONG, filename)
    return dest


def _openat2(raw: bytes, resolve: int) -> int:
    """openat2(raw, O_PATH|O_CLOEXEC, resolve) through libc's syscall()."""
    assert _syscall is not None
    how = _OpenHow(_O_PATH | _O_CLOEXEC, 0, resolve)
    _sys["openat2"] += 1
    fd = int(_syscall(_SYS_OPENAT2, _AT_FDCWD, raw, ctypes.byref(how), ctypes.sizeof(how)))
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return fd


def _close(fd: int) -> None:
    _sys["close"] += 1
    os.close(fd)


def _openat2_missing(code: Optional[int], resolve: int) -> bool:
    """After openat2 failed with ``code``: does this process lack openat2?

    ENOSYS: the kernel, or a seccomp filter, has none.  EPERM, EINVAL and
    EOPNOTSUPP come from a seccomp filter or from one path's filesystem:
    openat2("/") with the same flags tells which (on this error path only).
    Any other errno is about the path.
    """
    if code == errno.ENOSYS:
        return True
    if code not in (errno.EPERM, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    try:
        fd = _openat2(b"/", resolve)
    except OSError as e:
        return e.errno in (code, errno.ENOSYS)
    _close(fd)
    return False


def _proc(raw: bytes) -> Optional[bytes]:
    """Kernel walk (no magic links) + /proc readlink; None means "the walk answers".

    Every openat2 error lets the walk decide (it is the reference: ENOENT or
    ENOTDIR from the kernel can be glibc's ENAMETOOLONG), and so does an answer
    that is not a plain absolute path or is PATH_MAX bytes or more.  Only a
    missing feature switches it off for the process, never one path.
    """
    try:
        fd = _openat2(raw, _RESOLVE_NO_MAGICLINKS)
    except OSError as e:
        if _openat2_missing(e.errno, _RESOLVE_NO_MAGICLINKS):
            _features["openat2"] = False
        return None
    try:
        real = _readlink(b"/proc/self/fd/%d" % fd)
    except OSError as e:
        if e.errno != errno.ENAMETOOLONG:  # ENAMETOOLONG: an answer past PATH_MAX
            _features["proc"] = False  # no /proc here: walk from now on
        return None
    finally:
        _close(fd)
    if real[:1] != b"/" or real.endswith(b" (deleted)") or len(real) >= PATH_MAX:
        return None
    return real


def _cwd_short(raw: bytes) -> bool:
    """getcwd: True when cwd + '/' + raw is shorter than PATH_MAX, so glibc's walk
    of the relative raw meets PATH_MAX only through links."""
    try:
        return len(_getcwd()) + 1 + len(raw) < PATH_MAX
    except OSError:
        return False


def _realpath_raw(raw: bytes, filename: Any) -> bytes:
    if not raw:
        raise _common.os_error(errno.ENOENT, filename)
    if _features["proc"] and _features["openat2"] and len(raw) < PATH_MAX \
            and not _common.leading_dotdot(raw) \
            and _common.count_normal(raw) + (raw[:1] != b"/") >= PROC_MIN_COMPONENTS \
            and (raw[:1] == b"/" or _cwd_short(raw)):
        real = _proc(raw)
        if real is not None:
            return real
    return _walk(raw, filename)


@overload
def realpath(path: StrPath) -> str: ...


@overload
def realpath(path: BytesPath) -> bytes: ...


def realpath(path: Any) -> Any:
    """Return the canonical absolute path of ``path``, like libc realpath(3).

    ``path``: str, bytes or os.PathLike; the result has the same kind (str for
    PathLike of str).  Every component must exist.  Errors: FileNotFoundError
    (missing component, dangling link, ``""``), NotADirectoryError
    (``file/``, ``file/..``), OSError ELOOP (a loop or more than 40 links),
    OSError ENAMETOOLONG (result of PATH_MAX bytes or more), PermissionError,
    each with ``errno`` and ``filename``; ValueError for a NUL byte; TypeError
    for other types.  Syscalls: from five components on, 3 (``openat2``,
    ``readlink`` of ``/proc/self/fd/N``, ``close``; a relative path adds a
    ``getcwd``); glibc's walk below, or where the kernel's verdict is not an
    answer.  See the design page (docs/design-syscalls.md).
    """
    raw, is_str = _common.to_bytes(path)
    real = _realpath_raw(raw, path)
    return os.fsdecode(real) if is_str else real


def _first_link_raw(raw: bytes, trusted: int, filename: Any) -> bytes:
    if not raw:
        raise _common.os_error(errno.ENOENT, filename)
    if raw[:1] == b"/":
        base: List[bytes] = []
    else:
        try:
            cwd = _getcwd()
        except OSError as e:
            raise _common.os_error(e.errno, filename) from None
        base = [c for c in cwd.split(b"/") if c]
        trusted = 0
    # Trusted components are taken as real: lexical ``..`` is exact on them.
    dest: List[bytes] = list(base)
    n = len(raw)
    i = 0
    index = 0  # component index in raw (empty and "." not counted)
    while i < n:
        while i < n and raw[i] == 47:
            i += 1
        if i >= n:
            break
        j = raw.find(b"/", i)
        if j < 0:
            j = n
        comp = raw[i:j]
        if comp == b".":
            i = j
            continue
        if comp == b"..":
            if dest:
                dest.pop()
            index += 1
            i = j
            continue
        if index < trusted:
            dest.append(comp)
            if len(dest) + sum(map(len, dest)) >= PATH_MAX:
                raise _common.os_error(errno.ENAMETOOLONG, filename)
            index += 1
            i = j
            continue
        cand = b"/" + b"/".join(dest + [comp])
        if len(cand) >= PATH_MAX:
            raise _common.os_error(errno.ENAMETOOLONG, filename)
        try:
            target = _readlink(cand)
        except OSError as e:
            if _common.suffix_requires_dir_check(raw, j):
                if len(cand) + 1 >= PATH_MAX:
                    raise _common.os_error(errno.ENAMETOOLONG, filename) from None
                try:
                    _readlink(cand + b"/")
                except OSError as e2:
                    if e2.errno != errno.EINVAL:
                        raise _common.os_error(e2.errno, filename) from None
            elif e.errno != errno.EINVAL:
                raise _common.os_error(e.errno, filename) from None
            dest.append(comp)
            index += 1
            i = j
            continue
        # The first link: splice its target in, keep the rest of the path.
        tcomps = [c for c in target.split(b"/") if c and c != b"."]
        if target[:1] == b"/":
            dest = []
        k = 0
        while k < len(tcomps) and tcomps[k] == b"..":
            if dest:
                dest.pop()
            k += 1
        rest = [c for c in raw[j:].split(b"/") if c and c != b"."]
        dest = dest + tcomps[k:] + rest
        break
    result = b"/" + b"/".join(dest)
    if len(result) >= PATH_MAX:
        raise _common.os_error(errno.ENAMETOOLONG, filename)
    return result


@overload
def first_link(path: StrPath, start: Union[StrPath, BytesPath, None] = None) -> str: ...


@overload
def first_link(path: BytesPath, start: Union[StrPath, BytesPath, None] = None) -> bytes: ...


def first_link(path: Any, start: Any = None) -> Any:
    """Return ``path`` with only its first symlink replaced by the link's target.

    mod_realdoc's ``UseReadlink`` without its quirks.  Components before
    ``start``'s last one are trusted; from there on every component, the last
    included, is tested with one ``readlink`` (EINVAL: not a link) until the
    first link, whose target replaces it (an absolute target replaces the whole
    prefix; leading ``..`` and ``.`` of a relative one are applied to the
    link's real directory).  The rest of the path is appended; empty and ``.``
    components are dropped.  No link: the normalised absolute path.  A relative
    ``path`` costs one ``getcwd``.  Errors: as :func:`realpath` for the tested
    part; ValueError when ``start`` is not an absolute component-wise prefix of
    ``path``.
    """
    raw, is_str = _common.to_bytes(path)
    trusted = 0
    if start is not None:
        if raw[:1] != b"/":
            raise ValueError(_common.START_NEEDS_ABSOLUTE_PATH.format(path=path))
        trusted = _common.parse_start(raw, start)
    real = _first_link_raw(raw, trusted, path)
    return os.fsdecode(real) if is_str else real


# -------------------------------------------------------------------- Resolver

_monotonic = time.monotonic
# The hit paths read the clock as ``_next(_hit_clock)``: time.monotonic()
# through a counting iterator, so the count of reads is kept in C (the
# remaining length of ``_clock_budget``) and a hit updates no Python counter
# (a list item's ``+= 1`` was a fifth of the hit's cost).  hits = hit-path
# reads - the reads that found the value stale (``_stale``) + the hits served
# elsewhere (``_hits``: the busy-lock path, a test clock's hit path).  Each
# ``next()`` is one C call under the GIL, so threads cannot lose counts.
_CLOCK_READS = sys.maxsize  # repeat() counts in a C ssize_t: 2**63 - 1 (2**31 - 1 on 32-bit)
_next = next
_hits: List[int] = [0]     # the other counters are in _tally (written by _policy)
_stale: List[int] = [0]
_clock_base: List[int] = [0]  # hit-path reads before the last fork (a child starts at 0)
_clock_spent: List[int] = [0]  # reads of the budgets used up before the current one
_clock_lock = threading.Lock()


def _new_clock(reads: int = _CLOCK_READS) -> None:
    """Give the hit paths a new counting clock, good for ``reads`` reads.

    The reads of the clock it replaces stay counted (``_clock_spent``)."""
    global _clock_budget, _hit_clock, _clock_size
    _clock_spent[0] += _clock_size - _clock_budget.__length_hint__()
    _clock_size = reads
    _clock_budget = itertools.repeat((), reads)
    _hit_clock = itertools.starmap(_monotonic, _clock_budget)


_clock_size = 0
_clock_budget: itertools.repeat[Tuple[()]] = itertools.repeat((), 0)
_hit_clock: Iterator[float] = iter(())
_new_clock()


def _refill_clock() -> float:
    """The hit paths' clock ran out (after 2**31 - 1 reads on 32-bit): a new one."""
    with _clock_lock:
        if _clock_budget.__length_hint__() == 0:  # not already replaced by another thread
            _new_clock()
    return _next(_hit_clock)


def _clock_reads() -> int:
    return _clock_spent[0] + _clock_size - _clock_budget.__length_hint__()


def _hit_count() -> int:
    return _clock_reads() - _clock_base[0] - _stale[0] + _hits[0]


_fork_gen: List[int] = [0]  # bumped in a forked child: the parent's locks lapse
_tally = _policy.Tally()
_watcher = _watch.Watcher(_load_inotify())
_DEF_EVERY = _policy.DEFAULT_EVERY
_STALE = "stale"
_AUTO = _scope.DEFAULT_SCOPE
_INF = float("inf")
_NO_DOCROOT: Any = object()  # resolve() called without a positional docroot


class Resolver(_policy.ResolverViews[AnyStr]):
    """One configured docroot, resolved at most every ``every`` seconds.

    Calling the object (no arguments) returns the pinned real docroot: str, or
    bytes when ``docroot`` is bytes (an os.PathLike gives its kind).  A call
    within ``every`` seconds of the last good resolution is a hit: the cached
    value, no syscall.  Otherwise it resolves again (a miss): with
    :func:`realpath`, or with :func:`first_link` when ``use_readlink`` is True
    (from the root) or an absolute start path (components before its last are
    trusted).  While one thread resolves, the others keep getting the cached
    value.

    ``every``: seconds, int or float >= 0 (0: every call resolves; inf:
    never again).  ``on_error``, when a resolution fails: ``"stale"`` serves
    the last good value (raises when there is none), ``"raise"`` raises the
    OSError, ``"passthrough"`` returns the docroot as configured.  A failing
    docroot is retried at most every ``min(every, 1)`` seconds; a failure
    episode logs one warning on the ``realdoc`` logger when it starts and one
    when it ends.  ``clock`` (for tests): a callable returning seconds as int
    or float; any other reading raises TypeError (NaN: ValueError).
    ``scope``: ``"auto"`` (the default), ``"request"`` or ``"process"``: whose
    release the docroot follows, the request's or the process's (see
    :mod:`realdoc._scope`; in process scope a call never resolves).

    Errors at construction: TypeError (docroot not str/bytes/os.PathLike,
    ``every`` not a number, ``use_readlink`` of another type, ``clock`` not
    callable), ValueError (empty docroot or NUL byte, ``every`` < 0 or NaN,
    ``use_readlink`` with a relative docroot or a start that is not an
    absolute component-wise prefix of it, unknown ``on_error`` or ``scope``;
    ``scope="process"`` for a docroot not under the pinned ``app_dir``),
    RuntimeError (``scope="process"`` in a process that ``pin_process`` has
    not pinned), TypeError (``scope`` not a str, ``watch`` not a bool).

    A relative ``docroot`` is taken against the working directory when the
    Resolver is built (one ``getcwd`` then, none later): a later ``chdir``
    never changes what it resolves.  If the working directory cannot be read
    (deleted), every resolution fails with getcwd's error (FileNotFoundError)
    and ``on_error`` applies.  ``docroot`` and ``repr()`` show it as given.

    ``watch=True``: inotify tells the Resolver when a link of its docroot
    changes (realdoc._watch: the directories holding ``current`` and each
    further link are watched, one shared instance and reader thread per
    process), so the next call resolves at once instead of up to ``every``
    seconds later; a hit costs exactly what it costs without watching (no
    syscall).  ``every`` stays the bound on staleness where no event comes
    (NFS and other network filesystems; fallbacks log one WARNING and keep
    plain ``every``).  A watched resolution first walks the docroot (one
    ``readlink`` per component) to find the links to watch.  ``watching`` and
    ``events`` report the state.
    """

    __slots__ = ("__weakref__", "_at", "_cwd", "_cwd_errno", "_docroot", "_every", "_failing",
                 "_fresh_until", "_gen", "_good_at", "_is_str", "_lock", "_mode", "_now",
                 "_on_error", "_raw", "_scope", "_start", "_tick", "_trusted", "_value",
                 "_watch", "_wgen")

    _tally = _tally
    _watcher = _watcher

    @overload
    def __init__(self: Resolver[str], docroot: StrPath, *, every: float = ...,
                 use_readlink: UseReadlink = ..., on_error: OnError = ...,
                 clock: Optional[Callable[[], float]] = ..., scope: Scope = ...,
                 watch: bool = ...) -> None: ...

    @overload
    def __init__(self: Resolver[bytes], docroot: BytesPath, *, every: float = ...,
                 use_readlink: UseReadlink = ..., on_error: OnError = ...,
                 clock: Optional[Callable[[], float]] = ..., scope: Scope = ...,
                 watch: bool = ...) -> None: ...

    def __init__(self, docroot: Any, *, every: float = _DEF_EVERY,
                 use_readlink: UseReadlink = False, on_error: OnError = "stale",
                 clock: Optional[Callable[[], float]] = None, scope: Scope = "auto",
                 watch: bool = False) -> None:
        o = _policy.parse_options(docroot, every, use_readlink, on_error, clock, watch, _getcwd)
        scope = _scope.check_scope(scope)
        old = getattr(self, "_watch", None)
        if old is not None:  # a second __init__ starts afresh
            _watcher.release(old)
        self._docroot = cast(AnyStr, o.docroot)  # the kind __init__'s overloads promise
        self._raw, self._is_str, self._every = o.raw, o.is_str, o.every
        self._mode, self._trusted = o.mode, o.trusted
        self._start = cast(Optional[AnyStr], o.start)
        self._on_error = o.on_error
        self._now: Callable[[], float] = o.clock or _monotonic
        self._cwd, self._cwd_errno = o.cwd, o.cwd_errno
        self._value: Optional[AnyStr] = None
        self._resolved_at = self._good_at = -math.inf
        self._failing: Optional[_policy.Failing] = None
        self._lock = threading.Lock()
        self._gen = _fork_gen[0]
        self._tick = 0.0  # resolve()'s last use: its monotonic clock reading (the LRU order)
        self._wgen = 0
        self._watch: Optional[_watch.Handle] = _watcher.handle(self) if o.watch else None
        self._scope = scope
        _scope.settle(self, scope)

    def __new__(cls, *args: Any, clock: Optional[Callable[[], float]] = None,
                **kwargs: Any) -> Resolver[AnyStr]:
        # A test clock gets a subclass, so the default hit path reads the module's
        # clock directly (one attribute lookup less per call).
        if clock is not None and cls is Resolver:
            return object.__new__(_ClockedResolver)
        return object.__new__(cls)

    @property
    def _resolved_at(self) -> float:
        """When the value was resolved (-inf: due); setting it sets ``_fresh_until``."""
        return self._at

    @_resolved_at.setter
    def _resolved_at(self, at: float) -> None:
        self._at = at
        # the hit's one comparison; -inf + inf is NaN, which compares false: a miss
        self._fresh_until = at + self._every

    def __call__(self) -> AnyStr:
        try:
            now = _next(_hit_clock)  # a counted clock read: the hit's count
        except StopIteration:
            now = _refill_clock()
        if now < self._fresh_until:
            return self._value  # type: ignore[return-value]  # set whenever _resolved_at is
        _stale[0] += 1
        return self._miss()

    def __repr__(self) -> str:
        return _policy.describe(self)

    def refresh(self) -> AnyStr:
        """Resolve now, whatever the age; apply ``on_error`` on failure.

        In process scope: the process's release, with no syscall."""
        if self._resolved_at == _INF:
            return self._value  # type: ignore[return-value]  # process scope: set with it
        return _policy.refresh(self, self._now())  # type: ignore[no-any-return]

    def _resolve_now(self) -> bytes:
        if self._cwd_errno:
            raise _common.os_error(self._cwd_errno, self._docroot)
        if self._mode == _policy.MODE_REALPATH:
            return _realpath_raw(self._raw, self._docroot)
        return _first_link_raw(self._raw, self._trusted, self._docroot)

    def _miss(self) -> AnyStr:
        now = self._now()
        if self._gen != _fork_gen[0]:
            self._lock = threading.Lock()
            self._gen = _fork_gen[0]
        if self._value is not None and self._every > 0:
            if not self._lock.acquire(False):
                _hits[0] += 1  # another thread refreshes: serve the cached value
                return self._value
            try:
                return _policy.refresh(self, now)  # type: ignore[no-any-return]
            finally:
                self._lock.release()
        return _policy.refresh(self, now)  # type: ignore[no-any-return]


class _ClockedResolver(Resolver[AnyStr]):
    """A Resolver whose clock was given (tests): the hit path calls it."""

    __slots__ = ()

    def __call__(self) -> AnyStr:
        if self._now() - self._resolved_at < self._every:
            _hits[0] += 1
            return self._value  # type: ignore[return-value]  # set whenever _resolved_at is
        return self._miss()


# -------------------------------------------------------------------- registry

def _after_fork_in_child() -> None:
    global _clock_lock
    _clock_lock = threading.Lock()  # another thread may have held it at the fork
    _fork_gen[0] += 1
    _clock_base[0] = _clock_reads()
    _hits[0] = _stale[0] = 0
    for name in _sys:
        _sys[name] = 0


_reg: Registry[Resolver[Any]] = Registry(
    Resolver, hits=_hit_count, syscalls=lambda: dict(_sys), tally=_tally,
    on_fork=_after_fork_in_child, watcher=_watcher)
_entries: Dict[Any, Resolver[Any]] = _reg.entries  # looked up by resolve() directly

set_maxsize: Callable[[int], int] = _reg.set_maxsize
get_maxsize: Callable[[], int] = _reg.get_maxsize
stats: Callable[[], Stats] = _reg.stats
cache_info: Callable[[], List[CacheInfoRow]] = _reg.cache_info
clear: ClearFunction = _reg.clear


@overload
def resolve(docroot: StrPath, *, every: float = ..., use_readlink: UseReadlink = ...,
            on_error: OnError = ..., scope: Scope = ..., watch: bool = ...) -> str: ...


@overload
def resolve(docroot: BytesPath, *, every: float = ..., use_readlink: UseReadlink = ...,
            on_error: OnError = ..., scope: Scope = ..., watch: bool = ...) -> bytes: ...


def resolve(docroot: Any = _NO_DOCROOT, /, **options: Any) -> Any:
    # ``**options``, not keyword-only parameters: a function with keyword-only
    # defaults fills them from a dict on every call, the one-argument hit's
    # largest cost.  _resolve_general has the signature and its errors.
    if not options and type(docroot) is str:
        # An exact str is its own key only when absolute (registry_key), so a
        # relative text misses here and takes the general path.  (The type is
        # checked first: an object equal to a key must not find its entry.)
        # a subscript, not .get(): specialised for a dict, it makes no call
        # (an unknown docroot pays for the KeyError once, then has an entry)
        try:
            r = _entries[docroot]
        except KeyError:
            pass
        else:
            # Resolver.__call__ inlined (registry entries never have a test clock);
            # the clock reading is the LRU stamp (one clock read, not two).
            try:
                now = r._tick = _next(_hit_clock)
            except StopIteration:
                now = r._tick = _refill_clock()
            if now < r._fresh_until:
                return r._value
            _stale[0] += 1
            return r._miss()
    if docroot is _NO_DOCROOT:
        return _resolve_general(**options)
    return _resolve_general(docroot, **options)


def _resolve_general(docroot: Any, *, every: Any = _DEF_EVERY, use_readlink: Any = False,
                     on_error: Any = _STALE, scope: Any = _AUTO, watch: Any = False) -> Any:
    key = registry_key(docroot, every, use_readlink, on_error, scope, watch, _getcwd)
    try:
        r = _entries[key]
    except (KeyError, TypeError):
        r = _reg.add(key, docroot, every, use_readlink, on_error, scope, watch)
    try:
        now = r._tick = _next(_hit_clock)
    except StopIteration:
        now = r._tick = _refill_clock()
    if now < r._fresh_until:
        return r._value
    _stale[0] += 1
    return r._miss()


# its errors name resolve(): "resolve() got an unexpected keyword argument ..."
_resolve_general.__qualname__ = _resolve_general.__name__ = "resolve"
resolve.__signature__ = inspect.signature(_resolve_general)  # type: ignore[attr-defined]


resolve.__doc__ = RESOLVE_DOC
