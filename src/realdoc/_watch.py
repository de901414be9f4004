"""Watch mode (``watch=True``): inotify tells a Resolver that a link of its docroot changed.

Written once for both cores; each core hands :class:`Watcher` a :class:`Backend`
with the syscalls (the compiled core's are C in ``_fastpath.h``, the pure
twin's go through ctypes into libc).  A core makes one Watcher, so a process
that uses one core (``realdoc.Resolver``, ``realdoc.resolve``) has at most one
inotify instance, created lazily with ``IN_CLOEXEC | IN_NONBLOCK`` when the
first watching Resolver resolves.

What is watched.  Before each resolution a watching Resolver walks its docroot
text (:func:`links`: one ``readlink`` per component, as glibc's realpath walks
it) and records the directory that holds each symlink met on the way
(``current``, and ``A`` in ``current -> A -> releases/r1``), and, when a
component is missing, the directory where it would be.  Each such directory
gets one inotify watch (``inotify_add_watch``, shared by every Resolver that
needs it: one watch descriptor per directory, removed with
``inotify_rm_watch`` when no Resolver needs it any more).  The directory is
watched, not the link, because ``inotify_add_watch`` follows symlinks.

What an event does.  Events are filtered by link name: ``IN_MOVED_TO``,
``IN_CREATE``, ``IN_DELETE`` and ``IN_MOVED_FROM`` on a recorded name, and
``IN_DELETE_SELF``, ``IN_MOVE_SELF`` or ``IN_IGNORED`` of a watched directory,
expire exactly the Resolvers that recorded it (:func:`realdoc._policy.expire`:
their next call resolves); ``IN_Q_OVERFLOW`` expires every watching Resolver.
The hit path does not change: an event sets the Resolver's resolution time to
minus infinity, so a hit still compares one clock reading and issues no
syscall.  ``every`` stays the safety net: a value is reused at most ``every``
seconds even when no event comes (NFS, FUSE and other filesystems that deliver
no inotify events for changes made elsewhere; a changed component that is not
a link, such as a parent directory renamed and replaced).

Who reads the events.  One daemon thread per process and core
(``realdoc-watch``), started with the first watch, blocks in ``poll()`` on the
inotify descriptor with no timeout, then ``read()``s and dispatches with the
GIL held.  An idle process makes no syscall for watching.  A forked child
closes its copy of the parent's descriptor (it never reads the parent's
queue), forgets the parent's watches, expires its watching Resolvers and
creates its own instance and thread on the next resolution.

Test seam: while a test holds :attr:`Watcher.gate`, the reader thread, woken by
``poll()``, waits before its ``read()``, so events pile up in the kernel's queue
(tests/test_watch.py overflows it that way without changing the global
``fs.inotify.max_queued_events``).

Fallbacks.  Each logs one WARNING (per process and kind, on the ``realdoc``
logger) and leaves the Resolvers concerned on plain ``every``; no resolution
fails because of watching: no inotify (not Linux, or ``inotify_init1`` fails,
for instance ``EMFILE`` when ``fs.inotify.max_user_instances`` is used up; not
retried in this process), ``ENOSPC`` from ``inotify_add_watch``
(``fs.inotify.max_user_watches``), and a directory that cannot be watched
(``EACCES``, ...; retried at the Resolver's next resolution).
"""

from __future__ import annotations

import errno
import os
import struct
import threading
import weakref
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Set, Tuple

from . import _common, _policy

# <sys/inotify.h>
IN_MODIFY = 0x00000002
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000

#: The events a watched directory reports (IN_Q_OVERFLOW and IN_IGNORED always come).
WATCH_MASK = (IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF
              | IN_MOVE_SELF | IN_ONLYDIR)
#: Events about the watched directory itself: every Resolver watching it expires.
SELF_EVENTS = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED

_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (+ name)
#: Bytes per read(): room for many events (the kernel never splits one).
READ_SIZE = 64 * 1024

WatchKey = Tuple[bytes, bytes]  # (directory, link name)


class Backend(NamedTuple):
    """A core's syscalls for watching; each raises OSError with the errno.

    ``init()``: ``inotify_init1(IN_CLOEXEC | IN_NONBLOCK)``, the descriptor.
    ``add(fd, dir, mask)``: ``inotify_add_watch``, the watch descriptor.
    ``rm(fd, wd)``: ``inotify_rm_watch``.  ``wait(fd)``: ``poll()`` for input,
    no timeout, the GIL released.  ``read(fd)``: one ``read()`` of up to
    :data:`READ_SIZE` bytes (``b""`` on EAGAIN).  ``close(fd)``.
    ``readlink(path)``: the core's counted readlink (for :func:`links`).
    """

    init: Callable[[], int]
    add: Callable[[int, bytes, int], int]
    rm: Callable[[int, int], None]
    wait: Callable[[int], None]
    read: Callable[[int], bytes]
    close: Callable[[int], None]
    readlink: Callable[[bytes], bytes]


def parse_events(data: bytes) -> Iterator[Tuple[int, int, bytes]]:
    """``(wd, mask, name)`` for each ``struct inotify_event`` in ``data`` (name without NULs)."""
    i, n = 0, len(data)
    size = _EVENT.size
    while i + size <= n:
        wd, mask, _cookie, length = _EVENT.unpack_from(data, i)
        i += size
        name = data[i:i + length].rstrip(b"\0")
        i += length
        yield wd, mask, name


def links(raw: bytes, readlink: Callable[[bytes], bytes], first_only: bool = False,
          trusted: int = 0) -> List[WatchKey]:
    """The ``(directory, name)`` of each symlink met walking the absolute path ``raw``.

    glibc realpath's walk (one ``readlink`` per tested component, a link's
    target spliced in front of the rest); when a component is missing, its
    ``(directory, name)`` ends the list (its creation is what to wait for).
    Any other error ends the walk too: what was found is returned, and
    ``every`` covers the rest.  ``first_only`` (first_link mode) stops after
    the first link; the first ``trusted`` components are not tested.  At most
    :data:`realdoc._common.MAXSYMLINKS` links are followed.
    """
    out: List[WatchKey] = []
    dest = b""
    rest = _common.components(raw)
    index = 0
    followed = 0
    while rest:
        comp = rest.pop(0)
        if comp == b"..":
            dest = dest[:dest.rfind(b"/")]
            index += 1
            continue
        cand = dest + b"/" + comp
        if index < trusted:
            dest = cand
            index += 1
            continue
        index += 1
        if len(cand) >= _common.PATH_MAX:
            break
        try:
            target = readlink(cand)
        except OSError as e:
            if e.errno == errno.ENOENT:
                out.append((dest or b"/", comp))
            if e.errno != errno.EINVAL:
                break
            dest = cand
            continue
        out.append((dest or b"/", comp))
        followed += 1
        if first_only or followed > _common.MAXSYMLINKS:
            break
        rest = _common.components(target) + rest
        if target[:1] == b"/":
            dest = b""
        trusted = 0
    return list(dict.fromkeys(out))


class Handle:
    """One watching Resolver's registrations: ``keys`` maps ``(directory, name)`` to its wd.

    ``watching``: every directory the last walk found is watched now.
    ``events``: events that expired the Resolver.  ``ref``: a weak reference
    to the Resolver (the Resolver holds the Handle).  ``listeners``: callables
    run (by the reader thread, with the watcher's lock held: keep them short,
    e.g. ``threading.Event.set``) after each event that expired the Resolver;
    pin_process's rollover thread waits on one.
    """

    __slots__ = ("events", "keys", "listeners", "ref", "watching")

    def __init__(self, ref: "weakref.ref[Any]") -> None:
        self.ref = ref
        self.keys: Dict[WatchKey, int] = {}
        self.watching = False
        self.events = 0
        self.listeners: List[Callable[[], None]] = []


class Watcher:
    """A core's inotify instance, its watches and its reader thread (module docstring).

    ``backend`` is None where the core has no inotify (not Linux): every
    watching Resolver then falls back to ``every``, with one warning.
    """

    def __init__(self, backend: Optional[Backend]) -> None:
        self.backend = backend
        self.lock = threading.Lock()
        self.fd = -1
        self.unavailable: Optional[str] = None if backend is not None else \
            "inotify is not available on this system"
        self.dirs: Dict[int, Dict[bytes, Set[Handle]]] = {}  # wd -> name -> handles
        self.handles: Dict["weakref.ref[Any]", Handle] = {}
        self.events = 0
        self.thread: Optional[threading.Thread] = None
        self.warned: Set[str] = set()
        self.pending: List[Handle] = []  # of collected Resolvers: released at next lock
        #: Test seam: while held, the reader thread does not read (events queue up).
        self.gate = threading.Lock()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork_in_child)

    # ------------------------------------------------------------ resolvers

    def handle(self, resolver: Any) -> Handle:
        """A new Handle for ``resolver`` (released when the Resolver is collected)."""
        ref = weakref.ref(resolver, self._collected)
        h = Handle(ref)
        with self.lock:
            self.handles[ref] = h
        return h

    def track(self, h: Handle, raw: bytes, first_only: bool, trusted: int) -> None:
        """Before a resolution: walk ``raw`` and watch the directories of its links.

        Watches no longer needed are removed; new ones added (the instance and
        the reader thread are created on first need).  Never raises: a
        failure logs once and leaves ``h.watching`` False.
        """
        if self.unavailable is not None and self.fd < 0:
            self._warn("unavailable", f"realdoc: {self.unavailable}; watch=True resolvers "
                       "refresh every `every` seconds instead")
            h.watching = False
            return
        assert self.backend is not None
        want = links(raw, self.backend.readlink, first_only, trusted)
        with self.lock:
            try:
                self._release_pending()
                ok = self._ensure_instance()
                if ok:
                    for key in [k for k in h.keys if k not in want]:
                        self._unregister(h, key)
                    for key in want:
                        if key not in h.keys and not self._register(h, key):
                            ok = False
                h.watching = ok
            finally:
                pending = bool(self.pending)
        if pending:
            self.collect()

    def release(self, h: Optional[Handle]) -> None:
        """Remove every watch of ``h`` (clear(), eviction, a collected Resolver)."""
        if h is None:
            return
        with self.lock:
            self._release(h)
            self._release_pending()

    def collect(self) -> None:
        """Release the Handles of collected Resolvers now (if the lock is free)."""
        if self.lock.acquire(False):
            try:
                self._release_pending()
            finally:
                self.lock.release()

    # ------------------------------------------------------------ introspection

    def active(self) -> bool:
        """True while at least one Resolver is watched by this process's instance."""
        return self.fd >= 0 and any(h.watching for h in list(self.handles.values()))

    def watch_count(self) -> int:
        """Watch descriptors held now."""
        return len(self.dirs)

    # ------------------------------------------------------------ internals

    def _warn(self, kind: str, message: str) -> None:
        if kind not in self.warned:
            self.warned.add(kind)
            _policy.logger.warning("%s", message)

    def _ensure_instance(self) -> bool:
        if self.fd >= 0:
            return True
        if self.unavailable is not None:
            self._warn("unavailable", f"realdoc: {self.unavailable}; watch=True resolvers "
                       "refresh every `every` seconds instead")
            return False
        assert self.backend is not None
        try:
            self.fd = self.backend.init()
        except OSError as e:
            hint = " (fs.inotify.max_user_instances used up?)" if e.errno == errno.EMFILE else ""
            self.unavailable = f"no inotify instance: inotify_init1: {e}{hint}"
            self._warn("unavailable", f"realdoc: {self.unavailable}; watch=True resolvers "
                       "refresh every `every` seconds instead")
            return False
        return True

    def _register(self, h: Handle, key: WatchKey) -> bool:
        directory, name = key
        assert self.backend is not None
        try:
            wd = self.backend.add(self.fd, directory, WATCH_MASK)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                self._warn("ENOSPC", f"realdoc: cannot watch {os.fsdecode(directory)!r}: {e} "
                           "(fs.inotify.max_user_watches used up?); those resolvers refresh "
                           "every `every` seconds instead")
            elif e.errno != errno.ENOENT:  # gone meanwhile: the resolution will tell
                self._warn("unwatchable", f"realdoc: cannot watch {os.fsdecode(directory)!r}: "
                           f"{e}; resolvers through it refresh every `every` seconds instead")
            return False
        h.keys[key] = wd
        self.dirs.setdefault(wd, {}).setdefault(name, set()).add(h)
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, args=(self.fd,),
                                           name="realdoc-watch", daemon=True)
            self.thread.start()
        return True

    def _unregister(self, h: Handle, key: WatchKey) -> None:
        wd = h.keys.pop(key)
        names = self.dirs.get(wd)
        if names is None:
            return
        users = names.get(key[1])
        if users is not None:
            users.discard(h)
            if not users:
                del names[key[1]]
        if not names:
            del self.dirs[wd]
            assert self.backend is not None
            try:
                self.backend.rm(self.fd, wd)
            except OSError:
                pass  # the kernel dropped it already (directory deleted)

    def _release(self, h: Handle) -> None:
        for key in list(h.keys):
            self._unregister(h, key)
        h.watching = False
        self.handles.pop(h.ref, None)

    def _release_pending(self) -> None:
        while self.pending:
            self._release(self.pending.pop())

    def _collected(self, ref: "weakref.ref[Any]") -> None:
        h = self.handles.get(ref)
        if h is not None:
            self.pending.append(h)
            self.collect()

    def _run(self, fd: int) -> None:
        """The reader thread: poll without timeout, read, dispatch; ends with its descriptor."""
        assert self.backend is not None
        wait, read = self.backend.wait, self.backend.read
        while True:
            try:
                wait(fd)
                with self.gate:
                    data = read(fd)
            except OSError:
                return  # the descriptor was closed (fork, shutdown)
            if self.fd != fd:
                return
            if data:
                self._dispatch(data)

    def _dispatch(self, data: bytes) -> None:
        expired: List[Handle] = []
        with self.lock:
            for wd, mask, name in parse_events(data):
                self.events += 1
                if mask & IN_Q_OVERFLOW:
                    expired.extend(self.handles.values())
                    continue
                names = self.dirs.get(wd)
                if names is None:
                    continue
                if mask & SELF_EVENTS:
                    # the directory itself went (or moved): its watch is of no use now
                    del self.dirs[wd]
                    for users in names.values():
                        for h in users:
                            expired.append(h)
                            h.keys = {k: w for k, w in h.keys.items() if w != wd}
                            h.watching = False
                    if not mask & IN_IGNORED:
                        assert self.backend is not None
                        try:
                            self.backend.rm(self.fd, wd)
                        except OSError:
                            pass
                    continue
                expired.extend(names.get(name, ()))
            for h in dict.fromkeys(expired):
                h.events += 1
                r = h.ref()
                if r is not None:
                    _policy.expire(r)
                for listener in h.listeners:
                    listener()
            self._release_pending()

    def _after_fork_in_child(self) -> None:
        self.lock = threading.Lock()
        self.gate = threading.Lock()
        if self.fd >= 0 and self.backend is not None:
            try:
                self.backend.close(self.fd)  # the parent's queue: never read here
            except OSError:
                pass
        self.fd = -1
        self.thread = None
        self.dirs = {}
        self.events = 0
        self.pending = []
        if self.backend is not None and self.unavailable is not None \
                and self.unavailable.startswith("no inotify instance"):
            self.unavailable = None  # the child may have an instance left
        for h in list(self.handles.values()):
            h.keys = {}
            h.watching = False
            h.events = 0
            r = h.ref()
            if r is not None:
                _policy.expire(r)
