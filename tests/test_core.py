"""realpath() and first_link(): results and errors, on both implementations."""

from __future__ import annotations

import errno
import os
import pathlib
import socket
import threading
import time
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from conftest import _module
from helpers import (
    PATH_MAX,
    PURE,
    PathLike,
    agree,
    check_realpath,
    child_env,
    expect_os_error,
    fork_call,
    make_dirs_beyond_path_max,
    make_docroot_tree,
    make_link_chain,
    make_path_of_length,
    make_permission_tree,
    outcome,
)
from reference import libc_realpath

#: (root, www, docroot) of make_docroot_tree's layout under tmp_path
Tree = Tuple[pathlib.Path, pathlib.Path, str]


@pytest.fixture
def tree(tmp_path: pathlib.Path) -> Tree:
    docroot = make_docroot_tree(str(tmp_path))
    www = tmp_path / "www"
    (www / "releases" / "r2" / "public" / "index.html").write_text("r2")
    return tmp_path, www, docroot


# ---------------------------------------------------------------- realpath

def test_realpath_resolves_the_docroot(impl: ModuleType, tree: Tree) -> None:
    root, www, docroot = tree
    assert impl.realpath(docroot) == str(www / "releases" / "r2" / "public" / "assets")


def test_realpath_keeps_the_kind(impl: ModuleType, tree: Tree) -> None:
    root, www, docroot = tree
    expect = os.path.realpath(docroot)
    assert impl.realpath(docroot) == expect
    assert impl.realpath(os.fsencode(docroot)) == os.fsencode(expect)
    assert impl.realpath(pathlib.Path(docroot)) == expect
    assert type(impl.realpath(pathlib.Path(docroot))) is str


@pytest.mark.parametrize("features", [dict(proc=True), dict(proc=False)], ids=["proc", "walk"])
def test_realpath_same_answer_with_and_without_proc(
        impl: ModuleType, tree: Tree, features: Any) -> None:
    root, www, docroot = tree
    impl.set_features(**features)
    for p in [docroot, str(www / "current"), str(www / "current/"), str(www / "current/public/.."),
              str(www / "current/public/../../r1/public"), str(www / "current/public/index.html"),
              str(root)]:
        assert impl.realpath(p) == os.path.realpath(p), p


def test_realpath_relative(impl: ModuleType, tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    root, www, docroot = tree
    monkeypatch.chdir(www)
    assert impl.realpath("current/public") == str(www / "releases/r2/public")
    assert impl.realpath(".") == str(www)
    assert impl.realpath("current/public/assets/../../../r1") == str(www / "releases/r1")


def test_realpath_normalises_slashes_and_dots(impl: ModuleType, tree: Tree) -> None:
    root, www, docroot = tree
    messy = str(www) + "//current/./public///assets/"
    assert impl.realpath(messy) == str(www / "releases/r2/public/assets")
    assert impl.realpath("/") == "/"
    assert impl.realpath("/..") == "/"
    assert impl.realpath(b"//") == b"/"


def test_realpath_non_utf8_names_round_trip(impl: ModuleType, tmp_path: pathlib.Path) -> None:
    name = b"caf\xe9-release"
    target = os.path.join(os.fsencode(str(tmp_path)), name)
    os.mkdir(target)
    os.symlink(name, os.path.join(os.fsencode(str(tmp_path)), b"cur"))
    assert impl.realpath(os.path.join(os.fsencode(str(tmp_path)), b"cur")) == target
    as_str = os.fsdecode(os.path.join(os.fsencode(str(tmp_path)), b"cur"))
    assert impl.realpath(as_str) == os.fsdecode(target)
    assert os.fsencode(impl.realpath(as_str)) == target


@pytest.mark.parametrize("suffix", ["index.html/", "index.html/.", "index.html/..",
                                    "index.html/../index.html"])
def test_file_used_as_directory_is_not_a_directory(
        impl: ModuleType, tree: Tree, suffix: Any) -> None:
    root, www, docroot = tree
    p = str(www / "current" / "public") + "/" + suffix
    with pytest.raises(NotADirectoryError) as info:
        impl.realpath(p)
    assert info.value.errno == errno.ENOTDIR
    assert info.value.filename == p


def test_missing_dangling_and_empty(impl: ModuleType, tree: Tree) -> None:
    root, www, docroot = tree
    os.symlink("nowhere", str(www / "dangling"))
    for p in [str(www / "missing"), str(www / "dangling"), str(www / "dangling/x"),
              str(www / "missing/.."), ""]:
        with pytest.raises(FileNotFoundError) as info:
            impl.realpath(p)
        assert info.value.errno == errno.ENOENT
        assert info.value.filename == p


def test_loop_and_link_limit(impl: ModuleType, tmp_path: pathlib.Path) -> None:
    os.symlink("b", str(tmp_path / "a"))
    os.symlink("a", str(tmp_path / "b"))
    for p in [str(tmp_path / "a"), str(tmp_path / "a/x/y/z/w")]:
        with pytest.raises(OSError) as info:
            impl.realpath(p)
        assert info.value.errno == errno.ELOOP
    # a chain of exactly 40 links resolves; 41 is ELOOP, as in glibc and the kernel
    (tmp_path / "end").mkdir()
    prev = "end"
    for i in range(41):
        os.symlink(prev, str(tmp_path / f"l{i}"))
        prev = f"l{i}"
    assert impl.realpath(str(tmp_path / "l39")) == str(tmp_path / "end")
    with pytest.raises(OSError) as info:
        impl.realpath(str(tmp_path / "l40"))
    assert info.value.errno == errno.ELOOP


def test_name_too_long(impl: ModuleType, tmp_path: pathlib.Path) -> None:
    with pytest.raises(OSError) as info:
        impl.realpath(str(tmp_path) + "/" + "x" * 300)
    assert info.value.errno == errno.ENAMETOOLONG
    # a result of PATH_MAX bytes or more
    d = str(tmp_path)
    while len(d) < 4200:
        d = os.path.join(d, "d" * 200)
        try:
            os.mkdir(d)
        except OSError:
            break
    with pytest.raises(OSError) as info:
        impl.realpath(d)
    assert info.value.errno == errno.ENAMETOOLONG


def test_bad_arguments(impl: ModuleType) -> None:
    with pytest.raises(ValueError, match="null"):
        impl.realpath("/tmp/a\0b")
    with pytest.raises(ValueError, match="null"):
        impl.realpath(b"/tmp/a\0b")
    for bad in (None, 3, 1.5, ["/tmp"], object()):
        with pytest.raises(TypeError, match="str, bytes or os.PathLike"):
            impl.realpath(bad)


def test_errors_agree_between_implementations(both: Any, tree: Tree) -> None:
    c, py = both
    root, www, docroot = tree
    for p in [docroot + "/nope", docroot + "/../../index.html/x", ""]:
        errs = []
        for m in (c, py):
            with pytest.raises(OSError) as info:
                m.realpath(p)
            errs.append((type(info.value), info.value.errno, info.value.filename))
        assert errs[0] == errs[1]


# -------------------------------------------------------------- first_link

@pytest.fixture
def ab_tree(tmp_path: pathlib.Path) -> pathlib.Path:
    """Etsy's A/B scheme: www/current -> A, www/A -> releases/r12."""
    www = tmp_path / "var" / "www"
    (www / "releases" / "r12" / "htdocs").mkdir(parents=True)
    (www / "releases" / "r13" / "htdocs").mkdir(parents=True)
    os.symlink("releases/r12", str(www / "A"))
    os.symlink("releases/r13", str(www / "B"))
    os.symlink("A", str(www / "current"))
    return www


def test_first_link_follows_only_the_first_link(impl: ModuleType, ab_tree: pathlib.Path) -> None:
    www = ab_tree
    assert impl.first_link(str(www / "current/htdocs")) == str(www / "A/htdocs")
    assert impl.first_link(str(www / "current")) == str(www / "A")  # final component tested
    assert impl.first_link(str(www / "current") + "/") == str(www / "A")
    assert impl.realpath(str(www / "current/htdocs")) == str(www / "releases/r12/htdocs")


def test_first_link_with_start(impl: ModuleType, ab_tree: pathlib.Path) -> None:
    www = ab_tree
    p = str(www / "current/htdocs")
    for start in [str(www / "current"), str(www / "current") + "/", str(www), "/"]:
        assert impl.first_link(p, start=start) == str(www / "A/htdocs"), start
    assert impl.first_link(os.fsencode(p), start=os.fsencode(str(www))) == os.fsencode(
        str(www / "A/htdocs"))


@pytest.mark.parametrize("start", ["cur", "/var/ww", "relative/path"])
def test_first_link_start_must_be_a_component_prefix(
        impl: ModuleType, ab_tree: pathlib.Path, start: Any) -> None:
    p = str(ab_tree / "current/htdocs")
    bad = str(ab_tree / start) if not start.startswith(("/", "relative")) else start
    with pytest.raises(ValueError):
        impl.first_link(p, start=bad)


def test_first_link_relative_target_with_dotdot_is_normalised(
        impl: ModuleType, tmp_path: pathlib.Path) -> None:
    www = tmp_path / "var" / "www"
    (www / "release-12" / "htdocs").mkdir(parents=True)
    (www / "conf").mkdir()
    os.symlink("../www/./release-12", str(www / "current"))
    got = impl.first_link(str(www / "current/htdocs"))
    assert got == str(www / "release-12/htdocs")
    assert os.stat(got).st_ino == os.stat(str(www / "current/htdocs")).st_ino
    os.symlink("./../release-12", str(www / "conf" / "current"))
    assert impl.first_link(str(www / "conf/current/htdocs")) == str(www / "release-12/htdocs")


def test_first_link_absolute_target(impl: ModuleType, tmp_path: pathlib.Path) -> None:
    (tmp_path / "rel" / "r1" / "pub").mkdir(parents=True)
    (tmp_path / "www").mkdir()
    os.symlink(str(tmp_path / "rel" / "r1"), str(tmp_path / "www" / "current"))
    assert impl.first_link(str(tmp_path / "www/current//pub/.")) == str(tmp_path / "rel/r1/pub")


def test_first_link_without_a_link_is_the_normalised_path(
        impl: ModuleType, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert impl.first_link(str(tmp_path) + "//a/./b/") == str(tmp_path / "a/b")
    assert impl.first_link(str(tmp_path / "a/b/..")) == str(tmp_path / "a")
    monkeypatch.chdir(tmp_path)
    assert impl.first_link("a/b") == str(tmp_path / "a/b")


def test_first_link_errors(impl: ModuleType, ab_tree: pathlib.Path) -> None:
    www = ab_tree
    with pytest.raises(FileNotFoundError):
        impl.first_link(str(www / "missing/current/htdocs"))
    (www / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        impl.first_link(str(www / "file/current"))
    with pytest.raises(ValueError, match="null"):
        impl.first_link(str(www) + "\0")
    with pytest.raises(TypeError):
        impl.first_link(42)
    with pytest.raises(TypeError):
        impl.first_link(str(www), start=42)
    with pytest.raises(FileNotFoundError):
        impl.first_link("")


def test_features_can_be_switched_off(impl: ModuleType, tree: Tree) -> None:
    root, www, docroot = tree
    before = impl.features()
    old = impl.set_features(proc=False)
    assert old == before
    assert impl.features()["proc"] is False
    assert impl.realpath(docroot) == os.path.realpath(docroot)
    with pytest.raises(ValueError):
        impl.set_features(teleport=True)


def test_realpath_works_when_out_of_file_descriptors(impl: ModuleType, tree: Tree) -> None:
    """The 3-syscall route needs a descriptor; at EMFILE realpath walks instead."""
    import subprocess
    import sys
    root, www, docroot = tree
    code = f"""
import os, resource, errno
from {impl.__name__} import realpath
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
held = []
try:
    while True:
        held.append(os.open("/", os.O_RDONLY))
except OSError as e:
    assert e.errno == errno.EMFILE
assert realpath({docroot!r}) == {os.path.realpath(docroot)!r}
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=child_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ok\n"


# ======================================================== bad and edge-case input
# Wrong types, None, NUL, non-UTF-8 and surrogate-escaped names, lengths around
# PATH_MAX/NAME_MAX, 16..41-link and 10,000-link chains, loops, permission-denied
# directories (in a child running as nobody), /proc paths, a deleted working
# directory, EMFILE and a file used as a directory.  Each check runs on both
# implementations and asserts they agree; realpath is also compared with glibc
# realpath(3), with the /proc route on and off.  A watchdog ends a hung run.

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


@pytest.mark.usefixtures("watchdog")
@pytest.mark.parametrize("call,argname,none_ok", PATH_CALLS)
@pytest.mark.parametrize("value", BAD_TYPES)
def test_wrong_types_raise_type_error(
        impl: ModuleType, call: Any, argname: Any, none_ok: Any, value: Any) -> None:
    got = agree(impl, lambda m: call(m, value))
    assert got[0] == "TypeError", got
    assert got[1].startswith(f"{argname} must be str, bytes or os.PathLike, not "), got


@pytest.mark.usefixtures("watchdog")
@pytest.mark.parametrize("call,argname,none_ok", PATH_CALLS)
def test_none(impl: ModuleType, call: Any, argname: Any, none_ok: Any) -> None:
    got = agree(impl, lambda m: call(m, None))
    if none_ok:
        assert got[0] == "ok", got
    else:
        assert got == ("TypeError", f"{argname} must be str, bytes or os.PathLike, not NoneType")


@pytest.mark.usefixtures("watchdog")
@pytest.mark.parametrize("call,argname,none_ok", PATH_CALLS)
@pytest.mark.parametrize("value", ["/tm\0p", b"/tmp\0", PathLike("\0")],
                         ids=["str", "bytes", "pathlike"])
def test_nul_bytes(impl: ModuleType, call: Any, argname: Any, none_ok: Any, value: Any) -> None:
    got = agree(impl, lambda m: call(m, value))
    assert got == ("ValueError", f"{argname} contains an embedded null byte"), got


@pytest.mark.usefixtures("watchdog")
@pytest.mark.parametrize("call,argname,none_ok", PATH_CALLS)
def test_unencodable_str_is_a_value_error(
        impl: ModuleType, call: Any, argname: Any, none_ok: Any) -> None:
    # a lone high surrogate cannot be encoded even with surrogateescape
    got = agree(impl, lambda m: call(m, "/tmp/\ud800"))
    assert got[0] == "UnicodeEncodeError", got  # a ValueError subclass


@pytest.mark.usefixtures("watchdog")
def test_str_subclass_and_pathlike_accepted(impl: ModuleType, site_paths: Dict[str, str]) -> None:
    for value in (StrSub(site_paths["docroot"]), PathLike(site_paths["docroot"]),
                  pathlib.Path(site_paths["docroot"])):
        assert agree(impl, lambda m: m.realpath(value)) == ("ok", site_paths["r1"])
        assert agree(impl, lambda m: m.Resolver(value)()) == ("ok", site_paths["r1"])
        assert agree(impl, lambda m: m.resolve(value)) == ("ok", site_paths["r1"])
        assert agree(impl, lambda m: m.first_link(value)) == ("ok", site_paths["r1"])
    assert agree(impl, lambda m: m.realpath(PathLike(os.fsencode(site_paths["docroot"])))) == (
        "ok", os.fsencode(site_paths["r1"]))


@pytest.mark.usefixtures("watchdog")
@pytest.mark.parametrize("call", [
    pytest.param(lambda m, v: m.realpath(v), id="realpath"),
    pytest.param(lambda m, v: m.first_link(v), id="first_link"),
    pytest.param(lambda m, v: m.first_link(v, start=v), id="first_link-start"),
    pytest.param(lambda m, v: m.Resolver(v)(), id="Resolver"),
    pytest.param(lambda m, v: m.resolve(v, every=0), id="resolve"),
    pytest.param(lambda m, v: m.realpath(PathLike(v)), id="pathlike-of-bytes-subclass"),
])
def test_bytes_subclass_accepted(impl: ModuleType, site_paths: Dict[str, str], call: Any) -> None:
    """A bytes subclass is bytes: every function answers for it, and the
    compiled core gives the pure twin's answer."""
    value = BytesSub(os.fsencode(site_paths["docroot"]))
    got = outcome(call, impl, value)
    twin = outcome(call, PURE, value)
    assert twin[0] == "ok", twin
    assert got == twin


@pytest.mark.usefixtures("watchdog")
def test_empty_path(impl: ModuleType) -> None:
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


@pytest.mark.usefixtures("watchdog")
def test_non_utf8_and_surrogate_escaped_names(impl: ModuleType, root: str) -> None:
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


@pytest.mark.usefixtures("watchdog")
@pytest.mark.parametrize("total", [4094, 4095, 4096, 4097])
def test_path_lengths_around_path_max(impl: ModuleType, root: str, total: Any) -> None:
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


@pytest.mark.usefixtures("watchdog")
@pytest.mark.parametrize("junk", ["/" * 5000, "/." * 3000, "/a/.." * 1000],
                         ids=["slashes", "dots", "dotdots"])
def test_long_input_that_resolves_short(impl: ModuleType, root: str, junk: Any) -> None:
    os.mkdir(f"{root}/a")
    p = junk + root
    assert len(p) > PATH_MAX
    check_realpath(impl, p)
    check_realpath(impl, root + junk)


@pytest.mark.usefixtures("watchdog")
def test_huge_inputs_do_not_hang(impl: ModuleType, root: str) -> None:
    for p in ("/" * 1_000_000 + "tmp", "a/" * 500_000, "/" + "x" * 1_000_000, "../" * 300_000):
        t = time.monotonic()
        check_realpath(impl, p)
        agree(impl, lambda m: m.first_link(p))
        assert time.monotonic() - t < 20, f"{len(p)}-byte input took too long"


@pytest.mark.usefixtures("watchdog")
@pytest.mark.parametrize("n", [255, 256])
def test_component_lengths(impl: ModuleType, root: str, n: Any) -> None:
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


@pytest.mark.usefixtures("watchdog")
def test_real_path_longer_than_path_max_through_a_short_link(impl: ModuleType, root: str) -> None:
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


@pytest.mark.usefixtures("watchdog")
@pytest.mark.parametrize("n", [16, 17, 39, 40, 41, 10_000])
def test_link_chains(impl: ModuleType, root: str, n: Any, request: pytest.FixtureRequest) -> None:
    t = time.monotonic()
    top = request.getfixturevalue("chain10k") if n == 10_000 else make_link_chain(root, n)
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


@pytest.mark.usefixtures("watchdog")
def test_loops(impl: ModuleType, root: str) -> None:
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


@pytest.mark.usefixtures("watchdog")
def test_dangling_and_missing(impl: ModuleType, site_paths: Dict[str, str]) -> None:
    root = site_paths["root"]
    for p in (f"{root}/dangling", f"{root}/dangling/", f"{root}/nope", f"{root}/nope/x",
              f"{root}/releases/r1/public/nope/../.."):
        expect_os_error(check_realpath(impl, p), errno.ENOENT, p)
    assert agree(impl, lambda m: m.first_link(f"{root}/dangling/x")) == ("ok", f"{root}/missing/x")


PERMISSION_CASES = [
    "priv", "priv/x", "priv/x/y/z", "priv/..", "priv/x/..", "priv/x/../..", "lpriv", "lpriv/y/z/..",
    "priv/x/y/z/../../../../pub/a/b/c/d", "a/b/c/d/noexec", "a/b/c/d/noexec/", "a/b/c/d/noexec/.",
    "a/b/c/d/noexec/..", "a/b/c/d/noexec/../pub", "a/b/c/d/noexec/./..", "a/b/c/d/noexec/sub",
    "a/b/c/d/noexec/sub/..", "a/b/c/d/lnoexec/..", "a/b/c/d/lnoexec/../pub/",
    "noread/sub", "noread/sub/a/b/c", "noread/sub/a/b/c/../../..",
]


def _permission_checks(impl_name: str, root: str) -> List[Tuple[Any, ...]]:
    """Runs as nobody: every case through both implementations and glibc."""
    impl, pure = _module(impl_name), PURE
    out: List[Tuple[Any, ...]] = []
    os.chdir(root)
    for rel in PERMISSION_CASES:
        for p in (rel, f"{root}/{rel}"):
            want = libc_realpath(os.fsencode(p))
            for proc in (True, False):
                impl.set_features(proc=proc)
                pure.set_features(proc=proc)
                out.append((p, proc, "realpath", want, outcome(impl.realpath, p),
                            outcome(pure.realpath, p)))
            impl.set_features(proc=True)
            pure.set_features(proc=True)
            out.append((p, None, "first_link", None, outcome(impl.first_link, p),
                        outcome(pure.first_link, p)))
            for on_error in ("raise", "passthrough"):
                got = outcome(lambda: impl.Resolver(p, every=0, on_error=on_error)())
                twin = outcome(lambda: pure.Resolver(p, every=0, on_error=on_error)())
                out.append((p, on_error, "Resolver", want, got, twin))
    return out


@pytest.mark.usefixtures("watchdog")
def test_permission_denied(impl: ModuleType, root: str) -> None:
    make_permission_tree(root)
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


@pytest.mark.usefixtures("watchdog")
def test_proc_paths(impl: ModuleType, root: str) -> None:
    fx = _proc_fixture(root)
    fds, tid = fx["fds"], fx["tid"]
    task = f"/proc/self/task/{tid}"
    try:
        cases = [
            "/proc", "/proc/self", "/proc/self/", "/proc/self/cwd", "/proc/self/root",
            "/proc/self/root/proc/self/root/tmp", "/proc/self/exe", "/proc/self/exe/",
            "/proc/self/exe/..", "/proc/thread-self/cwd", f"{task}/cwd/..", f"{task}/root/tmp",
            "/proc/self/fd", f"/proc/self/fd/{fds['dir']}", f"{task}/fd/{fds['dir']}",
            f"{task}/fd/{fds['dir']}/a/b/c/d", f"/proc/self/fd/{fds['file']}",
            f"{task}/fd/{fds['file']}",
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


@pytest.mark.usefixtures("watchdog")
def test_proc_magic_link_to_a_deleted_directory_then_dotdot(impl: ModuleType, root: str) -> None:
    """``..`` after a /proc magic link to a deleted directory is ENOENT, as
    glibc and the walk (``proc=False``) say, although the kernel would climb
    out of the deleted directory on the /proc route."""
    fx = _proc_fixture(root)
    fd, tid = fx["fds"]["deleted_dir"], fx["tid"]
    try:
        for p in (f"/proc/self/fd/{fd}/../a/b/c", f"/proc/self/task/{tid}/fd/{fd}/../a"):
            check_realpath(impl, p)
    finally:
        _proc_close(fx)


@pytest.mark.usefixtures("watchdog")
def test_proc_magic_link_to_a_pipe_or_deleted_file_then_dotdot(impl: ModuleType, root: str) -> None:
    """``..`` after a /proc magic link to a pipe or a deleted file gives
    glibc's errno (ENOENT) with the /proc route on and off, not the kernel's
    ENOTDIR."""
    fx = _proc_fixture(root)
    fds, tid = fx["fds"], fx["tid"]
    try:
        for fd in (fds["pipe"], fds["deleted_file"]):
            p = f"/proc/self/task/{tid}/fd/{fd}/../a/b"
            check_realpath(impl, p)
    finally:
        _proc_close(fx)


DELETED_CWD_CASES = [".", "..", "x", "./x", "../sub", "../..", "./.", "/proc/self/cwd",
                     "/proc/self/cwd/..", "/proc/self/cwd/a/b/c/d/e"]


def _in_deleted_cwd(root: str, fn: Callable[[], Any]) -> Any:
    def child() -> Any:
        os.makedirs(f"{root}/gone/sub")
        os.chdir(f"{root}/gone/sub")
        os.rmdir(f"{root}/gone/sub")
        return fn()
    return fork_call(child)


@pytest.mark.usefixtures("watchdog")
def test_deleted_cwd(impl: ModuleType, root: str) -> None:
    os.makedirs(f"{root}/a/b/c/d/e")
    name = "cython" if impl is not PURE else "python"

    def checks() -> List[Any]:
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
        fl = [(p, outcome(m.first_link, p), outcome(PURE.first_link, p))
              for p in (".", "x", "../..")]
        res = [outcome(lambda: m.Resolver(".", every=0, on_error=oe)())
               for oe in ("raise", "stale", "passthrough")]
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


@pytest.mark.usefixtures("watchdog")
def test_deleted_cwd_relative_path_climbing_out(impl: ModuleType, root: str) -> None:
    """From a deleted working directory, a relative path of 5+ components
    that climbs out with ``..`` is ENOENT, as in glibc (getcwd fails), with
    the /proc route on and off (the kernel alone would walk ``..`` out of the
    dead directory)."""
    os.makedirs(f"{root}/a/b/c/d/e")
    name = "cython" if impl is not PURE else "python"

    def checks() -> List[Any]:
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
        assert got[0] != "ok", (
            f"realpath({p!r}) from a deleted cwd, proc={proc}: {got[1]!r}, glibc ENOENT")
        expect_os_error(got, errno.ENOENT, p)


@pytest.mark.usefixtures("watchdog")
def test_out_of_file_descriptors(impl: ModuleType, site_paths: Dict[str, str]) -> None:
    """At EMFILE the /proc route and the openat2 proof cannot get a descriptor:
    realpath, first_link and Resolver refreshes (across flips) still answer right."""
    import resource

    root, docroot = site_paths["root"], site_paths["docroot"]
    deep = docroot + "/assets/../assets"  # 5+ components: the /proc route is tried first
    name = "cython" if impl is not PURE else "python"

    def child() -> List[Any]:
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
        assert fl == ("ok", real)  # site_paths["root"] is a real path: the link is the only change
        # first_link keeps ".." after the link (it is not known to be lexical there)
        assert res == [("ok", real), ("ok", real), ("ok", real + "/assets"),
                       ("ok", real + "/assets/../assets")]


@pytest.mark.usefixtures("watchdog")
def test_docroot_that_is_a_file(impl: ModuleType, site_paths: Dict[str, str]) -> None:
    f = site_paths["file"]
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


# ------------------------------------ kernel features, PATH_MAX and deep trees

def _deep_dirs(base: str, length: int) -> str:
    """A directory under base whose real path is ``length`` bytes, with a file ``f``
    in it; the path is usable only through dir_fd or chdir past PATH_MAX."""
    deep = make_dirs_beyond_path_max(base, length)
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for c in deep[len(base) + 1:].split("/"):
            nfd = os.open(c, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        os.close(os.open("f", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    return deep


def _libc_realpath_pathmax(p: bytes) -> Tuple[Any, ...]:
    """glibc realpath(3) into a PATH_MAX buffer, as realdoc's contract reads it, as
    an :func:`outcome` (reference.libc_realpath lets glibc allocate: no length check)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.realpath.restype = ctypes.c_char_p
    libc.realpath.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    buf = ctypes.create_string_buffer(PATH_MAX)
    ctypes.set_errno(0)
    if libc.realpath(p, buf) is None:
        code = ctypes.get_errno()
        e = OSError(code, os.strerror(code), p)
        return (type(e).__name__, code, e.strerror, p)
    return ("ok", buf.value)


@pytest.fixture
def long_answer(tmp_path: pathlib.Path) -> Tuple[bytes, str]:
    """``(path, deep)``: ``path`` is short and deep (5+ components) but its answer
    ``deep`` is more than PATH_MAX bytes long: ``tmp/l`` links to a prefix of it."""
    deep = _deep_dirs(str(tmp_path), 4300)
    comps = deep[len(str(tmp_path)) + 1:].split("/")
    prefix, rest = str(tmp_path), []
    for i, c in enumerate(comps):
        if len(prefix) + 1 + len(c) >= 3900:
            rest = comps[i:]
            break
        prefix += "/" + c
    os.symlink(prefix, str(tmp_path / "l"))
    return os.fsencode(str(tmp_path / "l") + "/" + "/".join(rest)), deep


def _syscalls_of(impl: ModuleType, fn: Callable[..., Any], *args: Any) -> Dict[str, int]:
    before = impl.stats()["syscalls"]
    fn(*args)
    after = impl.stats()["syscalls"]
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def test_an_answer_past_path_max_leaves_proc_on(
        impl: ModuleType, tree: Tree, long_answer: Tuple[bytes, str]) -> None:
    """#14.2: the /proc readlink of a 4,096-byte answer fails with ENAMETOOLONG for
    that path only; the feature stays on and deep paths keep costing 3 syscalls."""
    root, www, docroot = tree
    path, deep = long_answer
    expect_os_error(_libc_realpath_pathmax(path), errno.ENAMETOOLONG, path)
    with pytest.raises(OSError) as info:
        impl.realpath(path)
    assert info.value.errno == errno.ENAMETOOLONG
    assert impl.features() == {"proc": True, "openat2": True}
    three = {"openat2": 1, "readlink": 1, "close": 1}
    assert _syscalls_of(impl, impl.realpath, docroot) == three
    r = impl.Resolver(docroot, every=0)
    r()
    r()
    assert _syscalls_of(impl, r) == three  # a refresh: prediction, or the 3-syscall route


def _seccomp_openat2(err: int, path: Optional[bytes] = None) -> None:
    """Make openat2 fail with ``err`` in this process (a forked child): for every
    call, or only when its pathname argument is the buffer of the bytes ``path``
    (a per-path refusal, as a FUSE filesystem can give; seccomp sees pointers)."""
    import ctypes
    import struct
    import sys
    if sys.byteorder != "little" or not sys.platform.startswith("linux"):
        pytest.skip("the seccomp filter is written for little-endian Linux")
    ld, jeq, ret = 0x20, 0x15, 0x06
    errno_ret, allow = 0x00050000 | err, 0x7FFF0000
    if path is None:
        prog = [(ld, 0, 0, 0), (jeq, 0, 1, 437), (ret, 0, 0, errno_ret), (ret, 0, 0, allow)]
    else:
        addr = ctypes.cast(ctypes.c_char_p(path), ctypes.c_void_p).value
        assert addr is not None
        prog = [(ld, 0, 0, 0), (jeq, 0, 5, 437),            # nr == openat2
                (ld, 0, 0, 24), (jeq, 0, 3, addr & 0xFFFFFFFF),  # args[1], low word
                (ld, 0, 0, 28), (jeq, 0, 1, addr >> 32),         # args[1], high word
                (ret, 0, 0, errno_ret), (ret, 0, 0, allow)]
    raw = b"".join(struct.pack("=HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Fprog(len(prog), ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
    assert libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) == 0, ctypes.get_errno()  # SECCOMP


@pytest.mark.parametrize("err", [errno.EPERM, errno.EINVAL], ids=["EPERM", "EINVAL"])
def test_a_per_path_openat2_refusal_leaves_openat2_on(
        impl: ModuleType, tree: Tree, err: Any) -> None:
    """#14.2: openat2 refusing one path (EPERM/EINVAL) makes that call walk; openat2
    stays on, and other deep paths keep costing 3 syscalls."""
    root, www, docroot = tree
    refused = os.fsencode(docroot)
    other = os.fsencode(str(www / "releases/r1/public/assets"))
    expect = os.fsencode(os.path.realpath(docroot))

    def child() -> Tuple[Any, ...]:
        _seccomp_openat2(err, refused)
        walked = _syscalls_of(impl, impl.realpath, refused)
        got = impl.realpath(refused)
        return got, walked, impl.features(), _syscalls_of(impl, impl.realpath, other)

    got, walked, features, calls = fork_call(child)
    assert got == expect
    # refused, probed with openat2("/") + close, then walked: one readlink a component,
    # current -> releases/r2 adding two
    assert walked == {"openat2": 2, "close": 1, "readlink": len(refused.split(b"/")) - 1 + 2}
    assert features == {"proc": True, "openat2": True}
    assert calls == {"openat2": 1, "readlink": 1, "close": 1}


@pytest.mark.parametrize("err", [errno.EPERM, errno.ENOSYS], ids=["EPERM", "ENOSYS"])
def test_a_sandbox_without_openat2_switches_it_off(impl: ModuleType, tree: Tree, err: Any) -> None:
    """A seccomp filter refusing every openat2 (the plain path "/" too): the feature
    goes off for the process and realpath walks, with the same answers."""
    root, www, docroot = tree

    def child() -> Tuple[Any, ...]:
        _seccomp_openat2(err)
        got = impl.realpath(docroot)
        return got, impl.features()["openat2"], impl.realpath(docroot)

    first, openat2_on, again = fork_call(child)
    assert first == again == os.path.realpath(docroot)
    assert openat2_on is False


def test_a_working_directory_past_path_max_is_glibc_s(
        impl: ModuleType, tmp_path: pathlib.Path) -> None:
    """#14.8: with a 4,438-byte working directory, realpath() and first_link() answer
    as glibc realpath(3) with a PATH_MAX buffer: '..' climbs lexically out of it,
    an answer of PATH_MAX bytes or more is ENAMETOOLONG."""
    (tmp_path / "short" / "a" / "b" / "c").mkdir(parents=True)
    base = str(tmp_path / "w")
    os.mkdir(base)
    deep = _deep_dirs(base, 4438)
    cases = [".", "./", "..", "../" * 20, "../" * 20 + ".", "../" * 21 + "w",
             "../" * 20 + "nope", "../" * 19 + "x/..", "f", "up/a/b/c",
             "up/a/b/c/../../a/b/c", "./up/a/b/c/" + "./" * 3]

    def child() -> Tuple[int, List[Any]]:
        os.chdir(base)
        for c in deep[len(base) + 1:].split("/"):
            os.chdir(c)
        os.symlink(str(tmp_path / "short"), "up")
        cwd = os.getcwdb()
        out = []
        for p in cases:
            b = os.fsencode(p)
            out.append((p, outcome(impl.realpath, b), _libc_realpath_pathmax(b),
                        outcome(impl.first_link, b)))
        return len(cwd), out

    cwd_len, results = fork_call(child)
    assert cwd_len == 4438
    for p, ours, libc, _fl in results:
        assert ours == libc, p
    by_case = {p: (ours, fl) for p, ours, libc, fl in results}
    climbed = by_case["../" * 20][0]
    assert climbed == ("ok", os.fsencode("/".join(deep.split("/")[:-20])))
    expect_os_error(by_case["."][0], errno.ENAMETOOLONG, b".")
    # first_link takes '..' lexically as well, and finds no link on the way up
    assert by_case["../" * 20][1] == climbed
    expect_os_error(by_case["."][1], errno.ENAMETOOLONG, b".")


@pytest.mark.parametrize("features", [dict(proc=True), dict(proc=False)], ids=["proc", "walk"])
def test_past_path_max_the_errno_is_glibc_s(
        impl: ModuleType, long_answer: Tuple[bytes, str], features: Any) -> None:
    """#14.9: a path whose walk passes PATH_MAX before a missing component or a file
    is ENAMETOOLONG, as glibc and the walk say, not the kernel's ENOENT/ENOTDIR."""
    impl.set_features(**features)
    path, deep = long_answer
    for tail in (b"/nope", b"/f/x", b"/f/", b"/nope/../.."):
        p = path + tail
        expect_os_error(_libc_realpath_pathmax(p), errno.ENAMETOOLONG, p)
        with pytest.raises(OSError) as info:
            impl.realpath(p)
        assert info.value.errno == errno.ENAMETOOLONG, p
        assert info.value.filename == p
