"""Resolver, resolve() and the registry: every option, on both implementations."""

from __future__ import annotations

import decimal
import errno
import fractions
import gc
import logging
import math
import os
import pathlib
import shutil
import tempfile
import threading
import time
import weakref
from types import ModuleType
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from conftest import _module
from helpers import (
    PURE,
    agree,
    expect_os_error,
    fork_call,
    make_dirs_beyond_path_max,
    make_docroot_tree,
    make_permission_tree,
    outcome,
)
from reference import libc_realpath

from realdoc._registry import registry_key


class Clock:
    """A hand-driven monotonic clock."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def flip(link: str, target: str) -> None:
    tmp = link + ".tmp-flip"
    os.symlink(target, tmp)
    os.replace(tmp, link)


#: (docroot, www) of make_docroot_tree's layout under tmp_path
Site = Tuple[str, str]


@pytest.fixture
def site(tmp_path: pathlib.Path) -> Site:
    docroot = make_docroot_tree(str(tmp_path))
    www = str(tmp_path / "www")
    return docroot, www


def real(www: str, r: str) -> str:
    return os.path.join(www, "releases", r, "public", "assets")


def test_value_is_reused_for_every_seconds(impl: ModuleType, site: Site) -> None:
    docroot, www = site
    clock = Clock()
    r = impl.Resolver(docroot, every=2.0, clock=clock)
    assert r.value is None and r.age is None
    assert r() == real(www, "r2")
    flip(os.path.join(www, "current"), "releases/r1")
    clock.t += 1.999
    assert r() == real(www, "r2")          # still fresh: now - resolved_at < every
    assert r.age == pytest.approx(1.999)
    clock.t += 0.001
    assert r() == real(www, "r1")          # exactly every seconds: refreshed (no N+1)
    assert r.value == real(www, "r1")


def test_every_zero_resolves_every_call(impl: ModuleType, site: Site) -> None:
    docroot, www = site
    r = impl.Resolver(docroot, every=0)
    for target, rel in [("releases/r1", "r1"), ("releases/r2", "r2"), ("releases/r1", "r1")]:
        flip(os.path.join(www, "current"), target)
        assert r() == real(www, rel)


def test_refresh_forces(impl: ModuleType, site: Site) -> None:
    docroot, www = site
    r = impl.Resolver(docroot, every=3600)
    assert r() == real(www, "r2")
    flip(os.path.join(www, "current"), "releases/r1")
    assert r() == real(www, "r2")
    assert r.refresh() == real(www, "r1")
    assert r() == real(www, "r1")


def test_read_only_attributes_and_bytes(impl: ModuleType, site: Site) -> None:
    docroot, www = site
    r = impl.Resolver(os.fsencode(docroot), every=5)
    assert r() == os.fsencode(real(www, "r2"))
    assert r.docroot == os.fsencode(docroot) and r.every == 5.0
    for name in ("docroot", "every", "value", "age"):
        with pytest.raises(AttributeError):
            setattr(r, name, 1)


@pytest.mark.parametrize("every,exc", [(-1, ValueError), (math.nan, ValueError),
                                       ("2", TypeError), (None, TypeError), (True, TypeError)])
def test_bad_every(impl: ModuleType, site: Site, every: Any, exc: Any) -> None:
    with pytest.raises(exc, match="every"):
        impl.Resolver(site[0], every=every)


def test_bad_arguments(impl: ModuleType, site: Site) -> None:
    docroot, www = site
    with pytest.raises(ValueError, match="on_error"):
        impl.Resolver(docroot, on_error="ignore")
    with pytest.raises(ValueError, match="prefix"):
        impl.Resolver(docroot, use_readlink=www + "/cur")
    with pytest.raises(ValueError, match="absolute"):
        impl.Resolver(docroot, use_readlink="www/current")
    with pytest.raises(TypeError, match="use_readlink"):
        impl.Resolver(docroot, use_readlink=3)
    with pytest.raises(TypeError, match="docroot"):
        impl.Resolver(None)
    with pytest.raises(ValueError, match="null"):
        impl.Resolver(docroot + "\0")
    with pytest.raises(ValueError, match="empty"):
        impl.Resolver("")
    with pytest.raises(TypeError, match="clock"):
        impl.Resolver(docroot, clock=3)


def test_use_readlink_modes(impl: ModuleType, tmp_path: pathlib.Path) -> None:
    www = tmp_path / "www"
    (www / "releases" / "r12" / "htdocs").mkdir(parents=True)
    os.symlink("releases/r12", str(www / "A"))
    os.symlink("A", str(www / "current"))
    docroot = str(www / "current/htdocs")
    assert impl.Resolver(docroot, use_readlink=True)() == str(www / "A/htdocs")
    r = impl.Resolver(docroot, use_readlink=str(www / "current"))
    assert r() == str(www / "A/htdocs") and r.mode == "first_link"
    assert r.start == str(www / "current")
    assert impl.Resolver(docroot)() == str(www / "releases/r12/htdocs")


def test_on_error_stale_serves_last_good_and_logs_once(
        impl: ModuleType, site: Site, caplog: pytest.LogCaptureFixture) -> None:
    docroot, www = site
    clock = Clock()
    r = impl.Resolver(docroot, every=1.0, on_error="stale", clock=clock)
    good = r()
    os.unlink(os.path.join(www, "current"))
    before = impl.stats()
    with caplog.at_level(logging.WARNING, logger="realdoc"):
        for _ in range(5):
            clock.t += 2.0
            assert r() == good
        os.symlink("releases/r1", os.path.join(www, "current"))
        clock.t += 2.0
        assert r() == real(www, "r1")
    records = [rec for rec in caplog.records if rec.name == "realdoc"]
    assert len(records) == 2, [rec.getMessage() for rec in records]
    assert "cannot resolve" in records[0].getMessage()
    assert "resolves again" in records[1].getMessage()
    after = impl.stats()
    assert after["errors"] - before["errors"] == 5
    assert after["stale_served"] - before["stale_served"] == 5


def test_on_error_stale_without_value_raises(impl: ModuleType, tmp_path: pathlib.Path) -> None:
    r = impl.Resolver(str(tmp_path / "nope"), on_error="stale")
    with pytest.raises(FileNotFoundError):
        r()


def test_on_error_raise_and_passthrough(impl: ModuleType, site: Site) -> None:
    docroot, www = site
    os.unlink(os.path.join(www, "current"))
    with pytest.raises(FileNotFoundError) as info:
        impl.Resolver(docroot, on_error="raise")()
    assert info.value.filename == docroot
    assert impl.Resolver(docroot, on_error="passthrough")() == docroot


def test_failing_docroot_is_retried_at_most_every_min_every_1(impl: ModuleType, site: Site) -> None:
    docroot, www = site
    clock = Clock()
    r = impl.Resolver(docroot, every=5.0, on_error="raise", clock=clock)
    assert r() == real(www, "r2")
    os.unlink(os.path.join(www, "current"))
    clock.t += 5.0
    m0 = impl.stats()["misses"]
    with pytest.raises(FileNotFoundError):
        r()
    os.symlink("releases/r1", os.path.join(www, "current"))
    clock.t += 0.5
    with pytest.raises(FileNotFoundError):   # within 1 s: not retried, same error
        r()
    assert impl.stats()["misses"] - m0 == 1
    clock.t += 0.5
    assert r() == real(www, "r1")             # 1 s later: retried, recovered
    assert impl.stats()["misses"] - m0 == 2


class ParkingHandler(logging.Handler):
    """Parks the thread named "refresher" inside the refresh (while it logs a failure)."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = threading.Event()
        self.leave = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if threading.current_thread().name == "refresher":
            self.inside.set()
            self.leave.wait(10)


#: (resolver, its good value, its clock, www)
Parked = Tuple[Any, str, Clock, str]


@pytest.fixture
def parked_refresh(impl: ModuleType, site: Site) -> Iterator[Parked]:
    """A resolver whose refresh is under way in another thread, parked mid-refresh."""
    docroot, www = site
    clock = Clock()
    r = impl.Resolver(docroot, every=1.0, on_error="stale", clock=clock)
    good = r()
    os.unlink(os.path.join(www, "current"))
    clock.t += 2.0
    handler = ParkingHandler()
    logger = logging.getLogger("realdoc")
    logger.addHandler(handler)
    t = threading.Thread(target=r, name="refresher")
    try:
        t.start()
        assert handler.inside.wait(10)
        yield r, good, clock, www
    finally:
        handler.leave.set()
        t.join(10)
        logger.removeHandler(handler)


def test_single_flight_others_get_the_cached_value(
        impl: ModuleType, parked_refresh: Parked) -> None:
    """While one thread refreshes, the others return the cached value without waiting."""
    r, good, clock, www = parked_refresh
    m0 = impl.stats()["misses"]
    for _ in range(3):
        assert r() == good
    assert impl.stats()["misses"] == m0  # nobody else resolved


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_while_another_thread_refreshes(impl: ModuleType, parked_refresh: Parked) -> None:
    """A child forked mid-refresh neither hangs nor inherits the busy state; counters restart."""
    r, good, clock, www = parked_refresh
    docroot = r.docroot
    os.symlink("releases/r1", os.path.join(www, "current"))
    pid = os.fork()
    if pid == 0:  # child: must refresh by itself
        code = 1
        try:
            s = impl.stats()
            ok = s["hits"] == 0 and s["misses"] == 0 and s["errors"] == 0
            clock.t += 5
            ok = ok and r() == real(www, "r1") and impl.resolve(docroot, every=0) == real(www, "r1")
            code = 0 if ok else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 20
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            pytest.fail("child hung after fork")
        time.sleep(0.01)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_concurrent_resolution_under_atomic_flips(impl: ModuleType, tmp_path: pathlib.Path) -> None:
    # tmpfs when there is one: symlink(2) on this kind of ext4 costs ~0.5 ms, and the
    # point is thousands of flips racing the readers, not waiting for the disk
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    base = tempfile.mkdtemp(prefix="realdoc-flips-", dir=shm or str(tmp_path))
    try:
        _concurrent_flips(impl, make_docroot_tree(base), os.path.join(base, "www"))
    finally:
        shutil.rmtree(base)


def _concurrent_flips(impl: ModuleType, docroot: str, www: str) -> None:
    link = os.path.join(www, "current")
    allowed = {real(www, "r1"), real(www, "r2")}
    stop = threading.Event()
    bad: List[Any] = []
    errors: List[BaseException] = []

    def flipper() -> None:
        n = 0
        while not stop.is_set() and n < 2000:
            flip(link, "releases/r1" if n % 2 else "releases/r2")
            n += 1
        stop.set()

    def worker(every: float) -> None:
        deadline = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                v = impl.resolve(docroot, every=every)
            except Exception as e:  # noqa: BLE001 - any exception is a failure here
                errors.append(e)
                return
            if v not in allowed:
                bad.append(v)

    threads = [threading.Thread(target=worker, args=(e,)) for e in (0, 0, 0.01, 0.01)]
    threads.append(threading.Thread(target=flipper))
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and not bad


def test_non_atomic_flip_stale_never_fails_raise_surfaces(impl: ModuleType, site: Site) -> None:
    docroot, www = site
    link = os.path.join(www, "current")
    stale = impl.Resolver(docroot, every=0, on_error="stale")
    raising = impl.Resolver(docroot, every=0, on_error="raise")
    stale(), raising()
    seen_error = 0
    for i in range(300):
        os.unlink(link)
        assert stale() in (real(www, "r1"), real(www, "r2"))
        try:
            raising()
        except FileNotFoundError:
            seen_error += 1
        os.symlink("releases/r1" if i % 2 else "releases/r2", link)
        assert stale() in (real(www, "r1"), real(www, "r2"))
    assert seen_error == 300


# ---------------------------------------------------------------- registry

def test_resolve_registry_and_introspection(impl: ModuleType, site: Site) -> None:
    docroot, www = site
    impl.clear()
    assert impl.resolve(docroot) == real(www, "r2")
    assert impl.resolve(docroot, every=0) == real(www, "r2")
    assert impl.resolve(docroot, every=2.0) == real(www, "r2")  # same entry as the default
    info = impl.cache_info()
    assert len(info) == 2 and impl.stats()["entries"] == 2
    entry = [e for e in info if e["every"] == 2.0][0]
    assert entry["docroot"] == docroot and entry["value"] == real(www, "r2")
    assert entry["mode"] == "realpath" and 0 <= entry["expires_in"] <= 2.0
    assert entry["age"] >= 0
    assert impl.clear(www + "/cur") == 0                 # component-wise, not string prefix
    assert impl.clear(www) == 2
    assert impl.cache_info() == []


def test_registry_is_bounded_lru(impl: ModuleType, tmp_path: pathlib.Path) -> None:
    dirs: List[str] = []
    for i in range(5):
        sub = tmp_path / f"d{i}"
        sub.mkdir()
        dirs.append(str(sub))
    old = impl.set_maxsize(3)
    try:
        for d in dirs[:3]:
            impl.resolve(d)
        impl.resolve(dirs[0])            # d0 is now the most recent
        impl.resolve(dirs[3])            # evicts d1 (least recently used)
        kept = {e["docroot"] for e in impl.cache_info()}
        assert kept == {dirs[0], dirs[2], dirs[3]}
        assert impl.get_maxsize() == 3
        for i in range(200):
            impl.resolve(dirs[i % 5], every=float(i))
        assert impl.stats()["entries"] == 3
        with pytest.raises(ValueError):
            impl.set_maxsize(0)
        with pytest.raises(TypeError):
            impl.set_maxsize("3")
    finally:
        impl.set_maxsize(old)


def test_resolve_bad_arguments(impl: ModuleType, site: Site) -> None:
    with pytest.raises(TypeError):
        impl.resolve(["not", "a", "path"])
    with pytest.raises(ValueError):
        impl.resolve(site[0], every=-1)
    with pytest.raises(ValueError):
        impl.resolve(site[0], on_error="nope")


def test_stats_counts_hits_and_misses(impl: ModuleType, site: Site) -> None:
    docroot, www = site
    s0 = impl.stats()
    r = impl.Resolver(docroot, every=3600)
    for _ in range(10):
        r()
    s1 = impl.stats()
    assert s1["misses"] - s0["misses"] == 1
    assert s1["hits"] - s0["hits"] == 9
    assert s1["syscalls"]["readlink"] > s0["syscalls"]["readlink"]
    assert set(s1["syscalls"]) == {"readlink", "openat2", "close", "getcwd"}


def test_stats_hits_are_exact_on_every_call_form(impl: ModuleType, site: Site) -> None:
    """Each call form counts its hits exactly, stale calls count as misses, and
    threads lose no count (the pure twin counts hits in a clock iterator)."""
    docroot, www = site
    impl.clear()
    s0 = impl.stats()
    r = impl.Resolver(docroot, every=3600)
    stale = impl.Resolver(docroot, every=0)
    rb = impl.Resolver(os.fsencode(docroot), every=3600)
    for _ in range(5):
        r(), stale(), rb(), impl.resolve(docroot), impl.resolve(docroot, every=5)
    s1 = impl.stats()
    # misses: r, rb and both registry entries once each, stale every time
    assert s1["misses"] - s0["misses"] == 4 + 5
    assert s1["hits"] - s0["hits"] == 4 * 4

    def work() -> None:
        for _ in range(2000):
            r()
            impl.resolve(docroot)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s2 = impl.stats()
    assert s2["hits"] - s1["hits"] == 4 * 2000 * 2
    assert s2["misses"] == s1["misses"]


def test_pure_hit_clock_running_out_keeps_counting(site: Site) -> None:
    """The pure twin's counting clock is good for sys.maxsize reads (2**31 - 1 on
    32-bit); when one runs out the hit paths take a new one, from any thread, and
    no hit is lost.  Provoked here with clocks of 7 reads."""
    from realdoc import _fastpath_py as P

    docroot, www = site
    P.clear()
    r = P.Resolver(docroot, every=3600)
    r(), P.resolve(docroot), P.resolve(docroot, every=5)
    s0 = P.stats()
    new_clock = P._new_clock
    try:
        P._new_clock = lambda reads=7: new_clock(reads)
        P._new_clock()  # a small clock now (the reads of the big one stay counted)
        assert P.stats()["hits"] == s0["hits"]
        spent0 = P._clock_spent[0]
        for _ in range(20):
            assert r() == P.resolve(docroot) == P.resolve(docroot, every=5) == real(www, "r2")

        def work() -> None:
            for _ in range(500):
                r()

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        refills = (P._clock_spent[0] - spent0) // 7
    finally:
        P._new_clock = new_clock
        P._new_clock()
    s1 = P.stats()
    assert s1["misses"] == s0["misses"]
    assert s1["hits"] - s0["hits"] == 20 * 3 + 4 * 500
    assert refills >= (20 * 3 + 4 * 500) // 7 - 1  # the 7-read clocks were used up


def test_registry_eviction_is_exact_lru_under_random_use(
        impl: ModuleType, tmp_path: pathlib.Path) -> None:
    import collections
    import random
    dirs: List[str] = []
    for i in range(8):
        sub = tmp_path / f"d{i}"
        sub.mkdir()
        dirs.append(str(sub))
    rng = random.Random(1234)
    old = impl.set_maxsize(3)
    try:
        impl.clear()
        model: collections.OrderedDict[str, bool] = collections.OrderedDict()
        for step in range(2000):
            d = dirs[rng.randrange(8)] if rng.random() < 0.9 else dirs[rng.randrange(2)]
            impl.resolve(d)
            model[d] = True
            model.move_to_end(d)
            while len(model) > 3:
                model.popitem(last=False)
            if step % 97 == 0:
                victim = rng.choice(dirs)
                impl.clear(victim)
                model.pop(victim, None)
            assert {e["docroot"] for e in impl.cache_info()} == set(model), step
            assert impl.stats()["entries"] == len(model)
    finally:
        impl.set_maxsize(old)


# ======================================================== bad and edge-case input
# Option values, the registry's size and features, PATH_MAX in refreshes, lost
# permissions and a docroot link flipped to a file; both implementations, which
# must agree.  A watchdog ends a hung run.

@pytest.mark.usefixtures("watchdog")
@pytest.mark.parametrize("value", [
    pytest.param("1", id="str"), pytest.param(None, id="None"), pytest.param(True, id="bool"),
    pytest.param(1j, id="complex"), pytest.param(b"1", id="bytes"),
])
def test_every_wrong_type(impl: ModuleType, site_paths: Dict[str, str], value: Any) -> None:
    for call in (lambda m: m.Resolver(site_paths["docroot"], every=value),
                 lambda m: m.resolve(site_paths["docroot"], every=value)):
        got = agree(impl, call)
        assert got == ("TypeError",
                       f"every must be a number of seconds, not {type(value).__name__}")


@pytest.mark.usefixtures("watchdog")
@pytest.mark.parametrize("value", [-1, -0.001, math.nan, -math.inf])
def test_every_bad_value(impl: ModuleType, site_paths: Dict[str, str], value: Any) -> None:
    for call in (lambda m: m.Resolver(site_paths["docroot"], every=value),
                 lambda m: m.resolve(site_paths["docroot"], every=value)):
        got = agree(impl, call)
        assert got == ("ValueError", f"every must be a number of seconds >= 0, got {value!r}")


@pytest.mark.usefixtures("watchdog")
@pytest.mark.parametrize("option,value", [
    ("every", []), ("every", {}), ("use_readlink", ["/"]), ("on_error", ["stale"]),
])
def test_resolve_unhashable_option_names_the_option(
        impl: ModuleType, site_paths: Dict[str, str], option: Any, value: Any) -> None:
    """resolve() with an unhashable option value names the option, never the
    docroot, and raises what Resolver() raises for the same value."""
    got = agree(impl, lambda m: m.resolve(site_paths["docroot"], **{option: value}))
    assert got[0] in ("TypeError", "ValueError"), got
    assert not got[1].startswith("docroot must be"), got
    assert got == agree(impl, lambda m: m.Resolver(site_paths["docroot"], **{option: value}))


@pytest.mark.usefixtures("watchdog")
def test_every_huge_and_infinite(impl: ModuleType, site_paths: Dict[str, str]) -> None:
    assert agree(impl, lambda m: m.Resolver(site_paths["docroot"], every=math.inf)()) == (
        "ok", site_paths["r1"])
    # an int too large for a float: both implementations answer the same way
    kinds = []
    for m in (impl, PURE):
        try:
            m.Resolver(site_paths["docroot"], every=10 ** 400)
            kinds.append("ok")
        except (ArithmeticError, ValueError, TypeError) as e:
            kinds.append(type(e).__name__)
    assert kinds[0] == kinds[1], kinds


@pytest.mark.usefixtures("watchdog")
@pytest.mark.parametrize("value", [None, "", "STALE", "raise ", 1, b"stale"])
def test_on_error_bad_value(impl: ModuleType, site_paths: Dict[str, str], value: Any) -> None:
    got = agree(impl, lambda m: m.Resolver(site_paths["docroot"], on_error=value))
    assert got == ("ValueError", "on_error must be one of 'stale', 'raise', 'passthrough', "
                                 f"got {value!r}")


@pytest.mark.usefixtures("watchdog")
@pytest.mark.parametrize("value,exc", [
    (1, "TypeError"), (0, "TypeError"), (1.0, "TypeError"), (b"/", "ValueError"),
    ("relative/start", "ValueError"), ("", "ValueError"), ("/not/a/prefix", "ValueError"),
])
def test_use_readlink_bad_value(
        impl: ModuleType, site_paths: Dict[str, str], value: Any, exc: Any) -> None:
    got = agree(impl, lambda m: m.Resolver(site_paths["docroot"], use_readlink=value).start)
    if value == b"/":  # a bytes start for a str docroot is fine: "/" is a prefix
        assert got[0] == "ok"
        return
    assert got[0] == exc, got


@pytest.mark.usefixtures("watchdog")
def test_use_readlink_with_relative_docroot(impl: ModuleType) -> None:
    got = agree(impl, lambda m: m.Resolver("rel/docroot", use_readlink=True))
    assert got == ("ValueError", "use_readlink needs an absolute docroot")


@pytest.mark.usefixtures("watchdog")
def test_clock_and_call_arguments(impl: ModuleType, site_paths: Dict[str, str]) -> None:
    assert agree(impl, lambda m: m.Resolver(site_paths["docroot"], clock=3)) == (
        "TypeError", "clock must be a callable returning seconds, or None")
    r = impl.Resolver(site_paths["docroot"])
    with pytest.raises(TypeError):
        r(1)
    with pytest.raises(TypeError):
        r(x=1)
    with pytest.raises(TypeError):
        impl.Resolver(site_paths["docroot"], 2.0)  # options are keyword-only
    with pytest.raises(TypeError):
        impl.resolve(site_paths["docroot"], 2.0)
    with pytest.raises(TypeError):
        impl.resolve()


@pytest.mark.usefixtures("watchdog")
@pytest.mark.parametrize("value,exc,msg", [
    (0, "ValueError", "maxsize must be >= 1, got 0"),
    (-1, "ValueError", "maxsize must be >= 1, got -1"),
    (None, "TypeError", "maxsize must be an int, not NoneType"),
    (1.5, "TypeError", "maxsize must be an int, not float"),
    (True, "TypeError", "maxsize must be an int, not bool"),
    ("3", "TypeError", "maxsize must be an int, not str"),
])
def test_set_maxsize_bad_values(impl: ModuleType, value: Any, exc: Any, msg: Any) -> None:
    before = impl.get_maxsize()
    assert agree(impl, lambda m: m.set_maxsize(value)) == (exc, msg)
    assert impl.get_maxsize() == before


@pytest.mark.usefixtures("watchdog")
def test_set_maxsize_huge_agrees(impl: ModuleType) -> None:
    """set_maxsize(10 ** 20): the compiled core and the twin answer alike
    (both accept it, or both raise the same exception type)."""
    before, twin_before = impl.get_maxsize(), PURE.get_maxsize()
    kinds = []
    try:
        for m in (impl, PURE):
            try:
                m.set_maxsize(10 ** 20)
                kinds.append("ok")
            except (ArithmeticError, ValueError, TypeError) as e:
                kinds.append(type(e).__name__)
        assert kinds[0] == kinds[1], kinds
    finally:
        impl.set_maxsize(before)
        PURE.set_maxsize(twin_before)


@pytest.mark.usefixtures("watchdog")
def test_set_features_bad_names_and_introspection_arguments(impl: ModuleType) -> None:
    assert agree(impl, lambda m: m.set_features(foo=True)) == (
        "ValueError", "unknown feature 'foo'")
    for fn in ("stats", "cache_info", "features", "get_maxsize", "set_features"):
        for m in (impl, PURE):  # the messages are the interpreter's own: they differ
            with pytest.raises(TypeError):
                getattr(m, fn)(1)


@pytest.mark.usefixtures("watchdog")
def test_clear_with_empty_prefix_is_clear_all(impl: ModuleType, site_paths: Dict[str, str]) -> None:
    for m in (impl, PURE):
        m.resolve(site_paths["docroot"])
        m.resolve(site_paths["file"])
        assert m.clear("") == 2
        assert m.cache_info() == []


@pytest.mark.usefixtures("watchdog")
def test_resolver_refresh_across_the_path_max_boundary(impl: ModuleType, root: str) -> None:
    """The compiled refresh splices link targets into the docroot text: check its bounds."""
    long_dir = make_dirs_beyond_path_max(root, 4000)
    fd = os.open(long_dir, os.O_RDONLY)
    try:
        os.mkdir("r1", dir_fd=fd)
        os.mkdir("r2", dir_fd=fd)
        os.mkdir("r1/" + "p" * (4095 - 4000 - 4), dir_fd=fd)   # 4095 bytes: fits
        os.mkdir("r2/" + "p" * (4095 - 4000 - 4), dir_fd=fd)
        os.mkdir("r1/" + "q" * (4096 - 4000 - 4), dir_fd=fd)   # 4096 bytes: too long
    finally:
        os.close(fd)
    os.symlink(long_dir + "/r1", f"{root}/cur")
    ok = f"{root}/cur/{'p' * 91}"
    bad = f"{root}/cur/{'q' * 92}"
    r_ok = impl.Resolver(ok, every=0, on_error="raise")
    r_bad = impl.Resolver(bad, every=0, on_error="raise")
    for step in range(6):
        target = "r1" if step % 2 == 0 else "r2"
        os.symlink(long_dir + "/" + target, f"{root}/tmp-link")
        os.replace(f"{root}/tmp-link", f"{root}/cur")
        assert outcome(r_ok) == ("ok", f"{long_dir}/{target}/{'p' * 91}")
        assert libc_realpath(os.fsencode(ok))[0] == os.fsencode(f"{long_dir}/{target}/{'p' * 91}")
        want = libc_realpath(os.fsencode(bad))
        assert want == (None, errno.ENAMETOOLONG)  # r1/qqq exists, r2/qqq does not: too long first
        expect_os_error(outcome(r_bad), errno.ENAMETOOLONG, bad)


@pytest.mark.usefixtures("watchdog")
def test_permission_lost_after_a_good_resolution(impl: ModuleType, root: str) -> None:
    """Stale serves the last good value, raise raises PermissionError, then recovery."""
    make_permission_tree(root)
    docroot = f"{root}/mine/current/public"
    name = "cython" if impl is not PURE else "python"

    def child() -> List[Any]:
        m = _module(name)
        stale = m.Resolver(docroot, every=0)
        loud = m.Resolver(docroot, every=0, on_error="raise")
        via = m.Resolver(docroot, every=0, on_error="passthrough")
        first = [stale(), loud(), via()]
        os.chmod(f"{root}/mine", 0o600)   # nobody owns it: drop its own search right
        locked = [outcome(stale), outcome(loud), outcome(via), outcome(m.realpath, docroot)]
        os.chmod(f"{root}/mine", 0o755)
        return [first, locked, [stale(), loud(), via()]]

    first, locked, after = fork_call(child, as_nobody=True)
    real = f"{root}/mine/r1/public"
    assert first == [real] * 3 and after == [real] * 3
    assert locked[0] == ("ok", real)
    expect_os_error(locked[1], errno.EACCES, docroot)
    assert locked[2] == ("ok", docroot)
    expect_os_error(locked[3], errno.EACCES, docroot)


@pytest.mark.usefixtures("watchdog")
def test_docroot_link_flipped_to_a_file(impl: ModuleType, site_paths: Dict[str, str]) -> None:
    root, docroot = site_paths["root"], site_paths["docroot"]

    def flip(target: str) -> None:
        os.symlink(target, f"{root}/tmp-link")
        os.replace(f"{root}/tmp-link", f"{root}/current")

    for m in (impl, PURE):
        flip("releases/r1")
        rs = {oe: m.Resolver(docroot, every=0, on_error=oe)
              for oe in ("stale", "raise", "passthrough")}
        for mode in (True,):
            rs["first_link"] = m.Resolver(docroot, every=0, use_readlink=mode, on_error="raise")
        assert [r() for r in rs.values()] == [site_paths["r1"]] * 4
        flip("file")
        assert rs["stale"]() == site_paths["r1"]
        expect_os_error(outcome(rs["raise"]), errno.ENOTDIR, docroot)
        assert rs["passthrough"]() == docroot
        # first_link replaces "current" and does not test what follows
        assert rs["first_link"]() == f"{root}/file/public"
        flip("releases/r2")
        assert [r() for r in rs.values()] == [site_paths["r2"]] * 4


# ------------------------------------------------- 0.2: defects of issue 14, stats() keys

def test_failing_resolver_forms_no_reference_cycle(
        impl: ModuleType, tmp_path: pathlib.Path) -> None:
    """#14 item 10: the stored error carries no traceback (whose frames would reference
    the Resolver), so a failing Resolver is freed by reference counting alone."""
    missing = str(tmp_path / "missing" / "docroot")
    gc.collect()
    gc.disable()
    try:
        for on_error in ("raise", "stale", "passthrough"):
            r = impl.Resolver(missing, every=0, on_error=on_error)
            for _ in range(3):
                try:
                    r()
                except FileNotFoundError:
                    pass
            assert impl.cache_info() == [] and r.value is None
            ref = weakref.ref(r)
            del r
            assert ref() is None, f"on_error={on_error!r}: the failing Resolver is still alive"
    finally:
        gc.enable()


def test_failing_resolve_entries_are_freed_on_eviction(
        impl: ModuleType, tmp_path: pathlib.Path) -> None:
    """#14 item 10 as reported: failing resolve() docroots beyond maxsize, gc disabled:
    evicted entries are freed at once (0.1.0's pure twin kept every one alive)."""
    old = impl.set_maxsize(4)
    gc.collect()
    gc.disable()
    try:
        before = sum(isinstance(o, impl.Resolver) for o in gc.get_objects())
        for i in range(200):
            with pytest.raises(FileNotFoundError):
                impl.resolve(str(tmp_path / f"missing{i}"), every=0, on_error="raise")
        alive = sum(isinstance(o, impl.Resolver) for o in gc.get_objects()) - before
        assert alive <= 4, f"{alive} Resolvers alive, the registry keeps 4"
    finally:
        gc.enable()
        impl.set_maxsize(old)


class EqualToStr:
    """Not a path, but equal to (and hashed like) a str: it must not pass for one."""

    def __init__(self, s: str) -> None:
        self.s = s

    def __hash__(self) -> int:
        return hash(self.s)

    def __eq__(self, other: object) -> bool:
        return other == self.s


@pytest.mark.parametrize("good,bad,exc", [
    ({"every": 1}, {"every": True}, TypeError),
    ({"every": 0}, {"every": False}, TypeError),
    ({"every": 1}, {"every": 1 + 0j}, TypeError),
    ({"every": 3}, {"every": fractions.Fraction(3)}, TypeError),
    ({"every": 3}, {"every": decimal.Decimal(3)}, TypeError),
    ({"use_readlink": True}, {"use_readlink": 1}, TypeError),
    ({"every": 3, "use_readlink": False}, {"every": 3, "use_readlink": 0}, TypeError),
    ({"every": 3}, {"every": 3, "on_error": EqualToStr("stale")}, ValueError),
    ({}, {"on_error": EqualToStr("stale")}, ValueError),
], ids=["every-True", "every-False", "every-complex", "every-Fraction", "every-Decimal",
        "use_readlink-1", "use_readlink-0", "on_error-lookalike", "on_error-lookalike-default"])
def test_resolve_checks_do_not_depend_on_the_registry(
        impl: ModuleType, site: Site, good: Any, bad: Any, exc: Any) -> None:
    """#14 item 11: an argument equal to a valid one (True == 1, 1+0j == 1) is checked
    like any other, before and after the valid one made an entry."""
    docroot, www = site
    with pytest.raises(exc):
        impl.resolve(docroot, **bad)
    assert impl.resolve(docroot, **good) == real(www, "r2")
    with pytest.raises(exc):
        impl.resolve(docroot, **bad)


def test_resolve_docroot_check_does_not_depend_on_the_registry(
        impl: ModuleType, site: Site) -> None:
    """#14 item 11 for the docroot, on the one-argument fast path and the general one."""
    docroot, www = site
    assert impl.resolve(docroot) == real(www, "r2")
    assert impl.resolve(docroot, every=5) == real(www, "r2")
    for kwargs in ({}, {"every": 5}):
        with pytest.raises(TypeError, match="docroot must be str, bytes or os.PathLike"):
            impl.resolve(EqualToStr(docroot), **kwargs)


class FloatSeconds(float):
    pass


def test_resolve_registry_keys_agree_with_registry_key(impl: ModuleType, site: Site) -> None:
    """The compiled resolve() computes plain keys in C: it must partition arguments into
    entries exactly as _registry.registry_key does (and the pure twin)."""
    docroot, _ = site
    calls: List[Tuple[Any, Dict[str, Any]]] = [
        (docroot, {}), (docroot, {"every": 2}), (docroot, {"every": 2.0}),
        (docroot, {"on_error": "stale"}), (docroot, {"use_readlink": False}),
        (docroot, {"use_readlink": None}), (docroot, {"every": 3}), (docroot, {"every": 3.0}),
        (docroot, {"every": FloatSeconds(3.0)}), (docroot, {"every": FloatSeconds(2.0)}),
        (docroot, {"on_error": "raise"}), (docroot, {"every": 3, "on_error": "raise"}),
        (docroot, {"use_readlink": True}), (os.fsencode(docroot), {}),
        (pathlib.Path(docroot), {}), (pathlib.Path(docroot), {"every": 3}),
    ]
    keys = set()
    for d, kwargs in calls:
        impl.resolve(d, **kwargs)
        full = {"every": 2.0, "use_readlink": False, "on_error": "stale", **kwargs}
        keys.add(registry_key(d, full["every"], full["use_readlink"], full["on_error"]))
        assert impl.stats()["entries"] == len(keys), (d, kwargs)


def test_clear_prefix_counts_absoluteness(
        impl: ModuleType, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """#14 item 12: ``clear("tmp")`` does not drop ``/tmp/...``; ``clear("/tmp")`` does not
    drop the relative ``tmp/www``."""
    (tmp_path / "www").mkdir()
    absolute = str(tmp_path / "www")
    relative = absolute.lstrip("/")
    first = relative.split("/")[0]
    monkeypatch.chdir("/")
    impl.resolve(absolute)
    impl.resolve(relative)
    assert impl.clear(first) == 1
    assert [e["docroot"] for e in impl.cache_info()] == [absolute]
    impl.resolve(relative)
    assert impl.clear("/" + first) == 1
    assert [e["docroot"] for e in impl.cache_info()] == [relative]
    impl.resolve(absolute)
    assert impl.clear(os.fsencode(relative)) == 1
    assert impl.clear(pathlib.Path("/")) == 1
    impl.resolve(absolute)
    impl.resolve(relative)
    assert impl.clear("") == 2  # an empty prefix matches every docroot


@pytest.mark.parametrize("start,want", [("/", "/"), (b"/", "/"), ("//", "/"), ("/./", "/")])
def test_start_of_the_root(impl: ModuleType, site: Site, start: Any, want: Any) -> None:
    """#14 item 15a: ``use_readlink='/'`` reports ``start == '/'`` (0.1.0: the first
    component of the docroot), in the docroot's kind."""
    docroot, www = site
    r = impl.Resolver(docroot, use_readlink=start)
    assert r.start == want
    assert r() == os.path.join(www, "releases/r2/public/assets")
    rb = impl.Resolver(os.fsencode(docroot), use_readlink=start)
    assert rb.start == os.fsencode(want)


def test_start_is_normalised(impl: ModuleType, site: Site) -> None:
    docroot, www = site
    r = impl.Resolver(docroot, use_readlink=www + "//./current/")
    assert r.start == www + "/current"
    assert impl.Resolver(docroot, use_readlink=pathlib.Path(www)).start == www
    assert impl.Resolver(docroot, use_readlink=True).start is None


@pytest.mark.parametrize("reading,exc,msg", [
    ("1.5", TypeError, "clock() must return a number of seconds, not str"),
    (None, TypeError, "clock() must return a number of seconds, not NoneType"),
    (True, TypeError, "clock() must return a number of seconds, not bool"),
    (1 + 0j, TypeError, "clock() must return a number of seconds, not complex"),
    (math.nan, ValueError, "clock() returned nan"),
])
def test_bad_clock_reading(impl: ModuleType, site: Site, reading: Any, exc: Any, msg: Any) -> None:
    """#14 item 15f: a test clock must return int or float seconds; anything else raises
    the same error on both cores, at every reading (call, refresh, age)."""
    docroot, _ = site
    r = impl.Resolver(docroot, clock=lambda: reading)
    for read in (r, r.refresh):
        with pytest.raises(exc) as info:
            read()
        assert str(info.value) == msg


@pytest.mark.parametrize("reading", [1000, 1000.0, FloatSeconds(1000.0)])
def test_good_clock_readings(impl: ModuleType, site: Site, reading: Any) -> None:
    docroot, www = site
    r = impl.Resolver(docroot, every=10, clock=lambda: reading)
    assert r() == real(www, "r2")
    assert r.age == 0.0 and r.expires_in == 10.0


def test_stats_keys(impl: ModuleType) -> None:
    """Each syscall count is reported once, under ``syscalls`` (0.1.0 also had it at the top);
    #11 added watch mode's ``watching`` (bool), ``events`` and ``watches``."""
    s = impl.stats()
    assert set(s) == {"hits", "misses", "errors", "stale_served", "entries", "maxsize",
                      "syscalls", "watching", "events", "watches"}
    assert type(s["watching"]) is bool
    assert all(type(v) is int for k, v in s.items() if k not in ("syscalls", "watching"))
    assert all(type(v) is int for v in s["syscalls"].values())


def test_resolver_is_generic_at_run_time(impl: ModuleType) -> None:
    assert impl.Resolver[str] is not None and impl.Resolver[bytes] is not None


def test_second_init_starts_afresh(impl: ModuleType, site: Site, tmp_path: pathlib.Path) -> None:
    """Calling __init__ again configures a new docroot: no value of the old one is served."""
    docroot, www = site
    other = tmp_path / "other"
    other.mkdir()
    r = impl.Resolver(docroot, every=3600)
    assert r() == real(www, "r2")
    r.__init__(str(other), every=3600)
    assert r.value is None and r.age is None
    assert r() == str(other) and r.docroot == str(other)


# ------------------------------------------- 0.2: a relative docroot (#11), both twins

@pytest.fixture
def two_trees(tmp_path: pathlib.Path) -> Tuple[str, str]:
    """``a/current -> releases/r1`` and ``b/current -> releases/r2``: same text, two answers."""
    for name, rel in (("a", "r1"), ("b", "r2")):
        (tmp_path / name / "releases" / rel).mkdir(parents=True)
        os.symlink(f"releases/{rel}", tmp_path / name / "current")
    return str(tmp_path / "a"), str(tmp_path / "b")


@pytest.mark.parametrize("kwargs", [{}, {"every": 3600}, {"every": 3600, "watch": True},
                                    {"on_error": "raise"}], ids=["plain", "every", "watch",
                                                                 "on_error"])
@pytest.mark.parametrize("kind", [str, os.fsencode, pathlib.Path], ids=["str", "bytes", "Path"])
def test_resolve_relative_docroot_follows_the_working_directory(
        impl: ModuleType, two_trees: Tuple[str, str], monkeypatch: pytest.MonkeyPatch,
        kwargs: Any, kind: Any) -> None:
    """#11: resolve("current") in a, then in b, answers b's release (0.1.0: a's)."""
    a, b = two_trees
    want = {a: f"{a}/releases/r1", b: f"{b}/releases/r2"}
    for d in (a, b, a, b):
        monkeypatch.chdir(d)
        got = impl.resolve(kind("current"), **kwargs)
        assert os.fsdecode(got) == want[d], d
    assert impl.stats()["entries"] == 2
    assert {os.fsdecode(e["docroot"]) for e in impl.cache_info()} == {"current"}


def test_resolve_relative_docroot_costs_one_getcwd_per_call(
        impl: ModuleType, two_trees: Tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    a, _ = two_trees
    monkeypatch.chdir(a)
    impl.resolve("current")
    before = impl.stats()["syscalls"]
    for _ in range(10):
        impl.resolve("current")
    after = impl.stats()["syscalls"]
    assert {k: after[k] - before[k] for k in after} == {
        "readlink": 0, "openat2": 0, "close": 0, "getcwd": 10}


@pytest.mark.parametrize("docroot", ["current", "./current", "../a/current", "x/../current"])
def test_resolver_relative_docroot_is_taken_at_construction(
        impl: ModuleType, two_trees: Tuple[str, str], monkeypatch: pytest.MonkeyPatch,
        docroot: Any) -> None:
    """A Resolver built in a and called in b resolves against a, at every refresh."""
    a, b = two_trees
    monkeypatch.chdir(a)
    if docroot.startswith("x/"):
        os.mkdir(f"{a}/x")
    r = impl.Resolver(docroot, every=0)
    monkeypatch.chdir(b)
    assert r() == f"{a}/releases/r1"
    assert r() == f"{a}/releases/r1"  # the refresh too
    assert r.docroot == docroot
    monkeypatch.chdir("/")
    before = impl.stats()["syscalls"]["getcwd"]
    assert r.refresh() == f"{a}/releases/r1"
    assert impl.stats()["syscalls"]["getcwd"] == before  # no getcwd after construction


def test_resolver_relative_docroot_agrees_with_realpath(
        impl: ModuleType, two_trees: Tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    a, _ = two_trees
    monkeypatch.chdir(a)
    for text in ("current", "current/", "current/.", ".", "releases/../current", "missing",
                 b"current"):
        want = outcome(impl.realpath, text)
        r = impl.Resolver(text, every=0, on_error="raise")
        assert outcome(r) == want, text


def test_resolver_in_a_deleted_working_directory(
        impl: ModuleType, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
        two_trees: Tuple[str, str]) -> None:
    """No working directory to take: every resolution fails with FileNotFoundError (as
    realpath does there), also after a chdir to a live directory."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    r = impl.Resolver("current", every=0, on_error="raise")
    monkeypatch.chdir(two_trees[0])
    with pytest.raises(FileNotFoundError) as info:
        r()
    assert info.value.filename == "current"
    assert impl.Resolver("current", every=0, on_error="passthrough")() == \
        f"{two_trees[0]}/releases/r1"
