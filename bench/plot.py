"""Plot time per resolution against path depth: docs/perf.png.

Needs matplotlib (``pip install 'realdoc[plot]'`` or ``pip install matplotlib``).

From a benchmark run (the figures of the tables in docs/performance.md)::

    PYTHONPATH=src python3 -m pytest bench --benchmark-only --benchmark-json=bench.json
    PYTHONPATH=src python3 bench/plot.py bench.json -o docs/perf.png

Without a JSON file it measures by itself with realdoc bench's timing loops (bench/machinery.py)
(about half a minute)::

    PYTHONPATH=src python3 bench/plot.py -o docs/perf.png

Lines (shape ``start``: the docroot's first component below the temp root is
``current -> releases/r1``): realdoc.realpath (compiled and pure), the
compiled Resolver refresh (every=0), os.path.realpath, pathlib.Path.resolve,
libc realpath(3) through ctypes, and the compiled ``Resolver()`` cache hit,
which does not depend on depth (log scale).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

try:
    import realdoc  # noqa: F401
except ImportError:  # a checkout without PYTHONPATH=src
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "src"))

import machinery as M

#: (contender key, legend label, style) in legend order.
LINES: List[Tuple[str, str, Dict[str, Any]]] = [
    ("Path.resolve", "pathlib.Path.resolve", {"color": "#999999", "ls": ":", "marker": "v"}),
    ("os.path.realpath", "os.path.realpath", {"color": "#555555", "ls": "--", "marker": "s"}),
    ("libc-realpath", "libc realpath(3) via ctypes",
     {"color": "#d62728", "ls": "-", "marker": "D"}),
    ("realpath-python", "realdoc.realpath, pure twin",
     {"color": "#9ecae1", "ls": "-", "marker": "o"}),
    ("realpath-cython", "realdoc.realpath, compiled",
     {"color": "#1f77b4", "ls": "-", "marker": "o"}),
    ("refresh-cython", "Resolver refresh (every=0), compiled",
     {"color": "#2ca02c", "ls": "-", "marker": "^"}),
]
HIT_LINES: List[Tuple[str, str, Dict[str, Any]]] = [
    ("hit-Resolver-python", "Resolver() hit, pure twin", {"color": "#ff7f0e", "ls": "-."}),
    ("hit-Resolver-cython", "Resolver() cache hit, compiled", {"color": "#ff7f0e", "ls": "-"}),
]

Series = Dict[str, Dict[int, float]]  # key -> depth -> ns/call


def from_json(path: str, shape: str) -> Tuple[Series, Dict[str, float], Dict[str, Any]]:
    """Read ns/call by contender and depth from a pytest-benchmark JSON file."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    series: Series = {}
    hits: Dict[str, float] = {}
    floor: Optional[float] = None
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        key, ns = info.get("contender"), info.get("ns_per_call")
        if key is None or ns is None:
            continue
        if key == "ctypes-floor":
            floor = ns
        elif key.startswith("hit-"):
            hits[key] = ns
        elif info.get("shape") == shape:
            series.setdefault(key, {})[int(info["depth"])] = ns
    mi = data.get("machine_info", {})
    cpu = mi.get("cpu", {}) or {}
    footer = (f"{data.get('datetime', '')[:16]}  {mi.get('system', '')} {mi.get('release', '')}  "
              f"{cpu.get('count', '?')} CPUs {cpu.get('brand_raw', '')}  "
              f"{mi.get('python_implementation', '')} {mi.get('python_version', '')}  "
              f"(pytest-benchmark, {os.path.basename(path)})")
    return series, hits, {"footer": footer, "ctypes_floor_ns": floor}


def measure(shape: str, depths: Sequence[int], repeats: int = 7,
            batch_ms: float = 5.0) -> Tuple[Series, Dict[str, float], Dict[str, Any]]:
    """Measure the plotted lines with realdoc bench's interleaved timing loops."""
    keys = [k for k, _, _ in LINES] + [k for k, _, _ in HIT_LINES]
    series: Series = {}
    hits: Dict[str, float] = {}
    with M.Trees() as trees:
        for depth in depths:
            case = trees.get(depth, shape)
            loops = {}
            for key in keys:
                c = M.CONTENDERS[key]
                if c.available and (not key.startswith("hit-") or depth == M.DOCROOT_CASE[0]):
                    loops[key] = M.make_loop(c.stmt, c.namespace(case))
            timings, _ = M.time_loops(loops, repeats=repeats, batch_ms=batch_ms)
            for key, t in timings.items():
                if key.startswith("hit-"):
                    hits[key] = t.median
                else:
                    series.setdefault(key, {})[depth] = t.median
    m = M.machine_info()
    footer = (f"{m['date'][:16]}  {m['kernel']}  {m['cpu_count']} CPUs {m['cpu']}  "
              f"{m['python_implementation']} {m['python'].split()[0]}  (realdoc bench loops)")
    return series, hits, {"footer": footer}


def plot(series: Series, hits: Dict[str, float], meta: Dict[str, Any], out: str,
         shape: str) -> None:
    """Draw the figure and save it to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 5.4), dpi=110)
    depths = sorted({d for s in series.values() for d in s})
    for key, label, style in LINES:
        s = series.get(key)
        if not s:
            continue
        xs = sorted(s)
        ax.plot(xs, [s[x] / 1000 for x in xs], label=label, lw=2, ms=5, **style)
    for key, label, style in HIT_LINES:
        if key in hits and depths:
            ax.plot([depths[0], depths[-1]], [hits[key] / 1000] * 2, lw=2,
                    label=f"{label} ({hits[key]:.0f} ns; no path work, flat)", **style)
    ax.set_yscale("log")
    ax.set_xticks(depths)
    ax.set_xlabel("path depth (components below a /tmp/rdXXXXXXXX root; "
                  f"link: {shape})")
    ax.set_ylabel("time per call (µs, log scale)")
    ax.set_title("realdoc: time per resolution vs path depth")
    ax.grid(True, which="both", axis="y", alpha=0.3)
    ax.grid(True, axis="x", alpha=0.2)
    ax.legend(fontsize=8.5, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    floor = meta.get("ctypes_floor_ns")
    note = (f"   libc's line includes the ctypes call ({floor:.0f} ns measured)" if floor
            else "   libc's line includes the ctypes call")
    fig.text(0.01, 0.01, meta.get("footer", "") + note, fontsize=7, color="#666666")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(out)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("json", nargs="?", help="a pytest-benchmark --benchmark-json file "
                   "(default: measure now)")
    p.add_argument("-o", "--output", default="docs/perf.png", help="PNG to write (%(default)s)")
    p.add_argument("--shape", choices=M.SHAPES, default="start")
    p.add_argument("--depths", default=",".join(map(str, M.DEPTHS)))
    args = p.parse_args(argv)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        sys.stderr.write("plot.py needs matplotlib: pip install 'realdoc[plot]'\n")
        return 2
    if args.json:
        series, hits, meta = from_json(args.json, args.shape)
    else:
        series, hits, meta = measure(args.shape, [int(d) for d in args.depths.split(",")])
    if not series:
        sys.stderr.write("no benchmark with realdoc's extra_info in the input\n")
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    plot(series, hits, meta, args.output, args.shape)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
