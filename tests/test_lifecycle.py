"""realdoc.status / prune / rollback, their CLI, and the in-use mark of requests (issue 12).

Real deploy trees in tmp dirs, real rename(2) flips, real child processes holding
releases (cwd, open file, realdoc's mark from the WSGI middleware), and at the end
a storm under real gunicorn gthread: deploys plus ``prune --keep 1`` every 100 ms
while 200 ms requests run, with realdoc's prune (no request fails) and with a naive
``rm -rf`` prune (requests fail).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
from helpers import NOBODY, child_env, fork_call, ignore_start_response

import realdoc
from realdoc import _inuse, _lifecycle
from realdoc._lifecycle import NoPreviousRelease, natural_key
from realdoc.cli.commands import main
from realdoc.testing.servers import free_port, stop_process_group
from realdoc.testing.tree import DeployTree

APPS = pathlib.Path(__file__).resolve().parent / "apps"


def make_site(root: pathlib.Path, names: Tuple[str, ...] = ("r1", "r2", "r3")) -> pathlib.Path:
    """``root/releases/<name>/public/a.txt`` with mtimes 10 s apart, ``current`` at the last."""
    releases = root / "releases"
    releases.mkdir(parents=True)
    base = time.time() - 100
    for i, name in enumerate(names):
        (releases / name / "public").mkdir(parents=True)
        (releases / name / "public" / "a.txt").write_text(name)
        os.utime(releases / name, (base + 10 * i, base + 10 * i))
    os.symlink(f"releases/{names[-1]}", root / "current")
    return root


def run_cli(*argv: str) -> Tuple[int, str, str]:
    """Run ``python -m realdoc ARGV`` in a child; return (exit code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "realdoc", *argv], env=child_env(),
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


def names(paths: Any) -> List[str]:
    return sorted(os.path.basename(p) for p in paths)


@pytest.fixture
def site(tmp_path: pathlib.Path) -> pathlib.Path:
    return make_site(tmp_path / "site")


# ----------------------------------------------------------------- definitions


def test_natural_order_r9_before_r10() -> None:
    assert sorted(["r10", "r9", "r1", "r100", "r2"], key=natural_key) == [
        "r1", "r2", "r9", "r10", "r100"]


def test_newest_is_mtime_then_natural_name(tmp_path: pathlib.Path) -> None:
    site = make_site(tmp_path / "s", ("r9", "r10", "r11"))
    now = time.time()
    os.utime(site / "releases" / "r9", (now, now))  # newest by mtime although oldest by name
    os.utime(site / "releases" / "r10", (now - 50, now - 50))
    os.utime(site / "releases" / "r11", (now - 50, now - 50))  # tie with r10: name decides
    st = realdoc.status(site / "current")
    assert [r.name for r in st.releases] == ["r9", "r11", "r10"]
    # r11 is current; the newest older than it is r10
    assert st.current == str(site / "releases" / "r11")
    assert st.previous == str(site / "releases" / "r10")


# ----------------------------------------------------------------------- status


def test_status_json_shape(site: pathlib.Path) -> None:
    code, out, err = run_cli("status", str(site / "current"), "--json")
    assert code == 0, err
    doc = json.loads(out)
    for key in ("link", "current", "previous", "releases", "letters", "releases_dir",
                "stale", "errors", "ignored"):
        assert key in doc
    rel = site / "releases"
    assert doc["link"] == str(site / "current")
    assert doc["current"] == str(rel / "r3")
    assert doc["previous"] == str(rel / "r2")
    assert doc["releases_dir"] == str(rel)
    assert [r["path"] for r in doc["releases"]] == [str(rel / n) for n in ("r3", "r2", "r1")]
    for r in doc["releases"]:
        for key in ("path", "current", "previous", "pids", "processes", "age", "letters"):
            assert key in r
        assert r["pids"] == [] and r["processes"] == []
        assert 80 < r["age"] < 200
    assert [r["current"] for r in doc["releases"]] == [True, False, False]
    assert [r["previous"] for r in doc["releases"]] == [False, True, False]
    code, out, err = run_cli("status", str(site / "current"))
    assert code == 0, err
    assert "r3" in out and "current" in out and "previous" in out


WORKER = textwrap.dedent("""
    import os, sys, time
    from realdoc.wsgi import RealdocMiddleware
    docroot, ready, go = sys.argv[1], sys.argv[2], sys.argv[3]

    def app(environ, start_response):
        with open(os.path.join(environ["realdoc.docroot"], "a.txt")) as f:
            first = f.read()
        open(ready, "w").close()          # no file of the release is open from here on
        while not os.path.exists(go):
            time.sleep(0.01)
        with open(os.path.join(environ["realdoc.docroot"], "a.txt")) as f:
            second = f.read()
        start_response("200 OK", [])
        return [(first + " " + second).encode()]

    mw = RealdocMiddleware(app, docroot, every=0)
    body = b"".join(mw({"PATH_INFO": "/"}, lambda *a: None))
    print(body.decode(), flush=True)
    open(ready + ".done", "w").close()
    while not os.path.exists(go + ".exit"):
        time.sleep(0.01)
""")


@contextlib.contextmanager
def worker(site: pathlib.Path, tmp: pathlib.Path, impl_name: str) -> Iterator[Any]:
    """A child process serving one request through the WSGI middleware, paused mid-request."""
    ready, go = tmp / "ready", tmp / "go"
    env = child_env()
    if impl_name == "python":
        env["REALDOC_NO_EXTENSIONS"] = "1"
    proc = subprocess.Popen([sys.executable, "-c", WORKER, str(site / "current" / "public"),
                             str(ready), str(go)], env=env, cwd="/", stdout=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert proc.poll() is None, "worker died"
            assert time.monotonic() < deadline, "worker never started its request"
            time.sleep(0.01)
        yield proc, go
    finally:
        (tmp / "go").touch()
        (tmp / "go.exit").touch()
        try:
            proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.mark.parametrize("impl_name", ["cython", "python"])
def test_status_shows_request_in_flight_then_drops_it(
        site: pathlib.Path, tmp_path: pathlib.Path, impl_name: str) -> None:
    """In use means in use: a request between two file opens is seen, and flagged stale."""
    if impl_name == "cython":
        pytest.importorskip("realdoc._fastpath")
    r3 = str(site / "releases" / "r3")
    with worker(site, tmp_path, impl_name) as (proc, go):
        st = realdoc.status(site / "current")
        row = {r.name: r for r in st.releases}["r3"]
        assert proc.pid in row.pids
        use = next(p for p in row.processes if p.pid == proc.pid)
        assert use.how == ("pinned by realdoc",)  # no file open, cwd elsewhere
        assert not use.stale
        assert "-c" in use.cmdline

        # a deploy: r3 is now old, and the worker on it is stale
        os.mkdir(site / "releases" / "r4")
        realdoc.switch(site / "current", site / "releases" / "r4")
        doc = json.loads(run_cli("status", str(site / "current"), "--json")[1])
        row = {r["name"]: r for r in doc["releases"]}["r3"]
        assert proc.pid in row["pids"] and proc.pid in doc["stale"]
        assert [p["how"] for p in row["processes"] if p["pid"] == proc.pid] == [
            ["pinned by realdoc"]]

        # prune never deletes it while the request runs
        res = realdoc.prune(site / "current", keep=0)
        kept = {k.name: k for k in res.kept}
        assert "in use" in kept["r3"].reasons and proc.pid in kept["r3"].pids
        assert names(res.deleted) == ["r1", "r2"]
        go.touch()
        deadline = time.monotonic() + 20
        while not (tmp_path / "ready.done").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "r3 r3"  # one release for the request
        # the request ended: the mark is gone, the process is still alive
        row = {r.name: r for r in realdoc.status(site / "current").releases}["r3"]
        assert proc.pid not in row.pids
        assert proc.poll() is None
    res = realdoc.prune(site / "current", keep=0)
    assert r3 not in res.deleted  # previous now
    assert os.path.isdir(r3)


def test_status_cwd_and_open_file(site: pathlib.Path) -> None:
    r1, r2 = site / "releases" / "r1", site / "releases" / "r2"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                               cwd=str(r1))
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; f = open(sys.argv[1]); print(1, flush=True); time.sleep(30)",
         str(r2 / "public" / "a.txt")], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline()
        rows = {r.name: r for r in realdoc.status(site / "current").releases}
        uses = {p.pid: p for p in rows["r1"].processes}
        assert uses[sleeper.pid].how == ("cwd",) and uses[sleeper.pid].stale
        uses = {p.pid: p for p in rows["r2"].processes}
        assert uses[holder.pid].how == ("open file",)
        res = realdoc.prune(site / "current", keep=0)
        assert res.deleted == ()
        kept = {k.name: k.reasons for k in res.kept}
        assert kept == {"r3": ("current",), "r2": ("previous", "in use"), "r1": ("in use",)}
    finally:
        for p in (sleeper, holder):
            p.kill()
            p.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert names(realdoc.prune(site / "current", keep=0).deleted) == ["r1"]


def test_status_letters_and_ignored(site: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """A release that is the target of both ``current`` and ``A``; a file and a symlink."""
    os.symlink("releases/r3", site / "A")
    os.symlink("releases/r1", site / "B")
    (site / "releases" / "notes.txt").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("x")
    os.symlink(str(outside), site / "releases" / "r0")
    st = realdoc.status(site / "current")
    rows = {r.name: r for r in st.releases}
    assert set(rows) == {"r1", "r2", "r3"}
    assert rows["r3"].current and rows["r3"].letters == ("A",)
    assert rows["r1"].letters == ("B",)
    assert st.letter is None  # current points at the release, not at a letter
    assert st.letters == {"A": str(site / "releases" / "r3"), "B": str(site / "releases" / "r1")}
    assert {d["name"]: d["kind"] for d in st.ignored} == {"notes.txt": "not a directory",
                                                          "r0": "symlink"}
    res = realdoc.prune(site / "current", keep=0)
    kept = {k.name: k.reasons for k in res.kept}
    assert kept["r3"] == ("current", "letter A")
    assert kept["r1"] == ("letter B",)
    assert kept["r0"] == ("symlink",) and kept["notes.txt"] == ("not a directory",)
    assert res.deleted == ()  # r2 is previous
    assert (outside / "keep.txt").exists() and os.path.islink(site / "releases" / "r0")


# ------------------------------------------------------------------------ prune


def test_prune_keep_and_min_age(tmp_path: pathlib.Path) -> None:
    site = make_site(tmp_path / "s", tuple(f"r{i}" for i in range(1, 8)))
    now = time.time()
    os.utime(site / "releases" / "r1", (now, now - 1))  # very young, and oldest by name
    os.utime(site / "releases" / "r4", (now, now - 25))
    res = realdoc.prune(site / "current", keep=2, min_age=30)
    kept = {k.name: k.reasons for k in res.kept}
    # newest: r1 (1 s old), r4 (25 s), r7 (current, 40 s), r6 (previous: the newest
    # release older than r7)
    assert kept == {"r1": ("younger than min-age", "newest"),
                    "r4": ("younger than min-age", "newest"),
                    "r7": ("current",), "r6": ("previous",)}
    assert names(res.deleted) == ["r2", "r3", "r5"]
    assert sorted(os.listdir(site / "releases")) == ["r1", "r4", "r6", "r7"]
    assert res.ok and res.errors == ()


def test_prune_dry_run_changes_nothing(site: pathlib.Path) -> None:
    before = sorted((p, p.stat().st_mtime_ns) for p in site.rglob("*"))
    code, out, err = run_cli("prune", str(site / "current"), "--keep", "0", "--dry-run",
                             "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["dry_run"] is True and doc["deleted"] == [str(site / "releases" / "r1")]
    assert sorted((p, p.stat().st_mtime_ns) for p in site.rglob("*")) == before
    code, out, err = run_cli("prune", str(site / "current"), "--keep", "0")
    assert code == 0, err
    assert f"deleted: {site / 'releases' / 'r1'}" in out
    assert sorted(os.listdir(site / "releases")) == ["r2", "r3"]


def test_prune_renames_away_before_removing(site: pathlib.Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The release is gone from its name before the first file of it is removed."""
    seen: List[Tuple[bool, List[str]]] = []
    real_rmtree = _lifecycle._rmtree_at

    def spy(name: str, dir_fd: int) -> List[OSError]:
        seen.append((os.path.exists(site / "releases" / "r1"),
                     sorted(os.listdir(site / "releases"))))
        return real_rmtree(name, dir_fd)

    monkeypatch.setattr(_lifecycle, "_rmtree_at", spy)
    res = realdoc.prune(site / "current", keep=0)
    assert names(res.deleted) == ["r1"]
    assert seen == [(False, [f".r1.realdoc-prune-{os.getpid()}", "r2", "r3"])]
    assert sorted(os.listdir(site / "releases")) == ["r2", "r3"]


def test_prune_removes_leftovers_of_dead_prunes_and_switchers(site: pathlib.Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    left = site / "releases" / f".r0.realdoc-prune-{dead.pid}"
    (left / "public").mkdir(parents=True)
    (left / "public" / "a.txt").write_text("x")
    alive = site / "releases" / f".r9.realdoc-prune-{os.getppid()}"
    alive.mkdir()
    os.symlink("releases/r1", site / f".current.realdoc-tmp-{dead.pid}-0123abcd")
    res = realdoc.prune(site / "current", keep=5)
    assert res.deleted == (str(left),)
    assert not left.exists() and alive.exists()
    assert sorted(os.listdir(site)) == ["current", "releases"]


def test_prune_keeps_a_release_whose_lock_is_held_even_unseen_in_proc(
        site: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flock is the atomic check: it holds even where /proc cannot be read."""
    os.mkdir(site / "releases" / "r4")
    realdoc.switch(site / "current", site / "releases" / "r4")
    mark = _inuse.hold(str(site / "releases" / "r1" / "public"), 1)
    assert mark is not None
    try:
        monkeypatch.setattr(_lifecycle._Scan, "_one", lambda self, pid: None)  # sees nothing
        res = realdoc.prune(site / "current", keep=0)
        kept = {k.name: k for k in res.kept}
        assert kept["r1"].reasons == ("in use",) and kept["r1"].pids == (os.getpid(),)
        assert names(res.deleted) == ["r2"]
    finally:
        _inuse.release(mark)
    assert str(site / "releases" / "r1") not in _inuse.held()
    assert names(realdoc.prune(site / "current", keep=0).deleted) == ["r1"]


def test_middleware_resolves_again_when_its_release_was_pruned(site: pathlib.Path) -> None:
    """A cached docroot whose release was pruned before the request's mark: resolved again."""
    import gc

    from realdoc.wsgi import RealdocMiddleware

    seen: List[str] = []
    r5 = str(site / "releases" / "r5")

    def app(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
        seen.append(environ["realdoc.docroot"])
        assert _inuse.held().get(str(pathlib.Path(seen[-1]).parent), 0) >= 1
        return [b"ok"]

    # built (and warmed up: its cache names r3) before any request, so nothing marks r3
    mw = RealdocMiddleware(app, str(site / "current" / "public"), every=3600)
    assert mw.resolver.value == str(site / "releases" / "r3" / "public")
    for name in ("r4", "r5"):
        os.makedirs(site / "releases" / name / "public")
        realdoc.switch(site / "current", site / "releases" / name)
    assert names(realdoc.prune(site / "current", keep=0).deleted) == ["r1", "r2", "r3"]
    assert mw({}, ignore_start_response) == [b"ok"]  # the cache still named r3, which is gone
    assert seen == [r5 + "/public"]
    # every > 0: the release served last stays marked (cache hits cost no syscall)
    assert _inuse.held().get(r5) == 1
    res = realdoc.prune(site / "current", keep=0)
    assert {k.name: k.reasons for k in res.kept}["r5"] == ("current", "in use")
    del mw
    gc.collect()
    assert r5 not in _inuse.held()  # a collected middleware drops what it kept


def test_mark_costs_no_descriptor_for_a_second_request(site: pathlib.Path) -> None:
    """Refcounted: one descriptor per release however many requests; closed by the last."""
    real = str(site / "releases" / "r3" / "public")
    fds = len(os.listdir("/proc/self/fd"))
    first = _inuse.hold(real, 1)
    assert first is not None
    assert len(os.listdir("/proc/self/fd")) == fds + 1
    second = _inuse.hold(real, 1)
    assert second is first and len(os.listdir("/proc/self/fd")) == fds + 1
    root = str(site / "releases" / "r3")
    assert _inuse.held().get(root) == 2
    _inuse.release(second)
    assert len(os.listdir("/proc/self/fd")) == fds + 1
    _inuse.release(first)
    assert len(os.listdir("/proc/self/fd")) == fds and root not in _inuse.held()


def test_prune_permission_error_reported_others_carry_on(root: str) -> None:
    site = make_site(pathlib.Path(root) / "s", ("r1", "r2", "r3", "r4", "r5"))
    locked = site / "releases" / "r2" / "public"
    if os.geteuid() == 0:
        for p in [site, *site.rglob("*")]:
            os.lchown(p, NOBODY, NOBODY)
        os.chown(locked, 0, 0)  # nobody cannot empty it

        def as_nobody() -> Tuple[int, Dict[str, Any]]:
            import io
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = main(["prune", str(site / "current"), "--keep", "0", "--json"])
            return code, json.loads(out.getvalue())

        code, doc = fork_call(as_nobody, as_nobody=True)
    else:
        os.chmod(locked, 0o555)
        try:
            code, out, _ = run_cli("prune", str(site / "current"), "--keep", "0", "--json")
            doc = json.loads(out)
        finally:
            os.chmod(locked, 0o755)
    assert code == 5
    assert names(doc["deleted"]) == ["r1", "r3"]
    assert [(e["path"], e["filename"], e["errno"]) for e in doc["errors"]] == [
        (str(locked.parent), str(locked), 13)], doc
    # nothing of r2 was renamed or removed: it is whole under its name
    assert (locked / "a.txt").read_text() == "r2"
    assert sorted(os.listdir(site / "releases")) == ["r2", "r4", "r5"]


# --------------------------------------------------------------------- rollback


def test_rollback_walks_back_then_exit_1(site: pathlib.Path) -> None:
    res = realdoc.rollback(site / "current")
    assert (res.old, res.new) == ("releases/r3", "releases/r2")
    assert os.readlink(site / "current") == "releases/r2"
    code, out, err = run_cli("rollback", str(site / "current"))
    assert code == 0, err
    assert out == "old: releases/r2\nnew: releases/r1\n"
    code, out, err = run_cli("rollback", str(site / "current"))
    assert code == 1 and "no previous release" in err and out == ""
    assert os.readlink(site / "current") == "releases/r1"
    with pytest.raises(NoPreviousRelease):
        realdoc.rollback(site / "current")
    assert sorted(os.listdir(site)) == ["current", "releases"]


def test_rollback_ab_flips_the_letter(tmp_path: pathlib.Path) -> None:
    site = tmp_path / "s"
    make_site(site)
    os.unlink(site / "current")
    realdoc.switch(site / "current", site / "releases" / "r1", ab=True)
    realdoc.switch(site / "current", site / "releases" / "r3", ab=True)
    assert os.readlink(site / "current") == "B"
    assert realdoc.status(site / "current").previous == str(site / "releases" / "r1")
    res = realdoc.rollback(site / "current")
    assert res.letter == "A" and (res.old, res.new) == ("releases/r3", "releases/r1")
    assert os.readlink(site / "current") == "A"
    assert (os.readlink(site / "A"), os.readlink(site / "B")) == ("releases/r1", "releases/r3")
    code, out, err = run_cli("rollback", str(site / "current"), "--json")
    assert code == 0, err
    assert json.loads(out)["letter"] == "B" and os.readlink(site / "current") == "B"
    assert sorted(os.listdir(site)) == ["A", "B", "current", "releases"]


def test_rollback_conflict_exit_3(site: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deploy between rollback's read and its flip: the compare-and-swap refuses."""
    real_layout = _lifecycle._layout

    def racing(link: str, releases: Any) -> Any:
        layout = real_layout(link, releases)
        os.mkdir(site / "releases" / "r9")
        realdoc.switch(site / "current", site / "releases" / "r9")  # the concurrent deploy
        return layout

    monkeypatch.setattr(_lifecycle, "_layout", racing)
    with pytest.raises(realdoc.SwitchConflict):
        realdoc.rollback(site / "current")
    assert os.readlink(site / "current") == "releases/r9"
    os.unlink(site / "current")
    os.symlink("releases/r3", site / "current")
    os.rmdir(site / "releases" / "r9")
    assert main(["rollback", str(site / "current")]) == 3
    assert os.readlink(site / "current") == "releases/r9"


# ------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("command", [["status"], ["prune", "--keep", "1"], ["rollback"]])
def test_bad_link_exit_1(tmp_path: pathlib.Path, command: List[str]) -> None:
    site = make_site(tmp_path / "s")
    (site / "afile").write_text("x")
    os.symlink("releases/nothing", site / "dangling")
    cmd, *opts = command
    for link, words in (("missing", "No such file"), ("afile", "not a symlink"),
                        ("releases", "not a symlink"), ("dangling", "No such file")):
        code, out, err = run_cli(cmd, str(site / link), *opts)
        assert code == 1, (link, err)
        assert words in err and err.count("\n") == 1 and out == ""
    if cmd != "rollback":  # rollback has no --releases: its releases are LINK's
        code, out, err = run_cli(cmd, str(site / "current"), *opts, "--releases",
                                 str(site / "nope"))
        assert code == 1 and "No such" in err and out == ""


@pytest.mark.parametrize("keep", ["-1", "abc", "1.5", ""])
def test_prune_bad_keep_exit_2(site: pathlib.Path, keep: str) -> None:
    code, out, err = run_cli("prune", str(site / "current"), "--keep", keep)
    assert code == 2 and "--keep" in err and out == ""
    assert sorted(os.listdir(site / "releases")) == ["r1", "r2", "r3"]


def test_prune_usage_errors(site: pathlib.Path) -> None:
    assert run_cli("prune", str(site / "current"))[0] == 2  # --keep is required
    assert run_cli("prune", str(site / "current"), "--keep", "1", "--min-age", "-3")[0] == 2
    assert run_cli("prune", str(site / "current"), "--keep", "1", "--min-age", "nan")[0] == 2
    with pytest.raises(ValueError):
        realdoc.prune(site / "current", keep=-1)
    for bad in ("1", True, 1.0, None):
        with pytest.raises(TypeError):
            realdoc.prune(site / "current", keep=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        realdoc.prune(site / "current", keep=1, min_age=float("nan"))
    with pytest.raises(TypeError):
        realdoc.status(b"current")  # type: ignore[arg-type]
    assert realdoc.prune(site / "current", 0, dry_run=True).deleted == (
        str(site / "releases" / "r1"),)  # keep may be given by position
    assert sorted(os.listdir(site / "releases")) == ["r1", "r2", "r3"]


def test_nothing_beside_the_link_after_100_switches_prunes_and_rollbacks(
        tmp_path: pathlib.Path) -> None:
    site = make_site(tmp_path / "s", ("r0",))
    for i in range(1, 101):
        os.mkdir(site / "releases" / f"r{i}")
        realdoc.switch(site / "current", site / "releases" / f"r{i}", ab=i % 2 == 0)
        if i % 10 == 0:
            realdoc.rollback(site / "current")
        realdoc.prune(site / "current", keep=2)
    assert sorted(os.listdir(site)) == ["A", "B", "current", "releases"]
    assert not [n for n in os.listdir(site / "releases") if n.startswith(".")]
    assert len(os.listdir(site / "releases")) <= 4


# ---------------------------------------------------------------- prune storm

STORM_SECONDS = 5.0
DEPLOY_INTERVAL = 0.1
REQUEST_PAUSE = 0.2
CLIENTS = 8


@contextlib.contextmanager
def gunicorn_gthread(tree: DeployTree, log: pathlib.Path) -> Iterator[int]:
    """gunicorn gthread (2 workers x 4 threads) serving realdoc_testapp, every=0."""
    pytest.importorskip("gunicorn")
    port = free_port()
    env = child_env(str(APPS), REALDOC_DOCROOT=tree.docroot, REALDOC_EVERY="0",
                    TESTAPP_PAUSE=str(REQUEST_PAUSE), PYTHONUNBUFFERED="1")
    env.pop("REALDOC_USE_READLINK", None)
    argv = [sys.executable, "-m", "gunicorn", "--workers", "2", "--worker-class", "gthread",
            "--threads", "4", "--graceful-timeout", "2", "--bind", f"127.0.0.1:{port}",
            "realdoc_testapp:wsgi_app"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=env, cwd=str(APPS), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "gunicorn did not answer"
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/pid")
                if c.getresponse().status == 200:
                    c.close()
                    break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        stop_process_group(proc)


def naive_prune(tree: DeployTree) -> None:
    """What Capistrano's cleanup does with keep 1: rm -rf every release but the current."""
    releases = os.path.join(tree.root, "releases")
    current = os.path.basename(os.path.realpath(tree.current))
    for name in os.listdir(releases):
        if name != current:
            shutil.rmtree(os.path.join(releases, name), ignore_errors=True)


def realdoc_prune(tree: DeployTree) -> None:
    realdoc.prune(tree.current, keep=1)


def storm(tree: DeployTree, port: int, prune: Callable[[DeployTree], None]) -> Dict[str, Any]:
    """Clients send 200 ms requests while a deploy + prune runs every 100 ms."""
    stop = time.monotonic() + STORM_SECONDS
    lock = threading.Lock()
    tally: Dict[str, Any] = {"requests": 0, "failed": 0, "torn": 0, "deploys": 0,
                             "max_releases": 0, "samples": [], "pinned_seen": set()}

    def client() -> None:
        while time.monotonic() < stop:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", "/with")
                resp = c.getresponse()
                status, body = resp.status, resp.read().decode("utf-8", "replace")
                c.close()
            except OSError as exc:
                status, body = 0, repr(exc)
            words = body.split()
            with lock:
                tally["requests"] += 1
                if status != 200 or len(words) != 2:
                    tally["failed"] += 1
                    if len(tally["samples"]) < 3:
                        tally["samples"].append(f"{status} {body[:200]}")
                elif words[0] != words[1]:
                    tally["torn"] += 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    n = len(tree.releases)
    while time.monotonic() < stop:
        n += 1
        tree.add_release(f"r{n}")
        realdoc.switch(tree.current, os.path.join(tree.root, "releases", f"r{n}"))
        prune(tree)
        tally["deploys"] += 1
        if tally["deploys"] % 10 == 5:  # a live gunicorn worker, seen on its release
            for rel in realdoc.status(tree.current).releases:
                for use in rel.processes:
                    if "pinned by realdoc" in use.how and "gunicorn" in use.cmdline:
                        tally["pinned_seen"].add(use.pid)
        count = len(os.listdir(os.path.join(tree.root, "releases")))
        tally["max_releases"] = max(tally["max_releases"], count)
        time.sleep(DEPLOY_INTERVAL)
    for t in threads:
        t.join(30)
    prune(tree)
    tally["final_releases"] = len(os.listdir(os.path.join(tree.root, "releases")))
    return tally


@pytest.mark.servers
@pytest.mark.parametrize("pruner", ["realdoc", "naive"])
def test_prune_storm_under_gunicorn(tmp_path: pathlib.Path, pruner: str) -> None:
    tree = DeployTree.create(str(tmp_path / "site"), releases=2)
    with gunicorn_gthread(tree, tmp_path / "gunicorn.log") as port:
        tally = storm(tree, port, realdoc_prune if pruner == "realdoc" else naive_prune)
    print(f"prune storm ({pruner}): {tally}")
    assert tally["requests"] >= 50 and tally["deploys"] >= 20, tally
    if pruner == "realdoc":
        assert tally["failed"] == 0 and tally["torn"] == 0, tally
        # it still deleted what nothing used: the count stays small, and once the
        # requests ended only current and previous are left
        assert tally["max_releases"] <= 10, tally
        assert tally["final_releases"] == 2, tally
        assert tally["pinned_seen"], "status never showed a worker on its release"
    else:
        assert tally["failed"] > tally["requests"] // 2, tally


PINNED = textwrap.dedent("""
    import os, sys, time
    import realdoc
    app_dir, ready = sys.argv[1], sys.argv[2]
    realdoc.pin_process(app_dir, rollover=False)
    if os.fork() == 0:          # a forked worker keeps its parent's pin
        open(ready, "w").close()
        time.sleep(30)
        os._exit(0)
    time.sleep(30)
""")


def test_process_pin_mark_held_for_life_and_across_fork(site: pathlib.Path,
                                                        tmp_path: pathlib.Path) -> None:
    """A process pinned with pin_process: its release stays in use with no request."""
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", PINNED, str(site / "current"), str(ready)],
                            env=child_env(), cwd="/", start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        os.makedirs(site / "releases" / "r4" / "public")
        os.makedirs(site / "releases" / "r5" / "public")
        realdoc.switch(site / "current", site / "releases" / "r4")
        realdoc.switch(site / "current", site / "releases" / "r5")
        row = {r.name: r for r in realdoc.status(site / "current").releases}["r3"]
        assert proc.pid in row.pids and len(row.pids) == 2  # the parent and its fork
        assert {p.how for p in row.processes} == {("pinned by realdoc",)}
        assert all(p.stale for p in row.processes)
        res = realdoc.prune(site / "current", keep=0)
        assert names(res.deleted) == ["r1", "r2"]
        assert {k.name: k.reasons for k in res.kept}["r3"] == ("in use",)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10  # the forked child dies with its group
    while {r.name: r for r in realdoc.status(site / "current").releases}["r3"].pids:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert names(realdoc.prune(site / "current", keep=0).deleted) == ["r3"]


def test_asgi_request_marks_its_release(site: pathlib.Path) -> None:
    import asyncio

    from realdoc.asgi import RealdocMiddleware

    seen: List[int] = []
    root = str(site / "releases" / "r3")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(_inuse.held().get(root, 0))
        res = realdoc.prune(site / "current", keep=0)  # r3 is current; r1 goes
        assert names(res.deleted) == ["r1"]

    mw = RealdocMiddleware(app, str(site / "current" / "public"), every=0)
    asyncio.run(mw({"type": "http"}, None, None))  # type: ignore[arg-type]
    assert seen == [1] and root not in _inuse.held()


MARK_SETUP = """
import os
from realdoc.wsgi import RealdocMiddleware
from realdoc import _inuse, switch
DOCROOT = {docroot!r}
def app(environ, start_response):
    return [b"ok"]
mw = RealdocMiddleware(app, DOCROOT, every={every})
assert mw({{}}, None) == [b"ok"]
"""


@pytest.mark.parametrize("impl_name", ["cython", "python"])
def test_mark_syscalls_hit_none_change_five(site: pathlib.Path, impl_name: str) -> None:
    """A request on the release already marked costs no syscall; a change of release 5."""
    from realdoc.testing import count_syscalls_in_child
    from realdoc.testing.plugin import require_strace

    require_strace()
    env = child_env()
    if impl_name == "python":
        env["REALDOC_NO_EXTENSIONS"] = "1"
    else:
        pytest.importorskip("realdoc._fastpath")
    setup = MARK_SETUP.format(docroot=str(site / "current" / "public"), every=3600)
    hits = count_syscalls_in_child("for _ in range(100):\n    mw({}, None)", setup=setup,
                                   env=env)
    assert hits.total == 0, hits.counts
    os.makedirs(site / "releases" / "r4" / "public")
    # the Resolver already answers r4 from its cache; the first request on r4 takes
    # the new mark (open, flock, fstat, stat) and drops r3's (close); the next is a hit
    setup += (f"switch({str(site / 'current')!r}, {str(site / 'releases' / 'r4')!r})\n"
              "mw.resolver.refresh()\n")
    change = count_syscalls_in_child("mw({}, None)\nmw({}, None)", setup=setup, env=env)
    calls = {k: v for k, v in change.counts.items() if v}
    assert change.total == 5, calls
    assert (calls.get("openat"), calls.get("flock"), calls.get("close")) == (1, 1, 1), calls
