"""realpath() and first_link(): results and errors, on both implementations."""

from __future__ import annotations

import errno
import os
import pathlib

import pytest

from conftest import make_docroot_tree


@pytest.fixture
def tree(tmp_path):
    docroot = make_docroot_tree(str(tmp_path))
    www = tmp_path / "www"
    (www / "releases" / "r2" / "public" / "index.html").write_text("r2")
    return tmp_path, www, docroot


# ---------------------------------------------------------------- realpath

def test_realpath_resolves_the_docroot(impl, tree):
    root, www, docroot = tree
    assert impl.realpath(docroot) == str(www / "releases" / "r2" / "public" / "assets")


def test_realpath_keeps_the_kind(impl, tree):
    root, www, docroot = tree
    expect = os.path.realpath(docroot)
    assert impl.realpath(docroot) == expect
    assert impl.realpath(os.fsencode(docroot)) == os.fsencode(expect)
    assert impl.realpath(pathlib.Path(docroot)) == expect
    assert type(impl.realpath(pathlib.Path(docroot))) is str


@pytest.mark.parametrize("features", [dict(proc=True), dict(proc=False)], ids=["proc", "walk"])
def test_realpath_same_answer_with_and_without_proc(impl, tree, features):
    root, www, docroot = tree
    impl.set_features(**features)
    for p in [docroot, str(www / "current"), str(www / "current/"), str(www / "current/public/.."),
              str(www / "current/public/../../r1/public"), str(www / "current/public/index.html"), str(root)]:
        assert impl.realpath(p) == os.path.realpath(p), p


def test_realpath_relative(impl, tree, monkeypatch):
    root, www, docroot = tree
    monkeypatch.chdir(www)
    assert impl.realpath("current/public") == str(www / "releases/r2/public")
    assert impl.realpath(".") == str(www)
    assert impl.realpath("current/public/assets/../../../r1") == str(www / "releases/r1")


def test_realpath_normalises_slashes_and_dots(impl, tree):
    root, www, docroot = tree
    messy = str(www) + "//current/./public///assets/"
    assert impl.realpath(messy) == str(www / "releases/r2/public/assets")
    assert impl.realpath("/") == "/"
    assert impl.realpath("/..") == "/"
    assert impl.realpath(b"//") == b"/"


def test_realpath_non_utf8_names_round_trip(impl, tmp_path):
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
def test_file_used_as_directory_is_not_a_directory(impl, tree, suffix):
    root, www, docroot = tree
    p = str(www / "current" / "public") + "/" + suffix
    with pytest.raises(NotADirectoryError) as info:
        impl.realpath(p)
    assert info.value.errno == errno.ENOTDIR
    assert info.value.filename == p


def test_missing_dangling_and_empty(impl, tree):
    root, www, docroot = tree
    os.symlink("nowhere", str(www / "dangling"))
    for p in [str(www / "missing"), str(www / "dangling"), str(www / "dangling/x"),
              str(www / "missing/.."), ""]:
        with pytest.raises(FileNotFoundError) as info:
            impl.realpath(p)
        assert info.value.errno == errno.ENOENT
        assert info.value.filename == p


def test_loop_and_link_limit(impl, tmp_path):
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


def test_name_too_long(impl, tmp_path):
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


def test_bad_arguments(impl):
    with pytest.raises(ValueError, match="null"):
        impl.realpath("/tmp/a\0b")
    with pytest.raises(ValueError, match="null"):
        impl.realpath(b"/tmp/a\0b")
    for bad in (None, 3, 1.5, ["/tmp"], object()):
        with pytest.raises(TypeError, match="str, bytes or os.PathLike"):
            impl.realpath(bad)


def test_errors_agree_between_implementations(both, tree):
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
def ab_tree(tmp_path):
    """Etsy's A/B scheme: www/current -> A, www/A -> releases/r12."""
    www = tmp_path / "var" / "www"
    (www / "releases" / "r12" / "htdocs").mkdir(parents=True)
    (www / "releases" / "r13" / "htdocs").mkdir(parents=True)
    os.symlink("releases/r12", str(www / "A"))
    os.symlink("releases/r13", str(www / "B"))
    os.symlink("A", str(www / "current"))
    return www


def test_first_link_follows_only_the_first_link(impl, ab_tree):
    www = ab_tree
    assert impl.first_link(str(www / "current/htdocs")) == str(www / "A/htdocs")
    assert impl.first_link(str(www / "current")) == str(www / "A")  # final component tested
    assert impl.first_link(str(www / "current") + "/") == str(www / "A")
    assert impl.realpath(str(www / "current/htdocs")) == str(www / "releases/r12/htdocs")


def test_first_link_with_start(impl, ab_tree):
    www = ab_tree
    p = str(www / "current/htdocs")
    for start in [str(www / "current"), str(www / "current") + "/", str(www), "/"]:
        assert impl.first_link(p, start=start) == str(www / "A/htdocs"), start
    assert impl.first_link(os.fsencode(p), start=os.fsencode(str(www))) == os.fsencode(
        str(www / "A/htdocs"))


@pytest.mark.parametrize("start", ["cur", "/var/ww", "relative/path"])
def test_first_link_start_must_be_a_component_prefix(impl, ab_tree, start):
    p = str(ab_tree / "current/htdocs")
    bad = str(ab_tree / start) if not start.startswith(("/", "relative")) else start
    with pytest.raises(ValueError):
        impl.first_link(p, start=bad)


def test_first_link_relative_target_with_dotdot_is_normalised(impl, tmp_path):
    www = tmp_path / "var" / "www"
    (www / "release-12" / "htdocs").mkdir(parents=True)
    (www / "conf").mkdir()
    os.symlink("../www/./release-12", str(www / "current"))
    got = impl.first_link(str(www / "current/htdocs"))
    assert got == str(www / "release-12/htdocs")
    assert os.stat(got).st_ino == os.stat(str(www / "current/htdocs")).st_ino
    os.symlink("./../release-12", str(www / "conf" / "current"))
    assert impl.first_link(str(www / "conf/current/htdocs")) == str(www / "release-12/htdocs")


def test_first_link_absolute_target(impl, tmp_path):
    (tmp_path / "rel" / "r1" / "pub").mkdir(parents=True)
    (tmp_path / "www").mkdir()
    os.symlink(str(tmp_path / "rel" / "r1"), str(tmp_path / "www" / "current"))
    assert impl.first_link(str(tmp_path / "www/current//pub/.")) == str(tmp_path / "rel/r1/pub")


def test_first_link_without_a_link_is_the_normalised_path(impl, tmp_path, monkeypatch):
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert impl.first_link(str(tmp_path) + "//a/./b/") == str(tmp_path / "a/b")
    assert impl.first_link(str(tmp_path / "a/b/..")) == str(tmp_path / "a")
    monkeypatch.chdir(tmp_path)
    assert impl.first_link("a/b") == str(tmp_path / "a/b")


def test_first_link_errors(impl, ab_tree):
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


def test_features_can_be_switched_off(impl, tree):
    root, www, docroot = tree
    before = impl.features()
    old = impl.set_features(proc=False)
    assert old == before
    assert impl.features()["proc"] is False
    assert impl.realpath(docroot) == os.path.realpath(docroot)
    with pytest.raises(ValueError):
        impl.set_features(teleport=True)


def test_realpath_works_when_out_of_file_descriptors(tree):
    """The 3-syscall route needs a descriptor; at EMFILE realpath walks instead."""
    import subprocess
    import sys
    import realdoc
    root, www, docroot = tree
    code = f"""
import os, resource, errno
from realdoc import _fastpath_py as P
mods = [P]
try:
    from realdoc import _fastpath as C
    mods.append(C)
except ImportError:
    pass
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
held = []
try:
    while True:
        held.append(os.open("/", os.O_RDONLY))
except OSError as e:
    assert e.errno == errno.EMFILE
for m in mods:
    assert m.realpath({docroot!r}) == {os.path.realpath(docroot)!r}, m
print("ok", len(mods))
"""
    pkg_root = os.path.dirname(os.path.dirname(realdoc.__file__))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=pkg_root))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")
