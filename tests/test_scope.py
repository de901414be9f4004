"""scope= on Resolver, resolve() and the middlewares; REALDOC_SCOPE.

A pin lasts for the life of a process, so every test that pins does it in a
forked child (helpers.fork_call), on a real deploy tree flipped with rename(2).
"""

from __future__ import annotations

import math
import os
import pathlib
from typing import Any, Dict, List, Tuple

import pytest
from helpers import fork_call, ignore_start_response

import realdoc
from realdoc import _config
from realdoc.asgi import RealdocMiddleware as AsgiMiddleware
from realdoc.wsgi import RealdocMiddleware as WsgiMiddleware


def make_deploy(root: pathlib.Path) -> Tuple[str, str, str, str]:
    """``root/current -> releases/r1``, ``r2`` beside it, ``root/content``.

    Returns (current, r1, r2, content) as real absolute paths."""
    root = pathlib.Path(os.path.realpath(root))
    for r in ("r1", "r2"):
        (root / "releases" / r / "static").mkdir(parents=True)
        (root / "releases" / r / "static" / "page.txt").write_text(r)
    (root / "content").mkdir()
    os.symlink("releases/r1", root / "current")
    return (str(root / "current"), str(root / "releases" / "r1"),
            str(root / "releases" / "r2"), str(root / "content"))


def flip(current: str, target: str) -> None:
    """Point ``current`` at ``target`` with rename(2)."""
    tmp = current + ".new"
    os.symlink(target, tmp)
    os.rename(tmp, current)


def syscalls(impl: Any) -> int:
    return sum(impl.stats()["syscalls"].values())


# --------------------------------------------------------------- arguments

@pytest.mark.parametrize("bad, exc", [("Auto", ValueError), ("", ValueError),
                                      ("proc", ValueError), (None, TypeError),
                                      (1, TypeError), (b"auto", TypeError)])
def test_bad_scope_is_refused(impl: Any, tmp_path: pathlib.Path, bad: Any, exc: type) -> None:
    with pytest.raises(exc, match="scope"):
        impl.Resolver(str(tmp_path), scope=bad)
    with pytest.raises(exc, match="scope"):
        impl.resolve(str(tmp_path), scope=bad)
    assert impl.cache_info() == []


def test_default_scope_is_auto(impl: Any, tmp_path: pathlib.Path) -> None:
    r = impl.Resolver(str(tmp_path))
    assert r.scope == "auto"
    assert r.effective_scope == "request"  # this process is not pinned
    assert "scope='auto'" in repr(r) and "effective_scope='request'" in repr(r)


def test_request_scope_is_todays_behaviour(impl: Any, tmp_path: pathlib.Path) -> None:
    current, r1, r2, _ = make_deploy(tmp_path)
    r = impl.Resolver(current + "/static", scope="request", every=0)
    assert r() == r1 + "/static"
    flip(current, r2)
    assert r() == r2 + "/static"
    assert (r.scope, r.effective_scope) == ("request", "request")


def test_process_scope_unpinned_raises_runtime_error(impl: Any, tmp_path: pathlib.Path) -> None:
    current, _, _, _ = make_deploy(tmp_path)
    with pytest.raises(RuntimeError, match="pin_process"):
        impl.Resolver(current + "/static", scope="process")
    for _ in range(2):  # resolve() never stores a failed construction: each call raises
        with pytest.raises(RuntimeError, match="pin_process"):
            impl.resolve(current + "/static", scope="process")
    assert impl.cache_info() == []


def test_auto_unpinned_follows_the_request(impl: Any, tmp_path: pathlib.Path) -> None:
    current, r1, r2, _ = make_deploy(tmp_path)
    assert impl.resolve(current, every=0) == r1
    flip(current, r2)
    assert impl.resolve(current, every=0) == r2


def test_registry_key_includes_scope(impl: Any, tmp_path: pathlib.Path) -> None:
    d = str(tmp_path)
    impl.resolve(d)
    impl.resolve(d, scope="auto")
    impl.resolve(d, scope="request")
    rows = impl.cache_info()
    assert sorted(row["scope"] for row in rows) == ["auto", "request"]
    assert all(row["effective_scope"] == "request" for row in rows)


# ------------------------------------------------------- in a pinned process

def test_process_scope_maps_under_the_release_once(impl: Any, tmp_path: pathlib.Path) -> None:
    current, r1, r2, _ = make_deploy(tmp_path)

    def child() -> Dict[str, Any]:
        realdoc.pin_process(current, rollover=False)
        flip(current, r2)  # the process stays on r1
        before = syscalls(impl)
        r = impl.Resolver(current + "/static", scope="process", every=0)
        b = impl.Resolver((current + "/static").encode(), scope="process")
        got = [r() for _ in range(5)] + [r.refresh()]
        hits = impl.stats()["hits"]
        return {"got": got, "bytes": b(), "syscalls": syscalls(impl) - before,
                "hits": hits, "scope": (r.scope, r.effective_scope), "repr": repr(r),
                "age": r.age, "expires_in": r.expires_in,
                "resolve": impl.resolve(current + "/static", scope="process", every=0)}

    out = fork_call(child)
    assert out["got"] == [r1 + "/static"] * 6
    assert out["bytes"] == (r1 + "/static").encode()
    assert out["resolve"] == r1 + "/static"
    assert out["syscalls"] == 0
    assert out["hits"] >= 5
    assert out["scope"] == ("process", "process")
    assert "scope='process'" in out["repr"] and "effective_scope='process'" in out["repr"]
    assert out["age"] == 0.0 and out["expires_in"] == math.inf


def test_process_scope_maps_lexically(impl: Any, tmp_path: pathlib.Path) -> None:
    """Not resolved: a path under app_dir maps even when it does not exist (yet)."""
    current, r1, _, _ = make_deploy(tmp_path)

    def child() -> Tuple[str, str, str]:
        realdoc.pin_process(current, rollover=False)
        os.chdir(os.path.dirname(current))  # a relative docroot is taken from the cwd
        return (impl.Resolver(current, scope="process")(),
                impl.Resolver(current + "/not/there", scope="process")(),
                impl.Resolver("current/static/.", scope="process")())

    assert fork_call(child) == (r1, r1 + "/not/there", r1 + "/static")


def test_process_scope_outside_app_dir_raises_value_error(impl: Any,
                                                          tmp_path: pathlib.Path) -> None:
    current, _, _, content = make_deploy(tmp_path)

    def child() -> Tuple[List[str], Any]:
        realdoc.pin_process(current, rollover=False)
        msgs = []
        for docroot in (content, current + "x", current + "/../content"):
            try:
                impl.Resolver(docroot, scope="process")
            except ValueError as e:
                msgs.append(str(e))
        try:
            impl.resolve(content, scope="process")
        except ValueError as e:
            msgs.append(str(e))
        return msgs, impl.cache_info()

    msgs, rows = fork_call(child)
    assert len(msgs) == 4 and all("not under the pinned app_dir" in m for m in msgs)
    assert rows == []


def test_auto_after_pin(impl: Any, tmp_path: pathlib.Path) -> None:
    """Built after the pin: process scope under app_dir, request scope elsewhere."""
    current, r1, r2, content = make_deploy(tmp_path)
    os.symlink("content", tmp_path / "shared")

    def child() -> Dict[str, Any]:
        realdoc.pin_process(current, rollover=False)
        flip(current, r2)
        code = impl.Resolver(current + "/static", every=0)
        files = impl.Resolver(str(tmp_path / "shared"), every=0)
        first = (code(), files(), impl.resolve(current + "/static", every=0))
        os.remove(tmp_path / "shared")
        os.symlink(r2, tmp_path / "shared")  # content deployed apart moves on
        return {"first": first, "then": (code(), files()),
                "scopes": [(r.scope, r.effective_scope) for r in (code, files)],
                "rows": [(row["scope"], row["effective_scope"]) for row in impl.cache_info()]}

    out = fork_call(child)
    assert out["first"] == (r1 + "/static", content, r1 + "/static")
    assert out["then"] == (r1 + "/static", r2)
    assert out["scopes"] == [("auto", "process"), ("auto", "request")]
    assert out["rows"] == [("auto", "process")]


def test_auto_built_and_used_before_pin_switches_at_pin(impl: Any,
                                                        tmp_path: pathlib.Path) -> None:
    current, r1, r2, content = make_deploy(tmp_path)

    def child() -> Dict[str, Any]:
        r = impl.Resolver(current + "/static", every=math.inf)  # never refreshes by itself
        other = impl.Resolver(content, every=math.inf)
        seen = [r(), impl.resolve(current + "/static")]
        scopes = [r.effective_scope]
        flip(current, r2)
        seen += [r(), impl.resolve(current + "/static")]  # still r1: cached, request scope
        realdoc.pin_process(current, rollover=False)  # pins r2, the release current names
        before = syscalls(impl)
        seen += [r(), impl.resolve(current + "/static"), r.refresh()]
        flip(current, r1)
        seen += [r(), impl.resolve(current + "/static")]
        scopes += [r.effective_scope, other.effective_scope]
        return {"seen": seen, "scopes": scopes, "syscalls": syscalls(impl) - before,
                "other": other()}

    out = fork_call(child)
    s1, s2 = r1 + "/static", r2 + "/static"
    assert out["seen"] == [s1, s1, s1, s1, s2, s2, s2, s2, s2]
    assert out["scopes"] == ["request", "process", "request"]
    assert out["syscalls"] == 0
    assert out["other"] == content


def test_auto_failing_before_pin_recovers_at_pin(impl: Any, tmp_path: pathlib.Path) -> None:
    """A docroot that did not exist before the pin maps at the pin (no stored failure)."""
    current, r1, _, _ = make_deploy(tmp_path)

    def child() -> Tuple[str, str]:
        r = impl.Resolver(current + "/later", on_error="raise")
        try:
            r()
        except FileNotFoundError:
            pass
        else:
            raise AssertionError("expected FileNotFoundError")
        realdoc.pin_process(current, rollover=False)
        return r(), r.effective_scope

    assert fork_call(child) == (r1 + "/later", "process")


# ---------------------------------------------------------------- middlewares

def wsgi_app(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
    start_response("200 OK", [])
    return [realdoc.docroot().encode()]


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    return None


def test_middlewares_take_scope(tmp_path: pathlib.Path) -> None:
    current, r1, r2, _ = make_deploy(tmp_path)
    pairs: Tuple[Tuple[Any, Any], ...] = ((WsgiMiddleware, wsgi_app), (AsgiMiddleware, asgi_app))
    for cls, app in pairs:
        mw = cls(app, current, scope="request")
        assert mw.resolver.scope == "request"
        assert cls(app, current).resolver.scope == "auto"
        with pytest.raises(RuntimeError, match="pin_process"):
            cls(app, current, scope="process")
        with pytest.raises(ValueError, match="scope"):
            cls(app, current, scope="sometimes")

    def child() -> Tuple[List[bytes], List[bytes], str]:
        realdoc.pin_process(current, rollover=False)
        flip(current, r2)
        mw = WsgiMiddleware(wsgi_app, current + "/static", every=0)
        body = mw({}, ignore_start_response)
        req = WsgiMiddleware(wsgi_app, current + "/static", every=0, scope="request")
        return list(body), list(req({}, ignore_start_response)), repr(mw)

    auto_body, request_body, text = fork_call(child)
    assert auto_body == [(r1 + "/static").encode()]
    assert request_body == [(r2 + "/static").encode()]
    assert "scope='auto'" in text and "effective_scope='process'" in text


# ----------------------------------------------------------- REALDOC_SCOPE

@pytest.mark.parametrize("text, scope", [("auto", "auto"), (" Request ", "request"),
                                         ("PROCESS", "process"), ("", "auto")])
def test_env_scope_is_parsed(text: str, scope: str) -> None:
    opts = _config.options("/srv", None, None, "stale", environ={"REALDOC_SCOPE": text})
    assert opts.scope == scope
    assert opts.sources["scope"] == ("default" if not text else "REALDOC_SCOPE")


def test_env_scope_code_wins() -> None:
    opts = _config.options("/srv", None, None, "stale", environ={"REALDOC_SCOPE": "process"},
                           scope="request")
    assert (opts.scope, opts.sources["scope"]) == ("request", "code")


@pytest.mark.parametrize("text", ["always", "proc", "1", "request,process"])
def test_env_scope_bad_value_names_the_variable(text: str) -> None:
    with pytest.raises(ValueError, match="REALDOC_SCOPE"):
        _config.options("/srv", None, None, "stale", environ={"REALDOC_SCOPE": text})


def test_env_scope_reaches_the_middleware(tmp_path: pathlib.Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    current, _, _, _ = make_deploy(tmp_path)
    monkeypatch.setenv("REALDOC_SCOPE", "request")
    assert WsgiMiddleware(wsgi_app, current).resolver.scope == "request"
    monkeypatch.setenv("REALDOC_SCOPE", "process")
    with pytest.raises(RuntimeError, match="REALDOC_SCOPE"):  # unpinned; the variable named
        AsgiMiddleware(asgi_app, current)
    monkeypatch.setenv("REALDOC_SCOPE", "nope")
    with pytest.raises(ValueError, match="REALDOC_SCOPE"):
        WsgiMiddleware(wsgi_app, current)


def test_a_second_init_with_request_scope_is_not_switched_at_pin(impl: Any,
                                                                 tmp_path: pathlib.Path) -> None:
    current, r1, r2, _ = make_deploy(tmp_path)

    def child() -> Tuple[str, str]:
        r = impl.Resolver(current, every=0)  # auto, unpinned: waits for a pin
        r.__init__(current, every=0, scope="request")
        realdoc.pin_process(current, rollover=False)
        flip(current, r2)
        return r(), r.effective_scope

    assert fork_call(child) == (r2, "request")
