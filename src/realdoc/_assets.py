"""Hashed assets across releases: the old release's bytes for the old release's page.

A page rendered by release r1 links hashed asset names (``app.3f2a1b4c5d6e.css``)
that only r1 has.  The browser's next request, for the asset, may reach a
worker that has already rolled over to r2.  :func:`find_asset` looks the name
up in the process's own release first and, for a *hashed* name only, then in
the same directory of the other releases still on disk.  A hashed name is unique
to its content, so any release that has it has the very bytes the page meant.
Unhashed names (``app.css``) are looked up in the process's release only: their
content differs between releases.

*Hashed* means the file name has a dot-separated part of 8 to 64 lowercase hex
digits before its extension (or at its end): Django's
``ManifestStaticFilesStorage`` names (12 hex digits), and the names
:func:`hash_assets` writes.

The other releases are the entries of the directory holding the process's
release (``/srv/app/releases``), directories only (symlinks and names starting
with ``.``, such as ``realdoc prune``'s ``.NAME.realdoc-prune-PID`` being
removed, are skipped), in descending name order; the first that has the file
wins.  So ``realdoc prune`` decides how far back pages keep their assets: it
never removes the current or previous release or one a live worker is pinned
to, and ``--keep N`` keeps the N newest; a page rendered by a pruned release
can no longer get its hashed assets (404).

The framework adapters (:mod:`realdoc.contrib.flask`,
:mod:`realdoc.contrib.starlette`, :mod:`realdoc.contrib.django`) call these.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from typing import Dict, Iterator, Optional

from ._process import pinned

__all__ = ["Manifest", "find_asset", "find_in_other_releases", "hash_assets", "is_hashed"]

_HASHED = re.compile(r"\.[0-9a-f]{8,64}(\.[^./]+)?\Z")
MANIFEST = "staticfiles.json"


def is_hashed(relpath: str) -> bool:
    """The last component of ``relpath`` carries a content hash (see module docs)."""
    return _HASHED.search(relpath.rsplit("/", 1)[-1]) is not None


def _clean(relpath: str) -> Optional[str]:
    """``relpath`` when it is a plain relative path (no ``..``, ``.``, empty part, NUL)."""
    if not isinstance(relpath, str) or not relpath or "\0" in relpath:
        return None
    parts = relpath.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return relpath


def _regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _other_releases(release: str) -> Iterator[str]:
    parent, own = os.path.split(release)
    try:
        entries = [e for e in os.scandir(parent)
                   if e.name != own and not e.name.startswith(".")
                   and e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for entry in sorted(entries, key=lambda e: e.name, reverse=True):
        yield entry.path


def find_in_other_releases(directory: str, relpath: str) -> Optional[str]:
    """``relpath`` under ``directory``'s twin in another release, for a hashed name.

    ``directory`` must lie under the process's release (:func:`realdoc.pin_process`);
    otherwise, or when ``relpath`` is not hashed or not a plain relative path, or no
    other release has it as a regular file, returns ``None``.  Syscalls: one
    ``scandir`` of the releases directory and one ``stat`` per other release
    tried (only called on a miss).
    """
    pin = pinned()
    rel = _clean(relpath)
    if pin is None or rel is None or not is_hashed(rel):
        return None
    directory = os.path.abspath(directory)
    release = pin.release
    if directory != release and not directory.startswith(release + "/"):
        return None
    sub = directory[len(release):]
    for other in _other_releases(release):
        candidate = f"{other}{sub}/{rel}"
        if _regular(candidate):
            return candidate
    return None


def find_asset(directory: str, relpath: str) -> Optional[str]:
    """The file to serve for ``relpath`` under ``directory``, or ``None`` (a 404).

    ``directory`` itself first (a regular file there wins), then, for a hashed
    name, :func:`find_in_other_releases`.  A ``relpath`` with ``..``, ``.``,
    empty components or NUL is never found.  Syscalls: one ``stat``, and those
    of :func:`find_in_other_releases` on a miss.
    """
    rel = _clean(relpath)
    if rel is None:
        return None
    own = os.path.join(directory, rel)
    if _regular(own):
        return own
    return find_in_other_releases(directory, rel)


def hash_assets(static_dir: str) -> Dict[str, str]:
    """Write a hashed copy of every unhashed file under ``static_dir``; return the map.

    For each regular file ``css/app.css`` (not itself hashed) writes
    ``css/app.<12 hex of its MD5>.css`` next to it, and ``staticfiles.json`` in
    ``static_dir`` in the format of Django's manifest (``{"paths": {"css/app.css":
    "css/app.3f2a1b4c5d6e.css"}, "version": "1.1"}``).  Run it at build time, in
    the new release, before the flip.  Returns the ``paths`` map.  OSError as
    the file operations raise them.
    """
    paths: Dict[str, str] = {}
    for root, dirs, files in os.walk(static_dir):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, static_dir).replace(os.sep, "/")
            if rel == MANIFEST or is_hashed(rel) or os.path.islink(full):
                continue
            with open(full, "rb") as f:
                data = f.read()
            digest = hashlib.md5(data, usedforsecurity=False).hexdigest()[:12]
            stem, dot, ext = name.rpartition(".")
            hashed = f"{stem}.{digest}.{ext}" if dot and stem else f"{name}.{digest}"
            with open(os.path.join(root, hashed), "wb") as f:
                f.write(data)
            paths[rel] = rel.rsplit("/", 1)[0] + "/" + hashed if "/" in rel else hashed
    with open(os.path.join(static_dir, MANIFEST), "w", encoding="utf-8") as f:
        json.dump({"paths": paths, "version": "1.1"}, f, indent=1, sort_keys=True)
    return paths


class Manifest:
    """The hashed name of an asset, from ``staticfiles.json`` in ``static_dir``.

    Read once, at construction (FileNotFoundError when the manifest is missing,
    ValueError when it is not a manifest).  ``manifest("css/app.css")`` returns
    ``"css/app.3f2a1b4c5d6e.css"``; a name not in it raises ValueError naming it
    (as Django's ``ManifestStaticFilesStorage`` does), so a page never links an
    asset its release lacks.  Build ``static_dir`` from the process's release
    (a pinned app's ``root_path``), so the names are that release's.
    """

    def __init__(self, static_dir: str) -> None:
        path = os.path.join(static_dir, MANIFEST)
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        paths = data.get("paths") if isinstance(data, dict) else None
        if not isinstance(paths, dict):
            raise ValueError(f"{path} is not a staticfiles manifest (no 'paths' map)")
        self.paths: Dict[str, str] = paths

    def __call__(self, name: str) -> str:
        try:
            return self.paths[name]
        except KeyError:
            raise ValueError(f"missing staticfiles manifest entry for {name!r}") from None
