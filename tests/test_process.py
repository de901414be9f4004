"""realdoc.pin_process() and realdoc.process_release(): the process pin.

A pin lasts for the life of a process, so each test pins in a child
interpreter (``python -c``) on a real deploy tree, flips ``current`` there
with rename(2) (realdoc.switch), and reports what it saw as JSON.
"""

from __future__ import annotations

import json
import os
import pathlib
import stat
import subprocess
import sys
import textwrap
import time
import zipfile
from typing import Any, Dict

import pytest
from helpers import child_env


def make_site(root: pathlib.Path) -> pathlib.Path:
    """``root/releases/r1|r2`` with a package, a namespace package, modules, a zip and
    data files; ``root/current -> releases/r1``.  Every file names its release."""
    for r in ("r1", "r2"):
        rel = root / "releases" / r
        pkg = rel / "mypkg"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(f"VERSION = {r!r}\n")
        (pkg / "sub.py").write_text(f"VERSION = {r!r}\n")
        (pkg / "data.txt").write_text(r)
        ns = rel / "lib" / "nspkg"
        ns.mkdir(parents=True)
        (ns / "mod.py").write_text(f"VERSION = {r!r}\n")
        (ns / "later.py").write_text(f"VERSION = {r!r}\n")
        (rel / "top.py").write_text(textwrap.dedent(f"""\
            VERSION = {r!r}

            def func():
                def inner():
                    return 1
                return inner

            class Klass:
                def method(self):
                    return 1

                @staticmethod
                def static():
                    return 1

                @property
                def prop(self):
                    return 1
            """))
        (rel / "newtop.py").write_text(f"VERSION = {r!r}\n")
        with zipfile.ZipFile(rel / "deps.zip", "w") as z:
            z.writestr("zipped.py", f"VERSION = {r!r}\n")
            z.writestr("zipped_later.py", f"VERSION = {r!r}\n")
    (root / "current").symlink_to("releases/r1")
    (root / "current-not-under").mkdir()  # a sibling whose name extends "current"
    return root


def run_child(code: str, cwd: pathlib.Path, timeout: float = 60.0) -> Dict[str, Any]:
    """Run ``code`` in a fresh interpreter importing this realdoc; return its JSON line."""
    env = child_env()
    prologue = "import json, os, sys, logging\nimport realdoc\n"
    proc = subprocess.run([sys.executable, "-c", prologue + textwrap.dedent(code)],
                          cwd=str(cwd), env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, proc.stdout + proc.stderr
    result: Dict[str, Any] = json.loads(lines[-1])
    result["_stderr"] = proc.stderr
    return result


@pytest.fixture
def site(tmp_path: pathlib.Path) -> pathlib.Path:
    return make_site(tmp_path / "site")


def test_pin_rewrites_sys_path_modules_and_code(site: pathlib.Path) -> None:
    cur = str(site / "current")
    r1 = str(site / "releases" / "r1")
    out = run_child(f"""
        cur = {cur!r}
        sys.path[0:0] = [cur, cur + "/lib", cur + "/deps.zip", cur + "/./lib/../lib/",
                         {str(site / "current-not-under")!r}]
        import mypkg, nspkg.mod, top, zipped
        cache_before = sorted(k for k in sys.path_importer_cache if isinstance(k, str))
        before = realdoc.process_release()
        release = realdoc.pin_process(cur, rollover=False)
        spec = mypkg.__spec__
        got = dict(
            before=before, release=release, again=realdoc.process_release(),
            path=sys.path[:5], cache_before=cache_before,
            cache=sorted(k for k in sys.path_importer_cache if isinstance(k, str)),
            file=mypkg.__file__, cached=mypkg.__cached__, pkgpath=list(mypkg.__path__),
            origin=spec.origin, spec_cached=spec.cached,
            locations=list(spec.submodule_search_locations),
            loader=mypkg.__loader__.path, nspath=list(sys.modules["nspkg"].__path__),
            nslocations=list(sys.modules["nspkg"].__spec__.submodule_search_locations),
            nsmod=nspkg.mod.__file__, zipfile=zipped.__file__,
            ziparchive=zipped.__loader__.archive,
            codes=[top.func.__code__.co_filename, top.func().__code__.co_filename,
                   top.Klass.method.__code__.co_filename,
                   top.Klass.static.__code__.co_filename,
                   top.Klass.prop.fget.__code__.co_filename],
        )
        realdoc.switch(cur, "releases/r2")   # rename(2): current -> r2 from now on
        import mypkg.sub, nspkg.later, newtop, zipped_later
        with open(os.path.join(os.path.dirname(mypkg.__file__), "data.txt")) as f:
            data = f.read()
        import inspect
        got.update(sub=mypkg.sub.VERSION, subfile=mypkg.sub.__file__, later=nspkg.later.VERSION,
                   newtop=newtop.VERSION, newtopfile=newtop.__file__,
                   zipped_later=zipped_later.VERSION, data=data,
                   source=inspect.getsource(top).splitlines()[0],
                   current=os.path.realpath(cur))
        print(json.dumps(got))
    """, cwd=site)
    assert out["before"] is None
    assert out["release"] == out["again"] == r1
    assert out["path"] == [r1, r1 + "/lib", r1 + "/deps.zip", r1 + "/lib",
                           str(site / "current-not-under")]
    assert any(k.startswith(cur) for k in out["cache_before"]), out["cache_before"]
    assert not any(k == cur or k.startswith(cur + "/") for k in out["cache"]), out["cache"]
    assert out["file"] == r1 + "/mypkg/__init__.py"
    assert out["cached"].startswith(r1 + "/mypkg/__pycache__/")
    assert out["spec_cached"] == out["cached"]
    assert out["pkgpath"] == out["locations"] == [r1 + "/mypkg"]
    assert out["origin"] == out["loader"] == r1 + "/mypkg/__init__.py"
    # two sys.path entries spell r1/lib: the namespace package has a portion from each
    assert out["nspath"] == out["nslocations"] == [r1 + "/lib/nspkg"] * 2
    assert out["nsmod"] == r1 + "/lib/nspkg/mod.py"
    assert out["zipfile"] == r1 + "/deps.zip/zipped.py"
    assert out["ziparchive"] == r1 + "/deps.zip"
    assert out["codes"] == [r1 + "/top.py"] * 5
    # after the flip, everything imported or read later still comes from r1
    assert out["current"] == str(site / "releases" / "r2")
    assert out["sub"] == out["later"] == out["newtop"] == out["zipped_later"] == "r1"
    assert out["data"] == "r1"
    assert out["subfile"] == r1 + "/mypkg/sub.py"
    assert out["newtopfile"] == r1 + "/newtop.py"
    assert out["source"] == "VERSION = 'r1'"


def test_without_pin_later_imports_follow_the_flip(site: pathlib.Path) -> None:
    """The control: the same import sequence unpinned mixes releases."""
    cur = str(site / "current")
    out = run_child(f"""
        cur = {cur!r}
        sys.path[0:0] = [cur, cur + "/lib"]
        import mypkg, nspkg.mod
        realdoc.switch(cur, "releases/r2")
        import mypkg.sub, nspkg.later, newtop
        print(json.dumps(dict(pkg=mypkg.VERSION, sub=mypkg.sub.VERSION,
                              later=nspkg.later.VERSION, newtop=newtop.VERSION)))
    """, cwd=site)
    assert out["pkg"] == "r1"
    assert out["sub"] == out["later"] == out["newtop"] == "r2"


def test_repeated_calls_relative_path_and_other_app_dir(site: pathlib.Path) -> None:
    out = run_child("""
        first = realdoc.pin_process("current", rollover=False)     # from the cwd
        same = [realdoc.pin_process(p, rollover=False) for p in
                ("current/", "./current", os.path.abspath("current"),
                 os.fsencode(os.path.abspath("current")))]
        import pathlib
        same.append(realdoc.pin_process(pathlib.Path("current"), every=0))
        realdoc.switch("current", "releases/r2")
        same.append(realdoc.pin_process("current"))   # no new resolution
        try:
            realdoc.pin_process("releases/r2", rollover=False)
            other = None
        except ValueError as exc:
            other = str(exc)
        print(json.dumps(dict(first=first, same=same, other=other,
                              release=realdoc.process_release())))
    """, cwd=site)
    r1 = str(site / "releases" / "r1")
    assert out["first"] == out["release"] == r1
    assert out["same"] == [r1] * 6
    assert out["other"] is not None and "already pinned" in out["other"]


def test_forked_child_keeps_the_pin(site: pathlib.Path) -> None:
    cur = str(site / "current")
    out = run_child(f"""
        cur = {cur!r}
        sys.path.insert(0, cur)
        realdoc.pin_process(cur, rollover=False)
        realdoc.switch(cur, "releases/r2")
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            import newtop
            msg = json.dumps(dict(release=realdoc.process_release(),
                                  again=realdoc.pin_process(cur, rollover=False),
                                  newtop=newtop.VERSION, path0=sys.path[0]))
            os.write(w, msg.encode())
            os._exit(0)
        os.close(w)
        data = b""
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
        _, status = os.waitpid(pid, 0)
        child = json.loads(data)
        child["status"] = status
        print(json.dumps(child))
    """, cwd=site)
    r1 = str(site / "releases" / "r1")
    assert out["status"] == 0
    assert out["release"] == out["again"] == out["path0"] == r1
    assert out["newtop"] == "r1"


def test_bad_inputs(site: pathlib.Path) -> None:
    (site / "afile").write_text("x")
    out = run_child("""
        cases = {
            "missing": ("no-such-dir", {}),
            "dangling": ("dangling", {}),
            "file": ("afile", {}),
            "int": (42, {}),
            "none": (None, {}),
            "nul": ("cur\\0rent", {}),
            "empty": ("", {}),
            "every_negative": ("current", {"every": -1}),
            "every_nan": ("current", {"every": float("nan")}),
            "every_str": ("current", {"every": "2"}),
            "every_bool": ("current", {"every": True}),
            "rollover_str": ("current", {"rollover": "yes"}),
        }
        os.symlink("nowhere", "dangling")
        got = {}
        for name, (arg, kw) in cases.items():
            try:
                realdoc.pin_process(arg, **kw)
                got[name] = "no error"
            except Exception as exc:
                got[name] = [type(exc).__name__, getattr(exc, "filename", None), str(exc)]
        ref = {}
        for name in ("every_negative", "every_nan", "every_str", "every_bool"):
            try:
                realdoc.Resolver("current", every=cases[name][1]["every"])
            except Exception as exc:
                ref[name] = [type(exc).__name__, str(exc)]
        got["ref"] = ref
        got["release"] = realdoc.process_release()
        print(json.dumps(got))
    """, cwd=site)
    assert out["missing"][:2] == ["FileNotFoundError", "no-such-dir"]
    assert out["dangling"][:2] == ["FileNotFoundError", "dangling"]
    assert out["file"][:2] == ["NotADirectoryError", "afile"]
    assert out["int"][0] == out["none"][0] == "TypeError"
    assert out["nul"][0] == "ValueError"
    assert out["empty"][0] == "FileNotFoundError"
    for name in ("every_negative", "every_nan", "every_str", "every_bool"):
        assert out[name][0] == out["ref"][name][0], (name, out)
        assert out[name][2] == out["ref"][name][1], (name, out)
    assert out["rollover_str"][0] == "TypeError"
    assert out["release"] is None  # no failed call pinned anything


def test_not_a_worker_logs_once_and_starts_no_thread(site: pathlib.Path) -> None:
    out = run_child("""
        import threading
        records = []
        class H(logging.Handler):
            def emit(self, record):
                records.append([record.levelname, record.getMessage()])
        logging.getLogger("realdoc").addHandler(H())
        release = realdoc.pin_process("current")
        realdoc.pin_process("current")
        threads = [t.name for t in threading.enumerate()]
        print(json.dumps(dict(records=records, threads=threads, release=release)))
    """, cwd=site)
    assert len(out["records"]) == 1, out["records"]
    level, message = out["records"][0]
    assert level == "WARNING"
    assert "not a worker of a supported server" in message
    assert f"stays on release {out['release']} until it is restarted" in message
    assert "realdoc-rollover" not in out["threads"]


def test_rollover_false_logs_nothing(site: pathlib.Path) -> None:
    out = run_child("""
        records = []
        class H(logging.Handler):
            def emit(self, record):
                records.append(record.getMessage())
        logging.getLogger("realdoc").addHandler(H())
        realdoc.pin_process("current", rollover=False)
        print(json.dumps(dict(records=records)))
    """, cwd=site)
    assert out["records"] == []


def test_pinned_pair_and_map_path(site: pathlib.Path) -> None:
    """The internal API a process-scoped docroot uses: lexical, no resolution."""
    out = run_child("""
        from realdoc import _process
        before = [_process.pinned(), _process.map_path("current/x")]
        realdoc.pin_process("current", rollover=False)
        pin = _process.pinned()
        print(json.dumps(dict(before=before, pin=list(pin), app_dir=pin.app_dir,
            mapped=[_process.map_path(p) for p in
                    ("current", "current/public/x.css", "current-not-under/x", "/etc")])))
    """, cwd=site)
    cur, r1 = str(site / "current"), str(site / "releases" / "r1")
    assert out["before"] == [None, None]
    assert out["pin"] == [cur, r1] and out["app_dir"] == cur
    assert out["mapped"] == [r1, r1 + "/public/x.css", None, None]


def test_not_a_symlink_pins_in_place(site: pathlib.Path) -> None:
    out = run_child("""
        sys.path.insert(0, os.path.abspath("releases/r2"))
        import newtop
        release = realdoc.pin_process("releases/r2", rollover=False)
        print(json.dumps(dict(release=release, path0=sys.path[0], file=newtop.__file__)))
    """, cwd=site)
    r2 = str(site / "releases" / "r2")
    assert out == {"release": r2, "path0": r2, "file": r2 + "/newtop.py", "_stderr": ""}


def test_code_imported_before_a_flip_and_the_pin_is_reported(site: pathlib.Path) -> None:
    """A flip between importing code through app_dir and pin_process(): said once."""
    out = run_child("""
        records = []
        class H(logging.Handler):
            def emit(self, record):
                records.append([record.levelname, record.getMessage()])
        logging.getLogger("realdoc").addHandler(H())
        sys.path.insert(0, os.path.abspath("current"))
        import top                               # from r1
        realdoc.switch("current", "releases/r2")
        release = realdoc.pin_process("current", rollover=False)   # r2
        print(json.dumps(dict(records=records, release=release, top=top.VERSION)))
    """, cwd=site)
    assert out["top"] == "r1" and out["release"] == str(site / "releases" / "r2")
    assert len(out["records"]) == 1, out["records"]
    level, message = out["records"][0]
    assert level == "WARNING" and "may be from a release older than" in message


def test_no_report_when_the_link_did_not_move(site: pathlib.Path) -> None:
    time.sleep(0.05)  # the process start time has a 10 ms resolution: start clearly later
    out = run_child("""
        import time
        records = []
        class H(logging.Handler):
            def emit(self, record):
                records.append(record.getMessage())
        logging.getLogger("realdoc").addHandler(H())
        sys.path.insert(0, os.path.abspath("current"))
        import top
        realdoc.pin_process("current", rollover=False)
        print(json.dumps(dict(records=records)))
    """, cwd=site)
    assert out["records"] == []


def test_rollover_markers_one_claim_per_release_and_cleanup(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The O_EXCL markers that make one reload per flip (realdoc._rollover.Markers)."""
    from realdoc import _rollover

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    me = _rollover.Target("gunicorn", os.getpid(), "test", lambda: None)
    first, second = _rollover.Markers(me), _rollover.Markers(me)  # two workers
    assert first.dir == str(tmp_path / f"realdoc-{os.getuid()}")
    assert stat.S_IMODE(os.stat(first.dir).st_mode) == 0o700
    assert first.claim("/srv/releases/r2") is True
    assert second.claim("/srv/releases/r2") is False      # the same flip: no second ask
    assert second.claim("/srv/releases/r3") is True       # the next flip
    assert first.claim("/srv/releases/r2") is True        # r2's marker went with r3's claim
    # a dead master's marker is dropped by any clean(); another live master's is kept
    dead = os.path.join(first.dir, "uvicorn.999999999.12345.abc")
    other = os.path.join(first.dir, f"uvicorn.{os.getppid()}."
                         f"{_rollover._start_time(os.getppid())}.abc")
    for path in (dead, other):
        open(path, "w").close()
    first.clean(keep="/srv/releases/r1")                   # back on r1: forget r2
    assert sorted(os.listdir(first.dir)) == [os.path.basename(other)]
    assert second.claim("/srv/releases/r2") is True       # a later flip to r2 reloads again


def test_rollover_markers_refuse_a_directory_of_someone_else(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from realdoc import _rollover

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    os.mkdir(tmp_path / f"realdoc-{os.getuid()}", 0o777)
    os.chmod(tmp_path / f"realdoc-{os.getuid()}", 0o777)  # group/world writable: not trusted
    markers = _rollover.Markers(_rollover.Target("gunicorn", os.getpid(), "test", lambda: None))
    assert markers.dir is None
    assert markers.claim("/srv/releases/r2") is True      # no dedup: every worker asks
    assert markers.claim("/srv/releases/r2") is True
