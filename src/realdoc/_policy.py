"""The Resolver's policy, written once for both cores: options, failures, introspection.

The compiled :class:`realdoc._fastpath.Resolver` and the pure
:class:`realdoc._fastpath_py.Resolver` keep only their hit path, their
resolution and their healthy refresh apart.  Everything else is here:

* :func:`parse_options`: the checks of ``docroot``, ``every``,
  ``use_readlink``, ``on_error`` and ``clock``, and their normal forms;
* the failure policy (:func:`refresh` during a failure episode,
  :func:`failed`, :func:`serve_failure`): ``on_error``, a retry at most every
  ``min(every, 1)`` seconds, one log line when an episode starts and one when
  it ends, and the stored error (a copy without traceback);
* :class:`ResolverViews`: the read-only introspection both classes expose
  (``docroot``, ``every``, ``on_error``, ``mode``, ``start``, ``scope``,
  ``effective_scope``, ``value``, ``age``, ``expires_in``, ``watch``,
  ``watching``, ``events``) and :func:`cache_info_row`.  The scope rules are
  :mod:`realdoc._scope`'s;
* watch mode's part of a refresh (:func:`watch_before`, :func:`fresh_at`,
  :func:`expire`); the watcher itself is ``_watch``.

A relative docroot is made absolute here, once, against the working directory
at construction (:func:`parse_options`): a Resolver never answers for another
directory.

Nothing here issues a syscall.  A Resolver that these functions receive has the
attributes :class:`ResolverState` lists (the compiled class declares them
``readonly``/``public``).
"""

from __future__ import annotations

import errno
import logging
import math
import os
from typing import (
    TYPE_CHECKING,
    Any,
    AnyStr,
    Callable,
    Generic,
    Literal,
    NamedTuple,
    Optional,
    Protocol,
    Tuple,
    TypedDict,
    Union,
)

from . import _common, _scope
from ._scope import Scope

#: ``on_error``'s choices; ``mode``'s values.
OnError = Literal["stale", "raise", "passthrough"]
Mode = Literal["realpath", "first_link"]
#: A path given as str (or a PathLike of str), as bytes (or a PathLike of bytes).
StrPath = Union[str, "os.PathLike[str]"]
BytesPath = Union[bytes, "os.PathLike[bytes]"]
#: ``use_readlink``: False/None (realpath), True (first_link from the root), a start path.
UseReadlink = Union[bool, None, str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

logger = logging.getLogger("realdoc")

#: ``on_error``'s policies.
ON_ERROR_CHOICES: Tuple[OnError, ...] = ("stale", "raise", "passthrough")
#: Seconds a resolution is reused by default.
DEFAULT_EVERY = 2.0
#: A failing docroot is retried at most every ``min(every, RETRY_MAX)`` seconds.
RETRY_MAX = 1.0

#: Resolution modes: realpath(); first_link() from the root; first_link() from ``start``.
MODE_REALPATH = 0
MODE_FIRST_LINK = 1
MODE_FIRST_LINK_START = 2
MODE_NAMES: Tuple[Mode, ...] = ("realpath", "first_link", "first_link")  # Resolver.mode


class CacheInfoRow(TypedDict):
    """One row of ``cache_info()``: a registry entry, as its Resolver reports it."""

    docroot: Union[str, bytes]
    value: Union[str, bytes, None]
    age: Optional[float]
    expires_in: Optional[float]
    mode: Mode
    start: Union[str, bytes, None]
    every: float
    on_error: OnError
    failing: bool
    scope: Scope
    effective_scope: Literal["request", "process"]
    watch: bool
    watching: bool
    events: int


class ResolverState(Protocol):
    """What the policy functions read and write on either core's Resolver."""

    _docroot: Any
    _is_str: bool
    _every: float
    _on_error: OnError
    _value: Any
    _resolved_at: float
    _good_at: float  # when the last good resolution ran (age)
    _failing: Optional[Failing]
    _tally: Tally
    _raw: bytes
    _mode: int
    _trusted: int
    _wgen: int      # bumped by each watch event (expire)
    _watch: Any     # the _watch.Handle of a watch=True Resolver, else None
    _watcher: Any   # the core's _watch.Watcher

    def _now(self) -> float: ...
    def _resolve_now(self) -> bytes: ...




class Options(NamedTuple):
    """A Resolver's checked options, in the forms both cores store."""

    docroot: Union[str, bytes]  # as configured, str or bytes (a PathLike gives its kind)
    raw: bytes                  # the docroot as bytes, made absolute (see absolute_docroot)
    is_str: bool
    every: float
    mode: int                   # MODE_*
    trusted: int                # first_link components taken as real (MODE_FIRST_LINK_START)
    start: Union[str, bytes, None]  # normalised start, in the docroot's kind
    on_error: OnError
    clock: Optional[Callable[[], float]]  # checked: returns a float or raises TypeError
    watch: bool
    cwd: Optional[bytes]        # a relative docroot's base (None: absolute, or cwd_errno)
    cwd_errno: int              # getcwd's errno for a relative docroot (0: none)


def check_watch(watch: object) -> bool:
    """Validate ``watch``: True or False (TypeError for anything else, 1 included)."""
    if watch is True or watch is False:
        return watch
    raise TypeError(f"watch must be True or False, not {type(watch).__name__}")


def absolute_docroot(raw: bytes, getcwd: Callable[[], bytes]
                     ) -> Tuple[bytes, Optional[bytes], int]:
    """``(absolute text, cwd, errno)`` for the docroot ``raw``.

    An absolute ``raw`` is returned as it is (no syscall).  A relative one
    costs one ``getcwd``: its leading ``.`` and ``..`` components are applied
    to the working directory lexically (exact, since getcwd's answer holds no
    link: glibc's realpath does the same) and the rest is appended as text,
    trailing slashes kept.  When getcwd fails (a deleted working directory),
    the errno is returned with ``raw`` unchanged: such a Resolver fails every
    resolution with that errno (as realpath would) and never resolves
    against a later working directory.
    """
    if raw[:1] == b"/":
        return raw, None, 0
    try:
        cwd = getcwd()
    except OSError as e:
        return raw, None, e.errno or errno.ENOENT
    base = _common.components(cwd)
    parts = raw.split(b"/")
    i = 0
    while i < len(parts) and parts[i] in (b"", b".", b".."):
        if parts[i] == b".." and base:
            base.pop()
        i += 1
    head = b"/" + b"/".join(base)
    tail = b"/".join(parts[i:])
    if not tail:
        return head, cwd, 0
    return (head + b"/" + tail if head != b"/" else b"/" + tail), cwd, 0


def check_every(every: object) -> float:
    """Validate a refresh interval in seconds; return it as float.

    int or float (bool refused), >= 0, not NaN; an int beyond float range is
    infinite (never refresh).  TypeError / ValueError otherwise.
    """
    if isinstance(every, bool) or not isinstance(every, (int, float)):
        raise TypeError(f"every must be a number of seconds, not {type(every).__name__}")
    try:
        value = float(every)
    except OverflowError:  # an int beyond float range: never refresh
        value = math.inf if every > 0 else -math.inf
    if math.isnan(value) or value < 0:
        raise ValueError(f"every must be a number of seconds >= 0, got {every!r}")
    return value


def check_on_error(on_error: object) -> OnError:
    """Validate the on_error policy name; return it as one of ``ON_ERROR_CHOICES``."""
    if isinstance(on_error, str) and on_error in ON_ERROR_CHOICES:
        return ON_ERROR_CHOICES[ON_ERROR_CHOICES.index(on_error)]
    raise ValueError(
        f"on_error must be one of {', '.join(map(repr, ON_ERROR_CHOICES))}, got {on_error!r}"
    )


def check_use_readlink(docroot_raw: bytes, use_readlink: object) -> Tuple[int, Optional[bytes]]:
    """Validate use_readlink; return ``(MODE_*, start as bytes or None)``.

    False or None: realpath(); True: first_link() from the root; an absolute
    path (str, bytes, os.PathLike) that is a component-wise prefix of the
    docroot: first_link() from there.  TypeError / ValueError otherwise.
    """
    if use_readlink is False or use_readlink is None:
        return MODE_REALPATH, None
    if use_readlink is True:
        return MODE_FIRST_LINK, None
    if isinstance(use_readlink, (str, bytes)) or hasattr(use_readlink, "__fspath__"):
        _common.parse_start(docroot_raw, use_readlink)
        sraw, _ = _common.to_bytes(use_readlink, "use_readlink")
        return MODE_FIRST_LINK_START, sraw
    raise TypeError(
        "use_readlink must be False, True or an absolute start path, "
        f"not {type(use_readlink).__name__}"
    )


def clock_seconds(value: object) -> float:
    """A test clock's reading as float: an int or float (bool refused), not NaN.

    Anything else raises TypeError (a clock returning ``"1.5"`` is a bug in
    the test, not a time), NaN raises ValueError; both cores do the same.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"clock() must return a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if math.isnan(seconds):
        raise ValueError("clock() returned nan")
    return seconds


def check_clock(clock: object) -> Optional[Callable[[], float]]:
    """Validate the optional test clock; return a callable that checks each reading."""
    if clock is None:
        return None
    if not callable(clock):
        raise TypeError("clock must be a callable returning seconds, or None")

    def checked() -> float:
        return clock_seconds(clock())

    return checked


def parse_options(docroot: object, every: object, use_readlink: object, on_error: object,
                  clock: object, watch: object = False,
                  getcwd: Callable[[], bytes] = os.getcwdb) -> Options:
    """Check a Resolver's arguments; return their stored forms.

    Errors (checked in this order): docroot not str/bytes/os.PathLike
    (TypeError), with a NUL byte or empty (ValueError); ``every``, see
    :func:`check_every`; ``use_readlink``, see :func:`check_use_readlink`, and
    ValueError for a relative docroot with it; ``on_error`` not one of
    ``ON_ERROR_CHOICES`` (ValueError); ``clock`` not callable (TypeError);
    ``watch`` not a bool (TypeError).  A relative docroot then costs one
    ``getcwd`` (the core's, counted): see :func:`absolute_docroot`.
    """
    raw, is_str = _common.to_bytes(docroot, "docroot")
    if not raw:
        raise ValueError("docroot must not be empty")
    every_s = check_every(every)
    mode, start_raw = check_use_readlink(raw, use_readlink)
    if mode != MODE_REALPATH and raw[:1] != b"/":
        raise ValueError("use_readlink needs an absolute docroot")
    trusted = 0
    start: Union[str, bytes, None] = None
    if start_raw is not None:
        trusted = _common.parse_start(raw, start_raw)
        start = _common.from_bytes(b"/" + b"/".join(_common.components(start_raw)), is_str)
    checked_on_error = check_on_error(on_error)
    checked_clock = check_clock(clock)
    checked_watch = check_watch(watch)
    absolute, cwd, cwd_errno = absolute_docroot(raw, getcwd)
    return Options(_common.from_bytes(raw, is_str), absolute, is_str, every_s, mode, trusted,
                   start, checked_on_error, checked_clock, checked_watch, cwd, cwd_errno)


# ------------------------------------------------------------------- failures

class Tally:
    """Per-core counters of resolutions and failures (``stats()``; hits are the core's)."""

    __slots__ = ("errors", "misses", "stale_served")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Zero every counter (at start and in a forked child)."""
        self.misses = 0
        self.errors = 0
        self.stale_served = 0


class Failing:
    """A Resolver's failure episode: from a failed resolution to the next good one.

    ``error`` is a copy of the last error without its traceback: a traceback's
    frames would reference the Resolver, a reference cycle that only the
    cyclic garbage collector frees.  ``attempts`` counts failed resolutions;
    ``retry_at`` is when the next one may run.
    """

    __slots__ = ("attempts", "error", "retry_at")

    def __init__(self) -> None:
        self.error: OSError = OSError(errno.EIO, os.strerror(errno.EIO))
        self.attempts = 0
        self.retry_at = -math.inf


def copy_error(exc: OSError) -> OSError:
    """A fresh OSError equal to ``exc``: same subclass, errno, strerror and filename,
    no traceback and no context (re-raising one object grows its traceback)."""
    if exc.filename is not None:
        return OSError(exc.errno, exc.strerror, exc.filename)
    return OSError(exc.errno, exc.strerror)


def refresh(r: ResolverState, now: float) -> Any:
    """One refresh of ``r`` at ``now``: the pure core's, and the compiled core's in an episode.

    During an episode and before ``retry_at``, no resolution runs: the
    failure is served again.  Otherwise ``r._resolve_now()`` runs (a miss);
    an OSError goes to :func:`failed`, success ends the episode.
    """
    episode = r._failing
    if episode is not None and now < episode.retry_at:
        return serve_failure(r, episode)
    r._tally.misses += 1
    seen = watch_before(r)
    try:
        raw = r._resolve_now()
    except OSError as e:
        return failed(r, e, now, seen)
    value = _common.from_bytes(raw, r._is_str)
    if episode is not None:
        logger.warning("realdoc: %r resolves again, to %r, after %d failed attempt(s)",
                       r._docroot, value, episode.attempts)
        r._failing = None
    r._value = value
    r._resolved_at = fresh_at(r, now, seen)
    r._good_at = now
    return value


def watch_before(r: ResolverState) -> int:
    """Before a resolution of ``r``: for ``watch=True``, walk and watch its links
    (``_watch.Watcher.track``).  Returns ``r._wgen`` for :func:`fresh_at`."""
    h = r._watch
    if h is not None:
        r._watcher.track(h, r._raw, r._mode != MODE_REALPATH, r._trusted)
    return r._wgen


def fresh_at(r: ResolverState, now: float, seen: int) -> float:
    """The resolution time to store: ``now``, or minus infinity when a watch event
    came while resolving (the value may predate it: the next call resolves again)."""
    return now if r._wgen == seen else -math.inf


def expire(r: Any) -> None:
    """A watch event concerns ``r``: its next call resolves (a failing one retries).

    Called by the watcher's reader thread with the GIL held; the hit path is
    unchanged (the resolution time becomes minus infinity).  A Resolver in
    process scope (resolution time plus infinity: pinned for good) is left
    alone."""
    if r._resolved_at == math.inf:
        return
    r._wgen += 1
    r._resolved_at = -math.inf
    episode = r._failing
    if episode is not None:
        episode.retry_at = -math.inf


def failed(r: ResolverState, exc: OSError, now: float, seen: Optional[int] = None) -> Any:
    """Record that resolving ``r`` at ``now`` raised ``exc``; answer as ``on_error`` says.

    The first failure of an episode logs one warning (what is served until
    it recovers); later ones only count (``stats()["errors"]``).  ``seen``:
    ``r._wgen`` before the resolution; when a watch event came meanwhile (the
    link that was missing may be back), the next call retries at once.
    """
    r._tally.errors += 1
    error = copy_error(exc)  # also what the log record holds: no traceback, no cycle
    episode = r._failing
    if episode is None:
        episode = r._failing = Failing()
        if r._on_error == "stale" and r._value is not None:
            action = "serving the last good value"
        elif r._on_error == "passthrough":
            action = "serving the configured docroot unresolved"
        else:
            action = "raising"
        logger.warning("realdoc: cannot resolve %r: %s; %s until it recovers",
                       r._docroot, error, action)
    episode.attempts += 1
    episode.error = error
    if seen is None or r._wgen == seen:
        episode.retry_at = now + min(r._every, RETRY_MAX)
    else:
        episode.retry_at = -math.inf
    return serve_failure(r, episode)


def serve_failure(r: ResolverState, episode: Failing) -> Any:
    """What ``r`` answers during ``episode``: ``stale``: the last good value if
    there is one (counted in ``stats()["stale_served"]``); ``passthrough``: the
    docroot as configured; otherwise a copy of the episode's error is raised."""
    if r._on_error == "stale":
        if r._value is not None:
            r._tally.stale_served += 1
            return r._value
    elif r._on_error == "passthrough":
        return r._docroot
    raise copy_error(episode.error)


# -------------------------------------------------------------- introspection

class ResolverViews(Generic[AnyStr]):
    """Read-only views of a Resolver, shared by both cores.

    The pure Resolver inherits them; the compiled one (which cannot inherit
    from a Python class) takes the same property objects as class attributes.
    """

    __slots__ = ()

    if TYPE_CHECKING:
        _docroot: AnyStr
        _every: float
        _on_error: OnError
        _mode: int
        _start: Optional[AnyStr]
        _value: Optional[AnyStr]
        _resolved_at: float
        _good_at: float
        _failing: Optional[Failing]
        _tick: float  # resolve()'s last use of this entry (the registry's LRU order)
        _watch: Any
        _cwd: Optional[bytes]  # a relative docroot's base
        _scope: Scope

        def _now(self) -> float: ...

    @property
    def docroot(self) -> AnyStr:
        """The docroot as configured (str, or bytes; an os.PathLike gives its kind)."""
        return self._docroot

    @property
    def every(self) -> float:
        """Seconds a resolution is reused."""
        return self._every

    @property
    def on_error(self) -> OnError:
        """The failure policy: ``"stale"``, ``"raise"`` or ``"passthrough"``."""
        return self._on_error

    @property
    def mode(self) -> Mode:
        """``"realpath"``, or ``"first_link"`` (``use_readlink`` given)."""
        return MODE_NAMES[self._mode]

    @property
    def start(self) -> Optional[AnyStr]:
        """``use_readlink``'s start path, normalised (``"/"`` for ``"/"``), or None."""
        return self._start

    @property
    def scope(self) -> Scope:
        """The scope as configured: ``"auto"``, ``"request"`` or ``"process"``."""
        return self._scope

    @property
    def effective_scope(self) -> Literal["request", "process"]:
        """The scope in force: ``"process"`` once the value is the process's release."""
        return _scope.effective(self)

    @property
    def value(self) -> Optional[AnyStr]:
        """The last good resolution, or None."""
        return self._value

    @property
    def age(self) -> Optional[float]:
        """Seconds since the last good resolution (by the Resolver's clock), or None."""
        if self._value is None:
            return None
        if self._resolved_at == math.inf:  # process scope: pinned, never resolved
            return 0.0
        return max(self._now() - self._good_at, 0.0)

    @property
    def expires_in(self) -> Optional[float]:
        """Seconds until the next call resolves again (0 when due), or None."""
        if self._value is None:
            return None
        return max(self._every - (self._now() - self._resolved_at), 0.0)

    @property
    def watch(self) -> bool:
        """``watch`` as configured: inotify tells this Resolver when a link changes."""
        return self._watch is not None

    @property
    def watching(self) -> bool:
        """True while inotify watches every link this Resolver's last resolution met
        (False without ``watch``, before the first resolution, and after a fallback)."""
        h = self._watch
        return h is not None and bool(h.watching)

    @property
    def events(self) -> int:
        """Watch events that made this Resolver resolve again (0 without ``watch``)."""
        h = self._watch
        return 0 if h is None else int(h.events)


def describe(r: ResolverViews[Any]) -> str:
    """``repr()`` of a Resolver of either core."""
    return (f"Resolver({r.docroot!r}, every={r.every!r}, mode={r.mode!r}, "
            f"scope={r.scope!r}, effective_scope={r.effective_scope!r}, value={r.value!r})")


def cache_info_row(r: ResolverViews[Any]) -> CacheInfoRow:
    """``cache_info()``'s row for ``r`` (``failing``: in a failure episode; ``watch``,
    ``watching``, ``events``: as the Resolver's properties)."""
    return {
        "docroot": r.docroot, "value": r.value, "age": r.age,
        "expires_in": r.expires_in, "mode": r.mode, "start": r.start,
        "every": r.every, "on_error": r.on_error, "failing": r._failing is not None,
        "scope": r.scope, "effective_scope": r.effective_scope,
        "watch": r.watch, "watching": r.watching, "events": r.events,
    }
