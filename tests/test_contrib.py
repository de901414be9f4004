"""Request-scope adapters (realdoc.contrib): Starlette, Jinja2 and Django serving
the request's pinned docroot, each in a flip storm against its unprotected twin.

Real servers on 127.0.0.1 (uvicorn and wsgiref in a thread), real deploy trees
flipped with rename(2) by a Flipper while test_servers.py's ``hammer`` sends
requests.  The middleware names the release it pinned in a response header;
here that header is ``X-Pid`` so that ``hammer`` hands it to the tally, which
counts a response as torn when its body names another release than the one
pinned (or, for templates, when the page and its include disagree).
"""

from __future__ import annotations

import asyncio
import importlib.util
import pathlib
import threading
import time
from typing import Any, Callable, Iterator, List
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from helpers import fork_call, ignore_start_response
from test_servers import Tally, hammer

from realdoc import asgi, wsgi
from realdoc.testing.servers import free_port
from realdoc.testing.strace import in_ci
from realdoc.testing.tree import DeployTree, Flipper

pytestmark = pytest.mark.servers

REQUESTS = 1500
SECONDS = 4.0


def require(*modules: str) -> None:
    """Skip when a module is not installed; fail instead when ``CI`` is true."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        msg = f"not installed: {', '.join(missing)} (pip install '.[test]')"
        if in_ci():
            pytest.fail(f"{msg}; CI must install the test extras", pytrace=False)
        pytest.skip(msg)


class PinTally(Tally):
    """torn: the body does not start with the release the middleware pinned (X-Pid)."""

    def record(self, status: int, body: str, pid: str) -> None:
        with self.lock:
            self.requests += 1
            if status != 200 or not body:
                self.other += 1
                if len(self.samples) < 5:
                    self.samples.append(f"{status} {body[:60]!r}")
                return
            names = body.split()
            self.releases.update(names)
            if any(n != pid for n in names):
                self.torn += 1
                if len(self.samples) < 5:
                    self.samples.append(f"pinned {pid}: {body[:60]!r}")


def storm(tree: DeployTree, port: int, path: str, enough: Any = None) -> PinTally:
    with Flipper(tree, interval=0.0005, max_seconds=SECONDS + 5) as flipper:
        tally = hammer(port, path, REQUESTS, enough, tally=PinTally(), seconds=SECONDS,
                       clients=4)
    assert flipper.flips > 0
    print(f"{path}: flips={flipper.flips} {tally.summary()}")
    return tally


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def wsgiref_serve() -> Iterator[Callable[[Any], int]]:
    servers: List[Any] = []

    def serve(app: Any) -> int:
        from socketserver import ThreadingMixIn
        from wsgiref.simple_server import WSGIServer

        class Threading(ThreadingMixIn, WSGIServer):
            daemon_threads = True

        srv = make_server("127.0.0.1", 0, app, server_class=Threading, handler_class=_Quiet)
        servers.append(srv)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return int(srv.server_port)

    try:
        yield serve
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()


# ---------------------------------------------------------------- Starlette


def _uvicorn(app: Any) -> Any:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    return server, thread, port


@pytest.mark.parametrize("protected", [True, False])
def test_starlette_docroot_static_files_storm(protected: bool, tmp_path: pathlib.Path) -> None:
    require("starlette", "uvicorn")
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    from realdoc.contrib.starlette import DocrootStaticFiles

    tree = DeployTree.create(tmp_path / "site", releases=4)
    files = DocrootStaticFiles() if protected else StaticFiles(directory=tree.docroot)
    inner = Starlette(routes=[Mount("/files", files)])
    app = asgi.RealdocMiddleware(inner, tree.docroot, every=0, header="X-Pid")
    server, thread, port = _uvicorn(app)
    try:
        tally = storm(tree, port, "/files/a.txt",
                      None if protected else (lambda t: t.torn >= 10))
    finally:
        server.should_exit = True
        thread.join(10)
    assert tally.requests > 0 and tally.failures == 0, tally.summary()
    if protected:
        assert tally.torn == 0 and tally.other == 0, tally.summary()
        assert len(tally.releases) > 1, tally.summary()
    else:
        assert tally.torn > 0, "Starlette's StaticFiles on current did not mix: " + \
            tally.summary()


def test_starlette_docroot_static_files_outside_a_request(tmp_path: pathlib.Path) -> None:
    require("starlette")
    from realdoc.contrib.starlette import DocrootStaticFiles

    with pytest.raises(LookupError, match="outside a request"):
        DocrootStaticFiles().lookup_path("a.txt")
    with pytest.raises(TypeError, match="subdir must be a str"):
        DocrootStaticFiles(subdir=1)  # type: ignore[arg-type]


# ---------------------------------------------------------------- Jinja2


def _template_tree(tmp_path: pathlib.Path) -> DeployTree:
    tree = DeployTree.create(tmp_path / "site", releases=4, files=())
    for name in tree.releases:
        public = pathlib.Path(tree.release_path(name)) / "public"
        (public / "page.html").write_text(f"{name} {{{{ pause() }}}}{{% include 'part.html' %}}")
        (public / "part.html").write_text(name)
    return tree


@pytest.mark.parametrize("protected", [True, False])
def test_jinja2_docroot_loader_storm(protected: bool, tmp_path: pathlib.Path,
                                     wsgiref_serve: Callable[[Any], int]) -> None:
    require("jinja2")
    import jinja2

    from realdoc.contrib.jinja2 import DocrootLoader

    tree = _template_tree(tmp_path)
    if protected:
        loader: Any = DocrootLoader()
        env = jinja2.Environment(loader=loader)
    else:  # the framework's loader on current, not even cached
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(tree.docroot), cache_size=0)

    def pause() -> str:
        time.sleep(0.002)
        return ""

    env.globals["pause"] = pause

    def inner(environ: Any, start_response: Any) -> List[bytes]:
        body = env.get_template("page.html").render().encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    port = wsgiref_serve(wsgi.RealdocMiddleware(inner, tree.docroot, every=0, header="X-Pid"))
    tally = storm(tree, port, "/", None if protected else (lambda t: t.torn >= 10))
    assert tally.requests > 0 and tally.failures == 0, tally.summary()
    if protected:
        assert tally.torn == 0 and tally.other == 0, tally.summary()
        assert len(tally.releases) > 1, tally.summary()
        # compiled once per (release, template): never more entries than that
        assert len(loader._code) <= 2 * len(tree.releases), loader._code.keys()
    else:
        assert tally.torn > 0, "a FileSystemLoader on current did not mix: " + tally.summary()


def test_jinja2_docroot_loader_refuses_a_name_only_cache(tmp_path: pathlib.Path) -> None:
    require("jinja2")
    import jinja2

    from realdoc.contrib.jinja2 import DocrootLoader

    tree = _template_tree(tmp_path)
    env = jinja2.Environment(loader=DocrootLoader(), auto_reload=False)
    # the app raises in get_template before it could return a body
    app = wsgi.RealdocMiddleware(
        lambda e, s: env.get_template("page.html"), tree.docroot)  # type: ignore[arg-type, return-value]
    with pytest.raises(RuntimeError, match="auto_reload=True"):
        app({"PATH_INFO": "/"}, ignore_start_response)
    with pytest.raises(LookupError, match="outside a request"):
        jinja2.Environment(loader=DocrootLoader()).get_template("page.html")
    with pytest.raises(ValueError, match="maxsize"):
        DocrootLoader(maxsize=0)
    # a name escaping the docroot is not found
    env = jinja2.Environment(loader=DocrootLoader())
    app = wsgi.RealdocMiddleware(
        lambda e, s: env.get_template("../x.html"), tree.docroot)  # type: ignore[arg-type, return-value]
    with pytest.raises(jinja2.TemplateNotFound):
        app({"PATH_INFO": "/"}, ignore_start_response)


# ---------------------------------------------------------------- Django


#: this module is the Django child's ROOT_URLCONF: the child fills it in
urlpatterns: List[Any] = []


def test_django_serve_docroot_storm(tmp_path: pathlib.Path) -> None:
    """In a forked child (Django's settings are per process): the realdoc view
    never mixes; Django's static.serve on current, in the same run, does."""
    require("django")
    tree = DeployTree.create(tmp_path / "site", releases=4)

    def child() -> Any:
        import django
        from django.conf import settings

        settings.configure(DEBUG=False, ALLOWED_HOSTS=["127.0.0.1"], ROOT_URLCONF=__name__,
                           SECRET_KEY="x", MIDDLEWARE=[], INSTALLED_APPS=[])
        django.setup()
        from django.core.wsgi import get_wsgi_application
        from django.urls import path
        from django.views import static

        from realdoc.contrib.django import serve_docroot

        global urlpatterns
        urlpatterns = [path("with/<path:path>", serve_docroot),
                       path("without/<path:path>", static.serve,
                            {"document_root": tree.docroot})]
        app = wsgi.RealdocMiddleware(get_wsgi_application(), tree.docroot, every=0,
                                     header="X-Pid")
        from socketserver import ThreadingMixIn
        from wsgiref.simple_server import WSGIServer

        class Threading(ThreadingMixIn, WSGIServer):
            daemon_threads = True

        srv = make_server("127.0.0.1", 0, app, server_class=Threading, handler_class=_Quiet)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        try:
            with_ = storm(tree, srv.server_port, "/with/a.txt")
            without = storm(tree, srv.server_port, "/without/a.txt", lambda t: t.torn >= 10)
            missing = hammer(srv.server_port, "/with/nope.txt", 1, tally=PinTally())
        finally:
            srv.shutdown()
            srv.server_close()
        return ((with_.requests, with_.torn, with_.other, with_.failures, len(with_.releases)),
                (without.requests, without.torn), (missing.other, missing.samples))

    with_, without, missing = fork_call(child, timeout=60)
    assert with_[0] > 0 and with_[1:4] == (0, 0, 0) and with_[4] > 1, with_
    assert without[1] > 0, f"Django's static.serve on current did not mix: {without}"
    assert missing[0] == 1 and missing[1][0].startswith("404"), missing
