"""Differential fuzz target: realpath, first_link, Resolver and join on random trees.

One input (any bytes) is decoded, deterministically, into a small file tree
(directories, files, relative and absolute symlinks, loops, dangling links,
non-UTF-8 and 255/256-byte names) built in a fresh directory, followed by a
list of operations: path queries, ``first_link`` with a ``start``, resolvers
re-checked after the tree is changed under them, and ``join`` calls.  Every
answer is checked against independent references:

* ``realpath``: the compiled core == the pure twin == glibc realpath(3) (via
  ctypes), with the ``/proc`` route on and off, for bytes and for str;
* ``first_link``: compiled == pure (result, or exception type, errno,
  filename and message), and == a plain reference walk when the path
  resolves; the result names the same file (st_dev, st_ino);
* ``Resolver(every=0)`` in realpath and first_link modes (the compiled one
  refreshes "by prediction": readlink + openat2) == the plain functions on
  the tree as it is at that moment, after each change;
* ``join``: a lexical reference, and the result never leaves the root.

Run it with atheris (``python tests/fuzz/fuzz_realdoc.py [libFuzzer flags]``)
or through ``tests/fuzz/run.py``, which also has a hypothesis fallback.
:func:`check_one` is the entry point everything shares, including the
regression replay in ``tests/test_fuzz_regressions.py``.

Kept out of the alphabet on purpose: ``/proc`` magic links and an empty
``join`` root, whose behaviour is pinned by tests/test_core.py and
``TestJoin`` in tests/test_context.py.

Links in the trees point anywhere (``/``, ``/tmp``, ``../..``): every change
to the file system is checked (:meth:`Tree.inside`) to stay inside the tree,
and tests/test_fuzz_regressions.py checks that it does.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any, Callable, List, Optional, Sequence, Tuple, TypeVar

try:
    from realdoc import _fastpath as C
except ImportError:  # pragma: no cover - depends on the build
    C = None  # type: ignore[assignment]
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/
from reference import libc_realpath, ref_first_link  # noqa: E402

from realdoc import _fastpath_py as P
from realdoc._context import join as _join

T = TypeVar("T")

PATH_MAX = 4096

class Finding(AssertionError):
    """A disagreement or an unexpected exception: the input is a finding."""


def check(cond: bool, *what: Any) -> None:
    if not cond:
        raise Finding(" | ".join(repr(w) for w in what))


def outcome(fn: Callable[..., Any], *args: Any, **kw: Any) -> Tuple[Any, ...]:
    """("ok", value) or (exception type name, errno, strerror, filename, message).

    Only the exceptions of the contract are caught (OSError, ValueError,
    TypeError); anything else propagates and is a finding by itself.
    """
    try:
        return ("ok", fn(*args, **kw))
    except OSError as e:
        check(type(e) is type(OSError(e.errno, "x")), "OSError subclass does not match errno", e)
        return (type(e).__name__, e.errno, e.strerror, e.filename, None)
    except (ValueError, TypeError) as e:
        return (type(e).__name__, None, None, None, str(e))


# ------------------------------------------------------------------ decoding

class Data:
    """A cursor over the input; reads past the end give zeros."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.i = 0

    def more(self) -> bool:
        return self.i < len(self.data)

    def byte(self) -> int:
        if self.i >= len(self.data):
            return 0
        b = self.data[self.i]
        self.i += 1
        return b

    def pick(self, seq: Sequence[T]) -> T:
        return seq[self.byte() % len(seq)]


NAMES = [b"a", b"b", b"c", b"d", b"caf\xe9", b"sp ace", b"x" * 255]
# components of queries and link targets; "\0" only where NUL is the point
COMPS = NAMES[:5] + [b".", b"..", b"", b"a", b"b", b"..", b"nope", b"x" * 255, b"y" * 256]


ROOT_LEN = 64  # the tree root always has this length, so inputs replay alike anywhere


class Tree:
    """A tree built in ``base/ttt...`` (ROOT_LEN bytes; recreated for each input)."""

    def __init__(self, base: bytes) -> None:
        self.root = base + b"/" + b"t" * (ROOT_LEN - len(base) - 1)
        self.entries: List[bytes] = []
        self.links: List[bytes] = []

    # Links in the tree point anywhere ("/", "/tmp", "../.."), so a path under the
    # root may lead out of it.  Every change goes through these checks first: the
    # fuzzer must never create, repoint or delete anything outside its tree.
    def inside(self, p: bytes) -> bool:
        """True when p, with every existing link followed, stays under the root."""
        r = os.path.realpath(p)
        return r == self.root or r.startswith(self.root + b"/")

    def safe_parent(self, p: bytes) -> bool:
        return self.inside(os.path.dirname(p)) and self.inside(p)

    def target(self, d: Data) -> bytes:
        mode = d.byte() % 6
        comps = [d.pick(COMPS[:-1]) for _ in range(1 + d.byte() % 4)]
        text = b"/".join(comps) or b"."
        if mode == 0:
            return self.root + b"/" + text          # absolute, inside the tree
        if mode == 1:
            return d.pick([b"/", b"/tmp", b"/..", b"//", self.root + b"/"])
        if mode == 2:
            return d.pick([b".", b"..", b"./", b"../" + os.path.basename(self.root),
                           b"../" + os.path.basename(self.root) + b"/a"])
        return text                                  # relative

    def build(self, d: Data) -> None:
        os.mkdir(self.root)
        for _ in range(d.byte() % 14):
            where = b"/".join(d.pick(NAMES) for _ in range(1 + d.byte() % 3))
            path = self.root + b"/" + where
            kind = d.byte() % 6
            target = self.target(d) if kind >= 3 else b""
            if not self.safe_parent(path):
                continue
            try:
                if kind <= 1:
                    os.makedirs(path, exist_ok=True)
                elif kind == 2:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path, "wb") as f:
                        f.write(b"x")
                else:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    os.symlink(target, path)
                    self.links.append(path)
                self.entries.append(path)
            except OSError:
                pass  # a parent is a file or a link loop, or the name exists

    def mutate(self, d: Data) -> None:
        """Change the tree: repoint a link atomically, remove or add an entry."""
        op = d.byte() % 4
        if op <= 1 and self.links:
            link = d.pick(self.links)
            tmp = self.root + b"/.tmp-link"
            target = self.target(d)
            if not self.inside(os.path.dirname(link)):
                return
            try:
                os.symlink(target, tmp)
                os.replace(tmp, link)
            except OSError:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
        elif op == 2 and self.entries:
            victim = d.pick(self.entries)
            if not self.inside(os.path.dirname(victim)):
                return
            try:
                if os.path.isdir(victim) and not os.path.islink(victim):
                    if self.inside(victim):
                        shutil.rmtree(victim)
                else:
                    os.unlink(victim)
            except OSError:
                pass
        else:
            where = b"/".join(d.pick(NAMES) for _ in range(1 + d.byte() % 3))
            path = self.root + b"/" + where
            make_dir = d.byte() % 2 == 1
            target = b"" if make_dir else self.target(d)
            if not self.safe_parent(path):
                return
            try:
                if make_dir:
                    os.makedirs(path, exist_ok=True)
                else:
                    os.symlink(target, path)
                    self.links.append(path)
                self.entries.append(path)
            except OSError:
                pass

    def query(self, d: Data) -> bytes:
        kind = d.byte() % 8
        comps = [d.pick(COMPS) for _ in range(d.byte() % 7)]
        text = b"/".join(comps)
        if d.byte() % 4 == 0:
            text += b"/"
        if kind <= 3:
            p = self.root + b"/" + text
        elif kind <= 5:
            p = text                                  # relative to the tree root
        elif kind == 6:
            p = b"/" + text
        else:
            p = self.root + b"/" + text
            pad = d.byte() % 8
            if pad < 6:
                # pad the text to around PATH_MAX with runs that resolve to nothing
                want = PATH_MAX - 2 + (pad % 3)
                filler = b"/" if pad < 3 else b"/."
                n = max(0, (want - len(p)) // len(filler))
                p = self.root + filler * n + b"/" + text
                p = p[:1] + b"/" * max(0, want - len(p)) + p[1:]
        if d.byte() == 0xFF:
            p = p[: len(p) // 2] + b"\0" + p[len(p) // 2:]
        return p


# ------------------------------------------------------------------- checks

def impls() -> List[Any]:
    return [m for m in (C, P) if m is not None]


def same_errors(a: Tuple[Any, ...], b: Tuple[Any, ...], *ctx: Any) -> None:
    check(a == b, "compiled and pure twin disagree", *ctx, a, b)


def check_realpath(p: bytes) -> None:
    if b"\0" in p:
        for m in impls():
            got = outcome(m.realpath, p)
            check(got[0] == "ValueError", "NUL not refused", p, got)
            got = outcome(m.realpath, os.fsdecode(p))
            check(got[0] == "ValueError", "NUL not refused (str)", p, got)
        return
    want = libc_realpath(p)
    for proc in (True, False):
        for m in impls():
            m.set_features(proc=proc)
        try:
            results = [outcome(m.realpath, p) for m in impls()]
        finally:
            for m in impls():
                m.set_features(proc=True)
        for got in results:
            if want[0] is not None:
                check(got == ("ok", want[0]), "realpath != libc", p, proc, got, want)
            else:
                check(got[0] != "ok" and got[1] == want[1], "realpath != libc", p, proc, got, want)
                check(got[3] is p, "filename is not the argument", p, got)
        if len(results) == 2:
            same_errors(results[0], results[1], "realpath", p, proc)
    s = os.fsdecode(p)
    for m in impls():
        got = outcome(m.realpath, s)
        if want[0] is not None:
            check(got == ("ok", os.fsdecode(want[0])), "realpath(str) != libc", s, got, want)
        else:
            check(got[1] == want[1] and got[3] is s, "realpath(str) error", s, got, want)


def check_first_link(p: bytes, start: Optional[bytes] = None) -> None:
    kw = {} if start is None else {"start": start}
    results = [outcome(m.first_link, p, **kw) for m in impls()]
    if len(results) == 2:
        same_errors(results[0], results[1], "first_link", p, start)
    got = results[0]
    if b"\0" in p or (start is not None and b"\0" in start):
        check(got[0] == "ValueError", "NUL not refused", p, start, got)
        return
    if got[0] not in ("ok", "ValueError", "TypeError"):
        check(got[3] is p, "filename is not the argument", p, got)
    if start is not None or got[0] != "ok" or len(p) > 2048:
        return
    if libc_realpath(p)[0] is None:
        return
    ref = ref_first_link(p)
    if len(ref) >= 2048:
        return
    check(got == ("ok", ref), "first_link != reference", p, got, ref)
    a, b = os.stat(got[1]), os.stat(p)
    check((a.st_dev, a.st_ino) == (b.st_dev, b.st_ino), "first_link names another file", p, got)


def pick_start(d: Data, p: bytes) -> bytes:
    parts = p.split(b"/")
    cut = d.byte() % (len(parts) + 1)
    start = b"/".join(parts[:cut]) or b"/"
    return start + d.pick([b"", b"/", b"x", b"/.", b"/./"])


def expected(mode: bool, p: bytes) -> Tuple[Any, ...]:
    """What a fresh resolution of p gives now (realpath via libc; first_link via the core)."""
    if not mode:
        want = libc_realpath(p)
        return ("ok", want[0]) if want[0] is not None else ("err", want[1])
    got = outcome(P.first_link, p)
    return ("ok", got[1]) if got[0] == "ok" else ("err", got[1])


def check_resolvers(d: Data, tree: Tree, p: bytes) -> None:
    if b"\0" in p:
        return
    if not p:
        for m in impls():
            got = outcome(m.Resolver, p)
            check(got[:1] == ("ValueError",), "empty docroot accepted", got)
        return
    as_str = d.byte() % 2 == 1
    arg: Any = os.fsdecode(p) if as_str else p
    conv = os.fsdecode if as_str else (lambda x: x)
    modes = [False] + ([True] if p.startswith(b"/") else [])
    resolvers = []
    for m in impls():
        for mode in modes:
            for on_error in ("raise", "stale"):
                resolvers.append((m, mode, on_error, m.Resolver(arg, every=0, use_readlink=mode,
                                                                 on_error=on_error)))
    last = {id(r): None for _, _, _, r in resolvers}
    for step in range(1 + d.byte() % 4):
        if step:
            tree.mutate(d)
        for m, mode, on_error, r in resolvers:
            want = expected(mode, p)
            got = outcome(r)
            ctx = (m.__name__, "first_link" if mode else "realpath", on_error, p, step)
            if want[0] == "ok":
                check(got == ("ok", conv(want[1])), "Resolver != fresh resolution", *ctx, got, want)
                last[id(r)] = got[1]
            elif on_error == "stale" and last[id(r)] is not None:
                check(got == ("ok", last[id(r)]), "stale value not served", *ctx, got, want)
            else:
                check(got[0] != "ok" and got[1] == want[1], "Resolver error", *ctx, got, want)
                check(got[3] == arg, "Resolver error filename", *ctx, got)


def ref_join(root: Any, parts: List[Any]) -> Tuple[Any, ...]:
    """Lexical reference for realdoc's join."""
    kinds = {type(root)} | {type(x) for x in parts}
    if len(kinds) > 1:
        return ("TypeError",)
    sep: Any
    nul: Any
    dot: Any
    dotdot: Any
    if isinstance(root, str):
        sep, nul, dot, dotdot = "/", "\0", ".", ".."
    else:
        sep, nul, dot, dotdot = b"/", b"\0", b".", b".."
    if nul in root:
        return ("ValueError",)
    comps = []
    for part in parts:
        if nul in part or part.startswith(sep):
            return ("ValueError",)
        for c in part.split(sep):
            if c == dotdot:
                return ("ValueError",)
            if c and c != dot:
                comps.append(c)
    if not comps:
        return ("ok", root)
    base = root if root.endswith(sep) else root + sep
    return ("ok", base + sep.join(comps))


def check_join(d: Data, tree: Tree) -> None:
    root = d.pick([tree.root, tree.root + b"/", b"/", b"/srv/www/r1"])
    parts = []
    for _ in range(d.byte() % 4):
        comps = [d.pick(COMPS + [b"\0", b"/"]) for _ in range(d.byte() % 4)]
        parts.append(b"/".join(comps))
    mix = d.byte() % 8
    if mix == 1:
        root_a: Any = os.fsdecode(root)
        parts_a: List[Any] = [os.fsdecode(x) for x in parts]
    elif mix == 2 and parts:
        root_a, parts_a = root, [os.fsdecode(parts[0])] + parts[1:]
    else:
        root_a, parts_a = root, parts
    got = outcome(_join, root_a, *parts_a)
    want = ref_join(root_a, parts_a)
    check(got[0] == want[0] and (want[0] != "ok" or got[1] == want[1]),
          "join != lexical reference", root_a, parts_a, got, want)
    if got[0] == "ok":
        res = got[1]
        sep = "/" if isinstance(res, str) else b"/"
        rest = res[len(root_a):]
        check(res.startswith(root_a), "join left the root", root_a, parts_a, res)
        check(all(c not in ("..", b"..") for c in rest.split(sep)),
              "join result has a '..' component", root_a, parts_a, res)


# --------------------------------------------------------------- entry point

_base: Optional[bytes] = None


def _workdir() -> bytes:
    global _base
    if _base is None:
        _base = os.fsencode(os.path.realpath(tempfile.mkdtemp(prefix="realdoc-fuzz-")))
        if len(_base) > ROOT_LEN - 2:
            shutil.rmtree(_base)
            _base = os.fsencode(os.path.realpath(tempfile.mkdtemp(prefix="rdf", dir="/tmp")))
        if len(_base) > ROOT_LEN - 2:  # pragma: no cover - a very odd /tmp
            raise RuntimeError(f"temporary directory {_base!r} is too long for the fuzzer")
        import atexit
        atexit.register(shutil.rmtree, _base, True)
    return _base


def check_one(data: bytes) -> None:
    """Decode ``data`` into a tree and operations and check every answer.

    Raises :class:`Finding` (an AssertionError) on a disagreement; any other
    exception escaping is a finding too.  Restores the cwd and the kernel
    feature switches of both implementations.
    """
    base = _workdir()
    tree = Tree(base)
    if os.path.lexists(tree.root):
        shutil.rmtree(tree.root)
    cwd = os.getcwd()
    old = [m.set_features(proc=True) for m in impls()]
    d = Data(data)
    try:
        tree.build(d)
        os.chdir(tree.root)
        for _ in range(24):
            if not d.more():
                break
            op = d.byte() % 8
            if op <= 2:
                p = tree.query(d)
                check_realpath(p)
                check_first_link(p)
            elif op == 3:
                p = tree.query(d)
                if p.startswith(b"/"):
                    check_first_link(p, pick_start(d, p))
            elif op == 4:
                check_resolvers(d, tree, tree.query(d))
            elif op == 5:
                check_join(d, tree)
            elif op == 6:
                tree.mutate(d)
            else:
                p = tree.query(d)
                check_realpath(p)
    finally:
        os.chdir(cwd)
        for m, o in zip(impls(), old):
            m.set_features(**o)
        for m in impls():
            m.clear()
        shutil.rmtree(tree.root, ignore_errors=True)


def main(argv: List[str]) -> None:
    import logging

    import atheris  # only the fuzzer needs it

    logging.getLogger("realdoc").disabled = True  # failure episodes are expected here
    # Instrument only what is worth coverage feedback: this harness and realdoc's
    # Python code (the pure twin mirrors the compiled core branch for branch).
    # instrument_all() would also patch the whole standard library (~30 s).
    import types

    import realdoc._common

    mods = [sys.modules[__name__], P, realdoc._common, sys.modules[_join.__module__]]
    for mod in mods:
        for obj in list(vars(mod).values()):
            funcs = [obj] if isinstance(obj, types.FunctionType) else []
            if isinstance(obj, type) and obj.__module__ == mod.__name__:
                funcs = [f for f in vars(obj).values() if isinstance(f, types.FunctionType)]
                funcs += [p.fget for p in vars(obj).values()
                          if isinstance(p, property) and isinstance(p.fget, types.FunctionType)]
            for f in funcs:
                if f.__module__ == mod.__name__:
                    atheris.instrument_func(f)
    atheris.Setup(argv, check_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
