"""resolve()'s per-process registry of Resolvers, written once for both cores.

Each core makes one :class:`Registry` and exports its bound methods as
``set_maxsize``, ``get_maxsize``, ``clear``, ``cache_info`` and ``stats``.
The cores' ``resolve()`` look their entries up in :attr:`Registry.entries`
directly (the compiled one from C) and call :meth:`Registry.add` on a miss;
the key is :func:`registry_key`'s.
"""

from __future__ import annotations

import heapq
import itertools
import os
import sys
import threading
from typing import Any, Callable, Dict, Generic, List, Protocol, Tuple, TypedDict, TypeVar, Union

from . import _common
from ._policy import (
    DEFAULT_EVERY,
    BytesPath,
    CacheInfoRow,
    ResolverViews,
    StrPath,
    Tally,
    cache_info_row,
)
from ._scope import DEFAULT_SCOPE

#: Resolvers resolve() keeps by default.
DEFAULT_MAXSIZE = 1024

RESOLVE_DOC = """Return the pinned real docroot, through the per-process registry.

    ``resolve(docroot, *, every=2.0, use_readlink=False, on_error="stale",
    scope="auto", watch=False)``: one :class:`Resolver` per distinct
    ``(docroot, every, use_readlink, on_error, scope, watch)``, created on
    first use and checked as Resolver checks its arguments (the same errors,
    whatever the registry holds: arguments of other types never share an
    entry, so ``every=True`` is refused even after ``every=1``); the registry
    keeps the ``get_maxsize()`` most recently used ones (an entry dropped by
    eviction or ``clear()`` removes its inotify watches).  A docroot must be
    hashable (TypeError otherwise; use a Resolver).  A hit on an absolute
    docroot costs no syscall.  A relative docroot is taken against the
    working directory of the call: each such call costs one ``getcwd`` (the
    working directory is part of the entry's key, so a call never gets the
    answer made for another directory); use an absolute docroot, or a
    Resolver (which reads the working directory once, when it is built), to
    avoid it.
    """


class Stats(TypedDict):
    """``stats()``: counters of this process since it started (or forked), for one core."""

    hits: int
    misses: int
    errors: int
    stale_served: int
    entries: int
    maxsize: int
    syscalls: Dict[str, int]
    watching: bool
    events: int
    watches: int


class ClearFunction(Protocol):
    """The type of ``clear`` (:meth:`Registry.clear`, bound)."""

    def __call__(self, prefix: Union[StrPath, BytesPath, None] = None) -> int: ...


E = TypeVar("E", bound=ResolverViews[Any])

_EXACT_PATH = (str, bytes)
_EXACT_EVERY = (int, float)
_EXACT_USE_READLINK = (bool, type(None), str, bytes)


class _Relative:
    """The first item of a relative docroot's key: no user value equals it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<relative docroot>"


#: ``registry_key(...)[0]`` for a relative docroot: ``(RELATIVE, cwd, key)``.
RELATIVE = _Relative()


def is_relative(docroot: object) -> bool:
    """True for a non-empty relative path text (str, bytes, or a PathLike giving one).

    Never raises: an object whose ``os.fspath`` fails is not a path (the
    Resolver's checks then refuse it).
    """
    if type(docroot) is str or type(docroot) is bytes:
        p: Any = docroot
    else:
        try:
            p = os.fspath(docroot)  # type: ignore[call-overload]
        except Exception:
            return False
        if not isinstance(p, (str, bytes)):
            return False
    return len(p) > 0 and p[:1] != ("/" if isinstance(p, str) else b"/")


def relative_key(key: Any, getcwd: Callable[[], bytes]) -> Any:
    """``(RELATIVE, cwd, key)``: the key of a relative docroot, for the working
    directory now (one ``getcwd``; ``None`` in its place when getcwd fails)."""
    try:
        cwd: Any = getcwd()
    except OSError:
        cwd = None
    return (RELATIVE, cwd, key)


def registry_key(docroot: object, every: object, use_readlink: object, on_error: object,
                 scope: object = DEFAULT_SCOPE, watch: object = False,
                 getcwd: Callable[[], bytes] = os.getcwdb) -> Any:
    """The registry key of resolve()'s arguments.

    The docroot alone when the options equal the defaults, else a 5-tuple
    ``(docroot, every, use_readlink, on_error, scope)`` (a 6-tuple, ``watch``
    last, when ``watch`` is not False).  An argument of another type than the
    plain ones (str/bytes docroot, int/float ``every``, bool/None/str/bytes
    ``use_readlink``, str ``on_error`` and ``scope``, bool ``watch``) enters
    as ``(type, value)``: equal keys then mean equal types, so an argument
    that would fail the checks (``True``, ``1+0j``) can never find an entry
    made from one that passed (``1``).  A relative docroot's key is
    :func:`relative_key`'s (one ``getcwd``).
    """
    if type(docroot) in _EXACT_PATH and type(every) in _EXACT_EVERY and type(on_error) is str \
            and type(use_readlink) in _EXACT_USE_READLINK and type(scope) is str:
        d: Any = docroot
    else:
        d = docroot if type(docroot) in _EXACT_PATH else (type(docroot), docroot)
        if type(every) not in _EXACT_EVERY:
            every = (type(every), every)
        if type(use_readlink) not in _EXACT_USE_READLINK:
            use_readlink = (type(use_readlink), use_readlink)
        if type(on_error) is not str:
            on_error = (type(on_error), on_error)
        if type(scope) is not str:
            scope = (type(scope), scope)
    if watch is False:
        if use_readlink is False and every == DEFAULT_EVERY and on_error == "stale" \
                and scope == DEFAULT_SCOPE:
            key: Any = d
        else:
            key = (d, every, use_readlink, on_error, scope)
    else:
        key = (d, every, use_readlink, on_error, scope,
               watch if watch is True else (type(watch), watch))
    if is_relative(docroot):
        return relative_key(key, getcwd)
    return key


def check_maxsize(maxsize: object) -> int:
    """Validate the registry size: an int from 1 to sys.maxsize."""
    if isinstance(maxsize, bool) or not isinstance(maxsize, int):
        raise TypeError(f"maxsize must be an int, not {type(maxsize).__name__}")
    if maxsize < 1:
        raise ValueError(f"maxsize must be >= 1, got {maxsize!r}")
    if maxsize > sys.maxsize:
        raise ValueError(f"maxsize must be <= sys.maxsize ({sys.maxsize}), got {maxsize!r}")
    return maxsize


def prefix_matches(docroot: object, prefix_raw: bytes) -> bool:
    """True when ``docroot`` starts with ``prefix_raw`` component-wise.

    Absoluteness counts as a component: ``/tmp`` does not match ``tmp/www``
    nor ``tmp`` ``/tmp/www``.  An empty prefix matches every docroot.
    """
    try:
        raw, _ = _common.to_bytes(docroot)
    except (TypeError, ValueError):
        return False
    if not prefix_raw:
        return True
    if (raw[:1] == b"/") != (prefix_raw[:1] == b"/"):
        return False
    pc = _common.components(prefix_raw)
    return _common.components(raw)[: len(pc)] == pc


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

    def evict(self, registry: Dict[Any, Any], keep: int) -> List[Any]:
        """Delete least recently used entries until ``len(registry) <= keep``; return them."""
        heap = self._heap
        gone: List[Any] = []
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
            gone.append(entry)
        if len(heap) > 2 * len(registry) + 64:
            self.rebuild(registry)
        return gone

    def rebuild(self, registry: Dict[Any, Any]) -> None:
        """Index exactly the registry's current keys."""
        self._heap = [(entry._tick, next(self._seq), key) for key, entry in registry.items()]
        heapq.heapify(self._heap)


class Registry(Generic[E]):
    """One core's registry: ``entries`` (key -> Resolver), bounded LRU, counters.

    ``make`` builds a Resolver from resolve()'s arguments; ``hits`` and
    ``syscalls`` read the core's own counters, ``tally`` holds the others;
    ``on_fork`` resets the core's state in a forked child (this registry then
    takes a new lock and zeroes ``tally``); ``watcher`` is the core's
    ``_watch.Watcher`` (entries that leave release their watches there);
    ``on_remove`` runs after entries left (the compiled core's keyword-call
    memo then lapses).  ``entries`` is never rebound, so a core may keep a
    direct reference to it.
    """

    def __init__(self, make: Callable[..., E], *, hits: Callable[[], int],
                 syscalls: Callable[[], Dict[str, int]], tally: Tally,
                 on_fork: Callable[[], None], watcher: Any,
                 on_remove: Callable[[], None] = lambda: None) -> None:
        self.entries: Dict[Any, E] = {}
        self.maxsize = DEFAULT_MAXSIZE
        self.lock = threading.Lock()
        self._lru = LruIndex()
        self._make = make
        self._hits = hits
        self._syscalls = syscalls
        self._tally = tally
        self._on_fork = on_fork
        self.watcher = watcher
        self._on_remove = on_remove
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork_in_child)

    def add(self, key: Any, docroot: Any, every: Any, use_readlink: Any, on_error: Any,
            scope: Any = DEFAULT_SCOPE, watch: Any = False) -> E:
        """resolve()'s miss: check the arguments (a new Resolver), then enter it under ``key``.

        Another thread may have entered an equal key meanwhile: its entry is
        returned.  A relative docroot's key is corrected to the working
        directory the new Resolver read (should another thread have changed
        it since the key was made).  Raises what Resolver raises, and
        TypeError for an unhashable docroot.
        """
        r = self._make(docroot, every=every, use_readlink=use_readlink, on_error=on_error,
                       scope=scope, watch=watch)
        if type(key) is tuple and key[:1] == (RELATIVE,) and key[1] != r._cwd:
            key = (RELATIVE, r._cwd, key[2])
        try:
            hash(key)
        except TypeError:
            raise TypeError(
                f"resolve() needs a hashable docroot; {type(docroot).__name__} is not hashable "
                "(use a Resolver object for it)"
            ) from None
        with self.lock:
            existing = self.entries.get(key)
            if existing is not None:
                return existing
            gone = self._lru.evict(self.entries, self.maxsize - 1)
            self.entries[key] = r
            self._lru.added(key)
        self._removed(gone)
        return r

    def _removed(self, gone: List[Any]) -> None:
        """Entries ``gone`` left the registry: release their watches."""
        if gone:
            self._on_remove()
            for r in gone:
                if r._watch is not None:
                    self.watcher.release(r._watch)

    def set_maxsize(self, maxsize: int) -> int:
        """Set how many resolvers resolve() keeps (least recently used evicted first).

        Returns the old size.  ``maxsize``: an int from 1 to sys.maxsize
        (TypeError / ValueError otherwise).  Shrinking evicts at once.
        """
        maxsize = check_maxsize(maxsize)
        with self.lock:
            old = self.maxsize
            self.maxsize = maxsize
            gone = self._lru.evict(self.entries, maxsize)
        self._removed(gone)
        return old

    def get_maxsize(self) -> int:
        """How many resolvers resolve() keeps (1024 unless set_maxsize() changed it)."""
        return self.maxsize

    def stats(self) -> Stats:
        """Counters of this process since it started (or forked).

        ``hits`` (calls answered from a Resolver's cache), ``misses``
        (resolutions run), ``errors`` (resolutions that failed),
        ``stale_served`` (last good values served while failing), ``entries``
        and ``maxsize`` of resolve()'s registry, ``syscalls``: the syscalls
        the core issued, by name (the inotify calls of watch mode are not
        among them), and watch mode's: ``watching`` (True while at least one
        Resolver is watched by inotify), ``events`` (inotify events read) and
        ``watches`` (watch descriptors held: one per watched directory).
        """
        t = self._tally
        w = self.watcher
        return {
            "hits": self._hits(), "misses": t.misses, "errors": t.errors,
            "stale_served": t.stale_served, "entries": len(self.entries),
            "maxsize": self.maxsize, "syscalls": self._syscalls(),
            "watching": w.active(), "events": w.events, "watches": w.watch_count(),
        }

    def cache_info(self) -> List[CacheInfoRow]:
        """One dict per registry entry, most recently used first.

        Keys: ``docroot``, ``value``, ``age``, ``expires_in``, ``mode``,
        ``start``, ``every``, ``on_error``, ``scope``, ``effective_scope``,
        ``watch``, ``watching``, ``events`` (as the Resolver reports them) and
        ``failing`` (True between a failed resolution and the next good one).
        """
        with self.lock:
            entries = sorted(self.entries.values(), key=lambda r: -r._tick)
        return [cache_info_row(r) for r in entries]

    def clear(self, prefix: Union[StrPath, BytesPath, None] = None) -> int:
        """Drop every registry entry, or those whose docroot starts with ``prefix``.

        ``prefix`` (str, bytes or os.PathLike) matches component-wise, its
        absoluteness included: ``/var/www/cur`` does not match
        ``/var/www/current``, ``/tmp`` does not match ``tmp/www``; an empty
        prefix matches every docroot.  Returns how many were dropped.  The
        dropped entries' inotify watches are removed.
        """
        if prefix is None:
            with self.lock:
                gone = list(self.entries.values())
                self.entries.clear()
                self._lru.rebuild(self.entries)
            self._removed(gone)
            return len(gone)
        praw, _ = _common.to_bytes(prefix, "prefix")
        with self.lock:
            doomed = [k for k, r in self.entries.items() if prefix_matches(r.docroot, praw)]
            gone = [self.entries.pop(k) for k in doomed]
        self._removed(gone)
        return len(gone)

    def _after_fork_in_child(self) -> None:
        self.lock = threading.Lock()
        self._tally.reset()
        self._on_fork()
        self._on_remove()
