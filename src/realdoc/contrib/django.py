"""Django: WhiteNoise serving ``STATIC_ROOT`` with hashed assets across releases,
and a view serving the request's pinned docroot.

In ``settings.MIDDLEWARE`` put ``"realdoc.contrib.django.WhiteNoiseMiddleware"``
where ``whitenoise.middleware.WhiteNoiseMiddleware`` would go, with
``STATIC_ROOT = BASE_DIR / "static"`` and ``ManifestStaticFilesStorage``.

For content deployed apart from the code (request scope)::

    path("docs/<path:path>", realdoc.contrib.django.serve_docroot)
    # wsgi.py: application = RealdocMiddleware(get_wsgi_application(), "/srv/docs/current")

The WhiteNoise part imports ``whitenoise`` when first used, so
:func:`serve_docroot` works without it.
"""

from __future__ import annotations

from typing import Any

from django.views import static

from .._assets import find_in_other_releases
from .._context import docroot, join

__all__ = ["WhiteNoiseMiddleware", "serve_docroot"]


def serve_docroot(request: Any, path: str, subdir: str = "", show_indexes: bool = False) -> Any:
    """Serve ``path`` from the request's pinned docroot (``realdoc.docroot()``,
    joined with ``subdir``) with :func:`django.views.static.serve`: Django's
    checks (no escape from the directory, 404 for a missing file, 304 for
    If-Modified-Since) and its headers.  The docroot was resolved once when the
    request entered :class:`realdoc.wsgi.RealdocMiddleware`, so a flip during the
    request changes nothing.  LookupError outside a request (no middleware)."""
    root = docroot()
    return static.serve(request, path, document_root=join(root, subdir) if subdir else root,
                        show_indexes=show_indexes)


def __getattr__(name: str) -> Any:
    if name == "WhiteNoiseMiddleware":
        return _whitenoise_middleware()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_CLASS: Any = None


def _whitenoise_middleware() -> Any:
    global _CLASS
    if _CLASS is None:
        from whitenoise import middleware

        _CLASS = type("WhiteNoiseMiddleware", (_Lookup, middleware.WhiteNoiseMiddleware),
                      {"__module__": __name__, "__doc__": _Lookup.__doc__,
                       "__qualname__": "WhiteNoiseMiddleware"})
    return _CLASS


class _Lookup:
    """WhiteNoise's middleware; a hashed name under ``STATIC_URL`` that is not in
    this release's ``STATIC_ROOT`` is served from another release still on disk
    (:func:`realdoc._assets.find_in_other_releases`; ``STATIC_ROOT`` must lie
    under the process's release).  Everything else is WhiteNoise's behaviour."""

    autorefresh: Any
    files: Any
    static_root: Any
    static_prefix: Any
    find_file: Any
    get_static_file: Any
    serve: Any
    get_response: Any

    def __call__(self, request: Any) -> Any:
        if self.autorefresh:
            static_file = self.find_file(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is None and self.static_root:
            url = request.path_info
            if url.startswith(self.static_prefix):
                found = find_in_other_releases(str(self.static_root),
                                               url[len(self.static_prefix):])
                if found is not None:
                    static_file = self.get_static_file(found, url)
        if static_file is not None:
            return self.serve(static_file, request)
        return self.get_response(request)
