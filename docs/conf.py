"""Sphinx configuration for realdoc's docs site.

Build (warnings are errors, as in .ci/run)::

    python3 -m pip install '.[docs]'
    python3 -m sphinx -W --keep-going -b html docs docs/_build/html

Autodoc imports the *installed* realdoc (this file does not touch sys.path);
from a checkout with an in-place build, prefix the command with PYTHONPATH=src.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

import realdoc

HERE = os.path.dirname(os.path.abspath(__file__))

project = "realdoc"
author = "the realdoc authors"
copyright = "2026, the realdoc authors"
release = version = realdoc.__version__

extensions = [
    "sphinx.ext.autodoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# _*.md are fragments included by other pages, not pages of their own.
exclude_patterns = ["_build", "_*.md", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"

html_theme = "furo"
html_title = f"realdoc {release}"
html_static_path: list = []

# ---------------------------------------------------------------------------
# The compiled core's docstrings may defer to the pure twin's ("Compiled twin of
# ``realdoc._fastpath_py.X``, whose docstring is the contract."): render the twin's
# docstring, the contract, followed by what the compiled one adds.
_TWIN_POINTER = re.compile(
    r"^Compiled twin of ``(realdoc\._fastpath_py\.[\w.]+)``, whose docstring is the contract\.\s*$")


def _twin_docstring(app, what, name, obj, options, lines):  # noqa: ARG001
    short = name.rpartition(".")[2]
    if lines and lines[0].startswith(short + "("):
        # Cython's embedded signature, left in when the directive gives its own.
        del lines[0]
        while lines and not lines[0].strip():
            del lines[0]
    if not lines:
        return
    m = _TWIN_POINTER.match(lines[0])
    if not m:
        return
    module, _, attr = m.group(1).rpartition(".")
    twin = getattr(importlib.import_module(module), attr)
    contract = inspect.getdoc(twin) or ""
    rest = [line for line in lines[1:]]
    while rest and not rest[0].strip():
        rest.pop(0)
    lines[:] = contract.splitlines()
    if rest:
        lines += ["", "*The compiled core.* " + rest[0]] + rest[1:]


def _contract_of(obj):
    """The pure twin's class that is the contract of ``obj``, or None."""
    lines = (inspect.getdoc(obj) or "").splitlines()
    for line in lines[:3]:  # after Cython's embedded signature, if any
        m = _TWIN_POINTER.match(line)
        if m:
            module, _, attr = m.group(1).rpartition(".")
            return getattr(importlib.import_module(module), attr)
    if getattr(obj, "__module__", "") == "realdoc._fastpath_py":
        return obj
    return None


def _twin_signature(app, what, name, obj, options, signature, return_annotation):  # noqa: ARG001
    """A class whose contract is the twin's: its ``__init__`` signature, unannotated."""
    if what != "class" or not inspect.isclass(obj):
        return None
    twin = _contract_of(obj)
    if twin is None or "__init__" not in vars(twin):
        return None
    sig = inspect.signature(twin.__init__)
    params = [p.replace(annotation=inspect.Parameter.empty)
              for p in list(sig.parameters.values())[1:]]  # without self
    sig = sig.replace(parameters=params, return_annotation=inspect.Signature.empty)
    return str(sig), None


# ---------------------------------------------------------------------------
# ``cli-help`` directive: the argparse help of ``realdoc`` or one subcommand,
# generated from realdoc.cli.build_parser() so the CLI page cannot drift.
class CliHelp(SphinxDirective):
    """``.. cli-help:: [SUBCOMMAND]``: a literal block with that --help text."""

    optional_arguments = 1
    has_content = False

    def run(self):
        import argparse

        from realdoc.cli import build_parser

        old = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "88"
        try:
            parser = build_parser()
            parser.prog = "realdoc"
            if self.arguments:
                name = self.arguments[0]
                subparsers = [a for a in parser._actions
                              if isinstance(a, argparse._SubParsersAction)]
                choices = subparsers[0].choices if subparsers else {}
                if name not in choices:
                    raise self.error(f"cli-help: no subcommand {name!r} "
                                     f"(have: {', '.join(choices)})")
                parser = choices[name]
            text = parser.format_help()
        finally:
            if old is None:
                os.environ.pop("COLUMNS", None)
            else:
                os.environ["COLUMNS"] = old
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def setup(app):
    app.connect("autodoc-process-docstring", _twin_docstring)
    app.connect("autodoc-process-signature", _twin_signature)
    app.add_directive("cli-help", CliHelp)
    return {"parallel_read_safe": True}


if realdoc.implementation != "cython" and sys.platform.startswith("linux"):
    # The reference is the same for both; say which one autodoc read.
    print("realdoc docs: documenting the pure-Python implementation", file=sys.stderr)
