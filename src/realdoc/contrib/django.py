"""Django: WhiteNoise serving ``STATIC_ROOT`` with hashed assets across releases.

In ``settings.MIDDLEWARE`` put ``"realdoc.contrib.django.WhiteNoiseMiddleware"``
where ``whitenoise.middleware.WhiteNoiseMiddleware`` would go, with
``STATIC_ROOT = BASE_DIR / "static"`` and ``ManifestStaticFilesStorage``.
"""

from __future__ import annotations

from typing import Any

from whitenoise import middleware

from .._assets import find_in_other_releases

__all__ = ["WhiteNoiseMiddleware"]


class WhiteNoiseMiddleware(middleware.WhiteNoiseMiddleware):
    """WhiteNoise's middleware; a hashed name under ``STATIC_URL`` that is not in
    this release's ``STATIC_ROOT`` is served from another release still on disk
    (:func:`realdoc._assets.find_in_other_releases`; ``STATIC_ROOT`` must lie
    under the process's release).  Everything else is WhiteNoise's behaviour."""

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
