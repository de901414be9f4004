/* C glue of realdoc._fastpath: counted syscalls, the coarse clock, vectorcall.
 *
 * Included once, by the Cython-generated _fastpath.c (after Python.h), through
 * `cdef extern from "_fastpath.h"` in _fastpath.pyx.  Everything is static:
 * this header is not an API for other extensions.
 */
#ifndef REALDOC_FASTPATH_H
#define REALDOC_FASTPATH_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437 /* the same number on every Linux architecture */
#endif
#ifndef O_PATH
#define O_PATH 010000000
#endif
#ifndef CLOCK_MONOTONIC_COARSE
#define CLOCK_MONOTONIC_COARSE CLOCK_MONOTONIC
#endif

/* <linux/openat2.h>, spelled out so that old kernel headers still build. */
struct rd_open_how { uint64_t flags; uint64_t mode; uint64_t resolve; };
#define RD_RESOLVE_NO_MAGICLINKS 0x02
#define RD_RESOLVE_NO_SYMLINKS 0x04

/* ---- syscall counters: one slot per syscall the core issues (stats()) */

enum rd_sys_slot {
    RD_SYS_READLINK,
    RD_SYS_OPENAT2,
    RD_SYS_CLOSE,
    RD_SYS_GETCWD,
    RD_NSYS
};
static unsigned long long rd_sys[RD_NSYS];
#define RD_COUNT(slot) __atomic_add_fetch(&rd_sys[(slot)], 1ULL, __ATOMIC_RELAXED)

static ssize_t rd_readlink(const char *p, char *buf, size_t n)
{
    RD_COUNT(RD_SYS_READLINK);
    return readlink(p, buf, n);
}

/* openat2(AT_FDCWD, p, O_PATH|O_CLOEXEC, resolve): a descriptor or -1/errno. */
static int rd_openat2(const char *p, uint64_t resolve)
{
    struct rd_open_how h = { O_PATH | O_CLOEXEC, 0, resolve };
    RD_COUNT(RD_SYS_OPENAT2);
    return (int)syscall(SYS_openat2, AT_FDCWD, p, &h, sizeof h);
}

static int rd_openat2_nolinks(const char *p) { return rd_openat2(p, RD_RESOLVE_NO_SYMLINKS); }
static int rd_openat2_nomagic(const char *p) { return rd_openat2(p, RD_RESOLVE_NO_MAGICLINKS); }

static int rd_close(int fd)
{
    RD_COUNT(RD_SYS_CLOSE);
    return close(fd);
}

static char *rd_getcwd(char *buf, size_t n)
{
    RD_COUNT(RD_SYS_GETCWD);
    return getcwd(buf, n);
}

/* getcwd done by Python code (os.getcwdb, for a relative docroot): counted here. */
static void rd_count_getcwd(void) { RD_COUNT(RD_SYS_GETCWD); }

/* ---- watch mode: inotify (realdoc/_watch.py says what is watched and why)
 *
 * rd_inotify_init: inotify_init1(IN_CLOEXEC | IN_NONBLOCK).  rd_wait_readable:
 * poll() for input with no timeout (EINTR retried), -1/EBADF when the
 * descriptor was closed; the reader thread calls it without the GIL.  Not
 * Linux: every call fails with ENOSYS (watching falls back to `every`). */
#ifdef __linux__
#include <poll.h>
#include <sys/inotify.h>
#define RD_HAVE_INOTIFY 1
static int rd_inotify_init(void) { return inotify_init1(IN_CLOEXEC | IN_NONBLOCK); }
static int rd_inotify_add(int fd, const char *p, uint32_t mask)
{
    return inotify_add_watch(fd, p, mask);
}
static int rd_inotify_rm(int fd, int wd) { return inotify_rm_watch(fd, wd); }
static int rd_wait_readable(int fd)
{
    struct pollfd p;
    int rc;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    do
        rc = poll(&p, 1, -1);
    while (rc < 0 && errno == EINTR);
    if (rc > 0 && (p.revents & POLLNVAL)) {
        errno = EBADF;
        return -1;
    }
    return rc < 0 ? -1 : 0;
}
#define RD_IN_MOVED_FROM IN_MOVED_FROM
#define RD_IN_MOVED_TO IN_MOVED_TO
#define RD_IN_CREATE IN_CREATE
#define RD_IN_DELETE IN_DELETE
#define RD_IN_DELETE_SELF IN_DELETE_SELF
#define RD_IN_MOVE_SELF IN_MOVE_SELF
#define RD_IN_Q_OVERFLOW IN_Q_OVERFLOW
#define RD_IN_IGNORED IN_IGNORED
#define RD_IN_ONLYDIR IN_ONLYDIR
#else
#define RD_HAVE_INOTIFY 0
static int rd_inotify_init(void) { errno = ENOSYS; return -1; }
static int rd_inotify_add(int fd, const char *p, uint32_t mask)
{
    (void)fd; (void)p; (void)mask;
    errno = ENOSYS;
    return -1;
}
static int rd_inotify_rm(int fd, int wd) { (void)fd; (void)wd; errno = ENOSYS; return -1; }
static int rd_wait_readable(int fd) { (void)fd; errno = ENOSYS; return -1; }
#define RD_IN_MOVED_FROM 0x40
#define RD_IN_MOVED_TO 0x80
#define RD_IN_CREATE 0x100
#define RD_IN_DELETE 0x200
#define RD_IN_DELETE_SELF 0x400
#define RD_IN_MOVE_SELF 0x800
#define RD_IN_Q_OVERFLOW 0x4000
#define RD_IN_IGNORED 0x8000
#define RD_IN_ONLYDIR 0x01000000
#endif
static ssize_t rd_read(int fd, char *buf, size_t n) { return read(fd, buf, n); }

/* CLOCK_MONOTONIC_COARSE in seconds: read from the vDSO, no syscall. */
static double rd_coarse_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* "/proc/self/fd/<fd>" into buf (at least 40 bytes). */
static void rd_proc_fd_path(char *buf, int fd) { snprintf(buf, 40, "/proc/self/fd/%d", fd); }

/* ---- vectorcall entry points
 *
 * Calling a Resolver instance skips tp_call's argument tuple: rd_call_impl is
 * the Cython hit path.  realdoc.resolve with one positional argument goes
 * straight to the registry lookup (rd_resolve1_impl), one with resolve()'s
 * keywords to rd_resolve_kw_impl; any other call goes to the general
 * Python-level function. */

typedef PyObject *(*rd_callfn)(PyObject *);
typedef PyObject *(*rd_kwfn)(PyObject *, PyObject **);
static rd_callfn rd_call_impl = NULL;
static rd_callfn rd_resolve1_impl = NULL;
static rd_kwfn rd_resolve_kw_impl = NULL;
static PyObject *rd_resolve_general = NULL;
/* resolve()'s keyword names, interned, in rd_resolve_kw_impl's order. */
#define RD_NKW 5
static PyObject *rd_kw_names[RD_NKW];
static const char *const rd_kw_text[RD_NKW] = {"every", "use_readlink", "on_error", "scope",
                                               "watch"};

/* Intern the keyword names; 0, or -1 with an exception set. */
static int rd_init_kwnames(void)
{
    int i;
    for (i = 0; i < RD_NKW; i++) {
        rd_kw_names[i] = PyUnicode_InternFromString(rd_kw_text[i]);
        if (rd_kw_names[i] == NULL)
            return -1;
    }
    return 0;
}

static PyObject *rd_resolver_vectorcall(PyObject *self, PyObject *const *args,
                                        size_t nargsf, PyObject *kwnames)
{
    (void)args;
    if (PyVectorcall_NARGS(nargsf) != 0 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "a Resolver is called without arguments");
        return NULL;
    }
    return rd_call_impl(self);
}

static PyObject *rd_resolve_vectorcall(PyObject *self, PyObject *const *args,
                                       size_t nargsf, PyObject *kwnames)
{
    PyObject *vals[RD_NKW] = {NULL, NULL, NULL, NULL, NULL};
    Py_ssize_t i, nk;
    int j;
    (void)self;
    if (PyVectorcall_NARGS(nargsf) != 1)
        goto general;
    if (kwnames == NULL)
        return rd_resolve1_impl(args[0]);
    /* resolve(p, every=..., ...): keywords matched by identity (the compiler
     * interns them); anything else (a non-interned or unknown name, a
     * repeat) takes the general path, which raises or matches by value. */
    nk = PyTuple_GET_SIZE(kwnames);
    for (i = 0; i < nk; i++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, i);
        for (j = 0; j < RD_NKW && k != rd_kw_names[j]; j++)
            ;
        if (j == RD_NKW || vals[j] != NULL)
            goto general;
        vals[j] = args[1 + i];
    }
    return rd_resolve_kw_impl(args[0], vals);
general:
    return PyObject_Vectorcall(rd_resolve_general, args, nargsf, kwnames);
}

static void *rd_vectorcall_ptr(void) { return (void *)rd_resolver_vectorcall; }
static void *rd_resolve_vectorcall_ptr(void) { return (void *)rd_resolve_vectorcall; }
static void rd_set_resolve_general(PyObject *f) { Py_XINCREF(f); rd_resolve_general = f; }

/* Make instances of type t callable through the function pointer stored at
 * byte offset off of each instance. */
static void rd_enable_vectorcall(PyObject *t, Py_ssize_t off)
{
    ((PyTypeObject *)t)->tp_vectorcall_offset = off;
    ((PyTypeObject *)t)->tp_flags |= Py_TPFLAGS_HAVE_VECTORCALL;
}

#endif /* REALDOC_FASTPATH_H */
