/* C glue of realdoc._fastpath: counted syscalls, the coarse clock, vectorcall.
 *
 * Included once, by the Cython-generated _fastpath.c (after Python.h), through
 * `cdef extern from "_fastpath.h"` in _fastpath.pyx.  Everything is static:
 * this header is not an API for other extensions.
 */
#ifndef REALDOC_FASTPATH_H
#define REALDOC_FASTPATH_H

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
 * straight to the registry lookup (rd_resolve1_impl); any other call goes to
 * the general Python-level function. */

typedef PyObject *(*rd_callfn)(PyObject *);
static rd_callfn rd_call_impl = NULL;
static rd_callfn rd_resolve1_impl = NULL;
static PyObject *rd_resolve_general = NULL;

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
    (void)self;
    if (PyVectorcall_NARGS(nargsf) == 1 && kwnames == NULL)
        return rd_resolve1_impl(args[0]);
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
