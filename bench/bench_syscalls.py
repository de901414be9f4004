"""Syscalls per resolution, counted by strace in a child process, for every resolver and case.

For each contender (realdoc's resolvers on both implementations, the
Resolver refresh and hits, ``os.path.realpath``, ``Path.resolve``, libc
``realpath(3)``, the caches a Python user would write) and each case, a fresh
``python -c`` child binds the contender, warms it up with two calls, then
makes one call between two strace markers; a second child with an empty
body gives the baseline that is subtracted
(:func:`realdoc.testing.count_syscalls_in_child`, via
:func:`machinery.count_in_child`).  The counts land in the benchmark's
``extra_info`` (by case and syscall name) and in the end-of-run table; the
benchmark's time is only the cost of the traced children, not a resolution.

Counts are exact, so the syscall targets are asserted here: realdoc's
``realpath`` never above libc's and at most 3 from depth 6 on,
``first_link`` with ``start`` at the link 1, a compiled refresh a readlink
per link plus openat2 + close (3 for one link, 4 for ``two-level``), a hit
0, and the pure twin never above ``os.path.realpath``.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, Dict, List, Tuple

import machinery as M
import pytest

ALL_CASES = [(d, s) for d in M.DEPTHS for s in M.SHAPES]
HITS = [c for c in M.HIT if c.key != "floor"]


def _selected(config: pytest.Config) -> List[Tuple[int, str]]:
    wanted = {int(d) for d in config.getoption("--realdoc-depths").split(",") if d.strip()}
    return [cid for cid in ALL_CASES if cid[0] in wanted]


def _count_all(summary: Any, trees: M.Trees, contender: M.Contender,
               case_ids: List[Tuple[int, str]]
               ) -> Dict[str, M.Syscalls]:
    """Count ``contender`` on every case (two children at a time); cache in the summary."""
    todo = [trees.get(*cid) for cid in case_ids
            if (contender.key, f"d{cid[0]}-{cid[1]}") not in summary.CHILD_SYSCALLS]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for case, sc in zip(todo, pool.map(lambda c: M.count_in_child(contender, c), todo)):
            summary.CHILD_SYSCALLS[(contender.key, case.name)] = sc
    return {f"d{d}-{s}": summary.CHILD_SYSCALLS[(contender.key, f"d{d}-{s}")]
            for d, s in case_ids}


@pytest.fixture
def strace_required(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--realdoc-no-strace"):
        pytest.skip("--realdoc-no-strace")
    ok, why = M.strace_status()
    if not ok:
        pytest.skip(why)


@pytest.mark.parametrize(
    "contender", [pytest.param(c, id=c.key) for c in [*M.COLD, *M.REFRESH, *HITS]])
def test_syscalls(benchmark: Any, request: pytest.FixtureRequest, strace_required: None,
                  summary: Any, trees: M.Trees, contender: M.Contender) -> None:
    """Syscalls of one call of ``contender`` on every case, in strace'd children."""
    if not contender.available:
        pytest.skip(f"{contender.label} is not available here")
    case_ids = _selected(request.config)
    if contender in HITS:
        case_ids = [M.DOCROOT_CASE] if M.DOCROOT_CASE in case_ids else case_ids[:1]
    benchmark.group = "syscalls: strace'd children (time = the counting, not a resolution)"
    counts = benchmark.pedantic(_count_all, args=(summary, trees, contender, case_ids),
                                rounds=1, iterations=1)
    benchmark.extra_info.update({
        "contender": contender.key, "label": contender.label, "method": "strace-child",
        "syscalls": {name: sc.as_dict() for name, sc in counts.items()},
    })
    totals = {name: sc.total for name, sc in counts.items()}
    assert all(t is not None for t in totals.values()), counts

    key = contender.key
    if key == "realpath-cython" or key == "realpath-python":
        libc = _count_all(summary, trees, M.CONTENDERS["libc-realpath"], case_ids) \
            if M.CONTENDERS["libc-realpath"].available else {}
        for name, t in totals.items():
            if name in libc and libc[name].total is not None:
                assert t <= libc[name].total, (name, counts[name], libc[name])
            if int(name.split("-")[0][1:]) >= 6:
                assert t <= 3, (name, counts[name])
    if key.startswith("first_link_start-"):
        assert set(totals.values()) == {1}, counts
    if key == "refresh-cython":
        for name, t in totals.items():
            assert t <= (4 if name.endswith("two-level") else 3), (name, counts[name])
    if key.startswith("hit-"):
        assert set(totals.values()) == {0}, counts
    if key in ("realpath-python", "refresh-python"):
        osr = _count_all(summary, trees, M.CONTENDERS["os.path.realpath"], case_ids)
        for name, t in totals.items():
            assert t <= osr[name].total, (name, counts[name], osr[name])
