"""Run the realdoc fuzz target for a bounded time; save any finding as a regression input.

Usage::

    python tests/fuzz/run.py [--seconds 60] [--engine auto|atheris|hypothesis] [--jobs 1]
    python tests/fuzz/run.py --replay FILE...    # re-check saved inputs, print the verdict

Engines: ``atheris`` (coverage-guided libFuzzer over the instrumented pure twin
and harness; the compiled core is exercised but not instrumented) or
``hypothesis`` (random bytes, shrunk on failure), the fallback when atheris
cannot be imported.  ``auto`` picks atheris when it is importable.

The run starts from ``seeds/`` and ``corpus-regressions/``.  A finding (an
exception or assertion in the target, a crash, a per-input timeout of 20 s,
or more than 2 GiB RSS) is copied to ``corpus-regressions/<kind>-<sha1>.bin``,
replayed once to print the disagreement, and the exit status is 1;
tests/test_fuzz_regressions.py replays that directory in every test run.
Exit 0: no finding within the time.  Exit 2: the engine could not run.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, "fuzz_realdoc.py")
REGRESSIONS = os.path.join(HERE, "corpus-regressions")
SEEDS = os.path.join(HERE, "seeds")


def _scratch() -> str:
    """A fresh directory for the fuzzed trees, on tmpfs when there is one (faster)."""
    fast = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    return tempfile.mkdtemp(prefix="rdfz-", dir=fast)


def _env(scratch: str) -> Dict[str, str]:
    """Environment for the fuzz process: absolute PYTHONPATH, TMPDIR=scratch."""
    env = dict(os.environ)
    if env.get("PYTHONPATH"):  # the fuzzer runs in a scratch directory
        env["PYTHONPATH"] = os.pathsep.join(
            os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    env["TMPDIR"] = scratch  # libFuzzer exits without atexit: run.py removes it
    return env


def save(data: bytes, kind: str) -> str:
    os.makedirs(REGRESSIONS, exist_ok=True)
    name = f"{kind}-{hashlib.sha1(data).hexdigest()[:16]}.bin"
    path = os.path.join(REGRESSIONS, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def replay(paths: List[str]) -> int:
    sys.path.insert(0, HERE)
    logging.getLogger("realdoc").disabled = True
    import fuzz_realdoc

    bad = 0
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        try:
            fuzz_realdoc.check_one(data)
        except BaseException:
            bad += 1
            print(f"== FINDING {os.path.relpath(path)} ({len(data)} bytes): {data.hex()}")
            traceback.print_exc(file=sys.stdout)
        else:
            print(f"== ok {os.path.relpath(path)}")
    return 1 if bad else 0


def run_atheris(seconds: float, jobs: int) -> int:
    work = tempfile.mkdtemp(prefix="realdoc-fuzz-run-")
    scratch = _scratch()
    try:
        corpus = os.path.join(work, "corpus")
        artifacts = os.path.join(work, "artifacts") + os.sep
        os.makedirs(corpus)
        os.makedirs(artifacts)
        for d in (SEEDS, REGRESSIONS):
            for f in glob.glob(os.path.join(d, "*")):
                shutil.copy(f, corpus)
        cmd = [sys.executable, TARGET, corpus,
               f"-max_total_time={int(seconds)}", "-timeout=20", "-rss_limit_mb=2048",
               "-max_len=512", f"-artifact_prefix={artifacts}", "-print_final_stats=1"]
        if jobs > 1:
            cmd += [f"-jobs={jobs}", f"-workers={jobs}"]
        print("== " + " ".join(cmd), flush=True)
        env = _env(scratch)
        env["PYTHONWARNINGS"] = "ignore"
        t0 = time.monotonic()
        proc = subprocess.run(cmd, env=env, cwd=work, timeout=seconds + 300)
        found = sorted(glob.glob(artifacts + "*"))
        print(f"== libFuzzer exited {proc.returncode} after {time.monotonic() - t0:.0f} s; "
              f"{len(found)} artifact(s); corpus {len(os.listdir(corpus))} inputs", flush=True)
        if not found and proc.returncode == 0:
            return 0
        if not found:
            print("== libFuzzer failed without leaving an input", flush=True)
            return 1
        saved = []
        for f in found:
            kind = os.path.basename(f).split("-", 1)[0]
            with open(f, "rb") as fh:
                saved.append(save(fh.read(), kind))
        for s in saved:
            print(f"== saved {os.path.relpath(s)}")
        replay(saved)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


def run_hypothesis(seconds: float) -> int:
    """Random-bytes fuzzing with hypothesis, for a fixed time budget."""
    scratch = _scratch()
    os.environ["TMPDIR"] = scratch
    tempfile.tempdir = None
    try:
        return _hypothesis_loop(seconds)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _hypothesis_loop(seconds: float) -> int:
    sys.path.insert(0, HERE)
    logging.getLogger("realdoc").disabled = True
    import fuzz_realdoc
    from hypothesis import HealthCheck, given, settings, strategies as st

    failing: List[Any] = []
    seen = [0]

    @settings(max_examples=500, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.binary(min_size=0, max_size=512))
    def target(data: bytes) -> None:
        seen[0] += 1
        try:
            fuzz_realdoc.check_one(data)
        except BaseException:
            failing.append(data)  # the last one recorded is hypothesis' shrunk example
            raise

    deadline = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < deadline:
        rounds += 1
        try:
            target()
        except BaseException:
            path = save(failing[-1], "hypothesis")
            print(f"== finding after {seen[0]} inputs, saved {os.path.relpath(path)}")
            replay([path])
            return 1
    print(f"== hypothesis: {seen[0]} inputs in {rounds} rounds, no finding", flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--engine", choices=["auto", "atheris", "hypothesis"], default="auto")
    ap.add_argument("--jobs", type=int, default=1, help="parallel atheris workers")
    ap.add_argument("--replay", nargs="+", metavar="FILE", help="re-check saved inputs")
    args = ap.parse_args()
    if args.replay:
        return replay(args.replay)
    engine = args.engine
    if engine in ("auto", "atheris"):
        try:
            import atheris  # noqa: F401
        except ImportError as e:
            if engine == "atheris":
                print(f"== atheris is not importable: {e}")
                return 2
            print(f"== atheris is not importable ({e}); falling back to hypothesis random bytes")
            engine = "hypothesis"
        else:
            engine = "atheris"
    print(f"== fuzzing realdoc with {engine} for {args.seconds:.0f} s", flush=True)
    if engine == "atheris":
        return run_atheris(args.seconds, args.jobs)
    return run_hypothesis(args.seconds)


if __name__ == "__main__":
    sys.exit(main())
