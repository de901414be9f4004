"""ASGI middleware: resolve the docroot once per request and pin it for the request.

::

    from realdoc.asgi import RealdocMiddleware
    app = RealdocMiddleware(app, "/srv/app/current/public")

For ``http`` and ``websocket`` scopes the wrapped app finds the real docroot in
``scope["realdoc.docroot"]``, in ``scope["state"]["docroot"]`` when the server
provides lifespan state (Starlette: ``request.state.docroot``), and through
:func:`realdoc.docroot` in the task serving the request.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, MutableMapping, Optional, Tuple

from . import _inuse
from ._config import make_resolver, options
from ._context import DOCROOT
from ._release import header_option, header_value, release_name, remember

__all__ = ["RealdocMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_set = DOCROOT.set
_reset = DOCROOT.reset
_pin = _inuse.pin
_release = _inuse.release


class RealdocMiddleware:
    """Wrap an ASGI 3 app so each request or websocket sees one pinned real docroot.

    ``docroot``, ``every``, ``use_readlink``, ``on_error``, ``scope`` and ``watch`` as for
    :class:`realdoc.wsgi.RealdocMiddleware`, including the ``REALDOC_*``
    environment fall-backs and the checks at construction (TypeError,
    ValueError).  Per ``http`` or ``websocket`` scope the middleware calls its
    one :class:`realdoc.Resolver` once and passes the app a shallow copy of the
    scope with ``"realdoc.docroot"`` added (the server's scope is not changed);
    when the scope has a ``"state"`` dict (the per-request copy of lifespan
    state) it sets ``state["docroot"]`` in it.  :func:`realdoc.docroot` is set
    in the serving task for the whole app call and reset after.  ``lifespan``
    and any other scope type are passed through untouched (the same object).
    An OSError from the Resolver propagates before the app is called.

    While the app call runs, the request's release is marked in use, as with
    :class:`realdoc.wsgi.RealdocMiddleware` (:mod:`realdoc._inuse`); the mark is
    dropped when the app call returns or raises.

    ``header`` (opt-in, as for the WSGI middleware; ``REALDOC_HEADER``) names a
    response header added, valued with the release name, to the app's
    ``http.response.start`` (and ``websocket.accept``) messages; the message
    sent is a copy, the app's own is not changed.
    """

    __slots__ = ("app", "resolver", "_depth", "_configured", "_keeper", "header", "_last")

    def __init__(
        self,
        app: ASGIApp,
        docroot: Any = None,
        *,
        every: Optional[float] = None,
        use_readlink: Any = None,
        on_error: str = "stale",
        scope: Optional[str] = None,
        header: Optional[str] = None,
        watch: Optional[bool] = None,
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be an ASGI callable, not {type(app).__name__}")
        self.app = app
        #: The response header naming the release, or None (see ``header``).
        self.header: Optional[str] = header_option(header)
        # (resolved docroot, its release name), one attribute so tasks never
        # see a name with another root
        self._last: Tuple[Optional[str], str] = (None, "")
        #: The :class:`realdoc.Resolver` behind this middleware (for introspection).
        self.resolver: Any = make_resolver(options(
            docroot, every, use_readlink, on_error, scope=scope, watch=watch))
        self._configured: str = self.resolver.docroot
        self._depth = _inuse.layout_depth(self._configured)
        self._keeper = _inuse.Keeper() if self.resolver.every > 0 else None

    def __repr__(self) -> str:
        return f"<realdoc.asgi.RealdocMiddleware {self.resolver!r} app={self.app!r}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        root, mark = _pin(self.resolver, self._depth, self._configured, self._keeper)
        last = self._last
        if last[0] is not root:  # a new resolution: name its release once
            last = self._last = (root, release_name(self._configured, root))
            remember(root, last[1])
        if self.header is not None:
            send = _with_header(send, self.header.lower().encode("ascii"),
                                header_value(last[1]).encode("ascii"))
        scope = {**scope, "realdoc.docroot": root}
        state = scope.get("state")
        if state is not None:
            state["docroot"] = root
        token = _set(root)
        try:
            await self.app(scope, receive, send)
        finally:
            _reset(token)
            if mark is not None:
                _release(mark)


def _with_header(send: Send, name: bytes, value: bytes) -> Send:
    """``send`` that adds ``(name, value)`` to response-start and websocket-accept messages."""
    async def send_with_header(message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start" or kind == "websocket.accept":
            message = {**message, "headers": [*message.get("headers", ()), (name, value)]}
        await send(message)
    return send_with_header
