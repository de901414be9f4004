"""Framework adapters: thin glue from Flask, Starlette and Django to realdoc.

Each module imports its framework when it is imported itself (never from
``import realdoc``): :mod:`realdoc.contrib.flask`, :mod:`realdoc.contrib.starlette`,
:mod:`realdoc.contrib.django`.  The framework-neutral part is :mod:`realdoc._assets`.
"""

from .._assets import Manifest, find_asset, find_in_other_releases, hash_assets, is_hashed

__all__ = ["Manifest", "find_asset", "find_in_other_releases", "hash_assets", "is_hashed"]
