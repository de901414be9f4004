"""realdoc.asgi.RealdocMiddleware on real deploy trees with real rename(2) flips.

The environment-configuration tests for both middlewares are in test_wsgi.py.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
from typing import Any, Awaitable, Dict, List, MutableMapping, Optional

import pytest

from realdoc import asgi
from realdoc._context import docroot, join
from realdoc.testing.tree import DeployTree

Scope = MutableMapping[str, Any]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REALDOC_DOCROOT", "REALDOC_EVERY", "REALDOC_USE_READLINK"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def tree(tmp_path: pathlib.Path) -> DeployTree:
    return DeployTree.create(str(tmp_path / "site"), releases=3)


def real(tree: DeployTree, release: Optional[str] = None) -> str:
    return os.path.join(tree.release_path(release or tree.current_release()), "public")


def read(root: str, name: str) -> str:
    with open(join(root, name)) as f:
        return f.read().strip()


async def receive() -> Dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


class Sent:
    """An ASGI send that keeps the messages."""

    def __init__(self) -> None:
        self.messages: List[MutableMapping[str, Any]] = []

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        self.messages.append(message)


class Capture:
    """An ASGI app that records the scope it got and what docroot() said."""

    def __init__(self) -> None:
        self.scopes: List[Scope] = []
        self.docroots: List[str] = []
        self.receives: List[Any] = []
        self.sends: List[Any] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        self.receives.append(receive)
        self.sends.append(send)
        try:
            self.docroots.append(docroot())
        except LookupError:
            self.docroots.append("unset")


def run(coro: Awaitable[Any]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, 10)
    return asyncio.run(bounded())


# -- scopes ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["http", "websocket"])
def test_pins_http_and_websocket_scopes(tree: DeployTree, kind: str) -> None:
    app = Capture()
    mw = asgi.RealdocMiddleware(app, tree.docroot)
    scope: Scope = {"type": kind, "path": "/"}
    run(mw(scope, receive, Sent()))
    got = app.scopes[0]
    assert got["realdoc.docroot"] == real(tree)
    assert got["path"] == "/" and got["type"] == kind
    assert app.docroots == [real(tree)]
    assert "realdoc.docroot" not in scope  # the server's scope is left as it was
    with pytest.raises(LookupError):
        docroot()


def test_receive_and_send_are_passed_unchanged(tree: DeployTree) -> None:
    app, sent = Capture(), Sent()
    run(asgi.RealdocMiddleware(app, tree.docroot)({"type": "http"}, receive, sent))
    assert app.receives == [receive] and app.sends == [sent]


@pytest.mark.parametrize("kind", ["http", "websocket"])
def test_sets_state_docroot_when_state_is_present(tree: DeployTree, kind: str) -> None:
    app = Capture()
    state: Dict[str, Any] = {"db": "conn"}
    run(asgi.RealdocMiddleware(app, tree.docroot)({"type": kind, "state": state},
                                                  receive, Sent()))
    assert app.scopes[0]["state"] is state  # the per-request state dict, updated in place
    assert state == {"db": "conn", "docroot": real(tree)}


def test_no_state_key_is_added_when_absent(tree: DeployTree) -> None:
    app = Capture()
    run(asgi.RealdocMiddleware(app, tree.docroot)({"type": "http"}, receive, Sent()))
    assert "state" not in app.scopes[0]


@pytest.mark.parametrize("kind", ["lifespan", "something.else"])
def test_lifespan_and_other_scopes_pass_through_untouched(tree: DeployTree, kind: str) -> None:
    app, sent = Capture(), Sent()
    state: Dict[str, Any] = {}
    scope: Scope = {"type": kind, "asgi": {"version": "3.0"}, "state": state}
    run(asgi.RealdocMiddleware(app, tree.docroot)(scope, receive, sent))
    assert app.scopes[0] is scope
    assert scope == {"type": kind, "asgi": {"version": "3.0"}, "state": {}}
    assert app.receives == [receive] and app.sends == [sent]
    assert app.docroots == ["unset"]


def test_full_lifespan_exchange_through_the_middleware(tree: DeployTree) -> None:
    """A lifespan app that sets up state works exactly as without the middleware."""
    log: List[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            log.append(message["type"])
            if message["type"] == "lifespan.startup":
                scope["state"]["ready"] = True
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def main() -> None:
        queue: "asyncio.Queue[Dict[str, Any]]" = asyncio.Queue()
        for t in ("lifespan.startup", "lifespan.shutdown"):
            queue.put_nowait({"type": t})
        sent = Sent()
        state: Dict[str, Any] = {}
        await asgi.RealdocMiddleware(app, tree.docroot)(
            {"type": "lifespan", "state": state}, queue.get, sent)
        assert state == {"ready": True}
        assert [m["type"] for m in sent.messages] == [
            "lifespan.startup.complete", "lifespan.shutdown.complete"]

    run(main())
    assert log == ["lifespan.startup", "lifespan.shutdown"]


def test_app_must_be_callable(tree: DeployTree) -> None:
    with pytest.raises(TypeError, match="ASGI callable"):
        asgi.RealdocMiddleware(None, tree.docroot)  # type: ignore[arg-type]


def test_environ_key_is_a_wsgi_only_option(tree: DeployTree) -> None:
    with pytest.raises(TypeError):
        asgi.RealdocMiddleware(Capture(), tree.docroot, environ_key="X")  # type: ignore[call-arg]


# -- pinning across flips --------------------------------------------------------


def test_flip_across_awaits_does_not_move_the_pin(tree: DeployTree) -> None:
    """Read a.txt, await, flip by rename, await, read b.txt: one release."""
    bodies: List[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        a = read(docroot(), "a.txt")
        await asyncio.sleep(0)
        tree.flip("r3")
        await asyncio.sleep(0.001)
        b = read(scope["realdoc.docroot"], "b.txt")
        plain = read(tree.docroot, "b.txt")
        bodies.append(f"{a} {b} {plain}")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent = Sent()
    run(asgi.RealdocMiddleware(app, tree.docroot, every=0)({"type": "http"}, receive, sent))
    assert bodies == ["r1 r1 r3"]
    assert [m["type"] for m in sent.messages] == ["http.response.start", "http.response.body"]


def test_websocket_connection_keeps_its_pin_for_its_lifetime(tree: DeployTree) -> None:
    seen: List[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        for name in ("r2", "r3"):
            seen.append(read(docroot(), "a.txt"))
            tree.flip(name)
            await asyncio.sleep(0)
        seen.append(read(scope["realdoc.docroot"], "a.txt"))

    run(asgi.RealdocMiddleware(app, tree.docroot, every=0)({"type": "websocket"}, receive, Sent()))
    assert seen == ["r1", "r1", "r1"]


def test_concurrent_requests_across_a_flip_each_keep_their_release(tree: DeployTree) -> None:
    """Request A pins r1; the link flips; request B pins r2; both finish interleaved."""
    got: Dict[str, str] = {}

    async def main() -> None:
        a_inside, b_done = asyncio.Event(), asyncio.Event()

        async def app(scope: Scope, receive: Any, send: Any) -> None:
            name = scope["path"]
            first = read(docroot(), "a.txt")
            if name == "A":
                a_inside.set()
                await b_done.wait()
            got[name] = first + " " + read(docroot(), "b.txt")
            if name == "B":
                b_done.set()

        mw = asgi.RealdocMiddleware(app, tree.docroot, every=0)
        task_a = asyncio.create_task(mw({"type": "http", "path": "A"}, receive, Sent()))
        await a_inside.wait()
        tree.flip("r2")
        await mw({"type": "http", "path": "B"}, receive, Sent())
        await task_a

    run(main())
    assert got == {"A": "r1 r1", "B": "r2 r2"}


def test_every_zero_follows_each_flip(tree: DeployTree) -> None:
    app = Capture()
    mw = asgi.RealdocMiddleware(app, tree.docroot, every=0)
    for name in ("r3", "r2", "r1"):
        tree.flip(name)
        run(mw({"type": "http"}, receive, Sent()))
    assert app.docroots == [real(tree, n) for n in ("r3", "r2", "r1")]


# -- errors ----------------------------------------------------------------------


def test_app_exception_propagates_and_resets(tree: DeployTree) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    async def main() -> None:
        with pytest.raises(RuntimeError):
            await asgi.RealdocMiddleware(app, tree.docroot)({"type": "http"}, receive, Sent())
        with pytest.raises(LookupError):
            docroot()

    run(main())


def test_on_error_raise_fails_before_the_app(tree: DeployTree) -> None:
    app = Capture()
    mw = asgi.RealdocMiddleware(app, tree.docroot, every=0, on_error="raise")
    os.unlink(tree.current)
    with pytest.raises(FileNotFoundError):
        run(mw({"type": "http"}, receive, Sent()))
    assert app.scopes == []


def test_on_error_stale_through_a_non_atomic_flip(tree: DeployTree) -> None:
    app = Capture()
    mw = asgi.RealdocMiddleware(app, tree.docroot, every=0)
    os.unlink(tree.current)
    run(mw({"type": "http"}, receive, Sent()))
    os.symlink("releases/r2", tree.current)
    run(mw({"type": "http"}, receive, Sent()))
    assert app.docroots == [real(tree, "r1"), real(tree, "r2")]


def test_on_error_passthrough(tree: DeployTree) -> None:
    app = Capture()
    mw = asgi.RealdocMiddleware(app, tree.docroot, every=0, on_error="passthrough")
    os.unlink(tree.current)
    run(mw({"type": "http"}, receive, Sent()))
    assert app.docroots == [tree.docroot]


def test_use_readlink(tree: DeployTree) -> None:
    app = Capture()
    mw = asgi.RealdocMiddleware(app, tree.docroot, use_readlink=True)
    run(mw({"type": "http"}, receive, Sent()))
    assert mw.resolver.mode == "first_link"
    assert app.docroots == [real(tree)]
