"""How this copy of realdoc was built.

This is the source tree's default (a checkout, an in-place or editable build).
``setup.py`` writes this module anew into every built package with the
build-time choice, so a wheel built with ``REALDOC_NO_EXTENSIONS=1`` knows it
was meant to be pure and ``realdoc._impl`` does not warn about the missing core.
"""

#: True when built with REALDOC_NO_EXTENSIONS=1: the pure twin by choice.
NO_EXTENSIONS = False
