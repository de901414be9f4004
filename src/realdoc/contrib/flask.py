"""Flask: the ``static`` route serves hashed assets across releases.

::

    app = Flask(__name__)            # after realdoc.pin_process(...)
    realdoc.contrib.flask.release_assets(app)

and in templates ``{{ url_for('static', filename=asset('app.css')) }}``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, send_file, url_for

from .._assets import Manifest, find_asset

__all__ = ["release_assets"]


def release_assets(app: Flask, *, manifest: bool = True) -> Flask:
    """Make ``app``'s ``static`` endpoint use :func:`realdoc._assets.find_asset`.

    A file in ``app.static_folder`` (under the process's release once pinned) is
    served as Flask would; a hashed name missing there is served from another
    release still on disk; anything else is a 404.  With ``manifest=True`` (the
    default) the manifest ``staticfiles.json`` that :func:`realdoc._assets.hash_assets`
    wrote in the static folder is read now (FileNotFoundError if missing) and
    templates get ``asset(name)``, the hashed name.  Returns ``app``.
    Raises ValueError when the app has no static folder or route.
    """
    folder = app.static_folder
    if folder is None or "static" not in app.view_functions:
        raise ValueError("the app has no static folder / static route to serve from")

    def static(filename: str) -> Any:
        path = find_asset(folder, filename)
        if path is None:
            abort(404)
        return send_file(path, max_age=app.get_send_file_max_age(filename))

    app.view_functions["static"] = static
    if manifest:
        names = Manifest(folder)
        app.jinja_env.globals["asset"] = names
        app.jinja_env.globals.setdefault("url_for", url_for)
    return app
