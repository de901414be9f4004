"""Build a deploy tree from an example project: ``ROOT/releases/<name>`` + ``ROOT/current``.

Shared by the examples' ``serve.py`` and by tests/test_frameworks.py.  Each
release is a copy of the project with ``@release@`` replaced by the release's
name in every text file (so a page can show which release each part came
from), then the project's build step (hashing the static files, or Django's
``collectstatic``).  ``current`` is a relative symlink to the first release.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
from typing import Callable, Optional, Sequence

STAMP = "@release@"
SKIP = ("serve.py", "__pycache__", "*.pyc")


def add_release(project: pathlib.Path, root: pathlib.Path, name: str,
                build: Optional[Callable[[pathlib.Path], None]] = None) -> pathlib.Path:
    """Copy ``project`` to ``root/releases/name``, stamp it, build it; return the path."""
    dst = root / "releases" / name
    shutil.copytree(project, dst, ignore=shutil.ignore_patterns(*SKIP))
    for path in dst.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".html", ".css", ".js", ".txt"):
            text = path.read_text(encoding="utf-8")
            if STAMP in text:
                path.write_text(text.replace(STAMP, name), encoding="utf-8")
    if build is not None:
        build(dst)
    return dst


def build_site(project: pathlib.Path, root: pathlib.Path, names: Sequence[str],
               build: Optional[Callable[[pathlib.Path], None]] = None) -> pathlib.Path:
    """``root`` with one release per name and ``current -> releases/<names[0]>``."""
    (root / "releases").mkdir(parents=True)
    for name in names:
        add_release(project, root, name, build)
    os.symlink(os.path.join("releases", names[0]), root / "current")
    return root


def hash_static(release: pathlib.Path) -> None:
    """The Flask/Starlette build step: hashed copies + staticfiles.json in static/."""
    from realdoc.contrib import hash_assets

    hash_assets(str(release / "static"))


def collectstatic(release: pathlib.Path) -> None:
    """The Django build step: ``manage.py collectstatic`` (ManifestStaticFilesStorage)."""
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
                   cwd=release, check=True)


def serve(project: pathlib.Path, build: Callable[[pathlib.Path], None],
          argv: Sequence[str]) -> None:
    """Build a two-release site in a temporary directory, say how to flip, run the server."""
    import tempfile

    root = pathlib.Path(tempfile.mkdtemp(prefix=f"realdoc-{project.name}-")) / "site"
    build_site(project, root, ["r1", "r2"], build)
    current = root / "current"
    print(f"site: {root}  (current -> releases/r1)\n"
          f"open:  http://127.0.0.1:8000/\n"
          f"check: curl -s -o /dev/null -D - http://127.0.0.1:8000/ | grep -i x-release\n"
          f"flip:  realdoc switch {current} {root / 'releases' / 'r2'}\n", flush=True)
    command = [a.replace("{app}", str(current)) for a in argv]
    os.chdir(current)
    os.execvp(command[0], command)
