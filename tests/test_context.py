"""realdoc._context: docroot() and join(), and their isolation per thread and per task."""

from __future__ import annotations

import asyncio
import os
import pathlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterable, List, Tuple

import pytest
from helpers import ignore_start_response

from realdoc import asgi, wsgi
from realdoc._context import docroot, join
from realdoc.testing.tree import DeployTree


@pytest.fixture
def trees(tmp_path: pathlib.Path) -> List[DeployTree]:
    """Two independent deploy trees, so two requests pin different real paths."""
    return [DeployTree.create(str(tmp_path / name), releases=2) for name in ("x", "y")]


def _real(tree: DeployTree) -> str:
    return os.path.join(tree.release_path(tree.current_release()), "public")


# -- docroot() ---------------------------------------------------------------------


def test_docroot_outside_a_request_raises_lookuperror_saying_so() -> None:
    with pytest.raises(LookupError, match="outside a request"):
        docroot()


def test_docroot_in_a_fresh_thread_raises() -> None:
    errors: List[BaseException] = []

    def probe() -> None:
        try:
            docroot()
        except LookupError as exc:
            errors.append(exc)

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    assert len(errors) == 1 and "outside a request" in str(errors[0])


# -- isolation per thread (WSGI) ---------------------------------------------------


def test_wsgi_docroot_is_per_thread(trees: List[DeployTree]) -> None:
    """Two requests in two threads overlap; each sees only its own pinned value."""
    barrier = threading.Barrier(2, timeout=10)
    seen: Dict[int, List[str]] = {0: [], 1: []}

    def make_app(i: int) -> Callable[..., Iterable[bytes]]:
        def app(environ: Dict[str, Any], start_response: Any) -> Iterable[bytes]:
            seen[i].append(docroot())
            barrier.wait()  # both requests are inside their app now
            seen[i].append(docroot())
            barrier.wait()
            seen[i].append(environ["realdoc.docroot"])
            start_response("200 OK", [])
            return [b""]
        return app

    mws = [wsgi.RealdocMiddleware(make_app(i), trees[i].docroot) for i in (0, 1)]
    threads = [threading.Thread(target=lambda i=i: list(mws[i]({}, ignore_start_response)))
               for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    for i in (0, 1):
        assert seen[i] == [_real(trees[i])] * 3
    assert _real(trees[0]) != _real(trees[1])


def test_wsgi_reused_thread_never_sees_a_stale_value(trees: List[DeployTree]) -> None:
    """A pool thread serves a request, then runs code outside any request."""

    def app(environ: Dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        yield docroot().encode()

    mw = wsgi.RealdocMiddleware(app, trees[0].docroot)

    def request() -> bytes:
        it = mw({}, ignore_start_response)
        try:
            return b"".join(it)
        finally:
            getattr(it, "close", lambda: None)()

    def outside() -> str:
        try:
            return docroot()
        except LookupError:
            return "unset"

    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(outside).result() == "unset"
        assert pool.submit(request).result() == _real(trees[0]).encode()
        assert pool.submit(outside).result() == "unset"
        assert pool.submit(request).result() == _real(trees[0]).encode()
        assert pool.submit(outside).result() == "unset"


def test_wsgi_app_exception_resets_the_value(trees: List[DeployTree]) -> None:
    def app(environ: Dict[str, Any], start_response: Any) -> Iterable[bytes]:
        raise RuntimeError("boom")

    mw = wsgi.RealdocMiddleware(app, trees[0].docroot)
    with pytest.raises(RuntimeError):
        mw({}, ignore_start_response)
    with pytest.raises(LookupError):
        docroot()


# -- isolation per task (ASGI) -----------------------------------------------------


def test_asgi_docroot_is_per_task(trees: List[DeployTree]) -> None:
    """Two concurrent requests interleave at awaits; each keeps its own value."""
    seen: Dict[int, List[str]] = {0: [], 1: []}

    async def main() -> None:
        entered = [asyncio.Event(), asyncio.Event()]

        def make_app(i: int) -> Any:
            async def app(scope: Any, receive: Any, send: Any) -> None:
                seen[i].append(docroot())
                entered[i].set()
                await entered[1 - i].wait()  # the other request is inside too
                await asyncio.sleep(0)
                seen[i].append(docroot())
                seen[i].append(scope["realdoc.docroot"])
            return app

        mws = [asgi.RealdocMiddleware(make_app(i), trees[i].docroot) for i in (0, 1)]

        async def noop_receive() -> Dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def noop_send(message: Any) -> None:
            return None

        await asyncio.wait_for(asyncio.gather(
            *(mws[i]({"type": "http"}, noop_receive, noop_send) for i in (0, 1))), 10)
        with pytest.raises(LookupError):
            docroot()

    asyncio.run(main())
    for i in (0, 1):
        assert seen[i] == [_real(trees[i])] * 3


def test_asgi_task_spawned_inside_a_request_inherits_the_value(trees: List[DeployTree]) -> None:
    """A task created during the request copies its context; later ones do not see it."""
    got: List[str] = []

    async def main() -> None:
        async def child() -> None:
            got.append(docroot())

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await asyncio.create_task(child())

        mw = asgi.RealdocMiddleware(app, trees[0].docroot)

        async def receive() -> Dict[str, Any]:
            return {}

        async def send(message: Any) -> None:
            return None

        await mw({"type": "http"}, receive, send)

        async def after() -> str:
            try:
                return docroot()
            except LookupError:
                return "unset"

        got.append(await asyncio.create_task(after()))

    asyncio.run(main())
    assert got == [_real(trees[0]), "unset"]


# -- join() ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "root, parts, expected",
    [
        ("/srv/r1", ("a.txt",), "/srv/r1/a.txt"),
        ("/srv/r1", ("css", "site.css"), "/srv/r1/css/site.css"),
        ("/srv/r1", ("css/site.css",), "/srv/r1/css/site.css"),
        ("/srv/r1/", ("a",), "/srv/r1/a"),
        ("/", ("etc",), "/etc"),
        ("/srv/r1", ("./a//b/.",), "/srv/r1/a/b"),
        ("/srv/r1", (), "/srv/r1"),
        ("/srv/r1", ("", "."), "/srv/r1"),
        ("/srv/r1", ("a..b", "...", ".hidden"), "/srv/r1/a..b/.../.hidden"),
        ("rel", ("a",), "rel/a"),
        (b"/srv/r1", (b"a", b"b"), b"/srv/r1/a/b"),
        (b"/srv/\xff", (b"\xfe",), b"/srv/\xff/\xfe"),
        (pathlib.PurePosixPath("/srv/r1"), (pathlib.PurePosixPath("a/b"),), "/srv/r1/a/b"),
    ],
)
def test_join_builds_paths_under_the_root(root: Any, parts: Any, expected: Any) -> None:
    assert join(root, *parts) == expected


@pytest.mark.parametrize(
    "parts, message",
    [
        (("/etc/passwd",), "absolute"),
        (("a", "/b"), "absolute"),
        (("..",), r"'\.\.'"),
        (("a/../b",), r"'\.\.'"),
        (("a", "../../etc"), r"'\.\.'"),
        (("a/..",), r"'\.\.'"),
        (("a\0b",), "NUL"),
    ],
)
def test_join_refuses_escapes(parts: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        join("/srv/r1", *parts)


def test_join_refuses_bytes_escapes_and_nul_in_root() -> None:
    with pytest.raises(ValueError, match="absolute"):
        join(b"/srv", b"/x")
    with pytest.raises(ValueError, match=r"'\.\.'"):
        join(b"/srv", b"x/..")
    with pytest.raises(ValueError, match="NUL"):
        join("/srv\0", "x")


def test_join_refuses_mixed_and_non_path_types() -> None:
    with pytest.raises(TypeError, match="mix"):
        join("/srv", b"x")  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        join("/srv", 3)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        join(None, "x")  # type: ignore[call-overload]


def test_join_is_lexical(tmp_path: pathlib.Path) -> None:
    """No syscall: a root that does not exist is fine, the result is not checked."""
    missing = str(tmp_path / "does-not-exist")
    assert join(missing, "a") == missing + "/a"


def test_join_with_the_pinned_docroot_reads_the_pinned_release(trees: List[DeployTree]) -> None:
    tree = trees[0]
    body: List[bytes] = []

    def app(environ: Dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with open(join(docroot(), "a.txt"), "rb") as f:
            body.append(f.read())
        start_response("200 OK", [])
        return [b""]

    wsgi.RealdocMiddleware(app, tree.docroot)({}, ignore_start_response)
    with open(os.path.join(_real(tree), "a.txt"), "rb") as f:
        assert body == [f.read()]


# ======================================================== join: bad and edge-case input

@pytest.mark.usefixtures("watchdog")
class TestJoin:
    def test_types(self) -> None:
        for args in [(None,), ("/r", None), ("/r", 1), (1,), ("/r", b"a"), (b"/r", "a"),
                     ("/r", "a", b"b"), ("/r", bytearray(b"a"))]:
            with pytest.raises(TypeError):
                join(*args)  # type: ignore[arg-type]

    def test_nul(self) -> None:
        cases: List[Tuple[Any, ...]] = [("/r\0", "a"), ("/r", "a\0"), (b"/r", b"a\0b"),
                                        ("/r", "a", "\0")]
        for args in cases:
            with pytest.raises(ValueError, match="NUL"):
                join(*args)

    def test_refuses_to_leave_the_root(self) -> None:
        for part in ["/etc", "//etc", "..", "a/../b", "a/..", "../a", "./..", "a/./../..", "a//.."]:
            with pytest.raises(ValueError):
                join("/srv/www/r1", part)
            with pytest.raises(ValueError):
                join(b"/srv/www/r1", os.fsencode(part))
            with pytest.raises(ValueError):
                join(pathlib.Path("/srv/www/r1"), pathlib.PurePosixPath("x"), part)

    def test_lexical_results(self) -> None:
        assert join("/r") == "/r"
        assert join("/r", "") == "/r"
        assert join("/r", ".", "./.") == "/r"
        assert join("/r/", "a//b/./c/") == "/r/a/b/c"
        assert join("/", "a") == "/a"
        assert join("/r", "...", ".. ", "a\\..") == "/r/.../.. /a\\.."
        assert join(b"/r", b"caf\xe9", b"\xff") == b"/r/caf\xe9/\xff"
        assert join("/r", "caf\udce9") == "/r/caf\udce9"
        long = "x" * 5000
        assert join("/r", long) == "/r/" + long  # lexical: no length limit
        assert join(pathlib.Path("/r"), "x") == "/r/x"

    def test_relative_root_stays_relative(self) -> None:
        assert join("r", "a") == "r/a"

    def test_empty_root(self) -> None:
        """An empty root never gives an absolute result: join("", "etc/passwd")
        raises ValueError or stays relative, never "/etc/passwd"."""
        root: Any
        part: Any
        for root, part in (("", "etc/passwd"), (b"", b"etc")):
            try:
                res = join(root, part)
            except ValueError:
                continue
            assert not res.startswith(os.sep if isinstance(res, str) else os.sep.encode()), (
                f"join({root!r}, {part!r}) = {res!r} left the (empty) root")


# -- regressions of issue 14 (item 15c) -----------------------------------------------


class _Html(str):
    """A str subclass with its own ``+`` (as markupsafe.Markup escapes on ``+``)."""

    def __add__(self, other: object) -> "_Html":
        return _Html("ESCAPED")


class _Blob(bytes):
    pass


def test_join_accepts_str_and_bytes_subclasses_mixed_with_plain() -> None:
    """Item 15c: only str/bytes mixing is refused; the result is a plain str or bytes."""
    res = join("/srv/www", _Html("a&b"), "c.css")
    assert res == "/srv/www/a&b/c.css" and type(res) is str
    res = join(_Html("/srv/www"), "x", _Html("y"))
    assert res == "/srv/www/x/y" and type(res) is str
    assert type(join(_Html("/srv/www"))) is str
    bres = join(b"/srv", _Blob(b"x"))
    assert bres == b"/srv/x" and type(bres) is bytes
    with pytest.raises(TypeError):
        join("/srv", _Blob(b"x"))  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        join(b"/srv", _Html("x"))  # type: ignore[call-overload]
    with pytest.raises(ValueError):
        join("/srv", _Html("../etc"))


def test_join_accepts_markupsafe_markup() -> None:
    markupsafe = pytest.importorskip("markupsafe")
    res = join("/srv/www", markupsafe.Markup("<b>"), "a")
    assert res == "/srv/www/<b>/a" and type(res) is str
