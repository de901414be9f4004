"""Tests for the realdoc command line: ``python -m realdoc`` and ``realdoc.cli.main``."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
from typing import List, Sequence, Union

import pytest

import realdoc
from realdoc.cli import commands as cli

# Children import the same realdoc as this process (installed, or src/ in development).
SRC = str(pathlib.Path(realdoc.__file__).resolve().parents[1])

Arg = Union[str, bytes, "os.PathLike[str]"]


def run(*args: Arg) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m realdoc ARGS`` with the realdoc this process imported."""
    pythonpath = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=pythonpath)
    argv: List[Union[str, bytes]] = [sys.executable, "-m", "realdoc"]
    argv.extend(os.fspath(a) for a in args)
    return subprocess.run(
        argv,
        capture_output=True,
        env=env,
        timeout=60,
    )


def one_line(data: Union[str, bytes]) -> bool:
    """True if ``data`` is exactly one newline-terminated line."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return text.endswith("\n") and text.count("\n") == 1


@pytest.fixture
def site(tmp_path: pathlib.Path) -> pathlib.Path:
    """``current -> releases/r1`` with an ``htdocs`` directory in each release."""
    for r in ("r1", "r2"):
        (tmp_path / "releases" / r / "htdocs").mkdir(parents=True)
    os.symlink("releases/r1", tmp_path / "current")
    return tmp_path.resolve()


# -- top level --------------------------------------------------------------------


def test_version_subprocess() -> None:
    proc = run("--version")
    assert proc.returncode == 0
    expected = f"realdoc {realdoc.__version__} ({realdoc.implementation})\n"
    assert proc.stdout.decode() == expected


def test_version_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"realdoc {realdoc.__version__} ({realdoc.implementation})\n"


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "resolve" in out and "switch" in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["resolve"],
        ["resolve", "--use-readlink"],
        ["resolve", "a", "b"],
        ["switch", "only-link"],
        ["switch", "--relative", "--absolute", "l", "t"],
        ["--bogus"],
    ],
)
def test_usage_errors_exit_2(argv: List[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "usage:" in err


def test_usage_error_subprocess() -> None:
    proc = run("resolve")
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert b"usage:" in proc.stderr


def test_commands_registration_is_extensible(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new subcommand is one add_parser function appended to COMMANDS."""

    def run_hello(args: argparse.Namespace) -> int:
        print(f"hello {args.who}")
        return 7

    def add_parser(subparsers: cli.Subparsers) -> None:
        p = subparsers.add_parser("hello", help="say hello")
        p.add_argument("who")
        p.set_defaults(func=run_hello)

    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, add_parser])
    assert cli.main(["hello", "world"]) == 7
    assert capsys.readouterr().out == "hello world\n"


# -- resolve --------------------------------------------------------------------


def test_resolve_subprocess(site: pathlib.Path) -> None:
    proc = run("resolve", site / "current" / "htdocs")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == os.fsencode(site / "releases" / "r1" / "htdocs") + b"\n"
    assert proc.stderr == b""


def test_resolve_in_process(site: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["resolve", str(site / "current")]) == 0
    out, err = capsys.readouterr()
    assert out == f"{site}/releases/r1\n"
    assert err == ""


def test_resolve_in_shell_substitution(site: pathlib.Path) -> None:
    """``$(realdoc resolve PATH)`` yields the bare path."""
    script = 'd=$("$0" -m realdoc resolve "$1") && cd "$d" && pwd -P'
    env = dict(os.environ, PYTHONPATH=SRC)
    proc = subprocess.run(
        ["sh", "-c", script, sys.executable, str(site / "current")],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == os.fsencode(site / "releases" / "r1") + b"\n"


def test_resolve_non_utf8_name_round_trips(
    tmp_path: pathlib.Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    base = os.fsencode(tmp_path.resolve())
    release = base + b"/rel-caf\xe9"
    os.mkdir(release)
    os.symlink(b"rel-caf\xe9", base + b"/current")
    proc = run(b"resolve", base + b"/current")  # bytes argv, passed through unchanged
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == release + b"\n"
    assert cli.main(["resolve", os.fsdecode(base + b"/current")]) == 0
    assert capsysbinary.readouterr().out == release + b"\n"


def test_resolve_use_readlink_without_start(site: pathlib.Path) -> None:
    path = site / "current" / "htdocs"
    expected = realdoc.first_link(str(path))
    argvs: List[List[Arg]] = [["resolve", "--use-readlink", path], ["resolve", path, "--use-readlink"]]
    for argv in argvs:
        proc = run(*argv)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == os.fsencode(expected) + b"\n"
    assert expected == f"{site}/releases/r1/htdocs"


def test_resolve_use_readlink_with_start(site: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(site / "current" / "htdocs")
    expected = realdoc.first_link(path, start=str(site))
    for argv in (
        ["resolve", "--use-readlink", str(site), path],
        ["resolve", path, "--use-readlink", str(site)],
        ["resolve", f"--use-readlink={site}", path],
    ):
        assert cli.main(argv) == 0
        assert capsys.readouterr().out == expected + "\n"


def test_resolve_use_readlink_bad_start(site: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(site / "current" / "htdocs")
    assert cli.main(["resolve", "--use-readlink", "/nonexistent-prefix", path]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert one_line(err)
    assert err.startswith(f"realdoc: cannot resolve {path!r}: ")


def test_resolve_json(site: pathlib.Path) -> None:
    path = str(site / "current" / "htdocs")
    proc = run("resolve", "--json", path)
    assert proc.returncode == 0, proc.stderr
    assert one_line(proc.stdout)
    report = json.loads(proc.stdout)
    assert report["path"] == path
    assert report["result"] == f"{site}/releases/r1/htdocs"
    assert report["mode"] == "realpath"
    assert report["start"] is None
    assert report["implementation"] == realdoc.implementation
    counts = report["syscalls"]
    assert set(counts) == set(realdoc.stats()["syscalls"])
    assert all(isinstance(n, int) and n >= 0 for n in counts.values())
    assert sum(counts.values()) >= 1  # a symlink had to be read somehow


def test_resolve_json_first_link(site: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(site / "current" / "htdocs")
    before = dict(realdoc.stats()["syscalls"])
    assert cli.main(["resolve", "--json", "--use-readlink", str(site), path]) == 0
    after = dict(realdoc.stats()["syscalls"])
    report = json.loads(capsys.readouterr().out)
    assert report["mode"] == "first_link"
    assert report["start"] == str(site)
    assert report["result"] == realdoc.first_link(path, start=str(site))
    # The report is exactly this resolution's share of the process counters.
    assert report["syscalls"] == {k: after[k] - before[k] for k in after}


def test_resolve_missing_path(site: pathlib.Path) -> None:
    path = str(site / "current" / "nope")
    proc = run("resolve", path)
    assert proc.returncode == 1
    assert proc.stdout == b""
    err = proc.stderr.decode()
    assert one_line(err)
    assert err.startswith(f"realdoc: cannot resolve {path!r}: ")
    assert "[Errno 2]" in err


def test_resolve_json_error_is_plain(site: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["resolve", "--json", str(site / "nope")]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert one_line(err)


@pytest.mark.parametrize("name", ["not-a-dir/x", "loop"])
def test_resolve_other_errnos(site: pathlib.Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    (site / "not-a-dir").write_text("")
    os.symlink("loop", site / "loop")
    path = str(site / name)
    assert cli.main(["resolve", path]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert one_line(err)
    assert path in err and "[Errno " in err


def test_resolve_nul_byte(capsys: pytest.CaptureFixture[str]) -> None:
    """argv cannot carry NUL, but main() may be called with one."""
    assert cli.main(["resolve", "/tmp/a\0b"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert one_line(err)
    assert err.startswith("realdoc: cannot resolve '/tmp/a\\x00b': ")


def test_resolve_error_with_newline_in_name_is_one_line(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["resolve", str(tmp_path / "a\nb")]) == 1
    assert one_line(capsys.readouterr().err)


# -- switch ---------------------------------------------------------------------


def test_switch_subprocess(site: pathlib.Path) -> None:
    proc = run("switch", site / "current", site / "releases" / "r2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"old: releases/r1\nnew: releases/r2\n"
    assert proc.stderr == b""
    assert os.readlink(site / "current") == "releases/r2"


def test_switch_first_deploy(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r1").mkdir()
    assert cli.main(["switch", str(tmp_path / "current"), str(tmp_path / "r1")]) == 0
    assert capsys.readouterr().out == "old: (none)\nnew: r1\n"


def test_switch_relative_absolute_flags(site: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    link, r2 = str(site / "current"), str(site / "releases" / "r2")
    assert cli.main(["switch", "--absolute", link, r2]) == 0
    assert os.readlink(link) == r2
    assert cli.main(["switch", link, r2, "--relative"]) == 0
    assert os.readlink(link) == "releases/r2"
    assert capsys.readouterr().out == f"old: releases/r1\nnew: {r2}\nold: {r2}\nnew: releases/r2\n"


def test_switch_expect_match(site: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["switch", str(site / "current"), str(site / "releases" / "r2")]
    assert cli.main([*args, "--expect", "releases/r1"]) == 0
    assert os.readlink(site / "current") == "releases/r2"


def test_switch_expect_conflict_exit_3(site: pathlib.Path) -> None:
    proc = run("switch", site / "current", site / "releases" / "r2", "--expect", "releases/r0")
    assert proc.returncode == 3
    assert proc.stdout == b""
    err = proc.stderr.decode()
    assert one_line(err)
    assert "'releases/r0'" in err and "'releases/r1'" in err
    assert os.readlink(site / "current") == "releases/r1"


def test_switch_expect_link_missing(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r1").mkdir()
    argv = ["switch", str(tmp_path / "current"), str(tmp_path / "r1"), "--expect", "r0"]
    assert cli.main(argv) == 3
    err = capsys.readouterr().err
    assert one_line(err) and "does not exist" in err


def test_switch_missing_target_exit_1(site: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = str(site / "releases" / "r9")
    assert cli.main(["switch", str(site / "current"), target]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert one_line(err)
    assert target in err and "[Errno 2]" in err
    assert os.readlink(site / "current") == "releases/r1"


def test_switch_allow_missing(site: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["switch", str(site / "current"), str(site / "releases" / "r9"), "--allow-missing"]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == "old: releases/r1\nnew: releases/r9\n"


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_switch_refuses_non_link_exit_1(
    tmp_path: pathlib.Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "r1").mkdir()
    link = tmp_path / "current"
    if kind == "dir":
        link.mkdir()
    else:
        link.write_text("")
    assert cli.main(["switch", str(link), str(tmp_path / "r1")]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert one_line(err) and str(link) in err
    assert not link.is_symlink()


def test_switch_empty_argument_exit_1(site: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["switch", str(site / "current"), ""]) == 1
    assert one_line(capsys.readouterr().err)


def test_switch_ab(site: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.unlink(site / "current")
    link = str(site / "current")
    assert cli.main(["switch", "--ab", link, str(site / "releases" / "r1")]) == 0
    assert cli.main(["switch", "--ab", link, str(site / "releases" / "r2")]) == 0
    assert capsys.readouterr().out == (
        "old: (none)\nnew: releases/r1\nletter: A\n"
        "old: releases/r1\nnew: releases/r2\nletter: B\n"
    )
    assert os.readlink(link) == "B"
    assert os.readlink(site / "B") == "releases/r2"


def test_switch_non_utf8_output(tmp_path: pathlib.Path) -> None:
    base = os.fsencode(tmp_path)
    os.mkdir(base + b"/caf\xe9")
    proc = run(b"switch", base + b"/current", base + b"/caf\xe9")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"old: (none)\nnew: caf\xe9\n"
    assert os.readlink(base + b"/current") == b"caf\xe9"


def test_switch_concurrent_cli_exactly_one_wins(site: pathlib.Path) -> None:
    env = dict(os.environ, PYTHONPATH=SRC)
    procs = []
    for i in range(6):
        (site / "releases" / f"p{i}").mkdir()
        argv: Sequence[str] = [
            sys.executable, "-m", "realdoc", "switch", "--expect", "releases/r1",
            str(site / "current"), str(site / "releases" / f"p{i}"),
        ]
        procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    codes = sorted(p.wait(60) for p in procs)
    assert codes == [0, 3, 3, 3, 3, 3]
