"""realdoc.cli.demo: short real runs, the table and verdicts, clean-up, Ctrl-C."""

from __future__ import annotations

import argparse
import io
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, List

import pytest
from helpers import child_env

from realdoc.cli import demo


@pytest.fixture
def private_tmp(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """Make the demo create its temporary tree where the test can look."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def demo_threads() -> List[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("realdoc-demo")]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="realdoc")
    demo.add_parser(p.add_subparsers(dest="command", required=True))
    return p


def test_short_run_tears_without_and_never_with(private_tmp: pathlib.Path) -> None:
    without, with_ = demo.run_demo(duration=1.0, clients=4, flip_interval=0.001, pause=0.003)
    assert without.name == "without realdoc" and with_.name == "with realdoc"
    assert without.requests > 0 and with_.requests > 0
    assert without.flips > 0 and with_.flips > 0
    assert without.torn > 0, "the demo's race did not show on this machine"
    assert with_.torn == 0 and with_.server_errors == 0
    assert without.server_errors == 0
    assert without.syscalls == 0  # realdoc is not involved at all
    assert with_.syscalls_per_request > 0  # every=0: a resolution per request
    assert len(with_.releases) > 1  # with realdoc the app still follows the flips
    assert os.listdir(private_tmp) == []  # the tree is gone
    assert demo_threads() == []  # server, flipper and clients stopped


def test_command_prints_the_table_and_exits_0(private_tmp: pathlib.Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(["demo", "--duration", "0.5", "--clients", "3",
                                "--flip-interval", "0.001", "--pause", "0.003"])
    assert args.func is demo.run
    assert args.func(args) == 0
    out, err = capsys.readouterr()
    assert "without realdoc" in out and "with realdoc" in out
    assert "syscalls/request" in out and "torn" in out
    assert "BUG" not in out
    assert "[with realdoc]" in err  # the progress line's final state
    assert os.listdir(private_tmp) == []


def test_defaults_match_the_documented_run() -> None:
    args = parser().parse_args(["demo"])
    assert (args.duration, args.clients, args.flip_interval, args.pause) == (
        demo.DEFAULT_DURATION, demo.DEFAULT_CLIENTS, demo.DEFAULT_FLIP_INTERVAL,
        demo.DEFAULT_PAUSE)
    assert 2 * args.duration <= 10


@pytest.mark.parametrize("argv", [["--duration", "0"], ["--duration", "-1"],
                                  ["--clients", "0"], ["--clients", "x"],
                                  ["--pause", "-0.1"], ["--flip-interval", "nan"]])
def test_bad_options_are_usage_errors(argv: List[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parser().parse_args(["demo"] + argv)
    assert info.value.code == 2


def test_run_demo_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="clients"):
        demo.run_demo(clients=0)
    with pytest.raises(ValueError, match="duration"):
        demo.run_demo(duration=0)


def _result(name: str, requests: int, torn: int, errors: int = 0) -> demo.PhaseResult:
    r = demo.PhaseResult(name)
    r.requests, r.torn, r.server_errors, r.seconds = requests, torn, errors, 4.0
    return r


def test_verdict_when_tearing_did_not_reproduce() -> None:
    out = io.StringIO()
    code = demo.report([_result("without realdoc", 100, 0), _result("with realdoc", 100, 0)],
                       clients=8, flip_interval=0.002, pause=0.003, out=out)
    assert code == 0
    assert "did not reproduce tearing; increase --duration or --pause" in out.getvalue()


@pytest.mark.parametrize("torn, errors", [(1, 0), (0, 1)])
def test_verdict_is_a_bug_when_with_realdoc_tears_or_fails(torn: int, errors: int) -> None:
    out = io.StringIO()
    results = [_result("without realdoc", 100, 50), _result("with realdoc", 100, torn, errors)]
    code = demo.report(results,
                       clients=8, flip_interval=0.002, pause=0.003, out=out)
    assert code == 1
    assert "BUG" in out.getvalue()


def test_table_shows_the_figures() -> None:
    out = io.StringIO()
    without, with_ = _result("without realdoc", 200, 150), _result("with realdoc", 210, 0)
    with_.syscalls = 420
    assert demo.report([without, with_], clients=8, flip_interval=0.002, pause=0.003, out=out) == 0
    text = out.getvalue()
    assert "150 (75.0%)" in text
    assert "2.00" in text  # syscalls per request
    assert "150 of 200" in text


def test_python_m_entry_point_runs(private_tmp: pathlib.Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--duration", "0.3", "--clients", "2"]) == 0
    assert "with realdoc" in capsys.readouterr().out


def test_ctrl_c_stops_server_removes_tree_and_exits_130(tmp_path: pathlib.Path) -> None:
    env = child_env(TMPDIR=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from realdoc.cli.demo import main; "
                               "sys.exit(main(['--duration', '30']))"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not any(p.name.startswith("realdoc-demo-") for p in tmp_path.iterdir()):
            assert proc.poll() is None, proc.communicate(timeout=5)
            assert time.monotonic() < deadline, "the demo did not start"
            time.sleep(0.05)
        time.sleep(0.5)  # let it get into a phase with clients and flips running
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=10)
    assert proc.returncode == 130, err
    assert b"interrupted" in err
    assert list(tmp_path.iterdir()) == []


# -- regressions of issue 14 (items 14, 15e) ------------------------------------------


def _start_demo(tmp_path: pathlib.Path, *args: str) -> subprocess.Popen:  # type: ignore[type-arg]
    env = child_env(TMPDIR=str(tmp_path))
    return subprocess.Popen(
        [sys.executable, "-m", "realdoc", "demo", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _wait_for_tree(proc: subprocess.Popen, tmp_path: pathlib.Path) -> pathlib.Path:  # type: ignore[type-arg]
    deadline = time.monotonic() + 20
    while True:
        found = list(tmp_path.glob("realdoc-demo-*/site/releases/r5/public/b.txt"))
        if found:
            return found[0].parents[3]  # .../site
        assert proc.poll() is None, proc.communicate(timeout=5)
        assert time.monotonic() < deadline, "the demo did not start"
        time.sleep(0.02)


def _stop(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)


def test_a_release_removed_under_the_flipper_is_one_line_not_a_traceback(
        tmp_path: pathlib.Path) -> None:
    """Item 14: the flipper's ``no such release`` ends the demo in one line, exit 1.

    A release removed from outside while the demo runs is what makes a flip fail;
    the demo used to end in a raw traceback.
    """
    import shutil

    proc = _start_demo(tmp_path, "--duration", "20")
    try:
        site = _wait_for_tree(proc, tmp_path)
        time.sleep(0.3)
        shutil.rmtree(site / "releases" / "r4")
        out, err = proc.communicate(timeout=30)
    finally:
        _stop(proc)
    assert proc.returncode == 1, err
    assert b"Traceback" not in err
    last = err.decode().rstrip("\n").split("\n")[-1]
    assert last.startswith("realdoc demo: failed: FileNotFoundError: "), err
    assert "no such release: 'r4'" in last
    assert list(tmp_path.iterdir()) == []  # the rest of the tree was removed


def test_sigterm_removes_the_tree_and_exits_143(tmp_path: pathlib.Path) -> None:
    """Item 15e: SIGTERM is handled like Ctrl-C: clean-up, one line, exit 128+15."""
    proc = _start_demo(tmp_path, "--duration", "30")
    try:
        _wait_for_tree(proc, tmp_path)
        time.sleep(0.5)  # into a phase with clients and flips running
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        _stop(proc)
    assert proc.returncode == 143, err
    assert b"Traceback" not in err
    assert b"terminated" in err
    assert list(tmp_path.iterdir()) == []


# -- code and files: worker processes, the request pin alone and pin_process ----


def demo_children() -> List[int]:
    """Pids of this process's children still running a demo worker (python -c)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if ppid == os.getpid() and b"demo_app" in cmd:
            pids.append(int(entry))
    return pids


def test_code_run_mixes_with_the_request_pin_and_never_with_pin_process(
        private_tmp: pathlib.Path) -> None:
    request, pinned = demo.run_code_demo(duration=1.0)
    assert (request.name, pinned.name) == ("request pin only", "with pin_process")
    assert request.flips > 0 and request.flips == pinned.flips  # one tree, the same flips
    assert request.workers >= 2 and pinned.workers >= 2  # real worker processes
    assert request.responses > 0 and pinned.responses > 0
    assert request.mixed > 0, "the request pin alone did not mix on this machine"
    assert pinned.mixed == 0 and pinned.errors == 0
    assert request.errors == 0
    assert os.listdir(private_tmp) == []  # its tree is gone
    assert demo_threads() == []  # worker slots and flipper stopped
    assert demo_children() == []  # every worker reaped


def test_command_prints_the_code_rows(private_tmp: pathlib.Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--duration", "1", "--clients", "2"]) == 0
    out, err = capsys.readouterr()
    lines = {line.split()[0] + " " + line.split()[1]: line for line in out.splitlines()
             if line.startswith(("request pin only", "with pin_process"))}
    assert set(lines) == {"request pin", "with pin_process"}
    assert " 0 (0.0%)" in lines["with pin_process"]
    assert " 0 (0.0%)" not in lines["request pin"]  # the request pin alone mixed
    assert "BUG" not in out
    assert "[code and files]" in err
    assert os.listdir(private_tmp) == []


def _code_result(name: str, responses: int, mixed: int, errors: int = 0) -> Any:
    from realdoc.cli._demo_workers import CodeResult

    r = CodeResult(name)
    r.responses, r.mixed, r.errors, r.seconds, r.flips, r.workers = (
        responses, mixed, errors, 2.0, 20, 4)
    r.releases = {"r1", "r2"}
    return r


@pytest.mark.parametrize("mixed, errors", [(1, 0), (0, 1)])
def test_code_verdict_is_a_bug_when_pin_process_mixes_or_fails(mixed: int, errors: int) -> None:
    out = io.StringIO()
    code = [_code_result("request pin only", 100, 90), _code_result("with pin_process", 100,
                                                                      mixed, errors)]
    assert demo.report_code(code, out=out) == 1
    assert "BUG: with pin_process" in out.getvalue()
    files = [_result("without realdoc", 100, 50), _result("with realdoc", 100, 0)]
    assert demo.report(files, clients=8, flip_interval=0.002, pause=0.003,
                       out=io.StringIO(), code=code) == 1


def test_code_verdict_when_mixing_did_not_reproduce() -> None:
    out = io.StringIO()
    code = [_code_result("request pin only", 100, 0), _code_result("with pin_process", 100, 0)]
    assert demo.report_code(code, out=out) == 0
    assert "did not reproduce mixing" in out.getvalue()
    out = io.StringIO()
    code = [_code_result("request pin only", 100, 90), _code_result("with pin_process", 80, 0)]
    assert demo.report_code(code, out=out) == 0
    assert "90 of 100" in out.getvalue() and "90 (90.0%)" in out.getvalue()
