"""Types of the compiled core, ``realdoc._fastpath``.

It has the pure twin's API and contract, so its types are the twin's:
``Resolver[AnyStr]``, str/bytes overloads of ``realpath``, ``first_link`` and
``resolve``, and the ``Stats`` / ``CacheInfoRow`` dicts.
"""

from ._fastpath_py import Resolver as Resolver
from ._fastpath_py import cache_info as cache_info
from ._fastpath_py import clear as clear
from ._fastpath_py import features as features
from ._fastpath_py import first_link as first_link
from ._fastpath_py import get_maxsize as get_maxsize
from ._fastpath_py import realpath as realpath
from ._fastpath_py import resolve as resolve
from ._fastpath_py import set_features as set_features
from ._fastpath_py import set_maxsize as set_maxsize
from ._fastpath_py import stats as stats

__all__ = [
    "Resolver", "cache_info", "clear", "features", "first_link", "get_maxsize",
    "realpath", "resolve", "set_features", "set_maxsize", "stats",
]
