"""Parsing of realdoc's boolean environment switches."""

from __future__ import annotations

import os
import warnings

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def env_flag(name: str) -> bool:
    """True when environment variable ``name`` is 1/true/yes/on (any case).

    Unset, empty, 0/false/no/off mean False.  Any other value warns and counts
    as False, so a typo never silently flips behaviour the "on" way.
    """
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value not in _FALSE:
        warnings.warn(f"{name}={os.environ[name]!r} is not a boolean (use 1 or 0); "
                      "treated as 0", RuntimeWarning, stacklevel=2)
    return False
