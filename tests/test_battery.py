"""Bad-input battery: every public function and CLI subcommand, on both implementations.

Wrong types, ``None``, empty, NUL bytes, non-UTF-8 bytes and surrogate-escaped
str, paths of 4095/4096/4097 bytes and components of 255/256 bytes, 40/41-link
chains, a 10,000-link chain, loops, permission-denied directories (checked in
a forked child running as nobody), ``/proc`` paths, a deleted working
directory (in a forked child), and a docroot that is a file.  Each input must
give the documented result or exception (type, ``errno``, ``filename``,
message), or the documented exit code and one-line message for the CLI; never
a crash, a hang or a wrong answer.  ``realpath`` is compared with glibc
realpath(3) through ctypes, with the ``/proc`` route on and off; every check
runs on the compiled core and on the pure twin and asserts they agree.

A watchdog (faulthandler) ends the process with a traceback if one test hangs.
"""

from __future__ import annotations

import contextlib
import errno
import faulthandler
import io
import json
import math
import os
import pathlib
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

import realdoc
from realdoc.cli import commands as cli
from realdoc._switch import SwitchConflict, switch

from conftest import _module
from reference import libc_realpath

try:
    from realdoc._context import join
except ImportError:  # pragma: no cover - written by another helper
    join = None  # type: ignore[assignment]

PURE = _module("python")
PATH_MAX = 4096
NOBODY = 65534
HANG_SECONDS = 120

# ------------------------------------------------------------------ fixtures

@pytest.fixture(autouse=True)
def _watchdog_and_clean_twin() -> Iterator[None]:
    """Kill the run with a traceback if a test hangs; reset the pure twin too."""
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    old = PURE.set_features(proc=True)
    PURE.clear()
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        PURE.set_features(**old)
        PURE.clear()


@pytest.fixture
def root() -> Iterator[str]:
    """A real (symlink-free) scratch directory readable by everyone (for nobody)."""
    d = os.path.realpath(tempfile.mkdtemp(prefix="rdbat-"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        for dirpath, dirnames, _ in os.walk(d):
            for n in dirnames:
                q = os.path.join(dirpath, n)
                try:
                    if not os.path.islink(q):
                        os.chmod(q, 0o755)
                except OSError:  # deeper than PATH_MAX: rmtree copes without it
                    pass
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def site(root: str) -> Dict[str, str]:
    """``releases/r1|r2/public``, ``current -> releases/r1``, a file, a dangling link."""
    for r in ("r1", "r2"):
        os.makedirs(f"{root}/releases/{r}/public/assets")
    os.symlink("releases/r1", f"{root}/current")
    with open(f"{root}/file", "w") as f:
        f.write("x")
    os.symlink("missing", f"{root}/dangling")
    return {
        "root": root,
        "docroot": f"{root}/current/public",
        "r1": f"{root}/releases/r1/public",
        "r2": f"{root}/releases/r2/public",
        "file": f"{root}/file",
    }


# ------------------------------------------------------------------- helpers

def outcome(fn: Callable[..., Any], *args: Any, **kw: Any) -> tuple:
    """("ok", value) or (type, errno, strerror, filename) or (type, message).

    Only OSError, ValueError and TypeError are caught: anything else (a crash
    of the argument handling, an AttributeError...) fails the test as is.
    """
    try:
        return ("ok", fn(*args, **kw))
    except OSError as e:
        assert type(e) is type(OSError(e.errno, "x")), f"{type(e)} for errno {e.errno}"
        return (type(e).__name__, e.errno, e.strerror, e.filename)
    except (ValueError, TypeError) as e:
        return (type(e).__name__, str(e))


def agree(impl: Any, call: Callable[[Any], Any]) -> tuple:
    """Outcome of call(impl), asserted equal to call(pure twin)."""
    got = outcome(call, impl)
    twin = outcome(call, PURE)
    assert got == twin, f"{impl.__name__} and the pure twin disagree: {got!r} != {twin!r}"
    return got


def expect_os_error(got: tuple, code: int, filename: Any) -> None:
    assert got[0] != "ok", f"expected errno {code}, got the answer {got[1]!r}"
    assert got[1] == code, f"expected errno {errno.errorcode[code]}, got {got!r}"
    assert got[2] == os.strerror(code)
    assert got[3] == filename and type(got[3]) is type(filename), got


def check_realpath(impl: Any, p: Any) -> tuple:
    """realpath(p): compiled/pure agree with each other and with glibc, /proc on and off."""
    raw = os.fsencode(p)
    want = libc_realpath(raw)
    results = []
    for proc in (True, False):
        impl.set_features(proc=proc)
        PURE.set_features(proc=proc)
        try:
            got = agree(impl, lambda m: m.realpath(p))
        finally:
            impl.set_features(proc=True)
            PURE.set_features(proc=True)
        if want[0] is not None:
            res = want[0] if isinstance(p, bytes) else os.fsdecode(want[0])
            assert got == ("ok", res), f"realpath({p!r}) proc={proc}: {got!r}, glibc {want!r}"
        else:
            assert got[0] != "ok", f"realpath({p!r}) proc={proc} = {got[1]!r}, glibc: errno {want[1]}"
            expect_os_error(got, want[1], p)
        results.append(got)
    assert results[0] == results[1], f"/proc route and walk differ for {p!r}: {results}"
    return results[0]


def make_path_of_length(base: str, total: int) -> str:
    """An absolute path of exactly ``total`` bytes: ``base/ddd.../ddd.../eee``."""
    p = base
    while len(p) + 1 + 200 < total - 2:
        p += "/" + "d" * 200
    return p + "/" + "e" * (total - len(p) - 1)


def make_dirs_beyond_path_max(base: str, total: int) -> str:
    """Create a directory whose real path has ``total`` bytes (past PATH_MAX if asked)."""
    path = make_path_of_length(base, total)
    rel = path[len(base) + 1:].split("/")
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for c in rel:
            try:
                os.mkdir(c, dir_fd=fd)
            except FileExistsError:
                pass
            nfd = os.open(c, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
    finally:
        os.close(fd)
    return path


def fork_call(fn: Callable[[], Any], *, as_nobody: bool = False, timeout: float = 60) -> Any:
    """Run ``fn`` in a forked child (optionally as uid/gid 65534); return its result.

    The result travels back pickled through a pipe.  An exception in the child
    is re-raised here as an AssertionError with the child's traceback; a child
    that cannot drop privileges makes the test skip with the reason.
    """
    r, w = os.pipe()
    with warnings.catch_warnings():
        # 3.12+ warns about fork() in a multi-threaded process (the watchdog is a
        # thread); the child only runs fn and _exits, touching no shared lock.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        status = 0
        try:
            os.close(r)
            try:
                if as_nobody and os.geteuid() == 0:
                    os.setgroups([])
                    os.setresgid(NOBODY, NOBODY, NOBODY)
                    os.setresuid(NOBODY, NOBODY, NOBODY)
            except OSError as e:
                payload: Any = ("skip", f"cannot drop privileges to uid {NOBODY}: {e}")
            else:
                try:
                    payload = ("ok", fn())
                except BaseException:
                    payload = ("error", traceback.format_exc())
            data = pickle.dumps(payload)
            with os.fdopen(w, "wb") as f:
                f.write(data)
        except BaseException:
            status = 70
        finally:
            os._exit(status)
    os.close(w)
    deadline = time.monotonic() + timeout
    chunks = []
    with os.fdopen(r, "rb") as f:
        chunks.append(f.read())
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("forked child hung")
        time.sleep(0.01)
    assert os.waitstatus_to_exitcode(status) == 0, f"child died: status {status}"
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "skip":
        pytest.skip(value)
    if kind == "error":
        raise AssertionError("in the forked child:\n" + value)
    return value


def realdoc_env() -> Dict[str, str]:
    """Environment for ``python -m realdoc`` that imports this very realdoc."""
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(realdoc.__file__)))
    # absolute entries only: Python cannot start in a deleted cwd with a relative one
    paths = [pkg_parent] + [os.path.abspath(p)
                            for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths))


def run_cli(*args: Any, cwd: Optional[str] = None,
            preexec: Optional[Callable[[], None]] = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "realdoc", *[os.fspath(a) for a in args]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # preexec_fn with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        return subprocess.run(argv, capture_output=True, env=realdoc_env(), cwd=cwd,
                              preexec_fn=preexec, timeout=60)


def one_error_line(stderr: bytes, prefix: bytes) -> str:
    text = stderr.decode("utf-8", "surrogateescape")
    assert stderr.endswith(b"\n") and stderr.count(b"\n") == 1, f"not one line: {stderr!r}"
    assert stderr.startswith(prefix), stderr
    return text


# ============================================================ argument types

class PathLike:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __fspath__(self) -> Any:
        return self.value


class BytesSub(bytes):
    pass


class StrSub(str):
    pass


BAD_TYPES = [
    pytest.param(1, id="int"),
    pytest.param(1.5, id="float"),
    pytest.param([], id="list"),
    pytest.param(object(), id="object"),
    pytest.param(bytearray(b"/tmp"), id="bytearray"),
    pytest.param(memoryview(b"/tmp"), id="memoryview"),
    pytest.param(PathLike(3), id="pathlike-int"),
    pytest.param(PathLike(None), id="pathlike-none"),
]

# (name, call, the argument's name in messages, None accepted?)
PATH_CALLS = [
    pytest.param(lambda m, v: m.realpath(v), "path", False, id="realpath"),
    pytest.param(lambda m, v: m.first_link(v), "path", False, id="first_link"),
    pytest.param(lambda m, v: m.first_link("/tmp", start=v), "start", True, id="first_link-start"),
    pytest.param(lambda m, v: m.Resolver(v), "docroot", False, id="Resolver"),
    pytest.param(lambda m, v: m.resolve(v), "docroot", False, id="resolve"),
    pytest.param(lambda m, v: m.resolve(v, every=0, on_error="raise"), "docroot", False,
                 id="resolve-options"),
    pytest.param(lambda m, v: m.clear(v), "prefix", True, id="clear"),
]


@pytest.mark.parametrize("call,argname,none_ok", PATH_CALLS)
@pytest.mark.parametrize("value", BAD_TYPES)
def test_wrong_types_raise_type_error(impl, call, argname, none_ok, value):
    got = agree(impl, lambda m: call(m, value))
    assert got[0] == "TypeError", got
    assert got[1].startswith(f"{argname} must be str, bytes or os.PathLike, not "), got


@pytest.mark.parametrize("call,argname,none_ok", PATH_CALLS)
def test_none(impl, call, argname, none_ok):
    got = agree(impl, lambda m: call(m, None))
    if none_ok:
        assert got[0] == "ok", got
    else:
        assert got == ("TypeError", f"{argname} must be str, bytes or os.PathLike, not NoneType")


@pytest.mark.parametrize("call,argname,none_ok", PATH_CALLS)
@pytest.mark.parametrize("value", ["/tm\0p", b"/tmp\0", PathLike("\0")], ids=["str", "bytes", "pathlike"])
def test_nul_bytes(impl, call, argname, none_ok, value):
    got = agree(impl, lambda m: call(m, value))
    assert got == ("ValueError", f"{argname} contains an embedded null byte"), got


@pytest.mark.parametrize("call,argname,none_ok", PATH_CALLS)
def test_unencodable_str_is_a_value_error(impl, call, argname, none_ok):
    # a lone high surrogate cannot be encoded even with surrogateescape
    got = agree(impl, lambda m: call(m, "/tmp/\ud800"))
    assert got[0] == "UnicodeEncodeError", got  # a ValueError subclass


@pytest.mark.parametrize("value", [
    pytest.param("1", id="str"), pytest.param(None, id="None"), pytest.param(True, id="bool"),
    pytest.param(1j, id="complex"), pytest.param(b"1", id="bytes"),
])
def test_every_wrong_type(impl, site, value):
    for call in (lambda m: m.Resolver(site["docroot"], every=value),
                 lambda m: m.resolve(site["docroot"], every=value)):
        got = agree(impl, call)
        assert got == ("TypeError", f"every must be a number of seconds, not {type(value).__name__}")


@pytest.mark.parametrize("value", [-1, -0.001, math.nan, -math.inf])
def test_every_bad_value(impl, site, value):
    for call in (lambda m: m.Resolver(site["docroot"], every=value),
                 lambda m: m.resolve(site["docroot"], every=value)):
        got = agree(impl, call)
        assert got == ("ValueError", f"every must be a number of seconds >= 0, got {value!r}")


@pytest.mark.parametrize("option,value", [
    ("every", []), ("every", {}), ("use_readlink", ["/"]), ("on_error", ["stale"]),
])
def test_resolve_unhashable_option_names_the_option(impl, site, option, value):
    """BUG (reported): resolve() with an unhashable option value raises
    ``TypeError: docroot must be str, bytes or os.PathLike, not str``, blaming
    the docroot; Resolver() with the same value names the option."""
    got = agree(impl, lambda m: m.resolve(site["docroot"], **{option: value}))
    assert got[0] in ("TypeError", "ValueError"), got
    assert not got[1].startswith("docroot must be"), got
    assert got == agree(impl, lambda m: m.Resolver(site["docroot"], **{option: value}))


def test_every_huge_and_infinite(impl, site):
    assert agree(impl, lambda m: m.Resolver(site["docroot"], every=math.inf)()) == ("ok", site["r1"])
    # an int too large for a float: both implementations answer the same way
    kinds = []
    for m in (impl, PURE):
        try:
            m.Resolver(site["docroot"], every=10 ** 400)
            kinds.append("ok")
        except (ArithmeticError, ValueError, TypeError) as e:
            kinds.append(type(e).__name__)
    assert kinds[0] == kinds[1], kinds


@pytest.mark.parametrize("value", [None, "", "STALE", "raise ", 1, b"stale"])
def test_on_error_bad_value(impl, site, value):
    got = agree(impl, lambda m: m.Resolver(site["docroot"], on_error=value))
    assert got == ("ValueError", "on_error must be one of 'stale', 'raise', 'passthrough', "
                                 f"got {value!r}")


@pytest.mark.parametrize("value,exc", [
    (1, "TypeError"), (0, "TypeError"), (1.0, "TypeError"), (b"/", "ValueError"),
    ("relative/start", "ValueError"), ("", "ValueError"), ("/not/a/prefix", "ValueError"),
])
def test_use_readlink_bad_value(impl, site, value, exc):
    got = agree(impl, lambda m: m.Resolver(site["docroot"], use_readlink=value).start)
    if value == b"/":  # a bytes start for a str docroot is fine: "/" is a prefix
        assert got[0] == "ok"
        return
    assert got[0] == exc, got


def test_use_readlink_with_relative_docroot(impl):
    got = agree(impl, lambda m: m.Resolver("rel/docroot", use_readlink=True))
    assert got == ("ValueError", "use_readlink needs an absolute docroot")


def test_clock_and_call_arguments(impl, site):
    assert agree(impl, lambda m: m.Resolver(site["docroot"], clock=3)) == (
        "TypeError", "clock must be a callable returning seconds, or None")
    r = impl.Resolver(site["docroot"])
    with pytest.raises(TypeError):
        r(1)
    with pytest.raises(TypeError):
        r(x=1)
    with pytest.raises(TypeError):
        impl.Resolver(site["docroot"], 2.0)  # options are keyword-only
    with pytest.raises(TypeError):
        impl.resolve(site["docroot"], 2.0)
    with pytest.raises(TypeError):
        impl.resolve()


@pytest.mark.parametrize("value,exc,msg", [
    (0, "ValueError", "maxsize must be >= 1, got 0"),
    (-1, "ValueError", "maxsize must be >= 1, got -1"),
    (None, "TypeError", "maxsize must be an int, not NoneType"),
    (1.5, "TypeError", "maxsize must be an int, not float"),
    (True, "TypeError", "maxsize must be an int, not bool"),
    ("3", "TypeError", "maxsize must be an int, not str"),
])
def test_set_maxsize_bad_values(impl, value, exc, msg):
    before = impl.get_maxsize()
    assert agree(impl, lambda m: m.set_maxsize(value)) == (exc, msg)
    assert impl.get_maxsize() == before


def test_set_maxsize_huge_agrees(impl):
    """BUG (reported): the compiled core raises OverflowError, the twin accepts it."""
    before, twin_before = impl.get_maxsize(), PURE.get_maxsize()
    kinds = []
    try:
        for m in (impl, PURE):
            try:
                m.set_maxsize(10 ** 20)
                kinds.append("ok")
            except (ArithmeticError, ValueError, TypeError) as e:
                kinds.append(type(e).__name__)
        assert kinds[0] == kinds[1], kinds
    finally:
        impl.set_maxsize(before)
        PURE.set_maxsize(twin_before)


def test_set_features_bad_names_and_introspection_arguments(impl):
    assert agree(impl, lambda m: m.set_features(foo=True)) == ("ValueError", "unknown feature 'foo'")
    for fn in ("stats", "cache_info", "features", "get_maxsize", "set_features"):
        for m in (impl, PURE):  # the messages are the interpreter's own: they differ
            with pytest.raises(TypeError):
                getattr(m, fn)(1)


def test_str_subclass_and_pathlike_accepted(impl, site):
    for value in (StrSub(site["docroot"]), PathLike(site["docroot"]), pathlib.Path(site["docroot"])):
        assert agree(impl, lambda m: m.realpath(value)) == ("ok", site["r1"])
        assert agree(impl, lambda m: m.Resolver(value)()) == ("ok", site["r1"])
        assert agree(impl, lambda m: m.resolve(value)) == ("ok", site["r1"])
        assert agree(impl, lambda m: m.first_link(value)) == ("ok", site["r1"])
    assert agree(impl, lambda m: m.realpath(PathLike(os.fsencode(site["docroot"])))) == (
        "ok", os.fsencode(site["r1"]))


@pytest.mark.parametrize("call", [
    pytest.param(lambda m, v: m.realpath(v), id="realpath"),
    pytest.param(lambda m, v: m.first_link(v), id="first_link"),
    pytest.param(lambda m, v: m.first_link(v, start=v), id="first_link-start"),
    pytest.param(lambda m, v: m.Resolver(v)(), id="Resolver"),
    pytest.param(lambda m, v: m.resolve(v, every=0), id="resolve"),
    pytest.param(lambda m, v: m.realpath(PathLike(v)), id="pathlike-of-bytes-subclass"),
])
def test_bytes_subclass_accepted(impl, site, call):
    """BUG (reported): a bytes subclass is bytes; the compiled core raises
    ``TypeError: Expected bytes, got BytesSub`` where the twin answers."""
    value = BytesSub(os.fsencode(site["docroot"]))
    got = outcome(call, impl, value)
    twin = outcome(call, PURE, value)
    assert twin[0] == "ok", twin
    assert got == twin


# =================================================================== empty

def test_empty_path(impl):
    for value in ("", b""):
        expect_os_error(agree(impl, lambda m: m.realpath(value)), errno.ENOENT, value)
        expect_os_error(agree(impl, lambda m: m.first_link(value)), errno.ENOENT, value)
        assert libc_realpath(b"") == (None, errno.ENOENT)
        for call in (lambda m: m.Resolver(value), lambda m: m.resolve(value)):
            assert agree(impl, call) == ("ValueError", "docroot must not be empty")
        assert agree(impl, lambda m: m.first_link("/tmp", start=value)) == (
            "ValueError", f"start must be an absolute path, got {value!r}")
        assert agree(impl, lambda m: m.Resolver("/tmp", use_readlink=value)) == (
            "ValueError", f"start must be an absolute path, got {value!r}")


def test_clear_with_empty_prefix_is_clear_all(impl, site):
    for m in (impl, PURE):
        m.resolve(site["docroot"])
        m.resolve(site["file"])
        assert m.clear("") == 2
        assert m.cache_info() == []


# ======================================================= non-UTF-8 names

def test_non_utf8_and_surrogate_escaped_names(impl, root):
    broot = os.fsencode(root)
    os.makedirs(broot + b"/rel-caf\xe9/sub\xff")
    os.symlink(b"rel-caf\xe9", broot + b"/cur\xfe")
    bpath = broot + b"/cur\xfe/sub\xff"
    spath = os.fsdecode(bpath)
    assert "\udcfe" in spath and "\udcff" in spath
    breal = broot + b"/rel-caf\xe9/sub\xff"
    assert check_realpath(impl, bpath) == ("ok", breal)
    assert check_realpath(impl, spath) == ("ok", os.fsdecode(breal))
    assert agree(impl, lambda m: m.first_link(bpath)) == ("ok", breal)
    assert agree(impl, lambda m: m.first_link(spath, start=os.fsdecode(broot + b"/cur\xfe"))) == (
        "ok", os.fsdecode(breal))
    for mode in (False, True):
        assert agree(impl, lambda m: m.Resolver(bpath, use_readlink=mode)()) == ("ok", breal)
        assert agree(impl, lambda m: m.Resolver(spath, every=0, use_readlink=mode)()) == (
            "ok", os.fsdecode(breal))
    assert agree(impl, lambda m: m.resolve(spath)) == ("ok", os.fsdecode(breal))
    assert os.fsencode(impl.resolve(spath)) == breal
    # a missing non-UTF-8 name: the error names the argument as given
    expect_os_error(check_realpath(impl, spath + "\udce9"), errno.ENOENT, spath + "\udce9")


# =============================================================== lengths

@pytest.mark.parametrize("total", [4094, 4095, 4096, 4097])
def test_path_lengths_around_path_max(impl, root, total):
    p = make_path_of_length(root, total)
    assert len(p) == total
    if total < PATH_MAX:
        os.makedirs(p)
    else:  # every component but the last exists: the length is the only problem
        os.makedirs(os.path.dirname(p))
    for arg in (p, os.fsencode(p)):
        got = check_realpath(impl, arg)
        fl = agree(impl, lambda m: m.first_link(arg))
        res = agree(impl, lambda m: m.Resolver(arg, every=0, on_error="raise")())
        if total < PATH_MAX:
            assert got == ("ok", arg) and fl == ("ok", arg) and res == ("ok", arg)
        else:
            expect_os_error(got, errno.ENAMETOOLONG, arg)
            expect_os_error(fl, errno.ENAMETOOLONG, arg)
            expect_os_error(res, errno.ENAMETOOLONG, arg)
    if total == PATH_MAX - 1:
        # the same directory with a trailing slash is PATH_MAX bytes of input
        expect_os_error(check_realpath(impl, p + "/"), errno.ENAMETOOLONG, p + "/")


@pytest.mark.parametrize("junk", ["/" * 5000, "/." * 3000, "/a/.." * 1000],
                         ids=["slashes", "dots", "dotdots"])
def test_long_input_that_resolves_short(impl, root, junk):
    os.mkdir(f"{root}/a")
    p = junk + root
    assert len(p) > PATH_MAX
    check_realpath(impl, p)
    check_realpath(impl, root + junk)


def test_huge_inputs_do_not_hang(impl, root):
    for p in ("/" * 1_000_000 + "tmp", "a/" * 500_000, "/" + "x" * 1_000_000, "../" * 300_000):
        t = time.monotonic()
        check_realpath(impl, p)
        agree(impl, lambda m: m.first_link(p))
        assert time.monotonic() - t < 20, f"{len(p)}-byte input took too long"


@pytest.mark.parametrize("n", [255, 256])
def test_component_lengths(impl, root, n):
    name = "c" * n
    p = f"{root}/{name}"
    if n == 255:
        os.mkdir(p)
    for arg in (p, name):
        cwd = os.getcwd()
        os.chdir(root)
        try:
            got = check_realpath(impl, arg)
            fl = agree(impl, lambda m: m.first_link(arg))
        finally:
            os.chdir(cwd)
        if n == 255:
            assert got == ("ok", p) and fl == ("ok", p)
        else:
            expect_os_error(got, errno.ENAMETOOLONG, arg)
            expect_os_error(fl, errno.ENAMETOOLONG, arg)


def test_real_path_longer_than_path_max_through_a_short_link(impl, root):
    long_dir = make_dirs_beyond_path_max(root, 4000)
    os.symlink(long_dir, f"{root}/short")
    fd = os.open(long_dir, os.O_RDONLY)
    try:
        os.mkdir("f" * 94, dir_fd=fd)    # real path: 4095 bytes
        os.mkdir("g" * 95, dir_fd=fd)    # real path: 4096 bytes
        os.mkdir("h" * 200, dir_fd=fd)   # real path: 4201 bytes
    finally:
        os.close(fd)
    ok = f"{root}/short/{'f' * 94}"
    assert check_realpath(impl, ok) == ("ok", long_dir + "/" + "f" * 94)
    for name in ("g" * 95, "h" * 200):
        p = f"{root}/short/{name}"
        expect_os_error(check_realpath(impl, p), errno.ENAMETOOLONG, p)
    # first_link: the link's target spliced in is 4095 / 4096 bytes
    assert agree(impl, lambda m: m.first_link(ok)) == ("ok", long_dir + "/" + "f" * 94)
    p = f"{root}/short/{'g' * 95}"
    expect_os_error(agree(impl, lambda m: m.first_link(p)), errno.ENAMETOOLONG, p)


def test_resolver_refresh_across_the_path_max_boundary(impl, root):
    """The compiled refresh splices link targets into the docroot text: check its bounds."""
    long_dir = make_dirs_beyond_path_max(root, 4000)
    fd = os.open(long_dir, os.O_RDONLY)
    try:
        os.mkdir("r1", dir_fd=fd)
        os.mkdir("r2", dir_fd=fd)
        os.mkdir("r1/" + "p" * (4095 - 4000 - 4), dir_fd=fd)   # 4095 bytes: fits
        os.mkdir("r2/" + "p" * (4095 - 4000 - 4), dir_fd=fd)
        os.mkdir("r1/" + "q" * (4096 - 4000 - 4), dir_fd=fd)   # 4096 bytes: too long
    finally:
        os.close(fd)
    os.symlink(long_dir + "/r1", f"{root}/cur")
    ok = f"{root}/cur/{'p' * 91}"
    bad = f"{root}/cur/{'q' * 92}"
    r_ok = impl.Resolver(ok, every=0, on_error="raise")
    r_bad = impl.Resolver(bad, every=0, on_error="raise")
    for step in range(6):
        target = "r1" if step % 2 == 0 else "r2"
        os.symlink(long_dir + "/" + target, f"{root}/tmp-link")
        os.replace(f"{root}/tmp-link", f"{root}/cur")
        assert outcome(r_ok) == ("ok", f"{long_dir}/{target}/{'p' * 91}")
        assert libc_realpath(os.fsencode(ok))[0] == os.fsencode(f"{long_dir}/{target}/{'p' * 91}")
        want = libc_realpath(os.fsencode(bad))
        assert want == (None, errno.ENAMETOOLONG)  # r1/qqq exists, r2/qqq does not: too long first
        expect_os_error(outcome(r_bad), errno.ENAMETOOLONG, bad)


# ========================================================== links and loops

def _chain(root: str, n: int, name: str = "ch") -> str:
    d = f"{root}/{name}{n}"
    os.makedirs(f"{d}/target")
    prev = "target"
    for i in range(n):
        os.symlink(prev, f"{d}/l{i}")
        prev = f"l{i}"
    return f"{d}/{prev}"


@pytest.fixture(scope="module")
def chain10k() -> Iterator[str]:
    """A 10,000-link chain, made once (on tmpfs when there is one: ext4 takes seconds)."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    d = os.path.realpath(tempfile.mkdtemp(prefix="rdbat-chain-", dir=base))
    try:
        yield _chain(d, 10_000)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("n", [16, 17, 39, 40, 41, 10_000])
def test_link_chains(impl, root, n, request):
    t = time.monotonic()
    top = request.getfixturevalue("chain10k") if n == 10_000 else _chain(root, n)
    d = os.path.dirname(top)
    for p in (top, top + "/", top + "/."):
        got = check_realpath(impl, p)
        if n <= 40:
            assert got == ("ok", f"{d}/target")
        else:
            expect_os_error(got, errno.ELOOP, p)
        # first_link replaces only the first link: the next one in the chain
        nxt = f"{d}/l{n - 2}" if n > 1 else f"{d}/target"
        assert agree(impl, lambda m: m.first_link(p)) == ("ok", nxt)
        assert agree(impl, lambda m: m.first_link(p, start=top)) == ("ok", nxt)
        for on_error in ("raise", "stale", "passthrough"):
            def call(m: Any) -> Any:
                r = m.Resolver(p, every=0, on_error=on_error)
                return [r(), r(), r.refresh()]  # first resolution, then refreshes
            got = agree(impl, call)
            if n <= 40:
                assert got == ("ok", [f"{d}/target"] * 3)
            elif on_error == "passthrough":
                assert got == ("ok", [p] * 3)
            else:  # "stale" without a value yet raises too
                expect_os_error(got, errno.ELOOP, p)
    assert time.monotonic() - t < 30


def test_loops(impl, root):
    os.chdir(root)
    try:
        os.symlink("loopb", "loopa")
        os.symlink("loopa", "loopb")
        os.symlink("self", "self")
        os.symlink(".", "dot")
        os.symlink("up/..", "up")
        os.mkdir("d")
        cases = ["loopa", "loopa/x", "self", "self/", f"{root}/self/..", "up",
                 f"{root}" + "/dot" * 40 + "/d", f"{root}" + "/dot" * 41 + "/d"]
        for p in cases:
            got = check_realpath(impl, p)
            if "dot" in p and p.count("/dot") == 40:
                assert got == ("ok", f"{root}/d")
            else:
                expect_os_error(got, errno.ELOOP, p)
            agree(impl, lambda m: m.first_link(p))
            got = agree(impl, lambda m: m.Resolver(p, every=0, on_error="raise")())
            assert got[0] != "ok" or p.count("/dot") == 40
        # first_link takes one step of a loop and stops: no hang, no error
        assert agree(impl, lambda m: m.first_link(f"{root}/loopa")) == ("ok", f"{root}/loopb")
        assert agree(impl, lambda m: m.first_link(f"{root}/self/x")) == ("ok", f"{root}/self/x")
    finally:
        os.chdir("/")


def test_dangling_and_missing(impl, site):
    root = site["root"]
    for p in (f"{root}/dangling", f"{root}/dangling/", f"{root}/nope", f"{root}/nope/x",
              f"{root}/releases/r1/public/nope/../.."):
        expect_os_error(check_realpath(impl, p), errno.ENOENT, p)
    assert agree(impl, lambda m: m.first_link(f"{root}/dangling/x")) == ("ok", f"{root}/missing/x")


# ================================================ permission-denied directories

def _permission_tree(root: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"needs root: the tree is given to uid {NOBODY} and the check drops to it")
    os.makedirs(f"{root}/pub/a/b/c/d")
    os.makedirs(f"{root}/priv/x/y/z")               # priv: 0700, root's: nobody is locked out
    os.symlink("priv/x", f"{root}/lpriv")
    os.chmod(f"{root}/priv", 0o700)
    os.makedirs(f"{root}/a/b/c/d/noexec/sub")       # readable, not searchable
    os.makedirs(f"{root}/a/b/c/d/pub")
    os.symlink("noexec", f"{root}/a/b/c/d/lnoexec")
    os.chmod(f"{root}/a/b/c/d/noexec", 0o644)
    os.makedirs(f"{root}/noread/sub/a/b/c")         # searchable, not readable
    os.chmod(f"{root}/noread", 0o311)
    os.makedirs(f"{root}/mine/r1/public")           # owned by nobody: it may lock itself out
    os.symlink("r1", f"{root}/mine/current")
    for dirpath, dirnames, filenames in os.walk(f"{root}/mine"):
        for n in dirnames + filenames + [""]:
            os.chown(os.path.join(dirpath, n), NOBODY, NOBODY, follow_symlinks=False)
    os.chown(f"{root}/mine/current", NOBODY, NOBODY, follow_symlinks=False)


PERMISSION_CASES = [
    "priv", "priv/x", "priv/x/y/z", "priv/..", "priv/x/..", "priv/x/../..", "lpriv", "lpriv/y/z/..",
    "priv/x/y/z/../../../../pub/a/b/c/d", "a/b/c/d/noexec", "a/b/c/d/noexec/", "a/b/c/d/noexec/.",
    "a/b/c/d/noexec/..", "a/b/c/d/noexec/../pub", "a/b/c/d/noexec/./..", "a/b/c/d/noexec/sub",
    "a/b/c/d/noexec/sub/..", "a/b/c/d/lnoexec/..", "a/b/c/d/lnoexec/../pub/",
    "noread/sub", "noread/sub/a/b/c", "noread/sub/a/b/c/../../..",
]


def _permission_checks(impl_name: str, root: str) -> list:
    """Runs as nobody: every case through both implementations and glibc."""
    impl, pure = _module(impl_name), PURE
    out = []
    os.chdir(root)
    for rel in PERMISSION_CASES:
        for p in (rel, f"{root}/{rel}"):
            want = libc_realpath(os.fsencode(p))
            for proc in (True, False):
                impl.set_features(proc=proc)
                pure.set_features(proc=proc)
                out.append((p, proc, "realpath", want, outcome(impl.realpath, p), outcome(pure.realpath, p)))
            impl.set_features(proc=True)
            pure.set_features(proc=True)
            out.append((p, None, "first_link", None, outcome(impl.first_link, p), outcome(pure.first_link, p)))
            for on_error in ("raise", "passthrough"):
                got = outcome(lambda: impl.Resolver(p, every=0, on_error=on_error)())
                twin = outcome(lambda: pure.Resolver(p, every=0, on_error=on_error)())
                out.append((p, on_error, "Resolver", want, got, twin))
    return out


def test_permission_denied(impl, root):
    _permission_tree(root)
    name = "cython" if impl is not PURE else "python"
    results = fork_call(lambda: _permission_checks(name, root), as_nobody=True)
    denied = 0
    for p, opt, what, want, got, twin in results:
        assert got == twin, (what, p, opt, got, twin)
        if what == "first_link":
            if got[0] != "ok":
                assert got[3] == p
            continue
        if what == "Resolver" and opt == "passthrough" and want[0] is None:
            assert got == ("ok", p)
            continue
        if want[0] is None:
            assert got[0] != "ok" and got[1] == want[1] and got[3] == p, (what, p, opt, got, want)
            denied += want[1] == errno.EACCES
        else:
            assert got == ("ok", os.fsdecode(want[0])), (what, p, opt, got, want)
    assert denied >= 10  # the tree really denied access


def test_permission_lost_after_a_good_resolution(impl, root):
    """Stale serves the last good value, raise raises PermissionError, then recovery."""
    _permission_tree(root)
    docroot = f"{root}/mine/current/public"
    name = "cython" if impl is not PURE else "python"

    def child() -> list:
        m = _module(name)
        stale = m.Resolver(docroot, every=0)
        loud = m.Resolver(docroot, every=0, on_error="raise")
        via = m.Resolver(docroot, every=0, on_error="passthrough")
        first = [stale(), loud(), via()]
        os.chmod(f"{root}/mine", 0o600)   # nobody owns it: drop its own search right
        locked = [outcome(stale), outcome(loud), outcome(via), outcome(m.realpath, docroot)]
        os.chmod(f"{root}/mine", 0o755)
        return [first, locked, [stale(), loud(), via()]]

    first, locked, after = fork_call(child, as_nobody=True)
    real = f"{root}/mine/r1/public"
    assert first == [real] * 3 and after == [real] * 3
    assert locked[0] == ("ok", real)
    expect_os_error(locked[1], errno.EACCES, docroot)
    assert locked[2] == ("ok", docroot)
    expect_os_error(locked[3], errno.EACCES, docroot)


def test_permission_denied_cli_and_switch(root):
    _permission_tree(root)

    def child() -> list:
        out = []
        for argv in (["resolve", f"{root}/priv/x"], ["resolve", "--use-readlink", f"{root}/priv/x/y"],
                     ["resolve", "--json", f"{root}/priv/x/y/z"]):
            err = io.StringIO()
            so = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(so):
                rc = cli.main(argv)
            out.append((argv, rc, so.getvalue(), err.getvalue()))
        out.append(outcome(lambda: switch(f"{root}/priv/newlink", f"{root}/pub")))
        out.append(outcome(lambda: switch(f"{root}/pub/newlink", f"{root}/pub/a")))
        return out

    *cli_runs, sw_priv, sw_pub = fork_call(child, as_nobody=True)
    for argv, rc, out, err in cli_runs:
        assert rc == 1 and out == "", (argv, rc, out, err)
        assert err.count("\n") == 1 and err.startswith(f"realdoc: cannot resolve {argv[-1]!r}: ")
        assert err.endswith("Permission denied [Errno 13]\n"), err
    assert sw_priv[0] == "PermissionError" and sw_priv[1] == errno.EACCES, sw_priv
    assert sw_pub[0] == "PermissionError" and sw_pub[1] == errno.EACCES, sw_pub
    assert sorted(os.listdir(f"{root}/pub")) == ["a"]  # nothing left behind


# ================================================================= /proc

def _proc_fixture(root: str) -> Dict[str, Any]:
    os.makedirs(f"{root}/a/b/c/d/e")
    os.mkdir(f"{root}/gone")
    os.makedirs(f"{root}/gone-too/sub")
    r, w = os.pipe()
    s = socket.socket()
    fds = {
        "dir": os.open(root, os.O_RDONLY),
        "deleted_dir": os.open(f"{root}/gone", os.O_RDONLY),
        "file": os.open(f"{root}/a/f", os.O_CREAT | os.O_RDWR),
        "deleted_file": os.open(f"{root}/deleted", os.O_CREAT | os.O_RDWR),
        "pipe": r, "pipe_w": w, "socket": s.fileno(),
    }
    os.rmdir(f"{root}/gone")
    os.unlink(f"{root}/deleted")
    return {"fds": fds, "socket": s, "tid": threading.get_native_id()}


def _proc_close(fx: Dict[str, Any]) -> None:
    for k, fd in fx["fds"].items():
        if k != "socket":
            os.close(fd)
    fx["socket"].close()


def test_proc_paths(impl, root):
    fx = _proc_fixture(root)
    fds, tid = fx["fds"], fx["tid"]
    task = f"/proc/self/task/{tid}"
    try:
        cases = [
            "/proc", "/proc/self", "/proc/self/", "/proc/self/cwd", "/proc/self/root",
            "/proc/self/root/proc/self/root/tmp", "/proc/self/exe", "/proc/self/exe/",
            "/proc/self/exe/..", "/proc/thread-self/cwd", f"{task}/cwd/..", f"{task}/root/tmp",
            "/proc/self/fd", f"/proc/self/fd/{fds['dir']}", f"{task}/fd/{fds['dir']}",
            f"{task}/fd/{fds['dir']}/a/b/c/d", f"/proc/self/fd/{fds['file']}", f"{task}/fd/{fds['file']}",
            f"{task}/fd/{fds['file']}/", f"/proc/self/fd/{fds['pipe']}", f"{task}/fd/{fds['pipe']}",
            f"{task}/fd/{fds['socket']}", f"/proc/self/fd/{fds['deleted_dir']}",
            f"{task}/fd/{fds['deleted_dir']}", f"{task}/fd/{fds['deleted_dir']}/",
            f"/proc/self/fd/{fds['deleted_file']}", f"{task}/fd/{fds['deleted_file']}",
            "/proc/self/ns/net", f"{task}/ns/net", "/proc/self/fd/999999", "/proc/1/cwd",
            "/proc/self/map_files", "/proc/nonexistent", "/dev/stdin", "/dev/fd/0/",
        ]
        for p in cases:
            check_realpath(impl, p)
            agree(impl, lambda m: m.first_link(p))
            agree(impl, lambda m: m.Resolver(p, every=0, on_error="raise")())
    finally:
        _proc_close(fx)


def test_proc_magic_link_to_a_deleted_directory_then_dotdot(impl, root):
    """BUG (reported): the kernel follows a /proc magic link to the deleted
    directory and ``..`` climbs out of it, so the /proc route answers a path
    where glibc (and realdoc with ``proc=False``) say ENOENT."""
    fx = _proc_fixture(root)
    fd, tid = fx["fds"]["deleted_dir"], fx["tid"]
    try:
        for p in (f"/proc/self/fd/{fd}/../a/b/c", f"/proc/self/task/{tid}/fd/{fd}/../a"):
            check_realpath(impl, p)
    finally:
        _proc_close(fx)


def test_proc_magic_link_to_a_pipe_or_deleted_file_then_dotdot(impl, root):
    """BUG (reported): through a magic link to a pipe or a deleted file, ``..``
    gives ENOTDIR from the kernel where glibc (and ``proc=False``) say ENOENT."""
    fx = _proc_fixture(root)
    fds, tid = fx["fds"], fx["tid"]
    try:
        for fd in (fds["pipe"], fds["deleted_file"]):
            p = f"/proc/self/task/{tid}/fd/{fd}/../a/b"
            check_realpath(impl, p)
    finally:
        _proc_close(fx)


# ===================================================== deleted working directory

DELETED_CWD_CASES = [".", "..", "x", "./x", "../sub", "../..", "./.", "/proc/self/cwd",
                     "/proc/self/cwd/..", "/proc/self/cwd/a/b/c/d/e"]


def _in_deleted_cwd(root: str, fn: Callable[[], Any]) -> Any:
    def child() -> Any:
        os.makedirs(f"{root}/gone/sub")
        os.chdir(f"{root}/gone/sub")
        os.rmdir(f"{root}/gone/sub")
        return fn()
    return fork_call(child)


def test_deleted_cwd(impl, root):
    os.makedirs(f"{root}/a/b/c/d/e")
    name = "cython" if impl is not PURE else "python"

    def checks() -> list:
        m = _module(name)
        out = []
        for p in DELETED_CWD_CASES + [f"{root}/a/b/c/d", f"{root}/gone"]:
            want = libc_realpath(os.fsencode(p))
            for proc in (True, False):
                m.set_features(proc=proc)
                PURE.set_features(proc=proc)
                out.append((p, proc, want, outcome(m.realpath, p), outcome(PURE.realpath, p)))
            m.set_features(proc=True)
            PURE.set_features(proc=True)
        fl = [(p, outcome(m.first_link, p), outcome(PURE.first_link, p)) for p in (".", "x", "../..")]
        res = [outcome(lambda: m.Resolver(".", every=0, on_error=oe)()) for oe in ("raise", "stale", "passthrough")]
        return [out, fl, res]

    out, fl, res = _in_deleted_cwd(root, checks)
    for p, proc, want, got, twin in out:
        assert got == twin, (p, proc, got, twin)
        if want[0] is None:
            assert got[0] != "ok" and got[1] == want[1] and got[3] == p, (p, proc, got, want)
        else:
            assert got == ("ok", os.fsdecode(want[0])), (p, proc, got, want)
    for p, got, twin in fl:
        assert got == twin
        expect_os_error(got, errno.ENOENT, p)
    expect_os_error(res[0], errno.ENOENT, ".")
    expect_os_error(res[1], errno.ENOENT, ".")
    assert res[2] == ("ok", ".")


def test_deleted_cwd_relative_path_climbing_out(impl, root):
    """BUG (reported): from a deleted working directory, a relative path of 5+
    components that climbs out with ``..`` resolves through the /proc route
    (the kernel walks ``..`` from the dead directory) while glibc fails in
    getcwd with ENOENT, and so does realdoc with ``proc=False``."""
    os.makedirs(f"{root}/a/b/c/d/e")
    name = "cython" if impl is not PURE else "python"

    def checks() -> list:
        m = _module(name)
        out = []
        for p in ("../../a/b/c/d", "../../a/b/c/d/e", "./../../a/b/c/d/"):
            want = libc_realpath(os.fsencode(p))
            for proc in (True, False):
                m.set_features(proc=proc)
                out.append((p, proc, want, outcome(m.realpath, p)))
            m.set_features(proc=True)
        return out

    for p, proc, want, got in _in_deleted_cwd(root, checks):
        assert want == (None, errno.ENOENT)
        assert got[0] != "ok", f"realpath({p!r}) from a deleted cwd, proc={proc}: {got[1]!r}, glibc ENOENT"
        expect_os_error(got, errno.ENOENT, p)


def test_deleted_cwd_cli(root):
    os.makedirs(f"{root}/gone")

    def pre() -> None:
        os.chdir(f"{root}/gone")
        os.rmdir(f"{root}/gone")

    for args in (["."], ["--use-readlink", "x"], ["--json", ".."]):
        os.makedirs(f"{root}/gone", exist_ok=True)
        proc = run_cli("resolve", *args, preexec=pre)
        assert proc.returncode == 1, proc
        assert proc.stdout == b""
        one_error_line(proc.stderr, f"realdoc: cannot resolve {args[-1]!r}: ".encode())
        assert proc.stderr.endswith(b"No such file or directory [Errno 2]\n")


def test_deleted_cwd_switch(root):
    os.makedirs(f"{root}/rel")

    def child() -> tuple:
        os.makedirs(f"{root}/gone")
        os.chdir(f"{root}/gone")
        os.rmdir(f"{root}/gone")
        return outcome(lambda: switch("current", f"{root}/rel"))

    got = fork_call(child)
    assert got[0] == "FileNotFoundError" and got[1] == errno.ENOENT, got


# ================================================== out of file descriptors

def test_out_of_file_descriptors(impl, site):
    """At EMFILE the /proc route and the openat2 proof cannot get a descriptor:
    realpath, first_link and Resolver refreshes (across flips) still answer right."""
    import resource

    root, docroot = site["root"], site["docroot"]
    deep = docroot + "/assets/../assets"  # 5+ components: the /proc route is tried first
    name = "cython" if impl is not PURE else "python"

    def child() -> list:
        m = _module(name)
        rs = [m.Resolver(p, every=0, on_error="raise", use_readlink=u)
              for p in (docroot, deep) for u in (False, True)]
        for r in rs:
            r()  # plans made while descriptors are available
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(64, soft), hard))
        fds = []
        try:
            while True:
                fds.append(os.open("/", os.O_RDONLY))
        except OSError as e:
            assert e.errno == errno.EMFILE
        out = []
        for i in range(4):
            os.symlink(f"releases/r{1 + i % 2}", f"{root}/.tmp-link")
            os.replace(f"{root}/.tmp-link", f"{root}/current")
            out.append((libc_realpath(os.fsencode(docroot)), libc_realpath(os.fsencode(deep)),
                        outcome(m.realpath, docroot), outcome(m.realpath, deep),
                        outcome(m.first_link, docroot), [outcome(r) for r in rs]))
        for fd in fds:
            os.close(fd)
        return out

    for want, want_deep, got, got_deep, fl, res in fork_call(child):
        real = os.fsdecode(want[0])
        assert os.fsdecode(want_deep[0]) == real + "/assets"
        assert got == ("ok", real) and got_deep == ("ok", real + "/assets")
        assert fl == ("ok", real)  # site["root"] is a real path: the link is the only change
        # first_link keeps ".." after the link (it is not known to be lexical there)
        assert res == [("ok", real), ("ok", real), ("ok", real + "/assets"),
                       ("ok", real + "/assets/../assets")]


# ========================================================= a docroot that is a file

def test_docroot_that_is_a_file(impl, site):
    f = site["file"]
    assert check_realpath(impl, f) == ("ok", f)
    for p in (f + "/", f + "/.", f + "/..", f + "/x", f + "/x/.."):
        expect_os_error(check_realpath(impl, p), errno.ENOTDIR, p)
        expect_os_error(agree(impl, lambda m: m.first_link(p)), errno.ENOTDIR, p)
    assert agree(impl, lambda m: m.Resolver(f)()) == ("ok", f)
    for on_error in ("raise", "stale"):
        got = agree(impl, lambda m: m.Resolver(f + "/", on_error=on_error)())
        expect_os_error(got, errno.ENOTDIR, f + "/")
    assert agree(impl, lambda m: m.Resolver(f + "/", on_error="passthrough")()) == ("ok", f + "/")
    expect_os_error(agree(impl, lambda m: m.resolve(f + "/public")), errno.ENOTDIR, f + "/public")


def test_docroot_link_flipped_to_a_file(impl, site):
    root, docroot = site["root"], site["docroot"]

    def flip(target: str) -> None:
        os.symlink(target, f"{root}/tmp-link")
        os.replace(f"{root}/tmp-link", f"{root}/current")

    for m in (impl, PURE):
        flip("releases/r1")
        rs = {oe: m.Resolver(docroot, every=0, on_error=oe) for oe in ("stale", "raise", "passthrough")}
        for mode in (True,):
            rs["first_link"] = m.Resolver(docroot, every=0, use_readlink=mode, on_error="raise")
        assert [r() for r in rs.values()] == [site["r1"]] * 4
        flip("file")
        assert rs["stale"]() == site["r1"]
        expect_os_error(outcome(rs["raise"]), errno.ENOTDIR, docroot)
        assert rs["passthrough"]() == docroot
        # first_link replaces "current" and does not test what follows
        assert rs["first_link"]() == f"{root}/file/public"
        flip("releases/r2")
        assert [r() for r in rs.values()] == [site["r2"]] * 4


def test_docroot_that_is_a_file_cli(site):
    proc = run_cli("resolve", site["file"] + "/")
    assert proc.returncode == 1 and proc.stdout == b""
    one_error_line(proc.stderr, b"realdoc: cannot resolve ")
    assert proc.stderr.endswith(b": Not a directory [Errno 20]\n")


# ==================================================================== join

@pytest.mark.skipif(join is None, reason="realdoc._context.join is not there yet")
class TestJoin:
    def test_types(self):
        for args in [(None,), ("/r", None), ("/r", 1), (1,), ("/r", b"a"), (b"/r", "a"),
                     ("/r", "a", b"b"), ("/r", bytearray(b"a"))]:
            with pytest.raises(TypeError):
                join(*args)

    def test_nul(self):
        for args in [("/r\0", "a"), ("/r", "a\0"), (b"/r", b"a\0b"), ("/r", "a", "\0")]:
            with pytest.raises(ValueError, match="NUL"):
                join(*args)

    def test_refuses_to_leave_the_root(self):
        for part in ["/etc", "//etc", "..", "a/../b", "a/..", "../a", "./..", "a/./../..", "a//.."]:
            with pytest.raises(ValueError):
                join("/srv/www/r1", part)
            with pytest.raises(ValueError):
                join(b"/srv/www/r1", os.fsencode(part))
            with pytest.raises(ValueError):
                join(pathlib.Path("/srv/www/r1"), pathlib.PurePosixPath("x"), part)

    def test_lexical_results(self):
        assert join("/r") == "/r"
        assert join("/r", "") == "/r"
        assert join("/r", ".", "./.") == "/r"
        assert join("/r/", "a//b/./c/") == "/r/a/b/c"
        assert join("/", "a") == "/a"
        assert join("/r", "...", ".. ", "a\\..") == "/r/.../.. /a\\.."
        assert join(b"/r", b"caf\xe9", b"\xff") == b"/r/caf\xe9/\xff"
        assert join("/r", "caf\udce9") == "/r/caf\udce9"
        long = "x" * 5000
        assert join("/r", long) == "/r/" + long  # lexical: no length limit
        assert join(pathlib.Path("/r"), "x") == "/r/x"

    def test_relative_root_stays_relative(self):
        assert join("r", "a") == "r/a"

    def test_empty_root(self):
        """BUG (reported): join("", "etc/passwd") returns "/etc/passwd"."""
        for root, part in (("", "etc/passwd"), (b"", b"etc")):
            try:
                res = join(root, part)
            except ValueError:
                continue
            assert not res.startswith(os.sep if isinstance(res, str) else os.sep.encode()), (
                f"join({root!r}, {part!r}) = {res!r} left the (empty) root")


# =================================================================== switch

@pytest.fixture
def deploy(root: str) -> str:
    for r in ("r1", "r2"):
        os.makedirs(f"{root}/releases/{r}")
    os.symlink("releases/r1", f"{root}/current")
    os.mkdir(f"{root}/adir")
    with open(f"{root}/afile", "w"):
        pass
    return root


def _leftovers(d: str) -> List[str]:
    return [n for n in os.listdir(d) if "realdoc-tmp" in n]


@pytest.mark.parametrize("kwargs,exc,msg", [
    (dict(link=b"/x/current", target="/x"), TypeError, "link must be str or os.PathLike, not bytes"),
    (dict(link=PathLike(b"/x/current"), target="/x"), TypeError, "link must be a str path, not bytes"),
    (dict(link=None, target="/x"), TypeError, "link must be str or os.PathLike, not NoneType"),
    (dict(link="/x/current", target=1), TypeError, "target must be str or os.PathLike, not int"),
    (dict(link="/x/current", target="/x", expect=b"r1"), TypeError,
     "expect must be str or os.PathLike, not bytes"),
    (dict(link="/x/current", target="/x", relative=1), TypeError, "relative must be a bool or None, not int"),
    (dict(link="/x/current", target="/x", ab="yes"), TypeError, "ab must be a bool, not str"),
    (dict(link="/x/current", target="/x", allow_missing=None), TypeError,
     "allow_missing must be a bool, not NoneType"),
    (dict(link="", target="/x"), ValueError, "link must not be empty"),
    (dict(link="/x/current", target=""), ValueError, "target must not be empty"),
    (dict(link="/x/cur\0rent", target="/x"), ValueError, "link must not contain NUL"),
    (dict(link="/x/current", target="/\0"), ValueError, "target must not contain NUL"),
    (dict(link="/", target="/x"), ValueError, "link must name a symlink, not '/'"),
    (dict(link="..", target="/x"), ValueError, "link must name a symlink, not '..'"),
])
def test_switch_bad_arguments(kwargs, exc, msg):
    with pytest.raises(exc) as ei:
        switch(**kwargs)
    assert str(ei.value) == msg


def test_switch_file_system_errors(deploy):
    d = deploy
    cases = [
        (dict(link=f"{d}/adir", target=f"{d}/releases/r2"), errno.EISDIR, f"{d}/adir"),
        (dict(link=f"{d}/afile", target=f"{d}/releases/r2"), errno.EEXIST, f"{d}/afile"),
        (dict(link=f"{d}/nodir/current", target=f"{d}/releases/r2"), errno.ENOENT, f"{d}/nodir"),
        (dict(link=f"{d}/current", target=f"{d}/releases/r9"), errno.ENOENT, f"{d}/releases/r9"),
        (dict(link=f"{d}/afile/current", target=f"{d}/releases/r2"), errno.ENOTDIR, f"{d}/afile"),
        (dict(link=f"{d}/" + "l" * 256, target=f"{d}/releases/r2"), errno.ENAMETOOLONG, None),
        (dict(link=f"{d}/current", target=f"{d}/" + "t" * 256), errno.ENAMETOOLONG, f"{d}/" + "t" * 256),
    ]
    for kwargs, code, filename in cases:
        got = outcome(lambda: switch(**kwargs))
        assert got[0] != "ok" and got[1] == code, (kwargs, got)
        if filename is not None:
            assert got[3] == filename, (kwargs, got)
        assert os.readlink(f"{d}/current") == "releases/r1"
        assert _leftovers(d) == []


def test_switch_conflict_and_names(deploy):
    d = deploy
    with pytest.raises(SwitchConflict) as ei:
        switch(f"{d}/current", f"{d}/releases/r2", expect="releases/r9")
    assert ei.value.actual == "releases/r1" and ei.value.expected == "releases/r9"
    assert os.readlink(f"{d}/current") == "releases/r1"
    with pytest.raises(ValueError, match="the link or one of its letters"):
        switch(f"{d}/current", f"{d}/current")
    with pytest.raises(ValueError, match="may not be named A or B"):
        switch(f"{d}/A", f"{d}/releases/r2", ab=True)
    # 255-byte names, non-UTF-8 names: fine
    long = "l" * 255
    res = switch(f"{d}/{long}", f"{d}/releases/r2")
    assert res.old is None and os.readlink(f"{d}/{long}") == "releases/r2"
    os.mkdir(os.fsencode(d) + b"/releases/caf\xe9")
    res = switch(f"{d}/current", os.fsdecode(os.fsencode(d) + b"/releases/caf\xe9"))
    assert os.readlink(os.fsencode(d) + b"/current") == b"releases/caf\xe9"
    assert _leftovers(d) == []


# ===================================================================== CLI

CLI_USAGE = [
    [], ["frobnicate"], ["resolve"], ["resolve", "a", "b"], ["resolve", "--bogus", "x"],
    ["switch"], ["switch", "only-link"], ["switch", "--relative", "--absolute", "l", "t"],
    ["switch", "l", "t", "--expect"], ["resolve", "--json=1", "x"],
]


@pytest.mark.parametrize("argv", CLI_USAGE, ids=lambda a: " ".join(a) or "(none)")
def test_cli_usage_errors(argv):
    proc = run_cli(*argv)
    assert proc.returncode == 2, proc
    assert proc.stdout == b""
    last = proc.stderr.decode().rstrip("\n").split("\n")[-1]
    assert last.startswith("realdoc") and ": error: " in last, proc.stderr
    assert b"Traceback" not in proc.stderr


def test_cli_resolution_errors(site, chain10k):
    root = site["root"]
    top41 = _chain(root, 41)
    top10k = chain10k
    os.symlink("self", f"{root}/self")
    long4096 = make_path_of_length(root, 4096)
    os.makedirs(os.path.dirname(long4096))
    cases = [
        (["resolve", ""], "No such file or directory [Errno 2]"),
        (["resolve", f"{root}/nope"], "No such file or directory [Errno 2]"),
        (["resolve", f"{root}/dangling"], "No such file or directory [Errno 2]"),
        (["resolve", site["file"] + "/"], "Not a directory [Errno 20]"),
        (["resolve", top41], "Too many levels of symbolic links [Errno 40]"),
        (["resolve", top10k], "Too many levels of symbolic links [Errno 40]"),
        (["resolve", f"{root}/self"], "Too many levels of symbolic links [Errno 40]"),
        (["resolve", long4096], "File name too long [Errno 36]"),
        (["resolve", f"{root}/" + "c" * 256], "File name too long [Errno 36]"),
        (["resolve", "--use-readlink", long4096], "File name too long [Errno 36]"),
        (["resolve", "--json", f"{root}/nope"], "No such file or directory [Errno 2]"),
        (["resolve", "--use-readlink", "relative", site["docroot"]], "start must be an absolute path, got 'relative'"),
        (["resolve", "--use-readlink", f"{root}/cur", site["docroot"]], "is not a component-wise prefix"),
        (["resolve", "--use-readlink", "/", "relative/path"], "start needs an absolute path"),
        (["resolve", "a\udcff"], "No such file or directory [Errno 2]"),
    ]
    for argv, tail in cases:
        t = time.monotonic()
        proc = run_cli(*argv)
        assert time.monotonic() - t < 30
        assert proc.returncode == 1, (argv, proc)
        assert proc.stdout == b"", argv
        line = one_error_line(proc.stderr, b"realdoc: cannot resolve ")
        assert tail in line, (argv, line)
    # the path is quoted with repr: a newline in it cannot split the message
    proc = run_cli("resolve", f"{root}/two\nlines")
    assert proc.returncode == 1
    one_error_line(proc.stderr, b"realdoc: cannot resolve ")


def test_cli_non_utf8_and_long_paths(site):
    root = os.fsencode(site["root"])
    os.makedirs(root + b"/rel-caf\xe9/d\xff")
    os.symlink(b"rel-caf\xe9", root + b"/cur\xfe")
    proc = run_cli("resolve", root + b"/cur\xfe/d\xff")
    assert proc.returncode == 0, proc
    assert proc.stdout == root + b"/rel-caf\xe9/d\xff\n"
    proc = run_cli("resolve", "--json", root + b"/cur\xfe/d\xff")
    assert proc.returncode == 0, proc
    assert json.loads(proc.stdout)["result"] == os.fsdecode(root + b"/rel-caf\xe9/d\xff")
    p4095 = make_path_of_length(site["root"], 4095)
    os.makedirs(p4095)
    proc = run_cli("resolve", p4095)
    assert proc.returncode == 0 and proc.stdout == p4095.encode() + b"\n"
    proc = run_cli("resolve", "/" * 6000 + site["root"].lstrip("/"))
    assert proc.returncode == 0 and proc.stdout == site["root"].encode() + b"\n"


def test_cli_switch_errors(deploy):
    d = deploy
    cases = [
        (["switch", f"{d}/current", f"{d}/releases/r9"], 1, "realdoc: cannot switch "),
        (["switch", f"{d}/adir", f"{d}/releases/r2"], 1, "realdoc: cannot switch "),
        (["switch", f"{d}/afile", f"{d}/releases/r2"], 1, "realdoc: cannot switch "),
        (["switch", "", f"{d}/releases/r2"], 1, "realdoc: cannot switch ''"),
        (["switch", "/", f"{d}/releases/r2"], 1, "realdoc: cannot switch '/'"),
        (["switch", f"{d}/nodir/current", f"{d}/releases/r2"], 1, "realdoc: cannot switch "),
        (["switch", f"{d}/" + "l" * 256, f"{d}/releases/r2"], 1, "realdoc: cannot switch "),
        (["switch", f"{d}/current", f"{d}/releases/r2", "--expect", "releases/r9"], 3,
         "realdoc: switch refused: "),
        (["switch", f"{d}/current", f"{d}/releases/r2", "--ab", "--expect", "nope"], 3,
         "realdoc: switch refused: "),
    ]
    for argv, rc, prefix in cases:
        proc = run_cli(*argv)
        assert proc.returncode == rc, (argv, proc)
        assert proc.stdout == b""
        one_error_line(proc.stderr, prefix.encode())
        assert os.readlink(f"{d}/current") == "releases/r1"
        assert _leftovers(d) == []
