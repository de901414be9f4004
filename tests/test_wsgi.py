"""realdoc.wsgi.RealdocMiddleware on real deploy trees with real rename(2) flips.

Also holds the environment-configuration tests, run against both middlewares.
"""

from __future__ import annotations

import asyncio
import io
import os
import pathlib
import sys
import wsgiref.util
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import pytest
from helpers import child_env, ignore_start_response

import realdoc
from realdoc import asgi, wsgi
from realdoc._context import docroot, join
from realdoc.testing.tree import DeployTree

MIDDLEWARES = [
    pytest.param(wsgi.RealdocMiddleware, id="wsgi"),
    pytest.param(asgi.RealdocMiddleware, id="asgi"),
]
ENV_VARS = ("REALDOC_DOCROOT", "REALDOC_EVERY", "REALDOC_USE_READLINK", "REALDOC_WATCH")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No REALDOC_* setting leaks in from the environment running the tests."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def tree(tmp_path: pathlib.Path) -> DeployTree:
    return DeployTree.create(str(tmp_path / "site"), releases=3)


def real(tree: DeployTree, release: Optional[str] = None) -> str:
    """The real docroot of ``release`` (default: the one ``current`` names now)."""
    return os.path.join(tree.release_path(release or tree.current_release()), "public")


def read(root: str, name: str) -> str:
    with open(join(root, name)) as f:
        return f.read().strip()


class Recorder:
    """A start_response that keeps what it was given."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, List[Tuple[str, str]]]] = []

    def __call__(self, status: str, headers: List[Tuple[str, str]],
                 exc_info: Any = None) -> Callable[[bytes], None]:
        self.calls.append((status, headers))
        return lambda data: None


def call(app: Any, environ: Optional[Dict[str, Any]] = None) -> Tuple[bytes, Dict[str, Any]]:
    """Run one request the way a server does: call, iterate, close."""
    env: Dict[str, Any] = {} if environ is None else environ
    result = app(env, Recorder())
    try:
        return b"".join(result), env
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def echo_app(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["realdoc.docroot"].encode()]


# -- environ ---------------------------------------------------------------------


def test_sets_document_root_and_realdoc_docroot(tree: DeployTree) -> None:
    mw = wsgi.RealdocMiddleware(echo_app, tree.docroot)
    body, env = call(mw)
    assert env["DOCUMENT_ROOT"] == env["realdoc.docroot"] == real(tree)
    assert body == real(tree).encode()
    assert isinstance(env["DOCUMENT_ROOT"], str)


def test_environ_key_chooses_the_key(tree: DeployTree) -> None:
    mw = wsgi.RealdocMiddleware(echo_app, tree.docroot, environ_key="APP_ROOT")
    _, env = call(mw, {"DOCUMENT_ROOT": "/set/by/server"})
    assert env["APP_ROOT"] == env["realdoc.docroot"] == real(tree)
    assert env["DOCUMENT_ROOT"] == "/set/by/server"
    assert mw.environ_key == "APP_ROOT"


@pytest.mark.parametrize("key", ["", None, b"DOCUMENT_ROOT", 1])
def test_environ_key_must_be_a_non_empty_str(tree: DeployTree, key: Any) -> None:
    with pytest.raises(TypeError, match="environ_key"):
        wsgi.RealdocMiddleware(echo_app, tree.docroot, environ_key=key)


def test_app_must_be_callable(tree: DeployTree) -> None:
    with pytest.raises(TypeError, match="WSGI callable"):
        wsgi.RealdocMiddleware("not an app", tree.docroot)  # type: ignore[arg-type]


def test_start_response_and_status_pass_through(tree: DeployTree) -> None:
    rec = Recorder()

    def app(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
        start_response("404 Not Found", [("X-A", "1")])
        return [b"nope"]

    result = wsgi.RealdocMiddleware(app, tree.docroot)({}, rec)
    assert list(result) == [b"nope"]
    assert rec.calls == [("404 Not Found", [("X-A", "1")])]


def test_list_body_is_returned_as_is(tree: DeployTree) -> None:
    body = [b"a", b"b"]
    mw = wsgi.RealdocMiddleware(lambda e, s: body, tree.docroot)
    assert mw({}, Recorder()) is body


# -- pinning across flips --------------------------------------------------------


def test_flip_during_the_request_does_not_move_the_pin(tree: DeployTree) -> None:
    """Read a.txt, flip current (rename), read b.txt: both from the first release."""
    def app(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
        a = read(docroot(), "a.txt")
        tree.flip("r2")
        b = read(environ["DOCUMENT_ROOT"], "b.txt")
        plain = read(tree.docroot, "b.txt")  # through the link: the new release
        start_response("200 OK", [])
        return [f"{a} {b} {plain}".encode()]

    mw = wsgi.RealdocMiddleware(app, tree.docroot, every=0)
    body, env = call(mw)
    assert body == b"r1 r1 r2"
    assert env["DOCUMENT_ROOT"] == real(tree, "r1")


def test_every_zero_follows_each_flip(tree: DeployTree) -> None:
    mw = wsgi.RealdocMiddleware(echo_app, tree.docroot, every=0)
    for name in ("r2", "r3", "r1", "r3"):
        tree.flip(name)
        assert call(mw)[0] == real(tree, name).encode()


def test_long_every_keeps_the_cached_release(tree: DeployTree) -> None:
    mw = wsgi.RealdocMiddleware(echo_app, tree.docroot, every=3600)
    tree.flip("r2")
    assert call(mw)[0] == real(tree, "r1").encode()  # resolved at construction
    mw.resolver.refresh()
    assert call(mw)[0] == real(tree, "r2").encode()


def test_one_resolver_call_per_request(tree: DeployTree) -> None:
    """A cache hit per request: the hit counter grows by one, no miss, no syscall."""
    mw = wsgi.RealdocMiddleware(echo_app, tree.docroot, every=3600)
    before = realdoc.stats()
    for _ in range(10):
        call(mw)
    after = realdoc.stats()
    assert after["hits"] - before["hits"] == 10
    assert after["misses"] == before["misses"]
    assert after["syscalls"] == before["syscalls"]


# -- streaming responses ---------------------------------------------------------


def test_streaming_body_keeps_the_value_for_the_whole_iterable(tree: DeployTree) -> None:
    """A generator body runs after the app returned; flips between chunks change nothing."""
    events: List[str] = []

    def app(environ: Dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            for name in ("r2", "r3", "r1"):
                yield f"{read(docroot(), 'a.txt')}|{environ['DOCUMENT_ROOT']}\n".encode()
                tree.flip(name)
            yield read(docroot(), "b.txt").encode()
        finally:
            events.append("finally:" + docroot())

    mw = wsgi.RealdocMiddleware(app, tree.docroot, every=0)
    result = mw({}, Recorder())
    with pytest.raises(LookupError):
        docroot()  # the app call returned: not set between steps
    chunks = []
    for chunk in result:
        chunks.append(chunk)
        with pytest.raises(LookupError):
            docroot()
    result.close()  # type: ignore[attr-defined]
    pinned = real(tree, "r1")
    assert chunks == [f"r1|{pinned}\n".encode()] * 3 + [b"r1"]
    assert events == ["finally:" + pinned]
    with pytest.raises(LookupError):
        docroot()


def test_close_is_passed_through_once_with_the_value_set(tree: DeployTree) -> None:
    class Body:
        def __init__(self) -> None:
            self.closed: List[str] = []

        def __iter__(self) -> Iterator[bytes]:
            yield docroot().encode()

        def close(self) -> None:
            self.closed.append(docroot())

    body = Body()
    mw = wsgi.RealdocMiddleware(lambda e, s: body, tree.docroot)
    result = mw({}, Recorder())
    assert result is not body
    assert list(result) == [real(tree).encode()]
    assert body.closed == []
    result.close()  # type: ignore[attr-defined]
    assert body.closed == [real(tree)]


def test_close_before_exhaustion_runs_the_generator_cleanup(tree: DeployTree) -> None:
    events: List[str] = []

    def app(environ: Dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            yield b"1"
            yield b"2"
        finally:
            events.append(docroot())

    result = wsgi.RealdocMiddleware(app, tree.docroot)({}, Recorder())
    assert next(iter(result)) == b"1"
    result.close()  # type: ignore[attr-defined]
    assert events == [real(tree)]


def test_iterable_without_close(tree: DeployTree) -> None:
    class Body:
        def __iter__(self) -> Iterator[bytes]:
            return iter([b"x", b"y"])

    result = wsgi.RealdocMiddleware(lambda e, s: Body(), tree.docroot)({}, Recorder())
    assert list(result) == [b"x", b"y"]
    result.close()  # type: ignore[attr-defined]  # a no-op, no AttributeError


def test_next_on_iter_works(tree: DeployTree) -> None:
    result = wsgi.RealdocMiddleware(lambda e, s: (c for c in [b"a"]), tree.docroot)({}, Recorder())
    assert next(iter(result)) == b"a"


def test_streaming_exception_resets_the_value(tree: DeployTree) -> None:
    def app(environ: Dict[str, Any], start_response: Any) -> Iterator[bytes]:
        yield b"ok"
        raise RuntimeError("mid-stream")

    result = iter(wsgi.RealdocMiddleware(app, tree.docroot)({}, Recorder()))
    assert next(result) == b"ok"
    with pytest.raises(RuntimeError):
        next(result)
    with pytest.raises(LookupError):
        docroot()


def test_file_wrapper_result_is_passed_through(tree: DeployTree) -> None:
    """wsgi.file_wrapper bodies stay as they are, so servers can still sendfile()."""
    def app(environ: Dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        f = open(join(docroot(), "a.txt"), "rb")
        return environ["wsgi.file_wrapper"](f)  # type: ignore[no-any-return]

    env = {"wsgi.file_wrapper": wsgiref.util.FileWrapper}
    result = wsgi.RealdocMiddleware(app, tree.docroot)(env, Recorder())
    assert isinstance(result, wsgiref.util.FileWrapper)
    try:
        assert b"".join(result).strip() == b"r1"
    finally:
        result.close()


def test_file_wrapper_that_is_not_a_type_is_ignored(tree: DeployTree) -> None:
    def app(environ: Dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return io.BytesIO(b"abc")

    env = {"wsgi.file_wrapper": lambda f, size=8192: f}
    result = wsgi.RealdocMiddleware(app, tree.docroot)(env, Recorder())
    assert b"".join(result) == b"abc"
    result.close()  # type: ignore[attr-defined]


# -- resolver options ------------------------------------------------------------


def test_use_readlink_true_replaces_the_first_link(tree: DeployTree) -> None:
    mw = wsgi.RealdocMiddleware(echo_app, tree.docroot, use_readlink=True)
    assert mw.resolver.mode == "first_link"
    assert call(mw)[1]["DOCUMENT_ROOT"] == real(tree)


def test_use_readlink_start_path(tree: DeployTree) -> None:
    mw = wsgi.RealdocMiddleware(echo_app, tree.docroot, use_readlink=tree.root)
    assert mw.resolver.start == tree.root
    assert call(mw)[1]["DOCUMENT_ROOT"] == real(tree)


def test_on_error_stale_serves_the_last_release_through_a_non_atomic_flip(tree: DeployTree) -> None:
    mw = wsgi.RealdocMiddleware(echo_app, tree.docroot, every=0, on_error="stale")
    os.unlink(tree.current)  # the window of `ln -sfn`: current does not exist
    assert call(mw)[0] == real(tree, "r1").encode()
    os.symlink("releases/r3", tree.current)
    assert call(mw)[0] == real(tree, "r3").encode()


def test_on_error_stale_before_any_success_raises(tmp_path: pathlib.Path) -> None:
    mw = wsgi.RealdocMiddleware(echo_app, str(tmp_path / "missing" / "public"), every=0)
    with pytest.raises(FileNotFoundError):
        mw({}, Recorder())


def test_on_error_raise(tree: DeployTree) -> None:
    mw = wsgi.RealdocMiddleware(echo_app, tree.docroot, every=0, on_error="raise")
    os.unlink(tree.current)
    with pytest.raises(FileNotFoundError):
        mw({}, Recorder())
    with pytest.raises(LookupError):
        docroot()


def test_on_error_passthrough(tree: DeployTree) -> None:
    mw = wsgi.RealdocMiddleware(echo_app, tree.docroot, every=0, on_error="passthrough")
    os.unlink(tree.current)
    assert call(mw)[0] == tree.docroot.encode()


def test_construction_with_a_missing_docroot_does_not_raise(tmp_path: pathlib.Path) -> None:
    """Start-up checks values, not the file system: a missing docroot fails per request."""
    wsgi.RealdocMiddleware(echo_app, str(tmp_path / "nothing"), on_error="raise")


@pytest.mark.parametrize("mw_class", MIDDLEWARES)
@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"every": -1}, ValueError),
        ({"every": "2"}, TypeError),
        ({"on_error": "ignore"}, ValueError),
        ({"use_readlink": "relative/start"}, ValueError),
        ({"use_readlink": 3}, TypeError),
    ],
)
def test_bad_options_fail_at_construction(tree: DeployTree, mw_class: Any,
                                          kwargs: Dict[str, Any], exc: type) -> None:
    with pytest.raises(exc):
        mw_class(echo_app, tree.docroot, **kwargs)


@pytest.mark.parametrize("mw_class", MIDDLEWARES)
def test_bytes_docroot_is_refused(tree: DeployTree, mw_class: Any) -> None:
    with pytest.raises(TypeError, match="str docroot"):
        mw_class(echo_app, os.fsencode(tree.docroot))


@pytest.mark.parametrize("mw_class", MIDDLEWARES)
def test_pathlike_docroot(tree: DeployTree, mw_class: Any) -> None:
    mw = mw_class(echo_app, pathlib.Path(tree.docroot))
    assert mw.resolver() == real(tree)


# -- configuration from the environment ------------------------------------------


@pytest.mark.parametrize("mw_class", MIDDLEWARES)
def test_docroot_from_env(tree: DeployTree, mw_class: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REALDOC_DOCROOT", tree.docroot)
    mw = mw_class(echo_app)
    assert mw.resolver.docroot == tree.docroot
    assert mw.resolver.every == 2.0 and mw.resolver.mode == "realpath"
    assert mw.resolver() == real(tree)


@pytest.mark.parametrize("mw_class", MIDDLEWARES)
@pytest.mark.parametrize("value", [None, "", "   "])
def test_docroot_missing_everywhere(mw_class: Any, value: Optional[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    if value is not None:
        monkeypatch.setenv("REALDOC_DOCROOT", value)
    with pytest.raises(ValueError, match="REALDOC_DOCROOT"):
        mw_class(echo_app)


@pytest.mark.parametrize("mw_class", MIDDLEWARES)
def test_code_wins_over_env(tree: DeployTree, tmp_path: pathlib.Path, mw_class: Any,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REALDOC_DOCROOT", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("REALDOC_EVERY", "7")
    monkeypatch.setenv("REALDOC_USE_READLINK", "1")
    mw = mw_class(echo_app, tree.docroot, every=0.5, use_readlink=False)
    assert mw.resolver.docroot == tree.docroot
    assert mw.resolver.every == 0.5
    assert mw.resolver.mode == "realpath"


@pytest.mark.parametrize("mw_class", MIDDLEWARES)
@pytest.mark.parametrize("text, value", [("0", 0.0), ("2.5", 2.5), (" 1 ", 1.0),
                                         ("1e-3", 0.001), ("inf", float("inf")), ("", 2.0)])
def test_every_from_env(tree: DeployTree, mw_class: Any, text: str, value: float,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REALDOC_EVERY", text)
    assert mw_class(echo_app, tree.docroot).resolver.every == value


@pytest.mark.parametrize("mw_class", MIDDLEWARES)
@pytest.mark.parametrize("text, message", [("abc", "not a number"), ("2s", "not a number"),
                                           ("-1", ">= 0"), ("nan", ">= 0")])
def test_bad_every_in_env_fails_at_construction(
        tree: DeployTree, mw_class: Any, text: str, message: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REALDOC_EVERY", text)
    with pytest.raises(ValueError, match=f"REALDOC_EVERY={text!r}.*{message}"):
        mw_class(echo_app, tree.docroot)


@pytest.mark.parametrize("mw_class", MIDDLEWARES)
@pytest.mark.parametrize("text, mode", [
    ("1", "first_link"), ("true", "first_link"), ("YES", "first_link"), (" on ", "first_link"),
    ("0", "realpath"), ("False", "realpath"), ("no", "realpath"), ("off", "realpath"),
    ("", "realpath"),
])
def test_use_readlink_words_from_env(tree: DeployTree, mw_class: Any, text: str, mode: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REALDOC_USE_READLINK", text)
    mw = mw_class(echo_app, tree.docroot)
    assert mw.resolver.mode == mode
    assert mw.resolver() == real(tree)


@pytest.mark.parametrize("mw_class", MIDDLEWARES)
def test_use_readlink_start_from_env(tree: DeployTree, mw_class: Any,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REALDOC_DOCROOT", tree.docroot)
    monkeypatch.setenv("REALDOC_USE_READLINK", tree.root)
    mw = mw_class(echo_app)
    assert mw.resolver.mode == "first_link"
    assert mw.resolver.start == tree.root
    assert mw.resolver() == real(tree)


@pytest.mark.parametrize("mw_class", MIDDLEWARES)
@pytest.mark.parametrize("text", ["maybe", "2", "relative/path", "./x"])
def test_bad_use_readlink_in_env_fails_at_construction(tree: DeployTree, mw_class: Any, text: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REALDOC_USE_READLINK", text)
    with pytest.raises(ValueError, match="REALDOC_USE_READLINK"):
        mw_class(echo_app, tree.docroot)


@pytest.mark.parametrize("mw_class", MIDDLEWARES)
def test_use_readlink_start_not_a_prefix_names_the_variable(
        tree: DeployTree, mw_class: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REALDOC_USE_READLINK", "/somewhere/else")
    with pytest.raises(ValueError, match="REALDOC_USE_READLINK"):
        mw_class(echo_app, tree.docroot)


def test_nul_in_env_docroot_names_the_variable() -> None:
    # os.environ refuses NUL itself, so pass a mapping through the documented helper.
    from realdoc._config import make_resolver, options

    with pytest.raises(ValueError, match="REALDOC_DOCROOT"):
        make_resolver(options(None, None, None, "stale", {"REALDOC_DOCROOT": "/a\0b"}))


# -- regressions of issue 14 (items 5, 13, 15b) ---------------------------------------

APPS = pathlib.Path(__file__).resolve().parent / "apps"


class _SizedBody:
    """A one-chunk body that is not a list: iterable, with ``__len__``."""

    def __init__(self, chunk: bytes) -> None:
        self.chunk = chunk

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[bytes]:
        yield self.chunk


def _wsgiref_headers(app: Any) -> Tuple[bytes, Dict[str, str]]:
    """Serve one GET from a real wsgiref server on 127.0.0.1; return (body, headers)."""
    import http.client
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    with make_server("127.0.0.1", 0, app, handler_class=Quiet) as httpd:
        t = threading.Thread(target=httpd.handle_request, daemon=True)
        t.start()
        conn = http.client.HTTPConnection("127.0.0.1", httpd.server_address[1], timeout=10)
        try:
            conn.request("GET", "/")
            resp = conn.getresponse()
            body = resp.read()
            headers = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()
        t.join(10)
    return body, headers


def test_sized_streaming_body_keeps_content_length_under_wsgiref(tree: DeployTree) -> None:
    """Item 15b: wsgiref sets Content-Length for a one-chunk body, behind realdoc too."""
    seen: List[str] = []

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        seen.append(environ.get("realdoc.docroot", ""))
        return _SizedBody(b"hello sized body")

    body, headers = _wsgiref_headers(app)  # the server's own behaviour, without realdoc
    assert (body, headers.get("content-length")) == (b"hello sized body", "16")
    mw = wsgi.RealdocMiddleware(app, tree.docroot, every=0)
    body, headers = _wsgiref_headers(mw)
    assert (body, headers.get("content-length")) == (b"hello sized body", "16")
    assert seen[-1] == real(tree)


def test_len_is_passed_through_only_when_the_body_has_one(tree: DeployTree) -> None:
    def gen_app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [])
        return (b for b in [b"x"])

    def sized_app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [])
        return _SizedBody(b"x")

    env: Dict[str, Any] = {}
    sized = wsgi.RealdocMiddleware(sized_app, tree.docroot)(env, ignore_start_response)
    assert len(sized) == 1  # type: ignore[arg-type]
    gen = wsgi.RealdocMiddleware(gen_app, tree.docroot)(env, ignore_start_response)
    assert not hasattr(gen, "__len__")
    with pytest.raises(TypeError):
        len(gen)  # type: ignore[arg-type]


def test_function_file_wrapper_result_is_returned_untouched(tree: DeployTree) -> None:
    """Item 5, in process: a uWSGI-shaped wrapper (a function returning the file itself)."""
    returned: List[Any] = []

    def uwsgi_like_wrapper(filelike: Any, blksize: int = 8192) -> Any:
        returned.append(filelike)
        return filelike

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"data"), 4096)

    env: Dict[str, Any] = {"wsgi.file_wrapper": uwsgi_like_wrapper}
    result = wsgi.RealdocMiddleware(app, tree.docroot)(env, ignore_start_response)
    assert result is returned[0]

    # Another file-like object the app made itself is still pinned (it may run app code).
    def other_app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", [])
        environ["wsgi.file_wrapper"](io.BytesIO(b"ignored"))
        return io.BytesIO(b"mine")

    env = {"wsgi.file_wrapper": uwsgi_like_wrapper}
    result = wsgi.RealdocMiddleware(other_app, tree.docroot)(env, ignore_start_response)
    assert isinstance(result, wsgi._PinnedIterable)
    assert b"".join(result) == b"mine"


def _uwsgi_or_skip() -> None:
    """Skip when pyuwsgi is not installed; fail instead when ``CI`` is true."""
    import importlib.util

    from realdoc.testing.strace import in_ci

    if importlib.util.find_spec("pyuwsgi") is None:
        msg = "pyuwsgi is not installed (pip install pyuwsgi)"
        if in_ci():
            pytest.fail(f"{msg}; CI must install it", pytrace=False)
        pytest.skip(msg)


class _Uwsgi:
    """A real uWSGI (pyuwsgi) master + 1 worker on 127.0.0.1, in its own process group."""

    def __init__(self, tmp: pathlib.Path, docroot: str, file: str, *flags: str,
                 strace_to: Optional[pathlib.Path] = None) -> None:
        import socket
        import subprocess
        import sys

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port: int = s.getsockname()[1]
        cmd = [sys.executable, "-c",
               "import sys, pyuwsgi; sys.argv[0] = 'uwsgi'; sys.exit(pyuwsgi.run())",
               "--http-socket", f"127.0.0.1:{self.port}", "--wsgi-file",
               str(APPS / "realdoc_uwsgiapp.py"), "--master", "--processes", "1",
               "--die-on-term", "--disable-logging", *flags]
        if strace_to is not None:
            cmd = ["strace", "-f", "-qq", "-e", "trace=sendfile", "-o", str(strace_to), *cmd]
        env = child_env(str(APPS), REALDOC_DOCROOT=docroot, UWSGIAPP_FILE=file)
        env.pop("REALDOC_EVERY", None)
        self.log = open(tmp / f"uwsgi-{self.port}.log", "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def get(self, path: str, timeout: float = 20.0) -> Tuple[int, bytes]:
        """GET ``path``; retry while the server is starting (bounded by ``timeout``)."""
        import http.client
        import time

        deadline = time.monotonic() + timeout
        while True:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                return resp.status, resp.read()
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
            finally:
                conn.close()

    def stop(self) -> None:
        import signal
        import subprocess

        try:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        except ProcessLookupError:
            pass
        finally:
            self.log.close()


def _sendfile_calls(trace: pathlib.Path, size: int) -> int:
    """Completed sendfile(2) calls in an strace log that sent a whole file of ``size``."""
    if not trace.exists():
        return 0
    return sum(1 for line in trace.read_text().splitlines()
               if "sendfile(" in line and line.rstrip().endswith(f"= {size}"))


@pytest.mark.servers
def test_uwsgi_keeps_sendfile_behind_the_middleware(
        tree: DeployTree, tmp_path: pathlib.Path) -> None:
    """Item 5: under real uWSGI, /sendfile through realdoc still uses sendfile(2).

    The 0.1.0 shape (the result wrapped in a _PinnedIterable) is served too and must
    not use sendfile, or the strace count proves nothing.
    """
    import time

    from realdoc.testing.plugin import require_strace

    _uwsgi_or_skip()
    require_strace()
    payload = os.urandom(150_000)
    big = tmp_path / "big.bin"
    big.write_bytes(payload)
    trace = tmp_path / "sendfile.trace"
    server = _Uwsgi(tmp_path, tree.docroot, str(big), strace_to=trace)
    try:
        assert server.get("/stats")[0] == 200
        assert server.get("/sendfile-0.1.0") == (200, payload)
        assert server.get("/sendfile-raw") == (200, payload)
        deadline = time.monotonic() + 5
        while _sendfile_calls(trace, len(payload)) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        # Only the raw route's request used sendfile; the 0.1.0 shape (first) did not.
        assert _sendfile_calls(trace, len(payload)) == 1
        assert server.get("/sendfile") == (200, payload)
        while _sendfile_calls(trace, len(payload)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _sendfile_calls(trace, len(payload)) == 2
    finally:
        server.stop()


@pytest.mark.servers
@pytest.mark.parametrize("flags, inherited", [
    ((), True),
    (("--py-call-osafterfork",), False),
    (("--lazy-apps",), False),
], ids=["default", "py-call-osafterfork", "lazy-apps"])
def test_uwsgi_fork_hooks_run_only_with_py_call_osafterfork(
        tree: DeployTree, tmp_path: pathlib.Path, flags: Tuple[str, ...], inherited: bool) -> None:
    """Item 13, documented in realdoc.wsgi: the at-fork reset needs a uWSGI flag.

    The app is imported in the master, where the middleware resolves once (syscalls
    counted).  Without ``--py-call-osafterfork`` uWSGI forks the worker in C and
    Python's ``os.register_at_fork`` hooks do not run, so the worker starts with the
    master's counters; with it they are reset; with ``--lazy-apps`` the app is
    imported in the worker itself.
    """
    import json

    _uwsgi_or_skip()
    if "--py-call-osafterfork" in flags and sys.version_info >= (3, 13):
        pytest.skip("uWSGI 2.0.30 aborts every worker started with --py-call-osafterfork "
                    "on Python 3.13 (Fatal Python error: _PyRecursiveMutex_Unlock), with or "
                    "without realdoc; documented in realdoc.wsgi")
    big = tmp_path / "f.bin"
    big.write_bytes(b"x")
    server = _Uwsgi(tmp_path, tree.docroot, str(big), *flags)
    try:
        status, body = server.get("/stats")
    finally:
        server.stop()
    assert status == 200
    report = json.loads(body)
    if "--lazy-apps" in flags:
        assert report["pid"] == report["loaded_in"]
        assert report["syscalls"] > 0  # the worker's own resolution
    else:
        assert report["pid"] != report["loaded_in"]  # loaded in the master, then forked
        assert (report["syscalls"] > 0) is inherited


# ------------------------------------------------------- 0.2: watch mode (#11), both

def _one_request(mw: Any) -> str:
    """One request through either middleware; the docroot the app saw."""
    seen: List[str] = []
    if isinstance(mw, wsgi.RealdocMiddleware):
        environ: Dict[str, Any] = {}
        wsgiref.util.setup_testing_defaults(environ)
        list(mw(environ, Recorder()))
        return str(environ["realdoc.docroot"])

    async def nothing() -> Dict[str, Any]:
        return {"type": "http.request"}

    async def ignore(message: Any) -> None:
        pass

    mw.app = lambda scope, receive, send: _record(seen, scope)
    asyncio.run(mw({"type": "http"}, nothing, ignore))
    return seen[0]


async def _record(seen: List[str], scope: Any) -> None:
    seen.append(scope["realdoc.docroot"])


def _wrap(middleware: Any, **kwargs: Any) -> Any:
    if middleware is wsgi.RealdocMiddleware:
        def app(environ: Any, start_response: Any) -> List[bytes]:
            start_response("200 OK", [])
            return [b""]
        return middleware(app, **kwargs)

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        pass
    return middleware(asgi_app, **kwargs)


@pytest.mark.parametrize("middleware", MIDDLEWARES)
@pytest.mark.parametrize("how", ["code", "env"])
def test_watch_first_request_after_a_flip(middleware: Any, tree: DeployTree,
                                          monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """watch=True (or REALDOC_WATCH=1) with every=3600: the first request after a flip
    (once the event is in) is served from the new release; without watch it is not."""
    import time
    if how == "env":
        monkeypatch.setenv("REALDOC_WATCH", " Yes ")
        watched = _wrap(middleware, docroot=tree.docroot, every=3600)
    else:
        watched = _wrap(middleware, docroot=tree.docroot, every=3600, watch=True)
    plain = _wrap(middleware, docroot=tree.docroot, every=3600, watch=False)
    assert watched.resolver.watch and not plain.resolver.watch
    old = real(tree)
    assert _one_request(watched) == _one_request(plain) == old
    tree.flip("r2")
    end = time.monotonic() + 5
    while watched.resolver.events == 0 and time.monotonic() < end:
        time.sleep(0.0001)
    assert _one_request(watched) == real(tree, "r2")
    assert _one_request(plain) == old


@pytest.mark.parametrize("middleware", MIDDLEWARES)
@pytest.mark.parametrize("text,want", [("1", True), ("off", False), ("", False)])
def test_realdoc_watch_words(middleware: Any, tree: DeployTree, monkeypatch: pytest.MonkeyPatch,
                             text: str, want: bool) -> None:
    monkeypatch.setenv("REALDOC_WATCH", text)
    assert _wrap(middleware, docroot=tree.docroot).resolver.watch is want
    # code wins over the environment
    assert _wrap(middleware, docroot=tree.docroot, watch=not want).resolver.watch is (not want)


@pytest.mark.parametrize("middleware", MIDDLEWARES)
def test_realdoc_watch_bad_value(middleware: Any, tree: DeployTree,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REALDOC_WATCH", "sometimes")
    with pytest.raises(ValueError, match="REALDOC_WATCH='sometimes' is not a boolean"):
        _wrap(middleware, docroot=tree.docroot)
    monkeypatch.delenv("REALDOC_WATCH")
    with pytest.raises(TypeError, match="watch must be True or False"):
        _wrap(middleware, docroot=tree.docroot, watch=1)
