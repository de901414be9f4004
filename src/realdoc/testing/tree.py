"""Temporary deploy trees and a background flipper, for tests and benchmarks.

A deploy tree is the layout that realdoc exists for::

    root/
      releases/r1/public/a.txt   (content: "r1")
      releases/r2/public/a.txt   (content: "r2")
      ...
      current -> releases/r1     (relative symlink)

The web server's configured docroot is ``root/current/public``; deploying a
release means repointing ``current``.  :class:`DeployTree` builds such a tree
and flips it the two ways deployers do (atomic rename, non-atomic
``ln -sfn``); :class:`Flipper` keeps flipping it from a background thread
while a test hammers the resolver.

Standard library only and no pytest import: importable from benchmarks too.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import threading
import time
import uuid
from typing import List, Optional, Sequence, Tuple, Type, Union

__all__ = ["DeployTree", "Flipper"]

_PathLike = Union[str, "os.PathLike[str]"]


def _natural_key(name: str) -> Tuple[Union[int, str], ...]:
    """Sort key that orders ``r2`` before ``r10``."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def _check_component(name: str) -> str:
    """Return *name* if it is a single, ordinary path component.

    Raises :class:`ValueError` for ``""``, ``"."``, ``".."`` and anything
    containing ``"/"`` or a NUL byte.
    """
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"not a valid release name: {name!r}")
    return name


class DeployTree:
    """A deploy tree rooted at :attr:`root`: ``releases/<name>/public`` plus ``current``.

    The object holds no open resources; it only knows paths and the list of
    release names.  Build a fresh tree with :meth:`create`; wrap an existing
    one with the constructor (release names are then read from
    ``root/releases``, sorted naturally).  Paths returned are absolute but
    not resolved, except :meth:`release_path`, which is the real path.
    Methods are not synchronised: flip from one thread at a time (which is
    what :class:`Flipper` does); reading the link from other threads is the
    point and is always safe.
    """

    PUBLIC = "public"
    """Name of the directory inside each release that is served."""

    def __init__(
        self, root: _PathLike, files: Sequence[str] = ("a.txt", "b.txt")
    ) -> None:
        """Wrap an existing tree at *root*; nothing is created or checked.

        *files* are the paths (relative to ``public``) that
        :meth:`add_release` writes into new releases.
        """
        self.root: str = os.path.abspath(os.fspath(root))
        self.files: Tuple[str, ...] = tuple(files)
        releases_dir = os.path.join(self.root, "releases")
        names = os.listdir(releases_dir) if os.path.isdir(releases_dir) else []
        self._releases: List[str] = sorted(names, key=_natural_key)

    @classmethod
    def create(
        cls,
        root: _PathLike,
        releases: int = 3,
        files: Sequence[str] = ("a.txt", "b.txt"),
    ) -> DeployTree:
        """Build a new tree with releases ``r1`` .. ``r<releases>``; return it.

        *root* may exist already (for example pytest's ``tmp_path``) but must
        not contain ``releases`` or ``current``.  Each release gets
        ``public/<file>`` for every entry of *files* (subdirectories are
        created), each file containing the release name with no newline.
        ``current`` is a relative symlink to ``releases/r1``.

        Raises :class:`ValueError` if *releases* < 1 or a file path is absolute
        or escapes ``public``, :class:`FileExistsError` if the tree exists.
        """
        if releases < 1:
            raise ValueError(f"releases must be >= 1, got {releases}")
        for f in files:
            norm = os.path.normpath(f)
            if os.path.isabs(f) or norm == os.curdir or norm.startswith(os.pardir):
                raise ValueError(f"file path must stay inside public/: {f!r}")
        root_s = os.path.abspath(os.fspath(root))
        os.makedirs(root_s, exist_ok=True)
        os.mkdir(os.path.join(root_s, "releases"))
        tree = cls(root_s, files)
        for i in range(1, releases + 1):
            tree.add_release(f"r{i}")
        os.symlink(os.path.join("releases", "r1"), tree.current)
        return tree

    @property
    def current(self) -> str:
        """Path of the ``current`` symlink (``root/current``)."""
        return os.path.join(self.root, "current")

    @property
    def docroot(self) -> str:
        """The symlinked docroot a server would be configured with: ``current/public``."""
        return os.path.join(self.current, self.PUBLIC)

    @property
    def releases(self) -> List[str]:
        """Release names in creation (or natural sort) order; a fresh copy each time."""
        return list(self._releases)

    def release_path(self, name: str) -> str:
        """Real absolute path of ``root/releases/<name>`` (``os.path.realpath``).

        The release need not exist.  Raises :class:`ValueError` if *name* is
        not a single path component.
        """
        _check_component(name)
        return os.path.realpath(os.path.join(self.root, "releases", name))

    def current_release(self) -> str:
        """Name of the release ``current`` points to, read with one ``os.readlink``.

        Raises :class:`FileNotFoundError` while the link is missing (inside
        a non-atomic flip) and :class:`OSError` if ``current`` is not a link.
        """
        return os.path.basename(os.readlink(self.current).rstrip("/"))

    def add_release(self, name: str) -> str:
        """Create release *name* with the tree's files; return its real path.

        Each file's content is *name*.  The release is appended to
        :attr:`releases`; ``current`` is not touched.  Raises
        :class:`ValueError` for an invalid name and :class:`FileExistsError`
        if the release directory exists.
        """
        _check_component(name)
        path = os.path.join(self.root, "releases", name)
        os.mkdir(path)
        public = os.path.join(path, self.PUBLIC)
        os.mkdir(public)
        for rel in self.files:
            target = os.path.join(public, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="utf-8") as fh:
                fh.write(name)
        self._releases.append(name)
        return os.path.realpath(path)

    def flip(self, release: str, atomic: bool = True, *, allow_missing: bool = False) -> None:
        """Point ``current`` at ``releases/<release>`` (a relative link).

        Atomic (the default): create the link under a unique temporary name
        in :attr:`root`, then ``os.replace`` it over ``current``: one
        rename(2), so readers always see either the old or the new target.
        Non-atomic: ``os.unlink(current)`` then ``os.symlink``, as
        ``ln -sfn`` does; between the two calls ``current`` does not exist.

        Raises :class:`ValueError` for an invalid name,
        :class:`FileNotFoundError` if the release directory does not exist and
        :class:`NotADirectoryError` if it is not a directory, unless
        *allow_missing* is true (to make a dangling link on purpose); any other
        ``stat`` error propagates with its errno.
        On failure of an atomic flip the temporary link is removed and
        ``current`` is unchanged.
        """
        _check_component(release)
        if not allow_missing:
            path = os.path.join(self.root, "releases", release)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                raise FileNotFoundError(
                    errno.ENOENT, f"no such release: {release!r} in {self.root}", path
                ) from None
            # Any other stat error propagates with its own errno (it is not "missing").
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(
                    errno.ENOTDIR, f"release {release!r} is not a directory", path)
        target = os.path.join("releases", release)
        if atomic:
            tmp = os.path.join(self.root, f".current.tmp-{os.getpid()}-{uuid.uuid4().hex}")
            os.symlink(target, tmp)
            try:
                os.replace(tmp, self.current)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        else:
            try:
                os.unlink(self.current)
            except FileNotFoundError:
                pass
            os.symlink(target, self.current)

    def __repr__(self) -> str:
        return f"DeployTree({self.root!r}, releases={self._releases!r})"


class Flipper:
    """Flip a :class:`DeployTree` between its releases from a background thread.

    Each flip points ``current`` at the release after the one it last
    targeted, in :attr:`DeployTree.releases` order (starting after the
    current one), so consecutive flips always change the target.  *atomic*
    is ``True`` (rename), ``False`` (unlink + symlink) or ``"mixed"``
    (atomic, non-atomic, atomic, ...).  Between flips the thread waits
    *interval* seconds (0: flip as fast as possible).

    The thread always ends on its own: after *max_flips* flips (at most
    :attr:`HARD_MAX_FLIPS` even when ``None``) or *max_seconds* seconds,
    whichever comes first, or at :meth:`stop`.  It stops only between flips,
    so ``current`` exists afterwards.  An exception raised in the thread
    ends it; :meth:`stop` (and leaving the ``with`` block) re-raises it.

    Usage::

        with Flipper(tree, interval=0.001, atomic="mixed") as f:
            ...  # resolve tree.docroot concurrently
        assert f.flips > 0
    """

    HARD_MAX_FLIPS = 1_000_000
    """Upper bound on flips per run when ``max_flips`` is ``None``."""

    def __init__(
        self,
        tree: DeployTree,
        *,
        interval: float = 0.0,
        atomic: Union[bool, str] = True,
        max_flips: Optional[int] = None,
        max_seconds: float = 30.0,
    ) -> None:
        """Configure; nothing runs until :meth:`start` or ``with``.

        Raises :class:`ValueError` if the tree has fewer than two releases,
        *atomic* is not ``True``/``False``/``"mixed"``, *interval* is
        negative, *max_flips* is negative, or *max_seconds* is not a finite
        positive number.
        """
        if len(tree.releases) < 2:
            raise ValueError("a Flipper needs a tree with at least two releases")
        if atomic not in (True, False, "mixed"):
            raise ValueError(f"atomic must be True, False or 'mixed', got {atomic!r}")
        if interval < 0:
            raise ValueError(f"interval must be >= 0, got {interval}")
        if max_flips is not None and max_flips < 0:
            raise ValueError(f"max_flips must be >= 0, got {max_flips}")
        if not 0 < max_seconds < float("inf"):
            raise ValueError(f"max_seconds must be finite and > 0, got {max_seconds}")
        self.tree = tree
        self.interval = interval
        self.atomic = atomic
        self.max_flips = self.HARD_MAX_FLIPS if max_flips is None else min(
            max_flips, self.HARD_MAX_FLIPS
        )
        self.max_seconds = max_seconds
        self.flips = 0
        """Number of completed flips (read it from any thread)."""
        self.error: Optional[BaseException] = None
        """The exception that ended the thread, if any."""
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> Flipper:
        """Start the thread (a daemon); return self.  Raises RuntimeError if started twice."""
        if self._thread is not None:
            raise RuntimeError("Flipper already started")
        self._thread = threading.Thread(target=self._run, name="realdoc-flipper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the thread to stop, join it, and re-raise its exception if it had one.

        Safe to call more than once, and before :meth:`start` (no-op).  The
        stored exception is raised only once.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        err, self.error = self.error, None
        if err is not None:
            raise err

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait for the thread to end by itself; return True if it has ended.

        Does not stop it and does not raise its exception (use :meth:`stop`).
        """
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Flipper:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: object,
    ) -> None:
        if exc is None:
            self.stop()
        else:  # keep the body's exception; the thread's would hide it
            try:
                self.stop()
            except BaseException:
                pass

    def _run(self) -> None:
        releases = self.tree.releases
        try:
            idx = releases.index(self.tree.current_release())
        except (OSError, ValueError):
            idx = -1
        deadline = time.monotonic() + self.max_seconds
        try:
            while (
                not self._stop.is_set()
                and self.flips < self.max_flips
                and time.monotonic() < deadline
            ):
                idx = (idx + 1) % len(releases)
                atomic = self.flips % 2 == 0 if self.atomic == "mixed" else bool(self.atomic)
                self.tree.flip(releases[idx], atomic=atomic)
                self.flips += 1
                if self.interval:
                    self._stop.wait(self.interval)
        except BaseException as e:  # re-raised by stop()
            self.error = e
