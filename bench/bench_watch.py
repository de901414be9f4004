"""Watch mode (#11): flip-to-new-value lag, hit cost, memory, and the call-form ratios.

All figures come from one run, paired where they are compared:

* **Lag.** For each flip kind (``atomic``: symlink + rename(2), what ``ln -sfn``
  of coreutils 9 does; ``unlink+symlink``: ``ln -sfn`` of old coreutils, an
  IN_DELETE then an IN_CREATE; ``second-level``: ``current -> A -> releases/N``
  with ``A`` flipped atomically), three resolvers on the same tree are polled in
  the same loop every 100 µs, as a server would: compiled core ``every=60,
  watch=True``, ``every=2`` and ``every=0``.  The lag of each is the time from
  the flip returning to its first call that gives the new value; 60 flips per
  kind (``--flips``), a random 0-2 s apart after all three have seen a flip (so
  that ``every=2`` is met at a random phase of its refresh).
* **Hits.** A watched and an unwatched ``Resolver()`` hit, interleaved rounds
  (realdoc.cli.bench.time_loops), on both cores.
* **Call forms against the floor** ``d.get(p); time.monotonic()``: the
  compiled ``resolve(p, every=5)`` (target <= 1.0x) and the pure twin's
  ``Resolver()`` and ``resolve(p)`` hits (target <= 2.0x), in the same rounds.
* **Memory.** tracemalloc's count of bytes held by 1,000 watched Resolvers on
  one tree (one inotify instance, one watch) against 1,000 unwatched ones, per
  Resolver; the kernel's own cost per watch is not visible here.

Run it alone (about 7 minutes with 60 flips; ``--flips 10`` for a quick look)::

    PYTHONPATH=src python3 bench/bench_watch.py [--flips N] [--json out.json]

or as part of the suite (``pytest bench -k watch --benchmark-only``), which
prints the same tables at the end of the test's output.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pathlib
import random
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from typing import Any, Callable, Dict, List

try:
    import realdoc  # noqa: F401
except ImportError:  # a checkout without PYTHONPATH=src
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "src"))

from realdoc import _fastpath_py as PURE
from realdoc.cli.bench import make_loop, time_loops

try:
    from realdoc import _fastpath as COMPILED
except ImportError:  # pragma: no cover - depends on the build
    COMPILED = None  # type: ignore[assignment]

POLL = 0.0001  # the caller's polling interval, seconds
CONFIGS = [("every=60+watch", {"every": 60, "watch": True}), ("every=2", {"every": 2}),
           ("every=0", {"every": 0})]
KINDS = ("atomic", "unlink+symlink", "second-level")


def _tree() -> str:
    root = tempfile.mkdtemp(prefix="rdwatch-")
    for i in range(2):
        os.makedirs(f"{root}/releases/r{i}")
    os.symlink("releases/r0", f"{root}/current")
    return root


def _flip(root: str, kind: str, n: int) -> str:
    """Flip to release n % 2 the ``kind`` way; return the new real path."""
    target = f"releases/r{n % 2}"
    if kind == "second-level":
        link = f"{root}/A"
    else:
        link = f"{root}/current"
    if kind == "unlink+symlink":
        os.unlink(link)
        os.symlink(target, link)
    else:
        os.symlink(target, f"{link}.tmp")
        os.rename(f"{link}.tmp", link)
    return f"{root}/{target}"


def lag(kind: str, flips: int, core: Any) -> Dict[str, List[float]]:
    """Lags in ms, per config, over ``flips`` flips of ``kind``."""
    root = _tree()
    try:
        if kind == "second-level":
            os.symlink("releases/r0", f"{root}/A")
            os.symlink("A", f"{root}/current.tmp")
            os.rename(f"{root}/current.tmp", f"{root}/current")
        rs = {name: core.Resolver(f"{root}/current", **kw) for name, kw in CONFIGS}
        for r in rs.values():
            r()
        out: Dict[str, List[float]] = {name: [] for name in rs}
        for n in range(1, flips + 1):
            want = _flip(root, kind, n)
            t0 = time.perf_counter()
            pending = dict(rs)
            while pending:
                for name, r in list(pending.items()):
                    if r() == want:
                        out[name].append((time.perf_counter() - t0) * 1e3)
                        del pending[name]
                time.sleep(POLL)
            # a random phase against every=2's refresh (flipping just after it
            # would measure its worst case, 2 s, every time)
            time.sleep(random.uniform(0, 2.0))
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def hits() -> Dict[str, float]:
    """ns per call, from one set of interleaved rounds, and the floor."""
    root = _tree()
    try:
        p = f"{root}/current"
        loops: Dict[str, Callable[[int], None]] = {
            "floor": make_loop("d.get(p); time.monotonic()",
                               {"d": {p: p}, "time": time, "p": p})}
        for label, core in (("cython", COMPILED), ("python", PURE)):
            if core is None:
                continue
            watched = core.Resolver(p, every=3600, watch=True)
            plain = core.Resolver(p, every=3600)
            watched(), plain()
            core.resolve(p), core.resolve(p, every=5)
            loops[f"{label} Resolver() watched"] = make_loop("r()", {"r": watched})
            loops[f"{label} Resolver()"] = make_loop("r()", {"r": plain})
            loops[f"{label} resolve(p)"] = make_loop("f(p)", {"f": core.resolve, "p": p})
            loops[f"{label} resolve(p, every=5)"] = make_loop(
                "f(p, every=5)", {"f": core.resolve, "p": p})
        timings, _empty = time_loops(loops, repeats=15)
        return {k: t.median for k, t in timings.items()}
    finally:
        for core in (COMPILED, PURE):
            if core is not None:
                core.clear()
        shutil.rmtree(root, ignore_errors=True)


def memory(core: Any, n: int = 1000) -> Dict[str, Any]:
    """Bytes per Resolver (tracemalloc), watched and not, and the watcher's state."""
    root = _tree()
    try:
        result: Dict[str, Any] = {}
        for watch in (False, True):
            gc.collect()
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            rs = [core.Resolver(f"{root}/current", every=3600, watch=watch) for _ in range(n)]
            for r in rs:
                r()
            held = tracemalloc.get_traced_memory()[0] - base
            tracemalloc.stop()
            result["watched" if watch else "plain"] = held / n
            if watch:
                result["instances"] = 1 if core._watcher.fd >= 0 else 0
                with open(f"/proc/self/fdinfo/{core._watcher.fd}") as f:
                    result["watch_descriptors"] = sum(ln.startswith("inotify wd:") for ln in f)
                result["all_watching"] = all(r.watching for r in rs)
            del rs
        result["extra_per_watched"] = result["watched"] - result["plain"]
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _pct(v: List[float], q: float) -> float:
    s = sorted(v)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def run(flips: int) -> Dict[str, Any]:
    core = COMPILED or PURE
    return {
        "implementation": "cython" if COMPILED is not None else "python",
        "flips": flips,
        "lag_ms": {kind: lag(kind, flips, core) for kind in KINDS},
        "hits_ns": hits(),
        "memory": {label: memory(c) for label, c in (("cython", COMPILED), ("python", PURE))
                   if c is not None},
    }


def report(res: Dict[str, Any]) -> str:
    """The run as Markdown tables, with the targets met or missed."""
    out = [f"Lag from flip to first new value, ms, polling every 100 µs, {res['flips']} flips, "
           f"{res['implementation']} core", "",
           "| flip | resolver | p50 | p90 | p99 | max |", "|---|---|---|---|---|---|"]
    verdicts = []
    for kind, by in res["lag_ms"].items():
        for name, v in by.items():
            out.append(f"| {kind} | {name} | {statistics.median(v):.3f} | {_pct(v, .9):.3f} "
                       f"| {_pct(v, .99):.3f} | {max(v):.3f} |")
        w = by["every=60+watch"]
        ok = statistics.median(w) <= 1.0 and max(w) <= 20.0
        verdicts.append(f"{kind}: watch p50 {statistics.median(w):.3f} ms <= 1, max "
                        f"{max(w):.3f} ms <= 20: {'met' if ok else 'MISSED'}")
    h = res["hits_ns"]
    floor = h["floor"]
    out += ["", "Hits, ns per call (median of interleaved rounds), and / floor "
            "(`d.get(p); time.monotonic()`)", "", "| call | ns | / floor |", "|---|---|---|"]
    for k, v in h.items():
        out.append(f"| {k} | {v:.1f} | {v / floor:.2f} |")
    targets = [("cython resolve(p, every=5)", 1.0), ("python Resolver()", 2.0),
               ("python resolve(p)", 2.0)]
    for k, limit in targets:
        if k in h:
            r = h[k] / floor
            verdicts.append(f"{k}: {r:.2f}x floor <= {limit}: {'met' if r <= limit else 'MISSED'}")
    for label in ("cython", "python"):
        if f"{label} Resolver()" in h:
            verdicts.append(f"{label} watched hit / unwatched hit: "
                            f"{h[f'{label} Resolver() watched'] / h[f'{label} Resolver()']:.2f}")
    out += ["", "Memory of 1,000 Resolvers on one tree (tracemalloc, bytes per Resolver)", "",
            "| core | unwatched | watched | extra | instances | watch descriptors |",
            "|---|---|---|---|---|---|"]
    for label, m in res["memory"].items():
        out.append(f"| {label} | {m['plain']:.0f} | {m['watched']:.0f} | "
                   f"{m['extra_per_watched']:.0f} | {m['instances']} | "
                   f"{m['watch_descriptors']} |")
    return "\n".join(out + ["", "Targets:", ""] + [f"- {v}" for v in verdicts]) + "\n"


def test_watch_report(benchmark: Any, request: Any) -> None:
    """The whole report as one pytest-benchmark round (``--realdoc-watch-flips``)."""
    flips = int(os.environ.get("REALDOC_BENCH_WATCH_FLIPS", "60"))
    benchmark.group = "watch mode (one run)"
    res = benchmark.pedantic(run, args=(flips,), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    print("\n" + report(res))
    for kind, by in res["lag_ms"].items():
        assert len(by["every=60+watch"]) == flips, kind


def main(argv: List[str] = sys.argv[1:]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flips", type=int, default=60)
    ap.add_argument("--json", help="also write the raw figures here")
    args = ap.parse_args(argv)
    res = run(args.flips)
    print(report(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
