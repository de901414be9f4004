"""pin_process on gunicorn: requests/s against bare, and the time from a flip to 100%.

One run, paired::

    PYTHONPATH=src python3 bench/bench_rollover.py [--seconds 3] [--rounds 8] \\
        [--flips 10]

* Throughput: two gunicorn sync x2 servers on one deploy tree of
  tests/apps/realdoc_rollapp.py, measured alternately ``rounds`` times with the
  same client (``wrk`` when on PATH, else Python keep-alive clients: compare the
  two only), in ABBA order; the figure is the median of the per-round ratios.
  ``pinned``: ``pin_process(every=2)`` and ``/page`` behind the middleware
  (docroot through ``current``, default auto scope: process scope); ``bare``: no pin, ``/bare``,
  the same file read with no middleware.
* Flip lag, ``every=2``: one pinned gunicorn sync x2 under load from 4 clients;
  ``flips`` atomic flips; for each, the seconds from the flip to the last
  response from an older release (so all responses after it are on the new
  one), with 1.5 s of new-only responses required before the next flip.
  Reports p50 and max.

What a broken release does, per server (``--broken gunicorn-sync|uvicorn|uwsgi``)::

    PYTHONPATH=src python3 bench/bench_rollover.py --broken uvicorn

starts the server as tests/test_rollover.py does (its harness), flips to a
release whose entry module fails to import, loads it for 15 s and prints
whether the server is still up, the answers by release, the errors, and the
server's log lines about the reload.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, Iterator, List, Optional

REPO = pathlib.Path(__file__).resolve().parent.parent
try:
    import realdoc
except ImportError:  # a checkout without PYTHONPATH=src: use its src/
    sys.path.insert(0, str(REPO / "src"))
    import realdoc
sys.path.insert(0, str(REPO / "tests" / "apps"))
sys.path.insert(0, str(REPO / "bench"))
from bench_middleware import _python_clients, _wrk  # noqa: E402
from rollapp_tree import make_tree  # noqa: E402

from realdoc.testing.servers import free_port, stop_process_group  # noqa: E402

REALDOC_PARENT = pathlib.Path(realdoc.__file__).resolve().parent.parent


@contextlib.contextmanager
def gunicorn(app_dir: str, pin: bool, every: float, workers: int = 2) -> Iterator[int]:
    """gunicorn sync serving realdoc_rollapp from ``app_dir``; yield its port; always stop."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REALDOC_PARENT), ROLLAPP_PIN="1" if pin else "0",
               ROLLAPP_EVERY=str(every))
    argv = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class",
            "sync", "--graceful-timeout", "5", "--chdir", app_dir, "--log-level", "warning",
            "--bind", f"127.0.0.1:{port}", "realdoc_rollapp:wsgi_app"]
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start")
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/page")
                c.getresponse().read()
                c.close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        stop_process_group(proc)


def throughput(seconds: float, rounds: int, connections: int = 8) -> Dict[str, Any]:
    """req/s of both servers, measured alternately (ABBA order) ``rounds`` times.

    The machine may be shared, so the figure is the median of the per-round
    ratios pinned / bare (each ratio from two runs a few seconds apart).
    """
    tool = "wrk" if shutil.which("wrk") else "python"
    measure = _wrk if tool == "wrk" else _python_clients
    result: Dict[str, Any] = {"tool": tool, "implementation": realdoc.implementation,
                              "errors": 0, "rounds": []}
    with tempfile.TemporaryDirectory(prefix="realdoc-bench-") as tmp:
        tree = make_tree(pathlib.Path(tmp), 2)
        with gunicorn(tree.current, True, 2.0) as pinned, \
                gunicorn(tree.current, False, 2.0) as bare:
            sides = {"bare": (bare, "/bare"), "pinned": (pinned, "/page")}
            measure(pinned, "/page", 1.0, connections)  # warm-up
            measure(bare, "/bare", 1.0, connections)
            for i in range(rounds):
                row: Dict[str, float] = {}
                for name in (("bare", "pinned") if i % 2 == 0 else ("pinned", "bare")):
                    port, path = sides[name]
                    r = measure(port, path, seconds, connections)
                    row[name] = r["rps"]
                    result["errors"] += r["errors"]
                result["rounds"].append(row)
    ratios = [r["pinned"] / r["bare"] for r in result["rounds"] if r["bare"]]
    result["ratio"] = statistics.median(ratios)
    result["bare_rps"] = statistics.median(r["bare"] for r in result["rounds"])
    result["pinned_rps"] = statistics.median(r["pinned"] for r in result["rounds"])
    return result


def flip_lag(flips: int, every: float = 2.0, clients: int = 4) -> Dict[str, Any]:
    """Seconds from each flip to the last response from an older release."""
    lock = threading.Lock()
    last_seen: Dict[str, float] = {}   # release -> monotonic time of its last response
    errors = [0]
    stop = threading.Event()
    lags: List[float] = []
    with tempfile.TemporaryDirectory(prefix="realdoc-bench-") as tmp:
        tree = make_tree(pathlib.Path(tmp), 2)
        with gunicorn(tree.current, True, every) as port:
            def client() -> None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                while not stop.is_set():
                    try:
                        conn.request("GET", "/page")
                        resp = conn.getresponse()
                        body = resp.read().decode().split()
                        now = time.monotonic()
                        with lock:
                            if resp.status == 200 and len(set(body)) == 1:
                                last_seen[body[0]] = now
                            else:
                                errors[0] += 1
                    except (OSError, http.client.HTTPException):
                        conn.close()  # a retiring worker closed it: reconnect
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.close()

            threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
            for t in threads:
                t.start()
            time.sleep(1.0)
            for i in range(flips):
                old, new = ("r1", "r2") if i % 2 == 0 else ("r2", "r1")
                tree.flip(new)
                flipped = time.monotonic()
                deadline = flipped + every + 30
                while time.monotonic() < deadline:
                    time.sleep(0.1)
                    with lock:
                        last_old = last_seen.get(old, 0.0)
                        last_new = last_seen.get(new, 0.0)
                    if last_new > flipped and time.monotonic() - max(last_old, flipped) > 1.5:
                        break
                lags.append(max(0.0, last_old - flipped))
            stop.set()
            for t in threads:
                t.join(15)
    return {"every": every, "flips": flips, "lags": lags,
            "p50": statistics.median(lags), "max": max(lags), "errors": errors[0]}


def broken_release(kind: str, seconds: float = 15.0) -> str:
    """Flip a pinned ``kind`` server to a release that fails to import; describe the outcome."""
    sys.path.insert(0, str(REPO / "tests"))
    import test_rollover as harness
    from test_servers import hammer

    with tempfile.TemporaryDirectory(prefix="realdoc-bench-") as tmp:
        base = pathlib.Path(tmp)
        tree = make_tree(base, 2)
        entry = pathlib.Path(tree.release_path("r2")) / "realdoc_rollapp.py"
        entry.write_text("import no_such_module_in_this_release\n" + entry.read_text())
        workers, argv, _ = harness.SERVERS[kind]
        srv = harness.start_server(kind, argv, tree.current, base / "server.log", True, workers)
        try:
            tree.flip("r2")
            tally = hammer(srv.port, "/page", 10**7, tally=harness.RolloverTally(final="r2"),
                           clients=2, seconds=seconds)
            alive = srv.proc.poll() is None
        finally:
            srv.stop()
        log = (base / "server.log").read_text(errors="replace").splitlines()
    keys = ("rollover", "SIGHUP", "Hang up", "HaltServer", "failed to boot", "not ready",
            "chain reload", "no python application")
    lines = [ln for ln in log if any(k in ln for k in keys)]
    return (f"{kind}: server up after {seconds:g} s: {alive}; {tally.summary()}\n"
            + "\n".join(dict.fromkeys(lines)))


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description="pin_process on gunicorn: req/s and flip lag")
    p.add_argument("--seconds", type=float, default=3.0, help="per run (default 3)")
    p.add_argument("--rounds", type=int, default=8, help="paired rounds (default 8)")
    p.add_argument("--flips", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.add_argument("--broken", metavar="KIND", help="only the broken-release run for KIND "
                   "(gunicorn-sync, gunicorn-gthread, uvicorn, uwsgi)")
    args = p.parse_args(argv)
    if args.broken:
        print(broken_release(args.broken))
        return 0
    tp = throughput(args.seconds, args.rounds)
    lag = flip_lag(args.flips)
    if args.json:
        print(json.dumps({"throughput": tp, "flip_lag": lag}))
    else:
        per_round = ", ".join(f"{r['pinned'] / r['bare']:.3f}" for r in tp["rounds"])
        print(f"gunicorn sync x2 ({tp['tool']} client, {tp['implementation']} core), "
              f"{len(tp['rounds'])} paired rounds: bare {tp['bare_rps']:,.0f} req/s, "
              f"pin_process + middleware {tp['pinned_rps']:,.0f} req/s (medians); median "
              f"ratio {tp['ratio']:.3f} (per round: {per_round}); errors {tp['errors']}")
        print(f"flip to 100% on the new release, every={lag['every']:g}, {lag['flips']} flips: "
              f"p50 {lag['p50']:.2f} s, max {lag['max']:.2f} s (lags "
              f"{[round(x, 2) for x in lag['lags']]}; bad answers {lag['errors']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
