"""Cost of realdoc's middleware: in-process per request, and gunicorn requests/s.

In-process (pytest-benchmark; not part of the default test run)::

    PYTHONPATH=src python3 -m pytest bench/bench_middleware.py -p no:cacheprovider \\
        --benchmark-group-by=group --benchmark-columns=min,median,mean,ops

Each group holds a ``bare`` and a ``realdoc`` case for the same request, so the
ratio (and the difference, the middleware's overhead) reads off one table.
The request is driven as a server would: call the app with a prebuilt environ
(or scope) and a no-op ``start_response`` (or ``send``), iterate, close.

gunicorn throughput, with vs without the middleware in one run::

    PYTHONPATH=src python3 bench/bench_middleware.py [--seconds 5] [--workers 2]

(``test_gunicorn_throughput`` does the same under pytest, and is skipped
unless gunicorn is installed.)  It serves tests/apps/realdoc_benchapp.py from
one gunicorn, ``/bare`` and ``/realdoc`` alternately, and measures each with
``wrk`` when it is on PATH, otherwise with a pool of Python keep-alive clients
(slower: the client then limits the figure, so compare the two rows only).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

REPO = pathlib.Path(__file__).resolve().parent.parent
try:
    import realdoc
except ImportError:  # a checkout without PYTHONPATH=src: use its src/
    sys.path.insert(0, str(REPO / "src"))
    import realdoc
from realdoc import asgi, wsgi  # noqa: E402
from realdoc.testing.servers import free_port, stop_process_group  # noqa: E402
from realdoc.testing.tree import DeployTree  # noqa: E402

try:
    import pytest
except ImportError:  # the script mode needs no pytest
    pytest = None  # type: ignore[assignment]


# -- in-process: WSGI ------------------------------------------------------------


def _start_response(status: str, headers: List[Tuple[str, str]],
                    exc_info: Any = None) -> Callable[[bytes], None]:
    return _write


def _write(data: bytes) -> None:
    return None


def _list_app(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def _stream_app(environ: Dict[str, Any], start_response: Any) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"o"
    yield b"k"


def _drive_wsgi(app: Any, environ: Dict[str, Any]) -> None:
    result = app(environ, _start_response)
    try:
        for _ in result:
            pass
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def _environ() -> Dict[str, Any]:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "SERVER_NAME": "localhost",
            "SERVER_PORT": "80", "wsgi.url_scheme": "http"}


# -- in-process: ASGI ------------------------------------------------------------


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _receive() -> Dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Any) -> None:
    return None


def _drive_asgi(app: Any, scope: Dict[str, Any]) -> None:
    """Run one request to completion without an event loop (nothing really awaits)."""
    coro = app(scope, _receive, _send)
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise RuntimeError("the app suspended; use an event loop")


if pytest is not None:

    @pytest.fixture(scope="module")
    def docroot(tmp_path_factory: pytest.TempPathFactory) -> str:
        tree = DeployTree.create(str(tmp_path_factory.mktemp("bench") / "site"), releases=2)
        return str(tree.docroot)

    VARIANTS = ["bare", "realdoc"]

    @pytest.mark.parametrize("variant", VARIANTS)
    def test_wsgi_list_body(benchmark: Any, docroot: str, variant: str) -> None:
        """A materialised body: the middleware's minimum cost."""
        app = _list_app if variant == "bare" else wsgi.RealdocMiddleware(_list_app, docroot)
        benchmark.group = "middleware: wsgi list body (per request)"
        benchmark.extra_info["implementation"] = realdoc.implementation
        env = _environ()
        benchmark(_drive_wsgi, app, env)

    @pytest.mark.parametrize("variant", VARIANTS)
    def test_wsgi_streaming_body(benchmark: Any, docroot: str, variant: str) -> None:
        """A two-chunk generator body: the pinned iterable wrapper's cost included."""
        app = _stream_app if variant == "bare" else wsgi.RealdocMiddleware(_stream_app, docroot)
        benchmark.group = "middleware: wsgi streaming body (per request)"
        benchmark.extra_info["implementation"] = realdoc.implementation
        env = _environ()
        benchmark(_drive_wsgi, app, env)

    @pytest.mark.parametrize("variant", VARIANTS)
    def test_asgi_http(benchmark: Any, docroot: str, variant: str) -> None:
        """One http request through an ASGI app that sends start and body."""
        app = _asgi_app if variant == "bare" else asgi.RealdocMiddleware(_asgi_app, docroot)
        benchmark.group = "middleware: asgi http (per request)"
        benchmark.extra_info["implementation"] = realdoc.implementation
        scope = {"type": "http", "path": "/", "method": "GET", "headers": [], "state": {}}
        benchmark(_drive_asgi, app, scope)

    def test_gunicorn_throughput() -> None:
        """gunicorn requests/s for /bare and /realdoc in one run (printed, not asserted)."""
        pytest.importorskip("gunicorn")
        result = gunicorn_throughput(seconds=3.0, workers=2)
        print("\n" + format_throughput(result))
        assert result["bare"]["requests"] > 0 and result["realdoc"]["requests"] > 0
        assert result["realdoc"]["errors"] == 0


# -- gunicorn requests/s -----------------------------------------------------------


@contextlib.contextmanager
def _gunicorn(docroot: str, workers: int, worker_class: str) -> Iterator[int]:
    """Run gunicorn serving realdoc_benchapp:app; yield its port; always kill it."""
    port = free_port()
    env = dict(os.environ)
    realdoc_parent = pathlib.Path(realdoc.__file__).resolve().parent.parent
    env.update({"PYTHONPATH": os.pathsep.join([str(realdoc_parent), str(REPO / "tests" / "apps")]),
                "REALDOC_DOCROOT": docroot})
    env.pop("REALDOC_EVERY", None)
    env.pop("REALDOC_USE_READLINK", None)
    argv = [sys.executable, "-m", "gunicorn", "--workers", str(workers),
            "--worker-class", worker_class, "--bind", f"127.0.0.1:{port}",
            "--graceful-timeout", "2", "--log-level", "warning", "realdoc_benchapp:app"]
    if worker_class == "gthread":
        argv[argv.index("--bind"):argv.index("--bind")] = ["--threads", "4"]
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError("gunicorn exited: " + proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
                                   )
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/realdoc")
                c.getresponse().read()
                c.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start in 20 s") from None
                time.sleep(0.05)
        yield port
    finally:
        stop_process_group(proc)
        if proc.stderr is not None:
            proc.stderr.close()


def _wrk(port: int, path: str, seconds: float, connections: int) -> Dict[str, float]:
    out = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds:g}s",
                          f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    err = int(errors.group(1)) if errors else 0
    if sock:
        err += sum(int(g) for g in sock.groups())
    return {"rps": float(rps.group(1)) if rps else 0.0,
            "requests": int(total.group(1)) if total else 0, "errors": err}


def _python_clients(port: int, path: str, seconds: float, connections: int) -> Dict[str, float]:
    lock = threading.Lock()
    counts = {"requests": 0, "errors": 0}
    deadline = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        n = e = 0
        while time.monotonic() < deadline:
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    n += 1
                else:
                    e += 1
            except (OSError, http.client.HTTPException):
                e += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.close()
        with lock:
            counts["requests"] += n
            counts["errors"] += e

    start = time.monotonic()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 20)
    elapsed = time.monotonic() - start
    return {"rps": counts["requests"] / elapsed, "requests": counts["requests"],
            "errors": counts["errors"]}


def gunicorn_throughput(seconds: float = 5.0, workers: int = 2, worker_class: str = "sync",
                        connections: int = 8, rounds: int = 2) -> Dict[str, Any]:
    """Measure requests/s of /bare and /realdoc on one gunicorn, alternating ``rounds`` times.

    Returns ``{"tool", "worker_class", "workers", "bare": {...}, "realdoc": {...}}``
    with the best round's ``rps`` and the summed ``requests``/``errors`` per path.
    """
    tool = "wrk" if shutil.which("wrk") else "python"
    measure = _wrk if tool == "wrk" else _python_clients
    result: Dict[str, Any] = {"tool": tool, "worker_class": worker_class, "workers": workers,
                              "implementation": realdoc.implementation}
    with tempfile.TemporaryDirectory(prefix="realdoc-bench-") as tmp:
        tree = DeployTree.create(os.path.join(tmp, "site"), releases=2)
        with _gunicorn(str(tree.docroot), workers, worker_class) as port:
            measure(port, "/bare", min(1.0, seconds), connections)  # warm-up
            for name in ("bare", "realdoc"):
                result[name] = {"rps": 0.0, "requests": 0, "errors": 0}
            for _ in range(rounds):
                for name in ("bare", "realdoc"):
                    r = measure(port, "/" + name, seconds, connections)
                    acc = result[name]
                    acc["rps"] = max(acc["rps"], r["rps"])
                    acc["requests"] += r["requests"]
                    acc["errors"] += r["errors"]
    return result


def format_throughput(result: Dict[str, Any]) -> str:
    bare, rd = result["bare"]["rps"], result["realdoc"]["rps"]
    ratio = rd / bare if bare else float("nan")
    return (f"gunicorn {result['worker_class']} x{result['workers']} "
            f"({result['tool']} client, {result['implementation']} core): "
            f"bare {bare:,.0f} req/s, realdoc {rd:,.0f} req/s, ratio {ratio:.3f} "
            f"(errors: bare {result['bare']['errors']}, realdoc {result['realdoc']['errors']})")


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description="gunicorn requests/s with vs without realdoc")
    p.add_argument("--seconds", type=float, default=5.0, help="per measurement (default 5)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = gunicorn_throughput(args.seconds, args.workers, args.worker_class,
                                 args.connections, args.rounds)
    print(json.dumps(result) if args.json else format_throughput(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
