"""``realdoc status``, ``realdoc prune`` and ``realdoc rollback``: the release lifecycle.

The words (release, current, previous, newest, in use) are defined in
:mod:`realdoc._lifecycle`; docs/lifecycle.md has the walk-through.

Exit codes:

* ``status``: 0 the report was printed (processes whose ``/proc`` could not be
  read are reported, not fatal); 1 LINK or the releases directory is unusable
  (missing, not a symlink, not leading to a directory); 2 usage error.
* ``prune``: 0 every release that was due was deleted (in a dry run: would be);
  5 some were not removed (an error, e.g. permission; they are listed in
  ``errors``); 1 nothing could be done (a bad LINK or releases directory); 2 usage
  error (``--keep`` missing, negative or not an integer; ``--min-age`` negative
  or not a number).  Releases kept by the rules (current, previous, letters, in
  use, newest, too young, not directories) do not make the exit code non-zero.
  (5, not 4: each realdoc exit code means one thing, and 4 is ``switch --check``'s
  refusal.)
* ``rollback``: 0 switched; 1 no previous release, or another failure; 3 the
  compare-and-swap was refused (LINK changed meanwhile); 2 usage error.

As for every subcommand, once the operation has happened a failure to print its
result does not change the exit code (:mod:`realdoc.cli._output`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from typing import TYPE_CHECKING, Any, List

from realdoc._lifecycle import NoPreviousRelease, prune, rollback, status
from realdoc._switch import SwitchConflict
from realdoc.cli._output import emit, report_error

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["EXIT_SOME_KEPT", "add_parser"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3
#: ``prune``: some releases that were due could not be removed.
EXIT_SOME_KEPT = 5


def add_parser(subparsers: Subparsers) -> None:
    """Register ``status``, ``prune`` and ``rollback``."""
    p = subparsers.add_parser(
        "status",
        help="list a link's releases: current, previous, letters, who uses each",
        description=(
            "List the releases beside the one LINK points at (or in --releases DIR), "
            "newest first: age, current/previous/A-B letter, and the live processes "
            "using each (cwd, open or mapped file, realdoc's in-use mark). Processes "
            "on a release that is not current are flagged stale. Exit 1 if LINK is "
            "missing, not a symlink or leads nowhere."
        ),
    )
    p.add_argument("link", metavar="LINK", help="the symlink (e.g. current)")
    p.add_argument("--releases", metavar="DIR",
                   help="the releases directory (default: the parent of LINK's release)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run_status, parser=p)

    p = subparsers.add_parser(
        "prune",
        help="delete old releases that nothing uses",
        description=(
            "Delete the releases beyond the N newest (by directory mtime, ties by "
            "natural name order), never the current or previous release, an A/B "
            "letter's target, a release in use by a live process, one younger than "
            "--min-age, or anything that is not a real directory. Each is renamed "
            "away before it is removed, under the switch lock. Exit 0 when all due "
            "releases were deleted, 5 when some could not be, 1 on a bad LINK, "
            "2 on usage errors."
        ),
    )
    p.add_argument("link", metavar="LINK", help="the symlink (e.g. current)")
    p.add_argument("--keep", type=_count, required=True, metavar="N",
                   help="how many of the newest releases to keep whatever they are (0 or more)")
    p.add_argument("--min-age", type=_seconds, default=0.0, metavar="SECONDS",
                   help="never delete a release younger than this (default 0)")
    p.add_argument("--releases", metavar="DIR",
                   help="the releases directory (default: the parent of LINK's release)")
    p.add_argument("--dry-run", action="store_true",
                   help="change nothing; report what would be deleted")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run_prune, parser=p)

    p = subparsers.add_parser(
        "rollback",
        help="point a link back at its previous release",
        description=(
            "Point LINK back at the previous release: with the A/B scheme its other "
            "letter, otherwise the newest release older than the current one. A "
            "compare-and-swap: exit 3 if LINK changed meanwhile, 1 if there is no "
            "previous release."
        ),
    )
    p.add_argument("link", metavar="LINK", help="the symlink (e.g. current)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run_rollback, parser=p)


def _count(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, not {text!r}")
    return value


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        text = f"{exc.strerror} [Errno {exc.errno}]"
        if exc.filename is not None:
            text = f"{os.fsdecode(exc.filename)!r}: {text}"
        return text
    return " ".join(str(exc).split()) or type(exc).__name__


def _json(doc: Any) -> None:
    emit(json.dumps(doc).encode("ascii") + b"\n")


def _lines(lines: List[str]) -> None:
    emit(b"".join(os.fsencode(line) + b"\n" for line in lines))


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def _run_status(args: argparse.Namespace) -> int:
    try:
        st = status(args.link, releases=args.releases)
    except (OSError, ValueError) as exc:
        report_error(f"status: {_describe(exc)}")
        return EXIT_ERROR
    if args.json:
        _json(st.to_json())
        return EXIT_OK
    via = f" (letter {st.letter})" if st.letter else ""
    lines = [f"link: {st.link} -> {st.target}{via}", f"releases: {st.releases_dir}"]
    for r in st.releases:
        flags = [f for f, on in (("current", r.current), ("previous", r.previous)) if on]
        flags += [f"letter {x}" for x in r.letters]
        users = ", ".join(
            f"{p.pid} [{'; '.join(p.how)}{'; stale' if p.stale else ''}] {p.cmdline}"
            for p in r.processes)
        lines.append(f"{r.name}\tage {_age(r.age)}\t{','.join(flags) or '-'}\t{users or '-'}")
    for d in st.ignored:
        lines.append(f"{d['name']}\tignored: {d['kind']}")
    if st.stale:
        lines.append("stale: " + " ".join(str(pid) for pid in st.stale))
    if st.errors:
        reasons = sorted({str(e["error"]) for e in st.errors})
        lines.append(f"not inspected: {len(st.errors)} processes ({', '.join(reasons)}); "
                     "run as root or as their user to see them")
    _lines(lines)
    return EXIT_OK


def _run_prune(args: argparse.Namespace) -> int:
    try:
        res = prune(args.link, keep=args.keep, min_age=args.min_age,
                    releases=args.releases, dry_run=args.dry_run)
    except (OSError, ValueError) as exc:
        report_error(f"prune: {_describe(exc)}")
        return EXIT_ERROR
    code = EXIT_OK if res.ok else EXIT_SOME_KEPT
    if args.json:
        _json(res.to_json())
        return code
    verb = "would delete" if res.dry_run else "deleted"
    lines = [f"{verb}: {path}" for path in res.deleted]
    for k in res.kept:
        pids = f" (pids {' '.join(map(str, k.pids))})" if k.pids else ""
        lines.append(f"kept: {k.path}: {', '.join(k.reasons)}{pids}")
    for e in res.errors:
        lines.append(f"not removed: {e['path']}: {e['filename']}: {e['error']}")
    if res.not_inspected:
        lines.append(f"not inspected: {res.not_inspected} processes (their /proc is not "
                     "readable: releases they use cannot be seen)")
    _lines(lines)
    return code


def _run_rollback(args: argparse.Namespace) -> int:
    try:
        res = rollback(args.link)
    except SwitchConflict as exc:
        found = "does not exist" if exc.actual is None else f"points at {exc.actual!r}"
        report_error(f"rollback refused: {exc.link!r} {found}, expected {exc.expected!r}")
        return EXIT_CONFLICT
    except NoPreviousRelease as exc:
        report_error(f"rollback: {exc}")
        return EXIT_ERROR
    except (OSError, ValueError) as exc:
        report_error(f"rollback: {_describe(exc)}")
        return EXIT_ERROR
    if args.json:
        _json({"link": res.link, "old": res.old, "new": res.new, "letter": res.letter})
        return EXIT_OK
    lines = [f"old: {'(none)' if res.old is None else res.old}", f"new: {res.new}"]
    if res.letter is not None:
        lines.append(f"letter: {res.letter}")
    _lines(lines)
    return EXIT_OK
