"""The dispatcher: REALDOC_NO_EXTENSIONS parsing, realdoc.implementation, reimport."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import realdoc
from conftest import _compiled, REQUIRE_EXTENSIONS
from helpers import child_env


def implementation_with(value):
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
def test_opt_out_values_select_the_pure_twin(value):
    assert implementation_with(value)[0] == "python"


@pytest.mark.parametrize("value", [None, "", "0", "false", "no", "off"])
def test_other_values_keep_the_compiled_core(value):
    if _compiled is None and not REQUIRE_EXTENSIONS:
        pytest.skip("the Cython extension is not built")
    impl, err = implementation_with(value)
    assert impl == "cython"
    assert "Warning" not in err


def test_garbage_value_warns_and_counts_as_off():
    if _compiled is None and not REQUIRE_EXTENSIONS:
        pytest.skip("the Cython extension is not built")
    impl, err = implementation_with("maybe")
    assert impl == "cython"
    assert "REALDOC_NO_EXTENSIONS='maybe' is not a boolean" in err


def test_public_names_come_from_the_active_implementation():
    from realdoc import _impl
    assert realdoc.implementation in ("cython", "python")
    assert realdoc.realpath is _impl.impl.realpath
    assert realdoc.Resolver is _impl.impl.Resolver
    expected = "python" if _impl.impl.__name__.endswith("_py") else "cython"
    assert realdoc.implementation == expected
    if REQUIRE_EXTENSIONS and not os.environ.get("REALDOC_NO_EXTENSIONS"):
        assert realdoc.implementation == "cython"
