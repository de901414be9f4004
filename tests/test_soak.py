"""Soak: resolver threads against a flipping deploy tree, zero wrong answers.

For each implementation, for a bounded time: a :class:`realdoc.testing.Flipper`
flips ``current`` between three releases, atomically and non-atomically in
turn (``ln -sfn``-style: ``current`` is briefly missing), while threads resolve
the docroot in every mode:

* their own ``Resolver`` objects, warmed up before the flips start, with
  ``every=0`` and ``every=0.01``, realpath and ``use_readlink`` modes, str and
  bytes, ``on_error="stale"``: every answer must be a release's real path and
  no exception at all is allowed;
* ``Resolver(on_error="raise")``, ``realpath()``, ``first_link()`` and
  ``resolve()`` through the registry, which another thread empties with
  ``clear()`` every 20 ms: the only exception allowed is FileNotFoundError for
  the docroot (``current`` missing inside a non-atomic flip, with no last good
  value to serve after a ``clear()``), and every answer must be a release.

Memory must stay flat: RSS after the run (``gc.collect()`` + ``malloc_trim``)
within ``RSS_BOUND`` of RSS after the first fifth of it.

The default run soaks for ``SHORT_SECONDS`` per implementation; the long
variant (``REALDOC_HARDENING=1``, run by .ci/hardening) for
``REALDOC_SOAK_SECONDS`` (default 30) per implementation.
"""

from __future__ import annotations

import errno
import logging
import os
import pathlib
import sys
import threading
import time
from types import ModuleType
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Set, Tuple, Union

import pytest
from reference import rss

from realdoc._config import env_flag
from realdoc.testing.tree import DeployTree, Flipper

HARDENING = env_flag("REALDOC_HARDENING")
SHORT_SECONDS = 2.5
LONG_SECONDS = float(os.environ.get("REALDOC_SOAK_SECONDS", "30"))
RSS_BOUND = 4 * 1024 * 1024
CLEAR_EVERY = 0.02
FLIP_INTERVAL = 0.0005
SWITCH_INTERVAL = 0.0005  # GIL hand-offs every 0.5 ms: more interleavings, flips keep pace

class Reader(threading.Thread):
    """Calls ``fn`` until stopped; checks every answer; records exceptions."""

    def __init__(self, name: str, fn: Callable[[], Any], allowed: FrozenSet[Union[str, bytes]],
                 may_fail: Optional[Any], stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.fn, self.allowed, self.may_fail, self.stop = fn, allowed, may_fail, stop
        self.calls = 0
        self.expected_errors = 0
        self.seen: Set[str] = set()
        self.wrong: List[Any] = []
        self.unexpected: List[BaseException] = []

    def run(self) -> None:
        fn, allowed, stop = self.fn, self.allowed, self.stop
        while not stop.is_set():
            for _ in range(50):
                self.calls += 1
                try:
                    v = fn()
                except FileNotFoundError as e:
                    if (self.may_fail is None or e.errno != errno.ENOENT
                            or e.filename != self.may_fail):
                        self.unexpected.append(e)
                    else:
                        self.expected_errors += 1
                    continue
                except BaseException as e:  # noqa: BLE001 - all are recorded
                    self.unexpected.append(e)
                    continue
                if v not in allowed:
                    self.wrong.append(v)
                elif len(self.seen) < len(allowed):
                    self.seen.add(v)
            if len(self.wrong) > 10 or len(self.unexpected) > 10:
                return


def soak(m: Any, base: str, seconds: float) -> Dict[str, Any]:
    tree = DeployTree.create(base, releases=3)
    docroot = tree.docroot
    bdocroot = os.fsencode(docroot)
    real = frozenset(os.path.realpath(os.path.join(tree.root, "releases", r, "public"))
                     for r in tree.releases)
    first = frozenset(os.path.join(tree.root, "releases", r, "public") for r in tree.releases)
    breal = frozenset(os.fsencode(x) for x in real)
    stop = threading.Event()

    own: List[Tuple[str, Any, FrozenSet[Union[str, bytes]]]] = []
    for every in (0, 0.01):
        own.append((f"stale-realpath-every{every}", m.Resolver(docroot, every=every), real))
        own.append((f"stale-first_link-every{every}",
                    m.Resolver(docroot, every=every, use_readlink=True), first))
        own.append((f"stale-realpath-bytes-every{every}", m.Resolver(bdocroot, every=every), breal))
    own.append(("stale-first_link-start", m.Resolver(docroot, every=0, use_readlink=tree.current),
                first))
    for _, r, allowed in own:
        assert r() in allowed  # a last good value exists before the flips start
    readers = [Reader(name, r, allowed, None, stop) for name, r, allowed in own]
    loud = m.Resolver(docroot, every=0, on_error="raise")
    readers += [
        Reader("raise-realpath", loud, real, docroot, stop),
        Reader("realpath()", lambda: m.realpath(docroot), real, docroot, stop),
        Reader("first_link()", lambda: m.first_link(docroot), first, docroot, stop),
        Reader("resolve-every0", lambda: m.resolve(docroot, every=0), real, docroot, stop),
        Reader("resolve-every0.01-first_link",
               lambda: m.resolve(docroot, every=0.01, use_readlink=True), first, docroot, stop),
        Reader("resolve-default", lambda: m.resolve(docroot), real, docroot, stop),
    ]
    clears = [0]

    def clearer() -> None:
        while not stop.wait(CLEAR_EVERY):
            m.clear()
            clears[0] += 1

    log = logging.getLogger("realdoc")
    was, log.disabled = log.disabled, True  # failure episodes are the point here
    clear_thread = threading.Thread(target=clearer, name="clearer", daemon=True)
    flipper = Flipper(tree, interval=FLIP_INTERVAL, atomic="mixed", max_seconds=seconds + 30)
    old_switch = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        flipper.start()
        clear_thread.start()
        for t in readers:
            t.start()
        time.sleep(seconds / 5)
        rss0 = rss()
        time.sleep(seconds - seconds / 5)
        rss1 = rss()
    finally:
        stop.set()
        for t in readers:
            t.join(30)
        clear_thread.join(30)
        flipper.stop()
        sys.setswitchinterval(old_switch)
        log.disabled = was
        m.clear()
    hung = [t.name for t in readers if t.is_alive()]
    assert not hung, f"reader threads did not stop: {hung}"
    assert os.path.realpath(tree.docroot) in real
    return {"readers": readers, "flips": flipper.flips, "clears": clears[0],
            "rss_before": rss0, "rss_growth": rss1 - rss0}


def check(result: Dict[str, Any], seconds: float) -> None:
    readers = result["readers"]
    summary = {t.name: (t.calls, t.expected_errors, len(t.seen)) for t in readers}
    print(f"\nflips {result['flips']}, clears {result['clears']}, "
          f"RSS {result['rss_before'] >> 20} MiB {result['rss_growth'] / 1024:+.0f} KiB; "
          f"(calls, expected errors, releases seen) per reader: {summary}")
    for t in readers:
        assert not t.wrong, f"{t.name}: wrong answers {t.wrong[:5]}"
        assert not t.unexpected, f"{t.name}: unexpected exceptions {t.unexpected[:5]!r}"
        assert t.calls > 100, f"{t.name} starved: {t.calls} calls"
        if t.name.startswith("stale"):
            assert t.expected_errors == 0
    assert result["flips"] > 10 * seconds, result["flips"]
    assert result["clears"] > 5 * seconds, result["clears"]
    every0 = [t for t in readers if "every0" in t.name and not t.name.endswith("0.01")]
    assert any(len(t.seen) == 3 for t in every0), "no every=0 reader saw every release"
    assert result["rss_growth"] < RSS_BOUND, result


def test_soak_short(impl: ModuleType, tmp_path: pathlib.Path) -> None:
    check(soak(impl, str(tmp_path / "site"), SHORT_SECONDS), SHORT_SECONDS)


@pytest.mark.slow
@pytest.mark.skipif(not HARDENING, reason="long run: set REALDOC_HARDENING=1 (.ci/hardening does)")
def test_soak_long(impl: ModuleType, tmp_path: pathlib.Path) -> None:
    check(soak(impl, str(tmp_path / "site"), LONG_SECONDS), LONG_SECONDS)
