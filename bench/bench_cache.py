"""Cache hits and the registry's memory bound.

Hits: ``Resolver()`` and ``resolve(p)`` on both implementations against the
pure-Python floor (the statements ``d.get(p); time.monotonic()``), a
``functools.lru_cache``-wrapped ``os.path.realpath`` and a
``cachetools.TTLCache`` around ``os.path.realpath`` (what a Python user would
otherwise write).  All are timed as inline statements in the same kind of
loop, so the ratios compare the statements themselves.

Memory: ``resolve()`` over 1,000,000 distinct spellings of one real docroot
(``/`` ``//`` ``/./`` ``/.//`` between components: distinct strings, one
directory), in a fresh child process; peak RSS (ru_maxrss) and current RSS
are read before and after, and the registry must hold exactly ``maxsize``
entries.  Each new spelling is a miss that resolves (and evicts).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Callable

import machinery as M
import pytest

from realdoc.testing import DeployTree

HIT_CASE = [pytest.param(M.DOCROOT_CASE, id="d7-start")]


@pytest.mark.parametrize("contender", [pytest.param(c, id=c.key) for c in M.HIT])
@pytest.mark.parametrize("case_id", HIT_CASE)
def test_hit(run_case: Callable[..., None], case: M.Case, contender: M.Contender) -> None:
    """One cache hit (or the floor)."""
    run_case("hit", contender, case)


def test_hit_deploy_tree(benchmark: Any, deploy_tree: DeployTree) -> None:
    """A ``Resolver()`` hit on the testing plugin's deploy tree stays a hit across a flip.

    ``every=3600``: the flip is not seen (that is what ``every`` means), and
    the hit issues no syscall (stats deltas over all rounds).
    """
    import realdoc

    r = realdoc.Resolver(deploy_tree.docroot, every=3600.0)
    first = r()
    deploy_tree.flip("r2")
    before = realdoc.stats()
    benchmark.group = "hit, deploy_tree fixture (per call)"
    result = benchmark(r)
    after = realdoc.stats()
    assert result == first
    assert after["syscalls"] == before["syscalls"]
    benchmark.extra_info["syscalls"] = 0
    benchmark.extra_info["implementation"] = realdoc.implementation


_MEMORY_CHILD = r"""
import json, os, resource, sys, time
from realdoc import {module} as M
root, comps, n = {root!r}, {comps!r}, {paths}
seps = ("/", "//", "/./", "/.//")
page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
def rss_kb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * page_kb
def spell(i):
    out = [root]
    for c in comps:
        i, r = divmod(i, 4)
        out.append(seps[r]); out.append(c)
    return "".join(out)
maxsize = M.get_maxsize()
real = M.realpath(spell(0))
warm = min(2 * maxsize, n // 2)
for i in range(warm):  # warm-up: fill the registry and start evicting
    M.resolve(spell(i))
maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rss0 = rss_kb()
checkpoints = []
t0 = time.perf_counter()
for i in range(warm, n):
    v = M.resolve(spell(i))
    if i % max(n // 10, 1) == 0:
        assert v == real, v
        checkpoints.append(rss_kb())
dt = time.perf_counter() - t0
st = M.stats()
json.dump({{
    "paths": n, "maxsize": maxsize, "entries": st["entries"], "misses": st["misses"],
    "maxrss_before_kb": maxrss0,
    "maxrss_after_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "rss_before_kb": rss0, "rss_after_kb": rss_kb(), "rss_checkpoints_kb": checkpoints,
    "rss_growth_kb": rss_kb() - rss0,
    "us_per_miss": dt / max(n - warm, 1) * 1e6, "seconds": dt,
    "syscalls_per_miss": sum(st["syscalls"].values()) / max(st["misses"], 1),
    "example": spell(n - 1),
}}, sys.stdout)
"""


@pytest.mark.parametrize("impl", ["cython", "python"])
@pytest.mark.parametrize("case_id", [pytest.param((12, "start"), id="d12-start")])
def test_registry_memory(benchmark: Any, request: pytest.FixtureRequest, case: M.Case,
                         impl: str, summary: Any) -> None:
    """``resolve()`` over many distinct docroots stays bounded by the registry size."""
    if impl not in M.implementations():
        pytest.skip("the compiled core is not built")
    paths = request.config.getoption("--realdoc-registry-paths")
    if impl == "python":
        paths //= 20  # the pure twin's eviction scan makes a miss ~10x dearer
    comps = os.path.relpath(case.path, case.root).split(os.sep)
    assert 4 ** len(comps) >= paths, "not enough distinct spellings"
    module = "_fastpath" if impl == "cython" else "_fastpath_py"
    code = _MEMORY_CHILD.format(module=module, root=case.root, comps=comps, paths=paths)

    def child() -> Any:
        out = subprocess.run([sys.executable, "-c", code], env=M.child_env(),
                             capture_output=True, text=True, timeout=3600)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    benchmark.group = "registry memory (one child run)"
    m = benchmark.pedantic(child, rounds=1, iterations=1)
    benchmark.extra_info.update(m)
    summary.MEMORY[impl] = m
    assert m["entries"] == min(m["maxsize"], paths)
    assert m["rss_growth_kb"] < 16 * 1024, m
