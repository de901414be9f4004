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
end a summary prints the tables of the README's Performance section (ns/call,
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

import pytest

import machinery as M
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
    """This module, whose RESULTS, CHILD_SYSCALLS and MEMORY feed the end-of-run summary."""
    return sys.modules[__name__]


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
        record(group, contender, case, net, sc, {k: v["ratio"] for k, v in paired.items()})

    return run


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    text = render(M.machine_info(), _command_line(config))
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


# ----------------------------------------------------------------------------- the summary

#: (group, case name, contender key) -> net ns per call and syscalls, from this run.
RESULTS: Dict[Tuple[str, str, str], Dict[str, Any]] = {}
#: (contender key, case name) -> syscalls per call counted in a strace'd child (bench_syscalls).
CHILD_SYSCALLS: Dict[Tuple[str, str], M.Syscalls] = {}
#: name -> dict: results of the registry memory cases (bench_cache).
MEMORY: Dict[str, Dict[str, Any]] = {}

COLD_COLS = ["realpath-cython", "realpath-python", "first_link-cython", "first_link_start-cython",
             "refresh-cython", "refresh-python", "os.path.realpath", "os.path.realpath-strict",
             "Path.resolve", "libc-realpath"]
SYS_COLS = ["realpath-cython", "realpath-python", "first_link-cython", "first_link-python",
            "first_link_start-cython", "first_link_start-python", "refresh-cython",
            "refresh-python", "os.path.realpath", "os.path.realpath-strict", "Path.resolve",
            "libc-realpath"]
SHORT = {
    "realpath-cython": "realpath C", "realpath-python": "realpath py",
    "first_link-cython": "first_link C", "first_link-python": "first_link py",
    "first_link_start-cython": "first_link(start) C",
    "first_link_start-python": "first_link(start) py",
    "refresh-cython": "refresh C", "refresh-python": "refresh py",
    "os.path.realpath": "os.path.realpath", "os.path.realpath-strict": "strict=True",
    "Path.resolve": "Path.resolve", "libc-realpath": "libc (ctypes)",
}


def record(group: str, contender: M.Contender, case: M.Case, ns: float, sc: M.Syscalls,
           paired: Dict[str, float]) -> None:
    """Keep one benchmark's net ns/call, syscalls and paired ratios for the summary."""
    RESULTS[(group, case.name, contender.key)] = {
        "ns": ns, "syscalls": sc.total, "method": sc.method, "by_name": sc.per_call,
        "label": contender.label, "depth": case.depth, "shape": case.shape, "paired": paired,
    }


def _ns(group: str, case: str, key: str) -> Optional[float]:
    r = RESULTS.get((group, case, key))
    return None if r is None else float(r["ns"])


def _ratio(group: str, case: str, key: str, ref: str) -> Optional[float]:
    """key's time / ref's time: the paired ratio if taken, else the quotient of medians."""
    r = RESULTS.get((group, case, key))
    if r is not None and ref in r["paired"]:
        return float(r["paired"][ref])
    ref_group = "hit" if ref == "floor" else "cold"
    return _div(_ns(group, case, key), _ns(ref_group, case, ref))


def _sys(case: str, key: str) -> Optional[float]:
    """Syscalls per call: the strace'd child's count if taken, else the benchmark's."""
    c = CHILD_SYSCALLS.get((key, case))
    if c is not None and c.total is not None:
        return c.total
    for group in ("cold", "refresh", "hit"):
        r = RESULTS.get((group, case, key))
        if r is not None and r["syscalls"] is not None:
            return float(r["syscalls"])
    return None


def _case_names() -> List[str]:
    seen = {(r["depth"], M.SHAPES.index(r["shape"])): name
            for (_, name, _), r in RESULTS.items()}
    seen.update({(int(n.split("-")[0][1:]), M.SHAPES.index(n.split("-", 1)[1])): n
                 for (_, n) in CHILD_SYSCALLS})
    return [seen[k] for k in sorted(seen)]


def _f(v: Optional[float], ratio: bool = False) -> str:
    if v is None:
        return "–"
    if ratio:
        return f"{v:.2f}×" if v >= 0.01 else f"{v:.4f}×"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def _fs(v: Optional[float]) -> str:
    if v is None:
        return "–"
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:.3g}"


def _div(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None or b <= 0 else a / b


def _table(head: List[str], rows: List[List[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i == 0 else "---:"
                                                       for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def render(machine: Dict[str, Any], command: str) -> str:
    """The Markdown summary of this run (empty when nothing was recorded)."""
    if not RESULTS and not CHILD_SYSCALLS and not MEMORY:
        return ""
    cases = _case_names()
    load = machine["loadavg"]
    parts = [
        f"Measured {machine['date']} with `{command}`  \n"
        f"{machine['platform']}, {machine['cpu_count']} CPUs ({machine['cpu']}), "
        f"load {', '.join(f'{x:.2f}' for x in load) if load else '?'} at the end; "
        f"{machine['python_implementation']} {machine['python'].split()[0]}; "
        f"realdoc {machine['realdoc']} ({machine['realdoc_implementation']}).  \n"
        "Depth = components below a `/tmp/rdXXXXXXXX` root; `start`: `current -> releases/r1` "
        "is the first one; `middle`: at depth//2+1; `two-level`: `current -> A -> releases/r1`. "
        "C = compiled core, py = pure twin. ns/call: median of rounds of 1000 inline calls, "
        "empty loop subtracted.\n",
    ]
    cold_cols = [k for k in COLD_COLS if any((g, c, k) in RESULTS for g in ("cold", "refresh")
                                             for c in cases)]
    if cold_cols:
        rows = []
        for c in cases:
            cells = [f"`{c}`"]
            for k in cold_cols:
                g = "refresh" if k.startswith("refresh") else "cold"
                cells.append(_f(_ns(g, c, k)))
            rows.append(cells)
        parts.append("\n**Resolution without cache, ns per call**\n\n"
                     + _table(["case"] + [SHORT[k] for k in cold_cols], rows))
        rows = []
        for c in cases:
            rows.append([f"`{c}`"] + [_f(_ratio(g, c, k, ref), True) for g, k, ref in (
                ("cold", "realpath-cython", "libc-realpath"),
                ("cold", "realpath-cython", "os.path.realpath"),
                ("refresh", "refresh-cython", "libc-realpath"),
                ("cold", "first_link_start-cython", "libc-realpath"),
                ("cold", "realpath-python", "os.path.realpath"),
                ("refresh", "refresh-python", "os.path.realpath"))])
        parts.append("\n**Ratios** (time / reference time, below 1 is faster; paired: each "
                     "round of a row was preceded by a batch of the reference and the median "
                     "of the per-round ratios is shown)\n\n" + _table(
            ["case", "realpath C / libc", "realpath C / os.path", "refresh C / libc",
             "first_link(start) C / libc", "realpath py / os.path", "refresh py / os.path"], rows))
        fl = _ns("cold", "d7-start", "ctypes-floor")
        if fl is not None:
            parts.append(f"\nThe libc column includes the ctypes call itself: {_f(fl)} ns "
                         "(`strstr` through ctypes, same marshalling, no syscall).\n")
    sys_cols = [k for k in SYS_COLS if any(_sys(c, k) is not None for c in cases)]
    if sys_cols:
        rows = [[f"`{c}`"] + [_fs(_sys(c, k)) for k in sys_cols] for c in cases]
        method = "strace in a child" if CHILD_SYSCALLS else "stats()/strace in-process"
        parts.append(f"\n**Syscalls per resolution** ({method})\n\n"
                     + _table(["case"] + [SHORT[k] for k in sys_cols], rows))
    hit_keys = [c.key for c in M.HIT if any(g == "hit" and k == c.key for g, _, k in RESULTS)]
    if hit_keys:
        hc = next(c for (g, c, k) in RESULTS if g == "hit")
        ttl = _ns("hit", hc, "TTLCache")
        osr = _ns("cold", hc, "os.path.realpath")
        rows = []
        for k in hit_keys:
            ns = _ns("hit", hc, k)
            rows.append([M.CONTENDERS[k].label, _f(ns), _fs(_sys(hc, k)),
                         _f(_ratio("hit", hc, k, "floor") if k != "floor" else 1.0, True),
                         (_f(_div(osr, ns)) + "×") if osr and ns else "–",
                         (_f(_div(ttl, ns)) + "×") if ttl and ns else "–"])
        parts.append(f"\n**Cache hits** (`{hc}`)\n\n" + _table(
            ["", "ns/call", "syscalls", "/ floor", "faster than os.path.realpath",
             "faster than TTLCache hit"], rows))
    if MEMORY:
        rows = [[name, f"{m['paths']:,}", f"{m['entries']} / {m['maxsize']}",
                 f"{m['maxrss_before_kb'] / 1024:.1f}", f"{m['maxrss_after_kb'] / 1024:.1f}",
                 f"{m['rss_growth_kb'] / 1024:+.1f}", f"{m['us_per_miss']:.1f}"]
                for name, m in sorted(MEMORY.items())]
        parts.append("\n**Registry memory** (`resolve()` over distinct docroot spellings, "
                     "fresh child process)\n\n" + _table(
                         ["", "distinct paths", "entries / maxsize", "peak RSS before (MiB)",
                          "peak RSS after (MiB)", "RSS growth after warm-up (MiB)",
                          "us per miss"], rows))
    targets = _targets(cases)
    if targets:
        parts.append("\n**Targets**\n\n" + "\n".join(targets) + "\n")
    return "".join(parts)


def _check(ok: Optional[bool], text: str) -> str:
    mark = "n/a" if ok is None else ("met" if ok else "MISSED")
    return f"- {mark}: {text}"


def _pairs(cases: List[str], key: str, ref: str) -> List[Tuple[str, float, float]]:
    """(case, syscalls of key, syscalls of ref) where both were counted."""
    out = []
    for c in cases:
        a, b = _sys(c, key), _sys(c, ref)
        if a is not None and b is not None:
            out.append((c, a, b))
    return out


def _counts(cases: List[str], key: str) -> List[Tuple[str, float]]:
    out = []
    for c in cases:
        a = _sys(c, key)
        if a is not None:
            out.append((c, a))
    return out


def _depth(case: str) -> int:
    return int(case.split("-")[0][1:])


def _targets(cases: List[str]) -> List[str]:
    out: List[str] = []
    doc = "d7-start"

    def worst(key: str, group: str, ref: str) -> Optional[Tuple[float, str]]:
        vals = []
        for c in cases:
            v = _ratio(group, c, key, ref)
            if v is not None:
                vals.append((v, c))
        return max(vals) if vals else None

    def vs_libc(group: str, key: str, case: str) -> Optional[str]:
        r = _ratio(group, case, key, "libc-realpath")
        libc = _ns("cold", case, "libc-realpath")
        fl = _ns("cold", doc, "ctypes-floor")
        if r is None:
            return None
        if libc is None or fl is None or libc <= fl:
            return _f(r, True)
        net = r * libc / (libc - fl)
        return f"{_f(r, True)} (vs libc net of the ctypes call: {_f(net, True)})"

    txt = vs_libc("cold", "realpath-cython", doc)
    if txt is not None:
        r = _ratio("cold", doc, "realpath-cython", "libc-realpath")
        out.append(_check(r is not None and r <= 0.85,
                          f"cold realpath C ≤ 0.85× libc on the docroot case (d7-start): {txt}"))
    w = worst("realpath-cython", "cold", "libc-realpath")
    if w is not None:
        out.append(_check(w[0] <= 1.1, f"cold realpath C ≤ 1.1× libc on every case: worst "
                                       f"{_f(w[0], True)} ({w[1]})"))
    r = _ratio("cold", doc, "realpath-cython", "os.path.realpath")
    if r is not None:
        out.append(_check(r <= 0.25, f"cold realpath C ≥ 4× faster than os.path.realpath on the "
                                     f"docroot case: {_f(r, True)} = {1 / r:.1f}× faster"))
    w = worst("realpath-cython", "cold", "os.path.realpath")
    if w is not None:
        out.append(_check(w[0] <= 0.25, f"cold realpath C ≥ 4× faster than os.path.realpath on "
                                        f"every case: worst {_f(w[0], True)} = {1 / w[0]:.1f}× "
                                        f"faster ({w[1]})"))
    pairs = _pairs(cases, "realpath-cython", "libc-realpath")
    if pairs:
        bad = [f"{c}: {_fs(a)} > {_fs(b)}" for c, a, b in pairs if a > b]
        out.append(_check(not bad, "realpath C syscalls ≤ libc's on every case"
                          + (f" ({'; '.join(bad)})" if bad else "")))
    deep = [a for c, a in _counts(cases, "realpath-cython") if _depth(c) >= 6]
    if deep:
        out.append(_check(max(deep) <= 3,
                          f"realpath C ≤ 3 syscalls at depth ≥ 6: max {_fs(max(deep))}"))
    txt = vs_libc("refresh", "refresh-cython", doc)
    if txt is not None:
        r = _ratio("refresh", doc, "refresh-cython", "libc-realpath")
        out.append(_check(r is not None and r <= 0.55,
                          f"refresh C (every=0) ≤ 0.55× libc on the docroot case: {txt}"))
    one = [a for c, a in _counts(cases, "refresh-cython") if not c.endswith("two-level")]
    if one:
        two = [_fs(a) for c, a in _counts(cases, "refresh-cython") if c.endswith("two-level")]
        out.append(_check(max(one) <= 3, f"refresh C ≤ 3 syscalls (one link): max {_fs(max(one))}"
                          + (f"; two-level (a readlink per link): {', '.join(sorted(set(two)))}"
                             if two else "")))
    fls = [a for _, a in _counts(cases, "first_link_start-cython")]
    if fls:
        out.append(_check(all(a == 1 for a in fls), "first_link(start at the link) C: 1 syscall: "
                          + ", ".join(sorted({_fs(a) for a in fls}))))
    r = _ratio("cold", doc, "first_link_start-cython", "libc-realpath")
    if r is not None:
        out.append(_check(r <= 0.25, f"first_link(start) C ≥ 4× faster than libc on the docroot "
                                     f"case: {vs_libc('cold', 'first_link_start-cython', doc)} "
                                     f"= {1 / r:.1f}× faster"))
    w = worst("first_link_start-cython", "cold", "libc-realpath")
    if w is not None:
        out.append(_check(w[0] <= 0.25, f"first_link(start) C ≥ 4× faster than libc on every "
                                        f"case: worst {_f(w[0], True)} = {1 / w[0]:.1f}× "
                                        f"faster ({w[1]})"))
    hc = next((c for (g, c, k) in RESULTS if g == "hit"), None)
    if hc is not None:
        for key, lim in (("hit-Resolver-cython", 0.4), ("hit-resolve-cython", 0.6),
                         ("hit-Resolver-python", 2.0), ("hit-resolve-python", 2.0)):
            r = _ratio("hit", hc, key, "floor")
            if r is not None:
                out.append(_check(r <= lim, f"{M.CONTENDERS[key].label} ≤ {lim}× the floor: "
                                            f"{_f(r, True)}"))
        for key in ("hit-Resolver-cython", "hit-resolve-cython"):
            ns = _ns("hit", hc, key)
            o, t = _ns("cold", hc, "os.path.realpath"), _ns("hit", hc, "TTLCache")
            if ns and o:
                out.append(_check(o / ns >= 500, f"{M.CONTENDERS[key].label} ≥ 500× faster than "
                                                 f"os.path.realpath: {o / ns:,.0f}×"))
            if ns and t:
                out.append(_check(t / ns >= 10, f"{M.CONTENDERS[key].label} ≥ 10× faster than a "
                                                f"TTLCache hit: {t / ns:.1f}×"))
        hs = [(k, a) for k in ("hit-Resolver-cython", "hit-resolve-cython", "hit-Resolver-python",
                               "hit-resolve-python") for _, a in _counts([hc], k)]
        if hs:
            out.append(_check(all(a == 0 for _, a in hs), "hits: 0 syscalls: "
                              + ", ".join(f"{k}={_fs(a)}" for k, a in hs)))
    for key in ("realpath-python", "refresh-python"):
        pairs = _pairs(cases, key, "os.path.realpath")
        if pairs:
            bad = [f"{c}: {_fs(a)} > {_fs(b)}" for c, a, b in pairs if a > b]
            out.append(_check(not bad, f"{SHORT[key]}: syscalls ≤ os.path.realpath's on "
                                       "every case"
                              + (f" ({'; '.join(bad)})" if bad else "")))
    for name, m in sorted(MEMORY.items()):
        out.append(_check(m["entries"] == m["maxsize"] and m["rss_growth_kb"] < 16 * 1024,
                          f"registry {name}: {m['paths']:,} distinct paths -> {m['entries']} "
                          f"entries (maxsize {m['maxsize']}), RSS growth after warm-up "
                          f"{m['rss_growth_kb'] / 1024:+.1f} MiB, peak RSS "
                          f"{m['maxrss_after_kb'] / 1024:.1f} MiB"))
    return out
