"""WSGI middleware: resolve the docroot once per request and pin it for the request.

::

    from realdoc.wsgi import RealdocMiddleware
    application = RealdocMiddleware(application, "/srv/app/current/public")

The wrapped app finds the real docroot (e.g. ``/srv/app/releases/42/public``)
in ``environ["DOCUMENT_ROOT"]`` (see ``environ_key``), in
``environ["realdoc.docroot"]`` and through :func:`realdoc.docroot`.  Every file
it opens from that value belongs to one release, even if ``current`` flips
while the request runs.

uWSGI
-----
``environ["wsgi.file_wrapper"]`` keeps uWSGI's sendfile path behind the middleware
(uWSGI's wrapper is a builtin that returns the file itself; see
:class:`RealdocMiddleware`).  Tested with pyuwsgi 2.0.30.

**Fork hooks.**  realdoc resets its per-process state in the child of a fork
(syscall counters, locks, refresh state) with ``os.register_at_fork``.  uWSGI
loads the app in the master and forks its workers in C, where Python's fork hooks
run only with ``--py-call-osafterfork``; without it each worker starts with the
master's counters and refresh state (a lock held by a master thread at fork time
would stay held).  So run uWSGI with one of::

    uwsgi --master --py-call-osafterfork ...   # fork hooks run in every worker
    uwsgi --master --lazy-apps ...             # the app is loaded in each worker

Both are tested against real pyuwsgi (tests/test_wsgi.py), as is the default,
where the reset does not happen.  realdoc does not detect the pid change itself.
On Python 3.13, uWSGI 2.0.30 aborts every worker started with
``--py-call-osafterfork`` ("Fatal Python error: _PyRecursiveMutex_Unlock"), with
or without realdoc: use ``--lazy-apps`` there.
"""

from __future__ import annotations

from contextvars import Context, copy_context as _copy_context
from itertools import repeat
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, Sized, Tuple, cast

from . import _inuse
from ._config import make_resolver, options
from ._context import DOCROOT
from ._release import header_option, header_value, release_name, remember

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["RealdocMiddleware"]

_set = DOCROOT.set
_reset = DOCROOT.reset
_pin = _inuse.pin
_release = _inuse.release


class RealdocMiddleware:
    """Wrap a WSGI app so each request sees one pinned real docroot.

    ``docroot`` is the configured, symlinked path (str or ``os.PathLike[str]``);
    ``every``, ``use_readlink`` and ``on_error`` are those of
    :class:`realdoc.Resolver` (defaults ``2.0``, ``False``, ``"stale"``).
    ``scope`` is the Resolver's too (``"auto"``, the default, follows the
    process's release when :func:`realdoc.pin_process` pinned the process and
    the docroot lies under its ``app_dir``; see :mod:`realdoc._scope`).
    ``docroot``, ``every``, ``use_readlink`` and ``scope`` left as ``None`` are
    read from ``REALDOC_DOCROOT``, ``REALDOC_EVERY``, ``REALDOC_USE_READLINK``
    and ``REALDOC_SCOPE`` (see :mod:`realdoc._config` for the syntax), then
    fall back to the defaults.
    ``watch`` is the Resolver's too (``True``: inotify tells it when a link
    changes, so the first request after a flip is served from the new
    release); left as ``None`` it is read from ``REALDOC_WATCH``.

    Construction checks everything and raises TypeError or ValueError (naming
    the environment variable when the value came from one), and RuntimeError
    for ``scope="process"`` in a process that is not pinned.  It also resolves
    once, so that ``on_error="stale"`` has a last good value from the first
    request on; an OSError there is logged by the Resolver, not raised.

    Per request the middleware calls its one :class:`realdoc.Resolver` once (no
    syscall on a cache hit) and stores the result, a str, under
    ``environ[environ_key]`` and ``environ["realdoc.docroot"]``.  It sets
    :func:`realdoc.docroot` while the app runs and resets it when the app
    returns; a streaming response iterable is iterated and closed in a copy of
    the request's context, so the value holds there too.  ``close()`` of the
    app's iterable is always passed through, and so is ``len()`` when the body
    has one.  The server's ``wsgi.file_wrapper`` result is returned untouched
    (so its sendfile path is kept): when the wrapper is a class (gunicorn,
    wsgiref) any instance of it; when it is a function (uWSGI's builtin, which
    returns the file object itself), the object it returned for this request,
    for which ``environ["wsgi.file_wrapper"]`` is replaced, for that request,
    by a recorder that calls the server's and remembers its result.  An OSError from the Resolver
    (only with ``on_error="raise"``, or ``"stale"`` before any success)
    propagates to the server before the app is called.

    **In-use mark.**  While a request runs, its release is marked in use
    (:mod:`realdoc._inuse`): ``realdoc status`` shows this process on it and
    ``realdoc prune`` keeps it, also while no file of it is open.  The mark is
    taken after the resolution and dropped when the app returns a list, tuple or
    the server's file wrapper (a file opened under the pin stays readable even if
    its release is deleted later), or, for a streaming body, when the server
    calls its ``close()``, or when the app raises.  A release pruned between the
    resolution and the mark is resolved again (``Resolver.refresh()``).  No
    syscall when this process already marks the release; a change of release
    costs 5.  With ``every > 0`` the mark of the release served last is kept after
    its last request ends, until a request runs on another release (so cache hits
    cost no syscall); with ``every=0`` it is dropped when the last request on it
    ends (see :mod:`realdoc._inuse`).

    ``header`` (opt-in) names a response header, e.g. ``"X-Release"``, added to
    every response with the name of the release that served the request (see
    :mod:`realdoc._release` for the name and the ``REALDOC_HEADER`` fall-back;
    ``""`` turns it off).  It is appended to the headers the app passes to
    ``start_response`` (each call, so an error response has it too).
    """

    __slots__ = ("app", "resolver", "environ_key", "_depth", "_configured", "_keeper",
                 "header", "_last")

    def __init__(
        self,
        app: WSGIApplication,
        docroot: Any = None,
        *,
        every: Optional[float] = None,
        use_readlink: Any = None,
        on_error: str = "stale",
        scope: Optional[str] = None,
        watch: Optional[bool] = None,
        environ_key: str = "DOCUMENT_ROOT",
        header: Optional[str] = None,
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be a WSGI callable, not {type(app).__name__}")
        if not isinstance(environ_key, str) or not environ_key:
            raise TypeError("environ_key must be a non-empty str")
        self.app = app
        self.environ_key = environ_key
        #: The response header naming the release, or None (see ``header``).
        self.header: Optional[str] = header_option(header)
        # (resolved docroot, its release name), one attribute so threads never
        # see a name with another root
        self._last: Tuple[Optional[str], str] = (None, "")
        #: The :class:`realdoc.Resolver` behind this middleware (for introspection).
        self.resolver: Any = make_resolver(options(
            docroot, every, use_readlink, on_error, scope=scope, watch=watch))
        self._configured: str = self.resolver.docroot
        self._depth = _inuse.layout_depth(self._configured)
        self._keeper = _inuse.Keeper() if self.resolver.every > 0 else None

    def __repr__(self) -> str:
        return f"<realdoc.wsgi.RealdocMiddleware {self.resolver!r} app={self.app!r}>"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        root, mark = _pin(self.resolver, self._depth, self._configured, self._keeper)
        environ[self.environ_key] = root
        environ["realdoc.docroot"] = root
        last = self._last
        if last[0] is not root:  # a new resolution: name its release once
            last = self._last = (root, release_name(self._configured, root))
            remember(root, last[1])
        if self.header is not None:
            start_response = _with_header(start_response, self.header, header_value(last[1]))
        wrapper = environ.get("wsgi.file_wrapper")
        recorder: Optional[_FileWrapperRecorder] = None
        if wrapper is not None and not isinstance(wrapper, type):
            # uWSGI's wrapper is a builtin that returns the file object itself and
            # sends it with sendfile only if the app returns that very object:
            # remember what it returned for this request.
            recorder = _FileWrapperRecorder(wrapper)
            environ["wsgi.file_wrapper"] = recorder
        token = _set(root)
        try:
            try:
                result = self.app(environ, start_response)
            except BaseException:
                if mark is not None:
                    _release(mark)
                raise
            cls = type(result)
            if cls is list or cls is tuple:
                # A materialised body: no app code runs while the server iterates it.
                if mark is not None:
                    _release(mark)
                return result
            if recorder is None:  # a class wrapper (gunicorn, wsgiref): any instance
                servers_own = wrapper is not None and isinstance(result, wrapper)
            else:  # a function wrapper (uWSGI): the very object it returned
                servers_own = recorder.returned is not _NOTHING and result is recorder.returned
            if servers_own:
                # Keep the server's sendfile path; the file was opened under the pin.
                if mark is not None:
                    _release(mark)
                return result
            # A streaming body runs app code during iteration: take the request's
            # context (the pin included) along with it, and the mark until close().
            if hasattr(cls, "__len__"):
                return _PinnedSizedIterable(result, _copy_context(), mark)
            return _PinnedIterable(result, _copy_context(), mark)
        finally:
            _reset(token)


_NOTHING: Any = object()


def _with_header(start_response: StartResponse, name: str, value: str) -> StartResponse:
    """``start_response`` that appends ``(name, value)`` to the headers it is given."""
    def start(status: str, headers: Any, exc_info: Any = None) -> Any:
        return start_response(status, [*headers, (name, value)], exc_info)
    return cast("StartResponse", start)


class _FileWrapperRecorder:
    """A server's non-class ``wsgi.file_wrapper``, remembering what it returned.

    Calls the server's wrapper with the same arguments and returns its result
    unchanged; ``returned`` is the last such result (``_NOTHING`` before a call),
    so the middleware can hand the server back its very object.
    """

    __slots__ = ("wrapper", "returned")

    def __init__(self, wrapper: Callable[..., Any]) -> None:
        self.wrapper = wrapper
        self.returned: Any = _NOTHING

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self.wrapper(*args, **kwargs)
        self.returned = result
        return result


class _PinnedIterable:
    """The app's response iterable, iterated and closed in the request's context.

    A streaming body (a generator, say) runs its code during iteration, after
    the app call returned, so each step runs inside a copy of the context the
    app was called in (where :func:`realdoc.docroot` is set): ``iter()``,
    every ``next()`` and ``close()`` go through ``Context.run``, in C, with
    no per-chunk Python frame.  The server's own context is never changed, so
    it is correct whichever thread iterates.  The iterator returned by
    ``__iter__`` is a ``map`` object; ``close()`` is the app iterable's own,
    passed through.  A body with ``__len__`` is wrapped by the subclass
    :class:`_PinnedSizedIterable`, so servers that look at ``len(result)``
    (wsgiref sets Content-Length for a one-chunk body) still see it.
    """

    __slots__ = ("_result", "_run", "_mark")

    def __init__(
        self, result: Iterable[bytes], ctx: Context, mark: Optional[_inuse.Mark] = None
    ) -> None:
        self._result = result
        self._run = ctx.run
        self._mark = mark

    def __iter__(self) -> Iterator[bytes]:
        run = self._run
        step: Callable[[], bytes] = run(iter, self._result).__next__
        return map(run, repeat(step))

    def close(self) -> None:
        """Call the app iterable's ``close()``, if it has one, in the request's context.

        Then drop the request's in-use mark (once, even if ``close()`` raises).
        """
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                self._run(close)
        finally:
            mark, self._mark = self._mark, None
            if mark is not None:
                _release(mark)


class _PinnedSizedIterable(_PinnedIterable):
    """A :class:`_PinnedIterable` whose body has ``__len__``: ``len()`` is passed through.

    ``len(self)`` is ``len()`` of the app's body, computed in the request's context.
    """

    __slots__ = ()

    def __len__(self) -> int:
        n: int = self._run(len, cast(Sized, self._result))
        return n
