"""Release lifecycle: :func:`status`, :func:`prune` and :func:`rollback` of a deploy tree.

The layout is the one :func:`realdoc.switch` manages: a symlink LINK (``current``)
pointing at a release directory, directly or through an A/B letter, with the
releases side by side in a **releases directory** (by default the parent of the
directory LINK resolves to; ``releases=`` / ``--releases`` names another).

Definitions shared by the three functions (the CLI and docs/lifecycle.md use the
same words):

* **Release**: an entry of the releases directory that is a real directory
  (``lstat``; a symlink there is never followed and never a release) and whose
  name does not start with ``.`` (hidden names are realdoc's own working names or
  someone else's business, and are ignored).  Files and symlinks are listed as
  ``ignored`` by status and kept by prune.
* **Current release**: the release that contains ``realpath(LINK)``.
* **Newest**: releases are ordered by the modification time of the release
  directory itself (``st_mtime_ns``), ties broken by natural name order (digit
  runs compare as numbers, so ``r9`` < ``r10``), then by the plain name.  The
  greatest is the newest.
* **Previous release** (the rollback target): with the A/B scheme (LINK points at
  one of its letters, :func:`realdoc._switch.letters`), the release the *other*
  letter points at, if it exists and differs from the current one; otherwise the
  newest release older than the current one in the order above.  No record is
  kept anywhere: nothing but LINK, its letters and the releases is ever written.
* **In use**: a live process on this host has its working directory, root
  directory, executable, an open file, a mapped file, or realdoc's in-use mark
  (:mod:`realdoc._inuse`: a request in flight, or a process pinned with
  ``pin_process``) in the release.  Processes are found in ``/proc``; one whose
  ``/proc`` entries this process may not read (another user's, when not root) is
  reported under ``errors``, not fatal.  realdoc's marks are also checked with a
  lock, which works across users.

Only the standard library is used.
"""

from __future__ import annotations

import errno
import fcntl
import math
import os
import re
import stat
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple, Union

from ._impl import (
    realpath as _realpath,  # strict, as realpath(3); os.path.realpath(strict=) is 3.10+
)
from ._switch import (
    SwitchResult,
    _fit_name,
    _remove_stale_temps,
    letters,
    lock_directory,
    switch as _switch,
)

__all__ = [
    "KeptRelease",
    "NoPreviousRelease",
    "ProcessUse",
    "PruneResult",
    "Release",
    "Status",
    "prune",
    "rollback",
    "status",
]

_StrPath = Union[str, "os.PathLike[str]"]

#: How a process uses a release (the values of ``ProcessUse.how``).
HOW_CWD = "cwd"
HOW_ROOT = "root"
HOW_EXE = "exe"
HOW_FILE = "open file"
HOW_MAP = "mapped file"
HOW_PINNED = "pinned by realdoc"

_PRUNE_MARK = ".realdoc-prune-"
_PRUNE_RE = re.compile(r"\A\..+\.realdoc-prune-([0-9]+)\Z", re.DOTALL)
_DIGITS = re.compile(r"([0-9]+)")
_O_PATH_FLAG = 0o10000000


class NoPreviousRelease(LookupError):
    """:func:`rollback` found no previous release to go back to (nothing changed)."""


@dataclass(frozen=True)
class ProcessUse:
    """A live process that uses a release: its pid, command line and how it uses it.

    ``how`` is a tuple of :data:`HOW_CWD` (``"cwd"``), ``"root"``, ``"exe"``,
    ``"open file"``, ``"mapped file"`` and ``"pinned by realdoc"`` (the in-use
    mark of a request in flight or of a pinned process).  ``stale`` is True when
    the release is not the current one: the process still runs on an old release.
    """

    pid: int
    cmdline: str
    how: Tuple[str, ...]
    stale: bool

    def to_json(self) -> Dict[str, Any]:
        return {"pid": self.pid, "cmdline": self.cmdline, "how": list(self.how),
                "stale": self.stale}


@dataclass(frozen=True)
class Release:
    """One release directory as :func:`status` saw it."""

    path: str
    name: str
    mtime: float
    age: float
    current: bool
    previous: bool
    letters: Tuple[str, ...]
    processes: Tuple[ProcessUse, ...]

    @property
    def pids(self) -> List[int]:
        """The pids of the processes using this release, ascending."""
        return sorted(p.pid for p in self.processes)

    @property
    def in_use(self) -> bool:
        return bool(self.processes)

    def to_json(self) -> Dict[str, Any]:
        return {
            "path": self.path, "name": self.name, "mtime": self.mtime, "age": self.age,
            "current": self.current, "previous": self.previous,
            "letters": list(self.letters), "in_use": self.in_use, "pids": self.pids,
            "processes": [p.to_json() for p in self.processes],
        }


@dataclass(frozen=True)
class Status:
    """What :func:`status` found; :meth:`to_json` is the ``--json`` document."""

    link: str
    target: str
    releases_dir: str
    current: Optional[str]
    previous: Optional[str]
    letter: Optional[str]
    letters: Dict[str, Optional[str]]
    releases: Tuple[Release, ...]
    ignored: Tuple[Dict[str, str], ...]
    errors: Tuple[Dict[str, Any], ...]

    @property
    def stale(self) -> List[int]:
        """Pids of processes that use a release that is not the current one."""
        return sorted({p.pid for r in self.releases for p in r.processes if p.stale})

    def to_json(self) -> Dict[str, Any]:
        return {
            "link": self.link, "target": self.target, "releases_dir": self.releases_dir,
            "current": self.current, "previous": self.previous, "letter": self.letter,
            "letters": dict(self.letters),
            "releases": [r.to_json() for r in self.releases],
            "stale": self.stale, "ignored": list(self.ignored), "errors": list(self.errors),
        }


@dataclass(frozen=True)
class KeptRelease:
    """A release (or entry) prune did not delete, and why.

    ``reasons`` holds some of ``"current"``, ``"previous"``, ``"letter A"`` (one
    per A/B letter pointing at it), ``"in use"`` (``pids`` names the processes; it
    may be empty when only realdoc's lock showed it), ``"newest"`` (one of the N
    newest), ``"younger than min-age"``, ``"symlink"``, ``"not a directory"`` and
    ``"error"`` (see ``PruneResult.errors``).  In JSON also as one string,
    ``reason`` (the reasons joined with ``", "``).
    """

    path: str
    name: str
    reasons: Tuple[str, ...]
    pids: Tuple[int, ...] = ()

    def to_json(self) -> Dict[str, Any]:
        return {"path": self.path, "name": self.name, "reasons": list(self.reasons),
                "reason": ", ".join(self.reasons), "pids": list(self.pids)}


@dataclass(frozen=True)
class PruneResult:
    """What :func:`prune` did (or, with ``dry_run``, would do).

    ``deleted``: the paths removed (in a dry run: that would be removed), newest
    first, then leftovers of interrupted prunes.  ``kept``: :class:`KeptRelease`
    rows.  ``errors``: ``{"path", "error", "errno", "filename"}`` rows for releases
    that should have been deleted and were not (``path`` the release, ``filename``
    what failed in it).  ``not_inspected``: how many processes' ``/proc``
    entries could not be read.  ``ok`` is True when ``errors`` is empty.
    """

    link: str
    releases_dir: str
    keep: int
    min_age: float
    dry_run: bool
    deleted: Tuple[str, ...]
    kept: Tuple[KeptRelease, ...]
    errors: Tuple[Dict[str, Any], ...]
    not_inspected: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> Dict[str, Any]:
        return {
            "link": self.link, "releases_dir": self.releases_dir, "keep": self.keep,
            "min_age": self.min_age, "dry_run": self.dry_run,
            "deleted": list(self.deleted), "kept": [k.to_json() for k in self.kept],
            "errors": list(self.errors), "not_inspected": self.not_inspected,
        }


# -- the layout -------------------------------------------------------------------


@dataclass
class _Entry:
    name: str
    path: str
    st: os.stat_result

    @property
    def key(self) -> Tuple[int, Tuple[Any, ...], str]:
        return (self.st.st_mtime_ns, natural_key(self.name), self.name)


@dataclass
class _Layout:
    link: str
    link_dir: str
    name: str
    text: str
    target: str
    releases_dir: str
    releases: List[_Entry]  # newest first
    ignored: List[Dict[str, str]]
    current: Optional[_Entry]
    previous: Optional[_Entry]
    letter: Optional[str]  # the letter LINK points at
    other_letter: Optional[str]  # the idle letter, when it leads to the previous release
    letters: Dict[str, Optional[str]]  # letter -> real target (None: no such letter)
    letter_of: Dict[str, List[str]] = field(default_factory=dict)  # release path -> letters


def natural_key(name: str) -> Tuple[Any, ...]:
    """Sort key for release names: digit runs compare as numbers (``r9`` < ``r10``)."""
    parts = _DIGITS.split(name)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


def _check_link(link: object) -> str:
    if not isinstance(link, (str, os.PathLike)):
        raise TypeError(f"link must be str or os.PathLike, not {type(link).__name__}")
    text = os.fspath(link)
    if not isinstance(text, str):
        raise TypeError(f"link must be a str path, not {type(text).__name__}")
    if not text:
        raise ValueError("link must not be empty")
    if "\0" in text:
        raise ValueError("link must not contain NUL")
    text = text.rstrip("/") or "/"
    if os.path.basename(text) in ("", ".", ".."):
        raise ValueError(f"link must name a symlink, not {text!r}")
    return text


def _check_releases(releases: object) -> Optional[str]:
    if releases is None:
        return None
    if not isinstance(releases, (str, os.PathLike)):
        raise TypeError(f"releases must be str or os.PathLike, not {type(releases).__name__}")
    text = os.fspath(releases)
    if not isinstance(text, str):
        raise TypeError(f"releases must be a str path, not {type(text).__name__}")
    if not text or "\0" in text:
        raise ValueError("releases must be a non-empty path without NUL")
    return text


def _under(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


def _layout(link: str, releases: Optional[str]) -> _Layout:
    """Read LINK, its letters and the releases directory (no change on disk)."""
    link_dir = os.path.dirname(link) or "."
    name = os.path.basename(link)
    st = os.lstat(link)  # FileNotFoundError names LINK
    if not stat.S_ISLNK(st.st_mode):
        raise OSError(errno.EINVAL, "is not a symlink", link)
    text = os.readlink(link)
    try:
        target = _realpath(link)
    except OSError as exc:
        raise type(exc)(exc.errno, f"LINK does not lead to a release ({exc.strerror})",
                        link) from None
    if not stat.S_ISDIR(os.stat(target).st_mode):
        raise NotADirectoryError(errno.ENOTDIR, "LINK does not lead to a directory", link)

    if releases is None:
        releases_dir = os.path.dirname(target)
    else:
        try:
            releases_dir = _realpath(releases)
        except OSError as exc:
            raise type(exc)(exc.errno, exc.strerror, releases) from None
        if not stat.S_ISDIR(os.stat(releases_dir).st_mode):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", releases)

    entries: List[_Entry] = []
    ignored: List[Dict[str, str]] = []
    with os.scandir(releases_dir) as it:
        for de in it:
            if de.name.startswith("."):
                continue
            try:
                est = de.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(est.st_mode):
                entries.append(_Entry(de.name, de.path, est))
            else:
                kind = "symlink" if stat.S_ISLNK(est.st_mode) else "not a directory"
                ignored.append({"path": de.path, "name": de.name, "kind": kind})
    entries.sort(key=lambda e: e.key, reverse=True)
    ignored.sort(key=lambda d: natural_key(d["name"]))

    def containing(real: str) -> Optional[_Entry]:
        for e in entries:
            if _under(real, e.path):
                return e
        return None

    current = containing(target)
    real_dir = os.path.realpath(link_dir)
    own = letters(name)
    letter_targets: Dict[str, Optional[str]] = {}
    letter_of: Dict[str, List[str]] = {}
    active: Optional[str] = None
    for letter in own:
        path = os.path.join(link_dir, letter)
        try:
            if not stat.S_ISLNK(os.lstat(path).st_mode):
                letter_targets[letter] = None
                continue
            real = _realpath(path)
        except OSError:
            letter_targets[letter] = None
            continue
        letter_targets[letter] = real
        holder = containing(real)
        if holder is not None:
            letter_of.setdefault(holder.path, []).append(letter)
        pointed = os.path.join(os.path.realpath(os.path.join(link_dir, os.path.dirname(text))),
                               os.path.basename(text.rstrip("/")))
        if pointed == os.path.join(real_dir, letter):
            active = letter

    previous: Optional[_Entry] = None
    other: Optional[str] = None
    if active is not None:
        idle = own[1] if active == own[0] else own[0]
        idle_real = letter_targets.get(idle)
        if idle_real is not None:
            candidate = containing(idle_real)
            if candidate is not None and candidate is not current:
                previous, other = candidate, idle
    if previous is None and current is not None:
        older = [e for e in entries if e.key < current.key]
        previous = older[0] if older else None
    return _Layout(link, link_dir, name, text, target, releases_dir, entries, ignored,
                   current, previous, active, other, letter_targets, letter_of)


# -- who uses what ----------------------------------------------------------------


class _Scan:
    """One pass over ``/proc``: for each release path, the processes using it and how."""

    def __init__(self, releases_dir: str, names: Set[str]) -> None:
        self.base = releases_dir.rstrip("/") + "/"
        self.names = names
        self.uses: Dict[str, Dict[int, Set[str]]] = {}
        self.cmdlines: Dict[int, str] = {}
        self.errors: List[Dict[str, Any]] = []
        self._denied: Set[int] = set()

    def release_of(self, path: str) -> Optional[str]:
        if not path.startswith(self.base):
            return None
        name = path[len(self.base):].split("/", 1)[0]
        if name.endswith(" (deleted)"):
            name = name[: -len(" (deleted)")]
        return name if name in self.names else None

    def _add(self, pid: int, path: str, how: str) -> Optional[str]:
        name = self.release_of(path)
        if name is not None:
            self.uses.setdefault(name, {}).setdefault(pid, set()).add(how)
        return name

    def _denied_at(self, pid: int, what: str, exc: OSError) -> None:
        if pid in self._denied:
            return
        self._denied.add(pid)
        self.errors.append({"pid": pid, "what": what, "error": exc.strerror or str(exc),
                            "errno": exc.errno})

    def run(self) -> "_Scan":
        try:
            pids = [int(n) for n in os.listdir("/proc") if n.isdigit()]
        except OSError as exc:
            self.errors.append({"pid": None, "what": "/proc", "error": exc.strerror,
                                "errno": exc.errno})
            return self
        for pid in pids:
            self._one(pid)
        for users in self.uses.values():
            for pid in users:
                self.cmdlines.setdefault(pid, _cmdline(pid))
        return self

    def _one(self, pid: int) -> None:
        proc = f"/proc/{pid}"
        for what, how in (("cwd", HOW_CWD), ("root", HOW_ROOT), ("exe", HOW_EXE)):
            try:
                self._add(pid, os.readlink(f"{proc}/{what}"), how)
            except PermissionError as exc:
                self._denied_at(pid, what, exc)
            except OSError:
                pass  # the process ended, or a kernel thread without exe
        try:
            fds = os.listdir(f"{proc}/fd")
        except PermissionError as exc:
            self._denied_at(pid, "fd", exc)
            fds = []
        except OSError:
            return
        for fd in fds:
            try:
                path = os.readlink(f"{proc}/fd/{fd}")
            except OSError:
                continue
            name = self.release_of(path)
            if name is None:
                continue
            how = HOW_PINNED if _is_mark(proc, fd, path, self.base + name) else HOW_FILE
            self.uses.setdefault(name, {}).setdefault(pid, set()).add(how)
        try:
            with open(f"{proc}/maps", "rb") as f:
                data = f.read()
        except PermissionError as exc:
            self._denied_at(pid, "maps", exc)
            return
        except OSError:
            return
        if self.base.encode() not in data:
            return
        seen: Set[str] = set()
        for line in data.splitlines():
            fields = line.split(None, 5)
            if len(fields) == 6:
                path = os.fsdecode(fields[5])
                if path not in seen:
                    seen.add(path)
                    self._add(pid, path, HOW_MAP)


def _is_mark(proc: str, fd: str, path: str, root: str) -> bool:
    """Is ``proc``'s descriptor ``fd`` (on ``path``) realdoc's in-use mark of ``root``?

    The mark is a directory descriptor on the release root with a shared flock
    (``fdinfo`` line ``lock: ... FLOCK ... READ``), or an ``O_PATH`` one.
    """
    if path != root:
        return False
    try:
        with open(f"{proc}/fdinfo/{fd}", "r") as f:
            info = f.read()
    except OSError:
        return False
    flags = 0
    for line in info.splitlines():
        if line.startswith("flags:"):
            flags = int(line.split()[1], 8)
        elif line.startswith("lock:") and "FLOCK" in line and "READ" in line:
            return True
    return bool(flags & _O_PATH_FLAG)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return ""
    return " ".join(os.fsdecode(a) for a in raw.rstrip(b"\0").split(b"\0"))


def _lock_holders(st: os.stat_result) -> List[int]:
    """Pids holding a flock on the inode of ``st`` (from ``/proc/locks``)."""
    want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    pids: Set[int] = set()
    try:
        with open("/proc/locks") as f:
            for line in f:
                fields = line.split()
                if "FLOCK" in fields and want in fields:
                    try:
                        pids.add(int(fields[fields.index(want) - 1]))
                    except ValueError:
                        pass
    except OSError:
        pass
    return sorted(pids)


# -- status -----------------------------------------------------------------------


def status(link: _StrPath, releases: Optional[_StrPath] = None) -> Status:
    """Describe LINK's releases: which is current and previous, who uses each.

    LINK (``str`` or ``os.PathLike[str]``, trailing slashes ignored) must be a
    symlink leading to a directory.  ``releases`` is the releases directory
    (default: the parent of ``realpath(LINK)``).  See the module docstring for the
    words used.  Nothing is changed on disk.

    Returns a :class:`Status`: ``releases`` newest first, each with its path,
    mtime, age in seconds, current/previous flags, the A/B letters pointing at it
    and the :class:`ProcessUse` rows of the live processes using it (``stale``
    when the release is not current); ``ignored`` lists entries of the releases
    directory that are not releases (files, symlinks); ``errors`` lists processes
    whose ``/proc`` entries could not be read (``{"pid", "what", "error",
    "errno"}``), which is not fatal.

    Raises TypeError/ValueError for bad arguments; FileNotFoundError when LINK is
    missing; OSError(EINVAL) when LINK is not a symlink; FileNotFoundError /
    NotADirectoryError when LINK does not lead to a directory or the releases
    directory is missing or not a directory.

    Syscalls: ``lstat``/``readlink`` of LINK and its letters, one ``getdents``
    scan of the releases directory, then per process in ``/proc`` the readlinks of
    cwd, root, exe and every descriptor, and a read of its maps.
    """
    link_s = _check_link(link)
    layout = _layout(link_s, _check_releases(releases))
    scan = _Scan(layout.releases_dir, {e.name for e in layout.releases}).run()
    now = time.time()
    rows = []
    for e in layout.releases:
        is_current = e is layout.current
        users = scan.uses.get(e.name, {})
        procs = tuple(
            ProcessUse(pid, scan.cmdlines.get(pid, ""), _how_order(hows), not is_current)
            for pid, hows in sorted(users.items())
        )
        rows.append(Release(
            path=e.path, name=e.name, mtime=e.st.st_mtime,
            age=max(now - e.st.st_mtime, 0.0), current=is_current,
            previous=e is layout.previous,
            letters=tuple(layout.letter_of.get(e.path, ())), processes=procs,
        ))
    return Status(
        link=link_s, target=layout.target, releases_dir=layout.releases_dir,
        current=None if layout.current is None else layout.current.path,
        previous=None if layout.previous is None else layout.previous.path,
        letter=layout.letter, letters=layout.letters, releases=tuple(rows),
        ignored=tuple(layout.ignored), errors=tuple(scan.errors),
    )


_HOW_ORDER = (HOW_PINNED, HOW_CWD, HOW_ROOT, HOW_EXE, HOW_FILE, HOW_MAP)


def _how_order(hows: Iterable[str]) -> Tuple[str, ...]:
    got = set(hows)
    return tuple(h for h in _HOW_ORDER if h in got)


# -- prune ------------------------------------------------------------------------


def _check_keep(keep: object) -> int:
    if isinstance(keep, bool) or not isinstance(keep, int):
        raise TypeError(f"keep must be an int, not {type(keep).__name__}")
    if keep < 0:
        raise ValueError(f"keep must be 0 or more, not {keep}")
    return keep


def _check_min_age(min_age: object) -> float:
    if isinstance(min_age, bool) or not isinstance(min_age, (int, float)):
        raise TypeError(f"min_age must be a number of seconds, not {type(min_age).__name__}")
    value = float(min_age)
    if math.isnan(value) or value < 0:
        raise ValueError(f"min_age must be 0 or more seconds, not {min_age!r}")
    return value


def prune(
    link: _StrPath,
    keep: int,
    *,
    min_age: float = 0.0,
    releases: Optional[_StrPath] = None,
    dry_run: bool = False,
) -> PruneResult:
    """Delete the releases beyond the ``keep`` newest that nothing needs.

    LINK and ``releases`` as for :func:`status`.  ``keep`` (int >= 0) releases,
    the newest (module docstring), are kept whatever they are.  Of the others, a
    release is **never** deleted when it is the current release, the previous one,
    the target of one of LINK's A/B letters, in use by a live process (including
    realdoc's in-use mark of a request in flight or a pinned process), or younger
    than ``min_age`` seconds (by its mtime); entries that are not real directories
    (files, symlinks, which are never followed) and hidden names are never
    touched.

    How: the whole run holds the switch lock (:func:`realdoc._switch.
    lock_directory` on LINK's directory), so no :func:`realdoc.switch` or
    :func:`rollback` can point LINK at a release while it is pruned.  Per release
    to delete: open it (``O_NOFOLLOW``) and take an exclusive ``flock`` without
    blocking (refused: a realdoc mark holds it, the release is kept "in use" and
    the lock holders from ``/proc/locks`` are named); check that every directory
    in it can be emptied (``faccessat``); rename it to ``.NAME.realdoc-prune-PID``
    in the releases directory, so a half-deleted release is never visible under
    its name; remove that on descriptors (:func:`os.fwalk`, ``unlinkat``,
    never following a symlink).  A failure on one release is recorded in
    ``errors`` and the others carry on; a rename that succeeded before a failed
    removal leaves the hidden name, which a later prune removes (as it removes any
    ``.NAME.realdoc-prune-PID`` directory whose PID is not a live process).  Under
    the same lock, temporary links of dead switchers beside LINK are removed too.

    ``dry_run=True`` changes nothing (no rename, no removal, no clean-up) and
    reports what would be deleted, including the permission check.

    Returns a :class:`PruneResult`.  Raises TypeError/ValueError for bad
    arguments (``keep`` not an int or negative, ``min_age`` not a number, negative
    or NaN) and the errors of :func:`status` for a bad LINK or releases directory.
    """
    link_s = _check_link(link)
    releases_s = _check_releases(releases)
    keep = _check_keep(keep)
    min_age = _check_min_age(min_age)
    if not isinstance(dry_run, bool):
        raise TypeError(f"dry_run must be a bool, not {type(dry_run).__name__}")

    lock_fd = lock_directory(os.path.dirname(link_s) or ".")
    try:
        layout = _layout(link_s, releases_s)
        scan = _Scan(layout.releases_dir, {e.name for e in layout.releases}).run()
        not_inspected = len({e["pid"] for e in scan.errors})
        now = time.time()
        kept: List[KeptRelease] = []
        doomed: List[_Entry] = []
        for i, e in enumerate(layout.releases):
            reasons: List[str] = []
            if e is layout.current:
                reasons.append("current")
            if e is layout.previous:
                reasons.append("previous")
            reasons.extend(f"letter {x}" for x in layout.letter_of.get(e.path, ()))
            users = scan.uses.get(e.name, {})
            if users:
                reasons.append("in use")
            if now - e.st.st_mtime < min_age:
                reasons.append("younger than min-age")
            if i < keep:
                reasons.append("newest")
            if reasons:
                kept.append(KeptRelease(e.path, e.name, tuple(reasons), tuple(sorted(users))))
            else:
                doomed.append(e)
        for d in layout.ignored:
            kept.append(KeptRelease(d["path"], d["name"], (d["kind"],)))

        deleted: List[str] = []
        errors: List[Dict[str, Any]] = []
        rel_fd = os.open(layout.releases_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for e in doomed:
                outcome = _delete(rel_fd, e, dry_run)
                if outcome is None:
                    deleted.append(e.path)
                elif isinstance(outcome, list):
                    kept.append(KeptRelease(e.path, e.name, ("in use",), tuple(outcome)))
                else:
                    errors.append({"path": e.path, "error": outcome.strerror or str(outcome),
                                   "errno": outcome.errno,
                                   "filename": outcome.filename or e.path})
                    kept.append(KeptRelease(e.path, e.name, ("error",)))
            if not dry_run:
                deleted.extend(_remove_leftovers(rel_fd, layout.releases_dir, errors))
                _remove_stale_temps(lock_fd, os.listdir(lock_fd))
        finally:
            os.close(rel_fd)
    finally:
        os.close(lock_fd)
    return PruneResult(
        link=link_s, releases_dir=layout.releases_dir, keep=keep, min_age=min_age,
        dry_run=dry_run, deleted=tuple(deleted), kept=tuple(kept), errors=tuple(errors),
        not_inspected=not_inspected,
    )


def _delete(rel_fd: int, e: _Entry, dry_run: bool) -> Union[None, List[int], OSError]:
    """Delete one release: None when done, the lock holders' pids when in use, or the error."""
    try:
        fd = os.open(e.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=rel_fd)
    except OSError as exc:
        return _named(exc, e.path)
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (e.st.st_dev, e.st.st_ino):
            return OSError(errno.ESTALE, "replaced while prune ran", e.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _lock_holders(st)
        problem = _cannot_empty(fd, e.path)
        if problem is not None or dry_run:
            return problem
        hidden = _fit_name(e.name, f"{_PRUNE_MARK}{os.getpid()}")
        try:
            os.rename(e.name, hidden, src_dir_fd=rel_fd, dst_dir_fd=rel_fd)
        except OSError as exc:
            return _named(exc, e.path)
        failures = _rmtree_at(hidden, rel_fd)
        if failures:
            first = failures[0]
            return OSError(first.errno, f"{first.strerror} (left as {hidden!r}; a later "
                           "prune removes it)", e.path)
        return None
    finally:
        os.close(fd)


def _rmtree_at(name: str, dir_fd: int) -> List[OSError]:
    """Remove the directory ``name`` of ``dir_fd`` and everything in it; return the errors.

    Never follows a symlink: the tree is walked with :func:`os.fwalk` on descriptors
    (``follow_symlinks=False``), a symlink is unlinked, never entered.  What cannot be
    removed is left and reported; the rest is removed.  (``shutil.rmtree(dir_fd=)``
    does the same from Python 3.11 on; realdoc supports 3.9.)
    """
    failures: List[OSError] = []
    try:
        top = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                      dir_fd=dir_fd)
    except OSError as exc:
        return [exc]
    try:
        for _root, dirs, files, rfd in os.fwalk(".", topdown=False, dir_fd=top,
                                                 follow_symlinks=False,
                                                 onerror=failures.append):
            for entry in files:
                try:
                    os.unlink(entry, dir_fd=rfd)
                except OSError as exc:
                    failures.append(exc)
            for entry in dirs:
                try:
                    if stat.S_ISLNK(os.lstat(entry, dir_fd=rfd).st_mode):
                        os.unlink(entry, dir_fd=rfd)
                    else:
                        os.rmdir(entry, dir_fd=rfd)
                except OSError as exc:
                    failures.append(exc)
    finally:
        os.close(top)
    try:
        os.rmdir(name, dir_fd=dir_fd)
    except OSError as exc:
        if not failures:
            failures.append(exc)
    return failures


def _named(exc: OSError, path: str) -> OSError:
    return OSError(exc.errno, exc.strerror, path)


def _cannot_empty(fd: int, path: str) -> Optional[OSError]:
    """An error if some directory in the release cannot be listed or emptied by us."""
    problems: List[OSError] = []
    try:
        for top, _dirs, _files, dfd in os.fwalk(".", dir_fd=fd, follow_symlinks=False,
                                              onerror=problems.append):
            if not os.access(".", os.R_OK | os.W_OK | os.X_OK, dir_fd=dfd,
                             effective_ids=True):
                where = os.path.normpath(os.path.join(path, top))
                return OSError(errno.EACCES, os.strerror(errno.EACCES), where)
    except OSError as exc:
        return _named(exc, path)
    if problems:
        first = problems[0]
        where = path if first.filename is None else os.path.normpath(
            os.path.join(path, os.fsdecode(first.filename)))
        return OSError(first.errno, first.strerror, where)
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _remove_leftovers(rel_fd: int, releases_dir: str, errors: List[Dict[str, Any]]) -> List[str]:
    """Remove ``.NAME.realdoc-prune-PID`` directories of prunes that no longer run."""
    done: List[str] = []
    for name in os.listdir(rel_fd):
        m = _PRUNE_RE.match(name)
        if m is None:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        try:
            if not stat.S_ISDIR(os.lstat(name, dir_fd=rel_fd).st_mode):
                continue
        except OSError:
            continue
        failures = _rmtree_at(name, rel_fd)
        path = os.path.join(releases_dir, name)
        if failures:
            errors.append({"path": path, "error": failures[0].strerror,
                           "errno": failures[0].errno,
                           "filename": os.fsdecode(failures[0].filename or path)})
        else:
            done.append(path)
    return done


# -- rollback ---------------------------------------------------------------------


def rollback(link: _StrPath) -> SwitchResult:
    """Point LINK back at the previous release, as a compare-and-swap.

    "Previous" is defined in the module docstring.  With the A/B scheme, LINK is
    flipped back to its other letter (the letters are not touched), or, when that
    letter does not lead to another release, the other letter is pointed at the
    previous release first (``switch(..., ab=True)``, compared against the active
    letter's text); otherwise LINK
    is pointed at the previous release directory (relative text when it lies
    under LINK's directory, as :func:`realdoc.switch` stores it).  The flip is
    :func:`realdoc.switch` with ``expect=`` the readlink text of LINK read at the
    start, so if anything switched LINK in the meantime nothing changes and
    :class:`realdoc.SwitchConflict` is raised.

    Returns the :class:`realdoc.SwitchResult`: ``old`` and ``new`` are the
    readlink texts of LINK before and after; with A/B, as for ``switch(ab=True)``,
    ``letter`` is the letter LINK points at now and ``old``/``new`` are the texts
    of the previously active letter and of that one (the releases served).
    Raises :class:`NoPreviousRelease` when there is no
    previous release, :class:`realdoc.SwitchConflict` on a conflict, and the errors
    of :func:`status` for a bad LINK.
    """
    link_s = _check_link(link)
    layout = _layout(link_s, None)
    if layout.previous is None:
        raise NoPreviousRelease(
            f"{link_s!r}: no previous release (no release in {layout.releases_dir!r} is "
            "older than the current one)")
    if layout.other_letter is not None:
        old = os.readlink(os.path.join(layout.link_dir, layout.letter or ""))
        new = os.readlink(os.path.join(layout.link_dir, layout.other_letter))
        res = _switch(link_s, os.path.join(layout.link_dir, layout.other_letter),
                      expect=layout.text)
        return SwitchResult(link=res.link, old=old, new=new, letter=layout.other_letter)
    if layout.letter is not None:
        # A/B, but the other letter does not lead to an older release: point it at
        # the previous release and flip LINK to it, as ``switch --ab`` does.
        active_text = os.readlink(os.path.join(layout.link_dir, layout.letter))
        return _switch(link_s, layout.previous.path, ab=True, expect=active_text)
    return _switch(link_s, layout.previous.path, expect=layout.text)
