"""Starlette / FastAPI: ``StaticFiles`` that serves hashed assets across releases.

::

    from realdoc.contrib.starlette import StaticFiles
    app.mount("/static", StaticFiles(directory=RELEASE + "/static"), name="static")
"""

from __future__ import annotations

import os
from typing import Tuple, Optional

from starlette import staticfiles

from .._assets import find_in_other_releases

__all__ = ["StaticFiles"]


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
