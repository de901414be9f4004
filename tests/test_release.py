"""The release, visible: the middlewares' ``header=`` and ``realdoc.ReleaseFilter``.

Real servers: wsgiref (in a thread) and uvicorn (in a thread), on 127.0.0.1 with a
free port; real deploy trees flipped with rename(2).
"""

from __future__ import annotations

import asyncio
import http.client
import importlib.util
import logging
import os
import threading
import time
from typing import Any, Iterator, List, Tuple
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from helpers import fork_call

import realdoc
from realdoc import asgi, wsgi
from realdoc._release import header_option, header_value, release_name
from realdoc.testing.servers import free_port
from realdoc.testing.strace import in_ci
from realdoc.testing.tree import DeployTree


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.addFilter(realdoc.ReleaseFilter())
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[_Records]:
    handler = _Records()
    log = logging.getLogger("test_release.app")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        log.removeHandler(handler)


def _wsgi_app(environ: Any, start_response: Any) -> List[bytes]:
    logging.getLogger("test_release.app").info("serving %s", environ["PATH_INFO"])
    with open(realdoc.join(realdoc.docroot(), "a.txt"), "rb") as f:
        body = f.read()
    status = "404 Not Found" if environ["PATH_INFO"] == "/missing" else "200 OK"
    start_response(status, [("Content-Type", "text/plain")])
    return [body]


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def wsgiref_server() -> Iterator[Any]:
    servers: List[WSGIServer] = []

    def serve(app: Any) -> int:
        srv = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
        servers.append(srv)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return srv.server_port

    try:
        yield serve
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()


def _get(port: int, path: str = "/") -> Tuple[int, str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(), resp.headers
    finally:
        conn.close()


def test_wsgi_header_names_the_release_that_served(tmp_path: Any, wsgiref_server: Any,
                                                    records: _Records) -> None:
    tree = DeployTree.create(tmp_path / "site", releases=2)
    app = wsgi.RealdocMiddleware(_wsgi_app, tree.docroot, every=0, header="X-Release")
    port = wsgiref_server(app)
    status, body, headers = _get(port)
    assert (status, body, headers["X-Release"]) == (200, "r1", "r1")
    tree.flip("r2")
    status, body, headers = _get(port, "/missing")
    assert (status, body, headers["X-Release"]) == (404, "r2", "r2")  # errors too
    assert [vars(r)["release"] for r in records.records] == ["r1", "r2"]
    assert headers.get_all("X-Release") == ["r2"]


def test_wsgi_no_header_unless_asked(tmp_path: Any, wsgiref_server: Any,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    tree = DeployTree.create(tmp_path / "site", releases=1)
    monkeypatch.delenv("REALDOC_HEADER", raising=False)
    port = wsgiref_server(wsgi.RealdocMiddleware(_wsgi_app, tree.docroot))
    assert "X-Release" not in _get(port)[2]
    monkeypatch.setenv("REALDOC_HEADER", "X-Served-By")
    port = wsgiref_server(wsgi.RealdocMiddleware(_wsgi_app, tree.docroot))
    assert _get(port)[2]["X-Served-By"] == "r1"
    # "" in code wins over the environment: no header
    port = wsgiref_server(wsgi.RealdocMiddleware(_wsgi_app, tree.docroot, header=""))
    assert "X-Served-By" not in _get(port)[2]


@pytest.mark.parametrize("mw", [wsgi.RealdocMiddleware, asgi.RealdocMiddleware])
def test_bad_header_option(mw: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = DeployTree.create(tmp_path / "site", releases=1)
    with pytest.raises(TypeError, match="header must be a str"):
        mw(_wsgi_app, tree.docroot, header=b"X-Release")
    with pytest.raises(ValueError, match="not an HTTP header name"):
        mw(_wsgi_app, tree.docroot, header="X Release")
    monkeypatch.setenv("REALDOC_HEADER", "X-Release:")
    with pytest.raises(ValueError, match="REALDOC_HEADER='X-Release:'"):
        mw(_wsgi_app, tree.docroot)


def test_release_name_rule() -> None:
    # the link target: trailing components shared with the configured docroot removed
    assert release_name("/srv/app/current/public", "/srv/app/releases/r42/public") == "r42"
    assert release_name("/srv/app/current", "/srv/app/releases/r42") == "r42"
    assert release_name("/srv/current/a/b", "/data/rel/7/a/b") == "7"
    # no link on the path: the docroot's own name
    assert release_name("/srv/www", "/srv/www") == "www"
    assert release_name("/", "/") == "/"
    assert header_value("r42") == "r42"
    assert header_value("r\u00e942%") == "r%C3%A942%25"
    assert header_option("X-Release") == "X-Release"
    assert header_option(None, {}) is None


def test_pinned_process_names_its_release(tmp_path: Any) -> None:
    """Pinned (forked child): a docroot under the process's release names that
    release, and ReleaseFilter gives it outside requests too."""
    tree = DeployTree.create(tmp_path / "site", releases=2)

    def child() -> Tuple[str, str, str, str]:
        outside_before = realdoc._release.current_release_name()
        release = realdoc.pin_process(tree.current, rollover=False)
        got: List[str] = []

        def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            got.append(dict(headers)["X-Release"])

        app = wsgi.RealdocMiddleware(_wsgi_app, os.path.join(release, "public"),
                                     header="X-Release")
        # through current, in the default auto scope: the process's release too
        through = wsgi.RealdocMiddleware(_wsgi_app, tree.docroot, header="X-Release")
        tree.flip("r2")  # the process stays on r1
        environ = {"PATH_INFO": "/", "REQUEST_METHOD": "GET"}
        b"".join(app(environ, start_response))
        b"".join(through(dict(environ), start_response))
        assert got[1] == got[0], got
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
        realdoc.ReleaseFilter().filter(record)
        return outside_before, got[0], vars(record)["release"], os.path.basename(release)

    assert fork_call(child) == ("-", "r1", "r1", "r1")


def test_release_filter_keeps_a_given_release() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.release = "mine"
    assert realdoc.ReleaseFilter().filter(record) is True
    assert vars(record)["release"] == "mine"


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    logging.getLogger("test_release.app").info("serving %s", scope["path"])
    with open(realdoc.join(realdoc.docroot(), "a.txt"), "rb") as f:
        body = f.read()
    headers = [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    assert headers == [(b"content-type", b"text/plain")]  # the app's own message untouched


def test_asgi_header_on_real_uvicorn(tmp_path: Any, records: _Records) -> None:
    if importlib.util.find_spec("uvicorn") is None:
        if in_ci():
            pytest.fail("uvicorn is not installed; CI must install the test extras",
                        pytrace=False)
        pytest.skip("uvicorn is not installed (pip install '.[test]')")
    import uvicorn
    tree = DeployTree.create(tmp_path / "site", releases=2)
    app = asgi.RealdocMiddleware(_asgi_app, tree.docroot, every=0, header="X-Release")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started
        status, body, headers = _get(port)
        assert (status, body, headers["X-Release"]) == (200, "r1", "r1")
        tree.flip("r2")
        status, body, headers = _get(port)
        assert (status, body, headers["X-Release"]) == (200, "r2", "r2")
    finally:
        server.should_exit = True
        thread.join(10)
    assert [vars(r)["release"] for r in records.records] == ["r1", "r2"]
