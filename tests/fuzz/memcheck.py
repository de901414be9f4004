"""Run realdoc's compiled core under valgrind memcheck; fail on any error in it.

Usage::

    python tests/fuzz/memcheck.py            # run the workload under valgrind, judge it
    python tests/fuzz/memcheck.py workload   # the workload alone (what valgrind runs)
    python tests/fuzz/memcheck.py judge FILE.xml

The interpreter running this script is the one put under valgrind, with
``PYTHONMALLOC=malloc`` so that every Python allocation is visible to memcheck.
The workload drives the compiled ``realdoc._fastpath`` through its C paths:
realpath (the glibc-style walk and the /proc route), first_link with and
without ``start``, every error path (ENOENT, ENOTDIR, ELOOP on 41 and 10,000
links, ENAMETOOLONG at 4096 bytes, NUL, non-UTF-8), Resolver refreshes across
link flips (prediction plans, including more links than a plan holds),
registry eviction, two threads at once, a fork, and a replay of the fuzz
inputs in ``seeds/`` and ``corpus-regressions/``.

Verdict: valgrind's XML output is parsed; every error (invalid read or write,
use of uninitialised memory, bad free, overlap, and "definitely lost" leaks)
whose stack has a frame in the extension module (object file ``_fastpath*``,
or a ``__pyx_``/``rd_`` function) fails the run.  Errors elsewhere (CPython's
own start-up noise) are counted and ignored.  Exit 0: clean; 1: errors in the
core, or the workload did not run to completion; 2: valgrind missing.

Known limit: valgrind (3.19) does not know ``openat2`` (syscall 437) and
answers ENOSYS, so under valgrind the core switches openat2 off and the
refresh falls back to realpath(); the prediction splice before the openat2
still runs, the code after a successful openat2 is not checked here (the fuzz
target checks its answers natively).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
OURS = ("_fastpath",)
OUR_FUNCS = ("__pyx_", "rd_")


def workload() -> Dict[str, Any]:
    import logging

    from realdoc import _fastpath as C

    logging.getLogger("realdoc").disabled = True
    fast = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # ext4 makes links slowly
    root = os.path.realpath(tempfile.mkdtemp(prefix="rdvg-", dir=fast))
    done = []
    try:
        for r in ("r1", "r2", "r3"):
            os.makedirs(f"{root}/releases/{r}/public/a/b")
        os.symlink("releases/r1", f"{root}/current")
        os.symlink("current", f"{root}/A")
        with open(f"{root}/file", "w"):
            pass
        os.makedirs(os.fsencode(root) + b"/caf\xe9")
        docroot = f"{root}/current/public/a/b"

        def chain(n: int) -> str:
            d = f"{root}/chain{n}"
            os.makedirs(f"{d}/t")
            prev = "t"
            for i in range(n):
                os.symlink(prev, f"{d}/l{i}")
                prev = f"l{i}"
            return f"{d}/{prev}"

        c17, c41 = chain(17), chain(41)
        c10k = chain(10_000)
        long_ok = root + "/" + "/".join(["d" * 200] * ((4000 - len(root)) // 201))
        os.makedirs(long_ok)
        paths: List[Any] = [
                 docroot, docroot + "/", docroot + "/..", f"{root}/A/public", f"{root}/file",
                 f"{root}/file/", f"{root}/file/..", f"{root}/nope/x", c17, c41, c10k, c10k + "/x",
                 long_ok, long_ok + "/" + "x" * 200, "/" * 5000 + "tmp", "a/" * 3000, "", ".",
                 "current/public", "../" * 50, os.fsencode(root) + b"/caf\xe9", "/proc/self/cwd",
                 "/proc/self/fd/0", f"{root}/" + "n" * 256, "x\0y"]
        os.chdir(root)
        for proc in (True, False):
            C.set_features(proc=proc)
            for p in paths:
                for fn in (C.realpath, C.first_link):
                    try:
                        fn(p)
                    except (OSError, ValueError):
                        pass
                if isinstance(p, str) and p.startswith("/") and "\0" not in p:
                    for start in ("/", p[: max(1, len(p) // 2)], root, root + "/current"):
                        try:
                            C.first_link(p, start=start)
                        except (OSError, ValueError):
                            pass
        C.set_features(proc=True, openat2=True)
        resolvers = [C.Resolver(d, every=0, on_error=oe, use_readlink=ur)
                     for d in (docroot, f"{root}/A/public", c17, os.fsencode(docroot))
                     for oe in ("stale", "raise", "passthrough") for ur in (False, True)]
        for i in range(60):
            tmp = f"{root}/.tmp"
            os.symlink(("releases/r1", "releases/r2", "releases/r3", "releases/r9")[i % 4], tmp)
            os.replace(tmp, f"{root}/current")
            for resolver in resolvers:
                try:
                    resolver()
                except OSError:
                    pass
        C.set_maxsize(8)
        for i in range(200):
            try:
                C.resolve(paths[i % 14], every=0)
            except (OSError, ValueError):
                pass
        C.set_maxsize(1024)
        C.cache_info()
        C.clear(root)

        def spin() -> None:
            for _ in range(300):
                C.resolve(docroot, every=0)
                C.first_link(docroot)

        os.symlink("releases/r2", f"{root}/.tmp")
        os.replace(f"{root}/.tmp", f"{root}/current")
        threads = [threading.Thread(target=spin) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                C.resolve(docroot, every=0)
            except BaseException:
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        done.append(("fork", os.waitstatus_to_exitcode(status)))

        sys.path.insert(0, HERE)
        import glob

        import fuzz_realdoc

        inputs = sorted(glob.glob(os.path.join(HERE, "seeds", "*")) +
                        glob.glob(os.path.join(HERE, "corpus-regressions", "*")))
        for f in inputs:
            with open(f, "rb") as fh:
                try:
                    fuzz_realdoc.check_one(fh.read())
                except AssertionError:
                    pass  # a disagreement is the fuzzer's business; memory errors are ours
        done.append(("fuzz inputs", len(inputs)))
        stats = C.stats()
        return {"module": C.__file__, "misses": stats["misses"], "errors": stats["errors"],
                "features": C.features(), "done": done}
    finally:
        os.chdir("/")
        shutil.rmtree(root, ignore_errors=True)


def judge(xml_path: str) -> int:
    tree = ET.parse(xml_path)
    status = [s.findtext("state") for s in tree.getroot().iter("status")]
    if "FINISHED" not in status:
        print(f"== memcheck: valgrind did not finish ({status})")
        return 1
    ours: List[Any] = []
    others: Dict[str, int] = {}
    for err in tree.getroot().iter("error"):
        frames = []
        for stack in err.iter("stack"):
            for fr in stack.iter("frame"):
                frames.append((fr.findtext("fn") or "?",
                               os.path.basename(fr.findtext("obj") or "?"),
                               fr.findtext("file"), fr.findtext("line")))
        kind = err.findtext("kind") or "?"
        if any(any(o in obj for o in OURS) or fn.startswith(OUR_FUNCS) for fn, obj, _, _ in frames):
            what = err.findtext("what") or err.findtext("xwhat/text") or kind
            ours.append((kind, what, frames))
        else:
            others[kind] = others.get(kind, 0) + 1
    print(f"== memcheck: {len(ours)} error(s) in realdoc._fastpath; "
          f"ignored elsewhere (CPython): {others or 'none'}")
    for kind, what, frames in ours:
        print(f"-- {kind}: {what}")
        for fn, obj, f, line in frames[:20]:
            print(f"     {fn}  ({obj}{f' {f}:{line}' if f else ''})")
    return 1 if ours else 0


def run() -> int:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("== memcheck: valgrind is not installed (apt-get install valgrind)")
        return 2
    work = tempfile.mkdtemp(prefix="rdvg-run-")
    try:
        xml = os.path.join(work, "memcheck.xml")
        result = os.path.join(work, "result.json")
        cmd = [valgrind, "--tool=memcheck", "--error-limit=no", "--num-callers=40",
               "--leak-check=full", "--show-leak-kinds=definite",
               "--errors-for-leak-kinds=definite", "--child-silent-after-fork=yes",
               "--xml=yes", f"--xml-file={xml}",
               sys.executable, os.path.abspath(__file__), "workload", result]
        env = dict(os.environ, PYTHONMALLOC="malloc")
        print("== " + " ".join(cmd), flush=True)
        proc = subprocess.run(cmd, env=env, timeout=1200)
        if proc.returncode != 0 or not os.path.exists(result):
            print(f"== memcheck: the workload failed under valgrind (exit {proc.returncode})")
            return 1
        with open(result) as f:
            info = json.load(f)
        print(f"== memcheck workload: {info}")
        if "_fastpath" not in os.path.basename(info["module"]) or info["misses"] < 100:
            print("== memcheck: the compiled core did not run")
            return 1
        return judge(xml)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: List[str]) -> int:
    if len(argv) > 1 and argv[1] == "workload":
        info = workload()
        if len(argv) > 2:
            with open(argv[2], "w") as f:
                json.dump(info, f)
        else:
            print(json.dumps(info))
        return 0
    if len(argv) > 2 and argv[1] == "judge":
        return judge(argv[2])
    return run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
