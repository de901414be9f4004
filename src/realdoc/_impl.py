"""Pick the compiled core or its pure-Python twin, once, at import.

On Linux a missing extension (without the opt-out) warns once with RuntimeWarning.

``REALDOC_NO_EXTENSIONS=1`` (or true/yes/on) selects the pure twin; so does a
missing or unloadable extension.  ``IMPLEMENTATION`` says which one is active:
``"cython"`` or ``"python"``.
"""

from __future__ import annotations

import sys
import warnings
from typing import TYPE_CHECKING

from ._config import env_flag

NO_EXTENSIONS = env_flag("REALDOC_NO_EXTENSIONS")

if TYPE_CHECKING:
    from . import _fastpath_py as impl
else:
    if NO_EXTENSIONS:
        from . import _fastpath_py as impl
    else:
        try:
            from . import _fastpath as impl
        except ImportError as exc:  # not built: no compiler, not Linux, or opted out at build
            from . import _fastpath_py as impl

            if sys.platform.startswith("linux"):
                warnings.warn(
                    f"realdoc: the compiled core is not available ({exc}); using the "
                    "pure-Python implementation, which is correct but slower. Reinstall "
                    "with a C compiler, or set REALDOC_NO_EXTENSIONS=1 to choose the pure "
                    "implementation without this warning.",
                    RuntimeWarning,
                    stacklevel=2,
                )

IMPLEMENTATION = "python" if impl.__name__.endswith("_py") else "cython"

realpath = impl.realpath
first_link = impl.first_link
Resolver = impl.Resolver
resolve = impl.resolve
stats = impl.stats
cache_info = impl.cache_info
clear = impl.clear
set_maxsize = impl.set_maxsize
get_maxsize = impl.get_maxsize
features = impl.features
set_features = impl.set_features
