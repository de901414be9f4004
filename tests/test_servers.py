"""Proof on real servers: gunicorn (sync, gthread) and uvicorn, behind realdoc or not.

Each server runs as a subprocess on 127.0.0.1 serving tests/apps/realdoc_testapp.py,
configured through ``REALDOC_DOCROOT`` / ``REALDOC_EVERY=0``.  While a thread of
this process flips ``current`` between releases, concurrent clients check every
response: the app reads two files a few ms apart and names the release of each.

* with the middleware, atomic flips: no torn response, no 5xx;
* without it, the same flips: torn responses (the race is real here);
* with it, non-atomic flips (unlink + symlink, ``on_error="stale"``): no 5xx;
  without it, the same flips: 5xx (``current`` is missing for a moment).

Servers are killed by process group in a ``finally``; every wait has a bound.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple, TypeVar, overload

import pytest
from helpers import child_env

from realdoc.testing.servers import free_port
from realdoc.testing.tree import DeployTree, Flipper

pytestmark = pytest.mark.servers

APPS = pathlib.Path(__file__).resolve().parent / "apps"

PAUSE = 0.002          # between the two reads of a request
FLIP_INTERVAL = 0.0005  # between two flips
CLIENTS = 8
START_TIMEOUT = 20.0   # seconds for a server to answer its first request
RUN_DEADLINE = 8.0     # seconds a client run may take at most
STOP_TIMEOUT = 10.0    # seconds for a server to exit after SIGTERM

SERVERS = {
    "gunicorn-sync": ["-m", "gunicorn", "--workers", "2", "--worker-class", "sync",
                      "--graceful-timeout", "2", "--bind", "127.0.0.1:{port}",
                      "realdoc_testapp:wsgi_app"],
    "gunicorn-gthread": ["-m", "gunicorn", "--workers", "2", "--worker-class", "gthread",
                         "--threads", "4", "--graceful-timeout", "2",
                         "--bind", "127.0.0.1:{port}", "realdoc_testapp:wsgi_app"],
    "uvicorn": ["-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}",
                "--lifespan", "on", "--no-access-log", "--log-level", "warning",
                "realdoc_testapp:asgi_app"],
}


class Server:
    """A server subprocess in its own process group, with its output in a file."""

    def __init__(self, kind: str, docroot: str, log: pathlib.Path, *,
                 argv: Optional[List[str]] = None, env: Optional[Dict[str, str]] = None,
                 paths: Optional[List[str]] = None) -> None:
        """Start ``kind`` from SERVERS, or ``argv`` (``{port}`` filled in) when given.

        ``env`` is added to the test app's environment; ``paths`` replaces the
        PYTHONPATH entries after realdoc's own (tests/apps by default).
        """
        self.kind = kind
        self.port = free_port()
        self.log = log
        # the servers import the very realdoc these tests import, and the test app
        full_env = child_env(*([str(APPS)] if paths is None else paths))
        full_env.update({
            "REALDOC_DOCROOT": docroot,
            "REALDOC_EVERY": "0",
            "TESTAPP_PAUSE": str(PAUSE),
            "PYTHONUNBUFFERED": "1",
        })
        full_env.pop("REALDOC_USE_READLINK", None)
        full_env.update(env or {})
        template = argv if argv is not None else [sys.executable] + SERVERS[kind]
        command = [a.format(port=self.port) for a in template]
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(command, env=full_env, cwd=str(APPS),
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def output(self, tail: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def wait_ready(self, workers: int) -> Set[str]:
        """Wait until the server answers, then up to 5 s more to see ``workers`` pids.

        Any answer proves the app is up; seeing every worker answer first makes
        sure all of them imported the app (and primed realdoc) before flipping.
        """
        deadline = time.monotonic() + START_TIMEOUT
        pids: Set[str] = set()
        first: Optional[float] = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}:\n"
                                   f"{self.output()}")
            try:
                status, body, _ = get(self.port, "/pid", timeout=2)
            except OSError:
                time.sleep(0.05)
                continue
            if status == 200:
                pids.add(body)
                first = time.monotonic() if first is None else first
            if len(pids) >= workers or (first is not None and time.monotonic() - first > 5):
                return pids
        raise RuntimeError(f"{self.kind} did not answer within {START_TIMEOUT} s:\n"
                           f"{self.output()}")

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL if it lingers; always reaps."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers (workers) too
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(STOP_TIMEOUT)


def get(port: int, path: str, timeout: float = 5.0,
        conn: Optional[http.client.HTTPConnection] = None) -> Tuple[int, str, str]:
    """GET ``path``; return (status, body, X-Pid).  Raises OSError on connection trouble."""
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        resp = c.getresponse()
        body = resp.read().decode("utf-8", "replace")
        return resp.status, body, resp.getheader("X-Pid") or ""
    except http.client.HTTPException as exc:
        c.close()
        raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
    except OSError:
        c.close()
        raise
    finally:
        if own:
            c.close()


class Tally:
    """Counts of one client run, shared by the client threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.torn = 0
        self.server_errors = 0
        self.other = 0
        self.failures = 0
        self.samples: List[str] = []
        self.pids: Set[str] = set()
        self.releases: Set[str] = set()

    def record(self, status: int, body: str, pid: str) -> None:
        with self.lock:
            self.requests += 1
            self.pids.add(pid)
            names = body.split()
            if status >= 500:
                self.server_errors += 1
                if len(self.samples) < 5:
                    self.samples.append(f"{status} {body}")
            elif status != 200 or len(names) != 2 or not all(n.startswith("r") for n in names):
                self.other += 1
                if len(self.samples) < 5:
                    self.samples.append(f"{status} {body}")
            else:
                self.releases.update(names)
                if names[0] != names[1]:
                    self.torn += 1

    def summary(self) -> str:
        return (f"requests={self.requests} torn={self.torn} 5xx={self.server_errors} "
                f"other={self.other} failures={self.failures} workers={len(self.pids)} "
                f"releases={sorted(self.releases)} samples={self.samples}")


TallyT = TypeVar("TallyT", bound=Tally)


@overload
def hammer(port: int, path: str, total: int,
           enough: Optional[Callable[[Tally], bool]] = None, *,
           tally: None = None, seconds: float = RUN_DEADLINE,
           clients: int = CLIENTS) -> Tally: ...
@overload
def hammer(port: int, path: str, total: int,
           enough: Optional[Callable[[TallyT], bool]] = None, *,
           tally: TallyT, seconds: float = RUN_DEADLINE,
           clients: int = CLIENTS) -> TallyT: ...
def hammer(port: int, path: str, total: int,
           enough: Optional[Callable[[Any], bool]] = None, *,
           tally: Optional[Tally] = None, seconds: float = RUN_DEADLINE,
           clients: int = CLIENTS) -> Tally:
    """Send ``total`` GETs from ``clients`` threads (keep-alive when the server allows).

    Records into ``tally`` (a fresh Tally by default; a subclass may record
    differently).  Stops early after ``seconds``, or once ``enough(tally)`` is true.  A request
    that fails on a reused connection is retried once on a fresh one (a server
    may close idle keep-alive connections); a second failure counts in
    ``failures``.
    """
    tally = Tally() if tally is None else tally
    deadline = time.monotonic() + seconds
    left = [total]

    def take() -> bool:
        with tally.lock:
            if left[0] <= 0 or time.monotonic() >= deadline:
                return False
            if enough is not None and enough(tally):
                return False
            left[0] -= 1
            return True

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            while take():
                for attempt in (1, 2):
                    try:
                        status, body, pid = get(port, path, conn=conn)
                    except OSError as exc:
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                        if attempt == 2:
                            with tally.lock:
                                tally.failures += 1
                                if len(tally.samples) < 5:
                                    tally.samples.append(f"failed twice: {exc!r}")
                        continue
                    tally.record(status, body, pid)
                    break
        except BaseException:  # never let a client thread die silently
            with tally.lock:
                tally.failures += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 15)
    return tally


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[Server, DeployTree]]:
    """One server per kind for the module, with its own deploy tree."""
    kind: str = request.param
    pytest.importorskip(kind.split("-")[0])
    base = tmp_path_factory.mktemp(kind)
    tree = DeployTree.create(str(base / "site"), releases=4)
    srv: Optional[Server] = None
    try:
        for _ in range(3):  # the free port may be taken between probe and bind
            srv = Server(kind, tree.docroot, base / "server.log")
            try:
                srv.wait_ready(workers=1 if kind == "uvicorn" else 2)
                break
            except RuntimeError:
                srv.stop()
                if "in use" not in srv.output():
                    raise
        else:
            pytest.fail(f"{kind}: no free port after 3 attempts")
        yield srv, tree
    finally:
        if srv is not None:
            srv.stop()


def _run(server: Tuple[Server, DeployTree], path: str, total: int, atomic: bool,
         enough: Optional[Callable[[Tally], bool]] = None) -> Tally:
    srv, tree = server
    with Flipper(tree, interval=FLIP_INTERVAL, atomic=atomic,
                 max_seconds=RUN_DEADLINE + 5) as flipper:
        tally = hammer(srv.port, path, total, enough)
    assert flipper.flips > 0
    tree.flip(tree.releases[0])  # leave `current` in place for the next run
    assert srv.proc.poll() is None, f"{srv.kind} died:\n{srv.output()}"
    print(f"{srv.kind} {path} atomic={atomic} flips={flipper.flips}: {tally.summary()}")
    return tally


def test_with_realdoc_no_torn_no_5xx(server: Tuple[Server, DeployTree]) -> None:
    tally = _run(server, "/with", total=2000, atomic=True)
    assert tally.requests > 0, tally.summary()
    assert tally.torn == 0, tally.summary()
    assert tally.server_errors == 0 and tally.other == 0, tally.summary() + server[0].output()
    assert tally.failures == 0, tally.summary()
    assert len(tally.releases) > 1, "the run never saw a flip: " + tally.summary()


def test_without_realdoc_requests_tear(server: Tuple[Server, DeployTree]) -> None:
    tally = _run(server, "/without", total=2000, atomic=True, enough=lambda t: t.torn >= 50)
    assert tally.server_errors == 0, tally.summary()
    assert tally.torn > 0, "the race did not show: " + tally.summary()


def test_with_realdoc_non_atomic_flips_no_5xx(server: Tuple[Server, DeployTree]) -> None:
    tally = _run(server, "/with", total=2000, atomic=False)
    assert tally.requests > 0, tally.summary()
    assert tally.server_errors == 0 and tally.other == 0, tally.summary() + server[0].output()
    assert tally.torn == 0, tally.summary()
    assert tally.failures == 0, tally.summary()


def test_without_realdoc_non_atomic_flips_give_5xx(server: Tuple[Server, DeployTree]) -> None:
    """The control for the test above: the missing-link window is really hit."""
    tally = _run(server, "/without", total=3000, atomic=False,
                 enough=lambda t: t.server_errors >= 5)
    assert tally.server_errors > 0, "the non-atomic window did not show: " + tally.summary()


# ---------------------------------------------- 0.2: watch mode in a gunicorn worker (#11)

@pytest.mark.parametrize("watch", ["1", "0"], ids=["watch", "no-watch"])
def test_gunicorn_first_request_after_a_flip(tmp_path: pathlib.Path, watch: str) -> None:
    """REALDOC_WATCH=1, REALDOC_EVERY=3600, one sync worker: requests before the flip
    issue no syscall (the worker's realdoc.stats()), and the first request after the
    flip (50 ms later: the event takes about a millisecond) is served from the new
    release.  REALDOC_WATCH=0, the control: the old release for the next hour."""
    import json

    tree = DeployTree.create(str(tmp_path / "site"), releases=2)  # a.txt, b.txt: "r1", "r2"
    argv = [sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "sync",
            "--graceful-timeout", "2", "--bind", "127.0.0.1:{port}", "realdoc_testapp:wsgi_app"]
    srv = Server("gunicorn-sync", tree.docroot, tmp_path / "log", argv=argv,
                 env={"REALDOC_EVERY": "3600", "REALDOC_WATCH": watch})
    try:
        srv.wait_ready(1)
        first = tree.current_release()
        assert get(srv.port, "/with")[1] == f"{first} {first}"
        before = json.loads(get(srv.port, "/stats")[1])
        for _ in range(20):
            assert get(srv.port, "/with")[1] == f"{first} {first}"
        after = json.loads(get(srv.port, "/stats")[1])
        assert after["syscalls"] == before["syscalls"], (before, after)
        assert after["hits"] - before["hits"] == 20
        assert after["watching"] is (watch == "1")
        new = next(r for r in tree.releases if r != first)
        tree.flip(new)
        time.sleep(0.05)
        want = new if watch == "1" else first
        assert get(srv.port, "/with")[1] == f"{want} {want}", srv.output()
    finally:
        srv.stop()
