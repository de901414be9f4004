"""Replay every saved fuzz input: the findings of tests/fuzz/run.py stay fixed.

``tests/fuzz/corpus-regressions/`` holds the inputs the fuzzer reported (run.py
saves them there); ``tests/fuzz/seeds/`` the hand-made starting inputs.  Each
one is decoded into a tree and operations by the fuzz target and every answer
is checked again (compiled core == pure twin == glibc realpath(3), first_link
reference, resolvers after changes, join).  Runs in well under a second.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
import tempfile
from typing import List, Set, Tuple

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FUZZ = os.path.join(HERE, "fuzz")
sys.path.insert(0, FUZZ)

import fuzz_realdoc  # noqa: E402

INPUTS = sorted(glob.glob(os.path.join(FUZZ, "corpus-regressions", "*"))) + sorted(
    glob.glob(os.path.join(FUZZ, "seeds", "*"))
)


def test_there_are_inputs_to_replay() -> None:
    assert INPUTS, "tests/fuzz/seeds/ and corpus-regressions/ are empty"


@pytest.mark.parametrize(
    "path", INPUTS, ids=[os.path.relpath(p, FUZZ) for p in INPUTS]
)
def test_replay(path: str) -> None:
    with open(path, "rb") as f:
        data = f.read()
    log = logging.getLogger("realdoc")
    was, log.disabled = log.disabled, True  # failure episodes are part of the inputs
    try:
        fuzz_realdoc.check_one(data)
    finally:
        log.disabled = was


def _names_outside(dirs: List[str]) -> Set[Tuple[str, str]]:
    names = {os.fsdecode(n) for n in fuzz_realdoc.NAMES} | {"A", "B", "cur", "nope"}
    found = set()
    for d in dirs:
        try:
            found |= {(d, n) for n in os.listdir(d) if n in names}
        except OSError:
            pass
    return found


def test_the_fuzz_target_stays_in_its_tree() -> None:
    """Links in the fuzzed trees point at "/", "/tmp", "../..": the target must
    never create or delete anything through them outside its own directory."""
    import random

    base = os.fsdecode(fuzz_realdoc._workdir())
    watched = ["/", "/tmp", "/dev/shm", os.path.dirname(base), tempfile.gettempdir()]
    before = _names_outside(watched)
    rng = random.Random(6)
    log = logging.getLogger("realdoc")
    was, log.disabled = log.disabled, True
    try:
        for _ in range(150):
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(40, 200)))
            try:
                fuzz_realdoc.check_one(data)
            except fuzz_realdoc.Finding:
                pass  # a disagreement is the fuzzer's business, not this test's
    finally:
        log.disabled = was
    assert _names_outside(watched) == before
