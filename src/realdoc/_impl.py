"""Pick the compiled core or its pure-Python twin, once, at import.

``REALDOC_NO_EXTENSIONS=1`` (or true/yes/on) selects the pure twin; so does a
missing or unloadable extension.  ``IMPLEMENTATION`` says which one is active:
``"cython"`` or ``"python"``.

On Linux, falling back without the opt-out (``REALDOC_NO_EXTENSIONS=1`` at run
time, or at build time: recorded in ``realdoc._build_info`` by ``setup.py``)
warns once with RuntimeWarning,
in one of two ways: the core *is not built* (no ``realdoc._fastpath`` at
all: a pure build, or a source checkout before ``build_ext --inplace``), or
it *failed to load* (the file is there; the loader's own error is shown).
"""

from __future__ import annotations

import importlib
import sys
import warnings
from typing import TYPE_CHECKING

from . import _build_info
from ._config import env_flag

NO_EXTENSIONS = env_flag("REALDOC_NO_EXTENSIONS")

#: The compiled core's module name.
CORE = f"{__package__}._fastpath"

_HOW_TO_BUILD = (
    "`pip install .` (a C compiler is needed), or `python setup.py build_ext --inplace` "
    "in a source checkout"
)
_FALLING_BACK = (
    "Using the pure-Python implementation meanwhile: correct, but slower. Set "
    "REALDOC_NO_EXTENSIONS=1 to choose it without this warning."
)


def fallback_warning(exc: ImportError) -> str:
    """The RuntimeWarning text for a compiled core that could not be imported as ``exc``.

    A ``ModuleNotFoundError`` for :data:`CORE` itself means the core is not
    built; any other ImportError means it is there but failed to load, and
    the loader's error is quoted.
    """
    if isinstance(exc, ModuleNotFoundError) and exc.name == CORE:
        return (f"realdoc: the compiled core ({CORE}) is not built. Build it with "
                f"{_HOW_TO_BUILD}. {_FALLING_BACK}")
    return (f"realdoc: the compiled core ({CORE}) failed to load: {type(exc).__name__}: "
            f"{exc}. Rebuild it with {_HOW_TO_BUILD}. {_FALLING_BACK}")


if TYPE_CHECKING:
    from . import _fastpath_py as impl
else:
    if NO_EXTENSIONS:
        from . import _fastpath_py as impl
    else:
        try:
            # import_module, not `from . import _fastpath`: that form reports a missing
            # submodule of a package still initialising as a "circular import".
            impl = importlib.import_module(CORE)
        except ImportError as exc:
            from . import _fastpath_py as impl

            if sys.platform.startswith("linux") and not _build_info.NO_EXTENSIONS:
                warnings.warn(fallback_warning(exc), RuntimeWarning, stacklevel=2)

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
