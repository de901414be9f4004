"""Syscall counts, measured with strace in a child process between two markers.

These pin the counts that docs/design-syscalls.md states.
"""

from __future__ import annotations

import collections
import functools
import os
import tempfile
from types import ModuleType
from typing import Iterator, Tuple

import pytest
from helpers import child_env, make_docroot_tree

from realdoc.testing import count_syscalls_in_child
from realdoc.testing.plugin import require_strace

ALIASES = {"readlinkat": "readlink", "open": "openat"}


def counts(code: str, setup: str) -> collections.Counter[str]:
    require_strace()
    trace = count_syscalls_in_child(code, setup=setup, env=child_env())
    out: collections.Counter[str] = collections.Counter()
    for name, n in trace.counts.items():
        if n:
            out[ALIASES.get(name, name)] += n
    return out


def setup_for(impl_name: str, extra: str = "") -> str:
    mod = "_fastpath" if impl_name == "cython" else "_fastpath_py"
    return f"from realdoc import {mod} as M\nimport ctypes\n{extra}"


#: (root, www, docroot)
DocrootTree = Tuple[str, str, str]


@pytest.fixture(scope="module")
def docroot_tree() -> Iterator[DocrootTree]:
    """``/tmp/rdXXXX/www/current/public/assets``: six components, one link to
    the two-component target ``releases/r2`` (the docroot case of the docs)."""
    root = tempfile.mkdtemp(prefix="rd", dir="/tmp")
    docroot = make_docroot_tree(root)
    www = os.path.join(root, "www")
    os.symlink("releases/r1", os.path.join(www, "A"))
    os.symlink("A", os.path.join(www, "chain"))          # chain -> A -> releases/r1
    yield root, www, docroot
    import shutil
    shutil.rmtree(root)


def name_of(impl: ModuleType) -> str:
    return "python" if impl.__name__.endswith("_py") else "cython"


@functools.lru_cache(maxsize=None)
def libc_counts(path: str) -> collections.Counter[str]:
    setup = ("import ctypes\nlibc = ctypes.CDLL(None)\nlibc.realpath.restype = ctypes.c_void_p\n"
             f"P = {os.fsencode(path)!r}\nbuf = ctypes.create_string_buffer(8192)\n"
             "libc.realpath(P, buf)")
    return counts("libc.realpath(P, buf)", setup)  # cached: shared by both implementations


def test_realpath_docroot_case_is_three_syscalls(
        docroot_tree: DocrootTree, impl: ModuleType) -> None:
    impl_name = name_of(impl)
    root, www, docroot = docroot_tree
    got = counts("M.realpath(P)", setup_for(impl_name, f"P = {docroot!r}\nM.realpath(P)"))
    assert got == {"openat2": 1, "readlink": 1, "close": 1}
    assert sum(libc_counts(docroot).values()) == 8


def test_realpath_never_more_syscalls_than_libc(
        docroot_tree: DocrootTree, impl: ModuleType) -> None:
    impl_name = name_of(impl)
    root, www, docroot = docroot_tree
    # short and long, one link, two-level, dots, and no link at all
    paths = [docroot, root, os.path.join(www, "current"), os.path.join(www, "chain"),
             os.path.join(www, "chain/public/assets"),
             os.path.join(www, "current/public/../public/"),
             "/"]
    for p in paths:
        ours = counts("M.realpath(P)", setup_for(impl_name, f"P = {p!r}\nM.realpath(P)"))
        theirs = libc_counts(p)
        assert sum(ours.values()) <= sum(theirs.values()), (p, ours, theirs)
        assert "getcwd" not in ours  # absolute paths never ask for the cwd


def test_first_link_syscalls(docroot_tree: DocrootTree, impl: ModuleType) -> None:
    impl_name = name_of(impl)
    root, www, docroot = docroot_tree
    link = os.path.join(www, "current")
    setup = setup_for(impl_name, f"P = {docroot!r}\nS = {link!r}\nM.first_link(P, start=S)")
    assert counts("M.first_link(P, start=S)", setup) == {"readlink": 1}
    # without start: one readlink per component up to and including the link
    n = len([c for c in link.split("/") if c])
    assert counts("M.first_link(P)", setup) == {"readlink": n}


def test_resolver_refresh_and_hit(docroot_tree: DocrootTree, impl: ModuleType) -> None:
    impl_name = name_of(impl)
    root, www, docroot = docroot_tree
    setup = setup_for(impl_name, f"R = M.Resolver({docroot!r}, every=0)\nR(); R()\n"
                                 f"H = M.Resolver({docroot!r}, every=3600)\nH()\n"
                                 f"M.resolve({docroot!r})\nP = {docroot!r}")
    refresh = counts("R()", setup)
    assert sum(refresh.values()) <= 3
    assert refresh == {"readlink": 1, "openat2": 1, "close": 1}  # prediction, or the /proc route
    assert counts("for _ in range(100): H()", setup) == {}
    assert counts("for _ in range(100): M.resolve(P)", setup) == {}


def test_compiled_refresh_keeps_the_chain(docroot_tree: DocrootTree, impl: ModuleType) -> None:
    if impl.__name__.endswith("_py"):
        pytest.skip("prediction is the compiled core's")
    root, www, docroot = docroot_tree
    chain = os.path.join(www, "chain/public/assets")
    setup = setup_for("cython", f"R = M.Resolver({chain!r}, every=0)\nR(); R(); R()")
    got = counts("R()", setup)
    assert got == {"readlink": 2, "openat2": 1, "close": 1}
    assert sum(got.values()) <= sum(libc_counts(chain).values())
