"""Jinja2: templates read from the request's pinned docroot, cached per release.

::

    env = jinja2.Environment(loader=realdoc.contrib.jinja2.DocrootLoader("templates"))
    # behind realdoc.wsgi/asgi.RealdocMiddleware(app, "/srv/site/current")
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Dict, MutableMapping, Optional, Tuple

from jinja2 import BaseLoader, Environment, Template, TemplateNotFound
from jinja2.loaders import split_template_path

from .._context import docroot

__all__ = ["DocrootLoader"]


class DocrootLoader(BaseLoader):
    """Load ``name`` from ``realdoc.docroot()/subdir/name``; cache by (docroot, name).

    The docroot is the request's (set by a realdoc middleware), so a request
    renders every template, includes and extends too, from one release.
    Compiled templates are kept per docroot and name (at most ``maxsize``, the
    oldest dropped first): two releases' templates never mix in one cache, and
    a worker serving both releases during a flip compiles each template once
    per release.  The Environment's own cache is keyed by name only, so the
    templates it returns check the request's docroot (``uptodate``) and reload
    through this loader when it differs: the Environment must have
    ``auto_reload=True`` (its default) or ``cache_size=0``; otherwise
    :meth:`load` raises RuntimeError (Flask turns ``auto_reload`` off unless
    ``TEMPLATES_AUTO_RELOAD`` is set).  A template file that changes in place
    under one docroot is not re-read (releases are immutable).  Outside a
    request: LookupError.  Syscalls: one ``open``/``read`` per template and
    release, then none.
    """

    def __init__(self, subdir: str = "", *, encoding: str = "utf-8", maxsize: int = 512) -> None:
        if not isinstance(subdir, str):
            raise TypeError(f"subdir must be a str, not {type(subdir).__name__}")
        if not isinstance(maxsize, int) or isinstance(maxsize, bool) or maxsize < 1:
            raise ValueError(f"maxsize must be an int >= 1, not {maxsize!r}")
        self.subdir = subdir
        self.encoding = encoding
        self.maxsize = maxsize
        self._code: Dict[Tuple[str, str], Tuple[Any, str]] = {}
        self._lock = threading.Lock()

    def _path(self, root: str, name: str) -> str:
        parts = split_template_path(name)  # TemplateNotFound for ".."
        base = os.path.join(root, self.subdir) if self.subdir else root
        return os.path.join(base, *parts)

    def get_source(self, environment: Environment,
                   template: str) -> Tuple[str, Optional[str], Optional[Callable[[], bool]]]:
        root = docroot()
        path = self._path(root, template)
        try:
            with open(path, encoding=self.encoding) as f:
                source = f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise TemplateNotFound(template) from None
        return source, path, lambda: docroot() == root

    def load(self, environment: Environment, name: str,
             globals: Optional[MutableMapping[str, Any]] = None) -> Template:
        if not environment.auto_reload and environment.cache is not None:
            raise RuntimeError(
                "DocrootLoader needs Environment(auto_reload=True) (the default) or "
                "cache_size=0: the Environment caches by name only, so with "
                "auto_reload off a template of one release would serve the others")
        root = docroot()
        key = (root, name)
        entry = self._code.get(key)
        if entry is None:
            source, filename, _ = self.get_source(environment, name)
            code = environment.compile(source, name, filename)
            entry = (code, filename or name)
            with self._lock:
                while len(self._code) >= self.maxsize:
                    self._code.pop(next(iter(self._code)))
                self._code[key] = entry
        return environment.template_class.from_code(
            environment, entry[0], environment.make_globals(globals),
            lambda: docroot() == root)
