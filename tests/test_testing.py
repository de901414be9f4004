"""Tests of realdoc's test helpers: DeployTree, Flipper and the strace syscall counters."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Union

import pytest

import realdoc
from realdoc.testing import (
    SyscallTrace,
    count_syscalls,
    count_syscalls_in_child,
    strace_available,
)
from realdoc.testing.plugin import require_strace
from realdoc.testing.strace import _between_markers
from realdoc.testing.tree import DeployTree, Flipper

# x86_64 glibc issues readlink(2); other architectures only have readlinkat(2).
READLINK = ("readlink", "readlinkat")


def readlinks(trace: SyscallTrace) -> int:
    return sum(trace.counts[name] for name in READLINK)


@pytest.fixture
def link(tmp_path: Path) -> str:
    target = tmp_path / "target"
    target.mkdir()
    path = tmp_path / "link"
    path.symlink_to(target)
    return str(path)


@pytest.fixture
def strace() -> None:
    require_strace()


# ----------------------------------------------------------------------------- DeployTree


def test_create_layout(tmp_path: Path) -> None:
    tree = DeployTree.create(tmp_path, releases=3, files=("a.txt", "css/site.css"))
    root = str(tmp_path)
    assert tree.root == root
    assert tree.releases == ["r1", "r2", "r3"]
    assert tree.current == os.path.join(root, "current")
    assert tree.docroot == os.path.join(root, "current", "public")
    assert os.readlink(tree.current) == "releases/r1"
    assert tree.current_release() == "r1"
    for name in tree.releases:
        public = tmp_path / "releases" / name / "public"
        assert (public / "a.txt").read_text() == name
        assert (public / "css" / "site.css").read_text() == name
        assert tree.release_path(name) == os.path.realpath(tmp_path / "releases" / name)
    assert (Path(tree.docroot) / "a.txt").read_text() == "r1"
    assert sorted(os.listdir(root)) == ["current", "releases"]


def test_deploy_tree_fixture(deploy_tree: DeployTree, tmp_path: Path) -> None:
    assert deploy_tree.root.startswith(str(tmp_path))
    assert deploy_tree.releases == ["r1", "r2", "r3"]
    assert deploy_tree.current_release() == "r1"


def test_create_refuses_existing_tree_and_bad_args(tmp_path: Path) -> None:
    DeployTree.create(tmp_path)
    with pytest.raises(FileExistsError):
        DeployTree.create(tmp_path)
    with pytest.raises(ValueError):
        DeployTree.create(tmp_path / "x", releases=0)
    with pytest.raises(ValueError):
        DeployTree.create(tmp_path / "y", files=("../escape",))


def test_wrap_existing_tree_sorts_naturally(tmp_path: Path) -> None:
    tree = DeployTree.create(tmp_path, releases=2)
    for i in range(3, 12):
        tree.add_release(f"r{i}")
    assert DeployTree(tmp_path).releases == [f"r{i}" for i in range(1, 12)]


@pytest.mark.parametrize("atomic", [True, False], ids=["atomic", "unlink-symlink"])
def test_flip(deploy_tree: DeployTree, atomic: bool) -> None:
    deploy_tree.flip("r2", atomic=atomic)
    assert deploy_tree.current_release() == "r2"
    assert os.readlink(deploy_tree.current) == "releases/r2"
    assert (Path(deploy_tree.docroot) / "b.txt").read_text() == "r2"
    deploy_tree.flip("r3", atomic=atomic)
    assert deploy_tree.current_release() == "r3"
    # no temporary links are left behind
    assert sorted(os.listdir(deploy_tree.root)) == ["current", "releases"]


def test_flip_checks_release(deploy_tree: DeployTree) -> None:
    with pytest.raises(FileNotFoundError):
        deploy_tree.flip("r9")
    with pytest.raises(ValueError):
        deploy_tree.flip("../r1")
    assert deploy_tree.current_release() == "r1"
    deploy_tree.flip("r9", allow_missing=True)  # a dangling link, on purpose
    assert deploy_tree.current_release() == "r9"
    assert not os.path.exists(deploy_tree.docroot)


def test_add_release(deploy_tree: DeployTree) -> None:
    path = deploy_tree.add_release("r4")
    assert path == deploy_tree.release_path("r4")
    assert deploy_tree.releases[-1] == "r4"
    assert (Path(path) / "public" / "a.txt").read_text() == "r4"
    deploy_tree.flip("r4")
    assert deploy_tree.current_release() == "r4"
    with pytest.raises(FileExistsError):
        deploy_tree.add_release("r4")


# ----------------------------------------------------------------------------- Flipper


def test_flipper_max_flips(deploy_tree: DeployTree) -> None:
    flipper = Flipper(deploy_tree, max_flips=50).start()
    assert flipper.wait(10)
    flipper.stop()
    assert flipper.flips == 50
    # 50 flips from r1 through r2, r3, r1, ...: 50 % 3 == 2 -> r3
    assert deploy_tree.current_release() == "r3"


def test_flipper_max_seconds(deploy_tree: DeployTree) -> None:
    t0 = time.monotonic()
    with Flipper(deploy_tree, interval=0.01, max_seconds=0.3) as flipper:
        assert flipper.wait(10)
    elapsed = time.monotonic() - t0
    assert 0.3 <= elapsed < 5
    assert 1 <= flipper.flips <= 31
    assert not flipper.running


@pytest.mark.parametrize("atomic", [True, False, "mixed"])
def test_flipper_stop_leaves_a_link(deploy_tree: DeployTree, atomic: Union[bool, str]) -> None:
    seen: List[str] = []
    with Flipper(deploy_tree, atomic=atomic, max_seconds=10) as flipper:
        deadline = time.monotonic() + 5
        while flipper.flips < 200 and time.monotonic() < deadline:
            try:
                seen.append(deploy_tree.current_release())
            except FileNotFoundError:  # inside an unlink+symlink flip
                assert atomic is not True
    assert flipper.flips >= 200
    assert not flipper.running
    assert deploy_tree.current_release() in deploy_tree.releases
    assert set(seen) <= set(deploy_tree.releases)
    assert sorted(os.listdir(deploy_tree.root)) == ["current", "releases"]


def test_flipper_reraises_thread_error(deploy_tree: DeployTree) -> None:
    os.rename(deploy_tree.release_path("r2"), deploy_tree.release_path("gone"))
    flipper = Flipper(deploy_tree).start()
    assert flipper.wait(10)
    with pytest.raises(FileNotFoundError, match="r2"):
        flipper.stop()
    assert flipper.flips == 0
    flipper.stop()  # the error is raised once


def test_flipper_validates(deploy_tree: DeployTree, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Flipper(deploy_tree, atomic="sometimes")
    with pytest.raises(ValueError):
        Flipper(deploy_tree, max_seconds=float("inf"))
    with pytest.raises(ValueError):
        Flipper(DeployTree.create(tmp_path / "one", releases=1))


# ----------------------------------------------------------------------------- strace parser

_TRACE = """\
100   execve("/usr/bin/python3", ["python3", "-c", "import os as _r\\n_r.stat(\\"/realdoc-syscall-marker/"...], 0x7ffd /* 3 vars */) = 0
100   newfstatat(AT_FDCWD, "/m/BEGIN-x", 0x7ffd, 0) = -1 ENOENT (No such file or directory)
101   futex(0x7f, FUTEX_WAIT, 0, NULL <unfinished ...>
100   readlink("/l", <unfinished ...>
101   <... futex resumed>)                  = 0
100   <... readlink resumed>"t", 4096) = 1
101   readlink("/other", "t", 4096) = 1
[pid   100] openat(AT_FDCWD, "/f", O_RDONLY) = 3
100   read(3, "\\"/m/END-x\\"", 4096) = 10
100   --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED} ---
100   rt_sigreturn({mask=[]}) = 0
100   newfstatat(AT_FDCWD, "/m/END-x", 0x7ffd, 0) = -1 ENOENT (No such file or directory)
100   readlink("/after", "t", 4096) = 1
101   +++ exited with 0 +++
"""  # noqa: E501 (a verbatim strace line)


def test_between_markers_parses_strace_output() -> None:
    counts, lines = _between_markers(_TRACE.splitlines(), "/m/BEGIN-x", "/m/END-x")
    assert dict(counts) == {"readlink": 1, "openat": 1, "read": 1, "rt_sigreturn": 1}
    assert lines[0].startswith("100   readlink(")
    # restricted to another thread: its BEGIN never appears
    with pytest.raises(RuntimeError, match="BEGIN"):
        _between_markers(_TRACE.splitlines(), "/m/BEGIN-x", "/m/END-x", tid=101)
    with pytest.raises(RuntimeError, match="END"):
        _between_markers(_TRACE.splitlines()[:5], "/m/BEGIN-x", "/m/END-x")


def test_per_call() -> None:
    trace = SyscallTrace(counts=collections.Counter(readlink=10, brk=3), repeat=4)
    assert trace.total == 13
    assert dict(trace.per_call) == {"readlink": 2}


# ----------------------------------------------------------------------------- strace, child


def test_strace_available_is_cached_bool() -> None:
    assert strace_available() is strace_available()
    assert isinstance(strace_available(), bool)


@pytest.mark.usefixtures("strace")
def test_child_counts_one_readlink(link: str) -> None:
    trace = count_syscalls_in_child("os.readlink(P)", setup=f"import os; P = {link!r}")
    assert dict(trace.counts) == {"readlink": 1}
    assert trace.total == 1
    assert link in trace.lines[0]


@pytest.mark.usefixtures("strace")
def test_child_counts_two_readlinks(link: str) -> None:
    trace = count_syscalls_in_child(
        "os.readlink(P); os.readlink(P)", setup=f"import os; P = {link!r}"
    )
    assert dict(trace.counts) == {"readlink": 2}


@pytest.mark.usefixtures("strace")
def test_child_without_baseline_excludes_setup(link: str) -> None:
    # setup resolves the link 5 times; only the measured call is counted
    trace = count_syscalls_in_child(
        "os.readlink(P)",
        setup=f"import os; P = {link!r}\nfor _ in range(5): os.readlink(P)",
        subtract_baseline=False,
    )
    assert readlinks(trace) == 1
    assert trace.baseline is None


@pytest.mark.usefixtures("strace")
def test_child_ignores_other_threads(link: str) -> None:
    setup = f"""
        import os, threading, time
        P = {link!r}
        stop = threading.Event()
        done = [0]
        def spin():
            while not stop.is_set():
                os.readlink(P)
                done[0] += 1
        t = threading.Thread(target=spin, daemon=True)  # the baseline run never stops it
        t.start()
        while done[0] < 10:
            time.sleep(0.001)
    """
    code = """
        os.readlink(P)
        start = done[0]
        while done[0] < start + 50:
            time.sleep(0.001)
        stop.set()
        t.join()
    """
    trace = count_syscalls_in_child(code, setup=setup)
    assert readlinks(trace) == 1


@pytest.mark.usefixtures("strace")
def test_child_failure_raises_with_stderr() -> None:
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        count_syscalls_in_child("1/0")


# ----------------------------------------------------------------------------- strace, in process


def test_count_syscalls_one_readlink(
    syscall_counter: Callable[..., SyscallTrace], link: str
) -> None:
    trace = syscall_counter(lambda: os.readlink(link))
    assert readlinks(trace) == 1
    assert trace.counts["readlink"] == 1  # x86_64 glibc name


def test_count_syscalls_repeat(syscall_counter: Callable[..., SyscallTrace], link: str) -> None:
    trace = syscall_counter(lambda: os.readlink(link), repeat=10)
    assert trace.counts["readlink"] == 10
    assert trace.repeat == 10
    assert trace.per_call["readlink"] == 1


@pytest.fixture
def busy_thread(link: str) -> Iterator[List[int]]:
    """A thread calling readlink in a loop; yields its live iteration count."""
    done = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            os.readlink(link)
            done[0] += 1

    t = threading.Thread(target=spin, daemon=True)
    t.start()
    yield done
    stop.set()
    t.join()


def test_count_syscalls_ignores_other_threads(
    syscall_counter: Callable[..., SyscallTrace], link: str, busy_thread: List[int]
) -> None:
    during: List[int] = []

    def func() -> None:
        os.readlink(link)
        start = busy_thread[0]
        deadline = time.monotonic() + 10
        while busy_thread[0] < start + 50 and time.monotonic() < deadline:
            time.sleep(0.001)
        during.append(busy_thread[0] - start)

    trace = syscall_counter(func)
    assert during[0] >= 50  # the other thread really ran inside the window
    assert readlinks(trace) == 1


def test_count_syscalls_from_a_worker_thread(
    syscall_counter: Callable[..., SyscallTrace], link: str
) -> None:
    result: List[SyscallTrace] = []
    t = threading.Thread(target=lambda: result.append(syscall_counter(lambda: os.readlink(link))))
    t.start()
    t.join(60)
    assert readlinks(result[0]) == 1


def test_count_syscalls_propagates_and_detaches(
    syscall_counter: Callable[..., SyscallTrace], link: str
) -> None:
    with pytest.raises(ZeroDivisionError):
        syscall_counter(lambda: 1 / 0)
    # strace has detached: a second count attaches again and works
    assert readlinks(count_syscalls(lambda: os.readlink(link))) == 1
    assert "TracerPid:\t0" in Path("/proc/self/status").read_text()


# -- regression of issue 14 (item 3): the plugin never changes a user's test run -----

#: Where the realdoc under test lives (src/ in a checkout, site-packages when installed).
_REALDOC_PARENT = Path(realdoc.__file__).resolve().parent.parent

#: Makes ``realdoc._fastpath`` unimportable in a child, so realdoc falls back to the
#: pure core and warns (what a user with the pure build installed gets).
_NO_COMPILED_CORE = '''
import sys

class _NoCompiledCore:
    def find_spec(self, name, path=None, target=None):
        if name == "realdoc._fastpath":
            raise ImportError("realdoc._fastpath is blocked by the test")
        return None

sys.meta_path.insert(0, _NoCompiledCore())
'''


def _pytest11_entry_points() -> Optional[str]:
    """entry_points.txt text registering the pytest11 plugins realdoc's pyproject declares.

    None when realdoc is installed (the child then sees its real registration) or
    declares none.  In a checkout, this is what ``pip install`` would register.
    """
    import importlib.metadata as md

    try:
        md.distribution("realdoc")
        return None
    except md.PackageNotFoundError:
        pass
    pyproject = _REALDOC_PARENT.parent / "pyproject.toml"
    lines: List[str] = []
    inside = False
    for line in pyproject.read_text().splitlines():
        if line.strip().startswith("["):
            inside = line.strip() == "[project.entry-points.pytest11]"
            continue
        if inside and "=" in line:
            lines.append(line.strip())
    return "[pytest11]\n" + "\n".join(lines) + "\n" if lines else None


def _user_project(tmp_path: Path) -> dict:  # type: ignore[type-arg]
    """A throwaway project with ``filterwarnings = error``; return the child's env."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\nfilterwarnings =\n    error\n")
    (project / "test_user.py").write_text("def test_user_code():\n    assert 1 + 1 == 2\n")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_NO_COMPILED_CORE)
    entry_points = _pytest11_entry_points()
    if entry_points is not None:  # register them as an install would
        info = site / "realdoc-0.0.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: realdoc\nVersion: 0.0.0\n")
        (info / "entry_points.txt").write_text(entry_points)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "REALDOC_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(_REALDOC_PARENT)])
    return env


def _child_pytest(tmp_path: Path, env: dict, *args: str) -> "subprocess.CompletedProcess[str]":  # type: ignore[type-arg]
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                           cwd=tmp_path / "project", env=env, capture_output=True, text=True,
                           timeout=120)


def test_plugin_does_not_touch_a_users_suite(tmp_path: Path) -> None:
    """Item 3: with realdoc importable and the pure core only, a user's strict suite passes.

    The set-up can fail: importing realdoc in that child warns, and with
    ``filterwarnings = error`` an auto-loaded plugin aborted the suite (0.1.0).
    """
    env = _user_project(tmp_path)
    probe = subprocess.run([sys.executable, "-W", "error", "-c", "import realdoc"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0 and "RuntimeWarning" in probe.stderr, probe  # the trap is armed

    run = _child_pytest(tmp_path, env, "-q")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    fixtures = _child_pytest(tmp_path, env, "--fixtures")
    assert fixtures.returncode == 0, fixtures.stdout + fixtures.stderr
    assert "deploy_tree" not in fixtures.stdout
    assert "syscall_counter" not in fixtures.stdout


def test_plugin_is_loaded_on_request_with_p(tmp_path: Path) -> None:
    """``-p realdoc.testing`` loads it (the fixtures are listed)."""
    env = _user_project(tmp_path)
    env.pop("PYTHONPATH")  # the compiled core, if built: no fallback warning to trip on
    env["PYTHONPATH"] = str(_REALDOC_PARENT)
    fixtures = _child_pytest(tmp_path, env, "-p", "realdoc.testing", "--fixtures",
                             "-W", "ignore::RuntimeWarning")
    assert fixtures.returncode == 0, fixtures.stdout + fixtures.stderr
    assert "deploy_tree" in fixtures.stdout
    assert "syscall_counter" in fixtures.stdout


# ----------------------------------------------------------- realdoc.testing.servers

def test_free_port_can_be_bound() -> None:
    import socket

    from realdoc.testing import free_port

    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # nothing took it meanwhile


def test_stop_process_group_ends_the_leader_and_its_workers() -> None:
    """A leader that ignores SIGTERM, with a worker: both end (SIGKILL after ``timeout``)."""
    from realdoc.testing import stop_process_group

    code = ("import signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "w = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            "print(w.pid, flush=True)\n"
            "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    worker = int(proc.stdout.readline())
    status = stop_process_group(proc, timeout=1.0)
    proc.stdout.close()
    assert status == -9  # SIGTERM was ignored: SIGKILL ended it
    end = time.monotonic() + 10  # the worker, now init's child, is reaped by it
    while time.monotonic() < end:
        try:
            with open(f"/proc/{worker}/stat") as f:
                if f.read().split(") ", 1)[1][0] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.01)
    else:
        pytest.fail(f"worker {worker} outlived stop_process_group")
    assert stop_process_group(proc) == -9  # a group already gone is not an error
