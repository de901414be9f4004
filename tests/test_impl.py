"""The dispatcher: REALDOC_NO_EXTENSIONS parsing, realdoc.implementation, reimport."""

from __future__ import annotations

import importlib.machinery
import json
import os
import pathlib
import shutil
import subprocess
import sys
from typing import Any, List, Optional, Tuple

import pytest
from conftest import REQUIRE_EXTENSIONS, _compiled
from helpers import child_env

import realdoc


def implementation_with(value: Optional[str]) -> Tuple[str, str]:
    env = child_env()
    env.pop("REALDOC_NO_EXTENSIONS", None)
    if value is not None:
        env["REALDOC_NO_EXTENSIONS"] = value
    proc = subprocess.run(
        [sys.executable, "-W", "always", "-c", "import realdoc; print(realdoc.implementation)"],
        capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip(), proc.stderr


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_opt_out_values_select_the_pure_twin(value: Any) -> None:
    assert implementation_with(value)[0] == "python"


@pytest.mark.parametrize("value", [None, "", "0", "false", "no", "off"])
def test_other_values_keep_the_compiled_core(value: Any) -> None:
    if _compiled is None and not REQUIRE_EXTENSIONS:
        pytest.skip("the Cython extension is not built")
    impl, err = implementation_with(value)
    assert impl == "cython"
    assert "Warning" not in err


def test_garbage_value_warns_and_counts_as_off() -> None:
    if _compiled is None and not REQUIRE_EXTENSIONS:
        pytest.skip("the Cython extension is not built")
    impl, err = implementation_with("maybe")
    assert impl == "cython"
    assert "REALDOC_NO_EXTENSIONS='maybe' is not a boolean" in err


def test_public_names_come_from_the_active_implementation() -> None:
    from realdoc import _impl
    assert realdoc.implementation in ("cython", "python")
    assert realdoc.realpath is _impl.impl.realpath
    assert realdoc.Resolver is _impl.impl.Resolver
    expected = "python" if _impl.impl.__name__.endswith("_py") else "cython"
    assert realdoc.implementation == expected
    if REQUIRE_EXTENSIONS and not os.environ.get("REALDOC_NO_EXTENSIONS"):
        assert realdoc.implementation == "cython"


_RECORD_IMPORT_WARNINGS = """
import json, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    # A fallback message that sends a developer looking for an import cycle fails here.
    warnings.filterwarnings("error", message=".*circular import", category=RuntimeWarning)
    import realdoc
print(json.dumps({"implementation": realdoc.implementation,
                  "warnings": [[w.category.__name__, str(w.message)] for w in caught]}))
"""


def import_copy_without_core(tmp_path: pathlib.Path, replacement: Optional[bytes] = None,
                             no_extensions: Optional[str] = None
                             ) -> Tuple[str, List[Tuple[str, str]]]:
    """Import a copy of this realdoc whose compiled core is removed (or replaced by bytes).

    ``no_extensions``: the child's REALDOC_NO_EXTENSIONS (unset by default).
    Returns the child's implementation and its warnings as (category, message).
    """
    pkg = tmp_path / "realdoc"
    shutil.copytree(os.path.dirname(os.path.abspath(realdoc.__file__)), pkg,
                    ignore=shutil.ignore_patterns("_fastpath.*.so", "_fastpath.so",
                                                  "__pycache__"))
    assert not list(pkg.glob("_fastpath*.so"))
    if replacement is not None:
        (pkg / f"_fastpath{importlib.machinery.EXTENSION_SUFFIXES[0]}").write_bytes(replacement)
    env = {k: v for k, v in os.environ.items() if k != "REALDOC_NO_EXTENSIONS"}
    if no_extensions is not None:
        env["REALDOC_NO_EXTENSIONS"] = no_extensions
    env["PYTHONPATH"] = str(tmp_path)  # the copy only (not helpers.child_env: the real realdoc)
    proc = subprocess.run([sys.executable, "-c", _RECORD_IMPORT_WARNINGS],
                          capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    return out["implementation"], [tuple(w) for w in out["warnings"]]


def test_missing_core_warns_that_it_is_not_built(tmp_path: pathlib.Path) -> None:
    """A source checkout without the built .so: the warning says so, and how to build it."""
    impl, caught = import_copy_without_core(tmp_path)
    assert impl == "python"
    assert len(caught) == 1, caught
    category, message = caught[0]
    assert category == "RuntimeWarning"
    assert "realdoc._fastpath) is not built" in message
    assert "pip install ." in message and "python setup.py build_ext --inplace" in message
    assert "REALDOC_NO_EXTENSIONS=1" in message
    assert "circular import" not in message and "partially initialized" not in message
    assert "failed to load" not in message


def test_unloadable_core_warns_with_the_loader_error(tmp_path: pathlib.Path) -> None:
    """A .so that is there but cannot load: the loader's own error, not "not built"."""
    impl, caught = import_copy_without_core(tmp_path, replacement=b"not an ELF file\n")
    assert impl == "python"
    assert len(caught) == 1, caught
    category, message = caught[0]
    assert category == "RuntimeWarning"
    assert "realdoc._fastpath) failed to load: ImportError: " in message
    assert str(tmp_path / "realdoc" / "_fastpath") in message  # the loader names the file
    assert "not built" not in message and "circular import" not in message


def test_opt_out_on_a_copy_without_core_is_silent(tmp_path: pathlib.Path) -> None:
    """REALDOC_NO_EXTENSIONS=1 with no core: the pure twin, and no warning at all."""
    assert import_copy_without_core(tmp_path, no_extensions="1") == ("python", [])
