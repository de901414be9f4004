"""realdoc's environment variables: boolean switches and middleware options.

One module parses the environment.  :func:`env_flag` reads the boolean switches
(``REALDOC_NO_EXTENSIONS``, ``REALDOC_REQUIRE_EXTENSIONS``, ...) with the
words in :data:`TRUE_WORDS` / :data:`FALSE_WORDS`; the rest of this module
reads the middleware options, checked at construction.

Servers started from a command line (``gunicorn app:application``) often cannot
pass arguments to a middleware, so both middlewares read what the code left
unset (``None``) from these variables:

``REALDOC_DOCROOT``
    The configured (symlinked) docroot, e.g. ``/srv/app/current/public``.
``REALDOC_EVERY``
    Seconds a resolution is reused: a decimal number >= 0 (``2``, ``0.5``,
    ``0``); ``inf`` resolves once per process.  Default 2.
``REALDOC_USE_READLINK``
    ``1``/``true``/``yes``/``on`` (first_link from the root), ``0``/``false``/
    ``no``/``off`` (realpath, the default), or an absolute start path.  Case and
    surrounding blanks are ignored.
``REALDOC_SCOPE``
    ``auto`` (the default), ``request`` or ``process``: whose release the
    docroot follows (see :mod:`realdoc._scope`).  Case and surrounding blanks
    are ignored; another word raises ``ValueError``.
``REALDOC_WATCH``
    ``1``/``true``/``yes``/``on``: watch the docroot's links with inotify
    (``watch=True``, see :class:`realdoc.Resolver`); ``0``/``false``/``no``/
    ``off``: don't (the default).  Any other word is an error.

An empty or unset variable counts as not given.  A value given in code always
wins over the environment.  A bad value raises ``ValueError`` naming the
variable, so a misconfigured server fails when it loads the app, not at its
first request.  Nothing here issues a syscall.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional, Union, cast

from ._policy import DEFAULT_EVERY, OnError
from ._scope import DEFAULT_SCOPE, SCOPES, Scope

__all__ = ["Options", "env_flag", "make_resolver", "options", "parse_every",
           "parse_scope", "parse_use_readlink", "parse_watch"]

ENV_DOCROOT = "REALDOC_DOCROOT"
ENV_EVERY = "REALDOC_EVERY"
ENV_USE_READLINK = "REALDOC_USE_READLINK"
ENV_SCOPE = "REALDOC_SCOPE"
ENV_WATCH = "REALDOC_WATCH"

#: The words that mean on and off, in any case, surrounding blanks ignored.
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
_TRUE = TRUE_WORDS
_FALSE = FALSE_WORDS


def env_flag(name: str) -> bool:
    """True when environment variable ``name`` is 1/true/yes/on (any case).

    Unset, empty, 0/false/no/off mean False.  Any other value warns
    (RuntimeWarning) and counts as False, so a typo never silently flips
    behaviour the "on" way.  No syscall.
    """
    value = os.environ.get(name, "").strip().lower()
    if value in TRUE_WORDS:
        return True
    if value and value not in FALSE_WORDS:
        warnings.warn(f"{name}={os.environ[name]!r} is not a boolean (use 1 or 0); "
                      "treated as 0", RuntimeWarning, stacklevel=2)
    return False

UseReadlink = Union[bool, str]


class Options(NamedTuple):
    """Resolved middleware options, with where each came from (for messages)."""

    docroot: str
    every: Any
    use_readlink: Any
    on_error: str
    sources: Mapping[str, str]
    scope: Any = DEFAULT_SCOPE
    watch: Any = False


def _env(environ: Mapping[str, str], name: str) -> Optional[str]:
    """The stripped value of ``name``, or None when unset or blank."""
    value = environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def parse_every(text: str, name: str = ENV_EVERY) -> float:
    """Parse a refresh interval in seconds; raise ValueError naming ``name``."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(
            f"{name}={text!r} is not a number of seconds (use e.g. 2, 0.5 or 0)"
        ) from None
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name}={text!r}: the number of seconds must be >= 0")
    return value


def parse_use_readlink(text: str, name: str = ENV_USE_READLINK) -> UseReadlink:
    """Parse a use_readlink setting: a boolean word or an absolute start path.

    Returns True, False or the path.  Raises ValueError naming ``name`` for
    anything else (a relative path, an unknown word).
    """
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    path = text.strip()
    if path.startswith("/"):
        return path
    raise ValueError(
        f"{name}={text!r} is neither a boolean (1/0, true/false, yes/no, on/off) "
        "nor an absolute start path"
    )


def parse_scope(text: str, name: str = ENV_SCOPE) -> Scope:
    """Parse a scope word (``auto``, ``request``, ``process``, any case).

    Raises ValueError naming ``name`` for another word.
    """
    word = text.strip().lower()
    for scope in SCOPES:
        if word == scope:
            return scope
    raise ValueError(f"{name}={text!r} is not a scope (use auto, request or process)")
def _setting(env: Mapping[str, str], name: str, parse: Callable[[str], Any], default: Any,
             sources: Dict[str, str], option: str) -> Any:
    """``option`` from variable ``name`` (parsed), else ``default``; notes the source."""
    text = _env(env, name)
    if text is None:
        sources[option] = "default"
        return default
    sources[option] = name
    return parse(text)


def parse_watch(text: str, name: str = ENV_WATCH) -> bool:
    """Parse a watch setting: a boolean word; raise ValueError naming ``name`` otherwise."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{name}={text!r} is not a boolean (1/0, true/false, yes/no, on/off)")


def options(
    docroot: Any,
    every: Any,
    use_readlink: Any,
    on_error: Any,
    environ: Optional[Mapping[str, str]] = None,
    scope: Any = None,
    *,
    watch: Any = None,
) -> Options:
    """Merge code options with ``environ`` (default ``os.environ``).

    ``None`` means "not given in code": the environment variable is used, then
    the built-in default (``every=2.0``, ``use_readlink=False``,
    ``scope="auto"``, ``watch=False``).  A docroot is
    required from one or the other.  The middleware must be given a str (or
    ``os.PathLike[str]``) docroot: WSGI environ and ASGI scope values are str.

    Raises ValueError for a missing docroot or an unparsable variable, and
    TypeError for a bytes docroot.  Values given in code are checked later, by
    :class:`realdoc.Resolver`.
    """
    env = os.environ if environ is None else environ
    sources = {"docroot": "code", "every": "code", "use_readlink": "code", "scope": "code",
               "watch": "code"}
    if docroot is None:
        text = _env(env, ENV_DOCROOT)
        if text is None:
            raise ValueError(
                f"no docroot: pass docroot=... to the middleware or set {ENV_DOCROOT}"
            )
        docroot, sources["docroot"] = text, ENV_DOCROOT
    else:
        docroot = os.fspath(docroot)
        if not isinstance(docroot, str):
            raise TypeError(
                "the middleware needs a str docroot (WSGI environ and ASGI scope "
                f"values are str), not {type(docroot).__name__}"
            )
    if every is None:
        every = _setting(env, ENV_EVERY, parse_every, DEFAULT_EVERY, sources, "every")
    if use_readlink is None:
        use_readlink = _setting(env, ENV_USE_READLINK, parse_use_readlink, False, sources,
                                "use_readlink")
    if scope is None:
        scope = _setting(env, ENV_SCOPE, parse_scope, DEFAULT_SCOPE, sources, "scope")
    if watch is None:
        watch = _setting(env, ENV_WATCH, parse_watch, False, sources, "watch")
    return Options(docroot, every, use_readlink, on_error, sources, scope, watch)


def make_resolver(opts: Options) -> Any:
    """Build the :class:`realdoc.Resolver` for ``opts``; warm it up once.

    Errors from the Resolver's own checks (TypeError, ValueError, and
    RuntimeError for ``scope="process"`` in an unpinned process) are
    re-raised as the same type with the environment variables named when
    values came from there.  The
    warm-up resolution primes the cache so that ``on_error="stale"`` has a
    last good value from the first request on; an OSError there is logged by
    the Resolver and otherwise ignored (requests retry, at most every
    ``min(every, 1)`` seconds, as the Resolver does after any failure).
    """
    try:
        from ._impl import Resolver  # not at import: _impl reads env_flag from here

        resolver = Resolver(opts.docroot, every=opts.every, use_readlink=opts.use_readlink,
                            on_error=cast("OnError", opts.on_error),  # checked by Resolver
                            scope=opts.scope, watch=opts.watch)
    except (TypeError, ValueError, RuntimeError) as exc:
        named = [src for src in opts.sources.values() if src.startswith("REALDOC_")]
        if not named:
            raise
        raise type(exc)(f"{exc} (settings from {', '.join(named)})") from exc
    try:
        resolver()
    except OSError:
        pass
    return resolver
