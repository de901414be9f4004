"""Logic shared by the compiled core and its pure-Python twin, off the hot path.

Argument checks, error construction, log messages and the lexical helpers that
both implementations call, written once so that they behave bit for bit alike.
Nothing here issues a syscall.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import logging
import math
import os
import sys
from typing import Any, Dict, List, Optional, Tuple, Union

logger = logging.getLogger("realdoc")

#: Longest path the kernel accepts, counting the terminating NUL (linux/limits.h).
PATH_MAX = 4096
#: Links followed in one resolution before ELOOP, as glibc and the kernel do.
MAXSYMLINKS = 40
#: From this many components on (a relative path counts one more, for getcwd),
#: realpath() asks the kernel to walk the path (3 syscalls) instead of walking
#: it with one readlink per component.  Measured crossover on this kind of
#: machine: a 4-component path with one link costs libc about as much as the
#: 3-syscall route; from 5 components on the kernel walk wins.
PROC_MIN_COMPONENTS = 5

ON_ERROR_CHOICES = ("stale", "raise", "passthrough")
DEFAULT_EVERY = 2.0
DEFAULT_MAXSIZE = 1024


def to_bytes(path: Any, what: str = "path") -> Tuple[bytes, bool]:
    """Return ``(path as bytes, given_as_str)`` for a str, bytes or PathLike.

    Raises TypeError for any other type and ValueError for an embedded NUL
    byte, with messages that name ``what``.  str is encoded with the
    filesystem encoding and surrogateescape, so every name round-trips.
    """
    if isinstance(path, str):
        is_str = True
        raw = os.fsencode(path)
    elif isinstance(path, bytes):
        is_str = False
        raw = path if type(path) is bytes else bytes(path)
    else:
        try:
            p = os.fspath(path)
        except TypeError:
            raise TypeError(
                f"{what} must be str, bytes or os.PathLike, not {type(path).__name__}"
            ) from None
        is_str = isinstance(p, str)
        raw = os.fsencode(p) if is_str else bytes(p)
    if 0 in raw:  # the int test: ``b"\0" in raw`` raises and clears a TypeError first
        raise ValueError(f"{what} contains an embedded null byte")
    return raw, is_str


def from_bytes(raw: bytes, is_str: bool) -> Union[str, bytes]:
    """Return ``raw`` as the kind the caller gave (str via surrogateescape)."""
    return os.fsdecode(raw) if is_str else raw


def os_error(code: Optional[int], filename: Any) -> OSError:
    """Build the OSError subclass ``os`` functions raise for ``code`` (EIO if unknown)."""
    if code is None:
        code = errno.EIO
    return OSError(code, os.strerror(code), filename)


def components(raw: bytes) -> List[bytes]:
    """Split a path into components, dropping empty and ``.`` ones (``..`` kept)."""
    return [c for c in raw.split(b"/") if c and c != b"."]


def count_normal(raw: bytes) -> int:
    """Number of components that are neither empty, ``.`` nor ``..``."""
    n = 0
    for c in raw.split(b"/"):
        if c and c != b"." and c != b"..":
            n += 1
    return n


def leading_dotdot(raw: bytes) -> bool:
    """A relative path whose first component other than ``.`` is ``..``."""
    if raw[:1] == b"/":
        return False
    for c in raw.split(b"/"):
        if c and c != b".":
            return c == b".."
    return False


def suffix_requires_dir_check(s: bytes, k: int) -> bool:
    """True when the text ``s[k:]`` after a component obliges a directory check.

    Mirrors glibc: a trailing ``/``, a trailing ``/.``, or ``/..`` anywhere
    next means the component must be a searchable directory, which nothing
    later would otherwise test.
    """
    n = len(s)
    while k < n and s[k] == 47:  # '/'
        while k < n and s[k] == 47:
            k += 1
        if k >= n:
            return True
        c = s[k]
        k += 1
        if c != 46:  # '.'
            return False
        if k >= n or (s[k] == 46 and (k + 1 >= n or s[k + 1] == 47)):
            return True
    return False


def parse_start(path_raw: bytes, start: Any) -> int:
    """Check ``start`` for first_link() and return how many components are trusted.

    ``start`` must be an absolute path whose components (empty and ``.``
    dropped) are a prefix of ``path_raw``'s.  Returns the number of leading
    components of ``path_raw`` that are trusted (not tested): all of
    ``start``'s but its last.  Raises TypeError / ValueError otherwise.
    """
    sraw, _ = to_bytes(start, "start")
    if not sraw.startswith(b"/"):
        raise ValueError(f"start must be an absolute path, got {start!r}")
    scomps = components(sraw)
    pcomps = components(path_raw)
    if pcomps[: len(scomps)] != scomps:
        raise ValueError(
            f"start {start!r} is not a component-wise prefix of the path "
            f"{os.fsdecode(path_raw)!r}"
        )
    return max(len(scomps) - 1, 0)


def check_every(every: Any) -> float:
    """Validate a refresh interval in seconds; return it as float."""
    if isinstance(every, bool) or not isinstance(every, (int, float)):
        raise TypeError(f"every must be a number of seconds, not {type(every).__name__}")
    try:
        value = float(every)
    except OverflowError:  # an int beyond float range: never refresh
        value = math.inf if every > 0 else -math.inf
    if math.isnan(value) or value < 0:
        raise ValueError(f"every must be a number of seconds >= 0, got {every!r}")
    return value


def check_on_error(on_error: Any) -> str:
    """Validate the on_error policy name."""
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(
            f"on_error must be one of {', '.join(map(repr, ON_ERROR_CHOICES))}, "
            f"got {on_error!r}"
        )
    return str(on_error)


def check_use_readlink(docroot_raw: bytes, use_readlink: Any) -> Tuple[int, Optional[bytes]]:
    """Validate use_readlink; return ``(mode, start_raw)``.

    mode 0: realpath; 1: first_link from the root; 2: first_link from start.
    """
    if use_readlink is False or use_readlink is None:
        return 0, None
    if use_readlink is True:
        return 1, None
    if isinstance(use_readlink, (str, bytes)) or hasattr(use_readlink, "__fspath__"):
        parse_start(docroot_raw, use_readlink)
        sraw, _ = to_bytes(use_readlink, "use_readlink")
        return 2, sraw
    raise TypeError(
        "use_readlink must be False, True or an absolute start path, "
        f"not {type(use_readlink).__name__}"
    )


def check_clock(clock: Any) -> Any:
    """Validate the optional clock callable (for tests)."""
    if clock is not None and not callable(clock):
        raise TypeError("clock must be a callable returning seconds, or None")
    return clock


def check_maxsize(maxsize: Any) -> int:
    """Validate the registry size."""
    if isinstance(maxsize, bool) or not isinstance(maxsize, int):
        raise TypeError(f"maxsize must be an int, not {type(maxsize).__name__}")
    if maxsize < 1:
        raise ValueError(f"maxsize must be >= 1, got {maxsize!r}")
    if maxsize > sys.maxsize:
        raise ValueError(f"maxsize must be <= sys.maxsize ({sys.maxsize}), got {maxsize!r}")
    return maxsize


def registry_key(docroot: Any, every: Any, use_readlink: Any, on_error: Any) -> Any:
    """Key of resolve()'s registry: the docroot alone when every option is default."""
    if every == DEFAULT_EVERY and use_readlink is False and on_error == "stale" \
            and type(every) in (int, float):
        return docroot
    if hasattr(use_readlink, "__fspath__") and not isinstance(use_readlink, (str, bytes)):
        use_readlink = os.fspath(use_readlink)
    return (docroot, every, use_readlink, on_error)


def copy_error(exc: OSError) -> OSError:
    """A fresh OSError equal to ``exc`` (re-raising one object grows its traceback)."""
    if exc.filename is not None:
        return OSError(exc.errno, exc.strerror, exc.filename)
    return OSError(exc.errno, exc.strerror)


def log_failure(docroot: Any, exc: OSError, on_error: str, has_value: bool) -> None:
    """Log the start of a failure episode (once per episode)."""
    if on_error == "stale" and has_value:
        action = "serving the last good value"
    elif on_error == "passthrough":
        action = "serving the configured docroot unresolved"
    else:
        action = "raising"
    logger.warning("realdoc: cannot resolve %r: %s; %s until it recovers",
                   docroot, exc, action)


def log_recovery(docroot: Any, value: Any, failures: int) -> None:
    """Log the end of a failure episode."""
    logger.warning("realdoc: %r resolves again, to %r, after %d failed attempt(s)",
                   docroot, value, failures)


def unhashable_docroot(docroot: Any) -> TypeError:
    """The TypeError resolve() raises for a valid but unhashable docroot."""
    return TypeError(
        f"resolve() needs a hashable docroot; {type(docroot).__name__} is not hashable "
        "(use a Resolver object for it)"
    )


START_NEEDS_ABSOLUTE_PATH = "first_link() with start needs an absolute path, got {path!r}"


def prefix_matches(docroot: Any, prefix_raw: bytes) -> bool:
    """True when ``docroot`` starts component-wise with ``prefix_raw``."""
    try:
        raw, _ = to_bytes(docroot)
    except (TypeError, ValueError):
        return False
    pc = components(prefix_raw)
    return components(raw)[: len(pc)] == pc


#: Errors of the 3-syscall route after which realpath() walks instead (see _fastpath.pyx).
ERRNO_FALLBACK = frozenset({errno.EACCES, errno.ENAMETOOLONG, errno.EMFILE, errno.ENFILE})


class LruIndex:
    """Which registry entry was used least recently, without work on a hit.

    Each entry carries ``_tick``, a counter value stamped by resolve() on use.
    The index is a heap of ``(tick, seq, key)`` that is corrected lazily: an
    entry popped with an outdated tick is pushed back with its current one, so
    eviction is exact LRU at amortised O(log n) per insert, and a hit only
    stores an integer.  Callers hold the registry lock.
    """

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: List[Tuple[int, int, Any]] = []
        self._seq = itertools.count()

    def added(self, key: Any) -> None:
        """Record a new registry key (its tick is read back at eviction)."""
        heapq.heappush(self._heap, (0, next(self._seq), key))

    def evict(self, registry: Dict[Any, Any], keep: int) -> None:
        """Delete least recently used entries until ``len(registry) <= keep``."""
        heap = self._heap
        while len(registry) > keep:
            if not heap:
                self.rebuild(registry)
            tick, seq, key = heapq.heappop(heap)
            entry = registry.get(key)
            if entry is None:
                continue  # dropped by clear() meanwhile
            if entry._tick != tick:
                heapq.heappush(heap, (entry._tick, seq, key))
                continue
            del registry[key]
        if len(heap) > 2 * len(registry) + 64:
            self.rebuild(registry)

    def rebuild(self, registry: Dict[Any, Any]) -> None:
        """Index exactly the registry's current keys."""
        self._heap = [(entry._tick, next(self._seq), key) for key, entry in registry.items()]
        heapq.heapify(self._heap)
