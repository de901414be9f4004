"""Differential property tests: compiled == pure == libc realpath(3) on random trees."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any, Callable, Optional, Tuple

from conftest import _module
from hypothesis import HealthCheck, example, given, settings, strategies as st
from reference import libc_realpath, ref_first_link


def outcome(fn: Callable[[Any], Any], p: Any) -> Tuple[Any, Optional[int]]:
    try:
        return fn(p), None
    except OSError as e:
        return None, e.errno


def outcome_any(fn: Callable[[Any], Any], p: Any) -> Tuple[Any, ...]:
    try:
        return fn(p), None
    except (OSError, ValueError) as e:
        return None, type(e).__name__, getattr(e, "errno", None)


NAMES = ["a", "b", "c"]
comp = st.sampled_from(NAMES + [".", "..", ""])
rel_target = st.lists(st.sampled_from(NAMES + [".", ".."]), min_size=1, max_size=4).map("/".join)
entry = st.tuples(
    st.lists(st.sampled_from(NAMES), min_size=1, max_size=3),         # where
    st.sampled_from(["dir", "dir", "file", "link"]),                    # what
    st.one_of(rel_target, rel_target.map(lambda t: "ABS/" + t), st.just("ABS")),  # link target
)
tree_spec = st.lists(entry, min_size=1, max_size=14)
query = st.tuples(
    st.sampled_from(["abs", "abs", "rel"]),
    st.lists(comp, min_size=0, max_size=6),
    st.booleans(),  # trailing slash
)


def build(root: str, spec: Any) -> None:
    for where, kind, target in spec:
        p = os.path.join(root, *where)
        parent = os.path.realpath(os.path.dirname(p))
        if parent != root and not parent.startswith(root + "/") or os.path.lexists(p):
            continue  # never write through a link that may lead outside the tree
        try:
            if kind == "dir":
                os.makedirs(p, exist_ok=True)
            elif kind == "file":
                with open(p, "w") as f:
                    f.write("x")
            else:
                os.symlink(target.replace("ABS", root, 1) if target.startswith("ABS") else target,
                           p)
        except OSError:
            pass  # parent is a file or a link, or the name exists: skip


def make_path(root: str, q: Any) -> bytes:
    kind, comps, slash = q
    text = "/".join(comps)
    if slash:
        text += "/"
    if kind == "abs":
        text = root + "/" + text
    return os.fsencode(text)


SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


@SETTINGS
@given(spec=tree_spec, queries=st.lists(query, min_size=1, max_size=8), proc=st.booleans())
@example(spec=[(["a"], "link", "b"), (["b"], "link", "a")], queries=[("abs", ["a", "x"], False)],
         proc=True)
@example(spec=[(["a"], "file", "")], queries=[("abs", ["a", "..", "a"], False),
                                               ("abs", ["a"], True)], proc=True)
def test_realpath_matches_libc_and_twin(spec: Any, queries: Any, proc: Any) -> None:
    compiled, pure = _module("cython"), _module("python")
    root = os.path.realpath(tempfile.mkdtemp(prefix="rdprop"))
    cwd = os.getcwd()
    old_c = compiled.set_features(proc=proc)
    old_p = pure.set_features(proc=proc)
    try:
        build(root, spec)
        os.chdir(root)
        for q in queries:
            p = make_path(root, q)
            if not p:
                continue
            want = libc_realpath(p)
            got_c = outcome(compiled.realpath, p)
            got_p = outcome(pure.realpath, p)
            assert got_c == want, (p, got_c, want)
            assert got_p == want, (p, got_p, want)
            as_str = outcome(compiled.realpath, os.fsdecode(p))
            assert as_str == (None if want[0] is None else os.fsdecode(want[0]), want[1])
            if want[0] is not None and sys.version_info >= (3, 10):  # strict= is 3.10+
                assert os.path.realpath(p, strict=True) == want[0]
    finally:
        os.chdir(cwd)
        compiled.set_features(**old_c)
        pure.set_features(**old_p)
        shutil.rmtree(root)


@SETTINGS
@given(spec=tree_spec, queries=st.lists(query, min_size=1, max_size=8))
def test_first_link_matches_reference_and_twin(spec: Any, queries: Any) -> None:
    compiled, pure = _module("cython"), _module("python")
    root = os.path.realpath(tempfile.mkdtemp(prefix="rdprop"))
    cwd = os.getcwd()
    try:
        build(root, spec)
        os.chdir(root)
        for q in queries:
            p = make_path(root, q)
            if not p:
                continue
            got_c = outcome(compiled.first_link, p)
            got_p = outcome(pure.first_link, p)
            assert got_c == got_p, (p, got_c, got_p)
            if p.startswith(b"/"):
                parts = p.split(b"/")
                for cut in range(1, len(parts) + 1):
                    start = b"/".join(parts[:cut]) or b"/"
                    for s in (start, start + b"/", start + b"x"):
                        a = outcome_any(lambda q: compiled.first_link(q, start=s), p)
                        b = outcome_any(lambda q: pure.first_link(q, start=s), p)
                        assert a == b, (p, s, a, b)
            if libc_realpath(p)[0] is None:
                continue
            ref = ref_first_link(p)
            assert got_c == (ref, None), (p, got_c, ref)
            assert os.stat(got_c[0]).st_ino == os.stat(p).st_ino
            assert os.stat(got_c[0]).st_dev == os.stat(p).st_dev
    finally:
        os.chdir(cwd)
        shutil.rmtree(root)


TARGETS = ["releases/r1", "releases/r2", "A", "B", "ABS/releases/r1", "ABS/B",
           "./releases/../releases/r2",
           "nowhere", "releases/r1/file", "../www/releases/r2", "current"]


@SETTINGS
@given(steps=st.lists(st.tuples(st.sampled_from(["current", "A", "B"]), st.sampled_from(TARGETS)),
                      min_size=1, max_size=12),
       tail=st.sampled_from(["", "/public", "/public/", "/public/.", "/public/..", "/public/x"]))
def test_resolver_refresh_equals_realpath_after_any_retarget(steps: Any, tail: Any) -> None:
    """Refresh by prediction (compiled) and plain refresh (pure) always give realpath's
    answer, or its error, whatever the links are switched to."""
    compiled, pure = _module("cython"), _module("python")
    root = os.path.realpath(tempfile.mkdtemp(prefix="rdprop"))
    try:
        www = os.path.join(root, "www")
        for r in ("r1", "r2"):
            os.makedirs(os.path.join(www, "releases", r, "public", "x"))
        open(os.path.join(www, "releases", "r1", "file"), "w").close()
        os.symlink("releases/r2", os.path.join(www, "current"))
        os.symlink("releases/r1", os.path.join(www, "A"))
        os.symlink("releases/r2", os.path.join(www, "B"))
        docroot = os.path.join(www, "current") + tail
        resolvers = [m.Resolver(docroot, every=0, on_error="raise") for m in (compiled, pure)]
        for name, target in steps:
            link = os.path.join(www, name)
            tmp = link + ".tmp"
            os.symlink(target.replace("ABS", www, 1) if target.startswith("ABS") else target, tmp)
            os.replace(tmp, link)
            raw = libc_realpath(os.fsencode(docroot))
            want = (None if raw[0] is None else os.fsdecode(raw[0]), raw[1])
            for r in resolvers:
                for _ in range(2):  # the second call replays the plan
                    assert outcome(lambda _p: r(), None) == want, (steps, tail)
    finally:
        shutil.rmtree(root)
