"""``realdoc bench``: a short benchmark of realdoc against the resolvers it replaces.

Runs in seconds without pytest: builds a temporary deploy tree, times every
case with :func:`time.perf_counter_ns` (batches of inline calls, the median
of several repeats, interleaved so that load changes hit every row alike),
counts syscalls per call, prints one table, and removes the tree.

Also the shared machinery of the pytest-benchmark suite in ``bench/`` (run
with ``python3 -m pytest bench --benchmark-only``): the trees
(:func:`build_case`), the contenders (:data:`COLD`, :data:`REFRESH`,
:data:`HIT`), the inline timing loops (:func:`make_loop`) and the syscall
counters (:func:`count_with_stats`, :func:`count_with_strace`,
:func:`count_in_child`).

**Depth.**  A case's *depth* is the number of path components below a short
temporary root ``/tmp/rdXXXXXXXX`` (from :func:`tempfile.mkdtemp`): depth 7
is ``/tmp/rdXXXXXXXX/current/public/s3/s4/s5/s6/s7``, 9 components in all.
Three *shapes* place the link:

- ``start``: the first component is the link, ``current -> releases/r1``;
- ``middle``: the link is component ``depth // 2 + 1`` (``m1/.../current/...``);
- ``two-level``: as ``start``, but ``current -> A -> releases/r1``.

The *docroot case* is depth 7, shape ``start``.

**Timing.**  A batch runs the case's statement inline ``n`` times in a loop
compiled for it (like :mod:`timeit`); ``n`` is calibrated so a batch lasts
about ``batch_ms``.  The cost of the empty loop is subtracted, so ns/call is
the cost of the statement itself (for a cache hit that is a few tens of ns,
so the loop would otherwise weigh).

**Syscalls.**  realdoc's own rows are counted with :func:`realdoc.stats`
deltas (the core counts every syscall it issues); the other rows with strace
(:func:`realdoc.testing.strace.count_syscalls`, no pytest needed) when strace is
installed and can trace.  Otherwise their counts are reported as skipped.
"""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)

import realdoc

# Heavier modules (ctypes, platform, the pure twin, realdoc.testing.tree) are imported
# where they are used: realdoc.cli imports this module to register ``bench``.

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = [
    "COLD",
    "DEPTHS",
    "DOCROOT_CASE",
    "HIT",
    "REFRESH",
    "SHAPES",
    "Case",
    "Contender",
    "add_parser",
    "build_case",
    "count_in_child",
    "count_with_stats",
    "count_with_strace",
    "machine_info",
    "main",
    "make_loop",
    "run",
    "time_loops",
]

DEPTHS: Tuple[int, ...] = (2, 4, 7, 12, 20)
SHAPES: Tuple[str, ...] = ("start", "middle", "two-level")
DOCROOT_CASE: Tuple[int, str] = (7, "start")

LoopFn = Callable[[int], None]

# ----------------------------------------------------------------------------- trees


@dataclass(frozen=True)
class Case:
    """One benchmark tree: a configured docroot of ``depth`` components below ``root``.

    ``path`` is the docroot as configured (through the link), ``link`` the
    first symlink on it (the ``start`` that makes ``first_link`` issue one
    syscall), ``real`` the real path.
    """

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
        """The case of this shape and depth laid out at ``root`` (nothing is created)."""
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
        k = depth // 2 + 1 if shape == "middle" else 1  # 1-based position of the link
        pre = [f"m{i}" for i in range(1, k)]
        post = (["public"] + [f"s{i}" for i in range(k + 2, depth + 1)])[: depth - k]
        base = os.path.join(root, *pre) if pre else root
        link = os.path.join(base, "current")
        path = os.path.join(link, *post) if post else link
        return cls(depth, shape, root, path, link)


def build_case(depth: int, shape: str, parent: str = "/tmp") -> Case:
    """Create a fresh temporary root in ``parent`` and the case's tree in it.

    The link's directory holds a :class:`~realdoc.testing.tree.DeployTree` (releases
    ``r1`` and ``r2``, ``current -> releases/r1``); for ``two-level``
    ``current`` is repointed to ``A -> releases/r1``.  Remove it with
    ``shutil.rmtree(case.root)``.
    """
    root = tempfile.mkdtemp(prefix="rd", dir=parent)
    try:
        case = Case.at(root, depth, shape)
        base = os.path.dirname(case.link)
        tail = os.path.relpath(case.path, case.link).split(os.sep)[1:]  # after "public"
        files = ("/".join(tail + ["index.html"]),)
        os.makedirs(base, exist_ok=True)
        from realdoc.testing.tree import DeployTree

        tree = DeployTree.create(base, releases=2, files=files)
        if shape == "two-level":
            os.symlink(os.path.join("releases", "r1"), os.path.join(base, "A"))
            tmp = os.path.join(base, ".current.tmp")
            os.symlink("A", tmp)
            os.replace(tmp, tree.current)
        if not os.path.isdir(case.path):
            raise RuntimeError(f"bench tree not built as expected: {case.path}")
        return case
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


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
        """Remove every tree built."""
        for case in self._cases.values():
            shutil.rmtree(case.root, ignore_errors=True)
        self._cases.clear()

    def __enter__(self) -> Trees:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------- contenders


@functools.lru_cache(maxsize=None)
def _implementations() -> Tuple[Tuple[str, ModuleType], ...]:
    import importlib

    from realdoc import _fastpath_py

    try:
        compiled = importlib.import_module("realdoc._fastpath")
    except ImportError:  # not built
        return (("python", _fastpath_py),)
    return (("cython", compiled), ("python", _fastpath_py))


def implementations() -> Dict[str, ModuleType]:
    """``{"cython": compiled core, "python": pure twin}``, without the core if not built."""
    return dict(_implementations())


def _impl(name: str) -> ModuleType:
    mods = implementations()
    if name not in mods:
        raise LookupError(f"realdoc implementation {name!r} is not available (not built)")
    return mods[name]


@functools.lru_cache(maxsize=None)
def _libc() -> Any:
    import ctypes
    import ctypes.util

    try:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        lib.realpath  # noqa: B018 - probe
    except (OSError, AttributeError):
        return None
    return lib


def libc_available() -> bool:
    """True if libc's realpath(3) is reachable through ctypes."""
    return _libc() is not None


def _libc_fn(name: str) -> Any:
    import ctypes

    lib = _libc()
    if lib is None:
        raise LookupError("libc is not reachable through ctypes")
    fn = getattr(lib, name)
    fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    fn.restype = ctypes.c_char_p  # converted to bytes (a copy), None for NULL
    return fn


@dataclass(frozen=True)
class Contender:
    """One way to resolve (or look up) a docroot, as an inline statement.

    ``stmt`` is one call, written with the names ``bind(case)`` returns;
    :func:`make_loop` compiles it into a batch loop.  ``impl`` names realdoc's
    implementation (its syscalls are counted with ``stats()``), ``None`` for
    the others (counted with strace).  ``key`` is id-safe and unique;
    ``label`` is for tables.
    """

    key: str
    label: str
    stmt: str
    bind: Callable[[Case], Dict[str, Any]] = field(repr=False, compare=False)
    impl: Optional[str] = None
    requires: Callable[[], bool] = field(default=lambda: True, repr=False, compare=False)

    @property
    def available(self) -> bool:
        """False when the implementation, libc, cachetools or the Python version is missing."""
        if self.impl is not None and self.impl not in implementations():
            return False
        return self.requires()

    def namespace(self, case: Case) -> Dict[str, Any]:
        """The names ``stmt`` uses, bound for ``case`` (and warmed up: two calls)."""
        ns = self.bind(case)
        once = make_loop(self.stmt, ns)
        once(2)
        return ns


def _realpath_ns(impl: str) -> Callable[[Case], Dict[str, Any]]:
    return lambda c: {"f": _impl(impl).realpath, "p": c.path}


def _first_link_ns(impl: str) -> Callable[[Case], Dict[str, Any]]:
    return lambda c: {"f": _impl(impl).first_link, "p": c.path, "s": c.link}


def _refresh_ns(impl: str) -> Callable[[Case], Dict[str, Any]]:
    return lambda c: {"r": _impl(impl).Resolver(c.path, every=0)}


def _hit_resolver_ns(impl: str) -> Callable[[Case], Dict[str, Any]]:
    return lambda c: {"r": _impl(impl).Resolver(c.path, every=3600.0)}


def _hit_resolve_ns(impl: str) -> Callable[[Case], Dict[str, Any]]:
    return lambda c: {"f": _impl(impl).resolve, "p": c.path}


def _libc_ns(c: Case) -> Dict[str, Any]:
    import ctypes

    return {"f": _libc_fn("realpath"), "b": os.fsencode(c.path),
            "buf": ctypes.create_string_buffer(4097)}


def _ctypes_floor_ns(c: Case) -> Dict[str, Any]:
    # strstr(b, "") returns b: a libc call with realpath's marshalling (two
    # char* in, a char* copied out to bytes) and no syscall.
    return {"f": _libc_fn("strstr"), "b": os.fsencode(c.path), "e": b""}


def _floor_ns(c: Case) -> Dict[str, Any]:
    return {"d": {c.path: c.real}, "time": time, "p": c.path}


def _lru_ns(c: Case) -> Dict[str, Any]:
    return {"f": functools.lru_cache(maxsize=1024)(os.path.realpath), "p": c.path}


def _has_cachetools() -> bool:
    try:
        import cachetools  # noqa: F401
    except ImportError:
        return False
    return True


def _ttl_ns(c: Case) -> Dict[str, Any]:
    import cachetools

    cache: Any = cachetools.TTLCache(maxsize=1024, ttl=2.0)
    return {"f": cachetools.cached(cache)(os.path.realpath), "p": c.path}


def _per_impl(make: Callable[[str], Contender]) -> List[Contender]:
    return [make("cython"), make("python")]


#: Resolution without cache, one call each.
COLD: List[Contender] = [
    *_per_impl(lambda i: Contender(
        f"realpath-{i}", f"realdoc.realpath [{i}]", "f(p)", _realpath_ns(i), i)),
    *_per_impl(lambda i: Contender(
        f"first_link-{i}", f"realdoc.first_link [{i}]", "f(p)", _first_link_ns(i), i)),
    *_per_impl(lambda i: Contender(
        f"first_link_start-{i}", f"realdoc.first_link(start=link) [{i}]", "f(p, start=s)",
        _first_link_ns(i), i)),
    Contender("os.path.realpath", "os.path.realpath", "f(p)",
              lambda c: {"f": os.path.realpath, "p": c.path}),
    Contender("os.path.realpath-strict", "os.path.realpath(strict=True)", "f(p, strict=True)",
              lambda c: {"f": os.path.realpath, "p": c.path},
              requires=lambda: sys.version_info >= (3, 10)),
    Contender("Path.resolve", "pathlib.Path.resolve", "q.resolve()",
              lambda c: {"q": pathlib.Path(c.path)}),
    Contender("libc-realpath", "libc realpath(3) (ctypes)", "f(b, buf)", _libc_ns,
              requires=libc_available),
]

#: The Resolver refresh (every=0: every call resolves; the compiled core by prediction).
REFRESH: List[Contender] = _per_impl(lambda i: Contender(
    f"refresh-{i}", f"Resolver(every=0)() [{i}]", "r()", _refresh_ns(i), i))

#: Cache hits, and the caches a Python user would otherwise write.
HIT: List[Contender] = [
    *_per_impl(lambda i: Contender(
        f"hit-Resolver-{i}", f"Resolver() hit [{i}]", "r()", _hit_resolver_ns(i), i)),
    *_per_impl(lambda i: Contender(
        f"hit-resolve-{i}", f"resolve(p) hit [{i}]", "f(p)", _hit_resolve_ns(i), i)),
    Contender("floor", "floor: d.get(p); time.monotonic()", "d.get(p); time.monotonic()",
              _floor_ns),
    Contender("lru_cache", "functools.lru_cache(os.path.realpath) hit", "f(p)", _lru_ns),
    Contender("TTLCache", "cachetools.TTLCache(os.path.realpath) hit", "f(p)", _ttl_ns,
              requires=_has_cachetools),
]

#: Not a resolver: what a ctypes call costs (libc's row includes it).
CTYPES_FLOOR = Contender("ctypes-floor", "ctypes call floor (strstr)", "f(b, e)",
                         _ctypes_floor_ns, requires=libc_available)

CONTENDERS: Dict[str, Contender] = {c.key: c for c in [*COLD, *REFRESH, *HIT, CTYPES_FLOOR]}


# ----------------------------------------------------------------------------- timing


def make_loop(stmt: str, names: Mapping[str, Any]) -> LoopFn:
    """Compile ``loop(n)``: run ``stmt`` inline ``n`` times, ``names`` as fast locals."""
    for name in names:
        if not name.isidentifier() or name.startswith("_"):
            raise ValueError(f"bad name for a loop variable: {name!r}")
    params = "".join(f", {k}=_names[{k!r}]" for k in names)
    src = f"def _loop(_n, _it=_repeat{params}):\n    for _ in _it(None, _n):\n        {stmt}\n"
    scope: Dict[str, Any] = {"_names": dict(names), "_repeat": itertools.repeat}
    exec(compile(src, f"<realdoc.cli.bench loop: {stmt}>", "exec"), scope)
    loop: LoopFn = scope["_loop"]
    return loop


_EMPTY = make_loop("pass", {})


def _batch_ns(loop: LoopFn, n: int) -> int:
    t0 = time.perf_counter_ns()
    loop(n)
    return time.perf_counter_ns() - t0


def _calibrate(loop: LoopFn, batch_ns: int) -> int:
    """Calls per batch so that one batch lasts about ``batch_ns``."""
    n = 1
    while True:
        t = _batch_ns(loop, n)
        if t >= batch_ns // 8 or n >= 1 << 24:
            return max(1, int(n * batch_ns / max(t, 1)))
        n *= 8


def _median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


@dataclass
class Timing:
    """Per-call timings of one loop: ``samples`` (ns/call of each batch, net of the empty loop)."""

    n: int
    samples: List[float]

    @property
    def median(self) -> float:
        """Median ns/call."""
        return _median(self.samples)

    @property
    def best(self) -> float:
        """Fastest batch, ns/call."""
        return min(self.samples)


def time_loops(
    loops: Mapping[str, LoopFn], *, repeats: int = 7, batch_ms: float = 5.0
) -> Tuple[Dict[str, Timing], float]:
    """Time each loop in ``repeats`` interleaved rounds; return timings and empty-loop ns/iter.

    Every round runs one batch of every loop (and of the empty loop), so a
    change of machine load weighs on all of them alike.  The garbage
    collector is off during batches.  Each sample is ``batch / n`` minus the
    empty loop's median ns per iteration.
    """
    batch_ns = int(batch_ms * 1e6)
    gc_was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        sizes = {k: _calibrate(loop, batch_ns) for k, loop in loops.items()}
        empty_n = _calibrate(_EMPTY, batch_ns)
        raw: Dict[str, List[float]] = {k: [] for k in loops}
        empty: List[float] = []
        for _ in range(repeats):
            empty.append(_batch_ns(_EMPTY, empty_n) / empty_n)
            for k, loop in loops.items():
                raw[k].append(_batch_ns(loop, sizes[k]) / sizes[k])
    finally:
        if gc_was:
            gc.enable()
    overhead = _median(empty)
    timings = {k: Timing(sizes[k], [max(s - overhead, 0.0) for s in v]) for k, v in raw.items()}
    return timings, overhead


# ----------------------------------------------------------------------------- syscalls


@dataclass
class Syscalls:
    """Syscalls per call, by name, and how they were counted.

    ``method``: ``stats`` (realdoc's counters), ``strace`` (attached to this
    process), ``strace-child``, ``none`` (no syscall by construction) or
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


def count_with_stats(impl: str, loop: LoopFn, calls: int = 100) -> Syscalls:
    """Count ``loop(calls)``'s syscalls with ``stats()`` of realdoc implementation ``impl``.

    One call first, uncounted: a cached entry that went stale while the
    benchmark ran refreshes there, so a hit row counts hits.
    """
    mod = _impl(impl)
    loop(1)
    before = dict(mod.stats()["syscalls"])
    loop(calls)
    after = mod.stats()["syscalls"]
    per = {k: (after[k] - before.get(k, 0)) / calls for k in after}
    return Syscalls("stats", {k: v for k, v in per.items() if v})


def _testing() -> ModuleType:
    """The strace counter (realdoc.testing.strace; stdlib only)."""
    from realdoc.testing import strace as _strace

    return _strace


def strace_status() -> Tuple[bool, str]:
    """(usable, reason): whether strace can count the other rows' syscalls."""
    testing = _testing()
    ok, detail = testing.strace_status()
    if not ok:
        return False, f"strace is not usable here ({detail})"
    return True, "strace"


def count_with_strace(loop: LoopFn, calls: int = 3) -> Syscalls:
    """Count ``loop(1)`` ``calls`` times by strace attached to this process (baseline subtracted).

    Returns a ``skipped`` result, with the reason in ``note``, when strace
    cannot be used.
    """
    ok, why = strace_status()
    if not ok:
        return Syscalls("skipped", note=why)
    testing = _testing()
    try:
        trace = testing.count_syscalls(lambda: loop(1), repeat=calls)
    except testing.StraceUnavailable as e:
        return Syscalls("skipped", note=str(e))
    return Syscalls("strace", {k: v / calls for k, v in trace.counts.items() if v})


def _child_namespace(key: str, root: str, depth: int, shape: str) -> Dict[str, Any]:
    """Names for contender ``key`` on an existing case: the set-up of :func:`count_in_child`."""
    return CONTENDERS[key].namespace(Case.at(root, depth, shape))


def child_env() -> Dict[str, str]:
    """os.environ with this realdoc's parent directory first on PYTHONPATH."""
    src = str(pathlib.Path(realdoc.__file__).resolve().parent.parent)
    old = os.environ.get("PYTHONPATH", "")
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (src, old) if p))


def count_in_child(contender: Contender, case: Case, timeout: float = 120) -> Syscalls:
    """Count one call of ``contender`` on ``case`` in a fresh child under ``strace -f``.

    The child binds and warms up the contender (two calls) before the BEGIN
    marker, makes one call between the markers, and a second child with an
    empty body gives the baseline that is subtracted
    (:func:`realdoc.testing.count_syscalls_in_child`).
    """
    ok, why = strace_status()
    if not ok:
        return Syscalls("skipped", note=why)
    testing = _testing()
    setup = (
        "from realdoc.cli.bench import _child_namespace\n"
        f"globals().update(_child_namespace({contender.key!r}, {case.root!r}, "
        f"{case.depth!r}, {case.shape!r}))\n"
    )
    try:
        trace = testing.count_syscalls_in_child(
            contender.stmt, setup=setup, env=child_env(), timeout=timeout)
    except testing.StraceUnavailable as e:
        return Syscalls("skipped", note=str(e))
    return Syscalls("strace-child", {k: float(v) for k, v in trace.counts.items() if v})


# ----------------------------------------------------------------------------- machine


def machine_info() -> Dict[str, Any]:
    """Platform, CPU model and count, kernel, load, Python and realdoc build."""
    import platform

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load: Optional[Tuple[float, float, float]] = os.getloadavg()
    except OSError:
        load = None
    u = os.uname()
    return {
        "platform": platform.platform(),
        "machine": u.machine,
        "kernel": f"{u.sysname} {u.release}",
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "loadavg": load,
        "python": sys.version.replace("\n", " "),
        "python_implementation": platform.python_implementation(),
        "realdoc": realdoc.__version__,
        "realdoc_implementation": realdoc.implementation,
        "features": realdoc.features(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


# ----------------------------------------------------------------------------- the CLI

_REFERENCES = ("os.path.realpath", "Path.resolve", "libc-realpath", "floor")
_REF_HEADS = {"os.path.realpath": "/os.path.realpath", "Path.resolve": "/Path.resolve",
              "libc-realpath": "/libc(3)", "floor": "/floor"}
_HIT_KEYS = ("hit-", "floor", "lru_cache", "TTLCache")


def _rows_for(impls: Sequence[str]) -> List[Contender]:
    own = ["realpath", "first_link", "first_link_start", "refresh", "hit-Resolver", "hit-resolve"]
    rows = [CONTENDERS[f"{k}-{i}"] for k in own for i in impls]
    rows += [CONTENDERS[k] for k in ("os.path.realpath", "Path.resolve", "libc-realpath",
                                       "ctypes-floor", "floor", "TTLCache")]
    return [c for c in rows if c.available]


def _parse_depths(text: str) -> List[int]:
    try:
        depths = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}") from None
    if not depths or any(d < 1 or d > 200 for d in depths):
        raise argparse.ArgumentTypeError(f"depths must be 1..200: {text!r}")
    return depths


def add_parser(subparsers: Subparsers) -> None:
    """Register ``bench`` (see :mod:`realdoc.cli`)."""
    p = subparsers.add_parser(
        "bench",
        help="time realdoc against os.path.realpath, Path.resolve and libc",
        description=(
            "Build a temporary deploy tree, time realdoc's resolvers and cache hits "
            "against os.path.realpath, pathlib.Path.resolve and libc realpath(3) "
            "(perf_counter_ns, median of interleaved batches, empty loop subtracted), "
            "count syscalls per call, print a table and remove the tree. Takes a few "
            "seconds; --quick takes about one."
        ),
    )
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``realdoc bench``."""
    p.add_argument("--quick", action="store_true",
                   help="fewer and shorter batches (about a second in all)")
    p.add_argument("--depth", type=_parse_depths, default=[DOCROOT_CASE[0]], metavar="N[,N...]",
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


def _measure_depth(case: Case, rows: List[Contender], repeats: int, batch_ms: float,
                   use_strace: bool) -> Dict[str, Any]:
    loops = {c.key: make_loop(c.stmt, c.namespace(case)) for c in rows}
    timings, overhead = time_loops(loops, repeats=repeats, batch_ms=batch_ms)
    results: List[Dict[str, Any]] = []
    for c in rows:
        if c.impl is not None:
            sc = count_with_stats(c.impl, loops[c.key])
        elif c.key == "floor":
            sc = Syscalls("none", note="no syscall by construction")
        elif use_strace:
            sc = count_with_strace(loops[c.key])
        else:
            sc = Syscalls("skipped", note="--no-strace")
        results.append({"key": c.key, "label": c.label, "impl": c.impl,
                        "ns_per_call": timings[c.key].median, "best_ns": timings[c.key].best,
                        "calls_per_batch": timings[c.key].n, "syscalls": sc.as_dict()})
    by_key = {r["key"]: r for r in results}
    for r in results:
        r["ratios"] = {}
        for ref in _REFERENCES:
            if ref == "floor" and not r["key"].startswith(_HIT_KEYS):
                continue
            if ref in by_key and ref != r["key"] and by_key[ref]["ns_per_call"] > 0:
                r["ratios"][ref] = r["ns_per_call"] / by_key[ref]["ns_per_call"]
    return {"depth": case.depth, "shape": case.shape, "path": case.path, "real": case.real,
            "link": case.link, "empty_loop_ns": overhead, "rows": results}


def _fmt_ns(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def _fmt_sys(s: Dict[str, Any]) -> str:
    if s["method"] == "skipped":
        return "skipped"
    total = s["total"]
    num = f"{total:.0f}" if abs(total - round(total)) < 1e-9 else f"{total:.2g}"
    return f"{num} ({s['method']})" if s["method"] != "none" else "0"


def _fmt_ratio(v: Optional[float]) -> str:
    return "" if v is None else f"{v:.2g}x"


def format_report(report: Dict[str, Any]) -> str:
    """The text table of a :func:`measure` report."""
    m = report["machine"]
    load = m["loadavg"]
    lines = [
        f"realdoc {m['realdoc']} bench, implementation: {m['realdoc_implementation']} "
        f"(features: {', '.join(k for k, v in m['features'].items() if v) or 'none'})",
        f"machine: {m['platform']}; {m['cpu_count']} CPUs ({m['cpu'] or 'unknown CPU'}); "
        f"kernel {m['kernel']}; load {', '.join(f'{x:.2f}' for x in load) if load else '?'}",
        f"python: {m['python_implementation']} {m['python']}",
        f"date: {m['date']}",
        f"timing: time.perf_counter_ns, median of {report['repeats']} interleaved batches of "
        f"~{report['batch_ms']:g} ms per row, empty-loop cost subtracted; ratios are "
        "row time / reference time (below 1: faster)",
        "syscalls per call: realdoc rows from realdoc.stats() deltas (stats); others "
        + ("by strace attached to this process (strace)" if report["strace"] == "strace"
           else f"skipped: {report['strace']}"),
    ]
    heads = ["case", "ns/call", "syscalls/call"] + [_REF_HEADS[r] for r in _REFERENCES]
    for d in report["depths"]:
        lines.append("")
        lines.append(f"depth {d['depth']} ({d['shape']}): {d['path']} -> {d['real']}")
        table = [heads]
        for r in d["rows"]:
            table.append([r["label"], _fmt_ns(r["ns_per_call"]), _fmt_sys(r["syscalls"])]
                         + [_fmt_ratio(r["ratios"].get(ref)) for ref in _REFERENCES])
        widths = [max(len(row[i]) for row in table) for i in range(len(heads))]
        for j, row in enumerate(table):
            cells = [row[0].ljust(widths[0])]
            cells += [row[i].rjust(widths[i]) for i in range(1, len(row))]
            lines.append("  ".join(cells).rstrip())
            if j == 0:
                lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def measure(depths: Sequence[int] = (DOCROOT_CASE[0],), shape: str = DOCROOT_CASE[1], *,
            impls: Optional[Sequence[str]] = None, repeats: int = 9, batch_ms: float = 10.0,
            use_strace: bool = True) -> Dict[str, Any]:
    """Build the trees, measure every row at every depth, remove the trees; return the report."""
    if impls is None:
        impls = [realdoc.implementation]
    rows = _rows_for(impls)
    strace_ok, strace_why = strace_status() if use_strace else (False, "--no-strace")
    report: Dict[str, Any] = {
        "machine": machine_info(), "repeats": repeats, "batch_ms": batch_ms, "shape": shape,
        "strace": "strace" if strace_ok else strace_why, "depths": [],
    }
    with Trees() as trees:
        for depth in depths:
            case = trees.get(depth, shape)
            try:
                report["depths"].append(_measure_depth(case, rows, repeats, batch_ms, strace_ok))
            finally:  # drop the registry entries resolve() made for the tree
                for impl in impls:
                    _impl(impl).clear(case.root)
    return report


def run(args: argparse.Namespace) -> int:
    """Run ``realdoc bench`` with parsed ``args``; print the table (or JSON); return 0."""
    quick = bool(args.quick)
    repeats = args.repeats if args.repeats is not None else (3 if quick else 9)
    batch_ms = args.batch_ms if args.batch_ms is not None else (1.0 if quick else 10.0)
    if repeats < 1 or batch_ms <= 0:
        sys.stderr.write("realdoc: --repeats must be >= 1 and --batch-ms > 0\n")
        return 2
    impls = list(implementations()) if args.impl == "both" else [realdoc.implementation]
    report = measure(args.depth, args.shape, impls=impls, repeats=repeats, batch_ms=batch_ms,
                     use_strace=not args.no_strace)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(format_report(report))
    sys.stdout.flush()
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m realdoc.cli.bench [options]``: the same as ``realdoc bench``."""
    parser = argparse.ArgumentParser(prog="realdoc bench", description=(
        "Time realdoc against os.path.realpath, Path.resolve and libc realpath(3)."))
    add_arguments(parser)
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
