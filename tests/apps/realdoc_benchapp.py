"""A minimal WSGI app for bench/bench_middleware.py's gunicorn throughput run.

``REALDOC_DOCROOT`` (and optionally ``REALDOC_EVERY``) configure the middleware.
Routes: ``/bare`` answers ``ok`` directly; ``/realdoc`` answers the pinned
docroot from behind ``RealdocMiddleware``.  Both do no file I/O, so the
difference between them is the middleware alone (plus the route check, equal
for both).
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List

from realdoc.wsgi import RealdocMiddleware


def bare(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
    body = b"ok"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [body]


def _pinned(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
    body = environ["realdoc.docroot"].encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


wrapped = RealdocMiddleware(_pinned)


def app(environ: Dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """``realdoc_benchapp:app``."""
    if environ.get("PATH_INFO") == "/realdoc":
        return wrapped(environ, start_response)
    return bare(environ, start_response)
