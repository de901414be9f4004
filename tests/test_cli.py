"""Tests for the realdoc command line: ``python -m realdoc`` and ``realdoc.cli.main``."""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import os
import pathlib
import subprocess
import sys
import time
import warnings
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Union

import pytest
from helpers import (
    child_env,
    fork_call,
    make_link_chain,
    make_path_of_length,
    make_permission_tree,
    outcome,
    tmp_leftovers,
)

import realdoc
from realdoc._switch import switch
from realdoc.cli import commands as cli

Arg = Union[str, bytes, "os.PathLike[str]"]


def run(*args: Arg) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m realdoc ARGS`` with the realdoc this process imported."""
    env = child_env()
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
    env = child_env()
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
    argvs: List[List[Arg]] = [["resolve", "--use-readlink", path],
                              ["resolve", path, "--use-readlink"]]
    for argv in argvs:
        proc = run(*argv)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == os.fsencode(expected) + b"\n"
    assert expected == f"{site}/releases/r1/htdocs"


def test_resolve_use_readlink_with_start(
        site: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(site / "current" / "htdocs")
    expected = realdoc.first_link(path, start=str(site))
    for argv in (
        ["resolve", "--use-readlink", str(site), path],
        ["resolve", path, "--use-readlink", str(site)],
        ["resolve", f"--use-readlink={site}", path],
    ):
        assert cli.main(argv) == 0
        assert capsys.readouterr().out == expected + "\n"


def test_resolve_use_readlink_bad_start(
        site: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(site / "current" / "htdocs")
    # A usage error (issue 14 item 15d): exit 2, argparse's usage line and message.
    assert cli.main(["resolve", "--use-readlink", "/nonexistent-prefix", path]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: ")
    assert err.rstrip("\n").split("\n")[-1].startswith(
        "realdoc resolve: error: --use-readlink START PATH: ")


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


def test_resolve_json_error_is_plain(
        site: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["resolve", "--json", str(site / "nope")]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert one_line(err)


@pytest.mark.parametrize("name", ["not-a-dir/x", "loop"])
def test_resolve_other_errnos(
        site: pathlib.Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
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


def test_switch_relative_absolute_flags(
        site: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
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


def test_switch_expect_link_missing(
        tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r1").mkdir()
    argv = ["switch", str(tmp_path / "current"), str(tmp_path / "r1"), "--expect", "r0"]
    assert cli.main(argv) == 3
    err = capsys.readouterr().err
    assert one_line(err) and "does not exist" in err


def test_switch_missing_target_exit_1(
        site: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
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


def test_switch_empty_argument_exit_1(
        site: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
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
    env = child_env()
    procs = []
    for i in range(6):
        (site / "releases" / f"p{i}").mkdir()
        argv: Sequence[str] = [
            sys.executable, "-m", "realdoc", "switch", "--expect", "releases/r1",
            str(site / "current"), str(site / "releases" / f"p{i}"),
        ]
        procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
    codes = sorted(p.wait(60) for p in procs)
    assert codes == [0, 3, 3, 3, 3, 3]


# ======================================================== bad and edge-case input
# Usage errors (exit 2), resolution and switch errors (exit 1, or 3 for a refused
# switch): one line on stderr, nothing on stdout, never a traceback.

def run_cli(*args: Any, cwd: Optional[str] = None,
            preexec: Optional[Callable[[], None]] = None) -> subprocess.CompletedProcess[bytes]:
    argv = [sys.executable, "-m", "realdoc", *[os.fspath(a) for a in args]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # preexec_fn with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        return subprocess.run(argv, capture_output=True, env=child_env(), cwd=cwd,
                              preexec_fn=preexec, timeout=60)


def one_error_line(stderr: bytes, prefix: bytes) -> str:
    text = stderr.decode("utf-8", "surrogateescape")
    assert stderr.endswith(b"\n") and stderr.count(b"\n") == 1, f"not one line: {stderr!r}"
    assert stderr.startswith(prefix), stderr
    return text


@pytest.mark.usefixtures("watchdog")
def test_permission_denied_cli_and_switch(root: str) -> None:
    make_permission_tree(root)

    def child() -> List[Any]:
        out = []
        for argv in (["resolve", f"{root}/priv/x"],
                     ["resolve", "--use-readlink", f"{root}/priv/x/y"],
                     ["resolve", "--json", f"{root}/priv/x/y/z"]):
            err = io.StringIO()
            so = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(so):
                rc = cli.main(argv)
            out.append((argv, rc, so.getvalue(), err.getvalue()))
        out.append(outcome(lambda: switch(f"{root}/priv/newlink", f"{root}/pub")))
        out.append(outcome(lambda: switch(f"{root}/pub/newlink", f"{root}/pub/a")))
        return out

    *cli_runs, sw_priv, sw_pub = fork_call(child, as_nobody=True)
    for argv, rc, out, err in cli_runs:
        assert rc == 1 and out == "", (argv, rc, out, err)
        assert err.count("\n") == 1 and err.startswith(f"realdoc: cannot resolve {argv[-1]!r}: ")
        assert err.endswith("Permission denied [Errno 13]\n"), err
    assert sw_priv[0] == "PermissionError" and sw_priv[1] == errno.EACCES, sw_priv
    assert sw_pub[0] == "PermissionError" and sw_pub[1] == errno.EACCES, sw_pub
    assert sorted(os.listdir(f"{root}/pub")) == ["a"]  # nothing left behind


@pytest.mark.usefixtures("watchdog")
def test_deleted_cwd_cli(root: str) -> None:
    os.makedirs(f"{root}/gone")

    def pre() -> None:
        os.chdir(f"{root}/gone")
        os.rmdir(f"{root}/gone")

    for args in (["."], ["--use-readlink", "x"], ["--json", ".."]):
        os.makedirs(f"{root}/gone", exist_ok=True)
        proc = run_cli("resolve", *args, preexec=pre)
        assert proc.returncode == 1, proc
        assert proc.stdout == b""
        one_error_line(proc.stderr, f"realdoc: cannot resolve {args[-1]!r}: ".encode())
        assert proc.stderr.endswith(b"No such file or directory [Errno 2]\n")


@pytest.mark.usefixtures("watchdog")
def test_docroot_that_is_a_file_cli(site_paths: Dict[str, str]) -> None:
    proc = run_cli("resolve", site_paths["file"] + "/")
    assert proc.returncode == 1 and proc.stdout == b""
    one_error_line(proc.stderr, b"realdoc: cannot resolve ")
    assert proc.stderr.endswith(b": Not a directory [Errno 20]\n")


CLI_USAGE = [
    [], ["frobnicate"], ["resolve"], ["resolve", "a", "b"], ["resolve", "--bogus", "x"],
    ["switch"], ["switch", "only-link"], ["switch", "--relative", "--absolute", "l", "t"],
    ["switch", "l", "t", "--expect"], ["resolve", "--json=1", "x"],
]


@pytest.mark.usefixtures("watchdog")
@pytest.mark.parametrize("argv", CLI_USAGE, ids=lambda a: " ".join(a) or "(none)")
def test_cli_usage_errors(argv: Any) -> None:
    proc = run_cli(*argv)
    assert proc.returncode == 2, proc
    assert proc.stdout == b""
    last = proc.stderr.decode().rstrip("\n").split("\n")[-1]
    assert last.startswith("realdoc") and ": error: " in last, proc.stderr
    assert b"Traceback" not in proc.stderr


@pytest.mark.usefixtures("watchdog")
def test_cli_resolution_errors(site_paths: Dict[str, str], chain10k: str) -> None:
    root = site_paths["root"]
    top41 = make_link_chain(root, 41)
    top10k = chain10k
    os.symlink("self", f"{root}/self")
    long4096 = make_path_of_length(root, 4096)
    os.makedirs(os.path.dirname(long4096))
    cases = [
        (["resolve", ""], "No such file or directory [Errno 2]"),
        (["resolve", f"{root}/nope"], "No such file or directory [Errno 2]"),
        (["resolve", f"{root}/dangling"], "No such file or directory [Errno 2]"),
        (["resolve", site_paths["file"] + "/"], "Not a directory [Errno 20]"),
        (["resolve", top41], "Too many levels of symbolic links [Errno 40]"),
        (["resolve", top10k], "Too many levels of symbolic links [Errno 40]"),
        (["resolve", f"{root}/self"], "Too many levels of symbolic links [Errno 40]"),
        (["resolve", long4096], "File name too long [Errno 36]"),
        (["resolve", f"{root}/" + "c" * 256], "File name too long [Errno 36]"),
        (["resolve", "--use-readlink", long4096], "File name too long [Errno 36]"),
        (["resolve", "--json", f"{root}/nope"], "No such file or directory [Errno 2]"),
        (["resolve", "a\udcff"], "No such file or directory [Errno 2]"),
    ]
    for argv, tail in cases:
        t = time.monotonic()
        proc = run_cli(*argv)
        assert time.monotonic() - t < 30
        assert proc.returncode == 1, (argv, proc)
        assert proc.stdout == b"", argv
        line = one_error_line(proc.stderr, b"realdoc: cannot resolve ")
        assert tail in line, (argv, line)
    # the path is quoted with repr: a newline in it cannot split the message
    proc = run_cli("resolve", f"{root}/two\nlines")
    assert proc.returncode == 1
    one_error_line(proc.stderr, b"realdoc: cannot resolve ")
    # START and PATH that do not fit together are usage errors (exit 2, issue 14 item 15d)
    usage = [
        (["resolve", "--use-readlink", "relative", site_paths["docroot"]],
         "start must be an absolute path, got 'relative'"),
        (["resolve", "--use-readlink", f"{root}/cur", site_paths["docroot"]],
         "is not a component-wise prefix"),
        (["resolve", "--use-readlink", "/", "relative/path"], "start needs an absolute path"),
    ]
    for argv, tail in usage:
        proc = run_cli(*argv)
        assert proc.returncode == 2, (argv, proc)
        assert proc.stdout == b"", argv
        last = proc.stderr.decode().rstrip("\n").split("\n")[-1]
        assert last.startswith("realdoc resolve: error: --use-readlink START PATH: "), (argv, last)
        assert tail in last, (argv, last)


@pytest.mark.usefixtures("watchdog")
def test_cli_non_utf8_and_long_paths(site_paths: Dict[str, str]) -> None:
    root = os.fsencode(site_paths["root"])
    os.makedirs(root + b"/rel-caf\xe9/d\xff")
    os.symlink(b"rel-caf\xe9", root + b"/cur\xfe")
    proc = run_cli("resolve", root + b"/cur\xfe/d\xff")
    assert proc.returncode == 0, proc
    assert proc.stdout == root + b"/rel-caf\xe9/d\xff\n"
    proc = run_cli("resolve", "--json", root + b"/cur\xfe/d\xff")
    assert proc.returncode == 0, proc
    assert json.loads(proc.stdout)["result"] == os.fsdecode(root + b"/rel-caf\xe9/d\xff")
    p4095 = make_path_of_length(site_paths["root"], 4095)
    os.makedirs(p4095)
    proc = run_cli("resolve", p4095)
    assert proc.returncode == 0 and proc.stdout == p4095.encode() + b"\n"
    proc = run_cli("resolve", "/" * 6000 + site_paths["root"].lstrip("/"))
    assert proc.returncode == 0 and proc.stdout == site_paths["root"].encode() + b"\n"


@pytest.mark.usefixtures("watchdog")
def test_cli_switch_errors(deploy: str) -> None:
    d = deploy
    cases = [
        (["switch", f"{d}/current", f"{d}/releases/r9"], 1, "realdoc: cannot switch "),
        (["switch", f"{d}/adir", f"{d}/releases/r2"], 1, "realdoc: cannot switch "),
        (["switch", f"{d}/afile", f"{d}/releases/r2"], 1, "realdoc: cannot switch "),
        (["switch", "", f"{d}/releases/r2"], 1, "realdoc: cannot switch ''"),
        (["switch", "/", f"{d}/releases/r2"], 1, "realdoc: cannot switch '/'"),
        (["switch", f"{d}/nodir/current", f"{d}/releases/r2"], 1, "realdoc: cannot switch "),
        (["switch", f"{d}/" + "l" * 256, f"{d}/releases/r2"], 1, "realdoc: cannot switch "),
        (["switch", f"{d}/current", f"{d}/releases/r2", "--expect", "releases/r9"], 3,
         "realdoc: switch refused: "),
        (["switch", f"{d}/current", f"{d}/releases/r2", "--ab", "--expect", "nope"], 3,
         "realdoc: switch refused: "),
    ]
    for argv, rc, prefix in cases:
        proc = run_cli(*argv)
        assert proc.returncode == rc, (argv, proc)
        assert proc.stdout == b""
        one_error_line(proc.stderr, prefix.encode())
        assert os.readlink(f"{d}/current") == "releases/r1"
        assert tmp_leftovers(d) == []


# -- regressions of issue 14 (items 1, 6, 15d, 15g) -----------------------------------


def test_switch_ab_two_links_in_one_directory(tmp_path: pathlib.Path) -> None:
    """Item 1: ``switch staging ... --ab`` never switches production's ``current``."""
    for r in ("prod1", "stage1"):
        (tmp_path / "releases" / r).mkdir(parents=True)
    proc = run("switch", tmp_path / "current", tmp_path / "releases" / "prod1", "--ab")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith(b"letter: A\n")
    proc = run("switch", tmp_path / "staging", tmp_path / "releases" / "stage1", "--ab")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"old: (none)\nnew: releases/stage1\nletter: staging.A\n"
    assert (tmp_path / "current" / ".").resolve() == (tmp_path / "releases" / "prod1").resolve()
    assert (tmp_path / "staging" / ".").resolve() == (tmp_path / "releases" / "stage1").resolve()


def run_with_stdout(stdout: Union[int, IO[Any]], *args: Arg) -> subprocess.CompletedProcess[bytes]:
    """``python -m realdoc ARGS`` with the given stdout (a file object or descriptor)."""
    env = child_env()
    argv: List[Union[str, bytes]] = [sys.executable, "-m", "realdoc"]
    argv.extend(os.fspath(a) for a in args)
    return subprocess.run(argv, stdout=stdout, stderr=subprocess.PIPE, env=env, timeout=60)


def test_switch_to_dev_full_is_still_a_success(site: pathlib.Path) -> None:
    """Item 6: the link was switched; ENOSPC on stdout is one line and exit 0."""
    with open("/dev/full", "wb") as full:
        proc = run_with_stdout(full, "switch", site / "current", site / "releases" / "r2")
    assert proc.returncode == 0
    assert os.readlink(site / "current") == "releases/r2"
    assert one_line(proc.stderr), proc.stderr
    assert proc.stderr.startswith(b"realdoc: cannot write the result to stdout: ")
    assert b"[Errno 28]" in proc.stderr


def test_switch_with_stdout_closed_is_still_a_success(site: pathlib.Path) -> None:
    """Item 6: stdout closed (``>&-``): one line on stderr, exit 0, link switched."""
    env = child_env()
    proc = subprocess.run(
        ["sh", "-c", 'exec "$0" -m realdoc switch "$1" "$2" >&-', sys.executable,
         str(site / "current"), str(site / "releases" / "r2")],
        capture_output=True, env=env, timeout=60)
    assert proc.returncode == 0
    assert os.readlink(site / "current") == "releases/r2"
    assert one_line(proc.stderr), proc.stderr
    assert proc.stderr.startswith(b"realdoc: cannot write the result to stdout: ")


@pytest.mark.parametrize("argv", [["resolve"], ["resolve", "--json"], ["switch"],
                                  ["--help"]], ids=" ".join)
def test_broken_pipe_ends_quietly(site: pathlib.Path, argv: List[str]) -> None:
    """Item 6: ``realdoc ... | true``: no traceback, no message, the operation's exit code.

    The pipe's reading end is closed before the child starts, so the first write
    fails with EPIPE every time (what ``| true`` does when ``true`` exits first).
    """
    args: List[Arg] = list(argv)
    if argv[0] == "resolve":
        args.append(site / "current")
    elif argv[0] == "switch":
        args += [site / "current", site / "releases" / "r2"]
    r, w = os.pipe()
    os.close(r)
    try:
        proc = run_with_stdout(w, *args)
    finally:
        os.close(w)
    assert proc.returncode == 0
    assert proc.stderr == b""
    if argv[0] == "switch":
        assert os.readlink(site / "current") == "releases/r2"


def test_resolve_piped_into_true(site: pathlib.Path) -> None:
    """Item 6 as the issue wrote it, through a shell pipeline."""
    env = child_env()
    for _ in range(3):
        proc = subprocess.run(
            ["sh", "-c", '"$0" -m realdoc resolve --json "$1" | true', sys.executable,
             str(site / "current")], capture_output=True, env=env, timeout=60)
        assert proc.returncode == 0
        assert proc.stderr == b""


def test_resolve_bad_start_exits_2_subprocess(site: pathlib.Path) -> None:
    """Item 15d: a START that is not a prefix of PATH is a usage error."""
    for start in ("/nonexistent-prefix", "relative/start"):
        proc = run("resolve", "--use-readlink", start, site / "current" / "htdocs")
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == b""
        assert b"Traceback" not in proc.stderr
        assert proc.stderr.rstrip(b"\n").split(b"\n")[-1].startswith(
            b"realdoc resolve: error: --use-readlink START PATH: ")
    # A PATH that cannot be resolved is still a failure of the operation (exit 1).
    proc = run("resolve", "--use-readlink", str(site), site / "nope")
    assert proc.returncode == 1


def test_resolve_json_non_utf8_name_has_bytes_safe_fields(tmp_path: pathlib.Path) -> None:
    """Item 15g: the ``*_b64`` fields carry the exact bytes; ``result`` has the escape."""
    import base64

    base = os.fsencode(tmp_path.resolve())
    release = base + b"/rel-caf\xe9"
    os.mkdir(release)
    os.symlink(b"rel-caf\xe9", base + b"/current")
    proc = run(b"resolve", b"--json", b"--use-readlink", base, base + b"/current")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert base64.b64decode(report["result_b64"], validate=True) == release
    assert base64.b64decode(report["path_b64"], validate=True) == base + b"/current"
    assert base64.b64decode(report["start_b64"], validate=True) == base
    assert report["result"].endswith("rel-caf\udce9")  # the documented escape
    assert os.fsencode(report["result"]) == release  # surrogateescape round trip
    proc = run("resolve", "--json", tmp_path)
    assert json.loads(proc.stdout)["start_b64"] is None


# -- switch --check ------------------------------------------------------------------


def test_switch_check_failure_exits_4_and_leaves_link(site: pathlib.Path) -> None:
    (site / "releases" / "r2" / "app.py").write_text("raise SystemExit(3)\n")
    proc = run("switch", site / "current", site / "releases" / "r2",
               "--check", f"{sys.executable} -c 'import app'")
    assert proc.returncode == 4, proc.stderr
    assert os.readlink(site / "current") == "releases/r1"
    assert b"switch refused: --check" in proc.stderr and b"exit status 3" in proc.stderr
    assert b"left untouched" in proc.stderr and proc.stdout == b""


def test_switch_check_success_flips(site: pathlib.Path) -> None:
    (site / "releases" / "r2" / "app.py").write_text("")
    proc = run("switch", site / "current", site / "releases" / "r2",
               "--check", f"{sys.executable} -c 'import app'")
    assert proc.returncode == 0, proc.stderr
    assert os.readlink(site / "current") == "releases/r2"
    assert proc.stdout == b"old: releases/r1\nnew: releases/r2\n"


@pytest.mark.parametrize("cmd", ["python -c 'import", "", "   "])
def test_switch_check_unparsable_is_a_usage_error(site: pathlib.Path, cmd: str) -> None:
    proc = run("switch", site / "current", site / "releases" / "r2", "--check", cmd)
    assert proc.returncode == 2, proc.stderr
    assert b"--check CMD" in proc.stderr
    assert os.readlink(site / "current") == "releases/r1"


def test_switch_help_says_check_guards_rollover(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["switch", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--check CMD" in out and "guard for rollover" in out and "exit 4" in out
