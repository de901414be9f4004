"""``realdoc demo``'s code/files measurement: worker processes whose code and files mix.

Python loads a worker's code once, so the request pin alone makes responses mix
releases during a deploy: the code comes from the release the worker started
on, the files (and modules imported later) from the one ``current`` names now.
This part of the demo shows it with real worker processes (made with the
standard library: ``subprocess`` running ``python -c``; no server needed) on a
throw-away deploy tree whose releases hold code:

* ``releases/rN/demo_app.py``: ``VERSION = "rN"`` and a WSGI app behind
  :class:`realdoc.wsgi.RealdocMiddleware` (docroot ``current/public`` from
  ``REALDOC_DOCROOT``, default ``scope="auto"``, ``every=0``).  Each request
  imports ``demo_views`` (lazily, the first time, as Django imports views) and
  reads ``public/page.txt`` through :func:`realdoc.docroot`, and answers
  ``"<code> <views> <template>"``, the three release names;
* ``releases/rN/demo_views.py``: ``VERSION = "rN"``.

Two rows run at the same time, on the same tree and the same flips (``current``
flipped with rename(2) every :data:`FLIP_INTERVAL` seconds), with
:data:`WORKERS` workers each; a worker serves requests from its parent through
a pipe and is replaced every :data:`WORKER_LIFETIME` seconds (as gunicorn's
``max_requests`` or a rollover replaces workers):

* **request pin only**: the worker puts ``current`` on ``sys.path`` and
  imports the app; its docroot is resolved per request (request scope);
* **with pin_process**: the worker calls ``realdoc.pin_process(current,
  rollover=False)`` first, so its imports and its docroot (auto scope: process)
  come from the release it started on.

A response is *mixed* when its three names differ.  With ``pin_process`` that
must never happen (a realdoc bug otherwise); with the request pin alone it
happens to every worker that sees a flip after it started.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from typing import IO, Any, Dict, List, Optional, Set

import realdoc

__all__ = ["CodeResult", "run_code_phase", "make_code_tree"]

WORKERS = 2            # worker processes per row
FLIP_INTERVAL = 0.1    # seconds between two flips of `current` in this part
WORKER_LIFETIME = 0.5  # seconds a worker serves before it is replaced
READY_TIMEOUT = 20.0   # seconds a new worker may take to start
ANSWER_TIMEOUT = 10.0  # seconds one request may take

ROWS = (("request pin only", False), ("with pin_process", True))

_APP = '''\
import realdoc
from realdoc.wsgi import RealdocMiddleware

VERSION = "@VERSION@"


def _page(environ, start_response):
    import demo_views  # lazily, on the first request, as Django imports its views

    with open(realdoc.join(realdoc.docroot(), "page.txt"), encoding="utf-8") as f:
        template = f.read().strip()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{VERSION} {demo_views.VERSION} {template}".encode()]


application = RealdocMiddleware(_page, every=0)  # docroot: REALDOC_DOCROOT, current/public
'''

# The worker: an entry point that serves requests read from stdin, one per line.
_WORKER = '''\
import sys
app_dir, pin = sys.argv[1], sys.argv[2] == "1"
sys.path.insert(0, app_dir)           # as gunicorn --chdir does
if pin:
    import realdoc
    realdoc.pin_process(app_dir, rollover=False)  # first, before the app is imported
import demo_app
from wsgiref.util import setup_testing_defaults
out = sys.stdout
out.write("ready\\n")
out.flush()
for line in sys.stdin:
    environ = {}
    setup_testing_defaults(environ)
    status = []
    try:
        body = b"".join(demo_app.application(environ, lambda s, h, e=None: status.append(s)))
        out.write(body.decode() + "\\n")
    except Exception as exc:
        out.write("error " + type(exc).__name__ + "\\n")
    out.flush()
'''


class CodeResult:
    """What one row of the code/files measurement counted."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.responses = 0
        self.mixed = 0
        self.errors = 0    # answers that were not three release names, workers that failed
        self.workers = 0   # worker processes started
        self.flips = 0
        self.seconds = 0.0
        self.releases: Set[str] = set()
        self._lock = threading.Lock()

    @property
    def mixed_percent(self) -> float:
        """Mixed responses as a percentage of the responses."""
        return 100.0 * self.mixed / self.responses if self.responses else 0.0

    def record(self, answer: str) -> None:
        """Count one answer: three release names (mixed when they differ), or an error."""
        names = answer.split()
        with self._lock:
            if len(names) != 3 or names[0] == "error":
                self.errors += 1
                return
            self.responses += 1
            self.releases.update(names)
            if len(set(names)) != 1:
                self.mixed += 1

    def failed(self) -> None:
        """Count a worker that did not start or answer in time."""
        with self._lock:
            self.errors += 1


def make_code_tree(root: str, releases: int) -> Any:
    """A :class:`realdoc.testing.tree.DeployTree` whose releases hold the demo app."""
    from ..testing.tree import DeployTree

    tree = DeployTree.create(root, releases=releases, files=("page.txt",))
    for name in tree.releases:
        path = tree.release_path(name)
        with open(os.path.join(path, "demo_app.py"), "w", encoding="utf-8") as f:
            f.write(_APP.replace("@VERSION@", name))
        with open(os.path.join(path, "demo_views.py"), "w", encoding="utf-8") as f:
            f.write(f"VERSION = {name!r}\n")
    return tree


def _worker_env(tree: Any) -> Dict[str, str]:
    realdoc_parent = os.path.dirname(os.path.dirname(os.path.abspath(realdoc.__file__)))
    paths = [realdoc_parent] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), REALDOC_DOCROOT=tree.docroot,
               REALDOC_SCOPE="auto", PYTHONDONTWRITEBYTECODE="1")
    env.pop("REALDOC_EVERY", None)
    return env


def _readline(stream: IO[bytes], timeout: float) -> Optional[str]:
    """One line from ``stream`` within ``timeout`` seconds, or None (timeout, EOF)."""
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        return None
    line = stream.readline()
    return line.decode("utf-8", "replace").strip() if line else None


class _Slot(threading.Thread):
    """One worker position of a row: start a worker, send it requests, replace it."""

    def __init__(self, tree: Any, pin: bool, result: CodeResult, stop: threading.Event,
                 env: Dict[str, str], procs: Set["subprocess.Popen[bytes]"],
                 lock: threading.Lock, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._tree, self._pin, self._result, self._done = tree, pin, result, stop
        self._env, self._procs, self._lock = env, procs, lock
        #: Set once the slot's first worker is ready (or failed to start).
        self.ready = threading.Event()
        #: Set when the measurement starts: until then a ready worker waits.
        self.go = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self._one_worker()

    def _one_worker(self) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER, self._tree.current, "1" if self._pin else "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=self._env, cwd="/")
        with self._lock:
            self._procs.add(proc)
        try:
            assert proc.stdin is not None and proc.stdout is not None
            if _readline(proc.stdout, READY_TIMEOUT) != "ready":
                self._result.failed()
                self.ready.set()
                self._done.wait(0.1)
                return
            self.ready.set()
            while not self.go.wait(0.05):
                if self._done.is_set():
                    return
            if self._done.is_set():
                return
            with self._result._lock:
                self._result.workers += 1
            retire = time.monotonic() + WORKER_LIFETIME
            while not self._done.is_set() and time.monotonic() < retire:
                proc.stdin.write(b"GET\n")
                proc.stdin.flush()
                answer = _readline(proc.stdout, ANSWER_TIMEOUT)
                if answer is None:
                    self._result.failed()
                    return
                self._result.record(answer)
        except OSError:  # a worker that died: counted, then replaced
            self._result.failed()
        finally:
            stop_worker(proc)
            with self._lock:
                self._procs.discard(proc)


def stop_worker(proc: "subprocess.Popen[bytes]") -> None:
    """End a worker: close its stdin (it exits), else kill it; reap it."""
    try:
        if proc.stdin is not None:
            proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(2)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def run_code_phase(tree: Any, *, duration: float, progress: Any = None) -> List[CodeResult]:
    """Run both rows at once for ``duration`` seconds while ``current`` flips.

    The time and the flips start once every row's first workers are ready
    (at most :data:`READY_TIMEOUT` seconds of start-up).  Returns ``[request
    pin only, with pin_process]``.  Every worker is stopped and reaped before
    it returns or raises; a failed flip re-raises its error.  ``progress``, if
    given, is called as ``progress(results, flips, seconds)`` about every 0.2 s.
    """
    from ..testing.tree import Flipper

    results = [CodeResult(name) for name, _ in ROWS]
    stop = threading.Event()
    procs: Set["subprocess.Popen[bytes]"] = set()
    lock = threading.Lock()
    env = _worker_env(tree)
    slots = [_Slot(tree, pin, result, stop, env, procs, lock,
                   name=f"realdoc-demo-worker-{i}-{j}")
             for i, ((_, pin), result) in enumerate(zip(ROWS, results))
             for j in range(WORKERS)]
    flipper = Flipper(tree, interval=FLIP_INTERVAL, atomic=True, max_seconds=duration + 30.0)
    start = time.monotonic()
    try:
        for s in slots:
            s.start()
        for s in slots:
            s.ready.wait(max(start + READY_TIMEOUT - time.monotonic(), 0))
        start = time.monotonic()
        with flipper:
            for s in slots:
                s.go.set()
            deadline = start + duration
            while time.monotonic() < deadline and flipper.running:
                if progress is not None:
                    progress(results, flipper.flips, time.monotonic() - start)
                stop.wait(min(0.2, max(deadline - time.monotonic(), 0)))
            stop.set()
            for s in slots:
                s.join(READY_TIMEOUT + ANSWER_TIMEOUT)
            flips = flipper.flips
    finally:
        stop.set()
        for _ in range(2):  # kill, let the slots see it and end, kill what they started meanwhile
            with lock:
                left = list(procs)
            for proc in left:
                proc.kill()
                proc.wait()
            for s in slots:
                if s.is_alive():
                    s.join(2.0)
    seconds = time.monotonic() - start
    for r in results:
        r.flips, r.seconds = flips, seconds
    return results
