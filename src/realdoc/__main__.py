"""Run the realdoc command line: ``python -m realdoc ARGS``."""

import sys

from realdoc.cli import main

if __name__ == "__main__":
    sys.exit(main())
