"""Apps that tests/test_servers.py serves from real gunicorn and uvicorn processes.

Configured only by the environment, as a server started from a command line is:

``REALDOC_DOCROOT``, ``REALDOC_EVERY``
    Read by realdoc's middleware itself (its environment configuration).
``TESTAPP_PAUSE``
    Seconds between the two file reads of a request (default 0.002).

Routes (both ``wsgi_app`` and ``asgi_app``):

``/with``     behind ``RealdocMiddleware``: reads ``a.txt`` and ``b.txt`` under
              ``realdoc.docroot()``.
``/without``  the same reads through the symlinked ``REALDOC_DOCROOT``.
``/pid``      the worker's pid (to see that every worker is up).
``/stats``    (WSGI) the worker's ``realdoc.stats()`` as JSON (syscalls, hits, events).

A read answers ``200`` with ``"<release of a.txt> <release of b.txt>"`` and the
worker's pid in ``X-Pid``, or ``500`` with the error.  ``/with`` also answers
``500`` if the pinned values it can see disagree (environ/scope/state/docroot()).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Awaitable, Callable, Dict, Iterable, List, MutableMapping, Tuple

from realdoc._context import docroot, join
from realdoc.asgi import RealdocMiddleware as AsgiMiddleware
from realdoc.wsgi import RealdocMiddleware as WsgiMiddleware

PLAIN_DOCROOT = os.environ["REALDOC_DOCROOT"]
PAUSE = float(os.environ.get("TESTAPP_PAUSE", "0.002"))
PID = str(os.getpid()).encode()

Headers = List[Tuple[bytes, bytes]]


def _read(root: str, name: str) -> str:
    with open(join(root, name), encoding="utf-8") as f:
        return f.read().strip()


# -- WSGI --------------------------------------------------------------------------


def _answer(start_response: Any, status: str, text: str) -> List[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
                            ("X-Pid", PID.decode())])
    return [body]


def _read_two_sync(root: Callable[[], str], start_response: Any) -> List[bytes]:
    try:
        a = _read(root(), "a.txt")
        time.sleep(PAUSE)
        b = _read(root(), "b.txt")
    except OSError as exc:
        return _answer(start_response, "500 Internal Server Error", f"error {exc}")
    return _answer(start_response, "200 OK", f"{a} {b}")


def _pinned_wsgi(environ: Dict[str, Any], start_response: Any) -> Iterable[bytes]:
    pinned = docroot()
    if not environ["DOCUMENT_ROOT"] == environ["realdoc.docroot"] == pinned:
        return _answer(start_response, "500 Internal Server Error", "pinned values disagree")
    return _read_two_sync(docroot, start_response)


_with_wsgi = WsgiMiddleware(_pinned_wsgi)  # docroot and every from the environment


def wsgi_app(environ: Dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """The WSGI entry point (``realdoc_testapp:wsgi_app``)."""
    path = environ.get("PATH_INFO", "")
    if path == "/with":
        return _with_wsgi(environ, start_response)
    if path == "/without":
        return _read_two_sync(lambda: PLAIN_DOCROOT, start_response)
    if path == "/pid":
        return _answer(start_response, "200 OK", PID.decode())
    if path == "/stats":
        import json

        import realdoc
        return _answer(start_response, "200 OK", json.dumps(realdoc.stats()))
    return _answer(start_response, "404 Not Found", "no such route")


# -- ASGI --------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def _send_text(send: Send, status: int, text: str) -> None:
    body = text.encode()
    headers: Headers = [(b"content-type", b"text/plain"),
                        (b"content-length", str(len(body)).encode()), (b"x-pid", PID)]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_two_async(root: Callable[[], str], send: Send) -> None:
    try:
        a = _read(root(), "a.txt")
        await asyncio.sleep(PAUSE)  # other requests run here, in other tasks
        b = _read(root(), "b.txt")
    except OSError as exc:
        await _send_text(send, 500, f"error {exc}")
        return
    await _send_text(send, 200, f"{a} {b}")


async def _pinned_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    pinned = docroot()
    state = scope.get("state")
    if scope["realdoc.docroot"] != pinned or (state is not None and (
            state.get("docroot") != pinned or state.get("started") is not True)):
        await _send_text(send, 500, "pinned values disagree")
        return
    await _read_two_async(docroot, send)


async def _lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if "state" in scope:
                scope["state"]["started"] = True
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _inner_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        if "realdoc.docroot" in scope:
            raise RuntimeError("the middleware touched the lifespan scope")
        await _lifespan(scope, receive, send)
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/with":
        if "realdoc.docroot" not in scope:
            await _send_text(send, 500, "not pinned")
            return
        await _pinned_asgi(scope, receive, send)
    elif path == "/without":
        await _read_two_async(lambda: PLAIN_DOCROOT, send)
    elif path == "/pid":
        await _send_text(send, 200, PID.decode())
    else:
        await _send_text(send, 404, "no such route")


_with_asgi = AsgiMiddleware(_inner_asgi)


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI entry point (``realdoc_testapp:asgi_app``).

    Lifespan and ``/with`` go through the middleware (lifespan must come out
    untouched); ``/without`` and ``/pid`` reach the app directly.
    """
    if scope["type"] == "lifespan" or scope.get("path") == "/with":
        await _with_asgi(scope, receive, send)
    else:
        await _inner_asgi(scope, receive, send)
