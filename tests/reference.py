"""Reference implementations and measurements shared by the tests and the fuzzer.

``libc_realpath`` is glibc realpath(3) through ctypes (the reference for
``realdoc.realpath``), ``ref_first_link`` a plain Python reading of the
first_link contract for paths that resolve, ``rss`` the resident set size after
returning freed heap to the kernel.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from typing import List, Optional, Tuple

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_libc.realpath.restype = ctypes.c_void_p
_libc.realpath.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
_libc.free.argtypes = [ctypes.c_void_p]


def libc_realpath(p: bytes) -> Tuple[Optional[bytes], Optional[int]]:
    """(result, None) or (None, errno) from glibc realpath(3)."""
    ctypes.set_errno(0)
    ptr = _libc.realpath(p, None)
    if not ptr:
        return None, ctypes.get_errno()
    try:
        return ctypes.string_at(ptr), None
    finally:
        _libc.free(ptr)


def ref_first_link(p: bytes) -> bytes:
    """first_link's contract, read plainly, for a path that resolves."""
    if not p.startswith(b"/"):
        p = os.getcwdb() + b"/" + p
    comps = p.split(b"/")
    dest: List[bytes] = []
    for i, c in enumerate(comps):
        if c in (b"", b"."):
            continue
        if c == b"..":
            dest = dest[:-1]
            continue
        cand = b"/" + b"/".join(dest + [c])
        if os.path.islink(cand):
            t = os.readlink(cand)
            base = [] if t.startswith(b"/") else dest
            tc = [x for x in t.split(b"/") if x not in (b"", b".")]
            while tc and tc[0] == b"..":
                base = base[:-1]
                tc = tc[1:]
            rest = [x for x in comps[i + 1:] if x not in (b"", b".")]
            return b"/" + b"/".join(base + tc + rest)
        dest.append(c)
    return b"/" + b"/".join(dest)


def rss() -> int:
    """Resident set size in bytes, after returning freed heap memory to the kernel."""
    gc.collect()
    try:
        _libc.malloc_trim(0)
    except AttributeError:  # pragma: no cover - not glibc
        pass
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
