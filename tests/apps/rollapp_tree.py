"""Deploy trees whose releases hold realdoc_rollapp's code (tests and bench share it)."""

from __future__ import annotations

import pathlib

from realdoc.testing.tree import DeployTree

APPS = pathlib.Path(__file__).resolve().parent
MODULES = ("realdoc_rollapp.py", "realdoc_rollapp_views.py")


def make_tree(base: pathlib.Path, releases: int) -> DeployTree:
    """``base/site`` with releases r1..rN, each holding the app's code with
    ``VERSION`` set to its name and ``public/page.txt``; ``current -> r1``."""
    tree = DeployTree.create(str(base / "site"), releases=releases, files=("page.txt",))
    for name in tree.releases:
        for module in MODULES:
            text = (APPS / module).read_text().replace("@VERSION@", name)
            (pathlib.Path(tree.release_path(name)) / module).write_text(text)
    return tree
