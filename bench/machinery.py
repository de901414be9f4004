"""The benchmark suite's machinery, on top of ``realdoc bench`` (:mod:`realdoc.cli.bench`).

Not installed: imported as ``machinery`` by bench/conftest.py, the ``bench_*.py``
files and bench/plot.py (pytest and ``python3 bench/plot.py`` put bench/ on
``sys.path``).  From :mod:`realdoc.cli.bench` it takes the trees (:class:`Case`,
:func:`build_case`), the rows (:class:`Contender`), the timing loop
(:func:`make_loop`, :func:`time_loops`), the in-process syscall counter
(:func:`count_syscalls`) and :func:`machine_info`, and re-exports them.  It adds:

- the suite's cases: :data:`DEPTHS` x ``SHAPES``, built on demand by :class:`Trees`;
- the full contender set, grouped as the suite reports them: :data:`COLD`,
  :data:`REFRESH`, :data:`HIT` (with ``os.path.realpath(strict=True)`` and
  ``functools.lru_cache``, which the short command leaves out), :data:`CTYPES_FLOOR`,
  all by key in :data:`CONTENDERS`;
- syscalls counted in a fresh strace'd child (:func:`count_in_child`).
"""

from __future__ import annotations

import functools
import os
import pathlib
import shutil
import sys
from typing import Any, Dict, List, Tuple

import realdoc
from realdoc.cli.bench import (
    DOCROOT_CASE as DOCROOT_CASE,
    REFERENCES,
    SHAPES as SHAPES,
    Case as Case,
    Contender as Contender,
    LoopFn as LoopFn,
    Syscalls as Syscalls,
    batch_ns as batch_ns,
    build_case as build_case,
    count_syscalls as count_syscalls,
    implementations as implementations,
    machine_info as machine_info,
    make_loop as make_loop,
    realdoc_rows,
    strace_status as strace_status,
    time_loops as time_loops,
)

HERE = pathlib.Path(__file__).resolve().parent

#: Depths of the suite's trees (components below the temporary root).
DEPTHS: Tuple[int, ...] = (2, 4, 7, 12, 20)


class Trees:
    """Build cases on demand (one temporary root each) and remove them all on close."""

    def __init__(self, parent: str = "/tmp") -> None:
        self.parent = parent
        self._cases: Dict[Tuple[int, str], Case] = {}

    def get(self, depth: int, shape: str) -> Case:
        """The case for ``(depth, shape)``, built on first use."""
        key = (depth, shape)
        if key not in self._cases:
            self._cases[key] = build_case(depth, shape, self.parent)
        return self._cases[key]

    def close(self) -> None:
        """Remove every tree built (and the registry entries ``resolve()`` made for them)."""
        for case in self._cases.values():
            shutil.rmtree(case.root, ignore_errors=True)
            for mod in implementations().values():
                mod.clear(case.root)
        self._cases.clear()

    def __enter__(self) -> Trees:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------- contenders

_STRICT = Contender("os.path.realpath-strict", "os.path.realpath(strict=True)",
                    "f(p, strict=True)", lambda c: {"f": os.path.realpath, "p": c.path},
                    requires=lambda: sys.version_info >= (3, 10))
_LRU = Contender("lru_cache", "functools.lru_cache(os.path.realpath) hit", "f(p)",
                 lambda c: {"f": functools.lru_cache(maxsize=1024)(os.path.realpath),
                            "p": c.path})

#: Every contender of the suite, by key.
CONTENDERS: Dict[str, Contender] = {
    c.key: c for c in [*realdoc_rows("cython"), *realdoc_rows("python"), *REFERENCES,
                       _STRICT, _LRU]}


def _group(*keys: str) -> List[Contender]:
    return [CONTENDERS[k] for k in keys]


def _both(*kinds: str) -> List[str]:
    return [f"{kind}-{impl}" for kind in kinds for impl in ("cython", "python")]


#: Resolution without cache, one call each.
COLD = _group(*_both("realpath", "first_link", "first_link_start"), "os.path.realpath",
              "os.path.realpath-strict", "Path.resolve", "libc-realpath")
#: The Resolver refresh (every=0: every call resolves; the compiled core by prediction).
REFRESH = _group(*_both("refresh"))
#: Cache hits, and the caches a Python user would otherwise write.
HIT = _group(*_both("hit-Resolver", "hit-resolve"), "floor", "lru_cache", "TTLCache")
#: Not a resolver: what a ctypes call costs (libc's row includes it).
CTYPES_FLOOR = CONTENDERS["ctypes-floor"]


# ----------------------------------------------------------------------------- strace'd children


def child_env() -> Dict[str, str]:
    """os.environ with this realdoc's parent directory and bench/ first on PYTHONPATH."""
    src = str(pathlib.Path(realdoc.__file__).resolve().parent.parent)
    old = os.environ.get("PYTHONPATH", "")
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (src, str(HERE), old) if p))


def child_namespace(key: str, root: str, depth: int, shape: str) -> Dict[str, Any]:
    """Names for contender ``key`` on an existing case: the set-up of :func:`count_in_child`."""
    return CONTENDERS[key].namespace(Case.at(root, depth, shape))


def count_in_child(contender: Contender, case: Case, timeout: float = 120) -> Syscalls:
    """Count one call of ``contender`` on ``case`` in a fresh child under ``strace -f``.

    The child binds and warms up the contender (two calls) before the BEGIN
    marker and makes one call between the markers; a second child with an
    empty body gives the baseline that is subtracted
    (:func:`realdoc.testing.count_syscalls_in_child`).  ``skipped`` (with the
    reason in ``note``) when strace cannot be used.
    """
    from realdoc.testing import strace

    ok, why = strace_status()
    if not ok:
        return Syscalls("skipped", note=why)
    setup = (f"from machinery import child_namespace\n"
             f"globals().update(child_namespace({contender.key!r}, {case.root!r}, "
             f"{case.depth!r}, {case.shape!r}))\n")
    try:
        trace = strace.count_syscalls_in_child(contender.stmt, setup=setup, env=child_env(),
                                               timeout=timeout)
    except strace.StraceUnavailable as e:
        return Syscalls("skipped", note=str(e))
    return Syscalls("strace-child", {k: float(v) for k, v in trace.counts.items() if v})
