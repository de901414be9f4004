"""The ``realdoc`` command line (also ``python -m realdoc``).

Exit codes: 0 success; 1 the operation failed (one line on stderr); 2 usage error;
3 a ``switch --expect`` compare-and-swap was refused.

Adding a subcommand: in its module write ``add_parser(subparsers)``, which calls
``subparsers.add_parser(NAME, help=...)``, adds its arguments and sets
``func=run`` with ``set_defaults``, where ``run(args: argparse.Namespace) -> int``
returns the exit code.  Then import that function here and append it to
:data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, TextIO

import realdoc
from realdoc.cli.bench import add_parser as _add_bench
from realdoc.cli.demo import add_parser as _add_demo
from realdoc._switch import SwitchConflict, switch

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["COMMANDS", "build_parser", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3


def _add_resolve(subparsers: Subparsers) -> None:
    """Register ``resolve``."""
    p = subparsers.add_parser(
        "resolve",
        help="print the real path of a docroot",
        description=(
            "Resolve PATH like realpath(3) and print the result alone on one line. "
            "With --use-readlink, replace only the first symlink found at or below "
            "START (mod_realdoc's UseReadlink). Exit 1 if PATH cannot be resolved."
        ),
        usage="%(prog)s [-h] [--use-readlink [START]] [--json] PATH",
    )
    # PATH is optional to argparse only so that "--use-readlink PATH" works: a lone
    # value after --use-readlink is taken as PATH, not START (fixed up in _run_resolve).
    p.add_argument("path", nargs="?", metavar="PATH", help="the path to resolve")
    p.add_argument(
        "--use-readlink",
        nargs="?",
        const=True,
        default=None,
        metavar="START",
        help=(
            "replace only the first symlink in PATH by its target; START, an "
            "absolute prefix of PATH, is where the search for it begins"
        ),
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print a JSON object with the result, the mode and the syscalls issued",
    )
    p.set_defaults(func=_run_resolve, parser=p)


def _add_switch(subparsers: Subparsers) -> None:
    """Register ``switch``."""
    p = subparsers.add_parser(
        "switch",
        help="point a docroot symlink at a new release atomically",
        description=(
            "Point the symlink LINK at TARGET with one rename(2), so LINK never goes "
            "missing, and fsync its directory. Prints the old and new targets. "
            "Exit 3 if --expect does not match, 1 on other errors."
        ),
    )
    p.add_argument("link", metavar="LINK", help="the symlink to flip (created if missing)")
    p.add_argument("target", metavar="TARGET", help="what LINK should point at")
    form = p.add_mutually_exclusive_group()
    form.add_argument(
        "--relative",
        dest="relative",
        action="store_const",
        const=True,
        default=None,
        help="store a relative target (default: relative if TARGET is in LINK's directory)",
    )
    form.add_argument(
        "--absolute",
        dest="relative",
        action="store_const",
        const=False,
        help="store an absolute target",
    )
    p.add_argument(
        "--expect",
        metavar="OLD",
        help="switch only if LINK now points at OLD (same text or same real path)",
    )
    p.add_argument(
        "--ab",
        action="store_true",
        help="A/B scheme: point the idle letter (A or B beside LINK) at TARGET, "
        "then flip LINK to that letter",
    )
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="do not require TARGET to exist",
    )
    p.set_defaults(func=_run_switch, parser=p)


#: Subcommand registrations, in the order ``--help`` lists them.  Each adds its
#: subparser and sets ``func`` (see the module docstring).
COMMANDS: List[Callable[[Subparsers], None]] = [_add_resolve, _add_switch, _add_demo, _add_bench]


def build_parser() -> argparse.ArgumentParser:
    """Return the ``realdoc`` argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="realdoc",
        description="Resolve symlinked docroots and flip them atomically.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"realdoc {realdoc.__version__} ({realdoc.implementation})",
    )
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", title="commands", required=True
    )
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line and return its exit code.

    ``argv`` excludes the program name and defaults to ``sys.argv[1:]``.  Usage
    errors, ``--help`` and ``--version`` return the code argparse exits with (2, 0,
    0) instead of raising SystemExit.  The console script calls
    ``sys.exit(main())``.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


# -- resolve -----------------------------------------------------------------------


def _run_resolve(args: argparse.Namespace) -> int:
    """Resolve ``args.path``; print it (or JSON) and return the exit code."""
    path: Optional[str] = args.path
    start: Optional[str] = None
    use_readlink = args.use_readlink is not None
    if isinstance(args.use_readlink, str):
        start = args.use_readlink
        if path is None:  # "--use-readlink PATH": the lone value is PATH
            path, start = start, None
    if path is None:
        parser: argparse.ArgumentParser = args.parser
        try:
            parser.error("the following arguments are required: PATH")
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE

    before = _syscalls()
    try:
        if use_readlink:
            result = realdoc.first_link(path, start=start)
        else:
            result = realdoc.realpath(path)
    except (OSError, ValueError) as exc:
        _error(f"cannot resolve {_quote(path)}: {_describe(exc, path)}")
        return EXIT_ERROR
    after = _syscalls()

    if args.json:
        report = {
            "path": path,
            "result": result,
            "mode": "first_link" if use_readlink else "realpath",
            "start": start,
            "syscalls": {k: n - before.get(k, 0) for k, n in after.items()},
            "implementation": realdoc.implementation,
        }
        print(json.dumps(report))
        return EXIT_OK
    _write_lines(sys.stdout, [os.fsencode(result)])
    return EXIT_OK


def _syscalls() -> Dict[str, int]:
    """Return a copy of the core's per-process syscall counters."""
    counts: Dict[str, int] = dict(realdoc.stats()["syscalls"])
    return counts


# -- switch ------------------------------------------------------------------------


def _run_switch(args: argparse.Namespace) -> int:
    """Switch ``args.link`` to ``args.target``; print old and new; return the code."""
    try:
        res = switch(
            args.link,
            args.target,
            relative=args.relative,
            expect=args.expect,
            ab=args.ab,
            allow_missing=args.allow_missing,
        )
    except SwitchConflict as exc:
        actual = "does not exist" if exc.actual is None else f"points at {_quote(exc.actual)}"
        _error(f"switch refused: {_quote(exc.link)} {actual}, expected {_quote(exc.expected)}")
        return EXIT_CONFLICT
    except (OSError, ValueError) as exc:
        _error(f"cannot switch {_quote(args.link)}: {_describe(exc, args.link)}")
        return EXIT_ERROR
    lines = [
        b"old: " + (b"(none)" if res.old is None else os.fsencode(res.old)),
        b"new: " + os.fsencode(res.new),
    ]
    if res.letter is not None:
        lines.append(b"letter: " + res.letter.encode())
    _write_lines(sys.stdout, lines)
    return EXIT_OK


# -- output helpers ----------------------------------------------------------------


def _quote(path: object) -> str:
    """Quote a path for a one-line message (newlines and odd bytes escaped)."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    return repr(path) if isinstance(path, str) else repr(str(path))


def _describe(exc: Exception, subject: str) -> str:
    """Describe ``exc`` on one line, naming its filename when not ``subject``."""
    if isinstance(exc, OSError) and exc.errno is not None:
        text = f"{exc.strerror} [Errno {exc.errno}]"
        if exc.filename is not None and os.fsdecode(exc.filename) != subject:
            text = f"{_quote(exc.filename)}: {text}"
        return text
    return " ".join(str(exc).split()) or type(exc).__name__


def _error(message: str) -> None:
    """Write ``realdoc: message`` as one line on stderr."""
    sys.stderr.write(f"realdoc: {message}\n")
    sys.stderr.flush()


def _write_lines(stream: TextIO, lines: List[bytes]) -> None:
    """Write raw byte lines to ``stream`` so non-UTF-8 file names round-trip.

    Uses ``stream.buffer`` when there is one (after flushing pending text); falls
    back to text decoded with the file system encoding otherwise.
    """
    data = b"".join(line + b"\n" for line in lines)
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(os.fsdecode(data))
        stream.flush()
        return
    stream.flush()
    buffer.write(data)
    buffer.flush()
