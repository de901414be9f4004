"""Atomic and compare-and-swap flips of a docroot symlink.

``ln -sfn new current`` is not atomic: it unlinks ``current`` and then creates it
again, and a request arriving in between finds no docroot.  :func:`switch` does what
``mv -T`` based deploy tools do instead: it creates the new link under a unique
temporary name in LINK's directory and renames it over LINK with rename(2), so every
lookup sees either the old target or the new one, never nothing.  It then fsyncs
LINK's directory so the flip survives a crash.

Nothing but LINK and its A/B letters is ever left beside LINK:

* **The lock is LINK's directory itself.**  Concurrent switches by realdoc (threads
  or processes) are serialised by ``flock(2)`` on a descriptor of LINK's directory,
  so a compare-and-swap (``expect=``) is atomic among realdoc switchers: of several
  deploys expecting the same old target, exactly one wins.  One lock per directory
  also covers the A/B letters of every link in it.  Other writers (``ln``, ``mv``,
  Capistrano...) do not take that lock and are not covered.  The lock file of realdoc
  0.1.0 (``.NAME.realdoc-lock``) is deleted when a switch of NAME finds it (only a
  regular file or a symlink of exactly that name, with unlink(2), which never follows
  a symlink).
* **Temporary links never escape.**  Every name beside LINK is reached through that
  one directory descriptor with the ``*at`` calls (``symlinkat``, ``renameat``,
  ``readlinkat``, ``fstatat(AT_SYMLINK_NOFOLLOW)``, ``unlinkat``), none of which
  follows a symlink at the name it is given, so a symlink planted at any name a
  switch touches (old lock name, temporary names, letters) is never followed and
  nothing is created outside LINK's directory.  The temporary link is
  ``.NAME.realdoc-tmp-PID-HEX`` (PID: the switcher's process id; HEX: 8 random hex
  digits; a hash of NAME stands in for NAME when the result would exceed 255 bytes).
  It is removed on any failure; if the switcher is killed between symlink(2) and
  rename(2) it stays behind, and a later switch in that directory removes every
  temporary symlink whose PID is no longer a live process (``kill(PID, 0)`` fails
  with ESRCH).  A temporary link of a live process, the switcher's own PID included,
  is never removed.

LINK's directory itself is opened by the path given, following symlinks in it: the
caller names it, and ``/srv/app -> /data/app`` style deploy directories keep working.

Only the standard library is used.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import secrets
import stat
import subprocess
from dataclasses import dataclass
from typing import List, Optional, Sequence, Set, Tuple, Union

__all__ = ["SwitchCheckFailed", "SwitchConflict", "SwitchResult", "letters", "switch"]

_StrPath = Union[str, "os.PathLike[str]"]

#: The two letters of Etsy's A/B scheme for a link named ``current``, in the order
#: the first one is chosen (mod_realdoc's layout); see :func:`letters`.
AB_LETTERS: Tuple[str, str] = ("A", "B")

#: The link name that keeps mod_realdoc's bare ``A``/``B`` letters.
AB_CLASSIC_LINK = "current"

# Longest file name most Linux file systems accept (NAME_MAX), in bytes.
_NAME_MAX = 255

# Suffixes of the names realdoc puts beside LINK (see the module docstring).
_TMP_MARK = ".realdoc-tmp-"
_OLD_LOCK_SUFFIX = ".realdoc-lock"
_TMP_RE = re.compile(r"\A\..+\.realdoc-tmp-([0-9]+)-[0-9a-f]{8}\Z", re.DOTALL)


class SwitchConflict(RuntimeError):
    """LINK did not point at the expected target, so a compare-and-swap refused.

    Attributes: ``link`` (the link path), ``expected`` (the ``expect`` argument as a
    string) and ``actual`` (what LINK held: its readlink text, or ``None`` when LINK
    did not exist; with ``ab=True`` the text of the active letter, see
    :func:`switch`).  Nothing was changed on disk.
    """

    def __init__(self, link: str, expected: str, actual: Optional[str]) -> None:
        self.link = link
        self.expected = expected
        self.actual = actual
        if actual is None:
            found = "does not exist"
        else:
            found = f"points at {actual!r}"
        super().__init__(f"{link!r} {found}, expected {expected!r}")


class SwitchCheckFailed(RuntimeError):
    """The ``check`` command failed in TARGET, so :func:`switch` refused to flip.

    Attributes: ``link``, ``target`` (as given), ``command`` (the argv list run),
    ``returncode`` (its exit status; negative: killed by that signal; 127: it could
    not be started, see ``reason``) and ``reason`` (a one-line description).
    Nothing was changed on disk.
    """

    def __init__(self, link: str, target: str, command: List[str], returncode: int,
                 reason: str) -> None:
        self.link = link
        self.target = target
        self.command = command
        self.returncode = returncode
        self.reason = reason
        super().__init__(f"check {command!r} failed in {target!r}: {reason}; "
                         f"{link!r} left untouched")


@dataclass(frozen=True)
class SwitchResult:
    """What :func:`switch` did.

    ``link``: the link path (trailing slashes removed).  ``old``: the target text
    before the switch, or ``None`` if LINK did not exist.  ``new``: the target text
    stored now.  ``letter``: with ``ab=True`` the name of the letter LINK points at
    now (``"A"``/``"B"`` for ``current``, ``"NAME.A"``/``"NAME.B"`` for another
    NAME, see :func:`letters`), else ``None``; ``old`` and ``new`` are then the
    texts of the previously active letter and of the newly active one, i.e. the
    releases served.
    """

    link: str
    old: Optional[str]
    new: str
    letter: Optional[str] = None


def letters(name: str) -> Tuple[str, str]:
    """Return the two A/B letter names that belong to the link named ``name``.

    ``current`` keeps mod_realdoc's bare ``("A", "B")`` (backward compatible);
    any other name gets ``("NAME.A", "NAME.B")``, so two links in one directory
    never share a letter.  ``name`` is a single file name, not a path.
    """
    if name == AB_CLASSIC_LINK:
        return AB_LETTERS
    return (f"{name}.A", f"{name}.B")


def switch(
    link: _StrPath,
    target: _StrPath,
    *,
    relative: Optional[bool] = None,
    expect: Optional[_StrPath] = None,
    ab: bool = False,
    allow_missing: bool = False,
    check: Optional[Sequence[str]] = None,
) -> SwitchResult:
    """Point the symlink LINK at TARGET atomically, optionally as a compare-and-swap.

    LINK is a path (``str`` or ``os.PathLike[str]``) naming the symlink itself:
    trailing slashes are ignored, so ``current/`` means the link ``current``, not the
    directory it points to.  LINK need not exist (a first deploy creates it), but its
    directory must.  If LINK exists it must be a symlink: a directory is refused with
    :class:`IsADirectoryError` and any other file with :class:`FileExistsError`
    (nothing is ever replaced by a link but a link).

    TARGET is a path interpreted like any other path argument, i.e. relative to the
    current directory.  The text stored in the link is computed from it:

    * ``relative=None`` (default): relative when TARGET lies under LINK's directory,
      else absolute;
    * ``relative=True``: always relative (may contain ``..``);
    * ``relative=False``: always absolute.

    Both forms name TARGET through real paths: the relative text is computed from the
    real path of LINK's directory to TARGET's real parent directory plus TARGET's own
    last component, and the absolute text is that real parent plus the last
    component.  The last component is never resolved, so a link may point at a link
    (as ``current -> A`` does).  TARGET must exist (:class:`FileNotFoundError`
    otherwise, and whatever ``os.stat`` raises for other failures) unless
    ``allow_missing=True``, which skips that check.

    ``expect=OLD`` makes the switch a compare-and-swap: it proceeds only if LINK is a
    symlink whose readlink text equals OLD exactly, or, failing that, whose target
    and OLD (taken as a path relative to the current directory) both exist and
    resolve to the same real path (``os.path.realpath``).  Otherwise it raises
    :class:`SwitchConflict` (also when LINK does not exist) and changes nothing.  The
    read, compare and rename happen under the directory lock described in the module
    docstring.

    ``ab=True`` uses Etsy's A/B scheme: two letters, symlinks in LINK's directory,
    with LINK pointing at one of them.  **The letters belong to LINK alone**
    (:func:`letters`): a link named ``current`` uses ``A`` and ``B``, as
    mod_realdoc's layout does; any other NAME uses ``NAME.A`` and ``NAME.B``, so
    ``staging`` and ``current`` in one directory never share a letter.  The idle
    letter (the one LINK does not point at; the first letter if LINK does not exist
    or points at neither) is pointed at TARGET atomically, then LINK is flipped to
    that letter atomically, with an fsync of the directory after each rename.  As a
    second defence, a switch refuses to repoint a letter that another symlink in
    LINK's directory points at (its readlink text names that letter): it raises
    :class:`OSError` with ``errno.EBUSY`` and the letter's path as ``filename``, and
    changes nothing.  (A 0.1.0 ``staging`` link that points at ``A`` is therefore
    moved to ``staging.A`` by its next ``ab=True`` switch, and ``A`` stays
    ``current``'s.)  The result's ``old`` is the readlink text of the previously
    active letter (or LINK's own text if it pointed at no letter of its own) and
    ``new`` the text stored in the idle letter; ``expect`` is compared with that
    ``old``.  A letter that exists but is not a symlink is refused like LINK.  With
    ``ab=True`` LINK may not be named ``A`` or ``B``, and TARGET may not be LINK or
    one of its letters.

    ``check=[CMD, ARG...]`` is the guard for rollover (:func:`realdoc.pin_process`
    workers reload onto whatever LINK names, so a release that fails to import
    would take the server down or fill it with errors): before anything is
    locked or written, the command runs with TARGET as its working directory
    (``subprocess.run``, no shell, the caller's environment, stdin from
    ``/dev/null``, stdout and stderr inherited, no timeout), e.g.
    ``check=["python", "-c", "import app"]``.  If it exits with a non-zero
    status, is killed by a signal, or cannot be started, :class:`SwitchCheckFailed`
    is raised and LINK is left untouched.  ``check`` must be a non-empty list or
    tuple of str (a lone str is refused, so that it is never split by accident);
    with a check TARGET must exist even with ``allow_missing=True``
    (:class:`FileNotFoundError`).

    On any failure the temporary link is removed.  If a rename succeeded but the
    following fsync failed, the link has been switched (it is just not known to be
    durable) and the ``OSError`` propagates.  Under the lock, before anything else, a
    switch deletes the 0.1.0 lock file of LINK and the temporary links of dead
    switchers in LINK's directory (module docstring); a refused switch creates
    nothing.

    Syscalls beside LINK: one ``open`` of LINK's directory (``O_DIRECTORY``), one
    ``flock``, one ``getdents`` scan, ``fstatat``/``readlinkat`` of LINK (and letters),
    then ``symlinkat`` + ``renameat`` + ``fsync`` per link written.

    Returns a :class:`SwitchResult`.  Raises :class:`TypeError` for arguments of the
    wrong type (bytes paths included), :class:`ValueError` for empty paths, paths
    containing NUL, a LINK without a final name (``/``, ``.``, ``..``) or a TARGET
    that is LINK itself, :class:`SwitchConflict` and :class:`SwitchCheckFailed` as
    above, and :class:`OSError`
    subclasses (with ``errno`` and ``filename``) for file system failures, e.g.
    :class:`FileNotFoundError` when LINK's directory does not exist.
    """
    link_s = _check_path("link", link)
    target_s = _check_path("target", target)
    expect_s = None if expect is None else _check_path("expect", expect)
    if relative is not None and not isinstance(relative, bool):
        raise TypeError(f"relative must be a bool or None, not {type(relative).__name__}")
    for flag_name, flag in (("ab", ab), ("allow_missing", allow_missing)):
        if not isinstance(flag, bool):
            raise TypeError(f"{flag_name} must be a bool, not {type(flag).__name__}")

    link_s = link_s.rstrip("/") or "/"
    link_dir, name = os.path.split(link_s)
    if name in ("", ".", ".."):
        raise ValueError(f"link must name a symlink, not {link_s!r}")
    link_dir = link_dir or "."
    if ab and name in AB_LETTERS:
        raise ValueError(f"with ab=True the link may not be named A or B: {link_s!r}")

    command = None if check is None else _check_command(check)

    if not allow_missing or command is not None:
        os.stat(target_s)  # FileNotFoundError etc., with errno and filename
    if command is not None:
        _run_check(link_s, target_s, command)

    dir_fd = lock_directory(link_dir)  # closing it releases the lock
    try:
        real_dir = os.path.realpath(link_dir)
        target_canon = _canonical(target_s)
        forbidden = {name, *letters(name)} if ab else {name}
        if any(target_canon == os.path.join(real_dir, n) for n in forbidden):
            raise ValueError(f"target {target_s!r} is the link or one of its letters")
        target_text = _link_text(target_canon, real_dir, relative)

        entries = os.listdir(dir_fd)
        _remove_old_lock(dir_fd, name, entries)
        _remove_stale_temps(dir_fd, entries)
        here = _Dir(dir_fd, link_dir, real_dir)
        if ab:
            return _switch_ab(here, link_s, name, target_text, expect_s, relative, entries)
        old = here.read_link(name)
        if expect_s is not None:
            _compare(link_s, link_dir, old, expect_s)
        here.replace_link(name, target_text)
        return SwitchResult(link=link_s, old=old, new=target_text)
    finally:
        os.close(dir_fd)


def lock_directory(path: str) -> int:
    """Open the directory ``path`` and take an exclusive ``flock`` on it; return the fd.

    This is the lock :func:`switch` holds (module docstring); anything else that
    must not interleave with a switch in that directory (a prune, say) takes it the
    same way.  Blocks until the lock is granted.  Closing the returned descriptor
    releases the lock.  The directory is opened ``O_RDONLY | O_DIRECTORY |
    O_CLOEXEC``, following symlinks in ``path``.  Raises the ``OSError`` of open(2)
    (``FileNotFoundError``, ``NotADirectoryError``...) with ``path`` as filename.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


class _Dir:
    """LINK's directory: its descriptor (every name is reached through it) and paths."""

    __slots__ = ("fd", "path", "real")

    def __init__(self, fd: int, path: str, real: str) -> None:
        self.fd = fd
        self.path = path  # as given, for error messages and path-based compares
        self.real = real  # its real path

    def read_link(self, name: str) -> Optional[str]:
        """Return the readlink text of ``name``, or None if nothing is there.

        Raises IsADirectoryError for a directory and FileExistsError for any other
        non-symlink, so callers never replace such a file with a link.
        """
        path = os.path.join(self.path, name)
        try:
            st = os.lstat(name, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _with_filename(exc, path) from None
        if stat.S_ISLNK(st.st_mode):
            try:
                return os.readlink(name, dir_fd=self.fd)
            except OSError as exc:
                raise _with_filename(exc, path) from None
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(
                errno.EISDIR, "is a directory, not a symlink; refusing to replace it", path
            )
        raise FileExistsError(errno.EEXIST, "is not a symlink; refusing to replace it", path)

    def replace_link(self, name: str, text: str) -> None:
        """Atomically make ``name`` a symlink holding ``text``, then fsync the directory.

        Creates the link under a unique temporary name (symlinkat, which fails with
        EEXIST rather than follow anything at that name), renames it over ``name``
        (renameat, which replaces a symlink at ``name`` rather than follow it) and
        fsyncs the directory.  The temporary link is removed if anything fails
        before the rename completes.
        """
        fd = self.fd
        final = os.path.join(self.path, name)
        for _ in range(100):
            tmp = _fit_name(name, f"{_TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")
            try:
                os.symlink(text, tmp, dir_fd=fd)
            except FileExistsError:
                continue  # someone else's name (or a planted file): never touch it
            except OSError as exc:
                raise _with_filename(exc, final) from None
            break
        else:  # pragma: no cover - 100 collisions of 32 random bits
            raise FileExistsError(errno.EEXIST, "no free temporary name", final)
        try:
            os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        except BaseException as exc:
            try:
                os.unlink(tmp, dir_fd=fd)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise _with_filename(exc, final) from None
            raise
        os.fsync(fd)


def _with_filename(exc: OSError, path: str) -> OSError:
    """Return ``exc`` re-made with ``path`` as its filename (``*at`` calls lack it)."""
    if exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror, path)


def _switch_ab(
    here: _Dir,
    link_s: str,
    name: str,
    target_text: str,
    expect_s: Optional[str],
    relative: Optional[bool],
    entries: List[str],
) -> SwitchResult:
    """Repoint the idle letter at ``target_text``, then flip LINK to it (lock held)."""
    own = letters(name)
    current = here.read_link(name)
    active: Optional[str] = None
    if current is not None:
        pointed = _canonical(os.path.join(here.path, current))
        for letter in own:
            if pointed == os.path.join(here.real, letter):
                active = letter
    idle = own[1] if active == own[0] else own[0]

    # Check everything before touching anything, so a refusal changes nothing.
    here.read_link(idle)
    old = current if active is None else here.read_link(active)
    if expect_s is not None:
        _compare(link_s, here.path, old, expect_s)
    holder = _other_link_at(here, idle, {name, idle}, entries)
    if holder is not None:
        raise OSError(
            errno.EBUSY,
            f"letter {idle!r} is in use by the link {holder!r} beside it; refusing to "
            "repoint it",
            os.path.join(here.path, idle),
        )
    letter_text = idle if relative is not False else os.path.join(here.real, idle)
    here.replace_link(idle, target_text)
    here.replace_link(name, letter_text)
    return SwitchResult(link=link_s, old=old, new=target_text, letter=idle)


def _other_link_at(here: _Dir, letter: str, skip: Set[str], entries: List[str]) -> Optional[str]:
    """Return the name of a symlink in the directory that points at ``letter``, or None.

    "Points at" means its readlink text names ``letter`` in this directory (the text
    itself, or a path whose real parent is this directory and whose last name is
    ``letter``).  Names in ``skip`` and realdoc's temporary links are not looked at.
    """
    letter_path = os.path.join(here.real, letter)
    for entry in entries:
        if entry in skip or _TMP_MARK in entry:
            continue
        try:
            st = os.lstat(entry, dir_fd=here.fd)
            if not stat.S_ISLNK(st.st_mode):
                continue
            text = os.readlink(entry, dir_fd=here.fd)
        except OSError:
            continue  # vanished or unreadable: it points at nothing we could tell
        if text.rstrip("/") == letter:
            return entry
        if _canonical(os.path.join(here.path, text)) == letter_path:
            return entry
    return None


def _remove_old_lock(dir_fd: int, name: str, entries: List[str]) -> None:
    """Delete realdoc 0.1.0's lock file ``.NAME.realdoc-lock`` if it is there.

    Only a regular file or a symlink of exactly that name is removed, with
    unlinkat(2), which removes a symlink itself and never follows it.  Errors are
    ignored: the file is harmless, only untidy.
    """
    lock_name = _fit_name(name, _OLD_LOCK_SUFFIX)
    if lock_name not in entries:
        return
    try:
        st = os.lstat(lock_name, dir_fd=dir_fd)
        if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
            os.unlink(lock_name, dir_fd=dir_fd)
    except OSError:
        pass


def _pid_alive(pid: int) -> bool:
    """True unless no process ``pid`` exists (``kill(pid, 0)`` fails with ESRCH)."""
    if pid <= 0:
        return True  # not a process id realdoc writes: leave such a name alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # EPERM: it exists, it is just not ours
    return True


def _remove_stale_temps(dir_fd: int, entries: List[str]) -> None:
    """Remove realdoc temporary symlinks whose switcher process no longer exists.

    A name counts when it has the shape ``.X.realdoc-tmp-PID-HEX`` (HEX: 8 hex
    digits) and is a symlink; it is removed (unlinkat) when PID is not a live
    process.  The caller's own PID and live PIDs are left alone, as is anything
    that is not a symlink.  Errors are ignored (a name that vanished meanwhile).
    """
    me = os.getpid()
    for entry in entries:
        if _TMP_MARK not in entry:
            continue
        match = _TMP_RE.match(entry)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid == me or _pid_alive(pid):
            continue
        try:
            st = os.lstat(entry, dir_fd=dir_fd)
            if stat.S_ISLNK(st.st_mode):
                os.unlink(entry, dir_fd=dir_fd)
        except OSError:
            pass


def _check_command(check: object) -> List[str]:
    """Return ``check`` as an argv list, or raise TypeError / ValueError."""
    if isinstance(check, (str, bytes)) or not isinstance(check, (list, tuple)):
        raise TypeError("check must be a list of str (an argv, e.g. "
                        "['python', '-c', 'import app']), not "
                        f"{type(check).__name__}")
    if not check:
        raise ValueError("check must not be empty")
    for part in check:
        if not isinstance(part, str):
            raise TypeError(f"check items must be str, not {type(part).__name__}")
        if "\0" in part:
            raise ValueError("check must not contain NUL")
    return list(check)


def _run_check(link: str, target: str, command: List[str]) -> None:
    """Run ``command`` in ``target``; raise SwitchCheckFailed unless it exits 0."""
    try:
        done = subprocess.run(command, cwd=target, stdin=subprocess.DEVNULL, check=False)
    except OSError as exc:
        raise SwitchCheckFailed(link, target, command, 127,
                                f"cannot run it: {exc.strerror or exc}") from None
    if done.returncode < 0:
        raise SwitchCheckFailed(link, target, command, done.returncode,
                                f"killed by signal {-done.returncode}")
    if done.returncode != 0:
        raise SwitchCheckFailed(link, target, command, done.returncode,
                                f"exit status {done.returncode}")


def _check_path(arg: str, value: object) -> str:
    """Return ``value`` as a ``str`` path, or raise TypeError / ValueError."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{arg} must be str or os.PathLike, not {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str):
        raise TypeError(f"{arg} must be a str path, not {type(path).__name__}")
    if not path:
        raise ValueError(f"{arg} must not be empty")
    if "\0" in path:
        raise ValueError(f"{arg} must not contain NUL")
    return path


def _canonical(path: str) -> str:
    """Return the absolute path of ``path`` with its parent resolved, last name kept.

    The parent goes through ``os.path.realpath`` (so ``..`` after a symlink is handled
    as the kernel would); the final component is left unresolved, so a path naming a
    symlink still names that symlink.  Paths without a final name (``/``, ``x/..``,
    ``x/.``) are resolved whole.
    """
    stripped = path.rstrip("/") or "/"
    head, tail = os.path.split(stripped)
    if tail in ("", ".", ".."):
        return os.path.realpath(stripped)
    return os.path.join(os.path.realpath(head or "."), tail)


def _link_text(target_canon: str, real_dir: str, relative: Optional[bool]) -> str:
    """Return the text to store in a link in ``real_dir`` that names ``target_canon``."""
    if relative is None:
        relative = os.path.commonpath([target_canon, real_dir]) == real_dir
    if relative:
        return os.path.relpath(target_canon, real_dir)
    return target_canon


def _compare(link_s: str, link_dir: str, actual: Optional[str], expected: str) -> None:
    """Raise SwitchConflict unless ``actual`` matches ``expected`` (see switch)."""
    if actual is not None:
        if actual == expected:
            return
        pointed = os.path.realpath(os.path.join(link_dir, actual))
        if pointed == os.path.realpath(expected) and os.path.exists(pointed):
            return
    raise SwitchConflict(link_s, expected, actual)


def _fit_name(name: str, suffix: str) -> str:
    """Return ``.{name}{suffix}``, or a hashed stand-in if that exceeds NAME_MAX."""
    candidate = f".{name}{suffix}"
    if len(os.fsencode(candidate)) <= _NAME_MAX:
        return candidate
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:16]
    return f".{digest}{suffix}"
