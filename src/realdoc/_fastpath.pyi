"""Types of the compiled core, ``realdoc._fastpath``.

It has the pure twin's API and contract, so its types are the twin's:
``Resolver[AnyStr]``, str/bytes overloads of ``realpath``, ``first_link`` and
``resolve``, and the ``Stats`` / ``CacheInfoRow`` dicts.
"""

from ._fastpath_py import (
    Resolver as Resolver,
    cache_info as cache_info,
    clear as clear,
    features as features,
    first_link as first_link,
    get_maxsize as get_maxsize,
    realpath as realpath,
    resolve as resolve,
    set_features as set_features,
    set_maxsize as set_maxsize,
    stats as stats,
)

__all__ = [
    "Resolver", "cache_info", "clear", "features", "first_link", "get_maxsize",
    "realpath", "resolve", "set_features", "set_maxsize", "stats",
]
