"""The framework recipes, proven: Flask, Starlette and Django in flip storms.

Each framework's example project (examples/<framework>/) is deployed as
releases r1..r3 of a deploy tree (examples/_site.py: a copy per release, its
name stamped into the code, the lazily imported views module, the template and
the CSS; then the build step, which writes hashed asset names) and served from
``current`` by its real server, 2 workers.  While clients load the page and,
right after each page, the hashed CSS that page links, ``current`` flips
FLIPS times; nobody sends a signal (rollover does it).  Pass:

* 0 pages mixing releases: code, views and template name one release;
* 0 4xx/5xx, for pages and for assets: each asset answers 200 with the bytes
  of the page's release, even from a worker already on a newer one;
* no worker answers from two releases, one reload per flip (the server's log),
  the last old page soon after the last flip, then every worker (the server's
  children, each asked until it answers) on the last release, and r1's hashed
  CSS still answers 200.

The control runs the same project without realdoc (``EXAMPLE_WITHOUT_REALDOC=1``),
flips once between the workers' boot and their first page, and must mix, and
r1's hashed CSS must be gone (404).  Reuses test_rollover.py's storm and
test_servers.py's Server/hammer.
"""

from __future__ import annotations

import http.client
import importlib.util
import pathlib
import re
import sys
import time
from typing import Callable, Dict, List, NamedTuple, Set, Tuple
from urllib.parse import urlsplit

import pytest
from test_rollover import LAG_SLACK, RolloverTally, start_server, storm
from test_servers import Server, hammer

from realdoc.testing.strace import in_ci
from realdoc.testing.tree import DeployTree

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))
import _site  # noqa: E402

pytestmark = pytest.mark.servers

FLIPS = 2
EVERY = 2.0  # the examples pin with the default


class Framework(NamedTuple):
    requires: Tuple[str, ...]          # modules the framework needs
    build: Callable[[pathlib.Path], None]
    argv: List[str]                    # {app} and {port} filled in
    reload_line: str                   # what the server logs once per reload


FRAMEWORKS: Dict[str, Framework] = {
    "flask": Framework(("flask", "gunicorn"), _site.hash_static,
                       [sys.executable, "-m", "gunicorn", "--workers", "2",
                        "--worker-class", "gthread", "--threads", "4",
                        "--graceful-timeout", "5", "--chdir", "{app}",
                        "--bind", "127.0.0.1:{port}", "app:app"], "Hang up: Master"),
    "starlette": Framework(("starlette", "jinja2", "uvicorn"), _site.hash_static,
                           [sys.executable, "-m", "uvicorn", "--workers", "2",
                            "--app-dir", "{app}", "--host", "127.0.0.1", "--port", "{port}",
                            "--no-access-log", "app:app"],
                           "Received SIGHUP, restarting processes"),
    "django": Framework(("django", "whitenoise", "gunicorn"), _site.collectstatic,
                        [sys.executable, "-m", "gunicorn", "--workers", "2",
                         "--graceful-timeout", "5", "--chdir", "{app}",
                         "--bind", "127.0.0.1:{port}", "mysite.wsgi:application"],
                        "Hang up: Master"),
}

PAGE = re.compile(r"code=(\S+) views=(\S+) template=(\S+) pid=(\d+)")
CSS = re.compile(r'href="([^"]+\.css)"')


def require(modules: Tuple[str, ...]) -> None:
    """Skip when a module is not installed; fail instead when ``CI`` is true."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        msg = f"not installed: {', '.join(missing)} (pip install '.[test]')"
        if in_ci():
            pytest.fail(f"{msg}; CI must install the test extras", pytrace=False)
        pytest.skip(msg)


def fetch(port: int, path: str) -> Tuple[int, str, str]:
    """GET ``path`` on a fresh connection: (status, body, X-Release)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace"), \
            resp.getheader("X-Release") or ""
    finally:
        conn.close()


class PageTally(RolloverTally):
    """A RolloverTally of pages, each followed by a request for the CSS it links."""

    def __init__(self, final: str, port: int) -> None:
        super().__init__(final)
        self.port = port
        self.assets = 0
        self.asset_errors = 0      # not 200
        self.asset_wrong = 0       # 200 with another release's bytes
        self.asset_across = 0      # served by a worker on another release than the page
        self.asset_samples: List[str] = []

    def record(self, status: int, body: str, pid: str) -> None:
        page, css = PAGE.search(body), CSS.search(body)
        if status != 200 or page is None or css is None:
            super().record(status, body, pid)
            return
        code, views, template, page_pid = page.groups()
        try:
            a_status, a_body, a_release = fetch(self.port, urlsplit(css.group(1)).path)
        except OSError as exc:
            a_status, a_body, a_release = 0, repr(exc), ""
        with self.lock:
            self.assets += 1
            if a_status != 200:
                self.asset_errors += 1
            elif f"release {template} " not in a_body:
                self.asset_wrong += 1
            elif a_release and a_release != template:
                self.asset_across += 1
            if (a_status != 200 or f"release {template} " not in a_body) \
                    and len(self.asset_samples) < 5:
                self.asset_samples.append(f"{css.group(1)} -> {a_status} {a_body[:80]!r}")
        super().record(status, f"{code} {views} {template}", page_pid)

    def summary(self) -> str:
        return (super().summary() + f" assets={self.assets} asset_errors={self.asset_errors} "
                f"asset_wrong={self.asset_wrong} asset_across={self.asset_across} "
                f"asset_samples={self.asset_samples}")


def deploy(name: str, base: pathlib.Path, releases: int) -> DeployTree:
    _site.build_site(EXAMPLES / name, base / "site", [f"r{i}" for i in range(1, releases + 1)],
                     FRAMEWORKS[name].build)
    return DeployTree(base / "site")


def hashed_css(tree: DeployTree, release: str) -> str:
    static = pathlib.Path(tree.release_path(release)) / "static"
    (name,) = [p.name for p in static.glob("app.*.css")]
    return f"/static/{name}"


def worker_pids(master: int, workers: int = 2) -> Set[str]:
    """The server's worker pids (children of ``master`` but multiprocessing's
    resource tracker), once there are ``workers`` of them (old ones gone), in 10 s."""
    deadline = time.monotonic() + 10
    while True:
        found: Set[str] = set()
        try:
            with open(f"/proc/{master}/task/{master}/children") as f:
                children = f.read().split()
        except OSError:
            children = []
        for child in children:
            try:
                with open(f"/proc/{child}/cmdline", "rb") as f:
                    if b"resource_tracker" in f.read():
                        continue
            except OSError:
                continue
            found.add(child)
        if len(found) == workers or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def ask_every_worker(port: int, workers: Set[str]) -> Dict[str, Tuple[int, str, str]]:
    """Fresh-connection pages until each of ``workers`` answered (at most 200):
    pid -> (status, X-Release, "code views template")."""
    seen: Dict[str, Tuple[int, str, str]] = {}
    for _ in range(200):
        status, body, release = fetch(port, "/")
        page = PAGE.search(body)
        if page is not None:
            seen[page.group(4)] = (status, release, " ".join(page.groups()[:3]))
        if workers <= set(seen):
            break
    return seen


def serve(name: str, tree: DeployTree, base: pathlib.Path, with_realdoc: bool) -> Server:
    fw = FRAMEWORKS[name]
    base.mkdir(exist_ok=True)
    env = {} if with_realdoc else {"EXAMPLE_WITHOUT_REALDOC": "1"}
    return start_server(name, fw.argv, tree.current, base / "server.log", with_realdoc, 2,
                        extra_env=env)


@pytest.mark.parametrize("name", list(FRAMEWORKS))
def test_framework_storm_one_release_per_page_assets_200(name: str,
                                                         tmp_path: pathlib.Path) -> None:
    require(FRAMEWORKS[name].requires)
    tree = deploy(name, tmp_path, FLIPS + 1)
    srv = serve(name, tree, tmp_path, True)
    try:
        tally, flips = storm(srv, tree, FLIPS, path="/",
                             tally=PageTally(tree.releases[FLIPS], srv.port))
        # after the storm: a page of r1, still open in a browser, gets its CSS
        old = fetch(srv.port, hashed_css(tree, "r1"))
        workers = worker_pids(srv.proc.pid)
        last = ask_every_worker(srv.port, workers)
        log = srv.log.read_text(errors="replace")
    finally:
        srv.stop()
    summary = tally.summary() + "\n" + log[-4000:]
    final = tree.releases[FLIPS]
    assert len(flips) == FLIPS
    assert tally.torn == 0, summary
    assert tally.server_errors == 0 and tally.other == 0 and tally.failures == 0, summary
    assert tally.assets == tally.answers > 0, summary
    assert tally.asset_errors == 0 and tally.asset_wrong == 0, summary
    assert tally.releases == set(tree.releases), summary
    assert log.count(FRAMEWORKS[name].reload_line) == FLIPS, summary
    assert all(len(r) == 1 for r in tally.by_pid.values()), tally.by_pid
    lag = max(0.0, tally.last_not_final - flips[-1])
    print(f"{name}: last page on an older release {lag:.2f} s after the last flip; "
          f"assets served across releases: {tally.asset_across}")
    assert lag <= EVERY + LAG_SLACK, summary
    assert old[0] == 200 and "release r1 " in old[1] and old[2] == final, old
    # every worker is on the last release
    assert len(workers) == 2 and workers <= set(last), (workers, last)
    assert all(v == (200, final, f"{final} {final} {final}") for v in last.values()), last


HOOKS = """
def post_worker_init(worker):
    worker.log.info("test: app loaded in %s", worker.pid)
"""


def serve_unrequested(name: str, tree: DeployTree, base: pathlib.Path) -> Server:
    """Django without realdoc, waited for without a request: any request imports the
    URLconf, so the control must flip after the workers loaded the app (gunicorn's
    post_worker_init hook logs it) and before their first request."""
    hooks = base / "hooks.py"
    hooks.write_text(HOOKS)
    argv = [a.replace("{app}", tree.current) for a in FRAMEWORKS[name].argv]
    srv = Server(name, tree.current, base / "server.log", argv=argv + ["-c", str(hooks)],
                 env={"EXAMPLE_WITHOUT_REALDOC": "1"}, paths=[])
    deadline = time.monotonic() + 20
    while srv.output(10**6).count("test: app loaded in") < 2:
        if srv.proc.poll() is not None or time.monotonic() > deadline:
            srv.stop()
            pytest.fail(f"{name} did not load its app:\n{srv.output()}")
        time.sleep(0.05)
    return srv


@pytest.mark.parametrize("name", list(FRAMEWORKS))
def test_framework_without_realdoc_pages_mix(name: str, tmp_path: pathlib.Path) -> None:
    """The control: a flip between the workers' boot and their first page mixes
    code (r1) with the lazily imported views and the template (r2), for good."""
    require(FRAMEWORKS[name].requires)
    tree = deploy(name, tmp_path, 2)
    if name == "django":
        srv = serve_unrequested(name, tree, tmp_path)
    else:  # /pid, which wait_ready asks, does not import the views
        srv = serve(name, tree, tmp_path, False)
    try:
        tree.flip("r2")
        time.sleep(0.2)
        tally = hammer(srv.port, "/", 10**7, lambda t: t.torn >= 20,
                       tally=PageTally("r2", srv.port), clients=2, seconds=4)
        log = srv.log.read_text(errors="replace")
    finally:
        srv.stop()
    print(f"{name} without realdoc: {tally.summary()}")
    assert tally.torn > 0, "no mixing without realdoc: " + tally.summary()
    assert FRAMEWORKS[name].reload_line not in log  # nobody reloaded it
    # a worker started on r2 (what a reload gives) without realdoc: r1's pages
    # still open in browsers link CSS it does not have
    srv = serve(name, tree, tmp_path / "restarted", False)
    try:
        old = fetch(srv.port, hashed_css(tree, "r1"))
    finally:
        srv.stop()
    assert old[0] == 404, old
