"""Starlette / FastAPI static files: hashed assets across releases, and the request's docroot.

::

    from realdoc.contrib.starlette import StaticFiles
    app.mount("/static", StaticFiles(directory=RELEASE + "/static"), name="static")

    # content deployed apart from the code (request scope, mod_realdoc's case):
    from realdoc.contrib.starlette import DocrootStaticFiles
    app.mount("/docs", DocrootStaticFiles(), name="docs")
    app = realdoc.asgi.RealdocMiddleware(app, "/srv/docs/current")
"""

from __future__ import annotations

import os
from typing import Any, List, Optional, Tuple

from starlette import staticfiles

from .._assets import find_in_other_releases
from .._context import docroot, join

__all__ = ["DocrootStaticFiles", "StaticFiles"]


class StaticFiles(staticfiles.StaticFiles):
    """Starlette's ``StaticFiles``; a hashed name missing from its directories is
    looked up in the same directory of the other releases still on disk
    (:func:`realdoc._assets.find_in_other_releases`; the directory must lie under
    the process's release).  Everything else is Starlette's behaviour."""

    def lookup_path(self, path: str) -> Tuple[str, Optional[os.stat_result]]:
        full_path, st = super().lookup_path(path)
        if st is not None:
            return full_path, st
        for directory in self.all_directories:
            found = find_in_other_releases(os.fspath(directory), path)
            if found is not None:
                try:
                    return found, os.stat(found)
                except OSError:  # pruned meanwhile
                    continue
        return "", None


class DocrootStaticFiles(staticfiles.StaticFiles):
    """Starlette's ``StaticFiles`` serving from the request's pinned docroot.

    Each request's files come from :func:`realdoc.docroot` (joined with ``subdir``
    when given), the docroot that :class:`realdoc.asgi.RealdocMiddleware` resolved
    when the request started: a flip during the request, or between two
    requests of one page, never mixes releases within a request.  Starlette
    looks files up in anyio's worker thread, which runs in a copy of the
    request's context, so the value is there.  Outside a request (no middleware
    around the app) the lookup raises LookupError.  ``html`` and
    ``follow_symlink`` are Starlette's; there is no ``directory`` or
    ``packages``.  No syscall beyond Starlette's own.
    """

    def __init__(self, *, subdir: str = "", html: bool = False,
                 follow_symlink: bool = False) -> None:
        if not isinstance(subdir, str):
            raise TypeError(f"subdir must be a str, not {type(subdir).__name__}")
        self.subdir = subdir
        super().__init__(directory=None, html=html, check_dir=False,
                         follow_symlink=follow_symlink)

    @property
    def all_directories(self) -> List[Any]:
        root = docroot()
        return [join(root, self.subdir) if self.subdir else root]

    @all_directories.setter
    def all_directories(self, value: Any) -> None:  # Starlette's __init__ sets []
        pass
