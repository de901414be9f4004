"""Shared set-up of realdoc's pytest-benchmark suite (not part of the default test run).

Run it all with one command from the checkout (drop ``PYTHONPATH=src`` once
realdoc is installed)::

    PYTHONPATH=src python3 -m pytest bench --benchmark-only \\
        --benchmark-group-by=group --benchmark-columns=min,median,rounds \\
        --benchmark-json=bench.json --realdoc-report=bench-report.md

Every benchmark times batches of 1000 inline calls (so the table's figures,
per 1000 calls, read as per call in the next smaller unit: ms -> us,
us -> ns), and puts into ``extra_info`` the net ns per call (the empty
loop's cost subtracted), the syscalls per call and how they were counted
(``stats`` deltas for realdoc's own rows, strace for the others).  At the
end a summary prints the tables of docs/performance.md (ns/call,
ratios, syscalls) and the targets met or missed; ``--realdoc-report PATH``
also writes them as Markdown.

Options: ``--realdoc-depths 7`` (a subset of depths), ``--realdoc-time 0.3``
(seconds per benchmark), ``--realdoc-no-strace``, ``--realdoc-registry-paths N``.
"""

from __future__ import annotations

import os
import pathlib
import statistics
import sys
from typing import Any, Dict, Iterator, List, Optional, Tuple

try:
    import realdoc  # noqa: F401
except ImportError:  # a checkout without PYTHONPATH=src
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "src"))

import machinery as M
import pytest
import summary as S

from realdoc.testing.plugin import deploy_tree  # noqa: F401  (the fixture, for the bench files)

BATCH = 1000  # calls per round, in every group


HERE = pathlib.Path(__file__).resolve().parent


def pytest_collect_file(
    file_path: pathlib.Path, parent: pytest.Collector
) -> Optional[pytest.Module]:
    """Collect ``bench/bench_*.py`` too (pytest's default pattern is ``test_*.py``).

    A file named on the command line is collected by pytest itself already.
    """
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and file_path.parent == HERE and not parent.session.isinitpath(file_path)):
        module: pytest.Module = pytest.Module.from_parent(parent, path=file_path)
        return module
    return None


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("realdoc-bench", "realdoc benchmarks")
    g.addoption("--realdoc-depths", default=",".join(map(str, M.DEPTHS)),
                help="comma-separated depths to run (default: %(default)s)")
    g.addoption("--realdoc-time", type=float, default=0.3,
                help="target seconds of timed rounds per benchmark (default: %(default)s)")
    g.addoption("--realdoc-no-strace", action="store_true",
                help="do not count other resolvers' syscalls with strace")
    g.addoption("--realdoc-registry-paths", type=int, default=1_000_000,
                help="distinct docroots for the registry memory case (compiled core; "
                     "the pure twin gets a twentieth) (default: %(default)s)")
    g.addoption("--realdoc-report", default=None, metavar="PATH",
                help="also write the summary tables as Markdown to PATH")


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Deselect cases whose depth is not in --realdoc-depths."""
    wanted = {int(d) for d in config.getoption("--realdoc-depths").split(",") if d.strip()}
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        depth = callspec.params.get("case_id") if callspec is not None else None
        if isinstance(depth, tuple) and depth[0] not in wanted:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def trees() -> Iterator[M.Trees]:
    """The benchmark trees, one temporary root per (depth, shape), removed at the end."""
    with M.Trees() as t:
        yield t


@pytest.fixture
def case(trees: M.Trees, case_id: Tuple[int, str]) -> M.Case:
    """The :class:`machinery.Case` for the test's ``case_id`` parameter."""
    return trees.get(*case_id)


@pytest.fixture(scope="session")
def empty_loop_ns() -> float:
    """Cost of one iteration of an empty loop (subtracted for net ns per call)."""
    _, overhead = M.time_loops({}, repeats=9, batch_ms=2.0)
    return overhead


@pytest.fixture(scope="session")
def summary() -> Any:
    """The :mod:`summary` module, whose RESULTS, CHILD_SYSCALLS and MEMORY feed the end report."""
    return S


def _strace_skip(config: pytest.Config) -> Optional[str]:
    """Why strace does not count the other rows' syscalls this session, or None if it does."""
    if config.getoption("--realdoc-no-strace"):
        return "--realdoc-no-strace"
    ok, why = M.strace_status()
    return None if ok else why


_SYSCALLS: Dict[Tuple[str, str], M.Syscalls] = {}


def syscalls_for(config: pytest.Config, contender: M.Contender, case: M.Case,
                 loop: M.LoopFn) -> M.Syscalls:
    """Syscalls per call of ``contender`` on ``case``: counted once per session and cached."""
    key = (contender.key, case.name)
    if key not in _SYSCALLS:
        _SYSCALLS[key] = M.count_syscalls(contender, loop, _strace_skip(config))
    return _SYSCALLS[key]


#: References each group's rounds are paired with (see run_case).
PAIRED_REFS: Dict[str, List[str]] = {
    "cold": ["libc-realpath", "os.path.realpath"],
    "refresh": ["libc-realpath", "os.path.realpath"],
    "hit": ["floor"],
}


@pytest.fixture
def run_case(benchmark: Any, request: pytest.FixtureRequest,
             empty_loop_ns: float) -> Any:
    """``run_case(group, contender, case)``: benchmark one contender on one case.

    Binds the contender (warmed up), counts its syscalls (cached), then runs
    ``BATCH`` inline calls per round for about ``--realdoc-time`` seconds, and
    fills ``benchmark.extra_info``.  Skips a contender that is not available.

    Paired ratios: before each round, pytest-benchmark's (untimed) ``setup``
    runs a short batch of each reference of the group (libc and
    os.path.realpath for resolutions, the floor for hits); the ratio of the
    round to the batch just before it is taken per round, and the median of
    those goes to ``extra_info["paired"]``.  A burst of load on this shared
    machine then weighs on both sides of a ratio alike, which sequential
    benchmarks cannot promise.
    """
    config = request.config

    def run(group: str, contender: M.Contender, case: M.Case) -> None:
        if not contender.available:
            pytest.skip(f"{contender.label} is not available here")
        loop = M.make_loop(contender.stmt, contender.namespace(case))
        sc = syscalls_for(config, contender, case, loop)
        est = max(M.batch_ns(loop, BATCH), 1)
        rounds = max(5, min(2000, int(config.getoption("--realdoc-time") * 1e9 / est)))
        refs: Dict[str, Tuple[M.LoopFn, int]] = {}
        for key in PAIRED_REFS.get(group, []):
            ref = M.CONTENDERS[key]
            if key != contender.key and ref.available:
                ref_loop = M.make_loop(ref.stmt, ref.namespace(case))
                per_call = max(M.batch_ns(ref_loop, 10) / 10, 1.0)
                refs[key] = (ref_loop, max(10, min(BATCH, int(est / 2 / per_call))))
        ref_samples: Dict[str, List[float]] = {k: [] for k in refs}

        def setup() -> Tuple[Tuple[int], Dict[str, Any]]:
            for k, (ref_loop, n) in refs.items():
                ref_samples[k].append(M.batch_ns(ref_loop, n) / n)
            return (BATCH,), {}

        benchmark.group = f"{group} (per {BATCH} calls)"
        benchmark.extra_info.update({
            "contender": contender.key, "label": contender.label, "impl": contender.impl,
            "case": case.name, "depth": case.depth, "shape": case.shape, "path": case.path,
            "calls_per_round": BATCH, "syscalls": sc.as_dict(),
        })
        warmup = 1
        benchmark.pedantic(loop, setup=setup, rounds=rounds, warmup_rounds=warmup,
                           iterations=1)
        stats = getattr(benchmark, "stats", None)
        if stats is None:  # --benchmark-disable
            return
        median = stats.stats.median * 1e9 / BATCH
        net = max(median - empty_loop_ns, 0.0)
        benchmark.extra_info["ns_per_call"] = net
        benchmark.extra_info["ns_per_call_gross"] = median
        benchmark.extra_info["ns_per_call_min"] = max(
            stats.stats.min * 1e9 / BATCH - empty_loop_ns, 0.0)
        data = [d * 1e9 / BATCH - empty_loop_ns for d in stats.stats.data]
        paired: Dict[str, Dict[str, float]] = {}
        for k, samples in ref_samples.items():
            timed = [max(x - empty_loop_ns, 1e-3) for x in samples[warmup:]]
            if len(timed) == len(data) and data:
                paired[k] = {"ratio": statistics.median([d / r for d, r in zip(data, timed)]),
                             "ref_ns_per_call": statistics.median(timed),
                             "calls_per_ref_batch": refs[k][1]}
        benchmark.extra_info["paired"] = paired
        S.record(group, contender, case, net, sc, {k: v["ratio"] for k, v in paired.items()})

    return run


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    text = S.render(M.machine_info(), _command_line(config))
    if not text:
        return
    terminalreporter.write_sep("=", "realdoc: ratios, syscalls and targets (one run)")
    terminalreporter.write(text)
    path: Optional[str] = config.getoption("--realdoc-report")
    if path:
        pathlib.Path(path).write_text(text, encoding="utf-8")
        terminalreporter.write_line(f"realdoc: report written to {os.path.abspath(path)}")


def _command_line(config: pytest.Config) -> str:
    args = " ".join(config.invocation_params.args)
    return f"python3 -m pytest {args}".strip()
