"""Path text helpers and limits shared by the two implementations of the algorithms.

The kernel's limits, str/bytes/PathLike conversion, OSError construction and
the lexical component helpers that realpath() and first_link() of both cores
call, written once so that they behave bit for bit alike.  The Resolver's
policy is in ``_policy``, resolve()'s registry in ``_registry``.  Nothing here
issues a syscall.
"""

from __future__ import annotations

import errno
import os
from typing import Any, List, Optional, Tuple, Union

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


START_NEEDS_ABSOLUTE_PATH = "first_link() with start needs an absolute path, got {path!r}"
