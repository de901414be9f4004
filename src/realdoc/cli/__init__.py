"""The ``realdoc`` command line (also ``python -m realdoc``).

:func:`main` is the console script's entry point; the subcommands live in
:mod:`realdoc.cli.commands` (``resolve``, ``switch``), :mod:`realdoc.cli.demo`
and :mod:`realdoc.cli.bench`.
"""

from __future__ import annotations

from .commands import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "build_parser", "main"]
