"""Watch mode (``watch=True``, #11): inotify expires exactly the Resolvers a link change
concerns, on both cores, with real symlink trees and real rename(2) flips.

Every test that shows a flip seen at once with ``watch=True`` uses ``every=3600``, so a
Resolver that did not get the event would keep the old value for an hour: the
unwatched control in the same test shows it does.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import time
from types import ModuleType
from typing import Any, Callable, List, Set, Tuple

import pytest
from helpers import child_env, fork_call

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")

#: How long a test waits for the reader thread to deliver an event (the target is ~1 ms).
DEADLINE = 5.0


def wait_for(fn: Callable[[], Any], want: Any, deadline: float = DEADLINE) -> Any:
    """Call ``fn`` every 100 µs until it returns ``want``; return what it returned last."""
    end = time.monotonic() + deadline
    got = fn()
    while got != want and time.monotonic() < end:
        time.sleep(0.0001)
        got = fn()
    return got


def atomic_flip(link: str, target: str) -> None:
    tmp = f"{link}.tmp{os.getpid()}"
    os.symlink(target, tmp)
    os.rename(tmp, link)  # IN_MOVED_TO


def lnsfn_flip(link: str, target: str) -> None:
    """``ln -sfn`` of old coreutils: unlink, then symlink (IN_DELETE, IN_CREATE)."""
    os.unlink(link)
    os.symlink(target, link)


@pytest.fixture
def app(tmp_path: pathlib.Path) -> str:
    """``app/releases/r1|r2|r3``, ``app/current -> releases/r1``; returns app's path."""
    a = tmp_path / "app"
    for r in ("r1", "r2", "r3"):
        (a / "releases" / r).mkdir(parents=True)
    os.symlink("releases/r1", a / "current")
    return str(a)


def fdinfo_watches(impl: ModuleType) -> int:
    """inotify watch lines of this core's instance in /proc/self/fdinfo (0 without one)."""
    fd = impl._watcher.fd
    if fd < 0:
        return 0
    with open(f"/proc/self/fdinfo/{fd}") as f:
        return sum(line.startswith("inotify wd:") for line in f)


@pytest.mark.parametrize("flip", [atomic_flip, lnsfn_flip], ids=["rename", "ln-sfn"])
def test_flip_is_seen_at_once(impl: ModuleType, app: str, flip: Any) -> None:
    cur = f"{app}/current"
    watched = impl.Resolver(cur, every=3600, watch=True)
    plain = impl.Resolver(cur, every=3600)
    assert watched() == plain() == f"{app}/releases/r1"
    assert watched.watching and watched.watch and not plain.watching
    flip(cur, "releases/r2")
    assert wait_for(watched, f"{app}/releases/r2") == f"{app}/releases/r2"
    assert plain() == f"{app}/releases/r1"  # the control: no event, an hour of every
    assert watched.events >= 1 and plain.events == 0
    assert impl.stats()["events"] >= 1


def test_second_level_link(impl: ModuleType, app: str) -> None:
    """``current -> A -> releases/r1``: a flip of A is seen, and so is one of current."""
    os.symlink("releases/r1", f"{app}/A")
    os.symlink("releases/r2", f"{app}/B")
    atomic_flip(f"{app}/current", "A")
    r = impl.Resolver(f"{app}/current", every=3600, watch=True)
    assert r() == f"{app}/releases/r1"
    atomic_flip(f"{app}/A", "releases/r3")
    assert wait_for(r, f"{app}/releases/r3") == f"{app}/releases/r3"
    atomic_flip(f"{app}/current", "B")
    assert wait_for(r, f"{app}/releases/r2") == f"{app}/releases/r2"


def test_link_in_another_directory(impl: ModuleType, tmp_path: pathlib.Path) -> None:
    """``site/current -> ../shared/A``, ``shared/A -> releases/r1``: both directories are
    watched, an event in either expires the Resolver."""
    (tmp_path / "shared" / "releases" / "r1").mkdir(parents=True)
    (tmp_path / "shared" / "releases" / "r2").mkdir(parents=True)
    (tmp_path / "site").mkdir()
    os.symlink("releases/r1", tmp_path / "shared" / "A")
    os.symlink("../shared/A", tmp_path / "site" / "current")
    r = impl.Resolver(str(tmp_path / "site" / "current"), every=3600, watch=True)
    assert r() == str(tmp_path / "shared" / "releases" / "r1")
    assert impl.stats()["watches"] == 2
    atomic_flip(str(tmp_path / "shared" / "A"), "releases/r2")
    want = str(tmp_path / "shared" / "releases" / "r2")
    assert wait_for(r, want) == want


def test_only_concerned_resolvers_expire(impl: ModuleType, tmp_path: pathlib.Path) -> None:
    """An event on one link name expires the Resolvers of that link, not their neighbours
    in the same directory."""
    for r in ("r1", "r2"):
        (tmp_path / "releases" / r).mkdir(parents=True)
    os.symlink("releases/r1", tmp_path / "one")
    os.symlink("releases/r1", tmp_path / "two")
    one = impl.Resolver(str(tmp_path / "one"), every=3600, watch=True)
    two = impl.Resolver(str(tmp_path / "two"), every=3600, watch=True)
    one(), two()
    assert impl.stats()["watches"] == 1  # one directory, one watch descriptor
    (tmp_path / "unrelated").mkdir()  # an event on another name in the same directory
    atomic_flip(str(tmp_path / "one"), "releases/r2")
    assert wait_for(one, str(tmp_path / "releases/r2")) == str(tmp_path / "releases/r2")
    misses = impl.stats()["misses"]
    assert two() == str(tmp_path / "releases/r1")
    assert impl.stats()["misses"] == misses and two.events == 0


def test_delete_then_create_again(impl: ModuleType, app: str) -> None:
    """IN_DELETE: the link goes (on_error="raise" raises at once); IN_CREATE: it comes
    back, and the Resolver answers at once."""
    cur = f"{app}/current"
    r = impl.Resolver(cur, every=3600, watch=True, on_error="raise")
    assert r() == f"{app}/releases/r1"
    os.unlink(cur)

    def outcome() -> Any:
        try:
            return r()
        except FileNotFoundError:
            return "missing"

    assert wait_for(outcome, "missing") == "missing"
    os.symlink("releases/r2", cur)
    assert wait_for(outcome, f"{app}/releases/r2") == f"{app}/releases/r2"


def test_missing_link_created_later(impl: ModuleType, app: str) -> None:
    """A docroot whose link does not exist yet is watched where it will appear."""
    r = impl.Resolver(f"{app}/next", every=3600, watch=True, on_error="passthrough")
    assert r() == f"{app}/next"
    os.symlink("releases/r3", f"{app}/next")
    assert wait_for(r, f"{app}/releases/r3") == f"{app}/releases/r3"


@pytest.mark.parametrize("how", ["move", "delete"])
def test_directory_holding_the_link_replaced(
        impl: ModuleType, tmp_path: pathlib.Path, how: Any) -> None:
    """IN_MOVE_SELF / IN_DELETE_SELF: the directory that holds ``current`` is moved away
    (or deleted) and a new one takes its place; the Resolver follows the new one."""
    for r in ("r1", "r2"):
        (tmp_path / "releases" / r).mkdir(parents=True)
    holder = tmp_path / "site"
    holder.mkdir()
    os.symlink("../releases/r1", holder / "current")
    r = impl.Resolver(str(holder / "current"), every=3600, watch=True)
    assert r() == str(tmp_path / "releases" / "r1")
    if how == "move":
        os.rename(holder, tmp_path / "site.old")
    else:
        os.unlink(holder / "current")
        os.rmdir(holder)
    new = tmp_path / "site.new"
    new.mkdir()
    os.symlink("../releases/r2", new / "current")
    os.rename(new, holder)
    want = str(tmp_path / "releases" / "r2")
    assert wait_for(r, want) == want
    # and it watches the new directory: a flip there is seen too
    atomic_flip(str(holder / "current"), "../releases/r1")
    want = str(tmp_path / "releases" / "r1")
    assert wait_for(r, want) == want
    assert impl.stats()["watches"] == 1


def test_watched_hit_issues_no_syscall(impl: ModuleType, app: str) -> None:
    r = impl.Resolver(f"{app}/current", every=3600, watch=True)
    r()
    before = impl.stats()
    for _ in range(1000):
        r()
    after = impl.stats()
    assert after["syscalls"] == before["syscalls"]
    assert after["hits"] - before["hits"] == 1000 and after["misses"] == before["misses"]


def test_first_link_mode(impl: ModuleType, app: str) -> None:
    r = impl.Resolver(f"{app}/current", every=3600, watch=True, use_readlink=True)
    assert r() == f"{app}/releases/r1"
    atomic_flip(f"{app}/current", "releases/r2")
    assert wait_for(r, f"{app}/releases/r2") == f"{app}/releases/r2"


def test_resolve_with_watch(impl: ModuleType, app: str) -> None:
    """resolve(p, watch=True) is its own entry, watched; cache_info and stats say so."""
    cur = f"{app}/current"
    assert impl.resolve(cur, every=3600, watch=True) == f"{app}/releases/r1"
    assert impl.resolve(cur, every=3600) == f"{app}/releases/r1"
    assert impl.stats()["entries"] == 2 and impl.stats()["watching"]
    rows = {row["watch"]: row for row in impl.cache_info()}
    assert rows[True]["watching"] and not rows[False]["watching"]
    atomic_flip(cur, "releases/r2")
    got = wait_for(lambda: impl.resolve(cur, every=3600, watch=True), f"{app}/releases/r2")
    assert got == f"{app}/releases/r2"
    assert impl.resolve(cur, every=3600) == f"{app}/releases/r1"
    rows = {row["watch"]: row for row in impl.cache_info()}
    assert rows[True]["events"] >= 1 and rows[False]["events"] == 0


@pytest.mark.parametrize("bad", [1, 0, "yes", None])
def test_watch_must_be_a_bool(impl: ModuleType, app: str, bad: Any) -> None:
    """watch=1 is refused, before and after a watch=True entry exists (#14 item 11)."""
    with pytest.raises(TypeError, match="watch must be True or False"):
        impl.Resolver(f"{app}/current", watch=bad)
    with pytest.raises(TypeError, match="watch must be True or False"):
        impl.resolve(f"{app}/current", watch=bad)
    impl.resolve(f"{app}/current", watch=True)
    with pytest.raises(TypeError, match="watch must be True or False"):
        impl.resolve(f"{app}/current", watch=bad)


def test_no_leaked_watch_descriptors_after_clear(impl: ModuleType, tmp_path: pathlib.Path) -> None:
    """clear(), eviction and a collected Resolver remove their watches (fdinfo)."""
    dirs: List[str] = []
    for i in range(5):
        site = tmp_path / f"site{i}"
        (site / "releases" / "r1").mkdir(parents=True)
        os.symlink("releases/r1", site / "current")
        dirs.append(str(site))
    for d in dirs:
        impl.resolve(f"{d}/current", watch=True)
    assert impl.stats()["watches"] == 5 and fdinfo_watches(impl) == 5
    assert impl.clear(dirs[0]) == 1
    assert fdinfo_watches(impl) == 4
    impl.clear()
    assert fdinfo_watches(impl) == 0 and impl.stats()["watches"] == 0
    old = impl.set_maxsize(2)
    try:
        for d in dirs:
            impl.resolve(f"{d}/current", watch=True)
        assert impl.stats()["entries"] == 2 and fdinfo_watches(impl) == 2
    finally:
        impl.set_maxsize(old)
        impl.clear()
    r = impl.Resolver(f"{dirs[0]}/current", watch=True)
    r()
    assert fdinfo_watches(impl) == 1
    del r  # freed by reference counting: its watch goes with it
    assert fdinfo_watches(impl) == 0 and impl.stats()["watches"] == 0


def test_thousand_resolvers_share_one_instance(impl: ModuleType, app: str) -> None:
    fds_before = len(os.listdir("/proc/self/fd"))
    rs = [impl.Resolver(f"{app}/current", every=3600, watch=True) for _ in range(1000)]
    assert {r() for r in rs} == {f"{app}/releases/r1"}
    fd = impl._watcher.fd
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 1  # at most the one instance
    assert fdinfo_watches(impl) == 1 and impl.stats()["watches"] == 1
    atomic_flip(f"{app}/current", "releases/r2")
    want = f"{app}/releases/r2"

    def all_had_events(resolvers: List[Any] = rs) -> bool:
        return all(r.events for r in resolvers)

    assert wait_for(all_had_events, True)
    assert {r() for r in rs} == {want}
    assert impl._watcher.fd == fd
    del all_had_events, rs  # the function's default holds the list too
    assert fdinfo_watches(impl) == 0


def test_threads(impl: ModuleType, app: str) -> None:
    """Eight threads calling one watched Resolver through three flips: each sees each flip."""
    r = impl.Resolver(f"{app}/current", every=3600, watch=True)
    r()
    stop = threading.Event()
    seen: List[Set[str]] = [set() for _ in range(8)]
    errors: List[BaseException] = []

    def worker(i: int) -> None:
        try:
            while not stop.is_set():
                seen[i].add(r())
                time.sleep(0.0002)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    try:
        for target in ("releases/r2", "releases/r3", "releases/r1"):
            atomic_flip(f"{app}/current", target)
            want = f"{app}/{target}"
            assert wait_for(lambda: all(want in s for s in seen), True), target
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert not errors


def test_asyncio(impl: ModuleType, app: str) -> None:
    """A coroutine polling a watched Resolver between awaits sees the flip."""
    r = impl.Resolver(f"{app}/current", every=3600, watch=True)

    async def main() -> Any:
        assert r() == f"{app}/releases/r1"
        await asyncio.get_running_loop().run_in_executor(
            None, atomic_flip, f"{app}/current", "releases/r2")
        end = time.monotonic() + DEADLINE
        while r() != f"{app}/releases/r2" and time.monotonic() < end:
            await asyncio.sleep(0.0001)
        return r()

    assert asyncio.run(main()) == f"{app}/releases/r2"


def test_queue_overflow_expires_every_watching_resolver(
        impl: ModuleType, tmp_path: pathlib.Path, app: str) -> None:
    """IN_Q_OVERFLOW: with the reader paused (the watcher's ``gate``, a test seam), more
    events than fs.inotify.max_queued_events overflow the queue; every watching
    Resolver expires, also those whose links did not change."""
    other = tmp_path / "other"
    (other / "releases" / "r1").mkdir(parents=True)
    os.symlink("releases/r1", other / "current")
    busy = impl.Resolver(f"{app}/current", every=3600, watch=True)
    calm = impl.Resolver(str(other / "current"), every=3600, watch=True)
    busy(), calm()
    with open("/proc/sys/fs/inotify/max_queued_events") as f:
        limit = int(f.read())
    noise = tmp_path / "app" / "noise"
    with impl._watcher.gate:
        for i in range(limit // 2 + 16):  # IN_CREATE + IN_DELETE each
            p = f"{noise}{i}"
            os.close(os.open(p, os.O_CREAT | os.O_WRONLY))
            os.unlink(p)
    assert wait_for(lambda: calm.events, 1) == 1
    misses = impl.stats()["misses"]
    assert calm() == str(other / "releases" / "r1")
    assert impl.stats()["misses"] == misses + 1  # it resolved again: expired by the overflow
    assert busy.events >= 1
    # watching goes on after an overflow
    atomic_flip(str(other / "current"), "releases/r1/.")
    assert wait_for(lambda: calm.events, 2) == 2


def test_fork_child_has_its_own_instance(impl: ModuleType, app: str) -> None:
    """A forked child never reads its parent's queue: it closes the inherited
    descriptor, makes its own instance and thread, and sees flips through them; the
    parent goes on getting its events."""
    cur = f"{app}/current"
    r = impl.Resolver(cur, every=3600, watch=True)
    assert r() == f"{app}/releases/r1"
    parent_fd = impl._watcher.fd

    def child() -> Tuple[Any, ...]:
        try:  # the parent's instance, inherited at fork, is closed in the child
            os.fstat(parent_fd)
            inherited = True
        except OSError:
            inherited = False
        own = impl._watcher.fd == -1 and impl.stats()["watches"] == 0
        first = r()  # expired at fork: resolves, with the child's own instance
        own = own and impl._watcher.fd >= 0 and fdinfo_watches(impl) == 1
        atomic_flip(cur, "releases/r2")
        seen = wait_for(r, f"{app}/releases/r2")
        return inherited, first, own, seen, impl.stats()["events"] > 0

    inherited, first, own, seen, events = fork_call(child)
    assert first == f"{app}/releases/r1"
    assert seen == f"{app}/releases/r2" and events
    assert not inherited and own  # the child's instance, not the parent's
    # the parent got the child's flip through its own instance
    assert wait_for(r, f"{app}/releases/r2") == f"{app}/releases/r2"
    assert impl._watcher.fd == parent_fd


def test_unwatchable_directory_falls_back_to_every(impl: ModuleType, root: str) -> None:
    """A directory that cannot be watched (no read permission: EACCES, as nobody) logs
    one WARNING; the Resolver serves within ``every``."""
    holder = os.path.join(root, "locked")
    for r in ("r1", "r2"):
        os.makedirs(os.path.join(root, "releases", r))
    os.mkdir(holder)
    os.symlink("../releases/r1", os.path.join(holder, "current"))
    os.chmod(holder, 0o311)  # search, no read: inotify_add_watch says EACCES
    cur = os.path.join(holder, "current")

    def child() -> Tuple[Any, ...]:
        records: List[logging.LogRecord] = []

        class Collect(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                records.append(record)

        handler = Collect()
        logging.getLogger("realdoc").addHandler(handler)
        r = impl.Resolver(cur, every=0.2, watch=True)
        first = [r() for _ in range(3)]
        watching = r.watching
        time.sleep(0.25)
        r()
        return first[0], watching, [rec.getMessage() for rec in records]

    try:
        first, watching, messages = fork_call(child, as_nobody=True)
    finally:
        os.chmod(holder, 0o755)
    assert first == os.path.join(root, "releases", "r1")
    assert not watching
    assert len(messages) == 1 and "cannot watch" in messages[0], messages


_EMFILE_CHILD = r"""
import ctypes, errno, json, logging, os, sys, time
import importlib
M = importlib.import_module(sys.argv[1])
app = sys.argv[2]
records = []
class H(logging.Handler):
    def emit(self, rec):
        records.append(rec.getMessage())
logging.getLogger("realdoc").addHandler(H())
libc = ctypes.CDLL(None, use_errno=True)
fds = []
while len(fds) < 100000:
    fd = libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        break
    fds.append(fd)
r = M.Resolver(app + "/current", every=0.3, watch=True)
out = {"errno": err, "opened": len(fds), "first": r(), "watching": r.watching,
       "stats_watching": M.stats()["watching"]}
tmp = app + "/current.tmp"
os.symlink("releases/r2", tmp)
os.rename(tmp, app + "/current")
out["before_every"] = r()
time.sleep(0.35)
out["after_every"] = r()
for _ in range(5):
    r.refresh()
for fd in fds:
    os.close(fd)
out["records"] = records
json.dump(out, sys.stdout)
"""


def test_no_instance_left_falls_back_to_every(impl: ModuleType, app: str) -> None:
    """inotify_init1 fails (EMFILE: every instance of this user is taken, in a child
    process so the suite is unaffected): the watching Resolver serves within ``every``
    and logs one WARNING."""
    out = subprocess.run([sys.executable, "-c", _EMFILE_CHILD, impl.__name__, app],
                         env=child_env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["errno"] in (errno.EMFILE, errno.ENFILE), got
    assert got["first"] == f"{app}/releases/r1"
    assert not got["watching"] and not got["stats_watching"]
    assert got["before_every"] == f"{app}/releases/r1"  # no event: every decides
    assert got["after_every"] == f"{app}/releases/r2"
    assert len(got["records"]) == 1 and "no inotify instance" in got["records"][0], got


_ENOSPC_CHILD = r"""
import json, logging, os, sys, time
import importlib
# In a user namespace of its own, this process may lower its inotify watch limit
# (/proc/sys/user/max_inotify_watches is per user namespace, Linux >= 4.9):
# one watch, so a second watched directory gets ENOSPC from inotify_add_watch.
with open("/proc/sys/user/max_inotify_watches", "w") as f:
    f.write("1")
M = importlib.import_module(sys.argv[1])
one, two, three = sys.argv[2:5]
records = []
class H(logging.Handler):
    def emit(self, rec):
        records.append(rec.getMessage())
logging.getLogger("realdoc").addHandler(H())
def flip(app, target):
    os.symlink(target, app + "/current.tmp")
    os.rename(app + "/current.tmp", app + "/current")
watched = M.Resolver(one + "/current", every=3600, watch=True)
full = M.Resolver(two + "/current", every=0.3, watch=True)
again = M.Resolver(three + "/current", every=0.3, watch=True)
out = {"first": [watched(), full(), again()],
       "watching": [watched.watching, full.watching, again.watching],
       "stats_watches": M.stats()["watches"]}
flip(one, "releases/r2"); flip(two, "releases/r2")
end = time.monotonic() + 5
while watched() != one + "/releases/r2" and time.monotonic() < end:
    time.sleep(0.0001)
out["watched_after_flip"] = watched()
out["full_before_every"] = full()
time.sleep(0.35)
out["full_after_every"] = full()
out["records"] = records
json.dump(out, sys.stdout)
"""


def test_no_watch_left_falls_back_to_every(impl: ModuleType, tmp_path: pathlib.Path) -> None:
    """inotify_add_watch fails with ENOSPC (``max_user_watches`` used up, provoked in a
    child process in its own user namespace with a limit of one watch): the first
    Resolver keeps watching, the others serve within ``every``, one WARNING in all."""
    if shutil.which("unshare") is None or not os.path.exists("/proc/sys/user/max_inotify_watches"):
        pytest.skip("needs unshare(1) and per-namespace inotify limits (Linux >= 4.9)")
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"user namespaces are not available here: {probe.stderr.strip()}")
    apps = []
    for name in ("one", "two", "three"):
        a = tmp_path / name
        for r in ("r1", "r2"):
            (a / "releases" / r).mkdir(parents=True)
        os.symlink("releases/r1", a / "current")
        apps.append(str(a))
    out = subprocess.run(["unshare", "--user", "--map-root-user", sys.executable, "-c",
                          _ENOSPC_CHILD, impl.__name__, *apps],
                         env=child_env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    one, two, three = apps
    assert got["first"] == [f"{a}/releases/r1" for a in apps]
    assert got["watching"] == [True, False, False]
    assert got["stats_watches"] == 1
    assert got["watched_after_flip"] == f"{one}/releases/r2"  # the event still comes
    assert got["full_before_every"] == f"{two}/releases/r1"  # no watch: every decides
    assert got["full_after_every"] == f"{two}/releases/r2"
    assert len(got["records"]) == 1, got["records"]
    assert "max_user_watches" in got["records"][0] and "No space left" in got["records"][0]


_IDLE_CHILD = r"""
import os, sys, importlib
M = importlib.import_module(sys.argv[1])
r = M.Resolver(sys.argv[2] + "/current", every=3600, watch=True)
r()
assert r.watching
print(os.getpid(), flush=True)
sys.stdin.readline()
for _ in range(1000):
    r()
print("done", flush=True)
sys.stdin.readline()
"""


def test_idle_process_and_hits_make_no_syscall(
        impl: ModuleType, app: str, tmp_path: pathlib.Path) -> None:
    """strace over the whole process (every thread): while idle, and over 1,000 watched
    hits, the only syscalls are the test's own stdin/stdout traffic and strace's
    attach artefacts (restart_syscall): the reader thread wakes for nothing."""
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    child = subprocess.Popen([sys.executable, "-c", _IDLE_CHILD, impl.__name__, app],
                             env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    assert child.stdin is not None and child.stdout is not None
    trace = str(tmp_path / "trace")  # not in the watched directory: that would be an event
    try:
        pid = int(child.stdout.readline())
        strace = subprocess.Popen(["strace", "-f", "-qq", "-p", str(pid), "-o", trace],
                                  stderr=subprocess.PIPE, text=True)
        assert strace.stderr is not None
        time.sleep(0.5)  # attached, idle
        if strace.poll() is not None:
            pytest.skip(f"strace cannot attach: {strace.stderr.read().strip()}")
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "done"
        time.sleep(0.5)  # idle again
        strace.send_signal(2)
        strace.wait(10)
        strace.stderr.close()
    finally:
        child.stdin.write("\n")
        child.stdin.close()
        child.wait(10)
        child.stdout.close()
    with open(trace) as f:
        lines = [line.split(None, 1)[1] for line in f if line.strip()]
    unexpected = [line for line in lines
                  if not line.startswith(("read(0,", "<... read resumed>", "write(1,",
                                          "restart_syscall("))]
    assert unexpected == [], unexpected


def test_event_leaves_a_process_scoped_resolver_alone(impl: ModuleType, app: str) -> None:
    """An auto-scope Resolver watched before pin_process() switches to the process's
    release at the pin; a later flip's event does not make it resolve again."""
    cur = f"{app}/current"

    def child() -> Tuple[Any, ...]:
        from realdoc._process import pin_process

        r = impl.Resolver(cur, every=3600, watch=True)
        before = r()  # request scope for now: watched
        watching = r.watching
        pin_process(cur, rollover=False)
        misses = impl.stats()["misses"]
        atomic_flip(cur, "releases/r2")
        wait_for(lambda: impl.stats()["events"] > 0, True)
        time.sleep(0.05)
        return before, watching, r(), r.effective_scope, impl.stats()["misses"] - misses

    before, watching, after, scope, misses = fork_call(child)
    assert before == after == f"{app}/releases/r1" and watching
    assert scope == "process" and misses == 0
