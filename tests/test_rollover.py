"""Rollover on real servers: every worker moves to the new release, none mixes or fails.

Each server serves ``current`` of a deploy tree whose releases hold the code of
tests/apps/realdoc_rollapp.py (``VERSION``, a lazily imported views module, a
template read through ``realdoc.docroot()`` behind the middleware).  While
clients hammer ``/page``, ``current`` flips FLIPS times, FLIP_GAP s apart; nobody
sends the server a signal.  Pass (with ``pin_process``, ``every=EVERY``):

* 0 mixed responses (code, views and template from one release), 0 errors;
* one reload per flip: the server logs one reload per flip, realdoc one
  rollover line per flip, and no worker pid ever answers from two releases;
* after the last flip every response is on the last release within
  ``EVERY + LAG_SLACK`` seconds.

The control runs the same storm without ``pin_process`` and must mix.  Where
rollover cannot happen (gunicorn ``--preload``, a single uvicorn process) the
process says so once and stays on its release.  Servers reuse test_servers.py's
harness (Server, hammer, Tally).
"""

from __future__ import annotations

import os
import pathlib
import sys
import threading
import time
from typing import Dict, List, Optional, Set, Tuple, TypeVar, overload

import pytest
from test_servers import APPS, Server, Tally, hammer

from realdoc.testing.tree import DeployTree

sys.path.insert(0, str(APPS))
from rollapp_tree import make_tree  # noqa: E402

pytestmark = pytest.mark.servers

EVERY = 1.0          # the rollover check interval the app pins with
FLIPS = 3
FIRST_FLIP = 1.5     # seconds after the clients start
FLIP_GAP = 4.5       # seconds between flips
SETTLE = EVERY + 8   # at most this long after the last flip for all to be on it
QUIET = 1.5          # seconds of last-release-only answers that end a run early
LAG_SLACK = 6.0      # "every + a few seconds"
CLIENTS = 4

UWSGI = str(pathlib.Path(sys.executable).with_name("uwsgi"))

#: kind -> (workers, argv template, what the server logs once per reload)
SERVERS: Dict[str, Tuple[int, List[str], str]] = {
    "gunicorn-sync": (2, [sys.executable, "-m", "gunicorn", "--workers", "2",
                          "--worker-class", "sync", "--graceful-timeout", "5",
                          "--chdir", "{app}", "--bind", "127.0.0.1:{port}",
                          "realdoc_rollapp:wsgi_app"], "Hang up: Master"),
    "gunicorn-gthread": (2, [sys.executable, "-m", "gunicorn", "--workers", "2",
                             "--worker-class", "gthread", "--threads", "4",
                             "--graceful-timeout", "5", "--chdir", "{app}",
                             "--bind", "127.0.0.1:{port}", "realdoc_rollapp:wsgi_app"],
                         "Hang up: Master"),
    "uvicorn": (2, [sys.executable, "-m", "uvicorn", "--workers", "2", "--host", "127.0.0.1",
                    "--port", "{port}", "--app-dir", "{app}", "--no-access-log",
                    "--log-level", "info", "realdoc_rollapp:asgi_app"],
                "Received SIGHUP, restarting processes"),
    "uwsgi": (2, [UWSGI, "--master", "--processes", "2", "--lazy-apps", "--enable-threads",
                  "--http-socket", "127.0.0.1:{port}", "--pythonpath", "{app}",
                  "--module", "realdoc_rollapp:wsgi_app", "--die-on-term",
                  "--disable-logging", "--worker-reload-mercy", "5",
                  "--master-fifo", "{run}/uwsgi.fifo"],
              "chain reload starting"),
}
#: servers where rollover cannot happen: (argv template, the reason logged)
NO_ROLLOVER: Dict[str, Tuple[List[str], str]] = {
    "gunicorn-preload": ([sys.executable, "-m", "gunicorn", "--workers", "2", "--preload",
                          "--chdir", "{app}", "--bind", "127.0.0.1:{port}",
                          "realdoc_rollapp:wsgi_app"], "preload_app=True"),
    "uvicorn-single": ([sys.executable, "-m", "uvicorn", "--host", "127.0.0.1",
                        "--port", "{port}", "--app-dir", "{app}", "--log-level", "warning",
                        "realdoc_rollapp:asgi_app"], "not a worker of a supported server"),
}


class RolloverTally(Tally):
    """Counts of a storm: mixed answers (in ``torn``), and which pid answered which release."""

    def __init__(self, final: str) -> None:
        super().__init__()
        self.final = final
        self.by_pid: Dict[str, Set[str]] = {}
        self.last_not_final = 0.0  # monotonic time of the last answer not on `final`
        self.answers = 0

    def record(self, status: int, body: str, pid: str) -> None:
        now = time.monotonic()
        names = body.split()
        with self.lock:
            self.requests += 1
            self.pids.add(pid)
            if status >= 500:
                self.server_errors += 1
            elif status != 200 or len(names) != 3:
                self.other += 1
            elif len(set(names)) != 1:
                self.torn += 1
            else:
                self.answers += 1
                self.releases.add(names[0])
                self.by_pid.setdefault(pid, set()).add(names[0])
                if names[0] != self.final:
                    self.last_not_final = now
                return
            if len(self.samples) < 5:
                self.samples.append(f"{status} {body}")


def start_server(kind: str, argv: List[str], app: str, log: pathlib.Path, pin: bool,
                 workers: int, extra_env: Optional[Dict[str, str]] = None) -> Server:
    if argv[0] == UWSGI and not os.access(UWSGI, os.X_OK):
        pytest.fail(f"{UWSGI} is missing: install the test extras (pyuwsgi)")
    env = {"ROLLAPP_PIN": "1" if pin else "0", "ROLLAPP_EVERY": str(EVERY),
           **(extra_env or {})}
    template = [a.replace("{app}", app).replace("{run}", str(log.parent)) for a in argv]
    for _ in range(3):  # the free port may be taken between probe and bind
        srv = Server(kind, app, log, argv=template, env=env, paths=[])
        try:
            srv.wait_ready(workers=workers)
            return srv
        except RuntimeError:
            srv.stop()
            if "in use" not in srv.output():
                raise
    pytest.fail(f"{kind}: no free port after 3 attempts")


RolloverTallyT = TypeVar("RolloverTallyT", bound=RolloverTally)


@overload
def storm(srv: Server, tree: DeployTree, flips: int,
          stop_when_mixed: bool = False, *, path: str = "/page",
          tally: None = None) -> Tuple[RolloverTally, List[float]]: ...
@overload
def storm(srv: Server, tree: DeployTree, flips: int,
          stop_when_mixed: bool = False, *, path: str = "/page",
          tally: RolloverTallyT) -> Tuple[RolloverTallyT, List[float]]: ...
def storm(srv: Server, tree: DeployTree, flips: int,
          stop_when_mixed: bool = False, *, path: str = "/page",
          tally: Optional[RolloverTally] = None) -> Tuple[RolloverTally, List[float]]:
    """Hammer ``path`` while flipping r1 -> r2 -> ... ``flips`` times; return the tally
    (``tally``, whose ``final`` must be the last target, or a fresh RolloverTally)
    and the monotonic times of the flips."""
    targets = tree.releases[1:flips + 1]
    tally = RolloverTally(final=targets[-1]) if tally is None else tally
    assert tally.final == targets[-1]
    flip_times: List[float] = []
    done = threading.Event()
    t0 = time.monotonic()

    def flipper() -> None:
        for i, name in enumerate(targets):
            if done.wait(max(0.0, t0 + FIRST_FLIP + i * FLIP_GAP - time.monotonic())):
                return
            tree.flip(name)
            flip_times.append(time.monotonic())

    def enough(t: RolloverTally) -> bool:  # called with t.lock held
        if stop_when_mixed and t.torn >= 20:
            return True
        if len(flip_times) < flips:
            return False
        now = time.monotonic()
        since_flip = now - flip_times[-1]
        return since_flip > SETTLE or (
            since_flip > EVERY and now - max(t.last_not_final, flip_times[-1]) > QUIET)

    thread = threading.Thread(target=flipper, daemon=True)
    thread.start()
    try:
        hammer(srv.port, path, 10**7, enough, tally=tally, clients=CLIENTS,
               seconds=FIRST_FLIP + FLIP_GAP * (flips - 1) + SETTLE + 2)
    finally:
        done.set()
        thread.join(5)
    assert srv.proc.poll() is None, f"{srv.kind} died:\n{srv.output()}"
    print(f"{srv.kind}: flips={len(flip_times)} {tally.summary()} answers={tally.answers} "
          f"by_pid={ {p: sorted(r) for p, r in tally.by_pid.items()} }")
    return tally, flip_times


@pytest.fixture
def base(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path


@pytest.mark.parametrize("kind", list(SERVERS))
def test_rollover_storm_no_mixing_one_reload_per_flip(kind: str, base: pathlib.Path) -> None:
    workers, argv, reload_line = SERVERS[kind]
    tree = make_tree(base, FLIPS + 1)
    srv = start_server(kind, argv, tree.current, base / "server.log", True, workers)
    try:
        tally, flips = storm(srv, tree, FLIPS)
        log = srv.log.read_text(errors="replace")
    finally:
        srv.stop()
    summary = tally.summary() + "\n" + log[-6000:]
    assert len(flips) == FLIPS
    assert tally.torn == 0, summary
    assert tally.server_errors == 0 and tally.other == 0 and tally.failures == 0, summary
    assert tally.releases == set(tree.releases), summary  # every release was served
    # one reload per flip, asked by realdoc, carried out by the server
    assert log.count("rollover: release ") == FLIPS, summary
    assert log.count(reload_line) == FLIPS, summary
    # a worker never changes release; no generation beyond one per flip
    assert all(len(r) == 1 for r in tally.by_pid.values()), tally.by_pid
    assert len(tally.by_pid) <= workers * (FLIPS + 1), tally.by_pid
    # all on the last release soon after the last flip
    lag = max(0.0, tally.last_not_final - flips[-1])
    print(f"{kind}: last answer on an older release {lag:.2f} s after the last flip")
    assert lag <= EVERY + LAG_SLACK, summary


@pytest.mark.parametrize("kind", list(SERVERS))
def test_without_pin_process_the_storm_mixes(kind: str, base: pathlib.Path) -> None:
    """The control: the same app and flips without pin_process mix code and files."""
    workers, argv, reload_line = SERVERS[kind]
    tree = make_tree(base, 2)
    srv = start_server(kind, argv, tree.current, base / "server.log", False, workers)
    try:
        tally, _ = storm(srv, tree, 1, stop_when_mixed=True)
        log = srv.log.read_text(errors="replace")
    finally:
        srv.stop()
    assert tally.torn > 0, "no mixing without pin_process: " + tally.summary()
    assert reload_line not in log  # nobody reloaded it


@pytest.mark.parametrize("kind", list(NO_ROLLOVER))
def test_no_rollover_where_the_server_cannot_reload(kind: str, base: pathlib.Path) -> None:
    """gunicorn --preload and a single uvicorn: one log line, then the old release."""
    argv, reason = NO_ROLLOVER[kind]
    tree = make_tree(base, 2)
    # one pid to wait for: with --preload the app (and its PID) comes from the arbiter
    srv = start_server(kind, argv, tree.current, base / "server.log", True, 1)
    try:
        tree.flip(tree.releases[1])
        tally = hammer(srv.port, "/page", 10**7, tally=RolloverTally(final="r2"),
                       clients=2, seconds=EVERY * 3)
        log = srv.log.read_text(errors="replace")
    finally:
        srv.stop()
    lines = [ln for ln in log.splitlines() if "rollover off" in ln]
    assert len(lines) == 1, log
    assert reason in lines[0] and "stays on release" in lines[0], lines
    assert tally.answers > 0 and tally.releases == {"r1"}, tally.summary()
    assert tally.torn == 0 and tally.failures == 0, tally.summary()
    assert "rollover: release" not in log and "Hang up" not in log, log


# ------------------------------------------------ 0.2: watch mode's wake-up (#11)

def test_rollover_check_with_watch_wakes_on_the_flip(tmp_path: pathlib.Path) -> None:
    """pin_process(watch=True): the rollover thread's pause ends as soon as inotify
    reports the flip (every=3600 would otherwise keep it asleep for an hour); without
    watch the same pause runs its full length."""
    from realdoc import _rollover
    from realdoc._process import Pin

    tree = DeployTree.create(str(tmp_path / "site"), releases=2)
    app_dir = tree.current
    pin = Pin(app_dir, os.path.realpath(app_dir))
    wait, check = _rollover._checker(pin, 3600.0, True)
    assert check() == pin.release
    woke: List[float] = []

    def waiting() -> None:
        wait()
        woke.append(time.monotonic())

    waiter = threading.Thread(target=waiting)
    waiter.start()
    time.sleep(0.05)
    flipped = time.monotonic()
    tree.flip("r2")
    waiter.join(5)
    assert woke and woke[0] - flipped < 5
    assert check() == os.path.realpath(app_dir) != pin.release
    plain_wait, _ = _rollover._checker(pin, 0.3, False)
    t0 = time.monotonic()
    assert plain_wait() is False and time.monotonic() - t0 >= 0.29


def test_pin_process_watch_must_be_a_bool(tmp_path: pathlib.Path) -> None:
    import realdoc._process as P
    with pytest.raises(TypeError, match="watch must be True or False"):
        P.pin_process(str(tmp_path), watch=1)  # type: ignore[arg-type]
