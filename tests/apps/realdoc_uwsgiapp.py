"""The app that tests/test_wsgi.py serves from a real uWSGI (pyuwsgi) process.

Configured by the environment: ``REALDOC_DOCROOT`` (the directory served) and
``UWSGIAPP_FILE`` (the file the ``/sendfile*`` routes send).

Routes:

``/sendfile``       ``environ["wsgi.file_wrapper"](file)`` behind ``RealdocMiddleware``.
``/sendfile-raw``   the same without realdoc.
``/sendfile-0.1.0`` the same, its result wrapped as realdoc 0.1.0 did for uWSGI (a
                    ``_PinnedIterable``): uWSGI then cannot use sendfile.
``/stats``          JSON: this worker's pid, the pid that imported the app, and the
                    sum of ``realdoc.stats()["syscalls"]`` in this process.
"""

from __future__ import annotations

import contextvars
import json
import os
from typing import Any, Callable, Dict, Iterable

import realdoc
from realdoc.wsgi import RealdocMiddleware, _PinnedIterable

FILE = os.environ["UWSGIAPP_FILE"]
LOADED_IN = os.getpid()


def send_file(environ: Any, start_response: Callable[..., Any]) -> Iterable[bytes]:
    f = open(FILE, "rb")
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    result: Iterable[bytes] = environ["wsgi.file_wrapper"](f, 65536)
    return result


def send_file_as_0_1_0(environ: Any, start_response: Callable[..., Any]) -> Iterable[bytes]:
    return _PinnedIterable(send_file(environ, start_response), contextvars.copy_context())


def stats(environ: Any, start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = json.dumps({
        "pid": os.getpid(),
        "loaded_in": LOADED_IN,
        "syscalls": sum(realdoc.stats()["syscalls"].values()),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


protected = RealdocMiddleware(send_file)  # docroot from REALDOC_DOCROOT; resolves once here

ROUTES: Dict[str, Callable[..., Iterable[bytes]]] = {
    "/sendfile": protected, "/sendfile-raw": send_file,
    "/sendfile-0.1.0": send_file_as_0_1_0, "/stats": stats}


def application(environ: Any, start_response: Callable[..., Any]) -> Iterable[bytes]:
    route = ROUTES.get(environ.get("PATH_INFO", ""))
    if route is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no such route"]
    return route(environ, start_response)
