"""Build realdoc: the Cython core when possible, the pure-Python package otherwise.

Environment switches, read with the words of ``realdoc._config`` (``TRUE_WORDS``:
1/true/yes/on; ``FALSE_WORDS``, empty or unset mean off; any other value warns and
counts as off, as at import):
  REALDOC_NO_EXTENSIONS=1       build no extension: install the pure twin only.
  REALDOC_REQUIRE_EXTENSIONS=1  a failed compile is a build error, not a warning.

What this adds to plain setuptools:
  * a compile failure warns and installs the pure package (unless required);
  * a wheel without the compiled core is tagged ``py3-none-any``;
  * the installed package records the build-time choice in ``realdoc/_build_info.py``
    (so a wheel built with REALDOC_NO_EXTENSIONS=1 does not warn at every import);
  * the extension is built without debug info, stripped, and without the RUNPATH
    that a Python built with ``-Wl,-rpath`` puts on every link line.
"""

import ast
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

try:  # setuptools >= 70.1 (pyproject's build requirement); old ones: in-place builds only
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover
    bdist_wheel = None

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.join("src", "realdoc")


def config_words():
    """TRUE_WORDS and FALSE_WORDS, read from src/realdoc/_config.py without importing it.

    Importing realdoc here would need its dependencies and, worse, a built core; the
    two sets are literal ``frozenset({...})`` assignments, so ast reads them.
    """
    with open(os.path.join(HERE, PKG, "_config.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    words = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in ("TRUE_WORDS", "FALSE_WORDS")):
            call = node.value  # frozenset({...})
            words[node.targets[0].id] = frozenset(ast.literal_eval(call.args[0]))
    if set(words) != {"TRUE_WORDS", "FALSE_WORDS"}:
        sys.exit("realdoc build: TRUE_WORDS/FALSE_WORDS not found in %s/_config.py" % PKG)
    return words["TRUE_WORDS"], words["FALSE_WORDS"]


TRUE_WORDS, FALSE_WORDS = config_words()


def say(msg):
    sys.stderr.write("realdoc build: %s\n" % msg)


def flag(name):
    """As realdoc._config.env_flag: on for TRUE_WORDS; a value in neither set warns."""
    value = os.environ.get(name, "").strip().lower()
    if value in TRUE_WORDS:
        return True
    if value and value not in FALSE_WORDS:
        say("WARNING: %s=%r is not a boolean (use 1 or 0); treated as 0"
            % (name, os.environ[name]))
    return False


NO_EXTENSIONS = flag("REALDOC_NO_EXTENSIONS")
REQUIRE_EXTENSIONS = flag("REALDOC_REQUIRE_EXTENSIONS")
if NO_EXTENSIONS and REQUIRE_EXTENSIONS:
    sys.exit("realdoc: REALDOC_NO_EXTENSIONS and REALDOC_REQUIRE_EXTENSIONS are both set")


def _is_rpath(arg):
    return arg.startswith(("-Wl,-rpath,", "-Wl,-rpath=", "-Wl,-R"))


class OptionalBuildExt(build_ext):
    """Compile the core; on failure warn and carry on, unless it is required.

    ``built`` lists the extensions that compiled, for the wheel tag.
    """

    built = []

    def build_extensions(self):
        # A pyenv or other self-built Python links with -Wl,-rpath,<its prefix>/lib
        # (LDSHARED); the extension needs no libpython, so that RUNPATH would only
        # leak the build machine's paths.  Drop it from the link line.
        self.compiler.linker_so = [a for a in self.compiler.linker_so if not _is_rpath(a)]
        super().build_extensions()

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler, missing headers, ...
            self._failed(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._failed(exc)
        else:
            OptionalBuildExt.built.append(ext.name)
            say("built the Cython extension %s" % ext.name)

    def _failed(self, exc):
        if REQUIRE_EXTENSIONS:
            raise
        say("WARNING: could not compile the Cython core (%s); installing the "
            "pure-Python implementation, which is correct but slower. Set "
            "REALDOC_REQUIRE_EXTENSIONS=1 to make this an error." % (exc,))


class BuildPyWithInfo(build_py):
    """Write realdoc/_build_info.py into the built package: the build-time choice."""

    def run(self):
        super().run()
        if self.editable_mode:  # an editable install reads the source tree's default
            return
        target = os.path.join(self.build_lib, "realdoc", "_build_info.py")
        with open(target, "w", encoding="utf-8") as f:
            f.write('"""How this copy of realdoc was built (written by setup.py)."""\n\n'
                    "#: True when built with REALDOC_NO_EXTENSIONS=1: the pure twin by choice.\n"
                    "NO_EXTENSIONS = %r\n" % (NO_EXTENSIONS,))


cmdclass = {"build_ext": OptionalBuildExt, "build_py": BuildPyWithInfo}

if bdist_wheel is not None:
    class PureWhenNoExtension(bdist_wheel):
        """Tag the wheel py3-none-any when no extension was built (opt-out or failure)."""

        def get_tag(self):
            if not OptionalBuildExt.built:
                self.root_is_pure = True
            return super().get_tag()

    cmdclass["bdist_wheel"] = PureWhenNoExtension


def extensions():
    if NO_EXTENSIONS:
        say("REALDOC_NO_EXTENSIONS is set: pure-Python build")
        return []
    if not sys.platform.startswith("linux"):
        if REQUIRE_EXTENSIONS:
            sys.exit("realdoc: the Cython core needs Linux")
        say("not Linux: pure-Python build")
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRE_EXTENSIONS:
            raise
        say("WARNING: Cython is not available; pure-Python build")
        return []
    header = os.path.join(PKG, "_fastpath.h")
    try:
        return cythonize(
            [Extension("realdoc._fastpath", [os.path.join(PKG, "_fastpath.pyx")],
                       depends=[header] if os.path.exists(header) else [],
                       # -g0: no debug info (it is ~80% of the file); -s: strip symbols.
                       extra_compile_args=["-O2", "-g0"],
                       extra_link_args=["-s"])],
            compiler_directives={"language_level": "3", "embedsignature": True},
        )
    except Exception as exc:
        if REQUIRE_EXTENSIONS:
            raise
        say("WARNING: cythonize failed (%s); pure-Python build" % (exc,))
        return []


setup(ext_modules=extensions(), cmdclass=cmdclass)
