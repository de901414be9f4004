"""Smoke tests of ``realdoc bench`` and the parts bench/machinery.py builds on (a few seconds)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from typing import Any, Dict, List, cast

import pytest
from helpers import child_env

import realdoc
from realdoc.cli import bench as B, main as cli_main

#: Every row ``realdoc bench`` prints for the active implementation.
ROW_KEYS = ["realpath", "first_link", "first_link_start", "refresh", "hit-Resolver", "hit-resolve"]
REFERENCE_KEYS = ["os.path.realpath", "Path.resolve", "libc-realpath", "ctypes-floor", "floor",
                  "TTLCache"]


#: Depths of test_case_layout (the suite in bench/ uses 2, 4, 7, 12 and 20).
DEPTHS = [1, 2, 4, 7, 12, 20]


def bench_rows() -> Dict[str, B.Contender]:
    """Every row ``realdoc bench`` prints for the active implementation, by key."""
    return {c.key: c for c in [*B.realdoc_rows(realdoc.implementation), *B.REFERENCES]}


def expected_labels() -> List[str]:
    keys = [f"{k}-{realdoc.implementation}" for k in ROW_KEYS] + REFERENCE_KEYS
    assert sorted(keys) == sorted(bench_rows())
    return [bench_rows()[k].label for k in keys if bench_rows()[k].available]


def env() -> Dict[str, str]:
    """The environment with the realdoc this test imported first on PYTHONPATH.

    So the child runs the same build (an installed package with its compiled
    core, or this checkout's src/), and states the same implementation.
    """
    return child_env()


def check_table(out: str) -> None:
    assert f"implementation: {realdoc.implementation}" in out
    assert "machine:" in out and "CPUs" in out and "kernel" in out
    assert "python:" in out
    assert "depth 7 (start)" in out
    for label in expected_labels():
        assert label in out, f"row {label!r} missing from:\n{out}"


def test_run_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["bench", "--quick"]) == 0
    out = capsys.readouterr().out
    check_table(out)
    # realdoc's own rows are always counted, with stats()
    for key in ROW_KEYS:
        row = next(line for line in out.splitlines()
                   if line.startswith(bench_rows()[f"{key}-{realdoc.implementation}"].label))
        assert "(stats)" in row, row


def test_without_strace(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No strace: timings still print, the other rows say their counts were skipped."""
    monkeypatch.setattr(B, "strace_status", lambda: (False, "strace is not installed"))
    assert cli_main(["bench", "--quick", "--repeats", "1", "--batch-ms", "0.2"]) == 0
    out = capsys.readouterr().out
    check_table(out)
    assert "skipped: strace is not installed" in out
    osr = next(line for line in out.splitlines() if line.startswith("os.path.realpath"))
    assert "skipped" in osr
    # the JSON says why, per row (not "--no-strace", which was not given)
    assert cli_main(["bench", "--json", "--repeats", "1", "--batch-ms", "0.2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["strace"] == "strace is not installed"
    rows = {r["key"]: r for r in report["depths"][0]["rows"]}
    for key in ("os.path.realpath", "Path.resolve"):
        assert rows[key]["syscalls"] == {"method": "skipped", "total": None, "by_name": {},
                                         "note": "strace is not installed"}


def test_json_report_and_cleanup(monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    roots: List[str] = []
    build = B.build_case

    def spy(depth: int, shape: str, parent: str = "/tmp") -> B.Case:
        case = build(depth, shape, parent)
        roots.append(case.root)
        return case

    monkeypatch.setattr(B, "build_case", spy)
    code = cli_main(["bench", "--json", "--no-strace", "--repeats", "1", "--batch-ms", "0.2",
                   "--depth", "2,7", "--shape", "two-level", "--impl", "both"])
    assert code == 0
    report: Dict[str, Any] = json.loads(capsys.readouterr().out)
    assert report["machine"]["realdoc_implementation"] == realdoc.implementation
    assert [d["depth"] for d in report["depths"]] == [2, 7]
    for d in report["depths"]:
        rows = {r["key"]: r for r in d["rows"]}
        for impl in B.implementations():
            for key in ROW_KEYS:
                assert f"{key}-{impl}" in rows
            for key in ("hit-Resolver", "hit-resolve"):
                assert rows[f"{key}-{impl}"]["syscalls"]["total"] == 0
            assert rows[f"first_link_start-{impl}"]["syscalls"]["total"] == 1
        assert all(r["ns_per_call"] >= 0 for r in rows.values())
        assert rows["os.path.realpath"]["syscalls"]["method"] == "skipped"
        assert rows["os.path.realpath"]["syscalls"]["note"] == "--no-strace"
        assert rows["floor"]["syscalls"] == {"method": "none", "total": 0, "by_name": {},
                                             "note": "no syscall by construction"}
        # the floor is a reference for cache hits only (and only when its net time is > 0:
        # one 0.2 ms batch on a loaded machine can come out below the empty loop's)
        floor_timed = rows["floor"]["ns_per_call"] > 0
        assert ("floor" in rows[f"hit-Resolver-{realdoc.implementation}"]["ratios"]) == floor_timed
        assert "floor" not in rows[f"realpath-{realdoc.implementation}"]["ratios"]
        assert "os.path.realpath" in rows[f"realpath-{realdoc.implementation}"]["ratios"]
    assert len(roots) == 2 and not any(os.path.exists(r) for r in roots)
    assert realdoc.cache_info() == [] or all(
        not any(cast(str, e["docroot"]).startswith(r) for r in roots) for e in realdoc.cache_info())


def test_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["bench", "--depth", "x"]) == 2
    assert "not a comma-separated list of integers" in capsys.readouterr().err
    assert cli_main(["bench", "--depth", "0"]) == 2
    assert "depths must be 1..200" in capsys.readouterr().err
    assert cli_main(["bench", "--repeats", "0"]) == 2
    assert "--repeats must be >= 1" in capsys.readouterr().err
    assert cli_main(["bench", "--batch-ms", "0"]) == 2
    capsys.readouterr()


def test_module_subprocess() -> None:
    """``python -m realdoc.cli.bench --quick`` runs ``realdoc bench --quick``."""
    out = subprocess.run([sys.executable, "-m", "realdoc.cli.bench", "--quick"], env=env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    check_table(out.stdout)


def test_cli_subprocess() -> None:
    """``python -m realdoc bench --quick``: the subcommand registered in realdoc.cli."""
    out = subprocess.run([sys.executable, "-m", "realdoc", "bench", "--quick"], env=env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    check_table(out.stdout)


@pytest.mark.parametrize("shape", B.SHAPES)
@pytest.mark.parametrize("depth", DEPTHS)
def test_case_layout(tmp_path: pathlib.Path, depth: int, shape: str) -> None:
    """Depth is the number of components below the root; the link is where the shape says."""
    case = B.build_case(depth, shape, str(tmp_path))
    rel = os.path.relpath(case.path, case.root).split(os.sep)
    assert len(rel) == depth
    link_pos = os.path.relpath(case.link, case.root).count(os.sep) + 1
    assert link_pos == (depth // 2 + 1 if shape == "middle" else 1)
    assert os.path.islink(case.link)
    assert os.path.islink(os.readlink(case.link)) is False or shape == "two-level"
    real = case.real
    assert os.path.isdir(real) and real.startswith(case.root) and "current" not in real
    hops = 0
    p = case.link
    while os.path.islink(p):
        p = os.path.join(os.path.dirname(p), os.readlink(p))
        hops += 1
    assert hops == (2 if shape == "two-level" else 1)
    for impl in B.implementations().values():
        assert impl.realpath(case.path) == real


def test_make_loop_and_timing() -> None:
    calls: List[int] = []
    loop = B.make_loop("f(x)", {"f": calls.append, "x": 1})
    loop(5)
    assert calls == [1] * 5
    with pytest.raises(ValueError):
        B.make_loop("pass", {"_n": 1})
    timings, overhead = B.time_loops({"noop": B.make_loop("pass", {})}, repeats=2, batch_ms=0.2)
    assert overhead >= 0 and len(timings["noop"].samples) == 2


def test_registered_in_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``add_parser`` plugs into realdoc.cli's COMMANDS and ``run`` is what ``main`` calls."""
    from realdoc.cli import commands as cli

    if B.add_parser not in cli.COMMANDS:
        monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, B.add_parser])
    assert cli.main(["bench", "--quick", "--no-strace", "--repeats", "1", "--batch-ms", "0.2"]) == 0
    check_table(capsys.readouterr().out)
    assert cli.main(["bench", "--shape", "sideways"]) == 2
    assert "invalid choice" in capsys.readouterr().err
