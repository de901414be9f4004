"""Tests for realdoc.switch: atomic and compare-and-swap symlink flips."""

from __future__ import annotations

import errno
import fcntl
import os
import pathlib
import stat
import subprocess
import sys
import threading
from typing import Any, Dict, List, Optional, Tuple

import pytest
from helpers import PathLike, child_env, fork_call, outcome, tmp_leftovers

from realdoc._switch import SwitchConflict, SwitchResult, switch


@pytest.fixture
def site(tmp_path: pathlib.Path) -> pathlib.Path:
    """A deploy directory with releases r1, r2, r3 and no ``current`` yet."""
    for r in ("r1", "r2", "r3"):
        (tmp_path / "releases" / r).mkdir(parents=True)
    return tmp_path


def leftovers(directory: pathlib.Path) -> List[str]:
    """Names of temporary links left in ``directory``."""
    return sorted(n for n in os.listdir(directory) if ".realdoc-tmp-" in n)


# -- basic flips --------------------------------------------------------------------


def test_first_deploy_creates_link(site: pathlib.Path) -> None:
    link = site / "current"
    res = switch(link, site / "releases" / "r1")
    assert res == SwitchResult(link=str(link), old=None, new="releases/r1", letter=None)
    assert os.readlink(link) == "releases/r1"
    assert (link / ".").resolve() == site / "releases" / "r1"
    assert leftovers(site) == []


def test_switch_replaces_existing_link(site: pathlib.Path) -> None:
    link = site / "current"
    os.symlink("releases/r1", link)
    res = switch(str(link), str(site / "releases" / "r2"))
    assert (res.old, res.new) == ("releases/r1", "releases/r2")
    assert os.readlink(link) == "releases/r2"
    assert leftovers(site) == []


def test_switch_is_one_rename(site: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LINK is never unlinked: the only change to it is a rename over it."""
    link = site / "current"
    os.symlink("releases/r1", link)
    calls: List[str] = []
    real_replace, real_unlink = os.replace, os.unlink

    def replace(src: str, dst: str, **kw: int) -> None:
        calls.append(f"replace {os.path.basename(dst)}")
        real_replace(src, dst, **kw)

    def unlink(path: str, **kw: int) -> None:  # pragma: no cover - must not be called
        calls.append(f"unlink {os.path.basename(path)}")
        real_unlink(path, **kw)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "unlink", unlink)
    switch(link, site / "releases" / "r2")
    assert calls == ["replace current"]


def test_directory_is_fsynced(site: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: List[bool] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.path.samestat(os.fstat(fd), os.stat(site)))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    switch(site / "current", site / "releases" / "r1")
    assert synced == [True]


def test_pathlike_and_trailing_slash(site: pathlib.Path) -> None:
    os.symlink("releases/r1", site / "current")
    res = switch(f"{site}/current/", site / "releases" / "r2")
    assert res.link == f"{site}/current"
    assert os.readlink(site / "current") == "releases/r2"
    assert (site / "releases" / "r1").is_dir()  # the old release was not touched


def test_relative_link_path_and_target(
    site: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative LINK and TARGET are taken from the current directory."""
    monkeypatch.chdir(site / "releases")
    res = switch("../current", "r2")
    assert res.new == "releases/r2"
    assert (site / "current" / ".").resolve() == site / "releases" / "r2"


# -- relative / absolute ---------------------------------------------------------


def test_default_relative_when_under_link_dir(site: pathlib.Path) -> None:
    assert switch(site / "current", site / "releases" / "r1").new == "releases/r1"


def test_default_absolute_when_outside(
        site: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere").resolve()
    res = switch(site / "current", elsewhere)
    assert res.new == str(elsewhere)
    assert os.path.isabs(os.readlink(site / "current"))


def test_force_absolute(site: pathlib.Path) -> None:
    res = switch(site / "current", site / "releases" / "r1", relative=False)
    assert res.new == str((site / "releases" / "r1").resolve())
    assert os.readlink(site / "current") == res.new


def test_force_relative_outside(site: pathlib.Path) -> None:
    (site / "www").mkdir()
    res = switch(site / "www" / "current", site / "releases" / "r1", relative=True)
    assert res.new == "../releases/r1"
    assert (site / "www" / "current" / ".").resolve() == site / "releases" / "r1"


def test_relative_computed_from_real_directory(site: pathlib.Path) -> None:
    """LINK's directory reached through a symlink: the text must work from the real dir."""
    (site / "real" / "www").mkdir(parents=True)
    os.symlink(site / "real" / "www", site / "alias")
    res = switch(site / "alias" / "current", site / "releases" / "r1", relative=True)
    assert res.new == "../../releases/r1"
    assert (site / "alias" / "current" / ".").resolve() == site / "releases" / "r1"


def test_target_last_component_not_resolved(site: pathlib.Path) -> None:
    """A link may point at a link (current -> A): TARGET's last name is kept."""
    os.symlink("releases/r1", site / "A")
    assert switch(site / "current", site / "A").new == "A"
    assert os.readlink(site / "current") == "A"


# -- errors -------------------------------------------------------------------------


def test_refuses_real_directory(site: pathlib.Path) -> None:
    (site / "current").mkdir()
    with pytest.raises(IsADirectoryError) as info:
        switch(site / "current", site / "releases" / "r1")
    assert info.value.errno == errno.EISDIR
    assert info.value.filename == str(site / "current")
    assert (site / "current").is_dir() and not (site / "current").is_symlink()
    assert leftovers(site) == []


def test_refuses_regular_file(site: pathlib.Path) -> None:
    (site / "current").write_text("precious")
    with pytest.raises(FileExistsError) as info:
        switch(site / "current", site / "releases" / "r1")
    assert info.value.errno == errno.EEXIST
    assert (site / "current").read_text() == "precious"
    assert leftovers(site) == []


def test_missing_target(site: pathlib.Path) -> None:
    os.symlink("releases/r1", site / "current")
    missing = site / "releases" / "r9"
    with pytest.raises(FileNotFoundError) as info:
        switch(site / "current", missing)
    assert info.value.filename == str(missing)
    assert os.readlink(site / "current") == "releases/r1"
    assert leftovers(site) == []


def test_allow_missing(site: pathlib.Path) -> None:
    res = switch(site / "current", site / "releases" / "r9", allow_missing=True)
    assert res.new == "releases/r9"
    assert os.readlink(site / "current") == "releases/r9"


def test_missing_link_directory(site: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        switch(site / "nope" / "current", site / "releases" / "r1")
    assert info.value.filename == str(site / "nope")


def test_target_is_link_itself(site: pathlib.Path) -> None:
    os.symlink("releases/r1", site / "current")
    with pytest.raises(ValueError):
        switch(site / "current", site / "current")
    assert os.readlink(site / "current") == "releases/r1"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"link": b"/tmp/current"},
        {"target": b"/tmp"},
        {"link": 3},
        {"target": None},
        {"expect": 1.5},
        {"relative": "yes"},
        {"ab": 1},
        {"allow_missing": None},
    ],
)
def test_bad_types(site: pathlib.Path, kwargs: dict) -> None:  # type: ignore[type-arg]
    args = {"link": site / "current", "target": site / "releases" / "r1", **kwargs}
    with pytest.raises(TypeError):
        switch(**args)
    assert not os.path.lexists(site / "current")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"link": ""},
        {"target": ""},
        {"expect": ""},
        {"link": "cur\0rent"},
        {"target": "r\0"},
        {"link": "/"},
        {"link": "."},
        {"link": "a/.."},
    ],
)
def test_bad_values(site: pathlib.Path, kwargs: dict) -> None:  # type: ignore[type-arg]
    args = {"link": site / "current", "target": site / "releases" / "r1", **kwargs}
    with pytest.raises(ValueError):
        switch(**args)
    assert not os.path.lexists(site / "current")


def test_no_temp_left_when_rename_fails(
    site: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    os.symlink("releases/r1", site / "current")

    def broken_replace(src: str, dst: str, **kw: int) -> None:
        # the temporary link existed at this point
        assert stat.S_ISLNK(os.lstat(src, dir_fd=kw["src_dir_fd"]).st_mode)
        raise OSError(errno.EIO, "injected failure", dst)

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="injected failure"):
        switch(site / "current", site / "releases" / "r2")
    assert leftovers(site) == []
    assert os.readlink(site / "current") == "releases/r1"


def test_no_temp_left_on_interrupt(site: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(src: str, dst: str, **kw: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        switch(site / "current", site / "releases" / "r2")
    assert leftovers(site) == []
    assert not os.path.lexists(site / "current")


def test_temp_collision_picks_another_name(
    site: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An existing file with the temporary name is left alone and another name is used."""
    import secrets

    tokens = iter(["deadbeef", "deadbeef", "cafef00d"])
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(tokens))
    squatter = site / f".current.realdoc-tmp-{os.getpid()}-deadbeef"
    squatter.write_text("not ours")
    switch(site / "current", site / "releases" / "r1")
    assert squatter.read_text() == "not ours"
    assert os.readlink(site / "current") == "releases/r1"
    assert leftovers(site) == [squatter.name]


def test_long_link_name(site: pathlib.Path) -> None:
    """Temp and lock names stay within NAME_MAX even for a 255-byte link name."""
    name = "c" * 255
    res = switch(site / name, site / "releases" / "r1")
    assert res.new == "releases/r1"
    assert os.readlink(site / name) == "releases/r1"
    assert leftovers(site) == []
    assert all(len(n) <= 255 for n in os.listdir(site))


# -- compare-and-swap ---------------------------------------------------------------


def test_expect_match_raw_text(site: pathlib.Path) -> None:
    os.symlink("releases/r1", site / "current")
    res = switch(site / "current", site / "releases" / "r2", expect="releases/r1")
    assert res.old == "releases/r1"
    assert os.readlink(site / "current") == "releases/r2"


def test_expect_match_same_real_path(site: pathlib.Path) -> None:
    """A different spelling of the same directory matches too."""
    os.symlink("releases/r1", site / "current")
    switch(site / "current", site / "releases" / "r2",
           expect=site / "releases" / ".." / "releases" / "r1")
    assert os.readlink(site / "current") == "releases/r2"


def test_expect_mismatch(site: pathlib.Path) -> None:
    os.symlink("releases/r1", site / "current")
    with pytest.raises(SwitchConflict) as info:
        switch(site / "current", site / "releases" / "r3", expect="releases/r2")
    exc = info.value
    assert isinstance(exc, RuntimeError)
    assert (exc.link, exc.expected, exc.actual) == (
        str(site / "current"), "releases/r2", "releases/r1")
    assert "releases/r2" in str(exc) and "releases/r1" in str(exc)
    assert os.readlink(site / "current") == "releases/r1"
    assert leftovers(site) == []


def test_expect_when_link_missing(site: pathlib.Path) -> None:
    with pytest.raises(SwitchConflict) as info:
        switch(site / "current", site / "releases" / "r1", expect="releases/r1")
    assert info.value.actual is None
    assert not os.path.lexists(site / "current")


def test_expect_missing_paths_do_not_match(site: pathlib.Path) -> None:
    """Two dangling spellings are not 'the same real path'."""
    os.symlink("releases/gone", site / "current")
    with pytest.raises(SwitchConflict):
        switch(site / "current", site / "releases" / "r1", expect=site / "releases" / "gone" / ".")


def test_lock_serialises_switchers(site: pathlib.Path) -> None:
    """While another holder has the lock, switch waits."""
    os.symlink("releases/r1", site / "current")
    fd = os.open(site, os.O_RDONLY | os.O_DIRECTORY)  # the lock is LINK's directory
    fcntl.flock(fd, fcntl.LOCK_EX)
    done = threading.Event()

    def run() -> None:
        switch(site / "current", site / "releases" / "r2", expect="releases/r1")
        done.set()

    t = threading.Thread(target=run)
    t.start()
    try:
        assert not done.wait(0.3)
        assert os.readlink(site / "current") == "releases/r1"
    finally:
        os.close(fd)
    t.join(10)
    assert done.is_set()
    assert os.readlink(site / "current") == "releases/r2"


def test_cas_threads_exactly_one_wins(site: pathlib.Path) -> None:
    """Several rounds of N threads racing a CAS from the same old target."""
    os.symlink("releases/r1", site / "current")
    n = 16
    for rnd in range(5):
        old = os.readlink(site / "current")
        targets = [site / "releases" / f"t{rnd}-{i}" for i in range(n)]
        for t in targets:
            t.mkdir()
        barrier = threading.Barrier(n)
        wins: List[str] = []
        conflicts: List[Optional[str]] = []
        errors: List[BaseException] = []

        def run(target: pathlib.Path) -> None:
            barrier.wait()
            try:
                wins.append(switch(site / "current", target, expect=old).new)
            except SwitchConflict as exc:
                conflicts.append(exc.actual)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(t,)) for t in targets]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        assert errors == []
        assert len(wins) == 1, f"round {rnd}: {len(wins)} winners"
        assert len(conflicts) == n - 1
        assert set(conflicts) == {wins[0]}
        assert os.readlink(site / "current") == wins[0]
    assert leftovers(site) == []


def test_cas_processes_exactly_one_wins(site: pathlib.Path) -> None:
    os.symlink("releases/r1", site / "current")
    n = 8
    code = (
        "import sys\n"
        "from realdoc._switch import switch, SwitchConflict\n"
        "sys.stdin.read()\n"  # wait for the start signal
        "try:\n"
        "    switch(sys.argv[1], sys.argv[2], expect='releases/r1')\n"
        "except SwitchConflict:\n"
        "    sys.exit(3)\n"
    )
    env = child_env()
    procs = []
    for i in range(n):
        (site / "releases" / f"p{i}").mkdir()
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", code, str(site / "current"),
                 str(site / "releases" / f"p{i}")],
                stdin=subprocess.PIPE,
                env=env,
            )
        )
    for p in procs:  # all interpreters are up; release them together
        assert p.stdin is not None
        p.stdin.close()
    codes = sorted(p.wait(60) for p in procs)
    assert codes == [0] + [3] * (n - 1)
    assert os.readlink(site / "current").startswith("releases/p")
    assert leftovers(site) == []


# -- A/B scheme ---------------------------------------------------------------------


def test_ab_first_deploy_uses_a(site: pathlib.Path) -> None:
    res = switch(site / "current", site / "releases" / "r1", ab=True)
    assert res == SwitchResult(link=str(site / "current"), old=None, new="releases/r1", letter="A")
    assert os.readlink(site / "current") == "A"
    assert os.readlink(site / "A") == "releases/r1"
    assert not os.path.lexists(site / "B")
    assert leftovers(site) == []


def test_ab_flips_and_repoints_idle_letter(site: pathlib.Path) -> None:
    link = site / "current"
    switch(link, site / "releases" / "r1", ab=True)
    res = switch(link, site / "releases" / "r2", ab=True)
    assert (res.old, res.new, res.letter) == ("releases/r1", "releases/r2", "B")
    assert os.readlink(link) == "B"
    assert os.readlink(site / "B") == "releases/r2"
    assert os.readlink(site / "A") == "releases/r1"  # the old letter still serves r1

    res = switch(link, site / "releases" / "r3", ab=True)
    assert (res.old, res.new, res.letter) == ("releases/r2", "releases/r3", "A")
    assert os.readlink(link) == "A"
    assert os.readlink(site / "A") == "releases/r3"
    assert os.readlink(site / "B") == "releases/r2"
    assert (link / ".").resolve() == site / "releases" / "r3"
    assert leftovers(site) == []


def test_ab_order_letter_before_link(site: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The idle letter is repointed before LINK is flipped to it."""
    switch(site / "current", site / "releases" / "r1", ab=True)
    order: List[str] = []
    real_replace = os.replace

    def replace(src: str, dst: str, **kw: int) -> None:
        order.append(os.path.basename(dst))
        real_replace(src, dst, **kw)

    monkeypatch.setattr(os, "replace", replace)
    switch(site / "current", site / "releases" / "r2", ab=True)
    assert order == ["B", "current"]


def test_ab_absolute(site: pathlib.Path) -> None:
    res = switch(site / "current", site / "releases" / "r1", ab=True, relative=False)
    real = site.resolve()
    assert res.new == str(real / "releases" / "r1")
    assert os.readlink(site / "current") == str(real / "A")
    assert os.readlink(site / "A") == str(real / "releases" / "r1")
    # An absolute link to a letter is still recognised as that letter.
    assert switch(site / "current", site / "releases" / "r2", ab=True).letter == "B"


def test_ab_migrates_plain_link(site: pathlib.Path) -> None:
    """current -> release (no letter yet): the idle letter is A, old is current's text."""
    os.symlink("releases/r1", site / "current")
    res = switch(site / "current", site / "releases" / "r2", ab=True, expect="releases/r1")
    assert (res.old, res.new, res.letter) == ("releases/r1", "releases/r2", "A")
    assert os.readlink(site / "current") == "A"


def test_ab_expect(site: pathlib.Path) -> None:
    switch(site / "current", site / "releases" / "r1", ab=True)
    with pytest.raises(SwitchConflict) as info:
        switch(site / "current", site / "releases" / "r2", ab=True, expect="releases/r3")
    assert info.value.actual == "releases/r1"
    assert os.readlink(site / "current") == "A"
    assert not os.path.lexists(site / "B")
    res = switch(site / "current", site / "releases" / "r2", ab=True,
                 expect=site / "releases" / "r1")
    assert res.letter == "B"


def test_ab_refuses_real_letter(site: pathlib.Path) -> None:
    switch(site / "current", site / "releases" / "r1", ab=True)
    (site / "B").mkdir()
    with pytest.raises(IsADirectoryError):
        switch(site / "current", site / "releases" / "r2", ab=True)
    assert os.readlink(site / "current") == "A"
    assert os.readlink(site / "A") == "releases/r1"
    assert leftovers(site) == []


def test_ab_refuses_letter_names(site: pathlib.Path) -> None:
    with pytest.raises(ValueError):
        switch(site / "A", site / "releases" / "r1", ab=True)
    os.symlink("releases/r1", site / "A")
    with pytest.raises(ValueError):
        switch(site / "current", site / "A", ab=True)
    assert not os.path.lexists(site / "current")


def test_ab_no_temp_left_when_second_rename_fails(
    site: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    switch(site / "current", site / "releases" / "r1", ab=True)
    real_replace = os.replace

    def replace(src: str, dst: str, **kw: int) -> None:
        if os.path.basename(dst) == "current":
            raise OSError(errno.EIO, "injected failure", dst)
        real_replace(src, dst, **kw)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError):
        switch(site / "current", site / "releases" / "r2", ab=True)
    assert leftovers(site) == []
    # current still serves r1 through A; B was prepared but is idle.
    assert os.readlink(site / "current") == "A"
    assert os.readlink(site / "A") == "releases/r1"


# ======================================================== bad and edge-case input

@pytest.mark.usefixtures("watchdog")
@pytest.mark.parametrize("kwargs,exc,msg", [
    (dict(link=b"/x/current", target="/x"), TypeError,
     "link must be str or os.PathLike, not bytes"),
    (dict(link=PathLike(b"/x/current"), target="/x"), TypeError,
     "link must be a str path, not bytes"),
    (dict(link=None, target="/x"), TypeError, "link must be str or os.PathLike, not NoneType"),
    (dict(link="/x/current", target=1), TypeError, "target must be str or os.PathLike, not int"),
    (dict(link="/x/current", target="/x", expect=b"r1"), TypeError,
     "expect must be str or os.PathLike, not bytes"),
    (dict(link="/x/current", target="/x", relative=1), TypeError,
     "relative must be a bool or None, not int"),
    (dict(link="/x/current", target="/x", ab="yes"), TypeError, "ab must be a bool, not str"),
    (dict(link="/x/current", target="/x", allow_missing=None), TypeError,
     "allow_missing must be a bool, not NoneType"),
    (dict(link="", target="/x"), ValueError, "link must not be empty"),
    (dict(link="/x/current", target=""), ValueError, "target must not be empty"),
    (dict(link="/x/cur\0rent", target="/x"), ValueError, "link must not contain NUL"),
    (dict(link="/x/current", target="/\0"), ValueError, "target must not contain NUL"),
    (dict(link="/", target="/x"), ValueError, "link must name a symlink, not '/'"),
    (dict(link="..", target="/x"), ValueError, "link must name a symlink, not '..'"),
])
def test_switch_bad_arguments(kwargs: Any, exc: Any, msg: Any) -> None:
    with pytest.raises(exc) as ei:
        switch(**kwargs)
    assert str(ei.value) == msg


@pytest.mark.usefixtures("watchdog")
def test_switch_file_system_errors(deploy: str) -> None:
    d = deploy
    cases: List[Tuple[Dict[str, Any], int, Optional[str]]] = [
        (dict(link=f"{d}/adir", target=f"{d}/releases/r2"), errno.EISDIR, f"{d}/adir"),
        (dict(link=f"{d}/afile", target=f"{d}/releases/r2"), errno.EEXIST, f"{d}/afile"),
        (dict(link=f"{d}/nodir/current", target=f"{d}/releases/r2"), errno.ENOENT, f"{d}/nodir"),
        (dict(link=f"{d}/current", target=f"{d}/releases/r9"), errno.ENOENT, f"{d}/releases/r9"),
        (dict(link=f"{d}/afile/current", target=f"{d}/releases/r2"), errno.ENOTDIR, f"{d}/afile"),
        (dict(link=f"{d}/" + "l" * 256, target=f"{d}/releases/r2"), errno.ENAMETOOLONG, None),
        (dict(link=f"{d}/current", target=f"{d}/" + "t" * 256), errno.ENAMETOOLONG,
         f"{d}/" + "t" * 256),
    ]
    for kwargs, code, filename in cases:
        got = outcome(lambda: switch(**kwargs))
        assert got[0] != "ok" and got[1] == code, (kwargs, got)
        if filename is not None:
            assert got[3] == filename, (kwargs, got)
        assert os.readlink(f"{d}/current") == "releases/r1"
        assert tmp_leftovers(d) == []


@pytest.mark.usefixtures("watchdog")
def test_switch_conflict_and_names(deploy: str) -> None:
    d = deploy
    with pytest.raises(SwitchConflict) as ei:
        switch(f"{d}/current", f"{d}/releases/r2", expect="releases/r9")
    assert ei.value.actual == "releases/r1" and ei.value.expected == "releases/r9"
    assert os.readlink(f"{d}/current") == "releases/r1"
    with pytest.raises(ValueError, match="the link or one of its letters"):
        switch(f"{d}/current", f"{d}/current")
    with pytest.raises(ValueError, match="may not be named A or B"):
        switch(f"{d}/A", f"{d}/releases/r2", ab=True)
    # 255-byte names, non-UTF-8 names: fine
    long = "l" * 255
    res = switch(f"{d}/{long}", f"{d}/releases/r2")
    assert res.old is None and os.readlink(f"{d}/{long}") == "releases/r2"
    os.mkdir(os.fsencode(d) + b"/releases/caf\xe9")
    res = switch(f"{d}/current", os.fsdecode(os.fsencode(d) + b"/releases/caf\xe9"))
    assert os.readlink(os.fsencode(d) + b"/current") == b"releases/caf\xe9"
    assert tmp_leftovers(d) == []


@pytest.mark.usefixtures("watchdog")
def test_deleted_cwd_switch(root: str) -> None:
    os.makedirs(f"{root}/rel")

    def child() -> Tuple[Any, ...]:
        os.makedirs(f"{root}/gone")
        os.chdir(f"{root}/gone")
        os.rmdir(f"{root}/gone")
        return outcome(lambda: switch("current", f"{root}/rel"))

    got = fork_call(child)
    assert got[0] == "FileNotFoundError" and got[1] == errno.ENOENT, got


# -- regressions of issue 14 (items 1, 4, 7, 15h) -------------------------------------


def outside_snapshot(directory: pathlib.Path) -> List[tuple]:  # type: ignore[type-arg]
    """Every name under ``directory`` with its type and content, to detect changes."""
    snap = []
    for dirpath, dirnames, filenames in os.walk(directory):
        for n in sorted(dirnames + filenames):
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            content = pathlib.Path(p).read_bytes() if stat.S_ISREG(st.st_mode) else b""
            snap.append((p, stat.S_IFMT(st.st_mode), content))
    return sorted(snap)


def test_ab_letters_belong_to_one_link(site: pathlib.Path) -> None:
    """Issue 14 item 1: deploying staging with --ab never touches current's letters."""
    for r in ("prod1", "prod2", "stage1", "stage2"):
        (site / "releases" / r).mkdir()
    current, staging = site / "current", site / "staging"
    assert switch(current, site / "releases" / "prod1", ab=True).letter == "A"
    res = switch(staging, site / "releases" / "stage1", ab=True)
    assert (res.letter, res.old, res.new) == ("staging.A", None, "releases/stage1")
    assert os.readlink(current) == "A" and os.readlink(site / "A") == "releases/prod1"
    assert os.readlink(staging) == "staging.A"
    assert (current / ".").resolve() == site / "releases" / "prod1"
    assert (staging / ".").resolve() == site / "releases" / "stage1"

    res = switch(staging, site / "releases" / "stage2", ab=True)
    assert (res.letter, res.old) == ("staging.B", "releases/stage1")
    assert switch(current, site / "releases" / "prod2", ab=True).letter == "B"
    assert (current / ".").resolve() == site / "releases" / "prod2"
    assert (staging / ".").resolve() == site / "releases" / "stage2"
    assert sorted(os.listdir(site)) == [
        "A", "B", "current", "releases", "staging", "staging.A", "staging.B"]


def test_ab_refuses_a_letter_another_link_points_at(site: pathlib.Path) -> None:
    """Issue 14 item 1, second defence: a letter some other link uses is never repointed."""
    switch(site / "current", site / "releases" / "r1", ab=True)  # current -> A -> r1
    os.symlink("B", site / "legacy")  # e.g. left by 0.1.0, or made by hand
    os.symlink("releases/r3", site / "B")
    with pytest.raises(OSError) as info:
        switch(site / "current", site / "releases" / "r2", ab=True)
    assert info.value.errno == errno.EBUSY
    assert info.value.filename == str(site / "B")
    assert "legacy" in str(info.value)
    assert os.readlink(site / "current") == "A"
    assert os.readlink(site / "B") == "releases/r3"  # unchanged
    assert leftovers(site) == []


def test_ab_migrates_a_0_1_0_staging_link_off_current_letter(site: pathlib.Path) -> None:
    """0.1.0 left ``staging -> A`` shared with current: the next switch moves it to staging.A."""
    switch(site / "current", site / "releases" / "r1", ab=True)
    os.symlink("A", site / "staging")
    res = switch(site / "staging", site / "releases" / "r2", ab=True,
                 expect=site / "releases" / "r1")
    assert res.letter == "staging.A"
    assert os.readlink(site / "A") == "releases/r1"  # current still serves r1
    assert (site / "current" / ".").resolve() == site / "releases" / "r1"
    assert (site / "staging" / ".").resolve() == site / "releases" / "r2"


def test_nothing_but_link_and_letters_after_100_switches(site: pathlib.Path) -> None:
    """Issue 12 / issue 14 item 4: no lock file, no temporary link, ever."""
    for i in range(100):
        switch(site / "current", site / "releases" / f"r{1 + i % 3}", ab=i % 3 != 0)
    assert sorted(os.listdir(site)) == ["A", "B", "current", "releases"]


def test_refused_switch_leaves_nothing(site: pathlib.Path) -> None:
    """Issue 14 item 15h: a refused compare-and-swap creates no file at all."""
    os.symlink("releases/r1", site / "current")
    with pytest.raises(SwitchConflict):
        switch(site / "current", site / "releases" / "r2", expect="releases/r3")
    with pytest.raises(SwitchConflict):
        switch(site / "current", site / "releases" / "r2", expect="releases/r3", ab=True)
    with pytest.raises(FileNotFoundError):
        switch(site / "current", site / "releases" / "r9")
    assert sorted(os.listdir(site)) == ["current", "releases"]


def test_old_lock_file_is_deleted(site: pathlib.Path) -> None:
    """A 0.1.0 lock file is removed; a directory of that name is left alone."""
    os.symlink("releases/r1", site / "current")
    (site / ".current.realdoc-lock").write_text("")
    switch(site / "current", site / "releases" / "r2")
    assert sorted(os.listdir(site)) == ["current", "releases"]
    (site / ".current.realdoc-lock").mkdir()
    switch(site / "current", site / "releases" / "r3")
    assert (site / ".current.realdoc-lock").is_dir()


@pytest.mark.parametrize("ab", [False, True], ids=["plain", "ab"])
def test_planted_symlinks_are_never_followed(
    site: pathlib.Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
    ab: bool,
) -> None:
    """Issue 14 item 4: symlinks planted at every name a switch touches stay in place.

    Dangling symlinks (whose target would be created by a follow) and symlinks to a
    file outside are planted at the 0.1.0 lock name, at the temporary names (made
    predictable here) and at the letters; nothing outside LINK's directory changes.
    """
    import secrets

    outside = tmp_path_factory.mktemp("outside")
    (outside / "victim").write_text("precious")
    before = outside_snapshot(outside)
    pid = os.getpid()
    real_token = secrets.token_hex
    tokens = iter(["deadbeef", "0badf00d"] * 3)  # each planted name is tried first
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(tokens, None) or real_token(n))
    plants = {
        ".current.realdoc-lock": outside / "nologin",  # dangling: O_CREAT would make it
        f".current.realdoc-tmp-{pid}-deadbeef": outside / "tmp-dangling",
        f".A.realdoc-tmp-{pid}-deadbeef": outside / "victim",
        f".B.realdoc-tmp-{pid}-0badf00d": outside / "tmp-dangling-b",
        f".current.realdoc-tmp-{pid}-0badf00d": outside / "victim",
    }
    if ab:
        plants["A"] = outside / "letter-dangling"
        plants["B"] = outside / "victim"
    for name, to in plants.items():
        os.symlink(to, site / name)
    for i in range(3):
        switch(site / "current", site / "releases" / f"r{1 + i}", ab=ab)
    assert outside_snapshot(outside) == before
    assert (site / "current" / ".").resolve() == site / "releases" / "r3"
    for name in plants:
        if name in ("A", "B", ".current.realdoc-lock"):
            continue  # letters were repointed (renamed over), the old lock removed
        assert os.readlink(site / name) == str(plants[name])  # squatters kept, unfollowed
    assert not os.path.lexists(site / ".current.realdoc-lock")
    if ab:
        assert {os.readlink(site / "A"), os.readlink(site / "B")} == {"releases/r2", "releases/r3"}


def test_planted_old_lock_symlink_to_outside_file_is_unlinked_not_followed(
    site: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "victim").write_text("precious")
    os.symlink(outside / "victim", site / ".current.realdoc-lock")
    switch(site / "current", site / "releases" / "r1")
    assert (outside / "victim").read_text() == "precious"
    assert sorted(os.listdir(site)) == ["current", "releases"]


def dead_pid() -> int:
    """The pid of a child that has exited and been reaped."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_stale_temp_links_of_dead_switchers_are_removed(site: pathlib.Path) -> None:
    """Issue 14 item 7: a killed switcher's temporary link goes at the next switch."""
    dead = dead_pid()
    live = os.getppid()
    stale = [f".current.realdoc-tmp-{dead}-0badf00d", f".A.realdoc-tmp-{dead}-00000000"]
    kept = [
        f".current.realdoc-tmp-{live}-0badf00d",  # a live switcher's: never touched
        f".current.realdoc-tmp-{os.getpid()}-cafef00d",  # our own pid: never touched
    ]
    for name in stale + kept:
        os.symlink("releases/r1", site / name)
    squatter = site / f".current.realdoc-tmp-{dead}-feedface"
    squatter.write_text("not a link")  # not a symlink: not realdoc's, left alone
    switch(site / "current", site / "releases" / "r2")
    assert leftovers(site) == sorted(kept + [squatter.name])
    assert os.readlink(site / "current") == "releases/r2"


def test_temp_link_of_killed_cli_switcher_is_removed(site: pathlib.Path) -> None:
    """A switcher killed with SIGKILL between symlink(2) and rename(2) (a real process)."""
    code = (
        "import os, signal, sys\n"
        "from realdoc._switch import switch\n"
        "real = os.replace\n"
        "def killed(*a, **k):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "os.replace = killed\n"
        "switch(sys.argv[1], sys.argv[2])\n"
    )
    os.symlink("releases/r1", site / "current")
    proc = subprocess.run([sys.executable, "-c", code, str(site / "current"),
                           str(site / "releases" / "r2")], env=child_env(),
                          timeout=60)
    assert proc.returncode == -9
    assert len(leftovers(site)) == 1  # what 0.1.0 left behind for good
    switch(site / "current", site / "releases" / "r3")
    assert leftovers(site) == []
    assert sorted(os.listdir(site)) == ["current", "releases"]


# -- check=: the guard for rollover ----------------------------------------------------


def test_check_passes_then_flips_and_runs_in_target(site: pathlib.Path) -> None:
    from realdoc import SwitchCheckFailed  # noqa: F401  (exported at the top level)

    link = site / "current"
    os.symlink("releases/r1", link)
    target = site / "releases" / "r2"
    (target / "app.py").write_text("import os\nopen('imported', 'w').write(os.getcwd())\n")
    res = switch(link, target, check=[sys.executable, "-c", "import app"])
    assert res.new == "releases/r2" and os.readlink(link) == "releases/r2"
    assert (target / "imported").read_text() == str(target.resolve())  # cwd was TARGET


@pytest.mark.parametrize("ab", [False, True])
def test_check_fails_link_untouched(site: pathlib.Path, ab: bool) -> None:
    from realdoc import SwitchCheckFailed

    link = site / "current"
    switch(link, site / "releases" / "r1", ab=ab)
    before = {n: os.readlink(site / n) for n in os.listdir(site) if (site / n).is_symlink()}
    target = site / "releases" / "r2"
    (target / "app.py").write_text("import no_such_module_here\n")
    command = [sys.executable, "-c", "import app"]
    with pytest.raises(SwitchCheckFailed) as info:
        switch(link, target, ab=ab, check=command)
    exc = info.value
    assert (exc.link, exc.target, exc.command, exc.returncode) == (
        str(link), str(target), command, 1)
    assert "exit status 1" in str(exc) and "left untouched" in str(exc)
    after = {n: os.readlink(site / n) for n in os.listdir(site) if (site / n).is_symlink()}
    assert after == before
    assert leftovers(site) == []


def test_check_killed_or_not_startable(site: pathlib.Path) -> None:
    from realdoc import SwitchCheckFailed

    link = site / "current"
    os.symlink("releases/r1", link)
    with pytest.raises(SwitchCheckFailed) as killed:
        switch(link, site / "releases" / "r2",
               check=[sys.executable, "-c", "import os, signal; os.kill(os.getpid(), 9)"])
    assert killed.value.returncode == -9 and "signal 9" in killed.value.reason
    with pytest.raises(SwitchCheckFailed) as missing:
        switch(link, site / "releases" / "r2", check=[str(site / "no-such-command")])
    assert missing.value.returncode == 127 and "cannot run it" in missing.value.reason
    assert os.readlink(link) == "releases/r1"


@pytest.mark.parametrize("check, error", [
    ("python -c 'import app'", TypeError),   # a lone str is never split
    (b"true", TypeError),
    ([], ValueError),
    (["true", 1], TypeError),
    (["tr\0ue"], ValueError),
    (42, TypeError),
])
def test_check_bad_values(site: pathlib.Path, check: object, error: type) -> None:
    link = site / "current"
    os.symlink("releases/r1", link)
    with pytest.raises(error):
        switch(link, site / "releases" / "r2", check=check)  # type: ignore[arg-type]
    assert os.readlink(link) == "releases/r1"


def test_check_needs_an_existing_target(site: pathlib.Path) -> None:
    link = site / "current"
    os.symlink("releases/r1", link)
    with pytest.raises(FileNotFoundError):
        switch(link, site / "releases" / "r9", allow_missing=True, check=["true"])
    assert os.readlink(link) == "releases/r1"
