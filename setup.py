"""Build realdoc: the Cython core when possible, the pure-Python package otherwise.

Environment switches (1/true/yes/on; 0, empty or unset mean off):
  REALDOC_NO_EXTENSIONS=1       build no extension: install the pure twin only.
  REALDOC_REQUIRE_EXTENSIONS=1  a failed compile is a build error, not a warning.
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_TRUE = {"1", "true", "yes", "on"}


def flag(name):
    return os.environ.get(name, "").strip().lower() in _TRUE


NO_EXTENSIONS = flag("REALDOC_NO_EXTENSIONS")
REQUIRE_EXTENSIONS = flag("REALDOC_REQUIRE_EXTENSIONS")
if NO_EXTENSIONS and REQUIRE_EXTENSIONS:
    sys.exit("realdoc: REALDOC_NO_EXTENSIONS and REALDOC_REQUIRE_EXTENSIONS are both set")


def say(msg):
    sys.stderr.write("realdoc build: %s\n" % msg)


class OptionalBuildExt(build_ext):
    """Compile the core; on failure warn and carry on, unless it is required."""

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
            say("built the Cython extension %s" % ext.name)

    def _failed(self, exc):
        if REQUIRE_EXTENSIONS:
            raise
        say("WARNING: could not compile the Cython core (%s); installing the "
            "pure-Python implementation, which is correct but slower. Set "
            "REALDOC_REQUIRE_EXTENSIONS=1 to make this an error." % (exc,))


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
    try:
        return cythonize(
            [Extension("realdoc._fastpath", ["src/realdoc/_fastpath.pyx"],
                       extra_compile_args=["-O2"])],
            compiler_directives={"language_level": "3", "embedsignature": True},
        )
    except Exception as exc:
        if REQUIRE_EXTENSIONS:
            raise
        say("WARNING: cythonize failed (%s); pure-Python build" % (exc,))
        return []


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
