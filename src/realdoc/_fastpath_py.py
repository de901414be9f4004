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
import itertools
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from . import _common
from ._common import PATH_MAX, MAXSYMLINKS, PROC_MIN_COMPONENTS

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

# Run-time features; a probe failure switches one off for the process.
_features: Dict[str, bool] = {
    "proc": _syscall is not None,
    "openat2": _syscall is not None,  # used by the proc route; refreshes use realpath()
}

_SYSCALL_NAMES = ("readlink", "openat2", "close", "getcwd")
_sys: Dict[str, int] = dict.fromkeys(_SYSCALL_NAMES, 0)
# hits, misses, errors, stale_served
_ctr: List[int] = [0, 0, 0, 0]
_fork_gen: List[int] = [0]


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


class Resolver:
    """One configured docroot, resolved at most every ``every`` seconds.

    Calling the object returns the pinned real docroot (str, or bytes when
    configured with bytes).  A hit costs no syscall.  See realdoc's README for
    the contract of ``every``, ``use_readlink`` and ``on_error``.
    """

    __slots__ = ("_docroot", "_raw", "_is_str", "_every", "_mode", "_trusted",
                 "_on_error", "_value", "_resolved_at", "_retry_at", "_error",
                 "_failures", "_lock", "_gen", "_now", "_tick", "__weakref__")

    def __init__(self, docroot: Any, *, every: Any = _common.DEFAULT_EVERY,
                 use_readlink: Any = False, on_error: str = "stale",
                 clock: Optional[Callable[[], float]] = None) -> None:
        raw, is_str = _common.to_bytes(docroot, "docroot")
        if not raw:
            raise ValueError("docroot must not be empty")
        self._raw = raw
        self._is_str = is_str
        self._docroot = _common.from_bytes(raw, is_str)
        self._every = _common.check_every(every)
        self._mode, start = _common.check_use_readlink(raw, use_readlink)
        if self._mode and raw[:1] != b"/":
            raise ValueError("use_readlink needs an absolute docroot")
        self._trusted = _common.parse_start(raw, start) if self._mode == 2 else 0
        self._on_error = _common.check_on_error(on_error)
        self._now: Callable[[], float] = _common.check_clock(clock) or _monotonic
        self._value: Any = None
        self._resolved_at = float("-inf")
        self._retry_at = float("-inf")
        self._error: Optional[OSError] = None
        self._failures = 0
        self._lock = threading.Lock()
        self._gen = _fork_gen[0]
        self._tick = 0

    def __new__(cls, *args: Any, clock: Optional[Callable[[], float]] = None,
                **kwargs: Any) -> "Resolver":
        # A test clock gets a subclass, so the default hit path reads the module's
        # clock directly (one attribute lookup less per call).
        if clock is not None and cls is Resolver:
            cls = _ClockedResolver
        return object.__new__(cls)

    def __call__(self) -> Any:
        if _monotonic() - self._resolved_at < self._every:
            _ctr[0] += 1
            return self._value
        return self._miss()

    def __repr__(self) -> str:
        return (f"Resolver({self._docroot!r}, every={self._every!r}, "
                f"mode={self.mode!r}, value={self._value!r})")

    # read-only views
    @property
    def docroot(self) -> Any:
        """The docroot as configured (str or bytes)."""
        return self._docroot

    @property
    def every(self) -> float:
        """Seconds a resolution is reused."""
        return self._every

    @property
    def on_error(self) -> str:
        """The failure policy: ``stale``, ``raise`` or ``passthrough``."""
        return self._on_error

    @property
    def mode(self) -> str:
        """``realpath`` or ``first_link``."""
        return "realpath" if self._mode == 0 else "first_link"

    @property
    def start(self) -> Any:
        """The first_link start prefix, or None."""
        if self._mode != 2:
            return None
        return _common.from_bytes(b"/" + b"/".join(
            _common.components(self._raw)[: self._trusted + 1]), self._is_str)

    @property
    def value(self) -> Any:
        """The last good resolution, or None."""
        return self._value

    @property
    def age(self) -> Optional[float]:
        """Seconds since the last good resolution, or None."""
        if self._value is None:
            return None
        return max(self._now() - self._resolved_at, 0.0)

    @property
    def expires_in(self) -> Optional[float]:
        """Seconds until the value is refreshed (0 when due), or None."""
        if self._value is None:
            return None
        return max(self._every - (self._now() - self._resolved_at), 0.0)

    def refresh(self) -> Any:
        """Resolve now, whatever the age; apply on_error on failure."""
        return self._refresh(self._now())

    # slow path
    def _resolve_now(self) -> bytes:
        if self._mode == 0:
            return _realpath_raw(self._raw, self._docroot)
        return _first_link_raw(self._raw, self._trusted, self._docroot)

    def _miss(self) -> Any:
        now = self._now()
        if self._gen != _fork_gen[0]:
            self._lock = threading.Lock()
            self._gen = _fork_gen[0]
        if self._value is not None and self._every > 0:
            if not self._lock.acquire(False):
                _ctr[0] += 1  # another thread refreshes: serve the cached value
                return self._value
            try:
                return self._refresh(now)
            finally:
                self._lock.release()
        return self._refresh(now)

    def _refresh(self, now: float) -> Any:
        if self._error is not None and now < self._retry_at:
            return self._failed(self._error, now)
        _ctr[1] += 1
        try:
            raw = self._resolve_now()
        except OSError as e:
            _ctr[2] += 1
            self._failures += 1
            if self._error is None:
                _common.log_failure(self._docroot, e, self._on_error, self._value is not None)
            self._error = e
            self._retry_at = now + min(self._every, 1.0)
            return self._failed(e, now)
        value = _common.from_bytes(raw, self._is_str)
        if self._error is not None:
            _common.log_recovery(self._docroot, value, self._failures)
            self._error = None
            self._failures = 0
        self._value = value
        self._resolved_at = now
        return value

    def _failed(self, exc: OSError, now: float) -> Any:
        if self._on_error == "stale":
            if self._value is not None:
                _ctr[3] += 1
                return self._value
        elif self._on_error == "passthrough":
            return self._docroot
        raise _common.copy_error(exc)

    def _info(self) -> Dict[str, Any]:
        return {
            "docroot": self._docroot, "value": self._value, "age": self.age,
            "expires_in": self.expires_in, "mode": self.mode, "start": self.start,
            "every": self._every, "on_error": self._on_error,
            "failing": self._error is not None,
        }


class _ClockedResolver(Resolver):
    """A Resolver whose clock was given (tests): the hit path calls it."""

    __slots__ = ()

    def __call__(self) -> Any:
        if self._now() - self._resolved_at < self._every:
            _ctr[0] += 1
            return self._value
        return self._miss()


# -------------------------------------------------------------------- registry

_registry: Dict[Any, Resolver] = {}
_maxsize: List[int] = [_common.DEFAULT_MAXSIZE]
_ticks = itertools.count(1)
_lru = _common.LruIndex()
_reg_lock = threading.Lock()


_DEF_EVERY = _common.DEFAULT_EVERY


def resolve(docroot: Any, *, every: Any = _DEF_EVERY,
            use_readlink: Any = False, on_error: str = "stale") -> Any:
    """Return the pinned real docroot, through the per-process registry.

    One :class:`Resolver` per distinct ``(docroot, every, use_readlink,
    on_error)``, created on first use; the registry keeps the
    ``get_maxsize()`` most recently used ones.  Same errors as Resolver.
    """
    if every is _DEF_EVERY and use_readlink is False and on_error == "stale":
        key = docroot
    else:
        key = _common.registry_key(docroot, every, use_readlink, on_error)
    try:
        r = _registry[key]
    except (KeyError, TypeError):
        r = _new_entry(key, docroot, every, use_readlink, on_error)
    r._tick = next(_ticks)
    # Resolver.__call__ inlined (registry entries never have a test clock)
    if _monotonic() - r._resolved_at < r._every:
        _ctr[0] += 1
        return r._value
    return r._miss()


def _new_entry(key: Any, docroot: Any, every: Any, use_readlink: Any,
               on_error: str) -> Resolver:
    r = Resolver(docroot, every=every, use_readlink=use_readlink, on_error=on_error)
    try:
        hash(key)
    except TypeError:
        raise _common.unhashable_docroot(docroot) from None
    with _reg_lock:
        existing = _registry.get(key)
        if existing is not None:
            return existing
        _lru.evict(_registry, _maxsize[0] - 1)
        _registry[key] = r
        _lru.added(key)
    return r


def set_maxsize(maxsize: int) -> int:
    """Set how many resolvers resolve() keeps (LRU); returns the old size."""
    maxsize = _common.check_maxsize(maxsize)
    with _reg_lock:
        old = _maxsize[0]
        _maxsize[0] = maxsize
        _lru.evict(_registry, maxsize)
    return old


def get_maxsize() -> int:
    """How many resolvers resolve() keeps."""
    return _maxsize[0]


def stats() -> Dict[str, Any]:
    """Counters of this process since start (or fork): see realdoc.stats()."""
    out: Dict[str, Any] = {
        "hits": _ctr[0], "misses": _ctr[1], "errors": _ctr[2],
        "stale_served": _ctr[3], "entries": len(_registry), "maxsize": _maxsize[0],
        "syscalls": dict(_sys),
    }
    out.update(_sys)
    return out


def cache_info() -> List[Dict[str, Any]]:
    """One dict per registry entry, most recently used first."""
    with _reg_lock:
        entries = sorted(_registry.values(), key=lambda r: -r._tick)
    return [r._info() for r in entries]


def clear(prefix: Any = None) -> int:
    """Drop every registry entry, or those whose docroot starts with ``prefix``
    component-wise; return how many were dropped."""
    if prefix is None:
        with _reg_lock:
            n = len(_registry)
            _registry.clear()
            _lru.rebuild(_registry)
        return n
    praw, _ = _common.to_bytes(prefix, "prefix")
    with _reg_lock:
        doomed = [k for k, r in _registry.items() if _common.prefix_matches(r._docroot, praw)]
        for k in doomed:
            del _registry[k]
    return len(doomed)


def _reset_stats() -> None:
    for name in _sys:
        _sys[name] = 0
    for i in range(len(_ctr)):
        _ctr[i] = 0


def _after_fork_in_child() -> None:
    global _reg_lock
    _reg_lock = threading.Lock()
    _fork_gen[0] += 1
    _reset_stats()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

