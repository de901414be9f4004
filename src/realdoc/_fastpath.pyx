# cython: language_level=3, embedsignature=True
# cython: boundscheck=False, wraparound=False, cdivision=True
"""Compiled core of realdoc: realpath, first_link and the Resolver hot path.

The pure-Python twin, ``realdoc._fastpath_py``, has the same functions with the
same results and errors; the tests run one body against both.  The C glue
(counted syscalls, the coarse clock, vectorcall) is in ``_fastpath.h``.
"""

# Syscall strategy (the user-facing account, with measurements, is
# docs/design-syscalls.md; tests/test_syscalls.py pins the counts).
#
# realpath(path): _realpath_c picks one of two routes.
#   * The walk (_walk) is glibc realpath(3)'s, step for step, and is the
#     reference: getcwd for a relative path; per component one readlink
#     (EINVAL: not a link; a link's target is spliced in front of the rest and
#     walked, at most RD_MAXSYMLINKS times, then ELOOP); a readlink("dir/")
#     directory check where glibc makes one (_suffix_dircheck).  Any other
#     errno is the answer.  A component that would make the path PATH_MAX
#     bytes or longer is ENAMETOOLONG, as the kernel says to glibc's readlink.
#   * The kernel route (_proc), from RD_PROC_MIN normal components on (a
#     relative path counts one more, for glibc's getcwd), when the text is
#     shorter than PATH_MAX: openat2(O_PATH, RESOLVE_NO_MAGICLINKS) +
#     readlink("/proc/self/fd/N") + close = 3 syscalls at any depth, where
#     glibc needs one per component.  A relative path first costs a getcwd
#     (_cwd_short; 4 in all): only when cwd + '/' + path is shorter than PATH_MAX can
#     glibc's walk not meet PATH_MAX before the kernel's answer; otherwise it
#     walks.  The kernel's verdict is taken only when it is an answer: every
#     openat2 error makes the walk decide (ELOOP: a loop or a /proc magic link,
#     whose text glibc reads; EACCES, ENAMETOOLONG: glibc's lexical '..' may
#     still succeed; ENOENT, ENOTDIR: glibc's walk may meet PATH_MAX first and
#     say ENAMETOOLONG; EMFILE, ENFILE: the walk needs no descriptor), and so
#     does a /proc answer that is not a plain absolute path (magic links,
#     " (deleted)") or is PATH_MAX bytes or more (the readlink's ENAMETOOLONG).
#     A relative path whose first component is '..' walks (the kernel could
#     climb out of a deleted cwd, where glibc fails in getcwd).
#   * A feature goes off for the process (g_openat2_ok, g_proc_ok) only when
#     the process lacks it, never for one path (_openat2_missing): openat2
#     ENOSYS, or EPERM/EINVAL/EOPNOTSUPP that openat2("/") repeats (a seccomp
#     filter); the /proc readlink failing with anything but ENAMETOOLONG.
#   * The walk and its getcwd follow glibc past PATH_MAX too: a working
#     directory of PATH_MAX bytes or more is read into a larger buffer and
#     climbed lexically by leading '..' (_cwd_into); an answer of PATH_MAX
#     bytes or more is ENAMETOOLONG (glibc's realpath into a PATH_MAX buffer).
#
# first_link(path, start): one readlink per tested component up to the first
# link, whose target is spliced in textually; getcwd for a relative path.
#
# Resolver refresh in realpath mode ("refresh by prediction"): the first
# resolution is realpath(); where the docroot text and the answer part is
# taken as the link (the plan).  A refresh replays the plan (_replay): one
# readlink per remembered link, the targets spliced in textually, and the
# candidate proved by openat2(RESOLVE_NO_SYMLINKS) + close (_prove): a path
# that walks through no link at all normalises lexically to realpath's answer.
# 3 syscalls for current -> releases/N.  A surprise (a remembered link is no
# longer one, a new link, ENOENT) walks the text afresh and plans again
# (_plan_walk); when openat2 cannot prove, plain realpath() answers.
#
# Threads: every syscall sequence runs without the GIL; Resolver state is read
# and written with the GIL held.  The extension is not declared free-threading
# compatible, so a free-threaded interpreter re-enables the GIL on import.

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.object cimport PyObject
from libc.errno cimport (
    EAGAIN, EINTR, EINVAL, ELOOP, ENAMETOOLONG, ENOENT, ENOMEM, ENOSYS, ENOTDIR, EOPNOTSUPP,
    EPERM, ERANGE,
    errno,
)
from libc.math cimport INFINITY
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memchr, memcmp, memcpy, strlen

import os
from types import GenericAlias

from realdoc import _common, _policy, _registry, _scope, _watch

cdef extern from "_fastpath.h":
    enum rd_sys_slot:
        RD_SYS_READLINK
        RD_SYS_OPENAT2
        RD_SYS_CLOSE
        RD_SYS_GETCWD
    enum:
        RD_NSYS              # the number of slots
    unsigned long long rd_sys[]
    ssize_t rd_readlink(const char *p, char *buf, size_t n) nogil
    int rd_openat2(const char *p, uint64_t resolve) nogil
    int rd_openat2_nolinks(const char *p) nogil
    int rd_openat2_nomagic(const char *p) nogil
    int rd_close(int fd) nogil
    char *rd_getcwd(char *buf, size_t n) nogil
    double rd_coarse_now() nogil
    void rd_proc_fd_path(char *buf, int fd) nogil
    enum:
        RD_RESOLVE_NO_MAGICLINKS
        RD_RESOLVE_NO_SYMLINKS
    ctypedef object (*rd_callfn)(object)
    rd_callfn rd_call_impl
    rd_callfn rd_resolve1_impl
    void *rd_vectorcall_ptr()
    void *rd_resolve_vectorcall_ptr()
    void rd_set_resolve_general(object f)
    void rd_enable_vectorcall(object t, Py_ssize_t off)
    ctypedef object (*rd_kwfn)(object, PyObject **)
    rd_kwfn rd_resolve_kw_impl
    int rd_init_kwnames() except -1
    void rd_count_getcwd()
    int rd_inotify_init() nogil
    int rd_inotify_add(int fd, const char *p, uint32_t mask) nogil
    int rd_inotify_rm(int fd, int wd) nogil
    int rd_wait_readable(int fd) nogil
    ssize_t rd_read(int fd, char *buf, size_t n) nogil
    enum:
        RD_HAVE_INOTIFY
        RD_IN_MOVED_FROM
        RD_IN_MOVED_TO
        RD_IN_CREATE
        RD_IN_DELETE
        RD_IN_DELETE_SELF
        RD_IN_MOVE_SELF
        RD_IN_Q_OVERFLOW
        RD_IN_IGNORED
        RD_IN_ONLYDIR

cdef extern from "Python.h":
    object PyUnicode_EncodeFSDefault(object u)
    object PyUnicode_DecodeFSDefaultAndSize(const char *s, Py_ssize_t n)
    # declared without an exception value: _resolve1 checks for the error itself
    PyObject *rd_dict_get "PyDict_GetItemWithError"(object d, object key)
    PyObject *PyErr_Occurred()
    void PyErr_Clear()

cdef enum:
    RD_PATH_MAX = 4096       # linux/limits.h, the NUL included
    RD_BUF = RD_PATH_MAX + 8
    RD_MAXSYMLINKS = 40      # glibc's and the kernel's limit
    RD_PROC_MIN = 5          # _common.PROC_MIN_COMPONENTS
    RD_MAXPLAN = 16          # links a refresh plan remembers

cdef enum Proof:             # what _prove, _replay and _plan_walk return
    PROVEN = 0               # out holds realpath's answer
    UNPROVEN = -1            # a surprise: walk the text afresh, plan again
    NO_PROOF = -2            # openat2 cannot prove here: plain realpath answers

cdef enum Plan:              # Resolver._nplan below 0
    PLAN_UNKNOWN = -1        # no plan yet: the next resolution guesses one
    PLAN_NEVER = -2          # a relative docroot: never predicted

# Run-time features: switched off for the process when the kernel says no.
cdef bint g_proc_ok = True
cdef bint g_openat2_ok = True
# hits (the other counters are in _TALLY, written by _policy); resolve()'s LRU clock
cdef unsigned long long g_hits = 0
cdef unsigned long long g_tick = 0
cdef long g_gen = 1  # bumped in a forked child: refresh flags of the parent lapse

# stats()["syscalls"] keys, in rd_sys_slot order
_SYSCALL_NAMES = ("readlink", "openat2", "close", "getcwd")

assert len(_SYSCALL_NAMES) == RD_NSYS
assert _common.PATH_MAX == RD_PATH_MAX and _common.PROC_MIN_COMPONENTS == RD_PROC_MIN


def features():
    """Kernel features this process uses (``proc``, ``openat2``)."""
    return {"proc": bool(g_proc_ok), "openat2": bool(g_openat2_ok)}


def set_features(**flags):
    """Switch run-time kernel features off (or back on); returns the old set.

    For tests and for systems where a feature misbehaves: with every feature
    off, resolution falls back to the plain readlink walk, with the same
    results.  Unknown names raise ValueError.
    """
    global g_proc_ok, g_openat2_ok
    old = features()
    for name, on in flags.items():
        if name == "proc":
            g_proc_ok = bool(on)
        elif name == "openat2":
            g_openat2_ok = bool(on)
        else:
            raise ValueError(f"unknown feature {name!r}")
    return old


# ---------------------------------------------------------------- C helpers

cdef inline const char *_comp(const char *p, const char **endp) noexcept nogil:
    """The next component of p: its start (slashes skipped) with *endp at its end,
    or NULL at the end of the string."""
    while p[0] == b'/':
        p += 1
    if p[0] == 0:
        return NULL
    cdef const char *end = p
    while end[0] != 0 and end[0] != b'/':
        end += 1
    endp[0] = end
    return p


cdef inline bint _is_dot(const char *p, const char *end) noexcept nogil:
    return end - p == 1 and p[0] == b'.'


cdef inline bint _is_dotdot(const char *p, const char *end) noexcept nogil:
    return end - p == 2 and p[0] == b'.' and p[1] == b'.'


cdef inline int _count_normal(const char *s) noexcept nogil:
    """Components of s that are neither empty, '.' nor '..'."""
    cdef int n = 0
    cdef const char *end
    while True:
        s = _comp(s, &end)
        if s == NULL:
            return n
        if not (_is_dot(s, end) or _is_dotdot(s, end)):
            n += 1
        s = end


cdef inline bint _leading_dotdot(const char *s) noexcept nogil:
    """A relative path whose first component other than '.' is '..'."""
    if s[0] == b'/':
        return False
    while True:
        while s[0] == b'/':
            s += 1
        if s[0] == b'.' and (s[1] == b'/' or s[1] == 0):
            s += 1
            continue
        return s[0] == b'.' and s[1] == b'.' and (s[2] == b'/' or s[2] == 0)


cdef inline bint _suffix_dircheck(const char *s) noexcept nogil:
    """glibc's suffix_requires_dir_check: trailing '/', trailing '/.', or '/..' next."""
    cdef char c
    while s[0] == b'/':
        while s[0] == b'/':
            s += 1
        c = s[0]
        if c == 0:
            return True
        s += 1
        if c != b'.':
            return False
        if s[0] == 0 or (s[0] == b'.' and (s[1] == 0 or s[1] == b'/')):
            return True
    return False


cdef inline bint _ends_deleted(const char *s, size_t n) noexcept nogil:
    """s[:n] ends in " (deleted)", the kernel's mark for an unlinked file."""
    return n >= 10 and memcmp(s + n - 10, b" (deleted)", 10) == 0


cdef inline size_t _pop(char *dest, size_t dlen) noexcept nogil:
    """Drop the last component of the absolute path dest[:dlen]; '/' stays '/'."""
    if dlen <= 1:
        return 1
    dlen -= 1
    while dlen > 0 and dest[dlen] != b'/':
        dlen -= 1
    if dlen == 0:
        dlen = 1
    dest[dlen] = 0
    return dlen


cdef inline size_t _append(char *dest, size_t dlen, const char *s, size_t n,
                           size_t cap) noexcept nogil:
    """Append '/'+s[:n] to the absolute path dest[:dlen]; the new length, or cap
    when the result would be cap bytes or longer."""
    if dlen > 1:
        if dlen + 1 + n >= cap:
            return cap
        dest[dlen] = b'/'
        dlen += 1
    elif dlen + n >= cap:
        return cap
    memcpy(dest + dlen, s, n)
    dlen += n
    dest[dlen] = 0
    return dlen


cdef size_t _append_rest(char *dest, size_t dlen, const char *s, size_t cap) noexcept nogil:
    """Append the components of s (empty and '.' dropped, '..' kept); cap on overflow."""
    cdef const char *end
    while True:
        s = _comp(s, &end)
        if s == NULL:
            return dlen
        if not _is_dot(s, end):
            dlen = _append(dest, dlen, s, end - s, cap)
            if dlen == cap:
                return cap
        s = end


cdef int _cwd_into(char *dest, size_t *dlen, const char **rest) noexcept nogil:
    """getcwd into dest (RD_BUF bytes; 1 syscall); 0, or getcwd's errno.

    A working directory of PATH_MAX bytes or more is taken as glibc's realpath
    takes it: getcwd again into a buffer large enough, the leading '.' and '..'
    components of *rest applied lexically (*rest is advanced past them), and
    ENAMETOOLONG when the result is still PATH_MAX bytes or more (glibc's next
    readlink, or its final length check, says the same).
    """
    cdef size_t cap = 2 * RD_PATH_MAX
    cdef size_t blen
    cdef char *big
    cdef const char *p
    cdef const char *c
    cdef const char *end
    cdef int e
    if rd_getcwd(dest, RD_PATH_MAX) != NULL:
        dlen[0] = strlen(dest)
        return 0
    e = errno
    if e != ERANGE:
        return e
    while True:
        big = <char *>malloc(cap)
        if big == NULL:
            return ENOMEM
        if rd_getcwd(big, cap) != NULL:
            break
        e = errno
        free(big)
        if e != ERANGE:
            return e
        cap *= 2
    blen = strlen(big)
    p = rest[0]
    while True:
        c = _comp(p, &end)
        if c == NULL or not (_is_dot(c, end) or _is_dotdot(c, end)):
            break
        if _is_dotdot(c, end):
            blen = _pop(big, blen)
        p = end
    if blen >= RD_PATH_MAX:
        free(big)
        return ENAMETOOLONG
    memcpy(dest, big, blen + 1)
    free(big)
    dlen[0] = blen
    rest[0] = p
    return 0


cdef inline bint _cwd_short(const char *name, size_t namelen, char *scratch) noexcept nogil:
    """getcwd (1 syscall): True when cwd + '/' + name is shorter than PATH_MAX, so
    glibc's walk of the relative name meets PATH_MAX only through links."""
    if rd_getcwd(scratch, RD_PATH_MAX) == NULL:
        return False
    return strlen(scratch) + 1 + namelen < RD_PATH_MAX


cdef bint _openat2_missing(int e, uint64_t resolve) noexcept nogil:
    """After openat2(..., resolve) failed with e: does this process lack openat2?

    ENOSYS: the kernel, or a seccomp filter, has none.  EPERM, EINVAL and
    EOPNOTSUPP come from a seccomp filter or from one path's filesystem:
    openat2("/") with the same flags tells which (1 or 2 syscalls, on this error
    path only).  Any other errno is about the path.
    """
    cdef int fd, e2
    if e == ENOSYS:
        return True
    if e != EPERM and e != EINVAL and e != EOPNOTSUPP:
        return False
    fd = rd_openat2("/", resolve)
    if fd >= 0:
        rd_close(fd)
        return False
    e2 = errno
    return e2 == e or e2 == ENOSYS


cdef inline int _dircheck(char *dest, size_t dlen) noexcept nogil:
    """readlink("dest/"): EINVAL proves a directory; returns 0 or an errno."""
    cdef char tmp[8]
    cdef ssize_t n
    if dlen + 1 >= RD_PATH_MAX:
        return ENAMETOOLONG
    dest[dlen] = b'/'
    dest[dlen + 1] = 0
    n = rd_readlink(dest, tmp, sizeof(tmp))
    cdef int e = errno
    dest[dlen] = 0
    if n >= 0:
        return ENOTDIR
    return 0 if e == EINVAL else e


cdef object _raise(int err, object filename):
    raise OSError(err, os.strerror(err), filename)


cdef inline object _fsdecode(bytes b):
    return PyUnicode_DecodeFSDefaultAndSize(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


cdef inline tuple _as_bytes(object path, str what):
    if type(path) is str:
        raw = PyUnicode_EncodeFSDefault(path)
        if memchr(PyBytes_AS_STRING(raw), 0, PyBytes_GET_SIZE(raw)) != NULL:
            raise ValueError(f"{what} contains an embedded null byte")
        return raw, True
    return _common.to_bytes(path, what)


# ------------------------------------------------------------------ realpath

cdef int _walk(const char *name, char *dest, size_t *dlen_out) noexcept nogil:
    """glibc realpath(3)'s walk into dest (RD_BUF bytes); returns 0 or an errno."""
    cdef size_t dlen = 0
    cdef size_t clen, saved, restlen
    cdef char *ext = NULL
    cdef char *newext
    cdef const char *p = name
    cdef const char *end
    cdef char link[RD_BUF]
    cdef ssize_t n
    cdef int links = 0
    cdef int err = 0
    cdef int e
    if name[0] == b'/':
        dest[0] = b'/'
        dest[1] = 0
        dlen = 1
    else:
        e = _cwd_into(dest, &dlen, &p)
        if e:
            return e
    while True:
        p = _comp(p, &end)
        if p == NULL:
            break
        clen = end - p
        if _is_dot(p, end):
            p = end
            continue
        if _is_dotdot(p, end):
            dlen = _pop(dest, dlen)
            p = end
            continue
        saved = dlen
        dlen = _append(dest, dlen, p, clen, RD_PATH_MAX)
        if dlen == RD_PATH_MAX:
            dlen = saved
            err = ENAMETOOLONG
            break
        n = rd_readlink(dest, link, RD_PATH_MAX)
        if n >= 0:
            links += 1
            if links > RD_MAXSYMLINKS:
                err = ELOOP
                break
            # the rest of the path now starts with the link's target
            restlen = strlen(end)
            newext = <char *>malloc(<size_t>n + restlen + 1)
            if newext == NULL:
                err = ENOMEM
                break
            memcpy(newext, link, n)
            memcpy(newext + n, end, restlen + 1)
            free(ext)
            ext = newext
            p = ext
            if link[0] == b'/':
                dest[0] = b'/'
                dest[1] = 0
                dlen = 1
            else:
                dlen = saved
                dest[dlen] = 0
            continue
        e = errno
        if _suffix_dircheck(end):
            e = _dircheck(dest, dlen)
            if e != 0:
                err = e
                break
        elif e != EINVAL:
            err = e
            break
        p = end
    free(ext)
    dlen_out[0] = dlen
    return err


cdef bint _proc(const char *name, char *out, size_t *olen) noexcept nogil:
    """openat2(O_PATH, RESOLVE_NO_MAGICLINKS) + readlink(/proc/self/fd/N) + close.

    True with the answer in out; False when the walk must answer instead (every
    openat2 error, and the cases listed in the strategy above).  Only a missing
    feature switches it off for the process.
    """
    global g_proc_ok, g_openat2_ok
    cdef char procpath[48]
    cdef int fd = rd_openat2_nomagic(name)
    cdef int e
    cdef ssize_t n
    if fd < 0:
        if _openat2_missing(errno, RD_RESOLVE_NO_MAGICLINKS):
            g_openat2_ok = False
        return False
    rd_proc_fd_path(procpath, fd)
    n = rd_readlink(procpath, out, RD_PATH_MAX)
    e = errno
    rd_close(fd)
    if n < 0:
        if e != ENAMETOOLONG:  # ENAMETOOLONG: this answer is PATH_MAX bytes or more
            g_proc_ok = False  # no /proc here: walk from now on
        return False
    if n >= RD_PATH_MAX:
        return False
    out[n] = 0
    if out[0] != b'/' or _ends_deleted(out, n):
        return False
    olen[0] = n
    return True


cdef int _realpath_c(const char *name, size_t namelen, char *out, size_t *olen) noexcept nogil:
    """realpath(3) of name into out (RD_BUF bytes): the kernel route or the walk."""
    if namelen == 0:
        return ENOENT
    if (g_proc_ok and g_openat2_ok and namelen < RD_PATH_MAX and not _leading_dotdot(name)
            and _count_normal(name) + (name[0] != b'/') >= RD_PROC_MIN
            and (name[0] == b'/' or _cwd_short(name, namelen, out))
            and _proc(name, out, olen)):
        return 0
    return _walk(name, out, olen)


cdef bytes _realpath_bytes(bytes raw, object filename):
    """realpath() of raw as bytes; raises OSError naming filename."""
    cdef char out[RD_BUF]
    cdef size_t olen = 0
    cdef const char *c = PyBytes_AS_STRING(raw)
    cdef size_t clen = PyBytes_GET_SIZE(raw)
    cdef int err
    with nogil:
        err = _realpath_c(c, clen, out, &olen)
    if err:
        _raise(err, filename)
    return PyBytes_FromStringAndSize(out, olen)


def realpath(path):
    """Return the canonical absolute path of ``path``, like libc realpath(3).

    ``path``: str, bytes or os.PathLike; the result has the same kind (str for
    PathLike of str).  Every component must exist.  Errors: FileNotFoundError
    (missing component, dangling link, ``""``), NotADirectoryError
    (``file/``, ``file/..``), OSError ELOOP (a loop or more than 40 links),
    OSError ENAMETOOLONG (result of PATH_MAX bytes or more), PermissionError,
    each with ``errno`` and ``filename``; ValueError for a NUL byte; TypeError
    for other types.  Syscalls: from five components on, 3 (``openat2``,
    ``readlink`` of ``/proc/self/fd/N``, ``close``; a relative path adds a
    ``getcwd``); glibc's walk below, or where the kernel's verdict is not an
    answer.  See the design page (docs/design-syscalls.md).
    """
    cdef bytes raw
    cdef bint is_str
    raw, is_str = _as_bytes(path, "path")
    res = _realpath_bytes(raw, path)
    return _fsdecode(res) if is_str else res


# ---------------------------------------------------------------- first_link

cdef int _first_link_c(const char *name, int trusted, char *dest,
                       size_t *dlen_out) noexcept nogil:
    """first_link into dest (3 * RD_BUF bytes); returns 0 or an errno."""
    cdef size_t dlen = 0
    cdef size_t clen, saved
    cdef const char *p = name
    cdef const char *end
    cdef const char *t
    cdef const char *tstart
    cdef const char *tend
    cdef char link[RD_BUF]
    cdef ssize_t n
    cdef int index = 0
    cdef int e
    cdef size_t cap = 3 * RD_BUF
    if name[0] == 0:
        return ENOENT
    if name[0] == b'/':
        dest[0] = b'/'
        dest[1] = 0
        dlen = 1
    else:
        e = _cwd_into(dest, &dlen, &p)  # takes leading '..' only past PATH_MAX
        if e:
            return e
        trusted = 0
    while True:
        p = _comp(p, &end)
        if p == NULL:
            break
        clen = end - p
        if _is_dot(p, end):
            p = end
            continue
        if _is_dotdot(p, end):
            dlen = _pop(dest, dlen)
            index += 1
            p = end
            continue
        if index < trusted:
            dlen = _append(dest, dlen, p, clen, RD_PATH_MAX)
            if dlen == RD_PATH_MAX:
                return ENAMETOOLONG
            index += 1
            p = end
            continue
        saved = dlen
        dlen = _append(dest, dlen, p, clen, RD_PATH_MAX)
        if dlen == RD_PATH_MAX:
            return ENAMETOOLONG
        n = rd_readlink(dest, link, RD_PATH_MAX)
        if n < 0:
            e = errno
            if _suffix_dircheck(end):
                e = _dircheck(dest, dlen)
                if e != 0:
                    return e
            elif e != EINVAL:
                return e
            index += 1
            p = end
            continue
        # The first link: its target replaces it; the rest follows.
        link[n] = 0
        if link[0] == b'/':
            dlen = 1
            dest[1] = 0
        else:
            dlen = saved
            dest[dlen] = 0
        t = link
        # leading "." and ".." of the target apply to the link's directory
        while True:
            tstart = _comp(t, &tend)
            if tstart == NULL or not (_is_dot(tstart, tend) or _is_dotdot(tstart, tend)):
                break
            if _is_dotdot(tstart, tend):
                dlen = _pop(dest, dlen)
            t = tend
        dlen = _append_rest(dest, dlen, t, cap)
        if dlen == cap:
            return ENAMETOOLONG
        dlen = _append_rest(dest, dlen, end, cap)
        if dlen == cap:
            return ENAMETOOLONG
        break
    if dlen >= RD_PATH_MAX:
        return ENAMETOOLONG
    dlen_out[0] = dlen
    return 0


cdef int _start_trusted(const char *path, const char *start) noexcept:
    """Components of path trusted for start (its count minus one), or -1 if start
    is not an absolute component-wise prefix of path (empty and '.' ignored)."""
    cdef const char *pe
    cdef const char *se
    cdef int n = 0
    if start[0] != b'/':
        return -1
    while True:
        while start[0] == b'/' or (start[0] == b'.' and (start[1] == b'/' or start[1] == 0)):
            start += 1
        while path[0] == b'/' or (path[0] == b'.' and (path[1] == b'/' or path[1] == 0)):
            path += 1
        if start[0] == 0:
            return n - 1 if n > 0 else 0
        se = start
        while se[0] != 0 and se[0] != b'/':
            se += 1
        pe = path
        while pe[0] != 0 and pe[0] != b'/':
            pe += 1
        if se - start != pe - path or memcmp(start, path, se - start) != 0:
            return -1
        n += 1
        start = se
        path = pe


cdef bytes _first_link_bytes(bytes raw, int trusted, object filename):
    """first_link() of raw as bytes; raises OSError naming filename."""
    cdef char *out = <char *>malloc(3 * RD_BUF)
    if out == NULL:
        raise MemoryError()
    cdef size_t olen = 0
    cdef const char *c = PyBytes_AS_STRING(raw)
    cdef int err
    try:
        with nogil:
            err = _first_link_c(c, trusted, out, &olen)
        if err:
            _raise(err, filename)
        return PyBytes_FromStringAndSize(out, olen)
    finally:
        free(out)


def first_link(path, start=None):
    """Return ``path`` with only its first symlink replaced by the link's target.

    mod_realdoc's ``UseReadlink`` without its quirks.  Components before
    ``start``'s last one are trusted; from there on every component, the last
    included, is tested with one ``readlink`` (EINVAL: not a link) until the
    first link, whose target replaces it (an absolute target replaces the whole
    prefix; leading ``..`` and ``.`` of a relative one are applied to the
    link's real directory).  The rest of the path is appended; empty and ``.``
    components are dropped.  No link: the normalised absolute path.  A relative
    ``path`` costs one ``getcwd``.  Errors: as :func:`realpath` for the tested
    part; ValueError when ``start`` is not an absolute component-wise prefix of
    ``path``.
    """
    cdef bytes raw
    cdef bint is_str
    raw, is_str = _as_bytes(path, "path")
    cdef int trusted = 0
    cdef bytes sraw
    if start is not None:
        if raw[:1] != b"/":
            raise ValueError(_common.START_NEEDS_ABSOLUTE_PATH.format(path=path))
        sraw = _as_bytes(start, "start")[0]
        trusted = _start_trusted(PyBytes_AS_STRING(raw), PyBytes_AS_STRING(sraw))
        if trusted < 0:  # not an absolute prefix: let the shared check word the error
            trusted = _common.parse_start(raw, start)
    res = _first_link_bytes(raw, trusted, path)
    return _fsdecode(res) if is_str else res


# ----------------------------------------------------- refresh by prediction

cdef inline int _find_comp(const char *r, int index, size_t *cs, size_t *ce) noexcept nogil:
    """Locate component `index` of r (empty and '.' not counted); 0 if found."""
    cdef const char *p = r
    cdef const char *end
    cdef int i = 0
    while True:
        p = _comp(p, &end)
        if p == NULL:
            return -1
        if not _is_dot(p, end):
            if i == index:
                cs[0] = p - r
                ce[0] = end - r
                return 0
            i += 1
        p = end


cdef int _splice(char *r, size_t *rlen, size_t cs, size_t ce, const char *t,
                 size_t tn) noexcept nogil:
    """Replace r[cs:ce] (a link) by its target t; absolute targets drop r[:ce].
    0, or -1 when the result would be PATH_MAX bytes or longer."""
    cdef size_t restlen = rlen[0] - ce
    cdef char tmp[RD_BUF]
    if restlen >= RD_BUF:
        return -1
    memcpy(tmp, r + ce, restlen)
    if t[0] == b'/':
        cs = 0
    if cs + tn + restlen >= RD_PATH_MAX:
        return -1
    memcpy(r + cs, t, tn)
    memcpy(r + cs + tn, tmp, restlen)
    rlen[0] = cs + tn + restlen
    r[rlen[0]] = 0
    return 0


cdef Proof _prove(char *r, size_t rlen, bint dirslash, char *out, size_t *olen) noexcept nogil:
    """openat2(r, RESOLVE_NO_SYMLINKS) + close, then normalise r lexically into out."""
    global g_openat2_ok
    cdef int fd, e
    cdef const char *p
    cdef const char *end
    cdef size_t dlen
    if dirslash:
        if rlen + 1 >= RD_PATH_MAX:
            return UNPROVEN
        r[rlen] = b'/'
        r[rlen + 1] = 0
    fd = rd_openat2_nolinks(r)
    e = errno
    r[rlen] = 0
    if fd < 0:
        if e == ENOSYS or e == EPERM or e == EINVAL or e == EOPNOTSUPP:
            if _openat2_missing(e, RD_RESOLVE_NO_SYMLINKS):
                g_openat2_ok = False
            return NO_PROOF  # refused for this path, or no openat2 at all
        return UNPROVEN
    rd_close(fd)
    out[0] = b'/'
    out[1] = 0
    dlen = 1
    p = r
    while True:
        p = _comp(p, &end)
        if p == NULL:
            break
        if _is_dot(p, end):
            pass
        elif _is_dotdot(p, end):
            dlen = _pop(out, dlen)
        else:
            dlen = _append(out, dlen, p, end - p, RD_PATH_MAX)
            if dlen == RD_PATH_MAX:
                return UNPROVEN
        p = end
    olen[0] = dlen
    return PROVEN


cdef Proof _plan_walk(const char *docroot, size_t dlen0, bint dirslash, int *plan, int *nplan,
                      char *out, size_t *olen) noexcept nogil:
    """Walk the docroot text, splicing links in place and recording where; then prove."""
    cdef char r[RD_BUF]
    cdef char link[RD_BUF]
    cdef size_t rlen = dlen0
    cdef size_t cs, ce
    cdef int index = 0
    cdef int links = 0
    cdef ssize_t n
    cdef char saved
    nplan[0] = 0
    if dlen0 >= RD_PATH_MAX:
        return UNPROVEN
    memcpy(r, docroot, dlen0 + 1)
    while _find_comp(r, index, &cs, &ce) == 0:
        if ce - cs == 2 and r[cs] == b'.' and r[cs + 1] == b'.':
            index += 1
            continue
        saved = r[ce]
        r[ce] = 0
        n = rd_readlink(r, link, RD_PATH_MAX)
        r[ce] = saved
        if n < 0:
            if errno != EINVAL:
                return UNPROVEN
            index += 1
            continue
        links += 1
        if links > RD_MAXSYMLINKS or nplan[0] >= RD_MAXPLAN:
            return UNPROVEN
        plan[nplan[0]] = index
        nplan[0] += 1
        link[n] = 0
        if _splice(r, &rlen, cs, ce, link, n) != 0:
            return UNPROVEN
        if link[0] == b'/':
            index = 0
    return _prove(r, rlen, dirslash, out, olen)


cdef Proof _replay(const char *docroot, size_t dlen0, bint dirslash, const int *plan,
                   int nplan, char *out, size_t *olen) noexcept nogil:
    """Re-read the remembered links, splice, prove: the 3-syscall refresh."""
    cdef char r[RD_BUF]
    cdef char link[RD_BUF]
    cdef size_t rlen = dlen0
    cdef size_t cs, ce
    cdef ssize_t n
    cdef char saved
    cdef int i
    if dlen0 >= RD_PATH_MAX:
        return UNPROVEN
    memcpy(r, docroot, dlen0 + 1)
    for i in range(nplan):
        if _find_comp(r, plan[i], &cs, &ce) != 0:
            return UNPROVEN
        saved = r[ce]
        r[ce] = 0
        n = rd_readlink(r, link, RD_PATH_MAX)
        r[ce] = saved
        if n < 0:
            return UNPROVEN
        link[n] = 0
        if _splice(r, &rlen, cs, ce, link, n) != 0:
            return UNPROVEN
    return _prove(r, rlen, dirslash, out, olen)


# -------------------------------------------------------------------- Resolver

cdef enum:  # use_readlink's modes, as _policy.MODE_* numbers them
    MODE_REALPATH = 0
    MODE_FIRST_LINK = 1
    MODE_FIRST_LINK_START = 2

assert (MODE_REALPATH, MODE_FIRST_LINK, MODE_FIRST_LINK_START) == (
    _policy.MODE_REALPATH, _policy.MODE_FIRST_LINK, _policy.MODE_FIRST_LINK_START)

cdef object _DEF_EVERY = _policy.DEFAULT_EVERY
cdef str _DEF_ON_ERROR = "stale"
cdef str _DEF_SCOPE = _scope.DEFAULT_SCOPE
cdef object _check_scope = _scope.check_scope
cdef object _settle = _scope.settle
cdef object _TALLY = _policy.Tally()
cdef object _policy_refresh = _policy.refresh
cdef object _policy_failed = _policy.failed
cdef object _watch_before = _policy.watch_before
cdef object _Views = _policy.ResolverViews
cdef double _NEG_INF = float("-inf")


# ------------------------------------------------------------------ watch mode
# The syscalls of realdoc._watch (which says what is watched and why), in C.

assert (RD_IN_MOVED_FROM, RD_IN_MOVED_TO, RD_IN_CREATE, RD_IN_DELETE, RD_IN_DELETE_SELF,
        RD_IN_MOVE_SELF, RD_IN_Q_OVERFLOW, RD_IN_IGNORED, RD_IN_ONLYDIR) == (
    _watch.IN_MOVED_FROM, _watch.IN_MOVED_TO, _watch.IN_CREATE, _watch.IN_DELETE,
    _watch.IN_DELETE_SELF, _watch.IN_MOVE_SELF, _watch.IN_Q_OVERFLOW, _watch.IN_IGNORED,
    _watch.IN_ONLYDIR)


cdef inline int _checked(int rc) except -1:
    if rc < 0:
        e = errno
        raise OSError(e, os.strerror(e))
    return rc


def _in_init():
    """inotify_init1(IN_CLOEXEC | IN_NONBLOCK)."""
    return _checked(rd_inotify_init())


def _in_add(int fd, bytes directory, uint32_t mask):
    """inotify_add_watch(fd, directory, mask): the watch descriptor."""
    return _checked(rd_inotify_add(fd, directory, mask))


def _in_rm(int fd, int wd):
    """inotify_rm_watch(fd, wd)."""
    _checked(rd_inotify_rm(fd, wd))


def _in_wait(int fd):
    """poll(fd, POLLIN) without timeout, the GIL released."""
    cdef int rc
    with nogil:
        rc = rd_wait_readable(fd)
    _checked(rc)


def _in_read(int fd):
    """One read() of the inotify queue (b"" when empty)."""
    cdef char buf[65536]
    cdef ssize_t n
    with nogil:
        n = rd_read(fd, buf, sizeof(buf))
    if n < 0:
        e = errno
        if e == EAGAIN or e == EINTR:
            return b""
        raise OSError(e, os.strerror(e))
    return PyBytes_FromStringAndSize(buf, n)


def _counted_readlink(bytes path):
    """readlink(path), counted (watch mode's walk)."""
    cdef char buf[RD_BUF]
    cdef ssize_t n
    cdef const char *p = path
    with nogil:
        n = rd_readlink(p, buf, RD_PATH_MAX)
    if n < 0:
        e = errno
        raise OSError(e, os.strerror(e), path)
    return PyBytes_FromStringAndSize(buf, n)


def _counted_getcwd():
    """os.getcwdb(), counted (a relative docroot's base)."""
    rd_count_getcwd()
    return os.getcwdb()


assert _watch.READ_SIZE == 65536
cdef object _WATCHER = _watch.Watcher(_watch.Backend(
    init=_in_init, add=_in_add, rm=_in_rm, wait=_in_wait, read=_in_read, close=os.close,
    readlink=_counted_readlink) if RD_HAVE_INOTIFY else None)
_watcher = _WATCHER  # the process's watcher for this core (tests, introspection)


@cython.final
cdef class Resolver:
    """Compiled twin of ``realdoc._fastpath_py.Resolver``, whose docstring is the contract.

    Differences are in cost only: a hit compares ``CLOCK_MONOTONIC_COARSE``
    (read from the vDSO) with the last resolution time, and a refresh in
    realpath mode replays the remembered links (module docstring).  The
    introspection properties are ``_policy.ResolverViews``'s.  ``watch=True``
    uses ``realdoc._watch`` with this module's C syscalls (inotify_init1,
    inotify_add_watch, inotify_rm_watch, poll and read in ``_fastpath.h``).
    """

    cdef readonly object _docroot  # as configured: str or bytes
    cdef readonly bytes _raw       # the docroot as bytes, absolute (_policy.absolute_docroot)
    cdef bytes _norm               # absolute, '.'/empty dropped: the text plans index into
    cdef bint _dirslash            # docroot ends in '/' or '/.': the result must be a dir
    cdef readonly object _cwd      # a relative docroot's base directory (bytes), or None
    cdef int _cwd_errno            # getcwd's errno for a relative docroot in a deleted cwd
    cdef readonly bint _is_str
    cdef readonly double _every
    cdef readonly int _mode        # MODE_*
    cdef readonly int _trusted
    cdef readonly object _start
    cdef readonly str _on_error
    cdef readonly str _scope
    cdef public object _value
    cdef public double _resolved_at   # -inf: due (never resolved, or a watch event)
    cdef public double _good_at       # the last good resolution (age)
    cdef public long _wgen            # bumped by each watch event (_policy.expire)
    cdef readonly object _watch       # the _watch.Handle of a watch=True Resolver, or None
    cdef public object _failing    # a _policy.Failing during a failure episode, else None
    cdef long _busy                # == g_gen while a thread refreshes
    cdef object _clock             # checked test clock, or None
    cdef int _plan[RD_MAXPLAN]
    cdef int _nplan                # links in _plan, or a Plan state
    cdef readonly unsigned long long _tick   # resolve()'s last use (LRU)
    cdef void *_vectorcall         # see rd_resolver_vectorcall
    cdef object __weakref__

    _tally = _TALLY
    _watcher = _WATCHER
    __class_getitem__ = classmethod(GenericAlias)  # Resolver[str], as the pure class allows
    docroot = _Views.docroot
    every = _Views.every
    on_error = _Views.on_error
    mode = _Views.mode
    start = _Views.start
    value = _Views.value
    age = _Views.age
    expires_in = _Views.expires_in
    scope = _Views.scope
    effective_scope = _Views.effective_scope
    watch = _Views.watch
    watching = _Views.watching
    events = _Views.events

    def __cinit__(self, *args, **kwargs):
        self._vectorcall = rd_vectorcall_ptr()
        self._resolved_at = self._good_at = _NEG_INF

    def __init__(self, docroot, *, every=_DEF_EVERY, use_readlink=False, on_error="stale",
                 clock=None, scope=_DEF_SCOPE, watch=False):
        (self._docroot, self._raw, self._is_str, self._every, self._mode, self._trusted,
         self._start, self._on_error, self._clock, watch, self._cwd,
         self._cwd_errno) = _policy.parse_options(
            docroot, every, use_readlink, on_error, clock, watch, _counted_getcwd)
        self._scope = _check_scope(scope)
        if self._watch is not None:  # a second __init__ starts afresh
            _WATCHER.release(self._watch)
        self._watch = _WATCHER.handle(self) if watch else None
        self._wgen = 0
        self._norm = b"/" + b"/".join(_common.components(self._raw))
        # "x/" and "x/." oblige x to be a directory; "x/.." stays in _norm
        self._dirslash = self._raw.endswith((b"/", b"/."))
        self._nplan = PLAN_UNKNOWN if self._raw[:1] == b"/" else PLAN_NEVER
        # a second __init__ starts afresh, as the pure class does
        self._value = self._failing = None
        self._resolved_at = self._good_at = _NEG_INF
        self._busy = self._tick = 0
        _settle(self, self._scope)

    cpdef double _now(self) except? -1.0:
        if self._clock is None:
            return rd_coarse_now()
        return self._clock()

    def __call__(self):
        return self._call()

    cdef inline object _call(self):
        global g_hits
        cdef double now
        if self._clock is None:
            now = rd_coarse_now()
        else:
            now = self._clock()
        if now - self._resolved_at < self._every:
            g_hits += 1
            return self._value
        return self._miss(now)

    def __repr__(self):
        return _policy.describe(self)

    def refresh(self):
        """Resolve now, whatever the age; apply ``on_error`` on failure.

        In process scope: the process's release, with no syscall."""
        if self._resolved_at == INFINITY:
            return self._value
        return self._refresh(self._now())

    cdef object _miss(self, double now):
        global g_hits
        if self._value is not None and self._every > 0:
            if self._busy == g_gen:
                g_hits += 1  # another thread refreshes: serve the cached value
                return self._value
            self._busy = g_gen
            try:
                return self._refresh(now)
            finally:
                self._busy = 0
        return self._refresh(now)

    cdef object _refresh(self, double now):
        """The healthy refresh here; during a failure episode, _policy.refresh."""
        if self._failing is not None:
            return _policy_refresh(self, now)
        _TALLY.misses += 1
        cdef long seen = self._wgen
        if self._watch is not None:
            seen = _watch_before(self)
        try:
            raw = self._resolve_now()
        except OSError as e:
            return _policy_failed(self, e, now, seen)
        self._value = _fsdecode(raw) if self._is_str else raw
        # a watch event while resolving: the value may predate it (_policy.fresh_at)
        self._resolved_at = now if self._wgen == seen else _NEG_INF
        self._good_at = now
        return self._value

    cpdef bytes _resolve_now(self):
        """One resolution, GIL released around the syscalls; raises OSError."""
        cdef char out[RD_BUF]
        cdef size_t olen = 0
        cdef int plan[RD_MAXPLAN]
        cdef int nplan = self._nplan
        cdef Proof rc = UNPROVEN
        cdef int i
        cdef const char *norm
        cdef size_t nlen
        cdef bint dirslash = self._dirslash
        if self._raw is None:
            raise TypeError("this Resolver was not initialised (Resolver.__new__ without __init__)")
        if self._cwd_errno:
            raise _common.os_error(self._cwd_errno, self._docroot)
        if self._mode != MODE_REALPATH:
            return _first_link_bytes(self._raw, self._trusted, self._docroot)
        if nplan == PLAN_NEVER or not g_openat2_ok:
            return _realpath_bytes(self._raw, self._docroot)
        if nplan == PLAN_UNKNOWN:
            # First resolution: plain realpath (3 syscalls on a deep path), then
            # guess the plan: one link where the docroot text and the answer part.
            res = _realpath_bytes(self._raw, self._docroot)
            guess = _guess_link_index(self._norm, res)
            if guess >= 0:
                self._plan[0] = guess
                self._nplan = 1
            elif guess == -1:
                self._nplan = 0
            return res
        for i in range(nplan if nplan > 0 else 0):
            plan[i] = self._plan[i]
        norm = PyBytes_AS_STRING(self._norm)
        nlen = PyBytes_GET_SIZE(self._norm)
        with nogil:
            if nplan >= 0:
                rc = _replay(norm, nlen, dirslash, plan, nplan, out, &olen)
            if rc != PROVEN and rc != NO_PROOF:
                rc = _plan_walk(norm, nlen, dirslash, plan, &nplan, out, &olen)
                if rc != PROVEN:
                    nplan = PLAN_UNKNOWN
        if rc == PROVEN:
            self._nplan = nplan
            for i in range(nplan):
                self._plan[i] = plan[i]
            return PyBytes_FromStringAndSize(out, olen)
        self._nplan = PLAN_UNKNOWN
        return _realpath_bytes(self._raw, self._docroot)


cdef int _guess_link_index(bytes norm, bytes real):
    """Index of the first component where norm and real differ: -1 if none, -3 if unsure."""
    a = norm.split(b"/")[1:] if norm != b"/" else []
    if b".." in a:
        return -3
    b = real.split(b"/")[1:] if real != b"/" else []
    cdef int i
    for i in range(len(a)):
        if i >= len(b) or a[i] != b[i]:
            return i
    return -1 if len(a) == len(b) else -3


cdef object _vectorcall_entry(object self):
    return (<Resolver>self)._call()


cdef _install_vectorcall():
    global rd_call_impl
    cdef Resolver probe = Resolver.__new__(Resolver)
    rd_call_impl = _vectorcall_entry
    rd_enable_vectorcall(Resolver, <char *>&probe._vectorcall - <char *><void *>probe)


_install_vectorcall()


# -------------------------------------------------------------------- registry

def _hits():
    return g_hits


def _syscall_counts():
    return {name: int(rd_sys[i]) for i, name in enumerate(_SYSCALL_NAMES)}


def _after_fork_in_child():
    global g_gen, g_hits
    cdef int i
    g_gen += 1
    g_hits = 0
    for i in range(RD_NSYS):
        rd_sys[i] = 0


cdef enum:
    MEMO_SIZE = 64           # keyword calls remembered by argument identity (a power of 2)

# resolve()'s keyword-call memo: slot -> (docroot, every, use_readlink, on_error, scope,
# watch, Resolver), made only from arguments of the exact plain types with an absolute
# docroot, so identical objects mean an equal key (and validation already passed).
# Emptied whenever an entry leaves the registry (_memo_clear), so it never keeps one.
cdef list _memo = [None] * MEMO_SIZE


def _memo_clear():
    cdef int i
    for i in range(MEMO_SIZE):
        _memo[i] = None


_reg = _registry.Registry(Resolver, hits=_hits, syscalls=_syscall_counts, tally=_TALLY,
                          on_fork=_after_fork_in_child, watcher=_WATCHER,
                          on_remove=_memo_clear)
cdef dict _entries = _reg.entries
cdef object _registry_key = _registry.registry_key
cdef object _add = _reg.add

set_maxsize = _reg.set_maxsize
get_maxsize = _reg.get_maxsize
stats = _reg.stats
cache_info = _reg.cache_info
clear = _reg.clear


cdef inline bint _absolute_text(object docroot):
    """docroot, an exact str or bytes, starts with '/'."""
    if type(docroot) is str:
        return len(<str>docroot) > 0 and (<str>docroot)[0] == u"/"
    return PyBytes_GET_SIZE(docroot) > 0 and PyBytes_AS_STRING(docroot)[0] == b"/"


cdef inline bint _plain(object docroot, object every, object use_readlink, object on_error,
                        object scope, object watch):
    """All arguments of the plain types, each its own key part (see registry_key), and an
    absolute docroot (a relative one's key holds the working directory)."""
    return ((type(docroot) is str or type(docroot) is bytes)
            and (type(every) is float or type(every) is int)
            and (use_readlink is False or use_readlink is True or use_readlink is None
                 or type(use_readlink) is str or type(use_readlink) is bytes)
            and type(on_error) is str and type(scope) is str
            and (watch is False or watch is True)
            and _absolute_text(docroot))


cdef Resolver _lookup(object docroot, object every, object use_readlink, object on_error,
                      object scope, object watch):
    """The registry entry for resolve()'s arguments (made and checked on a miss)."""
    cdef object key
    cdef object found
    if type(docroot) is str and every is _DEF_EVERY and use_readlink is False \
            and on_error is _DEF_ON_ERROR and scope is _DEF_SCOPE and watch is False \
            and _absolute_text(docroot):
        key = docroot
    elif _plain(docroot, every, use_readlink, on_error, scope, watch):
        # registry_key()'s first case, with C type checks (a keyword call stays fast)
        if watch is True:
            key = (docroot, every, use_readlink, on_error, scope, True)
        elif every == _DEF_EVERY and use_readlink is False and on_error == _DEF_ON_ERROR \
                and scope == _DEF_SCOPE:
            key = docroot
        else:
            key = (docroot, every, use_readlink, on_error, scope)
    else:
        key = _registry_key(docroot, every, use_readlink, on_error, scope, watch,
                            _counted_getcwd)
    try:
        found = _entries.get(key)
    except TypeError:
        found = None
    if found is None:
        found = _add(key, docroot, every, use_readlink, on_error, scope, watch)
    return <Resolver>found


def resolve(docroot, *, every=_DEF_EVERY, use_readlink=False, on_error=_DEF_ON_ERROR,
            scope=_DEF_SCOPE, watch=False):
    """resolve() with any arguments (one-argument and keyword calls take C shortcuts)."""
    global g_tick
    cdef Resolver r = _lookup(docroot, every, use_readlink, on_error, scope, watch)
    g_tick += 1
    r._tick = g_tick
    return r._call()


# named resolve for its error messages; `resolve` is rebound below to the
# vectorcall object that calls it
_resolve_general = resolve


cdef object _resolve_kw(object docroot, PyObject **vals):
    """resolve(docroot, every=..., use_readlink=..., on_error=..., scope=..., watch=...):
    the memo, then the registry (vals: the keyword values in that order, NULL when not
    given)."""
    global g_tick
    every = <object>vals[0] if vals[0] != NULL else _DEF_EVERY
    use_readlink = <object>vals[1] if vals[1] != NULL else False
    on_error = <object>vals[2] if vals[2] != NULL else _DEF_ON_ERROR
    scope = <object>vals[3] if vals[3] != NULL else _DEF_SCOPE
    watch = <object>vals[4] if vals[4] != NULL else False
    cdef size_t slot = ((<size_t><void *>docroot >> 4) ^ (<size_t><void *>every >> 4)
                        ^ (<size_t><void *>on_error >> 6)) & (MEMO_SIZE - 1)
    cdef object m = _memo[slot]
    cdef tuple t
    cdef Resolver r
    if m is not None:
        t = <tuple>m
        if t[0] is docroot and t[1] is every and t[2] is use_readlink and t[3] is on_error \
                and t[4] is scope and t[5] is watch:
            r = <Resolver>t[6]
            g_tick += 1
            r._tick = g_tick
            return r._call()
    r = _lookup(docroot, every, use_readlink, on_error, scope, watch)
    if _plain(docroot, every, use_readlink, on_error, scope, watch):
        _memo[slot] = (docroot, every, use_readlink, on_error, scope, watch, r)
    g_tick += 1
    r._tick = g_tick
    return r._call()


cdef object _resolve1(object docroot):
    """resolve(docroot) with default options: a dict lookup and the hit path.

    Only a plain absolute str or bytes is its own key (registry_key; a
    relative text never is one, so its lookup misses); others take the
    general path."""
    global g_tick
    if type(docroot) is not str and type(docroot) is not bytes:
        return _resolve_general(docroot)
    cdef PyObject *found = rd_dict_get(_entries, docroot)
    if found is NULL:
        if PyErr_Occurred() is not NULL:
            PyErr_Clear()  # a key's __eq__ raised: the general path raises it again
        return _resolve_general(docroot)
    cdef Resolver r = <Resolver>found
    g_tick += 1
    r._tick = g_tick
    return r._call()


@cython.final
cdef class _ResolveFunction:
    """The callable behind ``realdoc.resolve`` (vectorcall, see _resolve1)."""

    cdef void *_vectorcall
    cdef object __weakref__

    def __cinit__(self):
        self._vectorcall = rd_resolve_vectorcall_ptr()

    def __call__(self, *args, **kwargs):
        return _resolve_general(*args, **kwargs)

    def __repr__(self):
        return "<realdoc.resolve>"

    @property
    def __doc__(self):
        return _registry.RESOLVE_DOC

    @property
    def __name__(self):
        return "resolve"

    @property
    def __wrapped__(self):
        return _resolve_general


cdef _install_resolve():
    global rd_resolve1_impl, rd_resolve_kw_impl
    cdef _ResolveFunction f = _ResolveFunction.__new__(_ResolveFunction)
    rd_init_kwnames()
    rd_resolve1_impl = _resolve1
    rd_resolve_kw_impl = _resolve_kw
    rd_set_resolve_general(_resolve_general)
    rd_enable_vectorcall(_ResolveFunction, <char *>&f._vectorcall - <char *><void *>f)
    return f


resolve = _install_resolve()
