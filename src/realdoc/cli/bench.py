"""``realdoc bench``: a few-second benchmark of realdoc against the resolvers it replaces.

For each ``--depth`` it builds a temporary deploy tree, times every row with
:func:`time.perf_counter_ns` (batches of the row's statement inline in a loop
compiled for it, like :mod:`timeit`; the median of interleaved rounds; the empty
loop's cost subtracted), counts syscalls per call (realdoc's rows from
:func:`realdoc.stats` deltas, the others by strace attached to this process when
it can trace, else ``skipped``), prints one table (or ``--json``) and removes the
tree.  Exit status 0, or 2 for bad options.

A case's *depth* is the number of path components below a ``/tmp/rdXXXXXXXX``
root (depth 7: ``/tmp/rdXXXXXXXX/current/public/s3/s4/s5/s6/s7``); its *shape*
places the link: ``start`` (first component, ``current -> releases/r1``),
``middle`` (component ``depth // 2 + 1``) or ``two-level`` (as ``start``, with
``current -> A -> releases/r1``).

The pytest-benchmark suite in the checkout's ``bench/`` builds on the trees,
rows, timing loop and counters defined here.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import itertools
import json
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import realdoc

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

SHAPES: Tuple[str, ...] = ("start", "middle", "two-level")
DOCROOT_CASE: Tuple[int, str] = (7, "start")

LoopFn = Callable[[int], None]


@dataclass(frozen=True)
class Case:
    """A docroot ``path`` of ``depth`` components below ``root``; ``link`` is its first symlink."""

    depth: int
    shape: str
    root: str
    path: str
    link: str

    @property
    def name(self) -> str:
        """``d<depth>-<shape>``, e.g. ``d7-start``."""
        return f"d{self.depth}-{self.shape}"

    @property
    def real(self) -> str:
        """The real path (``os.path.realpath``)."""
        return os.path.realpath(self.path)

    @classmethod
    def at(cls, root: str, depth: int, shape: str) -> Case:
        """The case's paths below ``root`` (nothing is created); ValueError for bad arguments."""
        if depth < 1 or shape not in SHAPES:
            raise ValueError(f"need a depth >= 1 and a shape in {SHAPES}, got {depth}, {shape!r}")
        k = depth // 2 + 1 if shape == "middle" else 1  # 1-based position of the link
        link = os.path.join(root, *[f"m{i}" for i in range(1, k)], "current")
        below = (["public"] + [f"s{i}" for i in range(k + 2, depth + 1)])[: depth - k]
        return cls(depth, shape, root, os.path.join(link, *below), link)


def build_case(depth: int, shape: str, parent: str = "/tmp") -> Case:
    """Create the case's tree in a new temporary root in ``parent`` (``mkdtemp(prefix="rd")``).

    The link's directory holds a :class:`~realdoc.testing.tree.DeployTree` (releases ``r1``
    and ``r2``, ``current -> releases/r1``); ``two-level`` repoints ``current`` to
    ``A -> releases/r1``.  Remove it with ``shutil.rmtree(case.root)``.
    """
    from realdoc.testing.tree import DeployTree

    root = tempfile.mkdtemp(prefix="rd", dir=parent)
    try:
        case = Case.at(root, depth, shape)
        base = os.path.dirname(case.link)
        below = os.path.relpath(case.path, case.link).split(os.sep)[1:]  # after "public"
        os.makedirs(base, exist_ok=True)
        tree = DeployTree.create(base, releases=2, files=("/".join(below + ["index.html"]),))
        if shape == "two-level":
            os.symlink(os.path.join("releases", "r1"), os.path.join(base, "A"))
            os.symlink("A", os.path.join(base, ".current.tmp"))
            os.replace(os.path.join(base, ".current.tmp"), tree.current)
        if not os.path.isdir(case.path):
            raise RuntimeError(f"bench tree not built as expected: {case.path}")
        return case
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def implementations() -> Dict[str, ModuleType]:
    """``{"cython": compiled core, "python": pure twin}``, without the core if it is not built."""
    from realdoc import _fastpath_py

    try:
        return {"cython": importlib.import_module("realdoc._fastpath"), "python": _fastpath_py}
    except ImportError:
        return {"python": _fastpath_py}


@dataclass(frozen=True)
class Contender:
    """One row: ``stmt``, a single call written with the names ``bind(case)`` returns.

    ``impl`` names realdoc's implementation (its syscalls are counted with its
    ``stats()``), ``None`` for the others (counted with strace); ``requires()``
    is False when libc or cachetools is missing.  ``key`` is unique and id-safe.
    """

    key: str
    label: str
    stmt: str
    bind: Callable[[Case], Dict[str, Any]] = field(repr=False, compare=False)
    impl: Optional[str] = None
    requires: Callable[[], bool] = field(default=lambda: True, repr=False, compare=False)

    @property
    def available(self) -> bool:
        """True when what the row needs is here."""
        return (self.impl is None or self.impl in implementations()) and self.requires()

    def namespace(self, case: Case) -> Dict[str, Any]:
        """The names ``stmt`` uses, bound for ``case`` and warmed up (two calls)."""
        ns = self.bind(case)
        make_loop(self.stmt, ns)(2)
        return ns


_Names = Callable[[ModuleType, Case], Dict[str, Any]]

#: realdoc's own rows: key prefix, label, statement, its names for module ``m`` and case ``c``.
_OWN: List[Tuple[str, str, str, _Names]] = [
    ("realpath", "realdoc.realpath", "f(p)", lambda m, c: {"f": m.realpath, "p": c.path}),
    ("first_link", "realdoc.first_link", "f(p)", lambda m, c: {"f": m.first_link, "p": c.path}),
    ("first_link_start", "realdoc.first_link(start=link)", "f(p, start=s)",
     lambda m, c: {"f": m.first_link, "p": c.path, "s": c.link}),
    ("refresh", "Resolver(every=0)()", "r()", lambda m, c: {"r": m.Resolver(c.path, every=0)}),
    ("hit-Resolver", "Resolver() hit", "r()", lambda m, c: {"r": m.Resolver(c.path, every=3600.0)}),
    ("hit-resolve", "resolve(p) hit", "f(p)", lambda m, c: {"f": m.resolve, "p": c.path}),
]


def _in(impl: str, names: _Names) -> Callable[[Case], Dict[str, Any]]:
    return lambda c: names(implementations()[impl], c)


def realdoc_rows(impl: str) -> List[Contender]:
    """realdoc's own rows for implementation ``impl`` (``"cython"`` or ``"python"``)."""
    return [Contender(f"{key}-{impl}", f"{label} [{impl}]", stmt, _in(impl, names), impl)
            for key, label, stmt, names in _OWN]


def libc(name: str) -> Any:
    """libc's ``name`` via ctypes, as ``char *f(char *, char *)``; LookupError if unreachable."""
    import ctypes

    try:
        fn = getattr(ctypes.CDLL(None), name)  # the process's own symbols: libc's on Linux
    except (OSError, AttributeError) as e:
        raise LookupError(f"libc's {name} is not reachable through ctypes: {e}") from None
    fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    fn.restype = ctypes.c_char_p  # converted to bytes (a copy), as a caller of realpath(3) would
    return fn


def _has_libc() -> bool:
    try:
        libc("realpath")
    except LookupError:
        return False
    return True


def _libc_realpath(c: Case) -> Dict[str, Any]:
    import ctypes

    buf = ctypes.create_string_buffer(4097)
    return {"f": libc("realpath"), "b": os.fsencode(c.path), "buf": buf}


def _ttl_cache(c: Case) -> Dict[str, Any]:
    import cachetools

    cache: Any = cachetools.TTLCache(maxsize=1024, ttl=2.0)
    return {"f": cachetools.cached(cache)(os.path.realpath), "p": c.path}


#: What realdoc's rows are compared with, and two floors that resolve nothing.
REFERENCES: List[Contender] = [
    Contender("os.path.realpath", "os.path.realpath", "f(p)",
              lambda c: {"f": os.path.realpath, "p": c.path}),
    Contender("Path.resolve", "pathlib.Path.resolve", "q.resolve()",
              lambda c: {"q": pathlib.Path(c.path)}),
    Contender("libc-realpath", "libc realpath(3) (ctypes)", "f(b, buf)", _libc_realpath,
              requires=_has_libc),
    # strstr(b, "") returns b: realpath(3)'s marshalling through ctypes, and no syscall
    Contender("ctypes-floor", "ctypes call floor (strstr)", "f(b, e)",
              lambda c: {"f": libc("strstr"), "b": os.fsencode(c.path), "e": b""},
              requires=_has_libc),
    Contender("floor", "floor: d.get(p); time.monotonic()", "d.get(p); time.monotonic()",
              lambda c: {"d": {c.path: c.real}, "time": time, "p": c.path}),
    Contender("TTLCache", "cachetools.TTLCache(os.path.realpath) hit", "f(p)", _ttl_cache,
              requires=lambda: importlib.util.find_spec("cachetools") is not None),
]


def make_loop(stmt: str, names: Mapping[str, Any]) -> LoopFn:
    """Compile ``loop(n)``: run ``stmt`` inline ``n`` times, with ``names`` as fast locals."""
    if any(not k.isidentifier() or k.startswith("_") for k in names):
        raise ValueError(f"bad name for a loop variable in {sorted(names)}")
    params = "".join(f", {k}=_names[{k!r}]" for k in names)
    src = f"def _loop(_n, _it=_repeat{params}):\n    for _ in _it(None, _n):\n        {stmt}\n"
    scope: Dict[str, Any] = {"_names": dict(names), "_repeat": itertools.repeat}
    exec(compile(src, f"<realdoc bench loop: {stmt}>", "exec"), scope)
    loop: LoopFn = scope["_loop"]
    return loop


def batch_ns(loop: LoopFn, n: int) -> int:
    """Wall time of ``loop(n)`` in ns."""
    t0 = time.perf_counter_ns()
    loop(n)
    return time.perf_counter_ns() - t0


@dataclass
class Timing:
    """``n`` calls per batch; ``samples``: ns per call of each batch, net of the empty loop."""

    n: int
    samples: List[float]

    @property
    def median(self) -> float:
        """Median ns per call."""
        return statistics.median(self.samples)


def time_loops(loops: Mapping[str, LoopFn], *, repeats: int = 7,
               batch_ms: float = 5.0) -> Tuple[Dict[str, Timing], float]:
    """Time each loop in ``repeats`` interleaved rounds; return them and the empty loop's ns/iter.

    Each loop's ``n`` is calibrated so that a batch lasts about ``batch_ms``.  Every
    round runs one batch of each loop and of the empty loop, with the garbage
    collector off, so that a change of machine load weighs on all of them alike.
    """
    todo = {"": make_loop("pass", {}), **loops}
    batch = batch_ms * 1e6
    sizes: Dict[str, int] = {}
    raw: Dict[str, List[float]] = {k: [] for k in todo}
    gc_was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for k, loop in todo.items():
            n = 1
            while (t := batch_ns(loop, n)) < batch / 8 and n < 1 << 24:
                n *= 8
            sizes[k] = max(1, int(n * batch / max(t, 1)))
        for _ in range(repeats):
            for k, loop in todo.items():
                raw[k].append(batch_ns(loop, sizes[k]) / sizes[k])
    finally:
        if gc_was:
            gc.enable()
    empty = statistics.median(raw.pop(""))
    return {k: Timing(sizes[k], [max(s - empty, 0.0) for s in v]) for k, v in raw.items()}, empty


@dataclass
class Syscalls:
    """Syscalls per call, by name.

    ``method``: ``stats``, ``strace``, ``strace-child``, ``none`` (by construction) or
    ``skipped`` (``note`` says why).
    """

    method: str
    per_call: Dict[str, float] = field(default_factory=dict)
    note: str = ""

    @property
    def total(self) -> Optional[float]:
        """Sum per call, or None when skipped."""
        return None if self.method == "skipped" else sum(self.per_call.values())

    def as_dict(self) -> Dict[str, Any]:
        """JSON-ready form."""
        return {"method": self.method, "total": self.total, "by_name": dict(self.per_call),
                "note": self.note}


def strace_status() -> Tuple[bool, str]:
    """(usable, reason): whether strace can count the other rows' syscalls here."""
    from realdoc.testing import strace

    ok, detail = strace.strace_status()
    return (True, "strace") if ok else (False, f"strace is not usable here ({detail})")


def count_syscalls(contender: Contender, loop: LoopFn, skip: Optional[str]) -> Syscalls:
    """Syscalls per call of ``contender``'s ``loop``; ``skip``: why not to use strace, or None.

    realdoc's rows: ``stats()`` deltas over 100 calls, after one uncounted call (an
    entry that went stale while timing refreshes there, so a hit row counts hits).
    The floor: none, by construction.  The others: strace attached to this process
    over 3 calls, baseline subtracted (``skipped`` if strace cannot attach).
    """
    if contender.impl is not None:
        mod = implementations()[contender.impl]
        loop(1)
        before = dict(mod.stats()["syscalls"])
        loop(100)
        after = mod.stats()["syscalls"]
        return Syscalls("stats", {k: (v - before.get(k, 0)) / 100 for k, v in after.items()
                                  if v != before.get(k, 0)})
    if contender.key == "floor":
        return Syscalls("none", note="no syscall by construction")
    if skip is not None:
        return Syscalls("skipped", note=skip)
    from realdoc.testing import strace

    try:
        trace = strace.count_syscalls(lambda: loop(1), repeat=3)
    except strace.StraceUnavailable as e:
        return Syscalls("skipped", note=str(e))
    return Syscalls("strace", {k: v / 3 for k, v in trace.counts.items() if v})


def machine_info() -> Dict[str, Any]:
    """Platform, CPU model and count, kernel, load, Python, realdoc's build and the date."""
    import platform

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")),
                       cpu)
    except OSError:
        pass
    try:
        load: Optional[Tuple[float, ...]] = os.getloadavg()
    except OSError:
        load = None
    u = os.uname()
    return {
        "platform": platform.platform(), "machine": u.machine, "kernel": f"{u.sysname} {u.release}",
        "cpu": cpu, "cpu_count": os.cpu_count(), "loadavg": load,
        "python": sys.version.replace("\n", " "),
        "python_implementation": platform.python_implementation(),
        "realdoc": realdoc.__version__, "realdoc_implementation": realdoc.implementation,
        "features": realdoc.features(), "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


# ----------------------------------------------------------------------------- the command

#: Ratio columns: reference key -> heading.  The floor is a reference for cache hits only.
_RATIOS = {"os.path.realpath": "/os.path.realpath", "Path.resolve": "/Path.resolve",
           "libc-realpath": "/libc(3)", "floor": "/floor"}
_HITS = ("hit-", "floor", "TTLCache")


def _depths(text: str) -> List[int]:
    try:
        depths = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}") from None
    if not depths or any(d < 1 or d > 200 for d in depths):
        raise argparse.ArgumentTypeError(f"depths must be 1..200: {text!r}")
    return depths


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``realdoc bench``."""
    p.add_argument("--quick", action="store_true",
                   help="fewer and shorter batches (about a second in all)")
    p.add_argument("--depth", type=_depths, default=[DOCROOT_CASE[0]], metavar="N[,N...]",
                   help="path depth(s) below the temp root (default: 7, the docroot case)")
    p.add_argument("--shape", choices=SHAPES, default=DOCROOT_CASE[1],
                   help="where the link is (default: start)")
    p.add_argument("--impl", choices=("active", "both"), default="active",
                   help="realdoc rows for the active implementation, or for both")
    p.add_argument("--repeats", type=int, default=None, metavar="R",
                   help="interleaved rounds; the median is reported (default 9, --quick 3)")
    p.add_argument("--batch-ms", type=float, default=None, metavar="MS",
                   help="length of one batch (default 10, --quick 1)")
    p.add_argument("--no-strace", action="store_true",
                   help="do not count other resolvers' syscalls with strace")
    p.add_argument("--json", action="store_true", help="print a JSON document instead of the table")


def add_parser(subparsers: Subparsers) -> None:
    """Register ``bench`` (see :mod:`realdoc.cli`)."""
    p = subparsers.add_parser(
        "bench", help="time realdoc against os.path.realpath, Path.resolve and libc",
        description="Time realdoc's resolvers and cache hits against os.path.realpath, "
        "pathlib.Path.resolve and libc realpath(3) on a temporary deploy tree per --depth, "
        "count syscalls per call, print a table and remove the trees. A few seconds; "
        "--quick: about one.")
    add_arguments(p)
    p.set_defaults(func=run)


def _measure_case(case: Case, rows: List[Contender], repeats: int, batch_ms: float,
                  skip: Optional[str]) -> Dict[str, Any]:
    loops = {c.key: make_loop(c.stmt, c.namespace(case)) for c in rows}
    timings, empty = time_loops(loops, repeats=repeats, batch_ms=batch_ms)
    ns = {k: t.median for k, t in timings.items()}
    out: List[Dict[str, Any]] = []
    for c in rows:
        ratios = {ref: ns[c.key] / ns[ref] for ref in _RATIOS if ns.get(ref, 0) > 0
                  and ref != c.key and (ref != "floor" or c.key.startswith(_HITS))}
        out.append({"key": c.key, "label": c.label, "impl": c.impl, "ns_per_call": ns[c.key],
                    "best_ns": min(timings[c.key].samples), "calls_per_batch": timings[c.key].n,
                    "syscalls": count_syscalls(c, loops[c.key], skip).as_dict(),
                    "ratios": ratios})
    return {"depth": case.depth, "shape": case.shape, "path": case.path, "real": case.real,
            "link": case.link, "empty_loop_ns": empty, "rows": out}


def measure(depths: Sequence[int] = (DOCROOT_CASE[0],), shape: str = DOCROOT_CASE[1], *,
            impls: Optional[Sequence[str]] = None, repeats: int = 9, batch_ms: float = 10.0,
            use_strace: bool = True) -> Dict[str, Any]:
    """Build a tree per depth, time and count every row on it, remove it; return the report."""
    impls = list(impls or [realdoc.implementation])
    rows = [c for kind in zip(*map(realdoc_rows, impls)) for c in kind] + REFERENCES
    rows = [c for c in rows if c.available]
    ok, why = strace_status() if use_strace else (False, "--no-strace")
    report: Dict[str, Any] = {"machine": machine_info(), "repeats": repeats, "batch_ms": batch_ms,
                              "shape": shape, "strace": "strace" if ok else why, "depths": []}
    for depth in depths:
        case = build_case(depth, shape)
        try:
            report["depths"].append(_measure_case(case, rows, repeats, batch_ms,
                                                  None if ok else why))
        finally:  # remove the tree, and the registry entries resolve() made for it
            shutil.rmtree(case.root, ignore_errors=True)
            for impl in impls:
                implementations()[impl].clear(case.root)
    return report


def format_report(report: Dict[str, Any]) -> str:
    """The text table of a :func:`measure` report."""
    m, load = report["machine"], report["machine"]["loadavg"]
    lines = [
        f"realdoc {m['realdoc']} bench, implementation: {m['realdoc_implementation']} (features: "
        f"{', '.join(k for k, v in m['features'].items() if v) or 'none'})",
        f"machine: {m['platform']}; {m['cpu_count']} CPUs ({m['cpu'] or 'unknown CPU'}); kernel "
        f"{m['kernel']}; load {', '.join(f'{x:.2f}' for x in load) if load else '?'}",
        f"python: {m['python_implementation']} {m['python']}",
        f"date: {m['date']}",
        f"timing: time.perf_counter_ns, median of {report['repeats']} interleaved batches of "
        f"~{report['batch_ms']:g} ms per row, empty-loop cost subtracted; ratios are row time "
        "/ reference time (below 1: faster)",
        "syscalls per call: realdoc rows from realdoc.stats() deltas (stats); others "
        + ("by strace attached to this process (strace)" if report["strace"] == "strace"
           else f"skipped: {report['strace']}"),
    ]
    for d in report["depths"]:
        lines += ["", f"depth {d['depth']} ({d['shape']}): {d['path']} -> {d['real']}"]
        table = [["case", "ns/call", "syscalls/call", *_RATIOS.values()]]
        for r in d["rows"]:
            s, ns = r["syscalls"], r["ns_per_call"]
            n = "skipped" if s["total"] is None else f"{s['total']:.3g}"
            table.append([r["label"], f"{ns:,.0f}" if ns >= 100 else f"{ns:.1f}",
                          n if s["method"] in ("skipped", "none") else f"{n} ({s['method']})"]
                         + [f"{r['ratios'][k]:.2g}x" if k in r["ratios"] else "" for k in _RATIOS])
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        table.insert(1, ["-" * w for w in widths])
        lines += ["  ".join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in
                                                         zip(row[1:], widths[1:])]).rstrip()
                  for row in table]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Run ``realdoc bench`` with parsed ``args``: print the table (or JSON); return 0 (2: bad)."""
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 9)
    batch_ms = args.batch_ms if args.batch_ms is not None else (1.0 if args.quick else 10.0)
    if repeats < 1 or batch_ms <= 0:
        sys.stderr.write("realdoc: --repeats must be >= 1 and --batch-ms > 0\n")
        return 2
    impls = list(implementations()) if args.impl == "both" else [realdoc.implementation]
    report = measure(args.depth, args.shape, impls=impls, repeats=repeats, batch_ms=batch_ms,
                     use_strace=not args.no_strace)
    sys.stdout.write(json.dumps(report, indent=2) + "\n" if args.json else format_report(report))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":  # python -m realdoc.cli.bench [options]: realdoc bench [options]
    from realdoc.cli import main

    sys.exit(main(["bench", *sys.argv[1:]]))
