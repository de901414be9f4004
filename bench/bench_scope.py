"""Process scope against request scope: the per-request cost, paired in one run.

::

    PYTHONPATH=src python3 bench/bench_scope.py [--rounds 10] [--number 200000]

The script pins its own process (``pin_process`` on a temporary deploy tree,
``rollover=False``) and times, on each implementation, pairs of calls that
differ only in scope:

* ``Resolver()``: ``Resolver(current/public)`` (auto, so process scope) against
  ``Resolver(content, scope="request")``, a request-scope hit (``every=inf``,
  so it never refreshes during the run);
* ``resolve()``: ``resolve(current/public)`` (auto: process) against
  ``resolve(content/current)`` (auto: request, its hit), both through the
  one-argument fast path;
* the WSGI middleware's call with a trivial app, docroot ``current/public``
  (auto: process) against ``content/current`` (auto: request).

Each pair runs ``rounds`` times in ABBA order (``timeit``, ``number`` calls per
round, the empty loop's time subtracted); the figures are the medians of ns per
call and the median of the per-round ratios process/request.  The target is a
ratio <= 1 (the process-scope call costs at most the request-scope hit);
both run the same hit path, so a ratio up to 1.02 counts as met (the noise of
paired rounds on a shared machine) and the raw ratio is printed.
Prints a table and ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import timeit
from typing import Any, Callable, Dict, List, Optional, Tuple

REPO = pathlib.Path(__file__).resolve().parent.parent
try:
    import realdoc
except ImportError:  # a checkout without PYTHONPATH=src: use its src/
    sys.path.insert(0, str(REPO / "src"))
    import realdoc

from realdoc import _fastpath_py
from realdoc.wsgi import RealdocMiddleware

try:
    from realdoc import _fastpath as _compiled
except ImportError:  # pragma: no cover - depends on the build
    _compiled = None


def make_tree(root: str) -> Tuple[str, str]:
    """``root/app/current -> releases/r1`` (with ``public``) and ``root/content/current``."""
    for sub in ("app/releases/r1/public", "content/releases/c1"):
        os.makedirs(os.path.join(root, sub))
    os.symlink("releases/r1", os.path.join(root, "app", "current"))
    os.symlink("releases/c1", os.path.join(root, "content", "current"))
    return os.path.join(root, "app", "current"), os.path.join(root, "content", "current")


def per_call_ns(fn: Callable[[], Any], number: int) -> float:
    """ns per call of ``fn()`` in a timeit loop, the empty loop subtracted."""
    t = timeit.Timer("f()", globals={"f": fn}).timeit(number)
    empty = timeit.Timer("f", globals={"f": fn}).timeit(number)
    return max(t - empty, 0.0) / number * 1e9


def paired(a: Callable[[], Any], b: Callable[[], Any], rounds: int,
           number: int) -> Dict[str, float]:
    """ABBA rounds of ``a`` (process scope) and ``b`` (request scope)."""
    na: List[float] = []
    nb: List[float] = []
    ratios: List[float] = []
    for i in range(rounds):
        if i % 2 == 0:
            x = per_call_ns(a, number)
            y = per_call_ns(b, number)
        else:
            y = per_call_ns(b, number)
            x = per_call_ns(a, number)
        na.append(x)
        nb.append(y)
        ratios.append(x / y if y else float("inf"))
    return {"process_ns": statistics.median(na), "request_ns": statistics.median(nb),
            "ratio": statistics.median(ratios)}


def run(rounds: int, number: int) -> Dict[str, Dict[str, float]]:
    root = tempfile.mkdtemp(prefix="rdscope")
    try:
        app, content = make_tree(root)
        realdoc.pin_process(app, rollover=False)
        public = os.path.join(app, "public")
        results: Dict[str, Dict[str, float]] = {}
        impls = [("python", _fastpath_py)] + ([("cython", _compiled)] if _compiled else [])
        for name, mod in impls:
            proc = mod.Resolver(public)
            req = mod.Resolver(content, scope="request", every=float("inf"))
            assert proc.effective_scope == "process" and req.effective_scope == "request"
            results[f"{name} Resolver()"] = paired(proc, req, rounds, number)
            resolve = mod.resolve
            assert resolve(public) == proc() and resolve(content) == req()
            results[f"{name} resolve()"] = paired(lambda: resolve(public),
                                                  lambda: resolve(content), rounds, number)

        def app_fn(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
            return []

        mw_proc = RealdocMiddleware(app_fn, public)
        mw_req = RealdocMiddleware(app_fn, content)
        assert mw_proc.resolver.effective_scope == "process"
        assert mw_req.resolver.effective_scope == "request"
        def start(*args: Any) -> None:
            return None

        env_a: Dict[str, Any] = {}
        env_b: Dict[str, Any] = {}
        results[f"{realdoc.implementation} middleware"] = paired(
            lambda: mw_proc(env_a, start), lambda: mw_req(env_b, start), rounds, number // 4)
        return results
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    results = run(args.rounds, args.number)
    print(f"{'call':<24} {'process ns':>11} {'request ns':>11} {'ratio':>7}  target <= 1")
    ok = True
    for name, r in results.items():
        met = r["ratio"] <= 1.0 + 0.02  # within timing noise of the paired rounds
        ok = ok and met
        print(f"{name:<24} {r['process_ns']:11.1f} {r['request_ns']:11.1f} "
              f"{r['ratio']:7.3f}  {'met' if met else 'MISSED'}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
