"""Resolution without cache: realdoc vs os.path.realpath, Path.resolve and libc realpath(3).

One benchmark per (case, contender), ids ``d<depth>-<shape>-<contender>``:
depths 2, 4, 7, 12, 20 (components below a ``/tmp/rdXXXXXXXX`` root), the
link first (``start``), in the ``middle``, or ``two-level`` (``current -> A
-> releases/r1``); contenders ``realdoc.realpath``, ``realdoc.first_link``
(with and without ``start``) on both implementations, ``os.path.realpath``
(also ``strict=True``), ``pathlib.Path.resolve`` and libc ``realpath(3)``
through ctypes.  The Resolver refresh (``every=0``: every call resolves; the
compiled core replays readlink + openat2 + close, "refresh by prediction")
runs on the same trees.  See bench/conftest.py for the command and options.
"""

from __future__ import annotations

from typing import Any, Callable, List

import machinery as M
import pytest

CASE_IDS = [pytest.param((d, s), id=f"d{d}-{s}") for d in M.DEPTHS for s in M.SHAPES]


def _contenders(group: List[M.Contender]) -> List[Any]:
    return [pytest.param(c, id=c.key) for c in group]


@pytest.mark.parametrize("contender", _contenders(M.COLD))
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_cold(run_case: Callable[..., None], case: M.Case, contender: M.Contender) -> None:
    """One uncached resolution of the case's docroot."""
    run_case("cold", contender, case)


@pytest.mark.parametrize("contender", _contenders(M.REFRESH))
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_refresh(run_case: Callable[..., None], case: M.Case, contender: M.Contender) -> None:
    """A call of an existing ``Resolver(docroot, every=0)``: a refresh every time."""
    run_case("refresh", contender, case)
    r = contender.namespace(case)["r"]
    assert r() == case.real


@pytest.mark.parametrize("case_id", [pytest.param(M.DOCROOT_CASE, id="d7-start")])
def test_ctypes_floor(run_case: Callable[..., None], case: M.Case) -> None:
    """Not a resolver: a ctypes call with realpath(3)'s marshalling, to read libc's row net."""
    run_case("cold", M.CTYPES_FLOOR, case)
