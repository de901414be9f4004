"""The ``realdoc`` command line (also ``python -m realdoc``).

Exit codes: 0 success; 1 the operation failed (one line on stderr); 2 usage error
(bad options or arguments, including a ``resolve --use-readlink`` START that is
not an absolute component-wise prefix of PATH); 3 a ``switch --expect`` (or
``rollback``) compare-and-swap was refused; 4 a ``switch --check`` command failed
(LINK untouched); 5 ``prune`` could not remove some releases
(:mod:`realdoc.cli.lifecycle`).  Once the operation has happened, a failure to
print its result never changes the exit code: a broken pipe ends quietly, any other write
error (``>/dev/full``, stdout closed) is reported in one line on stderr
(:mod:`realdoc.cli._output`).

``resolve --json`` prints one JSON object: ``path``, ``result`` and ``start`` are
the names as str, decoded with the file system encoding and ``surrogateescape``, so
a byte that is not UTF-8 (0xE9, say) appears as a lone surrogate escape
(``"\\udce9"``), which many JSON parsers reject or replace.  The fields
``path_b64``, ``result_b64`` and ``start_b64`` (``null`` with ``start``) carry the
exact bytes, standard base64 (RFC 4648, with padding): decode those to
round-trip any name.

Adding a subcommand: in its module write ``add_parser(subparsers)``, which calls
``subparsers.add_parser(NAME, help=...)``, adds its arguments and sets
``func=run`` with ``set_defaults``, where ``run(args: argparse.Namespace) -> int``
returns the exit code.  Then import that function here and append it to
:data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shlex
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence

import realdoc
from realdoc._switch import SwitchCheckFailed, SwitchConflict, switch
from realdoc.cli._output import emit, finish, report_error, write_failed
from realdoc.cli.bench import add_parser as _add_bench
from realdoc.cli.demo import add_parser as _add_demo
from realdoc.cli.lifecycle import add_parser as _add_lifecycle

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["COMMANDS", "build_parser", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3
EXIT_CHECK_FAILED = 4


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
        help="print a JSON object with the result, the mode and the syscalls issued "
        "(names also as base64 bytes: path_b64, result_b64, start_b64)",
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
            "Exit 3 if --expect does not match, 4 if the --check command fails, "
            "1 on other errors."
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
        help="A/B scheme: point LINK's idle letter at TARGET, then flip LINK to that "
        "letter; the letters are A and B for a LINK named current, NAME.A and NAME.B "
        "for any other NAME",
    )
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="do not require TARGET to exist",
    )
    p.add_argument(
        "--check",
        metavar="CMD",
        help="first run CMD in TARGET (split like a shell does, run without one), e.g. "
        "--check \"python -c 'import app'\"; if it fails, exit 4 and leave LINK "
        "untouched. This is the guard for rollover: pin_process workers reload onto "
        "whatever LINK names",
    )
    p.set_defaults(func=_run_switch, parser=p)


#: Subcommand registrations, in the order ``--help`` lists them.  Each adds its
#: subparser and sets ``func`` (see the module docstring).
COMMANDS: List[Callable[[Subparsers], None]] = [
    _add_resolve, _add_switch, _add_lifecycle, _add_demo, _add_bench]


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
        finish()  # --help / --version text: a broken pipe there ends quietly too
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except OSError as exc:  # writing --help into a closed pipe, say
        write_failed(exc)
        return EXIT_OK
    func: Callable[[argparse.Namespace], int] = args.func
    code = func(args)
    finish()
    return code



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
    except ValueError as exc:
        if start is not None and "\0" not in path:
            # PATH itself can only be refused for a NUL byte: this is START's fault.
            parser = args.parser
            try:
                parser.error(f"--use-readlink START PATH: {_describe(exc, path)}")
            except SystemExit as stop:
                return stop.code if isinstance(stop.code, int) else EXIT_USAGE
        _error(f"cannot resolve {_quote(path)}: {_describe(exc, path)}")
        return EXIT_ERROR
    except OSError as exc:
        _error(f"cannot resolve {_quote(path)}: {_describe(exc, path)}")
        return EXIT_ERROR
    after = _syscalls()

    if args.json:
        report = {
            "path": path,
            "path_b64": _b64(path),
            "result": result,
            "result_b64": _b64(result),
            "mode": "first_link" if use_readlink else "realpath",
            "start": start,
            "start_b64": None if start is None else _b64(start),
            "syscalls": {k: n - before.get(k, 0) for k, n in after.items()},
            "implementation": realdoc.implementation,
        }
        emit(json.dumps(report).encode("ascii") + b"\n")
        return EXIT_OK
    _write_lines([os.fsencode(result)])
    return EXIT_OK


def _b64(name: str) -> str:
    """The exact bytes of the file name ``name`` as standard base64 text."""
    return base64.b64encode(os.fsencode(name)).decode("ascii")


def _syscalls() -> Dict[str, int]:
    """Return a copy of the core's per-process syscall counters."""
    counts: Dict[str, int] = dict(realdoc.stats()["syscalls"])
    return counts


# -- switch ------------------------------------------------------------------------


def _run_switch(args: argparse.Namespace) -> int:
    """Switch ``args.link`` to ``args.target``; print old and new; return the code."""
    check = None
    if args.check is not None:
        try:
            check = shlex.split(args.check)
            problem = "" if check else "empty command"
        except ValueError as exc:  # an unclosed quote
            problem = str(exc)
        if problem or "\0" in args.check:
            parser: argparse.ArgumentParser = args.parser
            try:
                parser.error(f"--check CMD: {problem or 'NUL in the command'}")
            except SystemExit as exc:
                return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        res = switch(
            args.link,
            args.target,
            relative=args.relative,
            expect=args.expect,
            ab=args.ab,
            allow_missing=args.allow_missing,
            check=check,
        )
    except SwitchCheckFailed as exc:
        _error(f"switch refused: --check {_quote(args.check)} failed in "
               f"{_quote(exc.target)} ({exc.reason}); {_quote(exc.link)} left untouched")
        return EXIT_CHECK_FAILED
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
    _write_lines(lines)  # a failure to print is reported; the switch is done: exit 0
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
    report_error(message)


def _write_lines(lines: List[bytes]) -> None:
    """Write raw byte lines to stdout so non-UTF-8 file names round-trip.

    A write failure is handled by :func:`realdoc.cli._output.emit` (reported or,
    for a broken pipe, quiet) and never raised.
    """
    emit(b"".join(line + b"\n" for line in lines))
