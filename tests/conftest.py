"""Shared fixtures: every core test runs against both implementations.

Plain helpers (trees, outcomes, child environments) are in helpers.py.
"""

from __future__ import annotations

import faulthandler
import os
import shutil
import tempfile
from types import ModuleType
from typing import Any, Dict, Iterator, Tuple

import pytest
from helpers import PURE, make_link_chain

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
def both() -> Tuple[Any, ...]:
    """(compiled, pure) for differential checks."""
    return _module("cython"), _fastpath_py


#: Seconds after which the ``watchdog`` fixture ends the run with a traceback.
HANG_SECONDS = 120


@pytest.fixture
def watchdog() -> Iterator[None]:
    """Kill the run with a traceback if a test hangs; reset the pure twin too.

    Used by the bad-input tests (``@pytest.mark.usefixtures("watchdog")``):
    long inputs, link chains, loops and forked children.  The watchdog is a
    thread, so it is not on for every test (3.12+ warns at a fork with threads).
    """
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    old = PURE.set_features(proc=True)
    PURE.clear()
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        PURE.set_features(**old)
        PURE.clear()


@pytest.fixture
def root() -> Iterator[str]:
    """A real (symlink-free) scratch directory readable by everyone (for nobody)."""
    d = os.path.realpath(tempfile.mkdtemp(prefix="rdbat-"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        for dirpath, dirnames, _ in os.walk(d):
            for n in dirnames:
                q = os.path.join(dirpath, n)
                try:
                    if not os.path.islink(q):
                        os.chmod(q, 0o755)
                except OSError:  # deeper than PATH_MAX: rmtree copes without it
                    pass
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def site_paths(root: str) -> Dict[str, str]:
    """``releases/r1|r2/public``, ``current -> releases/r1``, a file, a dangling link."""
    for r in ("r1", "r2"):
        os.makedirs(f"{root}/releases/{r}/public/assets")
    os.symlink("releases/r1", f"{root}/current")
    with open(f"{root}/file", "w") as f:
        f.write("x")
    os.symlink("missing", f"{root}/dangling")
    return {
        "root": root,
        "docroot": f"{root}/current/public",
        "r1": f"{root}/releases/r1/public",
        "r2": f"{root}/releases/r2/public",
        "file": f"{root}/file",
    }


@pytest.fixture(scope="session")
def chain10k() -> Iterator[str]:
    """A 10,000-link chain, made once (on tmpfs when there is one: ext4 takes seconds)."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    d = os.path.realpath(tempfile.mkdtemp(prefix="rdbat-chain-", dir=base))
    try:
        yield make_link_chain(d, 10_000)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def deploy(root: str) -> str:
    """``releases/r1|r2``, ``current -> releases/r1``, a directory ``adir``, a file ``afile``."""
    for r in ("r1", "r2"):
        os.makedirs(f"{root}/releases/{r}")
    os.symlink("releases/r1", f"{root}/current")
    os.mkdir(f"{root}/adir")
    with open(f"{root}/afile", "w"):
        pass
    return root
