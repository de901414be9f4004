"""The app that tests/test_rollover.py deploys as code, one copy per release.

Not imported from here: the test copies this file and ``realdoc_rollapp_views.py``
into each release of a deploy tree, with ``@VERSION@`` replaced by the release
name, and serves ``current`` (gunicorn ``--chdir``, uvicorn ``--app-dir``, uWSGI
``--pythonpath``).  Configured by the environment:

``ROLLAPP_PIN``    ``1``: call ``realdoc.pin_process()`` on this file's directory
                   first thing, with ``every=ROLLAPP_EVERY``.  Anything else: no
                   process pin (the control).  Either way the middleware is
                   given ``current/public`` in its default ``scope="auto"``:
                   pinned, that is the process's release (process scope);
                   unpinned, the release of the request (request scope).

Routes (``wsgi_app`` and ``asgi_app``): ``/page`` answers ``"<code> <views>
<template>"``: this module's ``VERSION``, the ``VERSION`` of the views module
(imported lazily, on the first ``/page``), and ``public/page.txt`` read through
``realdoc.docroot()`` behind the middleware; ``/pid`` answers the pid; WSGI
``/bare`` reads the template through ``current`` with no middleware (the
benchmarks' baseline).  Every
answer carries the pid in ``X-Pid``.
"""

import logging
import os
import sys
from typing import Any, Dict, Iterable, List

import realdoc

APP_DIR = os.path.dirname(os.path.abspath(__file__))
if os.environ.get("ROLLAPP_PIN") == "1":
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("[realdoc %(levelname)s] %(message)s"))
    logging.getLogger("realdoc").addHandler(_handler)
    logging.getLogger("realdoc").setLevel(logging.INFO)
    realdoc.pin_process(APP_DIR, every=float(os.environ.get("ROLLAPP_EVERY", "2")))
DOCROOT = os.path.join(APP_DIR, "public")  # through current: scope="auto" decides

from realdoc.asgi import RealdocMiddleware as AsgiMiddleware  # noqa: E402
from realdoc.wsgi import RealdocMiddleware as WsgiMiddleware  # noqa: E402

VERSION = "@VERSION@"
PID = str(os.getpid())


def _page() -> str:
    import realdoc_rollapp_views  # lazily, on the first request, as Django imports views

    with open(realdoc.join(realdoc.docroot(), "page.txt"), encoding="utf-8") as f:
        template = f.read().strip()
    return f"{VERSION} {realdoc_rollapp_views.VERSION} {template}"


def _inner_wsgi(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
    body = _page().encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body))), ("X-Pid", PID)])
    return [body]


_pinned_wsgi = WsgiMiddleware(_inner_wsgi, DOCROOT, every=0)


def wsgi_app(environ: Dict[str, Any], start_response: Any) -> Iterable[bytes]:
    path = environ.get("PATH_INFO")
    if path == "/page":
        return _pinned_wsgi(environ, start_response)
    if path == "/bare":  # the same read, with neither pin nor middleware (benchmarks)
        with open(os.path.join(APP_DIR, "public", "page.txt"), encoding="utf-8") as f:
            body = f"{VERSION} {VERSION} {f.read().strip()}".encode()
    else:
        body = PID.encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body))), ("X-Pid", PID)])
    return [body]


async def _inner_asgi(scope: Any, receive: Any, send: Any) -> None:
    body = _page().encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode()),
                            (b"x-pid", PID.encode())]})
    await send({"type": "http.response.body", "body": body})


_pinned_asgi = AsgiMiddleware(_inner_asgi, DOCROOT, every=0)


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] == "/page":
        await _pinned_asgi(scope, receive, send)
        return
    body = PID.encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode()),
                            (b"x-pid", PID.encode())]})
    await send({"type": "http.response.body", "body": body})
