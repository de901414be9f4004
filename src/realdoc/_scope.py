"""A Resolver's scope: whose release a docroot follows, written once for both cores.

``scope`` is one of :data:`SCOPES`:

``"request"``
    mod_realdoc's rule: each call returns the release that the docroot names
    when it is resolved (at most every ``every`` seconds).  Right for content
    deployed apart from the code.
``"process"``
    The docroot follows the process's code: in a process pinned by
    :func:`realdoc.pin_process`, a docroot equal to or under the pinned
    ``app_dir`` maps, lexically (``abspath``, component-wise; symlinks below
    ``app_dir`` are not followed), to the same path under the process's
    release.  It is mapped once, when the Resolver is made, without a syscall;
    every call returns it (a hit, counted in ``stats()["hits"]``), ``refresh()``
    returns it too, and nothing ever resolves it again.  Errors, at
    construction (so ``resolve(..., scope="process")`` raises them on every
    call): ``RuntimeError`` in a process that is not pinned (call
    ``pin_process`` first, at the top of the entry module), ``ValueError``
    for a docroot that does not lie under the pinned ``app_dir``.  There is no
    fallback to ``"request"``.
``"auto"`` (the default)
    ``"process"`` when the process is pinned and the docroot lies under its
    ``app_dir``, ``"request"`` otherwise.  It is decided when the Resolver is
    made, and again when :func:`realdoc.pin_process` pins the process: a
    Resolver made before the pin (and possibly used) switches to the release
    at the pin, so its next call returns the process's release.  A pin lasts
    the process's life, so the decision never changes after that.

``Resolver.scope`` is the scope as configured; ``Resolver.effective_scope``
is the one in force (``"process"`` or ``"request"``).  In process scope
``expires_in`` is ``inf`` and ``age`` is ``0.0``.  The hit path is the
request scope's: a process-scoped Resolver is one whose last resolution
never expires (``_resolved_at`` is ``+inf``).

Call :func:`realdoc.pin_process` before threads serve requests: a refresh
that is in flight in another thread while the pin is taken may store its
request-scope result after the switch, and that Resolver then stays in
request scope.
"""

from __future__ import annotations

import math
import os
import weakref
from typing import Any, Literal, Tuple

__all__ = ["DEFAULT_SCOPE", "SCOPES", "Scope", "check_scope", "settle", "on_pin"]

Scope = Literal["auto", "request", "process"]
#: ``scope``'s choices, and the default.
SCOPES: Tuple[Scope, ...] = ("auto", "request", "process")
DEFAULT_SCOPE: Scope = "auto"

#: Resolvers in auto scope made before the process was pinned: decided again at the pin.
_waiting: "weakref.WeakSet[Any]" = weakref.WeakSet()


def check_scope(scope: object) -> Scope:
    """Validate a scope name; return it as one of :data:`SCOPES`.

    TypeError when it is not a str, ValueError for another word.
    """
    if not isinstance(scope, str):
        raise TypeError(f"scope must be a str ('auto', 'request' or 'process'), "
                        f"not {type(scope).__name__}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(map(repr, SCOPES))}, got {scope!r}")
    return SCOPES[SCOPES.index(scope)]


def _mapped(r: Any) -> Any:
    """``r``'s docroot under the pinned release, in the docroot's kind, or None."""
    from ._process import map_path

    docroot = r._docroot
    if r._is_str:
        return map_path(docroot)
    text = map_path(os.fsdecode(docroot))
    return None if text is None else os.fsencode(text)


def _pin_to_release(r: Any, value: Any) -> None:
    r._value = value
    r._failing = None
    r._resolved_at = math.inf  # never expires: every call is a hit


def settle(r: Any, scope: Scope) -> None:
    """Apply ``scope`` to a Resolver at the end of its construction (no syscall).

    ``"process"`` and ``"auto"`` in a pinned process with the docroot under
    ``app_dir``: the mapped path becomes the value, for good.  ``"auto"``
    in an unpinned process: remembered (weakly) for :func:`on_pin`.  Raises
    RuntimeError / ValueError for ``"process"`` as the module says.
    """
    if scope == "request":
        return
    from ._process import pinned

    pin = pinned()
    if pin is None:
        if scope == "process":
            raise RuntimeError(
                f"scope='process' for {r._docroot!r}, but this process is not pinned: "
                "call realdoc.pin_process(app_dir) first (at the top of the entry "
                "module), or use scope='request'")
        _waiting.add(r)
        return
    value = _mapped(r)
    if value is None:
        if scope == "process":
            raise ValueError(
                f"scope='process': docroot {r._docroot!r} is not under the pinned "
                f"app_dir {pin.app_dir!r}; use scope='request' (or 'auto') for content "
                "deployed apart from the code")
        return
    _pin_to_release(r, value)


def on_pin() -> None:
    """:func:`realdoc.pin_process` has just pinned the process: decide the waiting Resolvers."""
    for r in list(_waiting):
        if r._scope != "auto":  # initialised again since, with another scope
            continue
        value = _mapped(r)
        if value is not None:
            _pin_to_release(r, value)
    _waiting.clear()


def effective(r: Any) -> Literal["request", "process"]:
    """The scope in force for ``r``: ``"process"`` once its value is the release's."""
    return "process" if r._resolved_at == math.inf else "request"
