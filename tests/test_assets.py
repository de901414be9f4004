"""Hashed assets across releases (realdoc._assets, realdoc.contrib): real trees."""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Tuple

import pytest
from helpers import fork_call

import realdoc
from realdoc.contrib import Manifest, find_asset, find_in_other_releases, hash_assets, is_hashed
from realdoc.testing.tree import DeployTree


def _tree(tmp_path: pathlib.Path) -> Tuple[DeployTree, str]:
    """Releases r1..r3, each with static/app.css and static/app.<hash>.css of its own."""
    tree = DeployTree.create(tmp_path / "site", releases=3, files=())
    for name in tree.releases:
        static = pathlib.Path(tree.release_path(name)) / "static" / "css"
        static.mkdir(parents=True)
        (static / "app.css").write_text(f"/* {name} */")
        hash_assets(str(static.parent))
    return tree, os.path.join(tree.current, "static")


def test_is_hashed() -> None:
    assert is_hashed("css/app.3f2a1b4c5d6e.css")
    assert is_hashed("app.0123abcd.js") and is_hashed("font.0123456789abcdef")
    assert not is_hashed("app.css") and not is_hashed("app.1234.css")
    assert not is_hashed("css.3f2a1b4c5d6e/app.css")  # the last component only
    assert not is_hashed("app.3F2A1B4C5D6E.css")       # lowercase hex only


def test_hash_assets_and_manifest(tmp_path: pathlib.Path) -> None:
    static = tmp_path / "static"
    (static / "css").mkdir(parents=True)
    (static / "css" / "app.css").write_text("body{}")
    (static / "LICENSE").write_text("x")
    paths = hash_assets(str(static))
    assert set(paths) == {"css/app.css", "LICENSE"}
    assert (static / paths["css/app.css"]).read_text() == "body{}"
    assert is_hashed(paths["css/app.css"]) and is_hashed(paths["LICENSE"])
    assert json.loads((static / "staticfiles.json").read_text())["paths"] == paths
    assert hash_assets(str(static)) == paths  # hashed copies are not hashed again
    manifest = Manifest(str(static))
    assert manifest("css/app.css") == paths["css/app.css"]
    with pytest.raises(ValueError, match="missing staticfiles manifest entry for 'nope.css'"):
        manifest("nope.css")
    (static / "staticfiles.json").write_text("[1]")
    with pytest.raises(ValueError, match="not a staticfiles manifest"):
        Manifest(str(static))
    with pytest.raises(FileNotFoundError):
        Manifest(str(tmp_path))


def test_find_asset_own_directory_and_bad_names(tmp_path: pathlib.Path) -> None:
    _, static = _tree(tmp_path)
    assert find_asset(static, "css/app.css") == os.path.join(static, "css/app.css")
    for bad in ("../static/css/app.css", "css/../css/app.css", "/etc/passwd", "css//app.css",
                "./css/app.css", "", "css/app.css\0", "css"):
        assert find_asset(static, bad) is None, bad


def test_without_a_pin_no_other_release_is_tried(tmp_path: pathlib.Path) -> None:
    tree, static = _tree(tmp_path)
    r1 = Manifest(os.path.join(tree.release_path("r1"), "static"))("css/app.css")
    tree.flip("r2")
    assert realdoc.process_release() is None
    assert find_asset(static, r1) is None
    assert find_in_other_releases(static, r1) is None


def test_pinned_hashed_names_found_in_other_releases(tmp_path: pathlib.Path) -> None:
    tree, _ = _tree(tmp_path)
    names = {n: Manifest(os.path.join(tree.release_path(n), "static"))("css/app.css")
             for n in tree.releases}
    # a symlink in releases/ is never followed, even if it holds the name; nor
    # is a hidden directory (a release prune is removing)
    os.symlink(tree.release_path("r1"), os.path.join(tree.root, "releases", "zz-link"))
    hidden = os.path.join(tree.root, "releases", ".r0.realdoc-prune-1", "static", "css")
    os.makedirs(hidden)
    with open(os.path.join(hidden, "app.0123456789ab.css"), "w") as f:
        f.write("hidden")

    def child() -> Any:
        tree.flip("r3")
        release = realdoc.pin_process(tree.current, rollover=False)
        static = os.path.join(release, "static")
        found = {n: find_asset(static, h) for n, h in names.items()}
        assert found["r1"] is not None
        with open(found["r1"], encoding="utf-8") as f:
            r1_bytes = f.read()
        return (found, r1_bytes, find_asset(static, "css/app.0123456789ab.css"),
                find_in_other_releases("/elsewhere/static", names["r1"]),
                find_asset(os.path.join(release, "static"), "css/app.css"))

    found, r1_bytes, missing, outside, unhashed = fork_call(child)
    for n in tree.releases:
        assert found[n] == os.path.join(tree.release_path(n), "static", names[n]), found
    assert r1_bytes == "/* r1 */"
    assert missing is None and outside is None
    assert unhashed == os.path.join(tree.release_path("r3"), "static", "css/app.css")
    # prune: a release removed from disk no longer serves its assets
    import shutil

    shutil.rmtree(tree.release_path("r1"))

    def child2() -> Any:
        release = realdoc.pin_process(tree.current, rollover=False)
        return find_asset(os.path.join(release, "static"), names["r1"])

    assert fork_call(child2) is None
