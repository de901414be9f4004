"""One command: ``python examples/flask/serve.py`` builds a two-release site in a
temporary directory and runs it under gunicorn gthread on 127.0.0.1:8000."""

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _site import hash_static, serve  # noqa: E402

serve(HERE, hash_static, [sys.executable, "-m", "gunicorn", "--workers", "2",
                          "--worker-class", "gthread", "--threads", "4",
                          "--chdir", "{app}", "--bind", "127.0.0.1:8000", "app:app"])
