"""The in-use mark: a release that a request (or a pinned process) runs on is visibly in use.

A request pinned to a release may go a long time without any file of that release
open (between reading a template and reading a static file, say), so nothing in
``/proc`` would show that it still needs the release.  The mark closes that gap:
while at least one request (or a process pin) of this process runs on a release,
the process holds **one** descriptor on that release's directory, opened with
``O_RDONLY | O_DIRECTORY | O_CLOEXEC`` and carrying a shared ``flock(2)``.

* ``realdoc status`` sees the descriptor in ``/proc/PID/fd`` (its ``fdinfo`` shows the
  ``FLOCK ... READ`` lock) and reports the process as "pinned by realdoc".
* ``realdoc prune`` takes an exclusive ``flock(LOCK_EX | LOCK_NB)`` on a release
  before it renames it away, and keeps the release if that fails.  The lock makes
  the check and the deletion atomic against a request that starts meanwhile, for
  processes of any user (``/proc`` of other users' processes is not readable, a
  lock is always testable).
* The protocol of a new mark (:func:`hold`): open the release directory by name,
  take the shared lock without blocking, then check that the name still leads to
  the same directory (``fstat`` against ``stat``).  If the open fails with ENOENT,
  the lock is refused (a prune holds it) or the name now leads elsewhere, the
  release was pruned between the request's resolution and its mark: :func:`hold`
  returns ``None`` and the middleware resolves again (``Resolver.refresh()``).
  Once a mark is held, no realdoc prune can remove the release.

Cost: the descriptor is refcounted per release directory.  A request on a release
that this process already marks costs a dict lookup and an uncontended lock, **no
syscall**; only a change of release costs syscalls: ``open`` + ``flock`` +
``fstat`` + ``stat`` (4) for the new mark and ``close`` (1) for the old one.  When
is a release still marked after its last request ended?

* **Middleware with ``every > 0``** (the default, 2 s): the mark of the release it
  served last is kept (:class:`Keeper`) until a request runs on another release,
  so requests answered from the Resolver's cache cost no syscall for their mark.
  An idle worker therefore keeps its last release marked, and status and prune
  show it in use, until its next request on another release.
* **Middleware with ``every=0``**: every request resolves anyway (3 syscalls), and
  the mark is dropped when the last request on the release ends (``close``), so a
  worker serving one request at a time pays 5 more syscalls per request, and a
  release is marked exactly while requests run on it.
* **A process pin** (:func:`hold_for_life`, what ``pin_process`` calls) never
  drops its mark, and requests on that release pay none.

Which directory is "the release": the mark is taken on the real docroot with as many
trailing components removed as the configured docroot has after its innermost
symlink (:func:`layout_depth`): for ``/srv/app/current/public`` resolved to
``/srv/app/releases/r7/public`` that is ``/srv/app/releases/r7``, the directory
prune and status work with.  When the trailing components differ (a symlink inside
the release), the real docroot itself is marked.

A release that the process may not read (no ``r`` permission on its directory) is
marked with an ``O_PATH`` descriptor instead: status still shows it, prune's
``/proc`` scan still sees it, but the lock (and its atomicity) is missing.

After ``fork()`` the child keeps only the marks of :func:`hold_for_life` (a pinned
process's release); marks of requests in flight in the parent are dropped in the
child, which does not run those requests.

Internal API: the WSGI and ASGI middlewares and ``pin_process`` call it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import threading
import weakref
from typing import Any, Dict, List, Optional, Tuple

__all__ = [
    "Keeper", "Mark", "held", "hold", "hold_for_life", "layout_depth", "pin", "release",
    "release_root",
]

_OPEN_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW
_PATH_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW


class Mark:
    """One held release directory: its path, descriptor and number of holders."""

    __slots__ = ("root", "fd", "count", "life", "locked", "paths", "closed")

    def __init__(self, root: str, fd: int, locked: bool) -> None:
        self.root = root
        self.fd = fd
        self.count = 0
        self.life = 0
        self.locked = locked
        self.paths: List[str] = []
        self.closed = False

    def __repr__(self) -> str:
        return f"<realdoc mark {self.root!r} fd={self.fd} holders={self.count}>"


_lock = threading.Lock()
_orphans: List[Mark] = []  # holds of dead Keepers, dropped by the next hold()/release()
_by_path: Dict[str, Mark] = {}  # a real docroot -> the mark of its release
_by_root: Dict[str, Mark] = {}  # a release directory -> its mark


def layout_depth(configured: str) -> int:
    """Count the components of ``configured`` after its innermost symlink.

    ``/srv/app/current/public`` (``current`` a symlink) gives 1, ``/srv/app/current``
    gives 0.  Issues one ``lstat`` per component from the end until it finds a
    symlink; a path with no symlink (or one that cannot be examined) gives 0.  Call
    it once per configured docroot, not per request.
    """
    path = os.path.abspath(configured)
    depth = 0
    while path != "/":
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                return depth
        except OSError:
            return 0
        path = os.path.dirname(path)
        depth += 1
    return 0


def release_root(real: str, depth: int, configured: Optional[str] = None) -> str:
    """Return ``real`` with ``depth`` trailing components removed (lexical, no syscall).

    When ``configured`` is given, the removed components must equal its last
    ``depth`` components, else ``real`` itself is returned.
    """
    if depth <= 0:
        return real
    head = real
    tail: List[str] = []
    for _ in range(depth):
        head, name = os.path.split(head)
        if not name:
            return real
        tail.append(name)
    if configured is not None:
        parts = os.path.abspath(configured).split("/")
        if parts[len(parts) - depth:] != tail[::-1]:
            return real
    return head


def _open_mark(root: str) -> Optional[Mark]:
    """Open, lock and check a new mark on ``root`` (4 syscalls); None if it is gone."""
    try:
        fd = os.open(root, _OPEN_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM):
            return None  # ELOOP (a symlink), ENOTDIR...: not a release we can mark
        try:
            fd = os.open(root, _PATH_FLAGS)
        except OSError:
            return None
        return _checked(Mark(root, fd, False))
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)  # EWOULDBLOCK: a prune is removing it
        return None
    return _checked(Mark(root, fd, True))


def _checked(mark: Mark) -> Optional[Mark]:
    """Return ``mark`` if its name still leads to its directory, else close it."""
    try:
        mine = os.fstat(mark.fd)
        named = os.stat(mark.root, follow_symlinks=False)
    except OSError:
        os.close(mark.fd)
        return None
    if mine.st_nlink == 0 or (mine.st_dev, mine.st_ino) != (named.st_dev, named.st_ino):
        os.close(mark.fd)
        return None
    return mark


def hold(real: str, depth: int = 0, configured: Optional[str] = None) -> Optional[Mark]:
    """Mark the release of the real docroot ``real`` as in use; return the mark.

    ``depth`` and ``configured`` locate the release directory (see
    :func:`release_root`; the middleware computes ``depth`` once with
    :func:`layout_depth`).  Each successful call must be paired with one
    :func:`release` of the returned mark.  No syscall when the release is already
    marked by this process; otherwise 4 (module docstring).  Returns ``None``, with
    nothing held, when the release directory no longer exists under its name or a
    prune holds it: the caller should resolve again.
    """
    with _lock:
        mark = _by_path.get(real)
        if mark is not None:
            mark.count += 1
            return mark
        if _orphans:
            _drop_orphans()
        root = release_root(real, depth, configured)
        mark = _by_root.get(root)
        if mark is None:
            mark = _open_mark(root)
            if mark is None:
                return None
            _by_root[root] = mark
        mark.count += 1
        if len(mark.paths) < 64:
            mark.paths.append(real)
            _by_path[real] = mark
        return mark


def release(mark: Mark) -> None:
    """Drop one hold of ``mark``; the last one closes its descriptor (1 syscall)."""
    with _lock:
        if _orphans:
            _drop_orphans()
        if mark.closed:
            return  # dropped in a forked child: its descriptor is not ours to close
        mark.count -= 1
        if mark.count > 0:
            return
        _drop(mark)


def _drop_orphans() -> None:
    """Release the holds of Keepers that were garbage-collected (lock held)."""
    while _orphans:
        mark = _orphans.pop()
        if not mark.closed:
            mark.count -= 1
            if mark.count <= 0:
                _drop(mark)


def _drop(mark: Mark) -> None:
    """Forget ``mark`` and close its descriptor (lock held)."""
    if _by_root.get(mark.root) is mark:
        del _by_root[mark.root]
    for path in mark.paths:
        if _by_path.get(path) is mark:
            del _by_path[path]
    mark.paths = []
    mark.closed = True
    try:
        os.close(mark.fd)
    except OSError:
        pass


def hold_for_life(real: str, configured: Optional[str] = None) -> Optional[Mark]:
    """Mark ``real``'s release as in use for the rest of the process (and its forks).

    What a process pin calls once: ``configured`` is the symlinked path that
    resolved to ``real`` (``app_dir``).  The mark is never released, so requests
    on that release cost no syscall for their own marks.  Returns the mark, or
    ``None`` as :func:`hold` does.
    """
    depth = 0 if configured is None else layout_depth(configured)
    mark = hold(real, depth, configured)
    if mark is not None:
        with _lock:
            mark.life += 1
    return mark


def held() -> Dict[str, int]:
    """Return ``{release directory: holders}`` for the marks this process holds now."""
    with _lock:
        if _orphans:
            _drop_orphans()
        return {root: mark.count for root, mark in _by_root.items()}


_keepers: "weakref.WeakSet[Keeper]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """Keep only the marks held for life; requests in flight stayed in the parent."""
    global _lock
    _lock = threading.Lock()
    for keeper in list(_keepers):
        keeper._lock = threading.Lock()
        keeper.mark = None  # its extra hold is dropped below with the parent's counts
    del _orphans[:]
    for mark in list(_by_root.values()):
        mark.count = mark.life
        if mark.count == 0:
            _drop(mark)


os.register_at_fork(after_in_child=_after_fork_in_child)


class Keeper:
    """One extra hold on the release a middleware served last (with ``every > 0``).

    A middleware whose Resolver caches (``every > 0``) keeps the mark of the
    release it served last after that release's last request ends, so the next
    requests, answered from the cache, find it marked and cost no syscall.  The
    kept mark is dropped at the first request on another release (a change of
    release).  So an idle worker keeps its last release marked, and status and
    prune show it in use, until it serves a request on another release.
    """

    __slots__ = ("mark", "_lock", "__weakref__")

    def __init__(self) -> None:
        self.mark: Optional[Mark] = None
        self._lock = threading.Lock()
        _keepers.add(self)

    def __del__(self) -> None:
        # The middleware is gone: hand its extra hold to the next hold()/release(),
        # which drop it outside the garbage collector (list.append needs no lock).
        mark = self.mark
        if mark is not None:
            self.mark = None
            _orphans.append(mark)

    def keep(self, mark: Mark) -> None:
        """Keep ``mark`` (held by the caller's request) instead of the one kept so far."""
        with self._lock:
            old = self.mark
            if old is mark:
                return
            with _lock:
                if mark.closed:
                    return
                mark.count += 1
            self.mark = mark
        if old is not None:
            release(old)


def pin(resolver: Any, depth: int, configured: Optional[str],
        keeper: Optional[Keeper] = None) -> Tuple[Any, Optional[Mark]]:
    """Resolve a request's docroot with ``resolver`` and mark its release; return both.

    What the middlewares call once per request.  If the release was pruned between
    the resolution and the mark (:func:`hold` returns ``None``), the docroot is
    resolved again with ``resolver.refresh()``, up to 3 times; after that the
    request runs on the last answer without a mark (``None``).  With a
    ``keeper`` (:class:`Keeper`), a mark other than the kept one is kept instead.
    """
    root = resolver()
    mark = hold(root, depth, configured)
    tries = 3
    while mark is None and tries:
        tries -= 1
        root = resolver.refresh()
        mark = hold(root, depth, configured)
    if keeper is not None and mark is not None and mark is not keeper.mark:
        keeper.keep(mark)
    return root, mark
