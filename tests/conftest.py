"""Shared fixtures: every core test runs against both implementations."""

from __future__ import annotations

import os
from types import ModuleType
from typing import Iterator

import pytest

from realdoc import _fastpath_py
from realdoc._config import env_flag

try:
    from realdoc import _fastpath as _compiled
except ImportError:  # pragma: no cover - depends on the build
    _compiled = None  # type: ignore[assignment]

# realdoc's pytest plugin is opt-in (installing realdoc registers none): load it here.
pytest_plugins = ["realdoc.testing"]

REQUIRE_EXTENSIONS = env_flag("REALDOC_REQUIRE_EXTENSIONS")

IMPLS = [
    pytest.param("cython", id="cython", marks=pytest.mark.cython),
    pytest.param("python", id="python"),
]


def _module(name: str) -> ModuleType:
    if name == "python":
        return _fastpath_py
    if _compiled is None:
        if REQUIRE_EXTENSIONS:
            pytest.fail("REALDOC_REQUIRE_EXTENSIONS=1 but realdoc._fastpath is not importable")
        pytest.skip("the Cython extension is not built")
    return _compiled


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """The compiled core or the pure twin, with a clean registry and all features on."""
    mod = _module(request.param)
    mod.clear()
    old = mod.set_features(proc=True, openat2=True)
    try:
        yield mod
    finally:
        mod.set_features(**old)
        mod.clear()


@pytest.fixture
def both() -> tuple:
    """(compiled, pure) for differential checks."""
    return _module("cython"), _fastpath_py


def make_docroot_tree(root: str) -> str:
    """``root/www/releases/r1|r2/public/assets``, ``root/www/current -> releases/r2``;
    returns the docroot ``root/www/current/public/assets``."""
    for r in ("r1", "r2"):
        os.makedirs(os.path.join(root, "www", "releases", r, "public", "assets"))
    os.symlink("releases/r2", os.path.join(root, "www", "current"))
    return os.path.join(root, "www", "current", "public", "assets")
