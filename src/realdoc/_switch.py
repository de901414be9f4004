"""Atomic and compare-and-swap flips of a docroot symlink.

``ln -sfn new current`` is not atomic: it unlinks ``current`` and then creates it
again, and a request arriving in between finds no docroot.  :func:`switch` does what
``mv -T`` based deploy tools do instead: it creates the new link under a unique
temporary name in LINK's directory and renames it over LINK with rename(2), so every
lookup sees either the old target or the new one, never nothing.  It then fsyncs
LINK's directory so the flip survives a crash, and it never leaves its temporary link
behind.

Concurrent switches by realdoc (threads or processes) are serialised by ``flock(2)``
on a lock file ``.{name}.realdoc-lock`` kept beside LINK, so a compare-and-swap
(``expect=``) is atomic among realdoc switchers: of several deploys expecting the
same old target, exactly one wins.  Other writers (``ln``, ``mv``, Capistrano...) do
not take that lock and are not covered.  The lock file is left in place on purpose:
removing it would let two switchers lock two different files.

Only the standard library is used.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from typing import Optional, Tuple, Union

__all__ = ["SwitchConflict", "SwitchResult", "switch"]

_StrPath = Union[str, "os.PathLike[str]"]

#: The two letters of Etsy's A/B scheme, in the order the first one is chosen.
AB_LETTERS: Tuple[str, str] = ("A", "B")

# Longest file name most Linux file systems accept (NAME_MAX), in bytes.
_NAME_MAX = 255


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


@dataclass(frozen=True)
class SwitchResult:
    """What :func:`switch` did.

    ``link``: the link path (trailing slashes removed).  ``old``: the target text
    before the switch, or ``None`` if LINK did not exist.  ``new``: the target text
    stored now.  ``letter``: with ``ab=True`` the letter (``"A"`` or ``"B"``) that
    LINK points at now, else ``None``; ``old`` and ``new`` are then the texts of the
    previously active letter and of the newly active one, i.e. the releases served.
    """

    link: str
    old: Optional[str]
    new: str
    letter: Optional[str] = None


def switch(
    link: _StrPath,
    target: _StrPath,
    *,
    relative: Optional[bool] = None,
    expect: Optional[_StrPath] = None,
    ab: bool = False,
    allow_missing: bool = False,
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
    read, compare and rename happen under the lock described in the module docstring.

    ``ab=True`` uses Etsy's A/B scheme, with the letters ``A`` and ``B`` kept as
    symlinks in LINK's directory and LINK pointing at one of them.  The idle letter
    (the one LINK does not point at; ``A`` if LINK does not exist or points at
    neither letter) is pointed at TARGET atomically, then LINK is flipped to that
    letter atomically, with an fsync of the directory after each rename.  The result's
    ``old`` is then the readlink text of the previously active letter (or LINK's own
    text if it pointed at no letter) and ``new`` the text stored in the idle letter;
    ``expect`` is compared with that ``old``.  A letter that exists but is not a
    symlink is refused like LINK.  LINK may not be named ``A`` or ``B``, and TARGET
    may not be LINK or a letter.

    On any failure the temporary link is removed.  If a rename succeeded but the
    following fsync failed, the link has been switched (it is just not known to be
    durable) and the ``OSError`` propagates.

    Returns a :class:`SwitchResult`.  Raises :class:`TypeError` for arguments of the
    wrong type (bytes paths included), :class:`ValueError` for empty paths, paths
    containing NUL, a LINK without a final name (``/``, ``.``, ``..``) or a TARGET
    that is LINK itself, :class:`SwitchConflict` as above, and :class:`OSError`
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

    if not allow_missing:
        os.stat(target_s)  # FileNotFoundError etc., with errno and filename

    dir_fd = os.open(link_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        real_dir = os.path.realpath(link_dir)
        target_canon = _canonical(target_s)
        forbidden = {name, *AB_LETTERS} if ab else {name}
        if any(target_canon == os.path.join(real_dir, n) for n in forbidden):
            raise ValueError(f"target {target_s!r} is the link or one of its letters")
        target_text = _link_text(target_canon, real_dir, relative)

        lock_fd = _lock(link_dir, name)
        try:
            if ab:
                return _switch_ab(
                    dir_fd, link_s, link_dir, real_dir, name, target_text, expect_s, relative
                )
            old = _read_link(link_dir, name)
            if expect_s is not None:
                _compare(link_s, link_dir, old, expect_s)
            _replace_link(dir_fd, link_dir, name, target_text)
            return SwitchResult(link=link_s, old=old, new=target_text)
        finally:
            os.close(lock_fd)  # closing the last descriptor releases the flock
    finally:
        os.close(dir_fd)


def _switch_ab(
    dir_fd: int,
    link_s: str,
    link_dir: str,
    real_dir: str,
    name: str,
    target_text: str,
    expect_s: Optional[str],
    relative: Optional[bool],
) -> SwitchResult:
    """Repoint the idle letter at ``target_text``, then flip LINK to it (lock held)."""
    current = _read_link(link_dir, name)
    active: Optional[str] = None
    if current is not None:
        pointed = _canonical(os.path.join(link_dir, current))
        for letter in AB_LETTERS:
            if pointed == os.path.join(real_dir, letter):
                active = letter
    idle = AB_LETTERS[1] if active == AB_LETTERS[0] else AB_LETTERS[0]

    # Check the idle letter before touching anything, so a bad letter changes nothing.
    _read_link(link_dir, idle)
    old = current if active is None else _read_link(link_dir, active)
    if expect_s is not None:
        _compare(link_s, link_dir, old, expect_s)
    letter_text = idle if relative is not False else os.path.join(real_dir, idle)
    _replace_link(dir_fd, link_dir, idle, target_text)
    _replace_link(dir_fd, link_dir, name, letter_text)
    return SwitchResult(link=link_s, old=old, new=target_text, letter=idle)


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


def _read_link(link_dir: str, name: str) -> Optional[str]:
    """Return the readlink text of ``link_dir/name``, or None if nothing is there.

    Raises IsADirectoryError for a directory and FileExistsError for any other
    non-symlink, so callers never replace such a file with a link.
    """
    path = os.path.join(link_dir, name)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return os.readlink(path)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(
            errno.EISDIR, "is a directory, not a symlink; refusing to replace it", path
        )
    raise FileExistsError(errno.EEXIST, "is not a symlink; refusing to replace it", path)


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


def _lock(link_dir: str, name: str) -> int:
    """Open (creating if needed) the lock file for ``name`` and flock it exclusively.

    Blocks until the lock is granted.  Returns the descriptor; closing it releases
    the lock.
    """
    path = os.path.join(link_dir, _fit_name(name, ".realdoc-lock"))
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _replace_link(dir_fd: int, link_dir: str, name: str, text: str) -> None:
    """Atomically make ``link_dir/name`` a symlink holding ``text``, then fsync.

    Creates the link under a unique temporary name, renames it over ``name`` and
    fsyncs the directory (``dir_fd``).  The temporary link is removed if anything
    fails before the rename completes.
    """
    final = os.path.join(link_dir, name)
    for _ in range(100):
        suffix = f".realdoc-tmp-{os.getpid()}-{secrets.token_hex(4)}"
        tmp = os.path.join(link_dir, _fit_name(name, suffix))
        try:
            os.symlink(text, tmp)
        except FileExistsError:
            continue  # someone else's temporary name: never touch it, pick another
        break
    else:  # pragma: no cover - 100 collisions of 32 random bits
        raise FileExistsError(errno.EEXIST, "no free temporary name", final)
    try:
        os.replace(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    os.fsync(dir_fd)
