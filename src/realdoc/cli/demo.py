"""``realdoc demo``: watch torn requests happen without realdoc, and not with it.

In about ten seconds and with no set-up, the demo builds a throw-away deploy
tree (``releases/r1..r5/public/{a,b}.txt``, each file naming its release, and
``current -> releases/r1``), serves it from a real threaded HTTP server on
127.0.0.1 (stdlib ``wsgiref``), and runs two phases of the same length while a
thread flips ``current`` to another release with rename(2) every few
milliseconds and concurrent clients hammer the server:

* **without realdoc**: the app opens ``current/public/a.txt``, pauses, opens
  ``current/public/b.txt``.  A flip in the pause makes a *torn* response: the
  two files come from different releases.
* **with realdoc**: the same app behind :class:`realdoc.wsgi.RealdocMiddleware`
  opens both files under the docroot pinned once for the request
  (:func:`realdoc.docroot`), so a response is never torn.

It prints a table: requests served, flips, torn responses, 5xx responses and
the syscalls realdoc issued per request (from :func:`realdoc.stats`).

Then the **code and files** part (:mod:`realdoc.cli._demo_workers`, half a
phase long): worker processes whose releases hold code, two rows at once on
one flipping tree, with the request pin alone and with
:func:`realdoc.pin_process`; a response is *mixed* when its code, a module
imported later and a file it read name different releases.  Its table:
responses, flips, workers started, mixed responses, errors.

Exit status: 0 on success (also when tearing or mixing did not reproduce,
which it says), 1 if the run with realdoc shows a torn or 5xx response, or
the run with ``pin_process`` a mixed response or an error (a realdoc bug), or the demo
itself failed (one line on stderr, ``realdoc demo: failed: ...``, never a
traceback), 130 when interrupted by Ctrl-C (SIGINT), 143 when stopped by
SIGTERM.  The server, the flipping thread and the temporary tree are cleaned up
in every case, SIGTERM included.

The flipper stops the demo when a flip fails, for instance when something
outside the demo removes a release directory of its tree while it runs (the
crash ``no such release: 'r4'`` of issue 14: the only code that removes the
tree is the demo's own clean-up, which runs after the flipper has been joined,
so a release can only vanish from outside, e.g. a ``rm -rf
/tmp/realdoc-demo-*`` of trees left behind by a SIGTERM before 0.2).  That is
reported as one line and exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import signal
import sys
import tempfile
import textwrap
import threading
import time
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Iterable,
    Iterator,
    List,
    Optional,
    Set,
    TextIO,
    Tuple,
)

import realdoc

from .._context import docroot, join
from ..wsgi import RealdocMiddleware
from ._demo_workers import CodeResult

# http.client, wsgiref and the deploy-tree helpers are imported where they are
# used, so that registering the subcommand costs the other commands nothing.

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ..testing.tree import DeployTree

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["PhaseResult", "add_parser", "main", "run", "run_code_demo", "run_demo"]

DEFAULT_DURATION = 4.0
DEFAULT_CLIENTS = 8
DEFAULT_FLIP_INTERVAL = 0.002
DEFAULT_PAUSE = 0.003
DEMO_EVERY = 0.0
RELEASES = 5
FILES = ("a.txt", "b.txt")

EXIT_OK = 0
EXIT_BUG = 1
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, what a shell reports for a process killed by it


class Terminated(BaseException):
    """Raised in the main thread by the demo's SIGTERM handler (like KeyboardInterrupt)."""


# -- the app -------------------------------------------------------------------


def _read(root: str, name: str) -> str:
    with open(join(root, name), encoding="utf-8") as f:
        return f.read().strip()


def _respond(start_response: StartResponse, status: str, text: str) -> List[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body)))])
    return [body]


def make_reader_app(plain_docroot: str, pause: float) -> WSGIApplication:
    """The demo app: ``/with`` reads under the pinned docroot, anything else through the link.

    Each request reads ``a.txt``, sleeps ``pause`` seconds, reads ``b.txt`` and
    answers ``200`` with ``"<a> <b>"`` (the two release names), or ``500`` with
    the error when a file cannot be read.
    """

    def read_two(root_of_request: Callable[[], str], start_response: StartResponse) -> List[bytes]:
        try:
            a = _read(root_of_request(), FILES[0])
            time.sleep(pause)
            b = _read(root_of_request(), FILES[1])
        except OSError as exc:
            return _respond(start_response, "500 Internal Server Error", f"error {exc}")
        return _respond(start_response, "200 OK", f"{a} {b}")

    def plain(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return read_two(lambda: plain_docroot, start_response)

    def pinned(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return read_two(docroot, start_response)

    with_realdoc = RealdocMiddleware(pinned, plain_docroot, every=DEMO_EVERY)

    def dispatch(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/with":
            return with_realdoc(environ, start_response)
        return plain(environ, start_response)

    return dispatch


# -- the server ----------------------------------------------------------------


class DemoServer:
    """A threaded wsgiref server on 127.0.0.1 and a free port, in a background thread."""

    def __init__(self, app: WSGIApplication) -> None:
        import socketserver
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

        class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
            """wsgiref's server, one thread per connection."""

            daemon_threads = True
            request_queue_size = 128

        class QuietHandler(WSGIRequestHandler):
            """No access log on stderr: the progress line lives there."""

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingWSGIServer(("127.0.0.1", 0), QuietHandler)
        self._httpd.set_app(app)
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="realdoc-demo-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(5)
        self._httpd.server_close()


# -- the clients ---------------------------------------------------------------


class PhaseResult:
    """What one phase counted."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests = 0
        self.torn = 0
        self.server_errors = 0
        self.failures = 0
        self.flips = 0
        self.seconds = 0.0
        self.syscalls = 0
        self.releases: Set[str] = set()
        self._lock = threading.Lock()

    @property
    def syscalls_per_request(self) -> float:
        """realdoc's syscalls divided by the requests served (0 when none)."""
        return self.syscalls / self.requests if self.requests else 0.0

    @property
    def torn_percent(self) -> float:
        """Torn responses as a percentage of the requests served."""
        return 100.0 * self.torn / self.requests if self.requests else 0.0

    def record(self, status: int, body: bytes) -> None:
        """Count one response: 200 with two release names, a 5xx, or anything else."""
        with self._lock:
            if status >= 500:
                self.server_errors += 1
                self.requests += 1
                return
            names = body.decode("utf-8", "replace").split()
            if status != 200 or len(names) != 2:
                self.failures += 1
                return
            self.requests += 1
            self.releases.update(names)
            if names[0] != names[1]:
                self.torn += 1

    def failed(self) -> None:
        """Count a request that got no HTTP response (connection error, timeout)."""
        with self._lock:
            self.failures += 1


def _client(port: int, path: str, stop: threading.Event, result: PhaseResult) -> None:
    """Send GET ``path`` in a loop until ``stop`` is set, recording every answer."""
    import http.client

    while not stop.is_set():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            result.record(resp.status, resp.read())
        except Exception:  # any failure is counted, never raised out of the thread
            result.failed()
            stop.wait(0.01)
        finally:
            conn.close()


# -- the run -------------------------------------------------------------------


class _Progress:
    """One status line on ``stream``, rewritten with ``\\r`` when it is a terminal."""

    def __init__(self, stream: Optional[TextIO]) -> None:
        self._stream = stream
        self._live = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self._width = 0

    def update(self, text: str, final: bool = False) -> None:
        if self._stream is None or (not self._live and not final):
            return
        try:
            if self._live:
                pad = max(self._width - len(text), 0)
                self._width = len(text)
                self._stream.write("\r" + text + " " * pad + ("\n" if final else ""))
            else:
                self._stream.write(text + "\n")
            self._stream.flush()
        except (OSError, ValueError):  # a closed or broken stderr: no progress, same run
            self._stream = None


def _phase(name: str, path: str, tree: DeployTree, port: int, *, duration: float,
           clients: int, flip_interval: float, progress: _Progress) -> PhaseResult:
    """Run clients against ``path`` for ``duration`` s while ``current`` flips."""
    from ..testing.tree import Flipper

    result = PhaseResult(name)
    stop = threading.Event()
    threads = [threading.Thread(target=_client, args=(port, path, stop, result),
                                name=f"realdoc-demo-client-{i}", daemon=True)
               for i in range(clients)]
    before = realdoc.stats()["syscalls"]
    start = time.monotonic()
    deadline = start + duration
    flipper = Flipper(tree, interval=flip_interval, atomic=True,
                      max_seconds=duration + 10.0)
    try:
        with flipper:
            for t in threads:
                t.start()
            while True:
                now = time.monotonic()
                if now >= deadline or not flipper.running:
                    break  # a flipper that stopped early failed: leaving re-raises it
                progress.update(_status(result, flipper.flips, now - start, duration))
                stop.wait(min(0.2, deadline - now))
            stop.set()
            for t in threads:
                t.join(15)
            result.seconds = time.monotonic() - start
            result.flips = flipper.flips
    finally:
        stop.set()
    after = realdoc.stats()["syscalls"]
    result.syscalls = sum(after.values()) - sum(before.values())
    progress.update(_status(result, result.flips, min(result.seconds, duration), duration),
                    final=True)
    return result


def _status(result: PhaseResult, flips: int, elapsed: float, duration: float) -> str:
    return (f"[{result.name}] {elapsed:4.1f}/{duration:.1f} s  requests {result.requests}"
            f"  flips {flips}  torn {result.torn}  5xx {result.server_errors}")


def run_demo(*, duration: float = DEFAULT_DURATION, clients: int = DEFAULT_CLIENTS,
             flip_interval: float = DEFAULT_FLIP_INTERVAL, pause: float = DEFAULT_PAUSE,
             progress: Optional[TextIO] = None) -> List[PhaseResult]:
    """Run both phases and return ``[without, with]``; clean up whatever happens.

    ``duration`` is per phase, in seconds; ``clients`` concurrent client
    threads; ``flip_interval`` seconds between atomic flips; ``pause`` seconds
    between the two reads of a request.  Progress goes to ``progress`` (none
    by default).  Raises ValueError for out-of-range arguments; a
    KeyboardInterrupt propagates after the clean-up.
    """
    from ..testing.tree import DeployTree

    _check(duration=duration, clients=clients, flip_interval=flip_interval, pause=pause)
    line = _Progress(progress)
    with _signals_deferred():
        tmp = tempfile.mkdtemp(prefix="realdoc-demo-")
    server: Optional[DemoServer] = None
    try:
        tree = DeployTree.create(os.path.join(tmp, "site"), releases=RELEASES, files=FILES)
        server = DemoServer(make_reader_app(tree.docroot, pause))
        results = []
        for name, path in (("without realdoc", "/without"), ("with realdoc", "/with")):
            results.append(_phase(name, path, tree, server.port, duration=duration,
                                  clients=clients, flip_interval=flip_interval,
                                  progress=line))
        return results
    finally:
        with _signals_deferred():  # a Ctrl-C or SIGTERM now waits for the clean-up
            if server is not None:
                server.stop()
            shutil.rmtree(tmp, ignore_errors=True)


def run_code_demo(*, duration: float = DEFAULT_DURATION / 2,
                  progress: Optional[TextIO] = None) -> List[CodeResult]:
    """Run the code/files part for ``duration`` seconds; return ``[request pin only, with
    pin_process]``.  Its own temporary tree is removed and its workers are reaped
    whatever happens.  Raises ValueError for a duration out of (0, 3600]."""
    from ._demo_workers import make_code_tree, run_code_phase

    if not 0 < duration <= 3600:
        raise ValueError(f"duration must be in (0, 3600] seconds, got {duration!r}")
    line = _Progress(progress)

    def show(results: List[CodeResult], flips: int, elapsed: float) -> None:
        line.update(_code_status(results, flips, elapsed, duration))

    with _signals_deferred():
        tmp = tempfile.mkdtemp(prefix="realdoc-demo-")
    try:
        tree = make_code_tree(os.path.join(tmp, "app"), RELEASES)
        results = run_code_phase(tree, duration=duration, progress=show)
        line.update(_code_status(results, results[0].flips, duration, duration), final=True)
        return results
    finally:
        with _signals_deferred():
            shutil.rmtree(tmp, ignore_errors=True)


def _code_status(results: List[CodeResult], flips: int, elapsed: float,
                 duration: float) -> str:
    request, pinned = results
    return (f"[code and files] {elapsed:4.1f}/{duration:.1f} s  flips {flips}  mixed: "
            f"request pin only {request.mixed}/{request.responses}, "
            f"with pin_process {pinned.mixed}/{pinned.responses}")


def _check(*, duration: float, clients: int, flip_interval: float, pause: float) -> None:
    if not 0 < duration <= 3600:
        raise ValueError(f"duration must be in (0, 3600] seconds, got {duration!r}")
    if not 1 <= clients <= 256:
        raise ValueError(f"clients must be in [1, 256], got {clients!r}")
    if not 0 <= flip_interval <= 60:
        raise ValueError(f"flip interval must be in [0, 60] seconds, got {flip_interval!r}")
    if not 0 <= pause <= 10:
        raise ValueError(f"pause must be in [0, 10] seconds, got {pause!r}")


def report(results: List[PhaseResult], *, clients: int, flip_interval: float, pause: float,
           out: TextIO, code: Optional[List[CodeResult]] = None) -> int:
    """Print the tables and the verdicts for ``[without, with]`` (and the code/files
    rows ``[request pin only, with pin_process]`` when given); return the exit code."""
    status = _report_files(results, clients=clients, flip_interval=flip_interval,
                           pause=pause, out=out)
    if code is not None:
        status = max(status, report_code(code, out=out))
    return status


def report_code(code: List[CodeResult], *, out: TextIO) -> int:
    """Print the code/files table and verdict; return the exit code."""
    from ._demo_workers import FLIP_INTERVAL, WORKER_LIFETIME, WORKERS

    request, pinned = code

    def say(text: str) -> None:
        out.write(textwrap.fill(text, 79) + "\n")
    out.write("\n")
    say(f"Code and files: {WORKERS} worker processes per row, `current` flipped every "
        f"{FLIP_INTERVAL * 1000:g} ms, each worker replaced after {WORKER_LIFETIME:g} s, "
        f"{request.seconds:.1f} s. A response names the release of the worker's code, of "
        "a module it imported later and of a file it read; mixed = they differ.")
    out.write(f"\n{'':17}{'responses':>10}{'flips':>6}{'workers':>8}{'releases':>9}"
              f"{'mixed':>17}{'errors':>7}\n")
    for r in code:
        mixed = f"{r.mixed} ({r.mixed_percent:.1f}%)"
        out.write(f"{r.name:17}{r.responses:>10}{r.flips:>6}{r.workers:>8}"
                  f"{len(r.releases):>9}{mixed:>17}{r.errors:>7}\n")
    out.write("\n")
    if pinned.mixed or pinned.errors:
        say(f"BUG: with pin_process, {pinned.mixed} mixed responses and {pinned.errors} "
            "errors: realdoc must make both 0. Please report this.")
        return EXIT_BUG
    if pinned.responses == 0:
        say("with pin_process: no response; could the workers start?")
        return EXIT_BUG
    if request.mixed == 0:
        say("request pin only: did not reproduce mixing; increase --duration.")
    else:
        say(f"With the request pin alone {request.mixed} of {request.responses} responses "
            f"mixed code and files of different releases; with pin_process 0 of "
            f"{pinned.responses}.")
    say("pin_process() pins a worker's imports and, in the middleware's default "
        "scope=\"auto\", its docroot under the app directory to the release the worker "
        "started on; new workers start on the new release.")
    return EXIT_OK


def _report_files(results: List[PhaseResult], *, clients: int, flip_interval: float,
                  pause: float, out: TextIO) -> int:
    without, with_ = results

    def w(text: str) -> None:
        """Write ``text``, its lines wrapped at 79 columns (the table's are shorter)."""
        out.write("\n".join(textwrap.fill(line, 79) if len(line) > 79 else line
                             for line in text.split("\n")))
    w(f"realdoc demo ({realdoc.implementation} core): {RELEASES} releases, `current` "
      f"flipped atomically every {flip_interval * 1000:g} ms, {clients} clients, "
      f"{without.seconds:.1f} s per phase.\n")
    w(f"Each request reads a.txt, waits {pause * 1000:g} ms, reads b.txt; torn = the two "
      "files came from different releases.\n\n")
    w(f"{'':17}{'requests':>9}{'flips':>8}{'torn':>16}{'5xx':>6}{'syscalls/request':>18}\n")
    for r in results:
        torn = f"{r.torn} ({r.torn_percent:.1f}%)"
        w(f"{r.name:17}{r.requests:>9}{r.flips:>8}{torn:>16}{r.server_errors:>6}"
          f"{r.syscalls_per_request:>18.2f}\n")
    w("\n")
    for r in results:
        if r.failures:
            w(f"note: {r.failures} request(s) {r.name} got no usable answer "
              "(connection error); they are not counted above.\n")
    if with_.torn or with_.server_errors:
        w(f"BUG: with realdoc, {with_.torn} torn and {with_.server_errors} 5xx responses: "
          "realdoc must make both 0. Please report this.\n")
        return EXIT_BUG
    if with_.requests == 0:
        w("with realdoc: no request was served; is 127.0.0.1 reachable?\n")
        return EXIT_BUG
    if without.torn == 0:
        w("without realdoc: did not reproduce tearing; increase --duration or --pause.\n")
    else:
        w(f"Without realdoc {without.torn} of {without.requests} responses were torn; with "
          f"realdoc 0 of {with_.requests}, and it followed the flips ({len(with_.releases)} "
          "releases served).\n")
    w("The app behind realdoc resolves the docroot once per request and opens every file "
      "under that real path (realdoc.docroot(), realdoc.join()).\n")
    w(f"syscalls/request: what realdoc issued to resolve the docroot; the demo resolves on "
      f"every request (every={DEMO_EVERY:g}) to follow each flip at once; with the default "
      "every=2 s nearly every request is a cache hit with no syscall.\n")
    return EXIT_OK


# -- the command line ----------------------------------------------------------


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _clients(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"must be in 1..256, got {text}")
    return value


def add_parser(subparsers: Subparsers) -> None:
    """Register the ``demo`` subcommand (sets ``func=run``)."""
    p = subparsers.add_parser(
        "demo",
        help="show torn requests and mixed code/files during deploys, without and with "
             "realdoc (~12 s)",
        description=(
            "Build a temporary deploy tree, serve it from a local threaded HTTP server, "
            "flip `current` atomically many times while clients request two files per "
            "request, and count torn responses without and with realdoc; then run worker "
            "processes whose code and files come from the tree and count responses that mix "
            "releases with the request pin alone and with pin_process. Exit 1 if any "
            "response with realdoc is torn or a 5xx, or any with pin_process mixed."
        ),
    )
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the demo's options to ``p``."""
    p.add_argument("--duration", type=_positive, default=DEFAULT_DURATION, metavar="SECONDS",
                   help=f"length of each phase (default {DEFAULT_DURATION:g})")
    p.add_argument("--clients", type=_clients, default=DEFAULT_CLIENTS, metavar="N",
                   help=f"concurrent client threads (default {DEFAULT_CLIENTS})")
    p.add_argument("--flip-interval", type=_non_negative, default=DEFAULT_FLIP_INTERVAL,
                   metavar="SECONDS",
                   help=f"pause between two flips of `current` (default {DEFAULT_FLIP_INTERVAL:g})")
    p.add_argument("--pause", type=_non_negative, default=DEFAULT_PAUSE, metavar="SECONDS",
                   help=f"pause between the two reads of a request (default {DEFAULT_PAUSE:g})")


def run(args: argparse.Namespace) -> int:
    """Run the demo for parsed ``args``; print the table; return the exit code.

    SIGTERM is handled like Ctrl-C while the demo runs (when called in the main
    thread): the server, the flipper and the temporary tree are cleaned up, then
    the exit code is 143.  Any other failure is one line on stderr and exit 1.
    """
    previous = _on_sigterm()
    try:
        try:
            results = run_demo(duration=args.duration, clients=args.clients,
                               flip_interval=args.flip_interval, pause=args.pause,
                               progress=sys.stderr)
            code = run_code_demo(duration=args.duration / 2, progress=sys.stderr)
        finally:
            _restore_sigterm(previous)
    except KeyboardInterrupt:
        _say("\nrealdoc demo: interrupted; server stopped, temporary tree removed")
        return EXIT_INTERRUPTED
    except Terminated:
        _say("\nrealdoc demo: terminated; server stopped, temporary tree removed")
        return EXIT_TERMINATED
    except ValueError as exc:
        _say(f"realdoc demo: {exc}")
        return 2
    except Exception as exc:  # the demo must end in one line, never a traceback
        _say(f"\nrealdoc demo: failed: {_one_line(exc)}; temporary tree removed")
        return EXIT_FAILED
    from ._output import emit_text

    text = io.StringIO()
    status = report(results, clients=args.clients, flip_interval=args.flip_interval,
                    pause=args.pause, out=text, code=code)
    emit_text(text.getvalue())  # a failure to print does not change the verdict
    return status


def _one_line(exc: BaseException) -> str:
    """``Type: message`` of ``exc`` on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _say(line: str) -> None:
    """Write one line to stderr, ignoring a broken stderr."""
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


_SigHandler = Any

# While > 0, the demo's signal handlers record a signal instead of raising (so the
# clean-up runs to the end); _signals_deferred raises it when the depth is back to 0.
_defer_depth = [0]
_pending: List[BaseException] = []


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold back the demo's SIGINT/SIGTERM exceptions until the block has run."""
    _defer_depth[0] += 1
    try:
        yield
    finally:
        _defer_depth[0] -= 1
        if _defer_depth[0] == 0 and _pending:
            exc = _pending.pop()
            _pending.clear()
            raise exc


def _on_sigterm() -> Optional[Tuple[_SigHandler, _SigHandler]]:
    """Install the demo's SIGINT and SIGTERM handlers (main thread only).

    SIGINT raises KeyboardInterrupt and SIGTERM :class:`Terminated`, once; a signal
    arriving during the clean-up is held back until it has finished.  Returns the
    previous handlers (None when not in the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    fired: List[int] = []

    def handler(signum: int, frame: object) -> None:
        if fired:  # already stopping: do not interrupt the clean-up
            return
        fired.append(signum)
        exc: BaseException = Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        if _defer_depth[0]:
            _pending.append(exc)
            return
        raise exc

    return (signal.signal(signal.SIGINT, handler), signal.signal(signal.SIGTERM, handler))


def _restore_sigterm(previous: Optional[Tuple[_SigHandler, _SigHandler]]) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
        _pending.clear()


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m realdoc.cli.demo [options]``: the same as ``realdoc demo``."""
    parser = argparse.ArgumentParser(prog="python -m realdoc.cli.demo",
                                     description="realdoc's demo (also `realdoc demo`)")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
