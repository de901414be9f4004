"""The end-of-run summary of the benchmark suite: the docs' Performance tables and targets.

The suite's benchmarks put their results here while they run (:func:`record`,
:data:`CHILD_SYSCALLS`, :data:`MEMORY`); at the end bench/conftest.py prints
:func:`render` (Markdown: ns per call, ratios, syscalls per resolution, cache
hits, registry memory, and every target met or missed) and ``--realdoc-report
PATH`` writes it to a file.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import machinery as M

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

    def four_times_on_every_case(key: str, ref: str, what: str, ref_name: str) -> None:
        w = worst(key, "cold", ref)
        if w is not None:
            out.append(_check(w[0] <= 0.25, f"{what} ≥ 4× faster than {ref_name} on every case: "
                                            f"worst {_f(w[0], True)} = {1 / w[0]:.1f}× faster "
                                            f"({w[1]})"))

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
    four_times_on_every_case("realpath-cython", "os.path.realpath", "cold realpath C",
                             "os.path.realpath")
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
    four_times_on_every_case("first_link_start-cython", "libc-realpath", "first_link(start) C",
                             "libc")
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
