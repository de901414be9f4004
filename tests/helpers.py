"""Plain helpers that several test files share (fixtures live in conftest.py).

* :func:`child_env`: the environment for a child Python that imports the very
  realdoc these tests imported (this checkout's ``src/`` or an installed one).
* Trees: :func:`make_docroot_tree`, :func:`make_link_chain`,
  :func:`make_path_of_length`, :func:`make_dirs_beyond_path_max`,
  :func:`make_permission_tree`.
* Outcomes compared across the two implementations: :func:`outcome`,
  :func:`agree`, :func:`expect_os_error`, :func:`check_realpath` (compiled ==
  pure twin == glibc realpath(3), with the ``/proc`` route on and off).
* :func:`fork_call`: run a function in a forked child (optionally as nobody).
"""

from __future__ import annotations

import errno
import os
import pickle
import time
import traceback
import warnings
from typing import Any, Callable, Dict, List, Tuple

import pytest
from reference import libc_realpath

import realdoc
from realdoc import _fastpath_py as PURE

PATH_MAX = 4096
NOBODY = 65534

__all__ = [
    "NOBODY", "PATH_MAX", "PURE", "PathLike", "agree", "check_realpath", "child_env",
    "expect_os_error", "fork_call", "make_dirs_beyond_path_max", "make_docroot_tree",
    "make_link_chain", "make_path_of_length", "make_permission_tree", "outcome", "tmp_leftovers",
]


# ------------------------------------------------------------ child processes

def child_env(*extra_paths: str, **overrides: str) -> Dict[str, str]:
    """``os.environ`` for a child Python that imports this very realdoc.

    PYTHONPATH becomes the parent directory of the imported ``realdoc``
    package, then ``extra_paths``, then the entries already there; every entry
    is made absolute (Python cannot start in a deleted cwd with a relative
    one, and servers run with another cwd).  ``overrides`` are set last.
    """
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(realdoc.__file__)))
    paths = [pkg_parent] + [os.path.abspath(p) for p in extra_paths]
    paths += [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths), **overrides)


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


# ---------------------------------------------------------------------- trees

def make_docroot_tree(root: str) -> str:
    """``root/www/releases/r1|r2/public/assets``, ``root/www/current -> releases/r2``;
    returns the docroot ``root/www/current/public/assets``."""
    for r in ("r1", "r2"):
        os.makedirs(os.path.join(root, "www", "releases", r, "public", "assets"))
    os.symlink("releases/r2", os.path.join(root, "www", "current"))
    return os.path.join(root, "www", "current", "public", "assets")


def make_link_chain(root: str, n: int, name: str = "ch") -> str:
    """``root/NAMEn/l{n-1} -> ... -> l0 -> target`` (a directory); returns the top link."""
    d = f"{root}/{name}{n}"
    os.makedirs(f"{d}/target")
    prev = "target"
    for i in range(n):
        os.symlink(prev, f"{d}/l{i}")
        prev = f"l{i}"
    return f"{d}/{prev}"


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


def make_permission_tree(root: str) -> None:
    """Directories that uid 65534 (nobody) may not enter or read, under ``root``.

    ``priv`` (0700, root's), ``a/b/c/d/noexec`` (readable, not searchable),
    ``noread`` (searchable, not readable), links into them, and ``mine``
    (owned by nobody, ``mine/current -> r1``).  Skips the test unless run as root.
    """
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


def tmp_leftovers(d: str) -> List[str]:
    """Names in ``d`` that look like a switch's temporary link."""
    return [n for n in os.listdir(d) if "realdoc-tmp" in n]


class PathLike:
    """An ``os.PathLike`` whose ``__fspath__`` returns ``value``, whatever it is."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __fspath__(self) -> Any:
        return self.value


# ------------------------------------------------------------------- outcomes

def outcome(fn: Callable[..., Any], *args: Any, **kw: Any) -> Tuple[Any, ...]:
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


def agree(impl: Any, call: Callable[[Any], Any]) -> Tuple[Any, ...]:
    """Outcome of call(impl), asserted equal to call(pure twin)."""
    got = outcome(call, impl)
    twin = outcome(call, PURE)
    assert got == twin, f"{impl.__name__} and the pure twin disagree: {got!r} != {twin!r}"
    return got


def expect_os_error(got: Tuple[Any, ...], code: int, filename: Any) -> None:
    """``got`` (an :func:`outcome`) is the OSError ``code`` naming ``filename``."""
    assert got[0] != "ok", f"expected errno {code}, got the answer {got[1]!r}"
    assert got[1] == code, f"expected errno {errno.errorcode[code]}, got {got!r}"
    assert got[2] == os.strerror(code)
    assert got[3] == filename and type(got[3]) is type(filename), got


def check_realpath(impl: Any, p: Any) -> Tuple[Any, ...]:
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
            assert got[0] != "ok", (
                f"realpath({p!r}) proc={proc} = {got[1]!r}, glibc: errno {want[1]}")
            assert want[1] is not None
            expect_os_error(got, want[1], p)
        results.append(got)
    assert results[0] == results[1], f"/proc route and walk differ for {p!r}: {results}"
    return results[0]


def ignore_start_response(status: str, headers: List[Tuple[str, str]],
                          exc_info: Any = None) -> Callable[[bytes], object]:
    """A WSGI ``start_response`` for calls whose status and headers a test does not check.

    Returns a ``write`` callable that drops what it is given."""
    return lambda data: None
